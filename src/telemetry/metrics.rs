//! The Prometheus metrics of a run: families, their names and labels, and the text rendering.
//!
//! Names follow the Prometheus conventions: the `tidewatch_` prefix, base units in the name
//! (`_seconds`), `_total` on counters and only on counters, snake_case labels. Rendering uses
//! the classic text exposition format (0.0.4), which `promtool check metrics` validates.

use prometheus::{
    CounterVec, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Buckets of the end-to-end latency histogram, in seconds: 100 µs to 30 s.
pub const LATENCY_BUCKETS: [f64; 17] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Every metric family tidewatch exports, registered in one registry (no global state: each
/// run has its own).
pub struct Metrics {
    registry: Registry,
    /// `tidewatch_events_in_total{type, source}`: valid, on-time events that entered the
    /// dataflow (duplicates included, as in the run summary).
    pub events_in: IntCounterVec,
    /// `tidewatch_lines_read_total{source}`: lines (or generated events) read.
    pub lines_read: IntCounterVec,
    /// `tidewatch_dead_letters_total{reason, source}`: lines sent to the dead-letter output.
    pub dead_letters: IntCounterVec,
    /// `tidewatch_late_events_total{source}`: events below their source's watermark (also
    /// counted as dead letters with reason `late`).
    pub late_events: IntCounterVec,
    /// `tidewatch_watermark_seconds{source}`: the source's watermark, event time as Unix seconds.
    pub watermark: GaugeVec,
    /// `tidewatch_watermark_lag_seconds{source}`: wall-clock time minus the source's watermark.
    pub watermark_lag: GaugeVec,
    /// `tidewatch_outputs_total{kind}`: output rows (change-log deltas) written.
    pub outputs: IntCounterVec,
    /// `tidewatch_active_alerts{rule}`: alerts active now (see the dashboard's `/api/alerts`).
    pub active_alerts: IntGaugeVec,
    /// `tidewatch_operator_activation_seconds_total{operator, address}`: time timely spent
    /// scheduled in each operator, summed over this process's workers.
    pub activation_seconds: CounterVec,
    /// `tidewatch_operator_activations_total{operator, address}`: times each operator ran.
    pub activations: IntCounterVec,
    /// `tidewatch_end_to_end_latency_seconds`: from the instant the input watermark passed a
    /// result's time to the instant the result was handed to its sink.
    pub latency: Histogram,
    /// `tidewatch_workers`: worker threads of this process.
    pub workers: IntGauge,
    /// `tidewatch_uptime_seconds`: wall-clock seconds since the run started.
    pub uptime: Gauge,
    /// `tidewatch_dashboard_clients`: open live-dashboard event streams.
    pub dashboard_clients: IntGauge,
    /// `tidewatch_scrapes_total`: renders of `/metrics` (lets a test see its own scrapes).
    pub scrapes: IntCounter,
    /// `tidewatch_untracked_warehouses_total`: window rows of warehouses beyond the live view's
    /// limit (not shown on the dashboard; every output still has them).
    pub untracked_rows: IntCounter,
    /// `tidewatch_build_info{version}`, always 1.
    _build_info: IntGaugeVec,
}

/// Creates a family and registers it; the names are constants, so failure is a bug.
macro_rules! family {
    ($registry:expr, $kind:ty, $name:expr, $help:expr) => {{
        let family = <$kind>::with_opts(Opts::new($name, $help)).expect($name);
        $registry.register(Box::new(family.clone())).expect($name);
        family
    }};
    ($registry:expr, $kind:ty, $name:expr, $help:expr, $labels:expr) => {{
        let family = <$kind>::new(Opts::new($name, $help), $labels).expect($name);
        $registry.register(Box::new(family.clone())).expect($name);
        family
    }};
}

impl Metrics {
    /// Creates and registers every family.
    ///
    /// # Panics
    /// Never with the constant names and labels below (a duplicate or invalid name would be a
    /// bug caught by every test that builds a run).
    pub fn new() -> Self {
        let registry = Registry::new();
        let r = &registry;
        let latency = Histogram::with_opts(
            HistogramOpts::new(
                "tidewatch_end_to_end_latency_seconds",
                "From the instant the input watermark passed a result's time (the read of the \
                 event that made it final) to the instant the result was handed to its sink.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .expect("latency histogram");
        registry
            .register(Box::new(latency.clone()))
            .expect("latency histogram");
        let build_info = family!(
            r,
            IntGaugeVec,
            "tidewatch_build_info",
            "Always 1; the version of tidewatch that serves these metrics.",
            &["version"]
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        Metrics {
            events_in: family!(
                r,
                IntCounterVec,
                "tidewatch_events_in_total",
                "Valid, on-time events that entered the dataflow, by event type and source.",
                &["type", "source"]
            ),
            lines_read: family!(
                r,
                IntCounterVec,
                "tidewatch_lines_read_total",
                "Lines (or generated events) read, by source.",
                &["source"]
            ),
            dead_letters: family!(
                r,
                IntCounterVec,
                "tidewatch_dead_letters_total",
                "Lines sent to the dead-letter output, by reason and source.",
                &["reason", "source"]
            ),
            late_events: family!(
                r,
                IntCounterVec,
                "tidewatch_late_events_total",
                "Events below their source's watermark when they arrived, by source.",
                &["source"]
            ),
            watermark: family!(
                r,
                GaugeVec,
                "tidewatch_watermark_seconds",
                "The source's watermark (event time, Unix seconds): the least over its parts.",
                &["source"]
            ),
            watermark_lag: family!(
                r,
                GaugeVec,
                "tidewatch_watermark_lag_seconds",
                "Wall-clock time minus the source's watermark, in seconds.",
                &["source"]
            ),
            outputs: family!(
                r,
                IntCounterVec,
                "tidewatch_outputs_total",
                "Output rows (change-log deltas, +1 and -1) written, by output.",
                &["kind"]
            ),
            active_alerts: family!(
                r,
                IntGaugeVec,
                "tidewatch_active_alerts",
                "Alerts active now, by rule.",
                &["rule"]
            ),
            activation_seconds: family!(
                r,
                CounterVec,
                "tidewatch_operator_activation_seconds_total",
                "Time spent running each timely operator, summed over this process's workers.",
                &["operator", "address"]
            ),
            activations: family!(
                r,
                IntCounterVec,
                "tidewatch_operator_activations_total",
                "Times each timely operator was scheduled, over this process's workers.",
                &["operator", "address"]
            ),
            latency,
            workers: family!(
                r,
                IntGauge,
                "tidewatch_workers",
                "Worker threads in this process."
            ),
            uptime: family!(
                r,
                Gauge,
                "tidewatch_uptime_seconds",
                "Wall-clock seconds since the run started."
            ),
            dashboard_clients: family!(
                r,
                IntGauge,
                "tidewatch_dashboard_clients",
                "Open live-dashboard event streams."
            ),
            scrapes: family!(
                r,
                IntCounter,
                "tidewatch_scrapes_total",
                "Renders of /metrics."
            ),
            untracked_rows: family!(
                r,
                IntCounter,
                "tidewatch_untracked_window_rows_total",
                "Window rows of warehouses beyond the live view's limit (still in every output)."
            ),
            registry,
            _build_info: build_info,
        }
    }

    /// Renders every family in the Prometheus text format.
    pub fn render(&self) -> String {
        self.scrapes.inc();
        let mut buffer = Vec::with_capacity(16 * 1024);
        let encoder = TextEncoder::new();
        if let Err(error) = encoder.encode(&self.registry.gather(), &mut buffer) {
            // Only an I/O error of the buffer (impossible for a Vec) or an invalid family
            // (a bug) end here; serve what was written.
            tracing::error!(%error, "cannot render the metrics");
        }
        String::from_utf8_lossy(&buffer).into_owned()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_end_in_total_and_only_counters_do() {
        let metrics = Metrics::new();
        metrics
            .events_in
            .with_label_values(&["order", "generator"])
            .inc_by(3);
        metrics.latency.observe(0.002);
        metrics.active_alerts.with_label_values(&["r"]).set(1);
        let text = metrics.render();
        let mut types = 0;
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            types += 1;
            let mut parts = line.split_whitespace().skip(2);
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(name.starts_with("tidewatch_"), "{line}");
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
        }
        assert!(types >= 5, "{text}");
        assert!(
            text.contains(r#"tidewatch_events_in_total{source="generator",type="order"} 3"#),
            "{text}"
        );
        assert!(text.contains("tidewatch_end_to_end_latency_seconds_bucket{le=\"0.0025\"} 1"));
    }
}
