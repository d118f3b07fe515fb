//! Sinks: change logs of final, consolidated deltas (SPEC §4) and dead letters.
//!
//! [`final_deltas`] is the timely side: it gathers a collection's updates on worker 0, and once
//! the frontier has passed a time it consolidates that time's updates (so a +1 and a -1 of the
//! same row at the same time never reach a sink), sorts them (so output is byte-identical across
//! runs and worker counts) and hands them to a callback. [`ChangeLogWriter`] and
//! [`DeadLetterWriter`] turn rows into JSON Lines.

use differential_dataflow::consolidation::consolidate;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;
use timely::ExchangeData;

/// Operator name of the change-log sink.
pub const NAME: &str = "FinalDeltas";

/// Delivers each time's consolidated, sorted, non-zero updates of a collection, in time order,
/// on worker 0, once the frontier has passed that time.
///
/// `updates` is a differential collection's inner stream of `(row, time, diff)`.
pub fn final_deltas<'scope, D, F>(
    updates: StreamVec<'scope, u64, (D, u64, isize)>,
    name: &str,
    mut deliver: F,
) where
    D: ExchangeData + Ord,
    F: FnMut(u64, &[(D, isize)]) + 'static,
{
    // Updates by their own time, which may be later than the timely time they travel at.
    let mut pending: BTreeMap<u64, Vec<(D, isize)>> = BTreeMap::new();
    updates.sink(
        Exchange::new(|_: &(D, u64, isize)| 0),
        name,
        move |(input, frontier)| {
            input.for_each_stamp(|_capability, batches| {
                for batch in batches {
                    for (row, time, diff) in batch.drain(..) {
                        pending.entry(time).or_default().push((row, diff));
                    }
                }
            });
            while let Some(entry) = pending.first_entry() {
                if frontier.less_equal(entry.key()) {
                    break;
                }
                let time = *entry.key();
                let mut updates = entry.remove();
                consolidate(&mut updates);
                if !updates.is_empty() {
                    deliver(time, &updates);
                }
            }
        },
    );
}

/// Errors writing outputs.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The output could not be created or written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: io::Error,
    },
}

/// Writes rows as JSON Lines change-log entries: the row's fields, then `time` and `diff`.
pub struct ChangeLogWriter {
    path: PathBuf,
    out: BufWriter<File>,
    line: Vec<u8>,
    rows: u64,
}

impl ChangeLogWriter {
    /// Creates (truncates) the file.
    pub fn create(path: &Path) -> Result<Self, SinkError> {
        let out = File::create(path).map_err(|source| SinkError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Ok(ChangeLogWriter {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 20, out),
            line: Vec::with_capacity(256),
            rows: 0,
        })
    }

    /// Appends one entry. `row` must serialize to a JSON object.
    pub fn write<R: Serialize>(
        &mut self,
        row: &R,
        time: u64,
        diff: isize,
    ) -> Result<(), SinkError> {
        self.line.clear();
        encode_change(row, time, diff, &mut self.line);
        self.rows += 1;
        self.out
            .write_all(&self.line)
            .map_err(|source| SinkError::Io {
                path: self.path.display().to_string(),
                source,
            })
    }

    /// Entries written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Flushes buffered entries to the file.
    pub fn flush(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(|source| SinkError::Io {
            path: self.path.display().to_string(),
            source,
        })
    }
}

/// Encodes `row` (a JSON object) with `time` and `diff` appended, and a newline.
///
/// # Examples
/// ```
/// use tidewatch_connectors::sink::encode_change;
/// #[derive(serde::Serialize)]
/// struct Row { warehouse: &'static str }
/// let mut line = Vec::new();
/// encode_change(&Row { warehouse: "wh-1" }, 60_000, -1, &mut line);
/// assert_eq!(line, b"{\"warehouse\":\"wh-1\",\"time\":60000,\"diff\":-1}\n");
/// ```
pub fn encode_change<R: Serialize>(row: &R, time: u64, diff: isize, line: &mut Vec<u8>) {
    let start = line.len();
    if serde_json::to_writer(&mut *line, row).is_err() || line.last() != Some(&b'}') {
        // Rows are plain structs; anything else is a programming error worth seeing in output.
        line.truncate(start);
        line.extend_from_slice(b"{\"error\":\"row is not a JSON object\"}");
    }
    line.pop();
    if line.len() > start + 1 {
        line.push(b',');
    }
    line.extend_from_slice(format!("\"time\":{time},\"diff\":{diff}}}\n").as_bytes());
}

/// One dead letter: why, the line as read, and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
pub struct DeadLetter {
    /// Stable reason code (`not_json`, `missing_field:ts`, `late`, ...).
    pub reason: String,
    /// The line as read (invalid UTF-8 replaced by U+FFFD), without its newline.
    pub raw: String,
    /// The source: a file path, `stdin` or `generator`.
    pub source: String,
    /// Byte offset of the line in its source.
    pub offset: u64,
}

/// Writes dead letters as JSON Lines.
pub struct DeadLetterWriter {
    inner: ChangeLogWriter,
}

impl DeadLetterWriter {
    /// Creates (truncates) the file.
    pub fn create(path: &Path) -> Result<Self, SinkError> {
        Ok(DeadLetterWriter {
            inner: ChangeLogWriter::create(path)?,
        })
    }

    /// Appends one dead letter.
    pub fn write(&mut self, letter: &DeadLetter) -> Result<(), SinkError> {
        let writer = &mut self.inner;
        writer.line.clear();
        if serde_json::to_writer(&mut writer.line, letter).is_err() {
            writer.line.clear();
            writer
                .line
                .extend_from_slice(b"{\"reason\":\"unencodable\",\"raw\":\"\"}");
        }
        writer.line.push(b'\n');
        writer.rows += 1;
        writer
            .out
            .write_all(&writer.line)
            .map_err(|source| SinkError::Io {
                path: writer.path.display().to_string(),
                source,
            })
    }

    /// Dead letters written so far.
    pub fn rows(&self) -> u64 {
        self.inner.rows
    }

    /// Flushes buffered entries to the file.
    pub fn flush(&mut self) -> Result<(), SinkError> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use differential_dataflow::AsCollection;
    use std::sync::{Arc, Mutex};
    use timely::dataflow::operators::ToStream;

    /// +1/-1 pairs at one time cancel, rows arrive sorted per time and in time order, and
    /// updates travelling at an earlier timely time are delivered at their own time.
    #[test]
    fn delivers_consolidated_sorted_updates_in_time_order() {
        type Seen = Vec<(u64, Vec<(u32, isize)>)>;
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let seen_in = Arc::clone(&seen);
        timely::execute(timely::Config::process(2), move |worker| {
            let seen = Arc::clone(&seen_in);
            let index = worker.index() as u32;
            worker.dataflow::<u64, _, _>(|scope| {
                let updates = vec![
                    (5 + index, 10u64, 1isize),
                    (3, 10, 1),
                    (3, 10, -1),
                    (9, 20, 1),
                    (1, 20, 1),
                ]
                .to_stream(scope)
                .as_collection();
                final_deltas(updates.inner, "test", move |time, rows| {
                    if let Ok(mut seen) = seen.lock() {
                        seen.push((time, rows.to_vec()));
                    }
                });
            });
        })
        .expect("timely");
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(
            seen,
            vec![(10, vec![(5, 1), (6, 1)]), (20, vec![(1, 2), (9, 2)])]
        );
    }
}
