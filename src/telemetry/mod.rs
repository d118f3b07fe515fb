//! What a run tells the outside while it runs: Prometheus metrics, the live view behind the
//! dashboard, and the counts of the run summary.
//!
//! One [`Telemetry`] per run, shared (in an `Arc`) by the workers, which count and report
//! their watermarks, worker 0's sinks, which apply every output delta to the [`LiveView`] and
//! time it, and the HTTP server ([`crate::serve`]), which reads. Writers touch shared state once
//! per batch (4096 lines) or per output time, never per event.

pub mod latency;
pub mod live;
pub mod metrics;
pub mod operators;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tidewatch_operators::event::Millis;

use latency::FrontierClock;
use live::LiveView;
use metrics::Metrics;

/// The run's totals (the summary line and `/api/summary`).
#[derive(Debug, Default)]
pub struct Totals {
    /// Lines (or generated events) read.
    pub lines_read: AtomicU64,
    /// Valid, on-time events that entered the dataflow.
    pub events_in: AtomicU64,
    /// Dead letters (malformed and late lines).
    pub dead_letters: AtomicU64,
    /// Of which late.
    pub late: AtomicU64,
    /// Window rows written.
    pub windows: AtomicU64,
    /// LOGI-1 alerts written.
    pub alerts: AtomicU64,
    /// LOGI-2 forecast rows written.
    pub forecasts: AtomicU64,
    /// LOGI-2 forecast alerts written.
    pub forecast_alerts: AtomicU64,
    /// Alert-rule alerts raised.
    pub anomaly_raised: AtomicU64,
    /// Alert-rule alerts cleared.
    pub anomaly_cleared: AtomicU64,
}

/// `/api/summary`: the state of the run at a glance.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The input, as the start-up log names it.
    pub input: String,
    /// Worker threads in this process.
    pub workers: usize,
    /// Wall clock now, Unix ms.
    pub now_ms: Millis,
    /// Wall clock at the start of the run, Unix ms.
    pub started_ms: Millis,
    /// The dataflow's watermark (least over sources), event time, Unix ms.
    pub watermark_ms: Option<Millis>,
    /// `now_ms - watermark_ms`.
    pub watermark_lag_ms: Option<i64>,
    /// Events in.
    pub events_in: u64,
    /// Events in per second over the last few seconds.
    pub events_per_second: f64,
    /// Lines read.
    pub lines_read: u64,
    /// Dead letters.
    pub dead_letters: u64,
    /// Late events.
    pub late: u64,
    /// Window rows written.
    pub windows: u64,
    /// Alerts active now.
    pub alerts_active: usize,
    /// Whether LOGI-2 (forecasts) runs.
    pub logi2: bool,
}

/// The watermarks of one source's parts, by (worker, part).
type PartWatermarks = BTreeMap<(usize, usize), Millis>;

/// Throughput is measured over about this long.
const RATE_SPAN: std::time::Duration = std::time::Duration::from_secs(5);

/// Everything a run reports while it runs (see the module documentation).
pub struct Telemetry {
    /// The Prometheus families.
    pub metrics: std::sync::Arc<Metrics>,
    /// The live view (windows, forecasts, alerts).
    pub live: LiveView,
    /// When each worker's input frontier moved (end-to-end latency).
    pub frontier_clock: FrontierClock,
    /// The run's totals.
    pub totals: Totals,
    input: Mutex<String>,
    /// Every rule the run can raise: its active-alerts series exists (at 0) from the start.
    rules: Mutex<Vec<String>>,
    logi2: std::sync::atomic::AtomicBool,
    started: Instant,
    started_ms: Millis,
    /// Per source, per (worker, part): the part's watermark.
    watermarks: Mutex<BTreeMap<String, PartWatermarks>>,
    /// (instant, events in) samples for the throughput.
    rate: Mutex<VecDeque<(Instant, u64)>>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("totals", &self.totals)
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Telemetry for a run of `workers` worker threads in this process.
    pub fn new(workers: usize) -> Self {
        let metrics = Metrics::new();
        metrics.workers.set(workers as i64);
        Telemetry {
            metrics: std::sync::Arc::new(metrics),
            live: LiveView::new(),
            frontier_clock: FrontierClock::new(workers),
            totals: Totals::default(),
            input: Mutex::new(String::new()),
            rules: Mutex::new(Vec::new()),
            logi2: std::sync::atomic::AtomicBool::new(false),
            started: Instant::now(),
            started_ms: wall_ms(),
            watermarks: Mutex::new(BTreeMap::new()),
            rate: Mutex::new(VecDeque::new()),
        }
    }

    /// Names the input and the alert rules the run can raise (the run does, at its start);
    /// whether LOGI-2 runs is told by its rules being there.
    pub fn describe(&self, input: String, rules: &[String]) {
        if let Ok(mut slot) = self.input.lock() {
            *slot = input;
        }
        let logi2 = rules
            .iter()
            .any(|rule| rule == tidewatch_dataflows::logi2::Series::Demand.rule());
        self.logi2.store(logi2, Ordering::Relaxed);
        if let Ok(mut known) = self.rules.lock() {
            known.clone_from(&rules.to_vec());
        }
    }

    /// Worker `worker`'s part `part` of `source` has its watermark at `watermark_ms`.
    pub fn report_watermark(&self, source: &str, worker: usize, part: usize, watermark_ms: Millis) {
        let Ok(mut table) = self.watermarks.lock() else {
            return;
        };
        match table.get_mut(source) {
            Some(parts) => {
                parts.insert((worker, part), watermark_ms);
            }
            None => {
                table.insert(
                    source.to_string(),
                    BTreeMap::from([((worker, part), watermark_ms)]),
                );
            }
        }
    }

    /// Records the end-to-end latency of `rows` results at timely time `time`, handed to their
    /// sink now: one sample per row.
    pub fn record_latency(&self, time: u64, rows: usize) {
        if rows == 0 {
            return;
        }
        if let Some(passed) = self.frontier_clock.passed(time) {
            let seconds = passed.elapsed().as_secs_f64();
            for _ in 0..rows {
                self.metrics.latency.observe(seconds);
            }
        }
    }

    /// Brings the derived gauges up to date (watermarks, lags, active alerts, uptime); the
    /// server calls it before it renders `/metrics` and on each dashboard tick.
    pub fn refresh(&self) -> Option<Millis> {
        let now_ms = wall_ms();
        let mut least: Option<Millis> = None;
        if let Ok(table) = self.watermarks.lock() {
            for (source, parts) in table.iter() {
                let Some(watermark) = parts.values().min().copied() else {
                    continue;
                };
                least = Some(least.map_or(watermark, |l| l.min(watermark)));
                self.metrics
                    .watermark
                    .with_label_values(&[source])
                    .set(watermark as f64 / 1000.0);
                self.metrics
                    .watermark_lag
                    .with_label_values(&[source])
                    .set((now_ms as f64 - watermark as f64) / 1000.0);
            }
        }
        if let Some(watermark) = least {
            self.live.set_watermark(watermark);
        }
        let by_rule = self.live.active_by_rule();
        // Rules with no active alert go to 0 rather than vanish.
        self.metrics.active_alerts.reset();
        if let Ok(rules) = self.rules.lock() {
            for rule in rules.iter() {
                self.metrics.active_alerts.with_label_values(&[rule]).set(0);
            }
        }
        for (rule, count) in by_rule {
            self.metrics
                .active_alerts
                .with_label_values(&[&rule])
                .set(count);
        }
        self.metrics
            .uptime
            .set(self.started.elapsed().as_secs_f64());
        let events = self.totals.events_in.load(Ordering::Relaxed);
        if let Ok(mut rate) = self.rate.lock() {
            let now = Instant::now();
            rate.push_back((now, events));
            while rate.len() > 2 && now.duration_since(rate[1].0) >= RATE_SPAN {
                rate.pop_front();
            }
        }
        least
    }

    /// Renders `/metrics`.
    pub fn render_metrics(&self) -> String {
        self.refresh();
        self.metrics.render()
    }

    /// The summary of `/api/summary` and the dashboard (call [`Telemetry::refresh`] first).
    pub fn summary(&self) -> Summary {
        let now_ms = wall_ms();
        let watermark_ms = self.live.watermark();
        let events_per_second =
            self.rate
                .lock()
                .ok()
                .map_or(0.0, |rate| match (rate.front(), rate.back()) {
                    (Some((t0, n0)), Some((t1, n1))) if t1 > t0 => {
                        n1.saturating_sub(*n0) as f64 / t1.duration_since(*t0).as_secs_f64()
                    }
                    _ => 0.0,
                });
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Summary {
            input: self.input.lock().map(|s| s.clone()).unwrap_or_default(),
            workers: self.metrics.workers.get() as usize,
            now_ms,
            started_ms: self.started_ms,
            watermark_ms,
            watermark_lag_ms: watermark_ms.map(|w| now_ms as i64 - w as i64),
            events_in: load(&self.totals.events_in),
            events_per_second,
            lines_read: load(&self.totals.lines_read),
            dead_letters: load(&self.totals.dead_letters),
            late: load(&self.totals.late),
            windows: load(&self.totals.windows),
            alerts_active: self.live.active_alerts().len(),
            logi2: self.logi2.load(Ordering::Relaxed),
        }
    }
}

fn wall_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

impl Telemetry {
    /// Counts `rows` output rows of `kind` handed to their sink at timely time `time`, and
    /// their end-to-end latency.
    pub fn wrote(&self, kind: &str, time: u64, rows: usize) {
        if rows == 0 {
            return;
        }
        self.metrics
            .outputs
            .with_label_values(&[kind])
            .inc_by(rows as u64);
        self.record_latency(time, rows);
    }

    /// Counts dead letters written.
    pub fn wrote_dead_letters(&self, rows: usize) {
        if rows > 0 {
            self.metrics
                .outputs
                .with_label_values(&["dead_letters"])
                .inc_by(rows as u64);
        }
    }
}

/// One worker's counts of one part (a Kafka partition, or the file, stdin or generator), added
/// to the shared counters once per batch.
pub struct PartCounter {
    lines_read: prometheus::IntCounter,
    events_in: [prometheus::IntCounter; 3],
    late: prometheus::IntCounter,
    pending_lines: u64,
    pending_events: [u64; 3],
    pending_late: u64,
}

/// The index of an event's type in [`PartCounter`]'s counts.
fn type_index(event: &tidewatch_operators::event::Event) -> usize {
    use tidewatch_operators::event::Event;
    match event {
        Event::Order(_) => 0,
        Event::Delivery(_) => 1,
        Event::Sensor(_) => 2,
    }
}

impl PartCounter {
    /// The counters of a part of `source`.
    pub fn new(metrics: &Metrics, source: &str) -> Self {
        let events = |kind: &str| metrics.events_in.with_label_values(&[kind, source]);
        PartCounter {
            lines_read: metrics.lines_read.with_label_values(&[source]),
            events_in: [events("order"), events("delivery"), events("sensor")],
            late: metrics.late_events.with_label_values(&[source]),
            pending_lines: 0,
            pending_events: [0; 3],
            pending_late: 0,
        }
    }

    /// A line (or generated event) was read.
    pub fn line(&mut self) {
        self.pending_lines += 1;
    }

    /// An event entered the dataflow.
    pub fn event(&mut self, event: &tidewatch_operators::event::Event) {
        self.pending_events[type_index(event)] += 1;
    }

    /// An event was late.
    pub fn late(&mut self) {
        self.pending_late += 1;
    }

    /// Adds the counts so far to the shared counters.
    pub fn flush(&mut self) {
        if self.pending_lines > 0 {
            self.lines_read
                .inc_by(std::mem::take(&mut self.pending_lines));
        }
        for (counter, pending) in self.events_in.iter().zip(self.pending_events.iter_mut()) {
            if *pending > 0 {
                counter.inc_by(std::mem::take(pending));
            }
        }
        if self.pending_late > 0 {
            self.late.inc_by(std::mem::take(&mut self.pending_late));
        }
    }
}
