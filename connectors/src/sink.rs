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
use std::time::{Duration, Instant};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;
use timely::ExchangeData;

/// Operator name of the change-log sink.
pub const NAME: &str = "FinalDeltas";

/// Updates waiting for the frontier, by time, each time with the capability that holds it open.
type Pending<D> = BTreeMap<u64, (Capability<u64>, Vec<(D, isize)>)>;

/// Delivers each time's consolidated, sorted, non-zero updates of a collection, in time order,
/// on worker 0, once the frontier has passed that time.
///
/// `updates` is a differential collection's inner stream of `(row, time, diff)`. The returned
/// stream carries no data; its frontier passes a time once every update at that time has been
/// handed to `deliver` (feed it to [`durable`] to learn when they are also flushed).
pub fn final_deltas<'scope, D, F>(
    updates: StreamVec<'scope, u64, (D, u64, isize)>,
    name: &str,
    mut deliver: F,
) -> StreamVec<'scope, u64, ()>
where
    D: ExchangeData + Ord,
    F: FnMut(u64, &[(D, isize)]) + 'static,
{
    // Updates by their own time, which may be later than the timely time they travel at, with
    // a capability that keeps that time open downstream until it is delivered.
    let mut pending: Pending<D> = BTreeMap::new();
    updates.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Exchange::new(|_: &(D, u64, isize)| 0),
        name,
        move |_capability, _info| {
            move |(input, frontier), output| {
                input.for_each_stamp(|capability, batches| {
                    for batch in batches {
                        for (row, time, diff) in batch.drain(..) {
                            pending
                                .entry(time)
                                .or_insert_with(|| {
                                    (capability.delayed(&time, output.output_index()), Vec::new())
                                })
                                .1
                                .push((row, diff));
                        }
                    }
                });
                while let Some(entry) = pending.first_entry() {
                    if frontier.less_equal(entry.key()) {
                        break;
                    }
                    let time = *entry.key();
                    let (_capability, mut updates) = entry.remove();
                    consolidate(&mut updates);
                    if !updates.is_empty() {
                        deliver(time, &updates);
                    }
                }
            }
        },
    )
}

/// Where a sink's writes stand, as [`durable`] asks it.
pub trait Flush {
    /// Starts making everything written so far durable (flushes buffers, or notes a barrier
    /// for asynchronous acknowledgements) and returns a ticket for it.
    fn begin_flush(&mut self) -> Result<u64, SinkError>;
    /// Whether everything written before `ticket` was taken is durable now. Never blocks.
    fn is_durable(&mut self, ticket: u64) -> Result<bool, SinkError>;
}

/// Holds back the frontier of `delivered` (the streams [`final_deltas`] returns, concatenated)
/// until what was delivered has also been flushed by `sink`: the returned stream's frontier
/// passes a time once every output at that time is durable. Probe it to learn the *durable
/// frontier*, for instance to commit input offsets.
///
/// Flushes at most every `every` (sooner at the end of the input). A sink that fails to flush
/// keeps the frontier where it is and records the error in `errors`; the run reports it.
pub fn durable<'scope, S>(
    delivered: StreamVec<'scope, u64, ()>,
    sink: std::rc::Rc<std::cell::RefCell<S>>,
    every: Duration,
    errors: std::rc::Rc<std::cell::RefCell<Option<SinkError>>>,
) -> StreamVec<'scope, u64, ()>
where
    S: Flush + 'static,
{
    let scope = delivered.scope();
    delivered.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Pipeline,
        "Durable",
        move |capability, info| {
            let activator = scope.activator_for(info.address);
            // Held at the least time whose outputs may not be durable yet.
            let mut held: Option<Capability<u64>> = Some(capability);
            // A flush under way: its ticket and the delivered frontier it covers.
            let mut flushing: Option<(u64, Option<u64>)> = None;
            let mut last_flush = Instant::now();
            move |(input, frontier), _output| {
                input.for_each(|_, _| {});
                let delivered = frontier.frontier().first().copied();
                if let Some((ticket, covers)) = flushing {
                    match sink.borrow_mut().is_durable(ticket) {
                        Ok(true) => {
                            flushing = None;
                            match covers {
                                Some(time) => {
                                    if let Some(capability) = held.as_mut() {
                                        if *capability.time() < time {
                                            capability.downgrade(&time);
                                        }
                                    }
                                }
                                None => held = None,
                            }
                        }
                        Ok(false) => {
                            activator.activate_after(Duration::from_millis(2));
                            return;
                        }
                        Err(error) => {
                            errors.borrow_mut().get_or_insert(error);
                            flushing = None;
                            activator.activate_after(every);
                            return;
                        }
                    }
                }
                // Nothing new to flush: everything delivered is already durable.
                let Some(held_at) = held.as_ref().map(|c| *c.time()) else {
                    return;
                };
                if delivered.is_some_and(|delivered| delivered <= held_at) {
                    return;
                }
                let due = last_flush.elapsed() >= every || delivered.is_none();
                if !due {
                    activator.activate_after(every.saturating_sub(last_flush.elapsed()));
                    return;
                }
                last_flush = Instant::now();
                match sink.borrow_mut().begin_flush() {
                    Ok(ticket) => {
                        flushing = Some((ticket, delivered));
                        activator.activate();
                    }
                    Err(error) => {
                        errors.borrow_mut().get_or_insert(error);
                        activator.activate_after(every);
                    }
                }
            }
        },
    )
}

/// Errors writing outputs.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The Kafka sink failed.
    #[error(transparent)]
    Kafka(#[from] crate::kafka::KafkaError),
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
        Self::open(path, false)
    }

    /// Opens the file: truncated, or appended to when `append` (a resumed run continuing the
    /// change log of an earlier one).
    pub fn open(path: &Path, append: bool) -> Result<Self, SinkError> {
        let io_error = |source| SinkError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .read(append)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(path)
            .map_err(io_error)?;
        if append {
            drop_torn_line(&mut out).map_err(io_error)?;
        }
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

    /// Appends one already encoded entry (see [`encode_change`]), with its newline.
    pub fn write_encoded(&mut self, line: &[u8]) -> Result<(), SinkError> {
        self.rows += 1;
        self.out.write_all(line).map_err(|source| SinkError::Io {
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

/// Cuts a last line without its newline (a run killed mid-write) off `file`, so that appended
/// lines start on a line of their own.
fn drop_torn_line(file: &mut File) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    let mut end = len;
    let mut chunk = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let piece = &mut chunk[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(piece)?;
        if let Some(at) = piece.iter().rposition(|&b| b == b'\n') {
            let keep = start + at as u64 + 1;
            if keep < len {
                tracing::warn!(
                    bytes = len - keep,
                    "dropping a torn last line before appending"
                );
                file.set_len(keep)?;
            }
            return Ok(());
        }
        end = start;
    }
    if len > 0 {
        file.set_len(0)?;
    }
    Ok(())
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
    /// Byte offset of the line in its source (for Kafka: the message's offset).
    pub offset: u64,
    /// Kafka only: the partition of `source` (the topic) the message came from.
    pub partition: Option<i32>,
}

/// A dead letter as written: `partition` only where there is one. (`DeadLetter` itself keeps
/// every field, because timely's wire format, bincode, cannot skip fields.)
#[derive(Serialize)]
struct DeadLetterJson<'a> {
    reason: &'a str,
    raw: &'a str,
    source: &'a str,
    offset: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    partition: Option<i32>,
}

/// Writes dead letters as JSON Lines.
pub struct DeadLetterWriter {
    inner: ChangeLogWriter,
}

impl DeadLetterWriter {
    /// Creates (truncates) the file.
    pub fn create(path: &Path) -> Result<Self, SinkError> {
        Self::open(path, false)
    }

    /// Opens the file, truncated or appended to (see [`ChangeLogWriter::open`]).
    pub fn open(path: &Path, append: bool) -> Result<Self, SinkError> {
        Ok(DeadLetterWriter {
            inner: ChangeLogWriter::open(path, append)?,
        })
    }

    /// Encodes `letter` as a JSON line (with its newline) into `line`.
    pub fn encode(letter: &DeadLetter, line: &mut Vec<u8>) {
        let json = DeadLetterJson {
            reason: &letter.reason,
            raw: &letter.raw,
            source: &letter.source,
            offset: letter.offset,
            partition: letter.partition,
        };
        if serde_json::to_writer(&mut *line, &json).is_err() {
            line.clear();
            line.extend_from_slice(b"{\"reason\":\"unencodable\",\"raw\":\"\"}");
        }
        line.push(b'\n');
    }

    /// Appends one already encoded line (see [`DeadLetterWriter::encode`]).
    pub fn write_encoded(&mut self, line: &[u8]) -> Result<(), SinkError> {
        self.inner.write_encoded(line)
    }

    /// Appends one dead letter.
    pub fn write(&mut self, letter: &DeadLetter) -> Result<(), SinkError> {
        let mut line = std::mem::take(&mut self.inner.line);
        line.clear();
        Self::encode(letter, &mut line);
        let result = self.write_encoded(&line);
        self.inner.line = line;
        result
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

    /// Appending after a run killed mid-line: the torn line goes, complete lines stay.
    #[test]
    fn append_drops_a_torn_last_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log.jsonl");
        for (before, after) in [
            (
                &b"{\"a\":1}\n{\"b\":2}\n{\"c\":"[..],
                &b"{\"a\":1}\n{\"b\":2}\n{\"x\":1}\n"[..],
            ),
            (b"{\"a\":1}\n", b"{\"a\":1}\n{\"x\":1}\n"),
            (b"torn", b"{\"x\":1}\n"),
            (b"", b"{\"x\":1}\n"),
        ] {
            std::fs::write(&path, before).expect("write");
            let mut writer = ChangeLogWriter::open(&path, true).expect("open");
            writer.write_encoded(b"{\"x\":1}\n").expect("append");
            writer.flush().expect("flush");
            assert_eq!(std::fs::read(&path).expect("read"), after);
        }
        // Without append the file starts empty.
        let mut writer = ChangeLogWriter::open(&path, false).expect("open");
        writer.flush().expect("flush");
        assert!(std::fs::read(&path).expect("read").is_empty());
    }
}
