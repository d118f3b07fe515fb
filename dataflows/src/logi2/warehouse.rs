//! The per-warehouse state of LOGI-2: a demand forecaster, a delivery-duration forecaster
//! (univariate models plus a regression on features), and the alert rule.

use std::collections::BTreeMap;

use tidewatch_operators::event::{FiniteF64, Millis, Text};
use tidewatch_operators::forecast::accuracy::RollingAccuracy;
use tidewatch_operators::forecast::regression::{Basis, RlsRegression};
use tidewatch_operators::forecast::Forecaster;

use super::{ForecastAlertRow, ForecastRow, Logi2Config, Logi2Row, Series};
use crate::logi1::WindowRow;

/// Most carriers given a feature of their own per warehouse; later ones share the last slot.
pub const CARRIER_SLOTS: usize = 4;

/// Features of the delivery-duration regression, in this order: orders in the previous window,
/// mean orders over the three previous windows, the window's mean temperature (or the last
/// known one), sine and cosine of the hour of day, and the share of each carrier slot among the
/// window's deliveries.
pub const DURATION_FEATURES: usize = 5 + CARRIER_SLOTS;

/// Name of the regression model in rows and alerts.
pub const REGRESSION: &str = "regression";

/// Durations are regressed in minutes: a scale at which the default ridge penalty is mild.
const MS_PER_MINUTE: f64 = 60_000.0;

/// A series' model, the recent accuracy of its one-step forecasts, and the spread of the
/// forecasts actually issued (which may be the regression's), for the interval.
struct Tracked {
    model: Box<dyn Forecaster>,
    accuracy: RollingAccuracy,
    /// Errors of the issued forecasts times `sqrt(weight)`: their RMS, divided by the
    /// `sqrt(weight)` of the window at hand, is the interval's scale. The weight of a mean of
    /// `n` deliveries is `n` (its variance goes as `1/n`); demand has weight 1.
    issued: RollingAccuracy,
}

/// Everything LOGI-2 keeps for one warehouse.
pub(crate) struct WarehouseState {
    demand: Tracked,
    duration: Tracked,
    regression: RlsRegression,
    regression_accuracy: RollingAccuracy,
    /// Carrier -> feature slot, in order of first appearance.
    carrier_slots: BTreeMap<Text, usize>,
    /// The carrier counts of the window being assembled: (window_start, counts).
    pending_mix: Option<(Millis, BTreeMap<Text, u64>)>,
    /// Orders of the last three windows, newest last.
    recent_orders: [f64; 3],
    last_temperature: Option<f64>,
}

impl WarehouseState {
    pub(crate) fn new(config: &Logi2Config) -> Self {
        let tracked = |kind: tidewatch_operators::forecast::model::ModelKind| Tracked {
            model: kind.build(config.season),
            accuracy: RollingAccuracy::new(config.accuracy_window, config.season),
            issued: RollingAccuracy::new(config.accuracy_window, 1),
        };
        WarehouseState {
            demand: tracked(config.demand_model),
            duration: tracked(config.duration_model),
            regression: RlsRegression::new(
                DURATION_FEATURES,
                Basis::Linear,
                config.regression_forgetting,
                config.regression_ridge,
            ),
            regression_accuracy: RollingAccuracy::new(config.accuracy_window, config.season),
            carrier_slots: BTreeMap::new(),
            pending_mix: None,
            recent_orders: [0.0; 3],
            last_temperature: None,
        }
    }

    /// Remembers the carrier counts of a window; its row comes next (same time, sorted after).
    pub(crate) fn carrier_mix(&mut self, window_start: Millis, counts: BTreeMap<Text, u64>) {
        for carrier in counts.keys() {
            let next = self.carrier_slots.len();
            self.carrier_slots.entry(carrier.clone()).or_insert(next);
        }
        self.pending_mix = Some((window_start, counts));
    }

    /// Takes the next window row: forecasts it from the past, compares, then learns from it.
    pub(crate) fn window(&mut self, config: &Logi2Config, row: &WindowRow) -> Vec<Logi2Row> {
        let mut out = Vec::new();
        let orders = row.orders as f64;
        let demand = Observed {
            row,
            series: Series::Demand,
            actual: orders,
            weight: 1.0,
        };
        step(config, &mut self.demand, None, demand, &mut out);

        let temperature = row.mean_temp.map(FiniteF64::get).or(self.last_temperature);
        if let Some(mean) = row.mean_duration_ms.filter(|_| row.delivered > 0) {
            let features = self.duration_features(row, temperature);
            let actual_minutes = mean.get() / MS_PER_MINUTE;
            let regression = (self.regression.observations() > 0)
                .then(|| self.regression.predict(&features) * MS_PER_MINUTE)
                .filter(|value| value.is_finite());
            let duration = Observed {
                row,
                series: Series::DeliveryDuration,
                actual: mean.get(),
                weight: row.delivered as f64,
            };
            let regression = Some((regression, &mut self.regression_accuracy));
            step(config, &mut self.duration, regression, duration, &mut out);
            self.regression.update(&features, actual_minutes);
        }

        self.recent_orders = [self.recent_orders[1], self.recent_orders[2], orders];
        self.last_temperature = temperature;
        self.pending_mix = None;
        out
    }

    fn duration_features(
        &self,
        row: &WindowRow,
        temperature: Option<f64>,
    ) -> [f64; DURATION_FEATURES] {
        let mut x = [0.0; DURATION_FEATURES];
        x[0] = self.recent_orders[2];
        x[1] = self.recent_orders.iter().sum::<f64>() / 3.0;
        x[2] = temperature.unwrap_or(0.0);
        let hour = (row.window_start % 86_400_000) as f64 / 3_600_000.0;
        let angle = std::f64::consts::TAU * hour / 24.0;
        x[3] = angle.sin();
        x[4] = angle.cos();
        if let Some((start, counts)) = &self.pending_mix {
            let total: u64 = counts.values().sum();
            if *start == row.window_start && total > 0 {
                for (carrier, count) in counts {
                    let slot = self
                        .carrier_slots
                        .get(carrier)
                        .map_or(CARRIER_SLOTS - 1, |slot| (*slot).min(CARRIER_SLOTS - 1));
                    x[5 + slot] += *count as f64 / total as f64;
                }
            }
        }
        x
    }
}

/// A window's value of one series.
struct Observed<'a> {
    row: &'a WindowRow,
    series: Series,
    actual: f64,
    /// How many observations the value averages (see [`Tracked::issued`]).
    weight: f64,
}

/// One step of one series: pick the forecast (the univariate model's, or the regression's when
/// its recent MAE is lower), emit the forecast row and maybe an alert, then let the models learn.
fn step(
    config: &Logi2Config,
    tracked: &mut Tracked,
    regression: Option<(Option<f64>, &mut RollingAccuracy)>,
    observed: Observed<'_>,
    out: &mut Vec<Logi2Row>,
) {
    let Observed {
        row,
        series,
        actual,
        weight,
    } = observed;
    let univariate = tracked.model.forecast().filter(|value| value.is_finite());
    let mut chosen = univariate.map(|value| (value, tracked.model.name(), &tracked.accuracy));
    let regression_forecast = regression.as_ref().and_then(|(forecast, _)| *forecast);
    if let (Some(value), Some((_, accuracy))) = (regression_forecast, regression.as_ref()) {
        let better = match (&chosen, accuracy.mae()) {
            (None, _) => true,
            (Some((_, _, current)), Some(mae)) => {
                accuracy.count() >= config.min_history
                    && current.mae().is_none_or(|current_mae| mae < current_mae)
            }
            _ => false,
        };
        if better {
            chosen = Some((value, REGRESSION, &**accuracy));
        }
    }

    let root_weight = weight.max(1.0).sqrt();
    let issued = chosen.map(|(expected, _, _)| expected);
    if let Some((expected, model, accuracy)) = chosen {
        let scale = tracked.issued.rmse().unwrap_or(0.0) / root_weight;
        let lower = expected - config.interval_z * scale;
        let upper = expected + config.interval_z * scale;
        let scored = accuracy.count();
        let forecast_row = ForecastRow {
            series,
            warehouse: row.warehouse.clone(),
            window_start: row.window_start,
            actual: finite(actual),
            expected: finite(expected),
            lower: finite(lower),
            upper: finite(upper),
            model: Text::from(model),
            mae: accuracy.mae().and_then(FiniteF64::new),
            mase: accuracy.mase().and_then(FiniteF64::new),
            smape: accuracy.smape().and_then(FiniteF64::new),
            scored: scored as u64,
        };
        let outside = actual < lower || actual > upper;
        if outside && tracked.issued.count() >= config.min_history && scale > 0.0 {
            out.push(Logi2Row::Alert(ForecastAlertRow {
                rule: Text::from(series.rule()),
                warehouse: row.warehouse.clone(),
                window_start: row.window_start,
                actual: forecast_row.actual,
                expected: forecast_row.expected,
                lower: forecast_row.lower,
                upper: forecast_row.upper,
                model: forecast_row.model.clone(),
                mase: forecast_row.mase,
                z: finite((actual - expected) / scale),
            }));
        }
        out.push(Logi2Row::Forecast(forecast_row));
    }

    tracked.issued.record(
        issued.map(|expected| expected * root_weight),
        actual * root_weight,
    );
    tracked.accuracy.record(univariate, actual);
    tracked.model.update(actual);
    if let Some((forecast, accuracy)) = regression {
        accuracy.record(forecast, actual);
    }
}

/// Values here are finite by construction (finite inputs, finite model outputs); a non-finite
/// one would be a broken invariant, but a row is still better than a panic: clamp to 0.
fn finite(value: f64) -> FiniteF64 {
    FiniteF64::new(value).unwrap_or(FiniteF64::ZERO)
}
