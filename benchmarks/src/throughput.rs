//! Throughput mode: LOGI-1 as fast as it goes, from JSON Lines held in memory or read from a
//! file, at several worker counts.
//!
//! Both sources feed the same per-worker loop: read a batch of lines, parse and validate them
//! (dead letters for bad and late ones), send the events at their timely time, lift the input
//! capability to the watermark, step. A worker more than [`MAX_LAG_MS`] of event time ahead of
//! the output frontier steps until the rest catches up (as `tidewatch run` does), so memory
//! stays bounded. Rows are encoded as SPEC JSON lines on worker 0 and dropped: no output I/O,
//! so memory-to-memory measures parsing and the dataflow, and file mode adds reading the file.
//! The time runs from the start of the workers to the end of the last output.
//!
//! Lines are split among workers the way `tidewatch run` splits a file: blocks (here of
//! [`MEMORY_BLOCK_LINES`] lines; a file's of 1 MiB) dealt round-robin.
//!
//! # Examples
//! ```no_run
//! use tidewatch_benchmarks::throughput::{generate_lines, run_throughput, Lines};
//! use tidewatch_connectors::generator::GeneratorConfig;
//!
//! let lines = generate_lines(&GeneratorConfig::default(), 100_000);
//! let result = run_throughput(&Lines::Memory(lines.into()), 2, 5_000).unwrap();
//! println!("{:.0} events/s", result.events_per_second());
//! ```

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use timely::dataflow::operators::vec::UnorderedInput;
use timely::dataflow::operators::{Concat, Probe};
use timely::dataflow::ProbeHandle;

use tidewatch_connectors::generator::{Generator, GeneratorConfig};
use tidewatch_connectors::input::send_by_time;
use tidewatch_connectors::jsonl_source::{LineReader, LineSource, SourceError};
use tidewatch_connectors::sink::{encode_change, final_deltas};
use tidewatch_connectors::watermark::Watermark;
use tidewatch_dataflows::logi1::{logi1, AlertRow, Logi1Config, WindowRow};
use tidewatch_operators::event::{Event, Millis};
use tidewatch_operators::validate::parse_line;

/// Lines a worker reads before it steps the dataflow.
pub const BATCH_LINES: usize = 4_096;

/// How far (event time) a worker may run ahead of the output frontier.
pub const MAX_LAG_MS: Millis = 30 * 60_000;

/// Lines per block when lines in memory are dealt to workers.
pub const MEMORY_BLOCK_LINES: usize = 8_192;

/// Where the lines come from.
#[derive(Clone, Debug)]
pub enum Lines {
    /// Lines in memory (without their newlines).
    Memory(Arc<Vec<Vec<u8>>>),
    /// A JSON Lines file.
    File(PathBuf),
}

/// Errors of a throughput run.
#[derive(Debug, thiserror::Error)]
pub enum ThroughputError {
    /// The file could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Timely could not start.
    #[error("cannot start the workers: {0}")]
    Timely(String),
    /// A worker panicked (a bug).
    #[error("a worker failed: {0}")]
    Worker(String),
}

/// What a throughput run did.
#[derive(Clone, Debug, PartialEq)]
pub struct ThroughputResult {
    /// Worker threads.
    pub workers: usize,
    /// Lines read.
    pub lines: u64,
    /// Valid, on-time events that entered the dataflow.
    pub events: u64,
    /// Dead letters (malformed or late lines).
    pub dead_letters: u64,
    /// Window rows written.
    pub windows: u64,
    /// Alerts written.
    pub alerts: u64,
    /// From the workers' start to the last output.
    pub elapsed: Duration,
}

impl ThroughputResult {
    /// Lines read per second.
    pub fn events_per_second(&self) -> f64 {
        self.lines as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// `events` generated events as JSON lines (default traffic when `config` is the default).
pub fn generate_lines(config: &GeneratorConfig, events: usize) -> Vec<Vec<u8>> {
    let Ok(generator) = Generator::new(config.clone(), |_| true) else {
        return Vec::new();
    };
    generator
        .take(events)
        .map(|(_, event)| {
            let mut line = Vec::with_capacity(160);
            event.write_json(&mut line);
            line
        })
        .collect()
}

#[derive(Default)]
struct Counts {
    lines: AtomicU64,
    events: AtomicU64,
    dead_letters: AtomicU64,
    windows: AtomicU64,
    alerts: AtomicU64,
}

/// One worker's share of the lines.
enum Share {
    Memory {
        lines: Arc<Vec<Vec<u8>>>,
        index: usize,
        peers: usize,
        next: usize,
    },
    File(LineReader),
}

impl Share {
    /// The next line into `line`; false at the end of the share.
    fn next(&mut self, line: &mut Vec<u8>) -> Result<bool, SourceError> {
        match self {
            Share::Memory {
                lines,
                index,
                peers,
                next,
            } => {
                // This worker's `next`-th line is in its `next / B`-th block, which is block
                // `(next / B) * peers + index` of all.
                let block = (*next / MEMORY_BLOCK_LINES) * *peers + *index;
                let at = block * MEMORY_BLOCK_LINES + *next % MEMORY_BLOCK_LINES;
                match lines.get(at) {
                    Some(found) => {
                        line.clear();
                        line.extend_from_slice(found);
                        *next += 1;
                        Ok(true)
                    }
                    None => Ok(false),
                }
            }
            Share::File(reader) => Ok(reader.next_line(line)?.is_some()),
        }
    }
}

/// Runs LOGI-1 over `lines` with `workers` threads as fast as possible.
pub fn run_throughput(
    lines: &Lines,
    workers: usize,
    disorder_ms: Millis,
) -> Result<ThroughputResult, ThroughputError> {
    if let Lines::File(path) = lines {
        // Fail here, in one line, rather than in every worker.
        std::fs::File::open(path).map_err(|source| SourceError::Io {
            path: path.display().to_string(),
            source,
        })?;
    }
    let counts = Arc::new(Counts::default());
    let worker_counts = Arc::clone(&counts);
    let lines = lines.clone();
    let started = Instant::now();
    let guards = timely::execute(timely::Config::process(workers.max(1)), move |worker| {
        run_worker(worker, &lines, disorder_ms, &worker_counts)
    })
    .map_err(ThroughputError::Timely)?;
    let mut first_error = None;
    for result in guards.join() {
        match result.map_err(ThroughputError::Worker) {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                first_error.get_or_insert(ThroughputError::Source(error));
            }
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    let elapsed = started.elapsed();
    if let Some(error) = first_error {
        return Err(error);
    }
    Ok(ThroughputResult {
        workers: workers.max(1),
        lines: counts.lines.load(Ordering::Relaxed),
        events: counts.events.load(Ordering::Relaxed),
        dead_letters: counts.dead_letters.load(Ordering::Relaxed),
        windows: counts.windows.load(Ordering::Relaxed),
        alerts: counts.alerts.load(Ordering::Relaxed),
        elapsed,
    })
}

fn run_worker(
    worker: &mut timely::worker::Worker,
    lines: &Lines,
    disorder_ms: Millis,
    counts: &Arc<Counts>,
) -> Result<(), SourceError> {
    let index = worker.index();
    let peers = worker.peers();
    let config = Logi1Config::default();
    let probe = ProbeHandle::new();
    let (mut input, capability) = worker.dataflow::<u64, _, _>(|scope| {
        let (input, events) = scope.new_unordered_input::<Event>();
        let results = logi1(events, &config);
        let windows_counts = Arc::clone(counts);
        let mut windows_line = Vec::with_capacity(512);
        let windows = final_deltas(
            results.windows.inner,
            "ThroughputWindows",
            move |time, rows: &[(WindowRow, isize)]| {
                for (row, diff) in rows {
                    windows_line.clear();
                    encode_change(row, time, *diff, &mut windows_line);
                }
                windows_counts
                    .windows
                    .fetch_add(rows.len() as u64, Ordering::Relaxed);
            },
        );
        let alerts_counts = Arc::clone(counts);
        let mut alerts_line = Vec::with_capacity(512);
        let alerts = final_deltas(
            results.alerts.inner,
            "ThroughputAlerts",
            move |time, rows: &[(AlertRow, isize)]| {
                for (row, diff) in rows {
                    alerts_line.clear();
                    encode_change(row, time, *diff, &mut alerts_line);
                }
                alerts_counts
                    .alerts
                    .fetch_add(rows.len() as u64, Ordering::Relaxed);
            },
        );
        windows.concat(alerts).probe_with(&probe);
        input
    });
    let mut share = match lines {
        Lines::Memory(lines) => Share::Memory {
            lines: Arc::clone(lines),
            index,
            peers,
            next: 0,
        },
        Lines::File(path) => {
            match LineReader::open(&LineSource::File(path.clone()), index, peers) {
                Ok(reader) => Share::File(reader),
                Err(error) => {
                    // Take part in the (empty) dataflow so the other workers finish, then report.
                    drop(capability);
                    while worker.step_or_park(None) {}
                    return Err(error);
                }
            }
        }
    };
    let mut capability = capability;
    let mut watermark = Watermark::new(disorder_ms);
    let mut line = Vec::with_capacity(512);
    let mut batch: Vec<(u64, Event)> = Vec::with_capacity(BATCH_LINES);
    let mut failure = None;
    'reading: loop {
        let mut read = 0u64;
        let mut rejected = 0u64;
        let mut ended = false;
        let cap_time = *capability.time();
        while read < BATCH_LINES as u64 {
            match share.next(&mut line) {
                Ok(true) => {}
                Ok(false) => {
                    ended = true;
                    break;
                }
                Err(error) => {
                    failure = Some(error);
                    ended = true;
                    break;
                }
            }
            read += 1;
            match parse_line(&line) {
                Ok(event) => {
                    let ts = event.ts();
                    let time = config.timely_time(ts);
                    if time >= cap_time && watermark.observe(ts) {
                        batch.push((time, event));
                    } else {
                        rejected += 1;
                    }
                }
                Err(_) => rejected += 1,
            }
        }
        counts.lines.fetch_add(read, Ordering::Relaxed);
        counts
            .events
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        counts.dead_letters.fetch_add(rejected, Ordering::Relaxed);
        send_by_time(&mut input, &capability, &mut batch);
        if ended {
            break 'reading;
        }
        let frontier = config.timely_time(watermark.current());
        if frontier > *capability.time() {
            capability.downgrade(&frontier);
        }
        worker.step();
        let behind = frontier.saturating_sub(MAX_LAG_MS);
        while probe.less_than(&behind) {
            worker.step_or_park(Some(Duration::from_millis(1)));
        }
    }
    drop(capability);
    drop(input);
    while worker.step_or_park(None) {}
    match failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory and file give the same counts at 1 and 2 workers: the same lines, split the same
    /// way whatever the worker count, reach the same results.
    #[test]
    fn memory_and_file_agree_at_any_worker_count() {
        let config = GeneratorConfig::default();
        let lines = generate_lines(&config, 60_000);
        assert_eq!(lines.len(), 60_000);
        let dir = std::env::temp_dir().join(format!("tidewatch-throughput-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("events.jsonl");
        let mut text = Vec::new();
        for line in &lines {
            text.extend_from_slice(line);
            text.push(b'\n');
        }
        std::fs::write(&path, text).expect("write");
        let memory = Lines::Memory(Arc::new(lines));
        let file = Lines::File(path);
        let reference = run_throughput(&memory, 1, 5_000).expect("run");
        assert_eq!(reference.lines, 60_000);
        assert_eq!(reference.dead_letters, 0);
        assert!(reference.windows > 0);
        for (source, workers) in [(&memory, 2), (&file, 1), (&file, 2), (&memory, 3)] {
            let got = run_throughput(source, workers, 5_000).expect("run");
            assert_eq!(
                (got.lines, got.events, got.windows, got.alerts),
                (
                    reference.lines,
                    reference.events,
                    reference.windows,
                    reference.alerts
                ),
                "{source:?} at {workers} workers"
            );
        }
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    /// Every line is dealt to exactly one worker.
    #[test]
    fn memory_blocks_cover_every_line_once() {
        let lines: Vec<Vec<u8>> = (0..(3 * MEMORY_BLOCK_LINES + 17))
            .map(|i| i.to_string().into_bytes())
            .collect();
        let lines = Arc::new(lines);
        for peers in 1..=4 {
            let mut seen = Vec::new();
            for index in 0..peers {
                let mut share = Share::Memory {
                    lines: Arc::clone(&lines),
                    index,
                    peers,
                    next: 0,
                };
                let mut line = Vec::new();
                while share.next(&mut line).expect("memory never fails") {
                    seen.push(String::from_utf8(line.clone()).expect("utf8"));
                }
            }
            seen.sort_by_key(|s| s.parse::<usize>().expect("number"));
            let want: Vec<String> = (0..lines.len()).map(|i| i.to_string()).collect();
            assert_eq!(seen, want, "{peers} peers");
        }
    }
}
