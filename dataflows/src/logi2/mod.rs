//! LOGI-2: forecasts on top of LOGI-1. Per warehouse, one-step-ahead forecasts of the orders
//! per window (demand) and of the window's mean delivery duration, each with an interval, and
//! the alerts `demand_forecast_deviation` and `delivery_duration_forecast_deviation` when the
//! actual value leaves its interval. README "LOGI-2" states the semantics for users.
//!
//! # Circuit
//! ```text
//! events --> logi1 --> windows --------------------------------------------\
//!       \                                                                   v
//!        +-> delivered --dedup--> tumbling(carrier counts) --> sequence_by_key(warehouse)
//!                                                                 |            |
//!                                                            forecasts      alerts
//! ```
//!
//! # Semantics
//! A warehouse's series are its LOGI-1 window rows in window order (windows without a row are
//! skipped, not filled with zeros). For each row, in order:
//! 1. **Demand**: the forecaster [`Logi2Config::demand_model`] forecasts `orders` from the
//!    previous rows.
//! 2. **Delivery duration** (rows with `delivered > 0`): the forecaster
//!    [`Logi2Config::duration_model`] forecasts `mean_duration_ms` from the previous such rows;
//!    beside it, a linear regression by recursive least squares (forgetting
//!    [`Logi2Config::regression_forgetting`], ridge [`Logi2Config::regression_ridge`]) predicts
//!    it from the window's features: orders in the previous window and in the previous three,
//!    mean temperature (or the last known), hour of day (sine and cosine), and each carrier's
//!    share of the window's `delivered` events. The forecast is the regression's when its MAE over
//!    the last [`Logi2Config::accuracy_window`] windows is lower than the forecaster's (and it has
//!    been scored [`Logi2Config::min_history`] times), else the forecaster's.
//! 3. The interval is `expected ± interval_z × RMSE`, the RMSE of the chosen model's one-step
//!    errors over the last `accuracy_window` windows. The alert fires when the actual lies outside
//!    it, the model has at least `min_history` scored forecasts, and the RMSE is positive.
//! 4. Then every model learns the actual value.
//!
//! Each forecast row and alert takes effect at its `window_end` and is never retracted. Forecast
//! state is per warehouse and sequential, so results do not depend on the number of workers or
//! on arrival order; LOGI-1's outputs are untouched.

mod warehouse;

use std::collections::BTreeMap;

use differential_dataflow::{AsCollection, VecCollection};
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::{Filter, Map};
use timely::dataflow::operators::Concat;
use timely::dataflow::StreamVec;

use tidewatch_operators::dedup::dedup;
use tidewatch_operators::event::{DeliveryStatus, Event, FiniteF64, Millis, Text};
use tidewatch_operators::forecast::model::ModelKind;
use tidewatch_operators::interval_join::route_hash;
use tidewatch_operators::sequence_by_key::sequence_by_key;
use tidewatch_operators::tumbling::{tumbling, WindowAggregate};

use crate::logi1::{logi1, Logi1Config, Logi1Outputs, WindowRow};
pub use warehouse::{CARRIER_SLOTS, DURATION_FEATURES, REGRESSION};

/// Rule name of the demand alert.
pub const DEMAND_FORECAST_DEVIATION: &str = "demand_forecast_deviation";
/// Rule name of the delivery-duration alert.
pub const DELIVERY_DURATION_FORECAST_DEVIATION: &str = "delivery_duration_forecast_deviation";

/// Parameters of LOGI-2; see the module documentation for what each one does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Logi2Config {
    /// The model of the orders per window.
    pub demand_model: ModelKind,
    /// The univariate model of the mean delivery duration.
    pub duration_model: ModelKind,
    /// Season of both series, in windows; 0 = none. The default is none: with one-minute
    /// windows a daily season is 1,440 steps, and the skipped empty windows would shift it.
    pub season: usize,
    /// Half-width of the interval in RMSEs of recent one-step errors.
    pub interval_z: f64,
    /// Windows over which the accuracy (and the interval's RMSE) is taken.
    pub accuracy_window: usize,
    /// Least number of scored forecasts before a model can alert (or the regression be chosen).
    pub min_history: usize,
    /// Forgetting factor of the duration regression.
    pub regression_forgetting: f64,
    /// Ridge penalty of the duration regression.
    pub regression_ridge: f64,
}

impl Default for Logi2Config {
    fn default() -> Self {
        Logi2Config {
            demand_model: ModelKind::Auto,
            duration_model: ModelKind::Auto,
            season: 0,
            interval_z: 4.0,
            accuracy_window: 60,
            min_history: 30,
            regression_forgetting: 0.999,
            regression_ridge: 1.0,
        }
    }
}

impl Logi2Config {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.interval_z.is_finite() && self.interval_z > 0.0) {
            return Err(format!(
                "interval_z {} must be a positive number",
                self.interval_z
            ));
        }
        if self.accuracy_window == 0 {
            return Err("accuracy_window must be at least 1".into());
        }
        if !(self.regression_forgetting > 0.0 && self.regression_forgetting <= 1.0) {
            return Err(format!(
                "regression_forgetting {} must be in (0, 1]",
                self.regression_forgetting
            ));
        }
        if !(self.regression_ridge.is_finite() && self.regression_ridge >= 0.0) {
            return Err(format!(
                "regression_ridge {} must be >= 0",
                self.regression_ridge
            ));
        }
        Ok(())
    }
}

/// Which series a forecast row belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Series {
    /// Orders per window.
    Demand,
    /// Mean delivery duration of the window, in ms.
    DeliveryDuration,
}

impl Series {
    /// The alert rule of the series.
    pub fn rule(self) -> &'static str {
        match self {
            Series::Demand => DEMAND_FORECAST_DEVIATION,
            Series::DeliveryDuration => DELIVERY_DURATION_FORECAST_DEVIATION,
        }
    }
}

/// One forecast, compared with what happened (`forecasts.jsonl`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ForecastRow {
    /// `demand` or `delivery_duration`.
    pub series: Series,
    /// Warehouse.
    pub warehouse: Text,
    /// The window forecast.
    pub window_start: Millis,
    /// What happened: orders, or mean duration in ms.
    pub actual: FiniteF64,
    /// The forecast.
    pub expected: FiniteF64,
    /// Lower end of the interval.
    pub lower: FiniteF64,
    /// Upper end of the interval.
    pub upper: FiniteF64,
    /// The model that made the forecast (for `auto`, the one it chose).
    pub model: Text,
    /// Its MAE over the recent windows (`null` before its first scored forecast).
    pub mae: Option<FiniteF64>,
    /// Its MASE over the recent windows against the naive forecast.
    pub mase: Option<FiniteF64>,
    /// Its sMAPE (per cent) over the recent windows.
    pub smape: Option<FiniteF64>,
    /// Number of recent forecasts the scores are over.
    pub scored: u64,
}

/// An alert: the actual value left the forecast's interval (`forecast_alerts.jsonl`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ForecastAlertRow {
    /// `demand_forecast_deviation` or `delivery_duration_forecast_deviation`.
    pub rule: Text,
    /// Warehouse.
    pub warehouse: Text,
    /// The window that deviated.
    pub window_start: Millis,
    /// What happened.
    pub actual: FiniteF64,
    /// The forecast.
    pub expected: FiniteF64,
    /// Lower end of the interval.
    pub lower: FiniteF64,
    /// Upper end of the interval.
    pub upper: FiniteF64,
    /// The model that made the forecast.
    pub model: Text,
    /// Its recent MASE (the error score behind the interval).
    pub mase: Option<FiniteF64>,
    /// `(actual - expected) / RMSE`: how many recent RMSEs off.
    pub z: FiniteF64,
}

/// A row of either LOGI-2 output.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Logi2Row {
    /// A forecast row.
    Forecast(ForecastRow),
    /// An alert.
    Alert(ForecastAlertRow),
}

/// The outputs of LOGI-2 beside LOGI-1's: change logs of final rows, each at its `window_end`.
pub struct Logi2Outputs<'scope> {
    /// LOGI-1's outputs, unchanged.
    pub logi1: Logi1Outputs<'scope>,
    /// One row per warehouse, window and series with a forecast.
    pub forecasts: VecCollection<'scope, u64, ForecastRow, isize>,
    /// One row per deviating warehouse, window and series.
    pub alerts: VecCollection<'scope, u64, ForecastAlertRow, isize>,
}

/// Counts of `delivered` events per carrier in a window.
#[derive(Default)]
pub struct CarrierCounts(BTreeMap<Text, u64>);

impl WindowAggregate for CarrierCounts {
    type Input = Text;
    type Output = BTreeMap<Text, u64>;
    fn insert(&mut self, carrier: Text) {
        *self.0.entry(carrier).or_default() += 1;
    }
    fn finish(self) -> Option<Self::Output> {
        Some(self.0)
    }
}

/// What the per-warehouse state machine consumes. The carrier counts of a window sort before
/// its row (both come at the window's end with the same point time), so the row finds them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
enum Point {
    CarrierMix(BTreeMap<Text, u64>),
    Window(WindowRow),
}

/// Builds LOGI-1 and LOGI-2 over a stream of validated events (same contract as [`logi1`]).
///
/// # Examples
/// ```
/// use timely::dataflow::operators::{Capture, ToStream};
/// use timely::dataflow::operators::capture::Extract;
/// use tidewatch_dataflows::logi1::Logi1Config;
/// use tidewatch_dataflows::logi2::{logi2, Logi2Config};
/// use tidewatch_operators::event::Event;
/// use tidewatch_operators::validate::parse_line;
///
/// // Eight to twelve orders a minute for an hour, then 60 in one minute.
/// let mut events: Vec<Event> = Vec::new();
/// for minute in 0..61u64 {
///     let orders = if minute == 60 { 60 } else { 8 + minute % 5 };
///     for i in 0..orders {
///         let line = format!(
///             r#"{{"type":"order","order_id":"o-{minute}-{i}","warehouse":"wh-1","sku":"s","qty":1,"amount":5,"ts":{}}}"#,
///             minute * 60_000 + i * 100,
///         );
///         events.push(parse_line(line.as_bytes()).unwrap());
///     }
/// }
/// let captured = timely::example(move |scope| {
///     let stream = events.to_stream(scope);
///     logi2(stream, &Logi1Config::default(), &Logi2Config::default()).alerts.inner.capture()
/// });
/// let alerts: Vec<_> = captured.extract().into_iter().flat_map(|(_, v)| v).collect();
/// assert_eq!(alerts.len(), 1);
/// assert_eq!(alerts[0].0.rule, "demand_forecast_deviation");
/// assert_eq!(alerts[0].0.window_start, 3_600_000);
/// assert_eq!(alerts[0].0.actual.get(), 60.0);
/// ```
pub fn logi2<'scope>(
    events: StreamVec<'scope, u64, Event>,
    logi1_config: &Logi1Config,
    config: &Logi2Config,
) -> Logi2Outputs<'scope> {
    if let Err(problem) = config.validate() {
        panic!("invalid LOGI-2 config: {problem}");
    }
    let window_ms = logi1_config.window_ms;
    let delivered = events.clone().filter(
        |event| matches!(event, Event::Delivery(d) if d.status == DeliveryStatus::Delivered),
    );
    let logi1_outputs = logi1(events, logi1_config);

    let delivered = dedup(delivered, |event| match event {
        Event::Delivery(d) => route_hash(&d.order_id),
        other => route_hash(other),
    })
    .flat_map(|event| match event {
        Event::Delivery(d) => Some((d.warehouse, d.ts, d.carrier)),
        _ => None,
    });
    let mixes = tumbling::<Text, CarrierCounts>(delivered, window_ms).map(
        |(warehouse, window_start, counts)| (warehouse, window_start, Point::CarrierMix(counts)),
    );
    // Window rows are append-only (diff +1 at window_end): the stream carries each row once.
    let rows = logi1_outputs
        .windows
        .inner
        .clone()
        .map(|(row, _time, _diff)| (row.warehouse.clone(), row.window_start, Point::Window(row)));

    let config = *config;
    let results = sequence_by_key(
        mixes.concat(rows),
        move |_warehouse| warehouse::WarehouseState::new(&config),
        move |_warehouse, state, window_start, point| match point {
            Point::CarrierMix(counts) => {
                state.carrier_mix(window_start, counts);
                None
            }
            Point::Window(row) => Some(state.window(&config, &row)),
        },
    )
    .flat_map(|rows| rows);

    let forecasts = results
        .clone()
        .flat_map(move |row| match row {
            Logi2Row::Forecast(f) => {
                let time = f.window_start + window_ms;
                Some((f, time, 1isize))
            }
            Logi2Row::Alert(_) => None,
        })
        .as_collection();
    let alerts = results
        .flat_map(move |row| match row {
            Logi2Row::Alert(a) => {
                let time = a.window_start + window_ms;
                Some((a, time, 1isize))
            }
            Logi2Row::Forecast(_) => None,
        })
        .as_collection();

    Logi2Outputs {
        logi1: logi1_outputs,
        forecasts,
        alerts,
    }
}
