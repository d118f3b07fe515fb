//! The forecast-residual detector: a forecaster predicts each value one step ahead, and the
//! residual (value minus forecast) is scored by a rolling z-score over past residuals. It sees
//! what a plain z-score of the values cannot: a value that is ordinary for the series but wrong
//! for the moment (a weekday peak on a holiday, a missing daily swing).
//!
//! Any [`Forecaster`] serves; with `auto` (see [`ModelKind`]) the forecaster is the best of
//! several by recent error. Before the forecaster has a forecast, the last value stands in
//! (the naive forecast), and the first value has residual 0.
//!
//! # Examples
//! ```
//! use tidewatch_operators::detect::residual::ForecastResidual;
//! use tidewatch_operators::detect::Detector;
//! use tidewatch_operators::forecast::model::ModelKind;
//!
//! // A daily cycle of 24 steps with a little noise, then one step where the cycle breaks.
//! let mut detector = ForecastResidual::new(ModelKind::HoltWinters.build(24), 2_000);
//! for t in 0..24 * 30 {
//!     let noise = ((t * 7919) % 13) as f64 / 13.0 - 0.5;
//!     detector.score(100.0 + 20.0 * ((t % 24) as f64 / 24.0 * 6.283).sin() + noise);
//! }
//! // At the cycle's low point (t % 24 = 18, about 80), a value of 100: the series' mean, but
//! // not what this hour should bring.
//! for t in 24 * 30..24 * 30 + 18 {
//!     let noise = ((t * 7919) % 13) as f64 / 13.0 - 0.5;
//!     detector.score(100.0 + 20.0 * ((t % 24) as f64 / 24.0 * 6.283).sin() + noise);
//! }
//! assert!(detector.score(100.0) > 0.9999);
//! ```
//!
//! [`ModelKind`]: crate::forecast::model::ModelKind

use super::windowed_gaussian::WindowedGaussian;
use super::Detector;
use crate::forecast::Forecaster;

/// Scores residuals of a forecaster; see the module documentation.
pub struct ForecastResidual {
    forecaster: Box<dyn Forecaster>,
    residuals: WindowedGaussian,
    last: Option<f64>,
}

impl ForecastResidual {
    /// Residuals of `forecaster`, scored over the last `window` residuals.
    pub fn new(forecaster: Box<dyn Forecaster>, window: usize) -> Self {
        ForecastResidual {
            forecaster,
            residuals: WindowedGaussian::new(window),
            last: None,
        }
    }

    /// The forecast for the next value (the forecaster's, else the last value).
    pub fn expected(&self) -> Option<f64> {
        self.forecaster
            .forecast()
            .filter(|f| f.is_finite())
            .or(self.last)
    }
}

impl Detector for ForecastResidual {
    fn name(&self) -> &'static str {
        "forecast_residual"
    }

    fn score(&mut self, value: f64) -> f64 {
        if !value.is_finite() {
            return 0.0;
        }
        let residual = value - self.expected().unwrap_or(value);
        let score = self.residuals.score(residual);
        self.forecaster.update(value);
        self.last = Some(value);
        score
    }
}
