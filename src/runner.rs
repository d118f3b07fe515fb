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

use differential_dataflow::VecCollection;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::{Broadcast, UnorderedInput};
use timely::dataflow::operators::{Concatenate, Probe};
use timely::dataflow::{ProbeHandle, StreamVec};

use tidewatch_connectors::input::send_by_time;
use tidewatch_connectors::jsonl_source::{LineSource, SourceError};
use tidewatch_connectors::kafka::sink::{KafkaSink, Output, SinkTopics, FINAL_FLUSH_TIMEOUT};
use tidewatch_connectors::kafka::source::{check_topics, read_resume, SourceConfig, StartFrom};
use tidewatch_connectors::kafka::{KafkaConfig, KafkaError};
use tidewatch_connectors::sink::{
    durable, encode_change, final_deltas, ChangeLogWriter, DeadLetter, DeadLetterWriter, Flush,
    SinkError,
};
use tidewatch_connectors::watermark::PartWatermarks;
use tidewatch_dataflows::anomaly::{anomaly_rules, AnomalyAlertRow, AnomalyConfig};
use tidewatch_dataflows::logi1::{logi1, AlertRow, Logi1Config, WindowRow};
use tidewatch_dataflows::logi2::{logi2, ForecastAlertRow, ForecastRow, Logi2Config, Series};
use tidewatch_operators::event::{Event, Millis};
use tidewatch_operators::validate::{parse_line, Rejection};

use crate::feed::{Feed, Next};
use crate::telemetry::{operators::log_activations, PartCounter, Telemetry};
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
    /// Kafka topics.
    Kafka(SourceConfig),
}

/// The Kafka sink of a run: where, and to which topics.
#[derive(Clone, Debug)]
pub struct KafkaSinkSpec {
    /// Brokers and options.
    pub kafka: KafkaConfig,
    /// Output topics.
    pub topics: SinkTopics,
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
    /// Also run LOGI-2 (forecasts and forecast alerts) with these parameters; its outputs go to
    /// `forecasts.jsonl` and `forecast_alerts.jsonl` in `out_dir` (not to Kafka).
    pub logi2: Option<Logi2Config>,
    /// Also run these alert rules over LOGI-1's window rows; their alert deltas go to
    /// `anomaly_alerts.jsonl` in `out_dir` (not to Kafka) and, with `print_alerts`, to stdout.
    pub anomaly: Option<AnomalyConfig>,
    /// Log progress (lines read, dead letters, outputs) this often while running.
    pub progress_every: Option<Duration>,
    /// Also (or only, without `out_dir`) write the outputs to Kafka topics.
    pub kafka_sink: Option<KafkaSinkSpec>,
    /// Flush the outputs at most this often (sooner at the end). Input offsets are committed
    /// after a flush, so this is also the commit cadence.
    pub flush_every: Duration,
    /// Report to this telemetry while running (the HTTP server reads it): per-source counts and
    /// watermarks, the live view, latencies, and per-operator activation times from timely's
    /// log. `None`: the run keeps its own counts for the summary and logs no operator times.
    pub telemetry: Option<Arc<Telemetry>>,
    /// Notes to log (info) once the run has passed its start-up checks (for instance, where
    /// metrics are served): a run that fails them prints its error alone.
    pub start_notes: Vec<String>,
    /// Warnings to log once the run has passed its start-up checks (for instance, that a
    /// default port was taken and metrics are not served).
    pub start_warnings: Vec<String>,
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
            InputSpec::Kafka(config) => format!(
                "kafka {} topics {} (group {}, from {:?})",
                config.kafka.brokers,
                config.topics.join(","),
                config.group,
                config.from
            ),
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
            logi2: None,
            anomaly: None,
            progress_every: None,
            kafka_sink: None,
            flush_every: DEFAULT_FLUSH_EVERY,
            telemetry: None,
            start_notes: Vec::new(),
            start_warnings: Vec::new(),
        }
    }
}

/// Default of [`RunOptions::flush_every`].
pub const DEFAULT_FLUSH_EVERY: Duration = Duration::from_millis(200);

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
    /// LOGI-2 forecast rows emitted (0 without LOGI-2).
    pub forecasts: u64,
    /// LOGI-2 forecast alerts raised.
    pub forecast_alerts: u64,
    /// Alert rules: alerts raised (+1 rows of `anomaly_alerts.jsonl`).
    pub anomaly_raised: u64,
    /// Alert rules: alerts cleared (-1 rows).
    pub anomaly_cleared: u64,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// Whether the run was stopped before its input ended.
    pub stopped_early: bool,
    /// A resumed run (`--from committed`): outputs at times below this were written by an
    /// earlier run and were not written again.
    pub resumed_below: Option<u64>,
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
    /// Kafka could not be read or written.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
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

/// A row's Kafka message key: its warehouse, so one warehouse's deltas stay in order.
trait Keyed {
    fn key(&self) -> &str;
}

impl Keyed for WindowRow {
    fn key(&self) -> &str {
        &self.warehouse
    }
}

impl Keyed for AlertRow {
    fn key(&self) -> &str {
        &self.warehouse
    }
}

impl Keyed for ForecastRow {
    fn key(&self) -> &str {
        &self.warehouse
    }
}

impl Keyed for ForecastAlertRow {
    fn key(&self) -> &str {
        &self.warehouse
    }
}

impl Keyed for AnomalyAlertRow {
    fn key(&self) -> &str {
        &self.warehouse
    }
}

/// The change-log outputs.
#[derive(Clone, Copy, Debug)]
enum ChangeLog {
    Windows,
    Alerts,
    Forecasts,
    ForecastAlerts,
    AnomalyAlerts,
}

/// The outputs worker 0 writes: files, a Kafka producer, or both.
struct Outputs {
    windows: Option<ChangeLogWriter>,
    alerts: Option<ChangeLogWriter>,
    forecasts: Option<ChangeLogWriter>,
    forecast_alerts: Option<ChangeLogWriter>,
    anomaly_alerts: Option<ChangeLogWriter>,
    dead_letters: Option<DeadLetterWriter>,
    kafka: Option<KafkaSink>,
    /// Rows at times below this were written by an earlier run (a resumed run).
    suppress_below: u64,
    /// Rows at times at or above this are not final: a Kafka run was stopped (see
    /// [`run_worker`]). `u64::MAX` while running.
    stop_frontier: Arc<AtomicU64>,
    line: Vec<u8>,
    error: Option<SinkError>,
}

impl Outputs {
    fn none() -> Self {
        Outputs {
            windows: None,
            alerts: None,
            forecasts: None,
            forecast_alerts: None,
            anomaly_alerts: None,
            dead_letters: None,
            kafka: None,
            suppress_below: 0,
            stop_frontier: Arc::new(AtomicU64::new(u64::MAX)),
            line: Vec::with_capacity(512),
            error: None,
        }
    }

    /// Creates the files in `dir` (appending to them when `append`) and connects the Kafka
    /// sink, if any.
    fn create(
        dir: Option<&Path>,
        logi2: bool,
        anomaly: bool,
        append: bool,
        kafka: Option<&KafkaSinkSpec>,
        suppress_below: u64,
        stop_frontier: &Arc<AtomicU64>,
    ) -> Result<Self, RunError> {
        let mut outputs = Outputs::none();
        outputs.suppress_below = suppress_below;
        outputs.stop_frontier = Arc::clone(stop_frontier);
        if let Some(spec) = kafka {
            outputs.kafka = Some(KafkaSink::create(&spec.kafka, spec.topics.clone())?);
        }
        let Some(dir) = dir else {
            return Ok(outputs);
        };
        std::fs::create_dir_all(dir).map_err(|source| RunError::OutDir {
            path: dir.display().to_string(),
            source,
        })?;
        outputs.windows = Some(ChangeLogWriter::open(&dir.join("windows.jsonl"), append)?);
        outputs.alerts = Some(ChangeLogWriter::open(&dir.join("alerts.jsonl"), append)?);
        outputs.dead_letters = Some(DeadLetterWriter::open(&dir.join("dlq.jsonl"), append)?);
        if logi2 {
            outputs.forecasts = Some(ChangeLogWriter::open(&dir.join("forecasts.jsonl"), append)?);
            outputs.forecast_alerts = Some(ChangeLogWriter::open(
                &dir.join("forecast_alerts.jsonl"),
                append,
            )?);
        }
        if anomaly {
            outputs.anomaly_alerts = Some(ChangeLogWriter::open(
                &dir.join("anomaly_alerts.jsonl"),
                append,
            )?);
        }
        Ok(outputs)
    }

    /// Appends `rows` at `time` to `log`'s file and, for LOGI-1's logs, to its Kafka topic;
    /// rows an earlier run wrote are skipped. Returns how many were written.
    fn write_changes<R: serde::Serialize + Keyed>(
        &mut self,
        log: ChangeLog,
        time: u64,
        rows: &[(R, isize)],
    ) -> usize {
        if time < self.suppress_below || time >= self.stop_frontier.load(Ordering::SeqCst) {
            return 0;
        }
        let mut line = std::mem::take(&mut self.line);
        for (row, diff) in rows {
            line.clear();
            encode_change(row, time, *diff, &mut line);
            let (file, topic) = match log {
                ChangeLog::Windows => (self.windows.as_mut(), Some(Output::Windows)),
                ChangeLog::Alerts => (self.alerts.as_mut(), Some(Output::Alerts)),
                // LOGI-2 goes to files only (README "LOGI-2").
                ChangeLog::Forecasts => (self.forecasts.as_mut(), None),
                ChangeLog::ForecastAlerts => (self.forecast_alerts.as_mut(), None),
                // So do the alert rules (README "Alert rules").
                ChangeLog::AnomalyAlerts => (self.anomaly_alerts.as_mut(), None),
            };
            if let Some(file) = file {
                let result = file.write_encoded(&line);
                self.record(result);
            }
            if let Some(topic) = topic {
                self.send(topic, row.key().as_bytes(), &line);
            }
        }
        self.line = line;
        rows.len()
    }

    fn write_dead_letter(&mut self, letter: &DeadLetter) {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        DeadLetterWriter::encode(letter, &mut line);
        let result = match self.dead_letters.as_mut() {
            Some(file) => file.write_encoded(&line),
            None => Ok(()),
        };
        self.record(result);
        if self.kafka.is_some() {
            let key = match letter.partition {
                Some(partition) => format!("{}/{partition}", letter.source),
                None => letter.source.clone(),
            };
            self.send(Output::DeadLetters, key.as_bytes(), &line);
        }
        self.line = line;
    }

    /// Sends one encoded line (without its newline) to the Kafka sink, if any.
    fn send(&mut self, output: Output, key: &[u8], line: &[u8]) {
        let Some(kafka) = self.kafka.as_mut() else {
            return;
        };
        let payload = line.strip_suffix(b"\n").unwrap_or(line);
        let result = kafka.send(output, key, payload).map_err(SinkError::from);
        self.record(result);
    }

    fn record(&mut self, result: Result<(), SinkError>) {
        if let Err(error) = result {
            self.error.get_or_insert(error);
        }
    }

    fn flush_files(&mut self) -> Result<(), SinkError> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        if let Some(w) = self.windows.as_mut() {
            w.flush()?;
        }
        if let Some(w) = self.alerts.as_mut() {
            w.flush()?;
        }
        if let Some(w) = self.forecasts.as_mut() {
            w.flush()?;
        }
        if let Some(w) = self.forecast_alerts.as_mut() {
            w.flush()?;
        }
        if let Some(w) = self.anomaly_alerts.as_mut() {
            w.flush()?;
        }
        if let Some(w) = self.dead_letters.as_mut() {
            w.flush()?;
        }
        Ok(())
    }

    /// Flushes everything, waiting (bounded) for the broker to acknowledge the Kafka output.
    fn finish(&mut self) -> Result<(), SinkError> {
        self.flush_files()?;
        if let Some(kafka) = self.kafka.as_mut() {
            kafka.flush(FINAL_FLUSH_TIMEOUT)?;
        }
        Ok(())
    }
}

impl Flush for Outputs {
    fn begin_flush(&mut self) -> Result<u64, SinkError> {
        self.flush_files()?;
        Ok(self.kafka.as_ref().map_or(0, |k| k.barrier() as u64))
    }

    fn is_durable(&mut self, ticket: u64) -> Result<bool, SinkError> {
        match self.kafka.as_mut() {
            Some(kafka) => Ok(kafka.acknowledged(ticket as usize)?),
            None => Ok(true),
        }
    }
}

/// Runs LOGI-1 as `options` say, on the workers `config` describes.
pub fn run(options: RunOptions, config: timely::Config) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let live_telemetry = options.telemetry.is_some();
    let telemetry = options
        .telemetry
        .clone()
        .unwrap_or_else(|| Arc::new(Telemetry::new(local_workers(&config))));
    telemetry.describe(options.input_name(), &rule_names(&options));
    let worker_telemetry = Arc::clone(&telemetry);
    // A Kafka input must be reachable, with its topics, before anything is created.
    if let InputSpec::Kafka(source) = &options.input {
        check_topics(source)?;
    }
    // A resumed Kafka run continues the change logs of the run it resumes: it appends to the
    // files and does not write again what that run wrote (outputs below its durable frontier).
    let resume = match &options.input {
        InputSpec::Kafka(source) if source.from == StartFrom::Committed => {
            let resume = read_resume(source)?;
            tracing::info!(
                committed_partitions = resume.offsets.len(),
                durable_frontier = ?resume.durable_frontier,
                "resuming from the group's committed offsets"
            );
            Some(resume)
        }
        _ => None,
    };
    let resumed_below = resume.as_ref().and_then(|r| r.durable_frontier);
    // Outputs are created before any worker starts: a worker that failed here would leave the
    // others waiting for it. Only the process that hosts worker 0 writes them.
    let hosts_worker_zero = match &config.communication {
        timely::CommunicationConfig::Cluster { process, .. } => *process == 0,
        _ => true,
    };
    let stop_frontier = Arc::new(AtomicU64::new(u64::MAX));
    let outputs = if hosts_worker_zero {
        Outputs::create(
            options.out_dir.as_deref(),
            options.logi2.is_some(),
            options.anomaly.is_some(),
            resume.is_some(),
            options.kafka_sink.as_ref(),
            resumed_below.unwrap_or(0),
            &stop_frontier,
        )?
    } else {
        Outputs::none()
    };
    let outputs = Arc::new(std::sync::Mutex::new(Some(outputs)));
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
        logi2 = options.logi2.is_some(),
        alert_rules = options.anomaly.as_ref().map_or(0, |a| a.rules.len()),
        "starting LOGI-1"
    );
    // After the start-up checks: a run that fails them says one thing only.
    for note in &options.start_notes {
        tracing::info!("{note}");
    }
    for warning in &options.start_warnings {
        tracing::warn!("{warning}");
    }
    let progress = options
        .progress_every
        .map(|every| spawn_progress(every, Arc::clone(&telemetry), started));
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
            &worker_telemetry,
            live_telemetry,
            mine.unwrap_or_else(Outputs::none),
            resumed_below,
            &stop_frontier,
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
        lines_read: telemetry.totals.lines_read.load(Ordering::Relaxed),
        events_in: telemetry.totals.events_in.load(Ordering::Relaxed),
        dead_letters: telemetry.totals.dead_letters.load(Ordering::Relaxed),
        late: telemetry.totals.late.load(Ordering::Relaxed),
        windows: telemetry.totals.windows.load(Ordering::Relaxed),
        alerts: telemetry.totals.alerts.load(Ordering::Relaxed),
        forecasts: telemetry.totals.forecasts.load(Ordering::Relaxed),
        forecast_alerts: telemetry.totals.forecast_alerts.load(Ordering::Relaxed),
        anomaly_raised: telemetry.totals.anomaly_raised.load(Ordering::Relaxed),
        anomaly_cleared: telemetry.totals.anomaly_cleared.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        stopped_early,
        resumed_below,
    })
}

/// Logs progress every `every` until the returned flag is set.
fn spawn_progress(
    every: Duration,
    telemetry: Arc<Telemetry>,
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
            let lines = telemetry.totals.lines_read.load(Ordering::Relaxed);
            tracing::info!(
                lines_read = lines,
                lines_per_second = (lines as f64 / started.elapsed().as_secs_f64()) as u64,
                dead_letters = telemetry.totals.dead_letters.load(Ordering::Relaxed),
                windows = telemetry.totals.windows.load(Ordering::Relaxed),
                alerts = telemetry.totals.alerts.load(Ordering::Relaxed),
                "progress"
            );
        }
    });
    (done, thread)
}

/// How often a worker reports its parts' watermarks to the telemetry.
const WATERMARK_REPORT_EVERY: Duration = Duration::from_millis(100);

/// How often a Kafka worker tells the others its watermark (see [`run_worker`]).
const GOSSIP_EVERY: Duration = Duration::from_millis(100);

/// One worker's whole run; returns whether it stopped early.
///
/// Each worker holds one capability at its watermark: the least watermark of its parts (Kafka
/// partitions; a file, stdin or the generator is one part) that hold it back. A Kafka partition
/// that has sat at its end for the idle timeout does not; when none of a worker's partitions
/// does, the worker follows the greatest watermark any worker has announced (a tiny broadcast
/// dataflow), so that idle partitions never hold the results back, and an event that then
/// arrives below the worker's capability is late.
fn run_worker(
    worker: &mut timely::worker::Worker,
    options: &RunOptions,
    telemetry: &Arc<Telemetry>,
    log_operators: bool,
    outputs: Outputs,
    resumed_below: Option<u64>,
    stop_frontier: &AtomicU64,
) -> Result<bool, RunError> {
    let index = worker.index();
    let peers = worker.peers();
    let config = options.logi1;
    if log_operators {
        // Before the dataflows are built: the log names operators as they are created.
        log_activations(worker, &telemetry.metrics);
    }
    let outputs = Rc::new(RefCell::new(outputs));
    let sink_errors: Rc<RefCell<Option<SinkError>>> = Rc::new(RefCell::new(None));
    // Opened before the dataflow is built, but a failure is reported only after this worker has
    // taken part in the dataflow (else the other workers would wait for it forever).
    let feed = Feed::open(&options.input, index, peers);

    let probe = ProbeHandle::new();
    let durable_probe = ProbeHandle::new();
    let ((mut events_input, events_capability), (mut letters_input, letters_capability)) =
        worker.dataflow::<u64, _, _>(|scope| {
            let (events_input, events) = scope.new_unordered_input::<Event>();
            let (letters_input, letters) = scope.new_unordered_input::<DeadLetter>();
            let mut extra_written = Vec::new();
            let results = match options.logi2 {
                None => logi1(events, &config),
                Some(logi2_config) => {
                    let outputs2 = logi2(events, &config, &logi2_config);
                    let sink = Rc::clone(&outputs);
                    let count = Arc::clone(telemetry);
                    extra_written.push(final_deltas(
                        outputs2.forecasts.inner.probe_with(&probe),
                        "ForecastsSink",
                        move |time, rows: &[(ForecastRow, isize)]| {
                            let written =
                                sink.borrow_mut()
                                    .write_changes(ChangeLog::Forecasts, time, rows);
                            count
                                .totals
                                .forecasts
                                .fetch_add(written as u64, Ordering::Relaxed);
                            count.wrote("forecasts", time, written);
                            count.live.apply_forecasts(rows);
                        },
                    ));
                    let sink = Rc::clone(&outputs);
                    let count = Arc::clone(telemetry);
                    let print = options.print_alerts;
                    let print_from = options.print_alerts_from_ms;
                    extra_written.push(final_deltas(
                        outputs2.alerts.inner.probe_with(&probe),
                        "ForecastAlertsSink",
                        move |time, rows: &[(ForecastAlertRow, isize)]| {
                            let written = sink.borrow_mut().write_changes(
                                ChangeLog::ForecastAlerts,
                                time,
                                rows,
                            );
                            count
                                .totals
                                .forecast_alerts
                                .fetch_add(written as u64, Ordering::Relaxed);
                            count.wrote("forecast_alerts", time, written);
                            count.live.apply_forecast_alerts(rows);
                            if print && written > 0 {
                                for (row, diff) in rows
                                    .iter()
                                    .filter(|(row, _)| row.window_start >= print_from)
                                {
                                    terminal::print_forecast_alert(row, *diff);
                                }
                            }
                        },
                    ));
                    outputs2.logi1
                }
            };
            if let Some(rules) = options.anomaly.as_ref() {
                let alerts = anomaly_rules(results.windows.clone(), rules);
                extra_written.push(anomaly_sink(alerts, &probe, &outputs, telemetry, options));
            }

            let sink = Rc::clone(&outputs);
            let count = Arc::clone(telemetry);
            let windows_written = final_deltas(
                results.windows.inner.probe_with(&probe),
                "WindowsSink",
                move |time, rows: &[(WindowRow, isize)]| {
                    let written = sink
                        .borrow_mut()
                        .write_changes(ChangeLog::Windows, time, rows);
                    count
                        .totals
                        .windows
                        .fetch_add(written as u64, Ordering::Relaxed);
                    count.wrote("windows", time, written);
                    let untracked = count.live.apply_windows(rows);
                    count.metrics.untracked_rows.inc_by(untracked);
                },
            );

            let sink = Rc::clone(&outputs);
            let count = Arc::clone(telemetry);
            let print = options.print_alerts;
            let print_from = options.print_alerts_from_ms;
            let alerts_written = final_deltas(
                results.alerts.inner.probe_with(&probe),
                "AlertsSink",
                move |time, rows: &[(AlertRow, isize)]| {
                    let written = sink
                        .borrow_mut()
                        .write_changes(ChangeLog::Alerts, time, rows);
                    count
                        .totals
                        .alerts
                        .fetch_add(written as u64, Ordering::Relaxed);
                    count.wrote("alerts", time, written);
                    count.live.apply_zscore_alerts(rows);
                    if print && written > 0 {
                        for (row, diff) in rows
                            .iter()
                            .filter(|(row, _)| row.window_start >= print_from)
                        {
                            terminal::print_alert(row, *diff);
                        }
                    }
                },
            );

            // Dead letters are written as they arrive; the operator holds no capability, so
            // its output frontier passes a time once every letter at it has been written.
            let sink = Rc::clone(&outputs);
            let count = Arc::clone(telemetry);
            let letters_written = letters
                .unary_frontier::<timely::container::CapacityContainerBuilder<Vec<()>>, _, _, _>(
                    Exchange::new(|_: &DeadLetter| 0),
                    "DeadLetterSink",
                    move |_capability, _info| {
                        move |(input, _frontier), _output| {
                            let mut sink = sink.borrow_mut();
                            input.for_each(|_capability, batch| {
                                count.wrote_dead_letters(batch.len());
                                for letter in batch.drain(..) {
                                    sink.write_dead_letter(&letter);
                                }
                            });
                        }
                    },
                );

            durable(
                scope.concatenate(
                    [windows_written, alerts_written, letters_written]
                        .into_iter()
                        .chain(extra_written),
                ),
                Rc::clone(&outputs),
                options.flush_every,
                Rc::clone(&sink_errors),
            )
            .probe_with(&durable_probe);
            (events_input, letters_input)
        });

    // Watermark gossip between Kafka workers (see above): each announces its watermark; every
    // worker keeps the greatest it has heard.
    let heard = Rc::new(std::cell::Cell::new(0u64));
    let (mut gossip_input, gossip_capability) = {
        let heard = Rc::clone(&heard);
        worker.dataflow::<u64, _, _>(|scope| {
            let (input, announced) = scope.new_unordered_input::<Millis>();
            announced
                .broadcast()
                .sink(Pipeline, "WatermarkGossip", move |(input, _frontier)| {
                    input.for_each(|_capability, batch| {
                        for mark in batch.drain(..) {
                            heard.set(heard.get().max(mark));
                        }
                    });
                });
            input
        })
    };
    let mut gossip_capability = Some(gossip_capability);

    let mut capability = events_capability;
    let mut letters_capability = letters_capability;
    let mut feed = match feed {
        Ok(feed) => feed,
        Err(error) => {
            // Stop everyone, finish the dataflow, then report.
            options.stop.store(true, Ordering::Relaxed);
            drop((capability, letters_capability, gossip_capability));
            while worker.step_or_park(None) {}
            return Err(error);
        }
    };
    let kafka = matches!(feed, Feed::Kafka(_));
    let parts = feed.parts();
    let mut marks = PartWatermarks::new(parts, options.disorder_ms);
    let mut batch: Vec<(u64, Event)> = Vec::with_capacity(BATCH_LINES);
    let mut letters: Vec<DeadLetter> = Vec::new();
    let mut line = Vec::with_capacity(512);
    let mut stopped_early = false;
    let part_names: Vec<(String, Option<i32>)> = (0..parts)
        .map(
            |part| match feed.kafka().and_then(|k| k.topic_partition(part)) {
                Some((topic, partition)) => (topic.to_string(), Some(partition)),
                None => (feed.name().to_string(), None),
            },
        )
        .collect();
    let mut part_counters: Vec<PartCounter> = part_names
        .iter()
        .map(|(source, _)| PartCounter::new(&telemetry.metrics, source))
        .collect();
    let mut last_watermark_report: Option<Instant> = None;
    // Generated events have no byte offset: dead letters name their sequence number instead.
    let mut generated = 0u64;
    let mut allowed: Vec<bool> = vec![true; parts];
    let mut frontier_ms: Millis = 0;
    let mut last_gossip = Instant::now();
    let mut last_commit = Instant::now();
    // The greatest durable output frontier seen: outputs below it are written and acknowledged.
    let mut durable_frontier = resumed_below.unwrap_or(0);
    let commit_every = options.flush_every.max(Duration::from_secs(1));
    let horizon = config.state_horizon_ms();

    'reading: loop {
        if options.stop.load(Ordering::Relaxed) {
            stopped_early = true;
            if kafka {
                // A stopped Kafka run will be resumed: what is final now is written, what is
                // not (results past the output frontier, which closing the input would
                // release) is not, and no commit covers it.
                let final_below = probe
                    .with_frontier(|f| f.first().copied())
                    .unwrap_or(u64::MAX);
                stop_frontier.fetch_min(final_below, Ordering::SeqCst);
            }
            break;
        }
        if parts == 0 {
            // A Kafka worker with no partition (more workers than partitions) only computes.
            break;
        }
        let mut finished = false;
        let mut idle = false;
        let mut read = 0u64;
        let mut late = 0u64;
        let cap_time = *capability.time();
        // A part far ahead of the worker's watermark waits (its messages stay in the broker
        // or in librdkafka's bounded prefetch queue), so state stays bounded.
        for (part, allow) in allowed.iter_mut().enumerate() {
            *allow = marks.current(part) <= frontier_ms.saturating_add(MAX_LAG_MS);
        }
        while batch.len() + letters.len() < BATCH_LINES {
            let (part, event, offset) = match feed.next(&mut line, &|part| allowed[part])? {
                Next::Done => {
                    finished = true;
                    break;
                }
                Next::Idle { clock_ms } => {
                    // As if an event at the source's clock had been seen.
                    if let Some(clock_ms) = clock_ms {
                        marks.advance_all_to(clock_ms.saturating_sub(options.disorder_ms));
                    }
                    idle = true;
                    break;
                }
                Next::Event(event) => {
                    line.clear();
                    read += 1;
                    part_counters[0].line();
                    generated += 1;
                    (0, event, generated - 1)
                }
                Next::Line { part, offset } => {
                    read += 1;
                    part_counters[part].line();
                    match parse_line(&line) {
                        Ok(event) => (part, event, offset),
                        Err(rejection) => {
                            letters.push(dead_letter(rejection, &line, &part_names[part], offset));
                            continue;
                        }
                    }
                }
            };
            let ts = event.ts();
            let time = config.timely_time(ts);
            if time >= cap_time && marks.observe(part, ts) {
                part_counters[part].event(&event);
                batch.push((time, event));
            } else {
                late += 1;
                part_counters[part].late();
                // A generated event has no line as read: its JSON form stands in for it.
                if line.is_empty() {
                    event.write_json(&mut line);
                }
                letters.push(dead_letter(
                    Rejection::Late,
                    &line,
                    &part_names[part],
                    offset,
                ));
            }
        }
        telemetry
            .totals
            .lines_read
            .fetch_add(read, Ordering::Relaxed);
        telemetry
            .totals
            .events_in
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        telemetry
            .totals
            .dead_letters
            .fetch_add(letters.len() as u64, Ordering::Relaxed);
        telemetry.totals.late.fetch_add(late, Ordering::Relaxed);
        for counter in part_counters.iter_mut() {
            counter.flush();
        }
        for letter in &letters {
            telemetry
                .metrics
                .dead_letters
                .with_label_values(&[letter.reason.as_str(), letter.source.as_str()])
                .inc();
        }

        // Send the batch, one session per timely time (a batch spans few window starts).
        send_by_time(&mut events_input, &capability, &mut batch);
        if !letters.is_empty() {
            letters_input
                .activate()
                .session(&letters_capability)
                .give_iterator(letters.drain(..));
        }
        if finished {
            break 'reading;
        }
        let holding = marks.least(|part| feed.holds_watermark(part));
        frontier_ms = match holding {
            Some(least) => least,
            None => marks.greatest().max(heard.get()),
        };
        let frontier = config.timely_time(frontier_ms);
        if frontier > *capability.time() {
            capability.downgrade(&frontier);
            letters_capability.downgrade(&frontier);
            telemetry
                .frontier_clock
                .advanced(index, frontier, Instant::now());
        }
        if last_watermark_report.is_none_or(|at| at.elapsed() >= WATERMARK_REPORT_EVERY) {
            last_watermark_report = Some(Instant::now());
            for (part, (source, _)) in part_names.iter().enumerate() {
                if marks.max_seen(part).is_some() {
                    let watermark = if feed.holds_watermark(part) {
                        marks.current(part)
                    } else {
                        frontier_ms
                    };
                    telemetry.report_watermark(source, index, part, watermark);
                }
            }
        }
        if kafka {
            if holding.is_some() && last_gossip.elapsed() >= GOSSIP_EVERY {
                last_gossip = Instant::now();
                if let Some(gossip) = gossip_capability.as_ref() {
                    gossip_input.activate().session(gossip).give(frontier_ms);
                }
            }
            if last_commit.elapsed() >= commit_every {
                last_commit = Instant::now();
                if let Some(durable) = durable_probe.with_frontier(|f| f.first().copied()) {
                    durable_frontier = durable_frontier
                        .max(durable)
                        .min(stop_frontier.load(Ordering::SeqCst));
                }
                if let Some(source) = feed.kafka() {
                    for part in 0..parts {
                        source.checkpoint(part, marks.max_seen(part));
                    }
                    source.commit(durable_frontier, horizon);
                }
            }
        }
        worker.step_or_park(idle.then_some(Duration::from_millis(if kafka { 1 } else { 20 })));
        // Let the dataflow catch up before reading further ahead.
        let behind = frontier.saturating_sub(MAX_LAG_MS);
        while probe.less_than(&behind) && !options.stop.load(Ordering::Relaxed) {
            worker.step_or_park(Some(Duration::from_millis(1)));
        }
    }
    drop(capability);
    drop(letters_capability);
    drop(gossip_capability.take());
    telemetry
        .frontier_clock
        .advanced(index, u64::MAX, Instant::now());
    while worker.step_or_park(None) {}
    let finished = outputs.borrow_mut().finish();
    if let Some(error) = sink_errors.borrow_mut().take() {
        return Err(error.into());
    }
    finished?;
    if let Some(source) = feed.kafka() {
        // Everything is written: commit what the last finite durable frontier allows (not the
        // end of the input: a later run that resumes continues the stream from there).
        for part in 0..parts {
            source.checkpoint(part, marks.max_seen(part));
        }
        let durable_frontier = durable_frontier.min(stop_frontier.load(Ordering::SeqCst));
        source.commit_final(durable_frontier, horizon, Duration::from_secs(10));
    }
    Ok(stopped_early)
}

/// Writes the alert rules' deltas to `anomaly_alerts.jsonl`, counts raises and clears, and
/// prints them when the run prints alerts (changes at or after `print_alerts_from_ms`).
fn anomaly_sink<'scope>(
    alerts: VecCollection<'scope, u64, AnomalyAlertRow, isize>,
    probe: &ProbeHandle<u64>,
    outputs: &Rc<RefCell<Outputs>>,
    telemetry: &Arc<Telemetry>,
    options: &RunOptions,
) -> StreamVec<'scope, u64, ()> {
    let sink = Rc::clone(outputs);
    let count = Arc::clone(telemetry);
    let print = options.print_alerts;
    let print_from = options.print_alerts_from_ms;
    final_deltas(
        alerts.inner.probe_with(probe),
        "AnomalyAlertsSink",
        move |time, rows: &[(AnomalyAlertRow, isize)]| {
            let written = sink
                .borrow_mut()
                .write_changes(ChangeLog::AnomalyAlerts, time, rows);
            count.live.apply_rule_alerts(rows);
            if written == 0 {
                return;
            }
            count.wrote("anomaly_alerts", time, written);
            let raised = rows.iter().filter(|(_, diff)| *diff > 0).count() as u64;
            count
                .totals
                .anomaly_raised
                .fetch_add(raised, Ordering::Relaxed);
            count
                .totals
                .anomaly_cleared
                .fetch_add(rows.len() as u64 - raised, Ordering::Relaxed);
            if print && time >= print_from {
                for (row, diff) in rows {
                    terminal::print_anomaly_alert(row, time, *diff);
                }
            }
        },
    )
}

fn dead_letter(
    rejection: Rejection,
    bytes: &[u8],
    (source, partition): &(String, Option<i32>),
    offset: u64,
) -> DeadLetter {
    DeadLetter {
        reason: rejection.reason(),
        raw: String::from_utf8_lossy(bytes).into_owned(),
        source: source.clone(),
        offset,
        partition: *partition,
    }
}

/// Worker threads of this process under `config`.
fn local_workers(config: &timely::Config) -> usize {
    match &config.communication {
        timely::CommunicationConfig::Thread => 1,
        timely::CommunicationConfig::Process(n) | timely::CommunicationConfig::ProcessBinary(n) => {
            *n
        }
        timely::CommunicationConfig::Cluster { threads, .. } => *threads,
    }
}

/// The alert rules a run can raise (their `tidewatch_active_alerts` series start at 0).
fn rule_names(options: &RunOptions) -> Vec<String> {
    let mut rules = vec![tidewatch_dataflows::logi1::DELIVERY_DURATION_Z.to_string()];
    if options.logi2.is_some() {
        rules.extend(
            [Series::Demand, Series::DeliveryDuration].map(|series| series.rule().to_string()),
        );
    }
    if let Some(anomaly) = &options.anomaly {
        rules.extend(anomaly.rules.iter().map(|rule| rule.name.to_string()));
    }
    rules
}
