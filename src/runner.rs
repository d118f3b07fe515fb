//! Wiring: sources -> LOGI-1 -> sinks, on timely workers.
//!
//! Each worker runs the same loop: read a bounded batch from its share of the source, validate
//! it (dead letters for bad and late lines), send the events at their timely time, move its
//! capability to its watermark, and step the dataflow. A worker that gets ahead of the
//! dataflow's output frontier by more than [`MAX_LAG_MS`] of event time steps until the rest
//! catches up, so memory stays bounded however fast the source is.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::UnorderedInput;
use timely::dataflow::operators::Probe;
use timely::dataflow::ProbeHandle;

use tidewatch_connectors::jsonl_source::{LineSource, SourceError};
use tidewatch_connectors::sink::{
    final_deltas, ChangeLogWriter, DeadLetter, DeadLetterWriter, SinkError,
};
use tidewatch_connectors::watermark::Watermark;
use tidewatch_dataflows::logi1::{logi1, AlertRow, Logi1Config, WindowRow};
use tidewatch_operators::event::{Event, Millis};
use tidewatch_operators::validate::{parse_line, Rejection};

use crate::feed::{Feed, Next};
use crate::terminal;

/// Lines read per batch before the worker steps the dataflow.
pub const BATCH_LINES: usize = 4096;

/// How far (event time) a worker's source may run ahead of the dataflow's output frontier.
pub const MAX_LAG_MS: Millis = 30 * 60_000;

/// What to run on.
#[derive(Clone, Debug)]
pub enum InputSpec {
    /// JSON Lines from a file or stdin.
    Lines(LineSource),
    /// The built-in generator.
    Generator(crate::feed::GeneratorSpec),
}

/// Options of a run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The input.
    pub input: InputSpec,
    /// Directory for `windows.jsonl`, `alerts.jsonl` and `dlq.jsonl`; `None` writes no files.
    pub out_dir: Option<PathBuf>,
    /// Disorder bound D of SPEC §2.
    pub disorder_ms: Millis,
    /// Print each alert as a readable line on stdout as it fires.
    pub print_alerts: bool,
    /// Print only alerts for windows starting at or after this time (the demo hides the alerts
    /// of its replayed warm-up history; they are still written to the outputs).
    pub print_alerts_from_ms: Millis,
    /// Set to stop the run early (SIGINT/SIGTERM); sources stop reading and results flush.
    pub stop: Arc<AtomicBool>,
    /// Parameters of the dataflow.
    pub logi1: Logi1Config,
    /// Log progress (lines read, dead letters, outputs) this often while running.
    pub progress_every: Option<Duration>,
}

impl RunOptions {
    /// A short name of the input for logs.
    pub fn input_name(&self) -> String {
        match &self.input {
            InputSpec::Lines(LineSource::File(path)) => path.display().to_string(),
            InputSpec::Lines(LineSource::Stdin) => "stdin".to_string(),
            InputSpec::Generator(spec) => {
                format!("generator (seed {}, {:?})", spec.config.seed, spec.pacing)
            }
        }
    }

    /// File mode with SPEC defaults: read `input`, write into `out_dir`.
    pub fn file(input: LineSource, out_dir: &Path, disorder_ms: Millis) -> Self {
        RunOptions {
            input: InputSpec::Lines(input),
            out_dir: Some(out_dir.to_path_buf()),
            disorder_ms,
            print_alerts: false,
            print_alerts_from_ms: 0,
            stop: Arc::new(AtomicBool::new(false)),
            logi1: Logi1Config::default(),
            progress_every: None,
        }
    }
}

/// Counts of a finished run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunSummary {
    /// Workers that ran.
    pub workers: usize,
    /// Lines (or generated events) read.
    pub lines_read: u64,
    /// Valid, on-time events that entered the dataflow (duplicates included).
    pub events_in: u64,
    /// Dead letters (malformed and late lines).
    pub dead_letters: u64,
    /// Of which late.
    pub late: u64,
    /// Window rows emitted.
    pub windows: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// Whether the run was stopped before its input ended.
    pub stopped_early: bool,
}

impl RunSummary {
    /// Valid events taken in per second of wall-clock time.
    pub fn events_per_second(&self) -> f64 {
        self.events_in as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Lines read per second of wall-clock time.
    pub fn lines_per_second(&self) -> f64 {
        self.lines_read as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Errors of a run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The input could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// An output could not be written.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The output directory could not be created.
    #[error("cannot create output directory {path}: {source}")]
    OutDir {
        /// The directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Timely could not start (for instance, a cluster address could not be bound).
    #[error("cannot start the dataflow workers: {0}")]
    Timely(String),
    /// A worker thread panicked: a bug, reported with the worker's message.
    #[error("a worker failed: {0}")]
    Worker(String),
}

/// Runs LOGI-1 on a file (or `-` for stdin) and writes the three outputs into `out_dir`.
///
/// The library form of `tidewatch run --input FILE --out DIR`.
pub fn run_file(
    input: &Path,
    out_dir: &Path,
    disorder_ms: Millis,
    config: timely::Config,
) -> Result<RunSummary, RunError> {
    let source = if input == Path::new("-") {
        LineSource::Stdin
    } else {
        LineSource::File(input.to_path_buf())
    };
    run(RunOptions::file(source, out_dir, disorder_ms), config)
}

#[derive(Default)]
struct Counters {
    lines_read: AtomicU64,
    events_in: AtomicU64,
    dead_letters: AtomicU64,
    late: AtomicU64,
    windows: AtomicU64,
    alerts: AtomicU64,
}

/// The files worker 0 writes.
struct Outputs {
    windows: Option<ChangeLogWriter>,
    alerts: Option<ChangeLogWriter>,
    dead_letters: Option<DeadLetterWriter>,
    error: Option<SinkError>,
}

impl Outputs {
    fn none() -> Self {
        Outputs {
            windows: None,
            alerts: None,
            dead_letters: None,
            error: None,
        }
    }

    fn create(dir: Option<&Path>) -> Result<Self, RunError> {
        let Some(dir) = dir else {
            return Ok(Outputs::none());
        };
        std::fs::create_dir_all(dir).map_err(|source| RunError::OutDir {
            path: dir.display().to_string(),
            source,
        })?;
        Ok(Outputs {
            windows: Some(ChangeLogWriter::create(&dir.join("windows.jsonl"))?),
            alerts: Some(ChangeLogWriter::create(&dir.join("alerts.jsonl"))?),
            dead_letters: Some(DeadLetterWriter::create(&dir.join("dlq.jsonl"))?),
            error: None,
        })
    }

    /// Appends `rows` at `time` to the change log `which` picks (if that output is written).
    fn write_changes<R: serde::Serialize>(
        &mut self,
        which: fn(&mut Outputs) -> &mut Option<ChangeLogWriter>,
        time: u64,
        rows: &[(R, isize)],
    ) {
        let Some(writer) = which(self).as_mut() else {
            return;
        };
        let failed = rows
            .iter()
            .map(|(row, diff)| writer.write(row, time, *diff))
            .find(Result::is_err);
        if let Some(result) = failed {
            self.record(result);
        }
    }

    fn record(&mut self, result: Result<(), SinkError>) {
        if let Err(error) = result {
            self.error.get_or_insert(error);
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        if let Some(w) = self.windows.as_mut() {
            w.flush()?;
        }
        if let Some(w) = self.alerts.as_mut() {
            w.flush()?;
        }
        if let Some(w) = self.dead_letters.as_mut() {
            w.flush()?;
        }
        Ok(())
    }
}

/// Runs LOGI-1 as `options` say, on the workers `config` describes.
pub fn run(options: RunOptions, config: timely::Config) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let counters = Arc::new(Counters::default());
    let worker_counters = Arc::clone(&counters);
    // Outputs are created before any worker starts: a worker that failed here would leave the
    // others waiting for it.
    let outputs = Arc::new(std::sync::Mutex::new(Some(Outputs::create(
        options.out_dir.as_deref(),
    )?)));
    if let InputSpec::Lines(LineSource::File(path)) = &options.input {
        std::fs::File::open(path).map_err(|source| SourceError::Io {
            path: path.display().to_string(),
            source,
        })?;
    }
    tracing::info!(
        input = ?options.input_name(),
        out_dir = ?options.out_dir,
        disorder_ms = options.disorder_ms,
        communication = ?config.communication,
        "starting LOGI-1"
    );
    let progress = options
        .progress_every
        .map(|every| spawn_progress(every, Arc::clone(&counters), started));
    let options = Arc::new(options);
    let guards = timely::execute(config, move |worker| {
        // Worker 0 writes every output; the sinks route all rows to it.
        let mine = if worker.index() == 0 {
            outputs.lock().ok().and_then(|mut slot| slot.take())
        } else {
            None
        };
        run_worker(
            worker,
            &options,
            &worker_counters,
            mine.unwrap_or_else(Outputs::none),
        )
    })
    .map_err(RunError::Timely)?;
    let mut workers = 0;
    let mut stopped_early = false;
    let mut first_error = None;
    for result in guards.join() {
        workers += 1;
        match result.map_err(RunError::Worker).and_then(|r| r) {
            Ok(stopped) => stopped_early |= stopped,
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    if let Some((done, thread)) = progress {
        done.store(true, Ordering::Relaxed);
        let _ = thread.join();
    }
    if let Some(error) = first_error {
        return Err(error);
    }
    Ok(RunSummary {
        workers,
        lines_read: counters.lines_read.load(Ordering::Relaxed),
        events_in: counters.events_in.load(Ordering::Relaxed),
        dead_letters: counters.dead_letters.load(Ordering::Relaxed),
        late: counters.late.load(Ordering::Relaxed),
        windows: counters.windows.load(Ordering::Relaxed),
        alerts: counters.alerts.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        stopped_early,
    })
}

/// Logs progress every `every` until the returned flag is set.
fn spawn_progress(
    every: Duration,
    counters: Arc<Counters>,
    started: Instant,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let thread = std::thread::spawn(move || {
        let mut next = started + every;
        while !flag.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
            if Instant::now() < next {
                continue;
            }
            next += every;
            let lines = counters.lines_read.load(Ordering::Relaxed);
            tracing::info!(
                lines_read = lines,
                lines_per_second = (lines as f64 / started.elapsed().as_secs_f64()) as u64,
                dead_letters = counters.dead_letters.load(Ordering::Relaxed),
                windows = counters.windows.load(Ordering::Relaxed),
                alerts = counters.alerts.load(Ordering::Relaxed),
                "progress"
            );
        }
    });
    (done, thread)
}

/// One worker's whole run; returns whether it stopped early.
fn run_worker(
    worker: &mut timely::worker::Worker,
    options: &RunOptions,
    counters: &Arc<Counters>,
    outputs: Outputs,
) -> Result<bool, RunError> {
    let index = worker.index();
    let peers = worker.peers();
    let config = options.logi1;
    let outputs = Rc::new(RefCell::new(outputs));
    let mut feed = Feed::open(&options.input, index, peers)?;

    let probe = ProbeHandle::new();
    let ((mut events_input, events_capability), (mut letters_input, letters_capability)) =
        worker.dataflow::<u64, _, _>(|scope| {
            let (events_input, events) = scope.new_unordered_input::<Event>();
            let (letters_input, letters) = scope.new_unordered_input::<DeadLetter>();
            let results = logi1(events, &config);

            let sink = Rc::clone(&outputs);
            let count = Arc::clone(counters);
            final_deltas(
                results.windows.inner.probe_with(&probe),
                "WindowsSink",
                move |time, rows: &[(WindowRow, isize)]| {
                    count
                        .windows
                        .fetch_add(rows.len() as u64, Ordering::Relaxed);
                    sink.borrow_mut()
                        .write_changes(|o| &mut o.windows, time, rows);
                },
            );

            let sink = Rc::clone(&outputs);
            let count = Arc::clone(counters);
            let print = options.print_alerts;
            let print_from = options.print_alerts_from_ms;
            final_deltas(
                results.alerts.inner.probe_with(&probe),
                "AlertsSink",
                move |time, rows: &[(AlertRow, isize)]| {
                    count.alerts.fetch_add(rows.len() as u64, Ordering::Relaxed);
                    if print {
                        for (row, diff) in rows
                            .iter()
                            .filter(|(row, _)| row.window_start >= print_from)
                        {
                            terminal::print_alert(row, *diff);
                        }
                    }
                    sink.borrow_mut()
                        .write_changes(|o| &mut o.alerts, time, rows);
                },
            );

            let sink = Rc::clone(&outputs);
            letters.sink(
                Exchange::new(|_: &DeadLetter| 0),
                "DeadLetterSink",
                move |(input, _frontier)| {
                    let mut sink = sink.borrow_mut();
                    input.for_each(|_capability, batch| {
                        for letter in batch.drain(..) {
                            let result = match sink.dead_letters.as_mut() {
                                Some(w) => w.write(&letter),
                                None => Ok(()),
                            };
                            sink.record(result);
                        }
                    });
                },
            );
            (events_input, letters_input)
        });

    let mut capability = events_capability;
    let mut letters_capability = letters_capability;
    let mut watermark = Watermark::new(options.disorder_ms);
    let mut batch: Vec<(u64, Event)> = Vec::with_capacity(BATCH_LINES);
    let mut letters: Vec<DeadLetter> = Vec::new();
    let mut line = Vec::with_capacity(512);
    let mut stopped_early = false;
    let source_name = feed.name().to_string();
    // Generated events have no byte offset: dead letters name their sequence number instead.
    let mut generated = 0u64;

    'reading: loop {
        if options.stop.load(Ordering::Relaxed) {
            stopped_early = true;
            break;
        }
        let mut finished = false;
        let mut idle = false;
        let mut read = 0u64;
        let mut late = 0u64;
        while batch.len() + letters.len() < BATCH_LINES {
            let (event, offset) = match feed.next(&mut line)? {
                Next::Done => {
                    finished = true;
                    break;
                }
                Next::Idle { clock_ms } => {
                    // As if an event at the source's clock had been seen.
                    watermark.advance_to(clock_ms.saturating_sub(options.disorder_ms));
                    idle = true;
                    break;
                }
                Next::Event(event) => {
                    line.clear();
                    read += 1;
                    generated += 1;
                    (event, generated - 1)
                }
                Next::Line { offset } => {
                    read += 1;
                    match parse_line(&line) {
                        Ok(event) => (event, offset),
                        Err(rejection) => {
                            letters.push(dead_letter(rejection, &line, &source_name, offset));
                            continue;
                        }
                    }
                }
            };
            let ts = event.ts();
            if watermark.observe(ts) {
                batch.push((config.timely_time(ts), event));
            } else {
                late += 1;
                // A generated event has no line as read: its JSON form stands in for it.
                if line.is_empty() {
                    event.write_json(&mut line);
                }
                letters.push(dead_letter(Rejection::Late, &line, &source_name, offset));
            }
        }
        counters.lines_read.fetch_add(read, Ordering::Relaxed);
        counters
            .events_in
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        counters
            .dead_letters
            .fetch_add(letters.len() as u64, Ordering::Relaxed);
        counters.late.fetch_add(late, Ordering::Relaxed);

        // Send the batch, one session per timely time (a batch spans few window starts).
        batch.sort_by_key(|(time, _)| *time);
        let mut events = batch.drain(..).peekable();
        while let Some((time, event)) = events.next() {
            let at = capability.delayed(&time);
            let mut handle = events_input.activate();
            let mut session = handle.session(&at);
            session.give(event);
            while let Some((_, event)) = events.next_if(|(next, _)| *next == time) {
                session.give(event);
            }
        }
        drop(events);
        if !letters.is_empty() {
            letters_input
                .activate()
                .session(&letters_capability)
                .give_iterator(letters.drain(..));
        }
        if finished {
            break 'reading;
        }
        let frontier = config.timely_time(watermark.current());
        if frontier > *capability.time() {
            capability.downgrade(&frontier);
            letters_capability.downgrade(&frontier);
        }
        worker.step_or_park(idle.then_some(Duration::from_millis(20)));
        // Let the dataflow catch up before reading further ahead.
        let behind = frontier.saturating_sub(MAX_LAG_MS);
        while probe.less_than(&behind) && !options.stop.load(Ordering::Relaxed) {
            worker.step_or_park(Some(Duration::from_millis(1)));
        }
    }
    drop(capability);
    drop(letters_capability);
    while worker.step_or_park(None) {}
    outputs.borrow_mut().flush()?;
    Ok(stopped_early)
}

fn dead_letter(rejection: Rejection, bytes: &[u8], source: &str, offset: u64) -> DeadLetter {
    DeadLetter {
        reason: rejection.reason(),
        raw: String::from_utf8_lossy(bytes).into_owned(),
        source: source.to_string(),
        offset,
    }
}
