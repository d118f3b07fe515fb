//! One open-loop latency run of LOGI-1: events injected at fixed instants for a target rate,
//! the two latencies of the report measured in HDR histograms.
//!
//! # The load
//! Each of the W workers generates its share of the built-in generator's traffic (the
//! warehouses with `index % W == worker`) and injects event `j` of its share at the instant
//! `j / (rate / W)` after the common start, fixed in advance by a [`Schedule`]. A worker that is
//! busy or stalled sends the events that fell due meanwhile as soon as it can (at most
//! [`MAX_BATCH`] per step, then it steps the dataflow), so a slow dataflow cannot slow its own
//! load: events due but never sent by the end are reported as `dropped`.
//!
//! Event time comes from the generator (its simulated clock, about 34 events per second of
//! event time per 8 warehouses, so at 100 k events/s one minute of event time passes in about
//! 20 ms), or, in real-time mode, is the wall-clock instant each event is due. Events enter
//! the dataflow as parsed structs: JSON parsing is not part of this run (the throughput mode
//! measures it). Each worker's watermark is the largest `ts` it sent minus D, and its input
//! capability sits at the watermark rounded down to the time grid (`Logi1Config::timely_time`;
//! a minute unless `time_grid_ms` says otherwise), as in `tidewatch run`.
//!
//! # Processing latency
//! For every timely time t (a step of the time grid: a minute of event time by default) the run notes the *scheduled* instant at
//! which the input frontier passes t: the due instant of the event that lifts the last
//! worker's watermark past t. Worker 0 probes the sinks' output (after the rows are written)
//! after every step; when that frontier passes t, `now − scheduled(t)` is one sample. Measuring
//! from the schedule rather than from when a worker got round to sending is what keeps the
//! histogram free of coordinated omission: a stall delays the sends, not the schedule, so it
//! shows in full in the tail.
//!
//! # Event-to-alert latency
//! For every window row and alert written, `now − due instant of the last generated event that
//! went into its (warehouse, window)`. It includes the disorder bound D (a window closes only
//! once an event D past its end has been seen), the time grid (a window's rows are final once the
//! input frontier has passed its end time: one more grid step of event time, see BENCHMARKS.md), the dataflow and the sink write. It does not include what happens
//! before an event is generated (a producer, Kafka, parsing) or after the row is written (a
//! consumer). In the default mode event time runs faster than the wall clock, so D and the
//! grid weigh `1 / speedup` of their event-time length; real-time mode shows them at full size.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use timely::dataflow::operators::vec::UnorderedInput;
use timely::dataflow::operators::{Concat, Probe};
use timely::dataflow::ProbeHandle;

use tidewatch_connectors::generator::{Generator, GeneratorConfig};
use tidewatch_connectors::input::send_by_time;
use tidewatch_connectors::sink::{encode_change, final_deltas};
use tidewatch_connectors::watermark::Watermark;
use tidewatch_dataflows::logi1::{logi1, AlertRow, Logi1Config, WindowRow, DEFAULT_TIME_GRID_MS};
use tidewatch_operators::event::{DeliveryStatus, Event, Millis, Text};

use crate::hlog::IntervalHistograms;
use crate::latency::Latencies;
use crate::rss;
use crate::schedule::Schedule;

/// Most events a worker sends before it steps the dataflow again.
pub const MAX_BATCH: usize = 4_096;

/// LOGI-1's window length (SPEC §3).
const WINDOW_MS: Millis = 60_000;

/// Length of one interval of the interval logs.
pub const LOG_INTERVAL: Duration = Duration::from_secs(1);

/// A pause injected into the sink, to check that a stall shows in the tail.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SinkPause {
    /// When, from the start of the measurement.
    pub at: Duration,
    /// How long the sink sleeps.
    pub length: Duration,
}

/// Settings of one open-loop run.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Events per second offered, over all workers.
    pub rate: f64,
    /// Length of the measurement.
    pub duration: Duration,
    /// Load before the measurement starts (not measured).
    pub warmup: Duration,
    /// Worker threads.
    pub workers: usize,
    /// Disorder bound D of SPEC §2.
    pub disorder_ms: Millis,
    /// Event time = the wall-clock instant each event is due (else the generator's clock).
    pub real_time: bool,
    /// The traffic (seed, warehouses, incidents).
    pub generator: GeneratorConfig,
    /// Pause the sink once during the measurement.
    pub sink_pause: Option<SinkPause>,
    /// Write the window and alert rows here (`windows.jsonl`, `alerts.jsonl`); else they are
    /// encoded into a buffer that is dropped.
    pub outputs_dir: Option<PathBuf>,
    /// Print a progress line to stderr every second.
    pub progress: bool,
    /// Grid of the timely time (see `Logi1Config::time_grid_ms`).
    pub time_grid_ms: Millis,
}

impl LoadOptions {
    /// Defaults for `rate`: 30 s measured after 5 s of warm-up, 2 workers, D = 5 s, the
    /// default generator (seed 42, 8 warehouses).
    pub fn new(rate: f64) -> Self {
        LoadOptions {
            rate,
            duration: Duration::from_secs(30),
            warmup: Duration::from_secs(5),
            workers: 2,
            disorder_ms: 5_000,
            real_time: false,
            generator: GeneratorConfig::default(),
            sink_pause: None,
            outputs_dir: None,
            progress: false,
            time_grid_ms: DEFAULT_TIME_GRID_MS,
        }
    }
}

/// Errors of a run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The options cannot run.
    #[error("{0}")]
    Invalid(String),
    /// An output file could not be created or written.
    #[error("cannot write {path}: {source}")]
    Output {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Timely could not start.
    #[error("cannot start the workers: {0}")]
    Timely(String),
    /// A worker panicked (a bug).
    #[error("a worker failed: {0}")]
    Worker(String),
}

/// What one run measured.
pub struct LoadResult {
    /// The options it ran with.
    pub rate_offered: f64,
    /// Events sent during the measurement, per second of it.
    pub rate_achieved: f64,
    /// Worker threads.
    pub workers: usize,
    /// Length of the measurement.
    pub duration: Duration,
    /// Events due during the measurement.
    pub events_due: u64,
    /// Events sent during the measurement.
    pub events_sent: u64,
    /// Events due before the end but never sent (the load was ahead of the dataflow).
    pub dropped: u64,
    /// Events that arrived below their worker's watermark (late; they change no result).
    pub late: u64,
    /// Window rows written (whole run).
    pub windows: u64,
    /// Alerts written (whole run).
    pub alerts: u64,
    /// Event time per wall-clock time during the measurement (1 in real-time mode).
    pub speedup: f64,
    /// Processing latency samples (one per step of the time grid).
    pub processing: Latencies,
    /// Event-to-alert latency samples (one per window row and alert).
    pub event_to_alert: Latencies,
    /// The processing latencies per second of the measurement.
    pub processing_log: IntervalHistograms,
    /// The event-to-alert latencies per second of the measurement.
    pub event_to_alert_log: IntervalHistograms,
    /// Wall-clock instant the measurement started.
    pub measured_from: SystemTime,
    /// Resident set size at the end, KiB.
    pub rss_kib: u64,
    /// Peak resident set size of the process so far, KiB.
    pub peak_rss_kib: u64,
}

/// State the workers share for measuring (not for the dataflow: that talks through timely).
struct Shared {
    start: Instant,
    workers: usize,
    /// Per timely time: how many workers' watermarks have passed it, and the latest scheduled
    /// instant (since `start`) at which one of them did.
    passes: Mutex<BTreeMap<u64, (usize, Duration)>>,
    /// Per (window start, warehouse): the latest due instant of an event that went into it.
    generated: Mutex<BTreeMap<(Millis, Text), Duration>>,
    /// Events sent so far by all workers (for progress).
    injected: AtomicU64,
    due: AtomicU64,
    sent: AtomicU64,
    late: AtomicU64,
    /// Event time reached by worker 0's watermark at the start and end of the measurement.
    event_time_at_measure_start: AtomicU64,
    event_time_at_end: AtomicU64,
    windows: AtomicU64,
    alerts: AtomicU64,
    failed: AtomicBool,
}

/// What worker 0 measured.
struct Measured {
    processing: Latencies,
    event_to_alert: Latencies,
    processing_log: IntervalHistograms,
    event_to_alert_log: IntervalHistograms,
}

/// Runs the open-loop load `options` describes against LOGI-1 and returns what it measured.
pub fn run_load(options: &LoadOptions) -> Result<LoadResult, LoadError> {
    let schedule =
        Schedule::new(options.rate / options.workers.max(1) as f64).ok_or_else(|| {
            LoadError::Invalid(format!("rate must be positive, got {}", options.rate))
        })?;
    if options.workers == 0 {
        return Err(LoadError::Invalid("workers must be at least 1".into()));
    }
    if options.duration.is_zero() {
        return Err(LoadError::Invalid("duration must be positive".into()));
    }
    if options.generator.warehouses < options.workers {
        return Err(LoadError::Invalid(format!(
            "{} warehouses cannot be shared by {} workers (each worker generates whole warehouses)",
            options.generator.warehouses, options.workers
        )));
    }
    let mut generator_config = options.generator.clone();
    // The generator's disorder stays within D, so no event is late by construction.
    generator_config.jitter_ms = generator_config.jitter_ms.min(options.disorder_ms / 2);
    generator_config
        .validate()
        .map_err(|error| LoadError::Invalid(error.to_string()))?;
    Logi1Config {
        time_grid_ms: options.time_grid_ms,
        ..Logi1Config::default()
    }
    .validate()
    .map_err(LoadError::Invalid)?;
    let sinks = Sinks::open(options.outputs_dir.as_ref())?;

    // Every worker starts its schedule at the same instant, once all have built the dataflow.
    let shared = Arc::new(Shared {
        start: Instant::now() + Duration::from_millis(200),
        workers: options.workers,
        passes: Mutex::new(BTreeMap::new()),
        generated: Mutex::new(BTreeMap::new()),
        injected: AtomicU64::new(0),
        due: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        late: AtomicU64::new(0),
        event_time_at_measure_start: AtomicU64::new(0),
        event_time_at_end: AtomicU64::new(0),
        windows: AtomicU64::new(0),
        alerts: AtomicU64::new(0),
        failed: AtomicBool::new(false),
    });
    let base_epoch_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
        + 200;
    let measured: Arc<Mutex<Option<Measured>>> = Arc::new(Mutex::new(None));
    let sinks = Arc::new(Mutex::new(Some(sinks)));
    let worker_options = options.clone();
    let worker_shared = Arc::clone(&shared);
    let worker_measured = Arc::clone(&measured);
    let guards = timely::execute(timely::Config::process(options.workers), move |worker| {
        let sinks = if worker.index() == 0 {
            sinks.lock().ok().and_then(|mut slot| slot.take())
        } else {
            None
        };
        let result = run_worker(
            worker,
            &worker_options,
            &generator_config,
            schedule,
            &worker_shared,
            sinks,
            base_epoch_ms,
        );
        if let Some(result) = result {
            if let Ok(mut slot) = worker_measured.lock() {
                *slot = Some(result);
            }
        }
    })
    .map_err(LoadError::Timely)?;
    for result in guards.join() {
        result.map_err(LoadError::Worker)?;
    }
    if shared.failed.load(Ordering::Relaxed) {
        return Err(LoadError::Output {
            path: options
                .outputs_dir
                .as_ref()
                .map_or_else(|| "outputs".to_string(), |d| d.display().to_string()),
            source: std::io::Error::other("a write to the outputs failed"),
        });
    }
    let measured = measured
        .lock()
        .ok()
        .and_then(|mut slot| slot.take())
        .ok_or_else(|| LoadError::Worker("worker 0 reported no measurement".into()))?;
    let seconds = options.duration.as_secs_f64();
    let events_due = shared.due.load(Ordering::Relaxed);
    let events_sent = shared.sent.load(Ordering::Relaxed);
    let event_time = shared
        .event_time_at_end
        .load(Ordering::Relaxed)
        .saturating_sub(shared.event_time_at_measure_start.load(Ordering::Relaxed));
    let (rss_kib, peak_rss_kib) = rss::current_and_peak_kib().unwrap_or((0, 0));
    Ok(LoadResult {
        rate_offered: options.rate,
        rate_achieved: events_sent as f64 / seconds,
        workers: options.workers,
        duration: options.duration,
        events_due,
        events_sent,
        dropped: events_due.saturating_sub(events_sent),
        late: shared.late.load(Ordering::Relaxed),
        windows: shared.windows.load(Ordering::Relaxed),
        alerts: shared.alerts.load(Ordering::Relaxed),
        speedup: if options.real_time {
            1.0
        } else {
            event_time as f64 / 1_000.0 / seconds
        },
        processing: measured.processing,
        event_to_alert: measured.event_to_alert,
        processing_log: measured.processing_log,
        event_to_alert_log: measured.event_to_alert_log,
        measured_from: SystemTime::now() - shared.start.elapsed() + options.warmup,
        rss_kib,
        peak_rss_kib,
    })
}

/// Where worker 0 writes rows: files, or a buffer that is cleared.
struct Sinks {
    windows: Box<dyn Write + Send>,
    alerts: Box<dyn Write + Send>,
    line: Vec<u8>,
}

impl Sinks {
    fn open(dir: Option<&PathBuf>) -> Result<Self, LoadError> {
        let Some(dir) = dir else {
            return Ok(Sinks {
                windows: Box::new(std::io::sink()),
                alerts: Box::new(std::io::sink()),
                line: Vec::with_capacity(512),
            });
        };
        let create = |name: &str| -> Result<Box<dyn Write + Send>, LoadError> {
            let path = dir.join(name);
            let file = std::fs::create_dir_all(dir)
                .and_then(|()| File::create(&path))
                .map_err(|source| LoadError::Output {
                    path: path.display().to_string(),
                    source,
                })?;
            Ok(Box::new(BufWriter::with_capacity(1 << 16, file)))
        };
        Ok(Sinks {
            windows: create("windows.jsonl")?,
            alerts: create("alerts.jsonl")?,
            line: Vec::with_capacity(512),
        })
    }

    /// Encodes and writes `rows` at `time`, then flushes: the rows are written when this
    /// returns. Returns false if a write failed.
    fn write<R: serde::Serialize>(&mut self, alerts: bool, time: u64, rows: &[(R, isize)]) -> bool {
        let out = if alerts {
            &mut self.alerts
        } else {
            &mut self.windows
        };
        let mut ok = true;
        for (row, diff) in rows {
            self.line.clear();
            encode_change(row, time, *diff, &mut self.line);
            ok &= out.write_all(&self.line).is_ok();
        }
        ok && out.flush().is_ok()
    }
}

/// The (warehouse, window start) an event adds to, if it adds to a window row.
fn window_key(event: &Event, window_ms: Millis) -> Option<(Millis, Text)> {
    let contributes = match event {
        Event::Order(_) => true,
        Event::Delivery(d) => d.status == DeliveryStatus::Delivered,
        Event::Sensor(s) => s.metric == "temperature",
    };
    contributes.then(|| {
        let ts = event.ts();
        (ts - ts % window_ms, Text::from(event.warehouse()))
    })
}

/// Moves an event to event time `ts` (real-time mode).
fn retime(event: &mut Event, ts: Millis) {
    match event {
        Event::Order(o) => o.ts = ts,
        Event::Delivery(d) => d.ts = ts,
        Event::Sensor(s) => s.ts = ts,
    }
}

/// Records event-to-alert latencies for the (warehouse, window) of each row written.
type RecordLatencies = dyn Fn(&mut dyn Iterator<Item = (&Text, Millis)>);

/// A row the bench's sink writes: JSON for the change log, and the window it completes.
trait BenchRow: serde::Serialize + timely::ExchangeData + Ord {
    /// The (warehouse, window start) of the row.
    fn window(&self) -> (&Text, Millis);
}

impl BenchRow for WindowRow {
    fn window(&self) -> (&Text, Millis) {
        (&self.warehouse, self.window_start)
    }
}

impl BenchRow for AlertRow {
    fn window(&self) -> (&Text, Millis) {
        (&self.warehouse, self.window_start)
    }
}

/// The sink of one output (windows or alerts) on worker 0: writes its rows, counts them, and
/// records their event-to-alert latencies. Returns `final_deltas`' progress stream.
fn bench_sink<'scope, R: BenchRow>(
    updates: timely::dataflow::StreamVec<'scope, u64, (R, u64, isize)>,
    name: &str,
    alerts: bool,
    sinks: Rc<RefCell<Option<Sinks>>>,
    shared: Arc<Shared>,
    record: Rc<RecordLatencies>,
) -> timely::dataflow::StreamVec<'scope, u64, ()> {
    final_deltas(updates, name, move |time, rows: &[(R, isize)]| {
        if let Some(sinks) = sinks.borrow_mut().as_mut() {
            if !sinks.write(alerts, time, rows) {
                shared.failed.store(true, Ordering::Relaxed);
            }
        }
        let count = if alerts {
            &shared.alerts
        } else {
            &shared.windows
        };
        count.fetch_add(rows.len() as u64, Ordering::Relaxed);
        record(&mut rows.iter().map(|(row, _)| row.window()));
    })
}

/// One worker's run. Worker 0 returns what it measured.
fn run_worker(
    worker: &mut timely::worker::Worker,
    options: &LoadOptions,
    generator_config: &GeneratorConfig,
    schedule: Schedule,
    shared: &Arc<Shared>,
    sinks: Option<Sinks>,
    base_epoch_ms: Millis,
) -> Option<Measured> {
    let index = worker.index();
    let peers = worker.peers();
    let config = Logi1Config {
        time_grid_ms: options.time_grid_ms,
        ..Logi1Config::default()
    };
    let warmup = options.warmup;
    let end = options.warmup + options.duration;
    let measures = index == 0;

    let processing = Rc::new(RefCell::new(Latencies::new()));
    let processing_log = Rc::new(RefCell::new(IntervalHistograms::new(LOG_INTERVAL)));
    let event_to_alert = Rc::new(RefCell::new(Latencies::new()));
    let event_to_alert_log = Rc::new(RefCell::new(IntervalHistograms::new(LOG_INTERVAL)));
    let sinks = Rc::new(RefCell::new(sinks));
    let pause = Rc::new(RefCell::new(options.sink_pause));

    let probe = ProbeHandle::new();
    let (mut input, capability) = worker.dataflow::<u64, _, _>(|scope| {
        let (input, events) = scope.new_unordered_input::<Event>();
        let results = logi1(events, &config);

        let record = {
            let shared = Arc::clone(shared);
            let latencies = Rc::clone(&event_to_alert);
            let log = Rc::clone(&event_to_alert_log);
            let pause = Rc::clone(&pause);
            move |warehouse_windows: &mut dyn Iterator<Item = (&Text, Millis)>| {
                let mut now = shared.start.elapsed();
                let pending = *pause.borrow();
                if let Some(p) = pending.filter(|p| now >= warmup + p.at) {
                    std::thread::sleep(p.length);
                    *pause.borrow_mut() = None;
                    now = shared.start.elapsed();
                }
                // Rows written after the load ended come from closing the input, not from the
                // watermark: they are not measured.
                if now < warmup || now >= end {
                    return;
                }
                let Ok(generated) = shared.generated.lock() else {
                    return;
                };
                for (warehouse, window_start) in warehouse_windows {
                    if let Some(due) = generated.get(&(window_start, warehouse.clone())) {
                        if *due >= warmup {
                            let latency = now.saturating_sub(*due);
                            latencies.borrow_mut().record(latency);
                            log.borrow_mut().record(now - warmup, latency);
                        }
                    }
                }
            }
        };
        let record: Rc<RecordLatencies> = Rc::new(record);

        let windows_written = bench_sink(
            results.windows.inner,
            "BenchWindowsSink",
            false,
            Rc::clone(&sinks),
            Arc::clone(shared),
            Rc::clone(&record),
        );
        let alerts_written = bench_sink(
            results.alerts.inner,
            "BenchAlertsSink",
            true,
            Rc::clone(&sinks),
            Arc::clone(shared),
            record,
        );
        windows_written.concat(alerts_written).probe_with(&probe);
        input
    });

    let mut generator = match Generator::for_worker(generator_config.clone(), index, peers) {
        Ok(generator) => generator,
        Err(error) => {
            tracing::error!(%error, "cannot start the generator");
            shared.failed.store(true, Ordering::Relaxed);
            return None;
        }
    };
    let mut capability = Some(capability);
    let mut watermark = Watermark::new(options.disorder_ms);
    let mut batch: Vec<(u64, Event)> = Vec::with_capacity(MAX_BATCH);
    let mut keys: HashMap<(Millis, Text), Duration> = HashMap::new();
    let mut passes: Vec<(u64, Duration)> = Vec::new();
    // The timely time this worker's capability is (to be) lifted to: its watermark on the grid
    // (0 until the first event).
    let mut capability_time: u64 = 0;
    let mut sent: u64 = 0;
    let mut injected_before: u64 = 0;
    let mut measuring = false;
    let mut recorded_below: u64 = 0;
    let mut next_progress = warmup.min(Duration::from_secs(1));
    let mut progress_base = (Duration::ZERO, 0u64);

    // Wait for the common start.
    while Instant::now() < shared.start {
        worker.step_or_park(Some(shared.start.saturating_duration_since(Instant::now())));
    }

    loop {
        let now = shared.start.elapsed();
        if now >= end {
            break;
        }
        if !measuring && now >= warmup {
            measuring = true;
            if index == 0 {
                shared
                    .event_time_at_measure_start
                    .store(watermark.current(), Ordering::Relaxed);
            }
        }
        let due = schedule.due_by(now);
        let mut late = 0u64;
        while sent < due && batch.len() < MAX_BATCH {
            let Some((_, mut event)) = generator.next() else {
                break;
            };
            let due_at = schedule.due(sent);
            sent += 1;
            if options.real_time {
                retime(&mut event, base_epoch_ms + due_at.as_millis() as Millis);
            }
            let ts = event.ts();
            let time = config.timely_time(ts);
            if time < capability_time || !watermark.observe(ts) {
                late += 1;
                continue;
            }
            if let Some(key) = window_key(&event, config.window_ms) {
                // One map entry per (window, warehouse) and batch; shared once per batch.
                let slot = keys.entry(key).or_insert(due_at);
                *slot = (*slot).max(due_at);
            }
            batch.push((time, event));
            let lifted = config.timely_time(watermark.current());
            if lifted > capability_time {
                if capability_time > 0 {
                    let mut t = capability_time;
                    while t < lifted {
                        passes.push((t, due_at));
                        t += config.time_grid_ms;
                    }
                }
                capability_time = lifted;
            }
        }
        if late > 0 {
            shared.late.fetch_add(late, Ordering::Relaxed);
        }
        shared
            .injected
            .fetch_add(sent - injected_before, Ordering::Relaxed);
        injected_before = sent;
        if !keys.is_empty() {
            if let Ok(mut generated) = shared.generated.lock() {
                for (key, due_at) in keys.drain() {
                    let slot = generated.entry(key).or_insert(due_at);
                    *slot = (*slot).max(due_at);
                }
            }
        }
        if !passes.is_empty() {
            if let Ok(mut all) = shared.passes.lock() {
                for (time, due_at) in passes.drain(..) {
                    let slot = all.entry(time).or_insert((0, Duration::ZERO));
                    slot.0 += 1;
                    slot.1 = slot.1.max(due_at);
                }
            }
        }
        if let Some(cap) = capability.as_mut() {
            send_by_time(&mut input, cap, &mut batch);
            if capability_time > *cap.time() {
                cap.downgrade(&capability_time);
            }
        }
        // Caught up: park until the next event is due (a step with work returns sooner);
        // behind: step once and send what has fallen due meanwhile.
        let now = shared.start.elapsed();
        let wait = if sent >= schedule.due_by(now) {
            schedule
                .due(sent)
                .saturating_sub(now)
                .min(Duration::from_millis(1))
        } else {
            Duration::ZERO
        };
        worker.step_or_park(Some(wait));

        if measures {
            let now = shared.start.elapsed();
            record_processing(
                &probe,
                shared,
                warmup,
                now,
                &mut recorded_below,
                &processing,
                &processing_log,
            );
            if options.progress && now >= next_progress {
                let (at, count) = progress_base;
                let sent_all = shared.injected.load(Ordering::Relaxed);
                let due_all = schedule.due_by(now) * peers as u64;
                let rate = (sent_all.saturating_sub(count)) as f64
                    / (now.saturating_sub(at)).as_secs_f64().max(1e-9);
                let phase = if now < warmup { "warm-up" } else { "measuring" };
                eprintln!(
                    "  [{:>5.1}s / {:.0}s] {phase:<9} offered {:>9.0}/s  achieved {:>9.0}/s  backlog {:>7}  processing p99 {:>8.3} ms  event-to-alert p99 {:>9.3} ms",
                    now.as_secs_f64(),
                    end.as_secs_f64(),
                    options.rate,
                    rate,
                    due_all.saturating_sub(sent_all),
                    processing.borrow().report().p99_us as f64 / 1_000.0,
                    event_to_alert.borrow().report().p99_us as f64 / 1_000.0,
                );
                progress_base = (now, sent_all);
                next_progress = now + Duration::from_secs(1);
            }
        }
        if shared.failed.load(Ordering::Relaxed) {
            break;
        }
    }
    if index == 0 {
        shared
            .event_time_at_end
            .store(watermark.current(), Ordering::Relaxed);
    }
    account(shared, &schedule, sent, warmup, end);
    // Close the input; the rest of the results flush, unmeasured.
    drop(capability.take());
    drop(input);
    let last = shared.start.elapsed();
    while worker.step_or_park(None) {
        if measures {
            record_processing(
                &probe,
                shared,
                warmup,
                last,
                &mut recorded_below,
                &processing,
                &processing_log,
            );
        }
    }
    if !measures {
        return None;
    }
    let take = |rc: Rc<RefCell<Latencies>>| std::mem::take(&mut *rc.borrow_mut());
    let take_log = |rc: Rc<RefCell<IntervalHistograms>>| {
        std::mem::replace(&mut *rc.borrow_mut(), IntervalHistograms::new(LOG_INTERVAL))
    };
    Some(Measured {
        processing: take(processing),
        event_to_alert: take(event_to_alert),
        processing_log: take_log(processing_log),
        event_to_alert_log: take_log(event_to_alert_log),
    })
}

/// Adds this worker's events due and sent during the measurement `[warmup, end)` to the totals.
fn account(shared: &Shared, schedule: &Schedule, sent: u64, warmup: Duration, end: Duration) {
    let first = schedule.due_by(warmup.saturating_sub(Duration::from_nanos(1)));
    let first = if warmup.is_zero() { 0 } else { first };
    let due = schedule.due_by(end.saturating_sub(Duration::from_nanos(1)));
    shared
        .due
        .fetch_add(due.saturating_sub(first), Ordering::Relaxed);
    shared
        .sent
        .fetch_add(sent.min(due).saturating_sub(first), Ordering::Relaxed);
}

/// Records a processing-latency sample for every timely time the sinks' frontier has passed
/// since the last call, whose scheduled pass instant lies in the measurement.
fn record_processing(
    probe: &ProbeHandle<u64>,
    shared: &Shared,
    warmup: Duration,
    end_of_load: Duration,
    recorded_below: &mut u64,
    latencies: &Rc<RefCell<Latencies>>,
    log: &Rc<RefCell<IntervalHistograms>>,
) {
    let frontier = probe
        .with_frontier(|f| f.first().copied())
        .unwrap_or(u64::MAX);
    if frontier <= *recorded_below {
        return;
    }
    *recorded_below = frontier;
    let now = shared.start.elapsed();
    // Rows at times the frontier has passed are written: their windows' entries can go (a
    // window's rows are at its end, one window after its start).
    if let Ok(mut generated) = shared.generated.lock() {
        while let Some(entry) = generated.first_entry() {
            if entry.key().0.saturating_add(2 * WINDOW_MS) >= frontier {
                break;
            }
            entry.remove();
        }
    }
    let Ok(mut passes) = shared.passes.lock() else {
        return;
    };
    while let Some(entry) = passes.first_entry() {
        if *entry.key() >= frontier {
            break;
        }
        let (workers, scheduled) = entry.remove();
        // Times every worker's watermark passed inside the measurement; not the ones released
        // by closing the input at the end.
        if workers == shared.workers && scheduled >= warmup && scheduled < end_of_load {
            let latency = now.saturating_sub(scheduled);
            latencies.borrow_mut().record(latency);
            log.borrow_mut().record(now - warmup, latency);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick(rate: f64, workers: usize) -> LoadOptions {
        let mut options = LoadOptions::new(rate);
        options.duration = Duration::from_millis(2_000);
        options.warmup = Duration::from_millis(300);
        options.workers = workers;
        options
    }

    /// The accounting holds at 1 and 2 workers: nothing is late (the generator's disorder is
    /// within D), no more is sent than was due, every minute that closed in the measurement
    /// gave a processing sample, and every event-to-alert sample belongs to a written row.
    #[test]
    fn a_short_run_accounts_for_its_events_and_samples() {
        for workers in [1, 2] {
            let result = run_load(&quick(20_000.0, workers)).expect("run");
            assert_eq!(result.late, 0);
            assert_eq!(result.events_due, 40_000, "{workers} workers");
            assert!(result.events_sent <= result.events_due);
            assert_eq!(result.dropped, result.events_due - result.events_sent);
            // 20 k events/s is about 10 minutes of event time per second: some 20 closed.
            assert!(
                result.processing.count() >= 5,
                "{}",
                result.processing.count()
            );
            assert!(result.speedup > 100.0, "{}", result.speedup);
            assert!(result.windows > 0);
            assert!(result.event_to_alert.count() > 0);
            assert!(result.event_to_alert.count() <= result.windows + result.alerts);
            assert_eq!(result.processing_log.count(), result.processing.count());
            assert_eq!(
                result.event_to_alert_log.count(),
                result.event_to_alert.count()
            );
        }
    }

    /// Open loop: a 300 ms stall of the sink delays the output of the minutes scheduled to
    /// close during it, and their latency is measured from the schedule, so the stall shows
    /// in the tail (a closed-loop measurement would hide it: the sender stalls too).
    #[test]
    fn a_sink_stall_shows_in_the_tail() {
        let mut options = quick(20_000.0, 2);
        options.sink_pause = Some(SinkPause {
            at: Duration::from_millis(800),
            length: Duration::from_millis(300),
        });
        let result = run_load(&options).expect("run");
        let report = result.processing.report();
        // A minute closes about every 100 ms of wall-clock time here, so the first minute
        // scheduled during the stall waits at least 300 - 100 ms.
        assert!(report.max_us >= 150_000, "{report:?}");
    }

    /// Real-time mode stamps each event with the wall clock at its due instant.
    #[test]
    fn real_time_events_carry_the_wall_clock() {
        let dir = std::env::temp_dir().join(format!("tidewatch-openloop-{}", std::process::id()));
        let mut options = quick(5_000.0, 2);
        options.real_time = true;
        options.duration = Duration::from_millis(500);
        options.outputs_dir = Some(dir.clone());
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        let result = run_load(&options).expect("run");
        let after = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis() as u64;
        assert_eq!(result.speedup, 1.0);
        assert_eq!(result.late, 0);
        // Closing the input flushes the windows of the run: they lie around the wall clock.
        let windows = std::fs::read_to_string(dir.join("windows.jsonl")).expect("windows");
        let starts: Vec<u64> = windows
            .lines()
            .map(|line| {
                let row: serde_json::Value = serde_json::from_str(line).expect("json");
                row["window_start"].as_u64().expect("window_start")
            })
            .collect();
        assert!(!starts.is_empty());
        for start in starts {
            assert!(
                start + 60_000 > before && start <= after,
                "{start} not within [{before}, {after}]"
            );
        }
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
