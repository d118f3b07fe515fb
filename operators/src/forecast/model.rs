//! Model choice by name: what `tidewatch forecast --model` and the LOGI-2 config accept, and
//! how each name builds its [`Forecaster`] for a series with season `m`.
//!
//! | name | model |
//! |---|---|
//! | `hw` | [`HoltWinters`], additive damped trend, season `m`, parameters re-fitted periodically; for `m` > 1 two of them, with season `m` alone and with a second season of `7 m` (Taylor's double-seasonal variant: a week of days), and the forecast of the one with the lower recent MAE ([`AutoForecaster`]) |
//! | `sarima` | [`Arima`] (2,0,1)(0,1,1,m), by recursive extended least squares |
//! | `arima` | [`Arima`] (1,1,1) |
//! | `ar` | [`Arima`] AR(8) |
//! | `ma` | [`MovingAverage`], simple, over the last [`MOVING_AVERAGE_WINDOW`] steps |
//! | `wma` | [`MovingAverage`], linearly weighted, over the last [`MOVING_AVERAGE_WINDOW`] steps |
//! | `ewma` | [`Ewma::fitted`]: α re-estimated periodically by minimising the one-step SSE |
//! | `trend` | [`TrendRegression`], a local linear trend in time by RLS with forgetting [`TREND_FORGETTING`] |
//! | `auto` | [`AutoForecaster`] over `hw`, `sarima`, `ar`, `ewma` and `ma` |
//!
//! Without a season (`m` ≤ 1) `hw` is damped Holt and `sarima` is ARIMA(2,1,1).
//!
//! Why `hw` weighs a weekly second season: demand series sampled within the day (orders per
//! half hour, taxi rides) repeat by week as much as by day; on `nyc_taxi` the daily-only model
//! scores MASE 0.328 and the double-seasonal one 0.255. Where there is no weekly cycle (the
//! ambient temperature series) the double model is worse (0.525 against 0.494) and the choice
//! falls on the daily one. When `m` is not a day of steps, `7 m` is no week, and the choice
//! learns that too. Both cost about 0.34 µs per update together, refits and the choice
//! included (2.9 M updates/s on one core of an AMD EPYC, `forecast_throughput` bench; 0.8 µs
//! before the refits' passes took two steps at a time with AVX).
//!
//! # Examples
//! ```
//! use tidewatch_operators::forecast::model::ModelKind;
//!
//! let kind: ModelKind = "hw".parse().unwrap();
//! let mut model = kind.build(24);
//! for step in 0..200 {
//!     model.update((step % 24) as f64);
//! }
//! assert!(model.forecast().is_some());
//! assert!("prophet".parse::<ModelKind>().unwrap_err().contains("hw, sarima"));
//! ```

use std::fmt;
use std::str::FromStr;

use super::arima::{Arima, ArimaConfig};
use super::auto::{AutoConfig, AutoForecaster};
use super::ewma::Ewma;
use super::holt_winters::{HoltWinters, HoltWintersConfig};
use super::moving_average::MovingAverage;
use super::regression::TrendRegression;
use super::Forecaster;

/// A forecasting model by name; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// Holt-Winters.
    HoltWinters,
    /// Seasonal ARIMA.
    Sarima,
    /// ARIMA(1,1,1).
    Arima,
    /// AR(8).
    Ar,
    /// Simple moving average.
    MovingAverage,
    /// Weighted moving average.
    WeightedMovingAverage,
    /// Exponentially weighted moving average.
    Ewma,
    /// Linear trend regression.
    Trend,
    /// Automatic choice.
    Auto,
}

/// The second season of `hw`, in first seasons: a week of days.
pub const WEEK_IN_DAYS: usize = 7;

/// Order of the `ar` model.
pub const AR_ORDER: usize = 8;

/// Forgetting factor of the `trend` model: a memory of about 100 steps, a local trend.
pub const TREND_FORGETTING: f64 = 0.99;

/// Window of the `ma` and `wma` models. Short, because a moving average is a level follower:
/// over a whole season it would forecast the season's mean, far off at any point of the cycle.
pub const MOVING_AVERAGE_WINDOW: usize = 3;

impl ModelKind {
    /// Every model, in the order of the table above.
    pub const ALL: [ModelKind; 9] = [
        ModelKind::HoltWinters,
        ModelKind::Sarima,
        ModelKind::Arima,
        ModelKind::Ar,
        ModelKind::MovingAverage,
        ModelKind::WeightedMovingAverage,
        ModelKind::Ewma,
        ModelKind::Trend,
        ModelKind::Auto,
    ];

    /// The name that [`FromStr`] accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::HoltWinters => "hw",
            ModelKind::Sarima => "sarima",
            ModelKind::Arima => "arima",
            ModelKind::Ar => "ar",
            ModelKind::MovingAverage => "ma",
            ModelKind::WeightedMovingAverage => "wma",
            ModelKind::Ewma => "ewma",
            ModelKind::Trend => "trend",
            ModelKind::Auto => "auto",
        }
    }

    /// The candidates of `auto`.
    pub const AUTO_CANDIDATES: [ModelKind; 5] = [
        ModelKind::HoltWinters,
        ModelKind::Sarima,
        ModelKind::Ar,
        ModelKind::Ewma,
        ModelKind::MovingAverage,
    ];

    /// Builds the model for a series with season `season` (0 or 1: no season).
    pub fn build(self, season: usize) -> Box<dyn Forecaster> {
        let seasonal = season > 1;
        match self {
            ModelKind::HoltWinters if seasonal => Box::new(AutoForecaster::new(
                vec![
                    Box::new(HoltWinters::new(HoltWintersConfig::new(season))),
                    Box::new(HoltWinters::new(HoltWintersConfig::double(
                        season,
                        WEEK_IN_DAYS * season,
                    ))),
                ],
                AutoConfig::for_season(season),
            )),
            ModelKind::HoltWinters => Box::new(HoltWinters::new(HoltWintersConfig::new(season))),
            ModelKind::Sarima if seasonal => {
                Box::new(Arima::new(ArimaConfig::sarima(2, 0, 1, 0, 1, 1, season)))
            }
            ModelKind::Sarima => Box::new(Arima::new(ArimaConfig::arima(2, 1, 1))),
            ModelKind::Arima => Box::new(Arima::new(ArimaConfig::arima(1, 1, 1))),
            ModelKind::Ar => Box::new(Arima::new(ArimaConfig::ar(AR_ORDER))),
            ModelKind::MovingAverage => Box::new(MovingAverage::simple(MOVING_AVERAGE_WINDOW)),
            ModelKind::WeightedMovingAverage => {
                Box::new(MovingAverage::weighted(MOVING_AVERAGE_WINDOW))
            }
            ModelKind::Ewma => Box::new(Ewma::fitted()),
            ModelKind::Trend => Box::new(TrendRegression::linear(TREND_FORGETTING)),
            ModelKind::Auto => Box::new(AutoForecaster::new(
                ModelKind::AUTO_CANDIDATES
                    .iter()
                    .map(|kind| kind.build(season))
                    .collect(),
                AutoConfig::for_season(season),
            )),
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ModelKind {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        ModelKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = ModelKind::ALL.iter().map(|kind| kind.as_str()).collect();
                format!(
                    "unknown model `{name}` (expected one of {})",
                    names.join(", ")
                )
            })
    }
}
