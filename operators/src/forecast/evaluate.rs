//! Rolling-origin evaluation of a forecaster over a whole series: the protocol behind
//! `tidewatch forecast` and the accuracy figures in BENCHMARKS.md.
//!
//! The model runs online over every observation. Each observation of the last `test_fraction`
//! of the series (indices from `floor((1 - test_fraction) × n)` on) is scored against the
//! one-step-ahead forecast made just before it. MASE divides the test MAE by the in-sample
//! seasonal naive MAE of the training part (the first part), as in `../shared/data/README.md`.
//!
//! # Examples
//! ```
//! use tidewatch_operators::forecast::evaluate::evaluate;
//! use tidewatch_operators::forecast::model::ModelKind;
//!
//! // A clean daily pattern of 24 steps on a slow trend: Holt-Winters learns both, and its MASE
//! // falls far below that of the seasonal naive forecast (which misses the trend).
//! let series: Vec<f64> = (0..24 * 40).map(|t| 0.01 * t as f64 + (t % 24) as f64).collect();
//! let report = evaluate(&series, ModelKind::HoltWinters, 24, 0.2).unwrap();
//! assert_eq!(report.test_points, 192);
//! assert!(report.mase.unwrap() < 0.05);
//! ```

use super::accuracy::{seasonal_naive_mae, ErrorTotals};
use super::model::ModelKind;
use super::Forecaster;

/// Why a series cannot be evaluated.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EvaluateError {
    /// `test_fraction` is not in (0, 1).
    #[error("the test fraction must be between 0 and 1 (exclusive), got {0}")]
    TestFraction(f64),
    /// The training part is not longer than one season.
    #[error(
        "the series is too short: {train} training points for season {season} \
         (need more than one season before the test part)"
    )]
    TooShort {
        /// Points in the training part.
        train: usize,
        /// The season.
        season: usize,
    },
}

/// What [`evaluate`] measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// The model as asked for (`auto` stays `auto`); `None` from [`evaluate_forecaster`].
    pub model: Option<ModelKind>,
    /// Points in the training part.
    pub train_points: usize,
    /// Points in the test part.
    pub test_points: usize,
    /// Test points at which the model had no forecast yet (not scored).
    pub missing: usize,
    /// The errors over the scored test points.
    pub totals: ErrorTotals,
    /// Seasonal naive MAE of the training part (the MASE scale).
    pub scale: f64,
    /// Test MAE.
    pub mae: Option<f64>,
    /// Test RMSE.
    pub rmse: Option<f64>,
    /// Test sMAPE in per cent.
    pub smape: Option<f64>,
    /// Test MASE.
    pub mase: Option<f64>,
    /// For every point of the series: the forecast made before it and the model that made it
    /// (for `auto`, the candidate it had chosen).
    pub forecasts: Vec<(Option<f64>, &'static str)>,
}

/// Runs `model` (season `season`) over `series` and scores the last `test_fraction`.
pub fn evaluate(
    series: &[f64],
    model: ModelKind,
    season: usize,
    test_fraction: f64,
) -> Result<Evaluation, EvaluateError> {
    let mut forecaster = model.build(season);
    let mut evaluation = evaluate_forecaster(&mut *forecaster, series, season, test_fraction)?;
    evaluation.model = Some(model);
    Ok(evaluation)
}

/// Runs a fresh `forecaster` over `series` and scores the last `test_fraction`, MASE against
/// the seasonal naive forecast at lag `season`.
pub fn evaluate_forecaster(
    forecaster: &mut dyn Forecaster,
    series: &[f64],
    season: usize,
    test_fraction: f64,
) -> Result<Evaluation, EvaluateError> {
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(EvaluateError::TestFraction(test_fraction));
    }
    let train_points = ((1.0 - test_fraction) * series.len() as f64).floor() as usize;
    let scale =
        seasonal_naive_mae(&series[..train_points], season).ok_or(EvaluateError::TooShort {
            train: train_points,
            season: season.max(1),
        })?;
    let mut totals = ErrorTotals::default();
    let mut missing = 0;
    let mut forecasts = Vec::with_capacity(series.len());
    for (index, &value) in series.iter().enumerate() {
        let forecast = forecaster.forecast();
        forecasts.push((forecast, forecaster.name()));
        if index >= train_points {
            match forecast {
                Some(forecast) => totals.record(forecast, value),
                None => missing += 1,
            }
        }
        forecaster.update(value);
    }
    Ok(Evaluation {
        model: None,
        train_points,
        test_points: series.len() - train_points,
        missing,
        totals,
        scale,
        mae: totals.mae(),
        rmse: totals.rmse(),
        smape: totals.smape(),
        mase: totals.mase(scale),
        forecasts,
    })
}
