//! LOGI-1, the reference dataflow (SPEC §3): delivery durations, per-minute windows per
//! warehouse, and the `delivery_duration_z` alert.
//!
//! # Circuit
//! ```text
//! events --partition--> orders ------dedup(order_id)--+--------------------------------\
//!                   \                                  \                                \
//!                    +-> delivered --dedup(order_id)--> interval_join(7 d) --> durations -+
//!                    \                                                                   |
//!                     +-> temperatures --dedup(warehouse, window)---------------------->-+
//!                                                                                        v
//!                        tumbling(60 s) per warehouse --> windows (collection, at window_end)
//!                                                               |
//!                        rolling_stats(30 min) --> zscore_alerts --> alerts (collection)
//! ```
//!
//! Time: events travel at the timely time `ts - ts % time_grid_ms` (a minute by default, a second
//! for live sources), so that they move in few, large batches; each exact `ts` travels in the
//! data. A window's
//! rows are final once the frontier passes the window's end, one grid step after the watermark
//! reaches it.
//! Window rows and alerts take effect at `window_end` and are never retracted, so both outputs
//! are append-only change logs of final rows.

use differential_dataflow::{AsCollection, VecCollection};
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::{Map, Partition};
use timely::dataflow::operators::Concat;
use timely::dataflow::StreamVec;

use tidewatch_operators::dedup::dedup;
use tidewatch_operators::event::{DeliveryStatus, Event, FiniteF64, Millis, Text};
use tidewatch_operators::interval_join::{interval_join, route_hash};
use tidewatch_operators::numeric::compensated_sum;
use tidewatch_operators::rolling_stats::rolling_stats;
use tidewatch_operators::tumbling::{tumbling, WindowAggregate};
use tidewatch_operators::zscore::{zscore_alerts, ZScoreRule};

/// Default of [`Logi1Config::time_grid_ms`]: the window, for throughput (a replayed file).
pub const DEFAULT_TIME_GRID_MS: Millis = 60_000;

/// The grid for live sources, where results should follow the watermark closely: a window's
/// rows are final one second after the watermark passes its end, instead of one minute. It
/// costs throughput (about half, on a replayed file: BENCHMARKS.md).
pub const LIVE_TIME_GRID_MS: Millis = 1_000;

/// Name of the alert rule, as written in alert rows.
pub const DELIVERY_DURATION_Z: &str = "delivery_duration_z";

/// Parameters of LOGI-1; [`Default`] is the SPEC.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Logi1Config {
    /// Window length (SPEC: 60000 ms).
    pub window_ms: Millis,
    /// The grid of the timely timestamp: events travel at their `ts` rounded down to it, and a
    /// source's capability moves in its steps. A window's rows are final once the frontier has
    /// passed the window's end, which happens one grid step after the watermark reaches it: so
    /// a finer grid gives results sooner, and a coarser one fewer, larger batches (more
    /// throughput). It must divide `window_ms`. Results do not depend on it.
    pub time_grid_ms: Millis,
    /// Largest `delivery.ts - order.ts` that joins (SPEC: 7 days).
    pub join_max_ms: Millis,
    /// Length of the history before a window (SPEC: 30 minutes).
    pub history_ms: Millis,
    /// The alert rule (SPEC: n >= 10, |z| > 3).
    pub rule: ZScoreRule,
}

impl Default for Logi1Config {
    fn default() -> Self {
        Logi1Config {
            window_ms: 60_000,
            time_grid_ms: DEFAULT_TIME_GRID_MS,
            join_max_ms: 604_800_000,
            history_ms: 1_800_000,
            rule: ZScoreRule::default(),
        }
    }
}

impl Logi1Config {
    /// The timely time at which an event of time `ts` travels: `ts` rounded down to the grid.
    pub fn timely_time(&self, ts: Millis) -> u64 {
        ts - ts % self.time_grid_ms
    }

    /// Checks that the grid divides the window (see [`Logi1Config::time_grid_ms`]).
    pub fn validate(&self) -> Result<(), String> {
        if self.window_ms == 0
            || self.time_grid_ms == 0
            || !self.window_ms.is_multiple_of(self.time_grid_ms)
        {
            return Err(format!(
                "the time grid ({} ms) must be positive and divide the window ({} ms)",
                self.time_grid_ms, self.window_ms
            ));
        }
        Ok(())
    }

    /// How far ahead of its event time an event can still change an output: an output at time
    /// `t` depends only on events with `ts >= t - state_horizon_ms()` (the join reaches back
    /// `join_max_ms` from a delivery, the statistics `history_ms` from a window, plus window
    /// rounding). A restart that replays every event from `F - state_horizon_ms()` on rebuilds
    /// every output at or after `F` exactly.
    ///
    /// ```
    /// use tidewatch_dataflows::logi1::Logi1Config;
    /// let config = Logi1Config::default();
    /// assert_eq!(config.state_horizon_ms(), 7 * 86_400_000 + 30 * 60_000 + 3 * 60_000);
    /// ```
    pub fn state_horizon_ms(&self) -> Millis {
        self.join_max_ms + self.history_ms + 3 * self.window_ms
    }
}

/// A window row (SPEC §4), without its `time` and `diff`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WindowRow {
    /// Warehouse.
    pub warehouse: Text,
    /// Inclusive start of the window.
    pub window_start: Millis,
    /// Exclusive end of the window.
    pub window_end: Millis,
    /// Orders with `ts` in the window.
    pub orders: u64,
    /// Joined (order, delivered) pairs with the delivery's `ts` in the window.
    pub delivered: u64,
    /// Mean duration of those pairs; `None` (JSON `null`) when `delivered` = 0.
    pub mean_duration_ms: Option<FiniteF64>,
    /// Temperature readings in the window.
    pub readings: u64,
    /// Mean of their values; `None` when `readings` = 0.
    pub mean_temp: Option<FiniteF64>,
}

/// An alert row (SPEC §4), without its `time` and `diff`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AlertRow {
    /// The rule that fired: `delivery_duration_z`.
    pub rule: Text,
    /// Warehouse.
    pub warehouse: Text,
    /// Start of the window that alerted.
    pub window_start: Millis,
    /// The window's mean delivery duration.
    pub value: FiniteF64,
    /// Mean of the history windows' means.
    pub mu: FiniteF64,
    /// Their population standard deviation.
    pub sigma: FiniteF64,
    /// `(value - mu) / sigma`.
    pub z: FiniteF64,
    /// Number of history windows.
    pub n: u64,
}

/// The outputs of LOGI-1: change logs of final rows, each at its `window_end`.
pub struct Logi1Outputs<'scope> {
    /// One row per (warehouse, window) with orders + delivered + readings > 0.
    pub windows: VecCollection<'scope, u64, WindowRow, isize>,
    /// One row per alerting (warehouse, window).
    pub alerts: VecCollection<'scope, u64, AlertRow, isize>,
}

/// What one record adds to its window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Contribution {
    /// An order.
    Order,
    /// A joined pair with this duration.
    Delivered {
        /// `delivery.ts - order.ts`.
        duration_ms: Millis,
    },
    /// A temperature reading.
    Temperature(FiniteF64),
}

/// Folds a window's contributions; temperatures are summed in sorted order so the mean does not
/// depend on arrival order or worker count.
#[derive(Default)]
pub struct WindowAccumulator {
    orders: u64,
    delivered: u64,
    duration_sum_ms: u128,
    temperatures: Vec<FiniteF64>,
}

/// A finished window, before it becomes a [`WindowRow`].
pub struct WindowSummary {
    orders: u64,
    delivered: u64,
    mean_duration_ms: Option<FiniteF64>,
    readings: u64,
    mean_temp: Option<FiniteF64>,
}

impl WindowAggregate for WindowAccumulator {
    type Input = Contribution;
    type Output = WindowSummary;

    fn insert(&mut self, input: Contribution) {
        match input {
            Contribution::Order => self.orders += 1,
            Contribution::Delivered { duration_ms } => {
                self.delivered += 1;
                self.duration_sum_ms += u128::from(duration_ms);
            }
            Contribution::Temperature(value) => self.temperatures.push(value),
        }
    }

    fn finish(mut self) -> Option<WindowSummary> {
        let mean_duration_ms = (self.delivered > 0)
            .then(|| FiniteF64::new(self.duration_sum_ms as f64 / self.delivered as f64))
            .flatten();
        self.temperatures.sort_unstable();
        let readings = self.temperatures.len() as u64;
        // A mean of finite values can overflow to infinity only for sums beyond f64::MAX; such
        // a window reports `null` rather than a number JSON cannot carry.
        let mean_temp = (readings > 0)
            .then(|| {
                FiniteF64::new(
                    compensated_sum(self.temperatures.iter().map(|v| v.get())) / readings as f64,
                )
            })
            .flatten();
        Some(WindowSummary {
            orders: self.orders,
            delivered: self.delivered,
            mean_duration_ms,
            readings,
            mean_temp,
        })
    }
}

/// Builds LOGI-1 over a stream of validated events.
///
/// `events` must travel at [`Logi1Config::timely_time`] of their `ts`, and no event may arrive
/// after the frontier has passed its time (late events are the sources' business).
///
/// # Examples
/// ```
/// use timely::dataflow::operators::{Capture, ToStream};
/// use timely::dataflow::operators::capture::Extract;
/// use tidewatch_dataflows::logi1::{logi1, Logi1Config};
/// use tidewatch_operators::validate::parse_line;
///
/// let lines = [
///     r#"{"type":"order","order_id":"o-1","warehouse":"wh-1","sku":"s","qty":1,"amount":5,"ts":1000}"#,
///     r#"{"type":"delivery","order_id":"o-1","warehouse":"wh-1","carrier":"c","status":"delivered","ts":61000}"#,
/// ];
/// let config = Logi1Config::default();
/// let events: Vec<_> = lines.iter().map(|l| parse_line(l.as_bytes()).unwrap()).collect();
/// let captured = timely::example(move |scope| {
///     let stream = events.to_stream(scope); // all at time 0: fine, 0 <= every window start
///     logi1(stream, &config).windows.inner.capture()
/// });
/// let mut rows: Vec<_> = captured.extract().into_iter().flat_map(|(_, v)| v).collect();
/// rows.sort();
/// assert_eq!(rows.len(), 2);
/// assert_eq!((rows[0].0.orders, rows[1].0.delivered), (1, 1));
/// assert_eq!(rows[1].0.mean_duration_ms.map(|m| m.get()), Some(60_000.0));
/// ```
pub fn logi1<'scope>(
    events: StreamVec<'scope, u64, Event>,
    config: &Logi1Config,
) -> Logi1Outputs<'scope> {
    if let Err(problem) = config.validate() {
        panic!("invalid LOGI-1 config: {problem}");
    }
    let window_ms = config.window_ms;
    let mut parts = events.partition(4, |event| {
        let part = match &event {
            Event::Order(_) => 0,
            Event::Delivery(d) if d.status == DeliveryStatus::Delivered => 1,
            Event::Sensor(s) if s.metric == "temperature" => 2,
            _ => 3, // other delivery steps and sensor metrics do not enter LOGI-1's results
        };
        (part, event)
    });
    parts.truncate(3);
    let temperatures = parts
        .pop()
        .unwrap_or_else(|| unreachable!("partition made 4 streams"));
    let delivered = parts
        .pop()
        .unwrap_or_else(|| unreachable!("partition made 4 streams"));
    let orders = parts
        .pop()
        .unwrap_or_else(|| unreachable!("partition made 4 streams"));

    let orders = dedup(orders, |event| match event {
        Event::Order(o) => route_hash(&o.order_id),
        other => route_hash(other),
    })
    .flat_map(|event| match event {
        Event::Order(o) => Some((o.order_id, o.ts, o.warehouse)),
        _ => None,
    });
    let delivered = dedup(delivered, |event| match event {
        Event::Delivery(d) => route_hash(&d.order_id),
        other => route_hash(other),
    })
    .flat_map(|event| match event {
        Event::Delivery(d) => Some((d.order_id, d.ts, ())),
        _ => None,
    });
    let temperatures = dedup(temperatures, move |event| match event {
        Event::Sensor(s) => route_hash(&(&s.warehouse, s.ts - s.ts % window_ms)),
        other => route_hash(other),
    })
    .flat_map(|event| match event {
        Event::Sensor(s) => Some((s.warehouse, s.ts, Contribution::Temperature(s.value))),
        _ => None,
    });

    let order_counts = orders
        .clone()
        .map(|(_, ts, warehouse)| (warehouse, ts, Contribution::Order));
    let durations = interval_join(
        orders,
        delivered,
        config.join_max_ms,
        |_order_id, (order_ts, warehouse), (delivery_ts, ())| {
            (
                warehouse.clone(),
                delivery_ts,
                Contribution::Delivered {
                    duration_ms: delivery_ts - order_ts,
                },
            )
        },
    );

    let windows = tumbling::<Text, WindowAccumulator>(
        order_counts.concat(durations).concat(temperatures),
        window_ms,
    )
    .map(move |(warehouse, window_start, summary)| {
        let window_end = window_start + window_ms;
        let row = WindowRow {
            warehouse,
            window_start,
            window_end,
            orders: summary.orders,
            delivered: summary.delivered,
            mean_duration_ms: summary.mean_duration_ms,
            readings: summary.readings,
            mean_temp: summary.mean_temp,
        };
        (row, window_end, 1isize)
    })
    .as_collection();

    let points = windows.clone().flat_map(|row| {
        row.mean_duration_ms
            .filter(|_| row.delivered > 0)
            .map(|mean| ((row.warehouse, row.window_start), mean))
    });
    // A window's row arrives at its end; it must outlive the windows whose history holds it.
    let stats = rolling_stats(points, config.history_ms, config.history_ms + 2 * window_ms);
    let alerts =
        zscore_alerts(stats, config.rule).map(|((warehouse, window_start), alert)| AlertRow {
            rule: Text::const_new(DELIVERY_DURATION_Z),
            warehouse,
            window_start,
            value: alert.value,
            mu: alert.mu,
            sigma: alert.sigma,
            z: alert.z,
            n: alert.n,
        });

    Logi1Outputs { windows, alerts }
}
