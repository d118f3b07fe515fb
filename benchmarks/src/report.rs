//! The report of a latency run: JSON for machines, a summary for people.
//!
//! # Examples
//! ```
//! use tidewatch_benchmarks::latency::Report;
//! use tidewatch_benchmarks::report::BenchReport;
//!
//! let mut report = BenchReport::example();
//! report.processing = Report { p50_us: 300, p90_us: 500, p99_us: 900, p999_us: 2_000,
//!                              p9999_us: 4_000, max_us: 5_000, count: 1_500 };
//! let json = serde_json::to_value(&report).unwrap();
//! assert_eq!(json["processing"]["p99_us"], 900);
//! assert!(report.summary().contains("p99 0.900 ms"));
//! ```

use serde::{Deserialize, Serialize};

use crate::latency::Report;
use crate::openloop::{LoadOptions, LoadResult};

/// The machine a report was measured on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Cores available to this process.
    pub cores: usize,
    /// CPU model (`/proc/cpuinfo`), or `unknown`.
    pub cpu: String,
    /// Operating system and architecture.
    pub os: String,
}

impl Machine {
    /// One line for a benchmark's header: `machine: CPU (N cores, OS)`.
    pub fn describe(&self) -> String {
        format!("machine: {} ({} cores, {})", self.cpu, self.cores, self.os)
    }

    /// This machine.
    pub fn this() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_string())
            })
            .unwrap_or_else(|| "unknown".to_string());
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

/// One latency run, as `report.json` has it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// `generator-clock` (event time from the generator, faster than the wall clock) or
    /// `real-time` (event time = wall clock at generation).
    pub mode: String,
    /// Worker threads.
    pub workers: usize,
    /// Events per second offered by the open-loop schedule.
    pub rate_offered: f64,
    /// Events per second actually sent during the measurement.
    pub rate_achieved: f64,
    /// Seconds measured.
    pub duration_s: f64,
    /// Seconds of load before the measurement.
    pub warmup_s: f64,
    /// Disorder bound D, ms.
    pub disorder_ms: u64,
    /// Warehouses generated.
    pub warehouses: usize,
    /// Grid of the timely time, ms.
    pub time_grid_ms: u64,
    /// Events due during the measurement.
    pub events_due: u64,
    /// Events sent during the measurement.
    pub events_sent: u64,
    /// Events due but never sent: the dataflow did not keep up.
    pub dropped: u64,
    /// Late events (below their worker's watermark; they change no result).
    pub late: u64,
    /// Window rows written.
    pub windows: u64,
    /// Alerts written.
    pub alerts: u64,
    /// Seconds of event time per second of wall-clock time during the measurement.
    pub speedup: f64,
    /// A pause injected into the sink: `[at_s, length_ms]` (`null`: none).
    pub sink_pause: Option<(f64, f64)>,
    /// Processing latency: from the scheduled instant the input frontier passed t to the
    /// instant every output at t was written.
    pub processing: Report,
    /// Event-to-alert latency: from the due instant of the last event of a window to the
    /// instant its row (or alert) was written.
    pub event_to_alert: Report,
    /// Resident set at the end, MB.
    pub rss_mb: f64,
    /// Peak resident set of the process, MB.
    pub peak_rss_mb: f64,
    /// tidewatch version.
    pub version: String,
    /// Where it ran.
    pub machine: Machine,
}

impl BenchReport {
    /// The report of `result`, run with `options`.
    pub fn new(result: &LoadResult, options: &LoadOptions) -> Self {
        BenchReport {
            mode: if options.real_time {
                "real-time".to_string()
            } else {
                "generator-clock".to_string()
            },
            workers: result.workers,
            rate_offered: result.rate_offered,
            rate_achieved: result.rate_achieved,
            duration_s: result.duration.as_secs_f64(),
            warmup_s: options.warmup.as_secs_f64(),
            disorder_ms: options.disorder_ms,
            warehouses: options.generator.warehouses,
            time_grid_ms: options.time_grid_ms,
            events_due: result.events_due,
            events_sent: result.events_sent,
            dropped: result.dropped,
            late: result.late,
            windows: result.windows,
            alerts: result.alerts,
            speedup: result.speedup,
            sink_pause: options
                .sink_pause
                .map(|p| (p.at.as_secs_f64(), p.length.as_secs_f64() * 1_000.0)),
            processing: result.processing.report(),
            event_to_alert: result.event_to_alert.report(),
            rss_mb: result.rss_kib as f64 / 1024.0,
            peak_rss_mb: result.peak_rss_kib as f64 / 1024.0,
            version: env!("CARGO_PKG_VERSION").to_string(),
            machine: Machine::this(),
        }
    }

    /// A made-up report, for examples and tests.
    pub fn example() -> Self {
        BenchReport {
            mode: "generator-clock".to_string(),
            workers: 2,
            rate_offered: 100_000.0,
            rate_achieved: 99_990.0,
            duration_s: 30.0,
            warmup_s: 5.0,
            disorder_ms: 5_000,
            warehouses: 8,
            time_grid_ms: 60_000,
            events_due: 3_000_000,
            events_sent: 2_999_700,
            dropped: 300,
            late: 0,
            windows: 12_000,
            alerts: 100,
            speedup: 3_000.0,
            sink_pause: None,
            processing: Report::default(),
            event_to_alert: Report::default(),
            rss_mb: 300.0,
            peak_rss_mb: 320.0,
            version: env!("CARGO_PKG_VERSION").to_string(),
            machine: Machine {
                cores: 2,
                cpu: "example".to_string(),
                os: "linux x86_64".to_string(),
            },
        }
    }

    /// The human summary: rates, both latencies, losses, memory.
    pub fn summary(&self) -> String {
        let pause = self.sink_pause.map_or(String::new(), |(at, ms)| {
            format!("\n  injected:        a {ms:.0} ms sink pause at {at:.1} s")
        });
        format!(
            "LOGI-1 open-loop latency, {workers} worker(s), {mode} ({speedup:.0}x event time), D = {d} ms, grid {grid} ms, {wh} warehouses\n\
             \x20 rate:            offered {offered:.0} events/s, achieved {achieved:.0} events/s over {dur:.1} s (after {warm:.1} s warm-up){pause}\n\
             \x20 processing:      {processing}\n\
             \x20 event-to-alert:  {e2a}\n\
             \x20 events:          {sent} sent of {due} due, {dropped} dropped (not sent in time), {late} late\n\
             \x20 outputs:         {windows} window rows, {alerts} alerts\n\
             \x20 memory:          RSS {rss:.0} MB at the end, peak {peak:.0} MB",
            workers = self.workers,
            mode = self.mode,
            speedup = self.speedup,
            d = self.disorder_ms,
            grid = self.time_grid_ms,
            wh = self.warehouses,
            offered = self.rate_offered,
            achieved = self.rate_achieved,
            dur = self.duration_s,
            warm = self.warmup_s,
            processing = self.processing.line(),
            e2a = self.event_to_alert.line(),
            sent = self.events_sent,
            due = self.events_due,
            dropped = self.dropped,
            late = self.late,
            windows = self.windows,
            alerts = self.alerts,
            rss = self.rss_mb,
            peak = self.peak_rss_mb,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON report has the fields the issue and the README name, with these names.
    #[test]
    fn json_has_the_documented_fields() {
        let json = serde_json::to_value(BenchReport::example()).expect("serialize");
        for field in [
            "rate_offered",
            "rate_achieved",
            "workers",
            "dropped",
            "late",
        ] {
            assert!(json.get(field).is_some(), "{field} missing");
        }
        for section in ["processing", "event_to_alert"] {
            for field in [
                "p50_us", "p90_us", "p99_us", "p999_us", "p9999_us", "max_us", "count",
            ] {
                assert!(
                    json[section].get(field).is_some(),
                    "{section}.{field} missing"
                );
            }
        }
        let back: BenchReport = serde_json::from_value(json).expect("round trip");
        assert_eq!(back, BenchReport::example());
    }

    #[test]
    fn summary_names_rates_losses_and_memory() {
        let mut report = BenchReport::example();
        report.sink_pause = Some((15.0, 50.0));
        let text = report.summary();
        for needle in [
            "offered 100000 events/s",
            "achieved 99990 events/s",
            "300 dropped",
            "0 late",
            "peak 320 MB",
            "50 ms sink pause at 15.0 s",
        ] {
            assert!(text.contains(needle), "{needle:?} not in\n{text}");
        }
    }
}
