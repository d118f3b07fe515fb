//! Forecast accuracy: one-step-ahead MAE, RMSE, sMAPE and MASE, over a whole evaluation
//! ([`ErrorTotals`]) or over the most recent steps of a live series ([`RollingAccuracy`]).
//!
//! MASE divides the MAE by the mean absolute error of the seasonal naive forecast
//! (`y[t-m]` for `y[t]`, or `y[t-1]` without a season) in-sample: over the training part for an
//! offline evaluation, over every observation seen so far for a live series. Below 1 means the
//! model beats the naive forecast.
//!
//! sMAPE is in per cent: the mean of `200 |y - f| / (|y| + |f|)`, a step with `y = f = 0`
//! counting 0.
//!
//! # Examples
//! ```
//! use tidewatch_operators::forecast::accuracy::{ErrorTotals, RollingAccuracy};
//!
//! let mut totals = ErrorTotals::default();
//! totals.record(10.0, 12.0);
//! totals.record(10.0, 8.0);
//! assert_eq!(totals.mae(), Some(2.0));
//! assert_eq!(totals.rmse(), Some(2.0));
//!
//! // Live: the last 3 errors, MASE against the naive forecast (no season).
//! let mut live = RollingAccuracy::new(3, 1);
//! for (forecast, actual) in [(None, 1.0), (Some(1.0), 2.0), (Some(2.0), 4.0), (Some(4.0), 5.0)] {
//!     live.record(forecast, actual);
//! }
//! assert_eq!(live.count(), 3);
//! assert_eq!(live.mae(), Some(4.0 / 3.0)); // errors 1, 2, 1
//! assert_eq!(live.mase(), Some(1.0)); // naive errors 1, 2, 1 as well
//! ```

use std::collections::VecDeque;

/// Symmetric absolute percentage error of one step, in per cent (0 when both are 0).
pub fn smape_term(actual: f64, forecast: f64) -> f64 {
    let denominator = actual.abs() + forecast.abs();
    if denominator == 0.0 {
        0.0
    } else {
        200.0 * (actual - forecast).abs() / denominator
    }
}

/// Sums of one-step errors over an evaluation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ErrorTotals {
    /// Number of steps recorded.
    pub count: u64,
    /// Sum of `|y - f|`.
    pub abs_sum: f64,
    /// Sum of `(y - f)²`.
    pub squared_sum: f64,
    /// Sum of the sMAPE terms (per cent).
    pub smape_sum: f64,
}

impl ErrorTotals {
    /// Records one step: the forecast `forecast` made for the observation `actual`.
    pub fn record(&mut self, forecast: f64, actual: f64) {
        let error = actual - forecast;
        self.count += 1;
        self.abs_sum += error.abs();
        self.squared_sum += error * error;
        self.smape_sum += smape_term(actual, forecast);
    }

    /// Mean absolute error; `None` before the first step.
    pub fn mae(&self) -> Option<f64> {
        (self.count > 0).then(|| self.abs_sum / self.count as f64)
    }

    /// Root mean squared error.
    pub fn rmse(&self) -> Option<f64> {
        (self.count > 0).then(|| (self.squared_sum / self.count as f64).sqrt())
    }

    /// sMAPE in per cent.
    pub fn smape(&self) -> Option<f64> {
        (self.count > 0).then(|| self.smape_sum / self.count as f64)
    }

    /// MASE against a naive-forecast MAE `scale`; `None` when the scale is not positive.
    pub fn mase(&self, scale: f64) -> Option<f64> {
        self.mae().filter(|_| scale > 0.0).map(|mae| mae / scale)
    }
}

/// The in-sample MAE of the seasonal naive forecast: `mean |y[t] - y[t-season]|` over
/// `t in season..values.len()` (`season` 0 is taken as 1, the naive forecast). `None` when the
/// series is not longer than the season.
///
/// ```
/// use tidewatch_operators::forecast::accuracy::seasonal_naive_mae;
/// assert_eq!(seasonal_naive_mae(&[1.0, 2.0, 4.0, 3.0], 2), Some(2.0)); // |4-1|, |3-2|
/// ```
pub fn seasonal_naive_mae(values: &[f64], season: usize) -> Option<f64> {
    let lag = season.max(1);
    if values.len() <= lag {
        return None;
    }
    let sum: f64 = values
        .windows(lag + 1)
        .map(|pair| (pair[lag] - pair[0]).abs())
        .sum();
    Some(sum / (values.len() - lag) as f64)
}

/// Accuracy of a live forecaster over its most recent `window` forecasts, with MASE scaled by
/// the seasonal naive MAE over all observations seen.
///
/// Sums are running sums over a ring of the last `window` errors; they are recomputed from the
/// ring once per `window` steps so that rounding drift cannot build up over an endless series.
#[derive(Clone, Debug)]
pub struct RollingAccuracy {
    window: usize,
    /// The last `window` steps: (|e|, e², sMAPE term).
    errors: VecDeque<(f64, f64, f64)>,
    abs_sum: f64,
    squared_sum: f64,
    smape_sum: f64,
    steps_since_recompute: usize,
    /// Lag of the naive forecast in the MASE scale (1 = naive, m = seasonal naive).
    lag: usize,
    /// The last `lag` observations, oldest first.
    recent: VecDeque<f64>,
    naive_abs_sum: f64,
    naive_count: u64,
}

impl RollingAccuracy {
    /// Accuracy over the last `window` steps (at least 1), MASE against the naive forecast at
    /// lag `season` (0 or 1: the last value).
    pub fn new(window: usize, season: usize) -> Self {
        let window = window.max(1);
        let lag = season.max(1);
        RollingAccuracy {
            window,
            errors: VecDeque::with_capacity(window + 1),
            abs_sum: 0.0,
            squared_sum: 0.0,
            smape_sum: 0.0,
            steps_since_recompute: 0,
            lag,
            recent: VecDeque::with_capacity(lag + 1),
            naive_abs_sum: 0.0,
            naive_count: 0,
        }
    }

    /// Records an observation and the forecast that was made for it (`None` if the model had
    /// none: then only the MASE scale learns from the observation).
    pub fn record(&mut self, forecast: Option<f64>, actual: f64) {
        if self.recent.len() == self.lag {
            if let Some(old) = self.recent.pop_front() {
                self.naive_abs_sum += (actual - old).abs();
                self.naive_count += 1;
            }
        }
        self.recent.push_back(actual);

        let Some(forecast) = forecast else { return };
        let error = actual - forecast;
        let step = (error.abs(), error * error, smape_term(actual, forecast));
        self.errors.push_back(step);
        self.abs_sum += step.0;
        self.squared_sum += step.1;
        self.smape_sum += step.2;
        if self.errors.len() > self.window {
            if let Some((a, s, p)) = self.errors.pop_front() {
                self.abs_sum -= a;
                self.squared_sum -= s;
                self.smape_sum -= p;
            }
        }
        self.steps_since_recompute += 1;
        if self.steps_since_recompute >= self.window {
            self.steps_since_recompute = 0;
            self.abs_sum = self.errors.iter().map(|e| e.0).sum();
            self.squared_sum = self.errors.iter().map(|e| e.1).sum();
            self.smape_sum = self.errors.iter().map(|e| e.2).sum();
        }
    }

    /// Number of forecasts in the window.
    pub fn count(&self) -> usize {
        self.errors.len()
    }

    /// Mean absolute error over the window.
    pub fn mae(&self) -> Option<f64> {
        let n = self.errors.len();
        (n > 0).then(|| self.abs_sum.max(0.0) / n as f64)
    }

    /// Root mean squared error over the window.
    pub fn rmse(&self) -> Option<f64> {
        let n = self.errors.len();
        (n > 0).then(|| (self.squared_sum.max(0.0) / n as f64).sqrt())
    }

    /// sMAPE (per cent) over the window.
    pub fn smape(&self) -> Option<f64> {
        let n = self.errors.len();
        (n > 0).then(|| self.smape_sum.max(0.0) / n as f64)
    }

    /// The seasonal naive MAE over every observation seen (the MASE scale).
    pub fn naive_mae(&self) -> Option<f64> {
        (self.naive_count > 0).then(|| self.naive_abs_sum / self.naive_count as f64)
    }

    /// MASE: [`RollingAccuracy::mae`] over [`RollingAccuracy::naive_mae`]; `None` while either
    /// is unknown or the scale is 0 (a constant series).
    pub fn mase(&self) -> Option<f64> {
        let scale = self.naive_mae().filter(|scale| *scale > 0.0)?;
        Some(self.mae()? / scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The rolling figures equal a from-scratch computation over the last `window` steps.
    #[test]
    fn rolling_matches_a_recomputation() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for (window, season) in [(1, 0), (7, 1), (50, 12), (200, 24)] {
            let mut live = RollingAccuracy::new(window, season);
            let mut steps: Vec<(f64, f64)> = Vec::new();
            let mut actuals: Vec<f64> = Vec::new();
            for _ in 0..1_000 {
                let actual: f64 = rng.random_range(-50.0..150.0);
                let forecast: f64 = actual + rng.random_range(-10.0..10.0);
                live.record(Some(forecast), actual);
                steps.push((forecast, actual));
                actuals.push(actual);
                let recent = &steps[steps.len().saturating_sub(window)..];
                let mut totals = ErrorTotals::default();
                for &(f, a) in recent {
                    totals.record(f, a);
                }
                let close = |x: Option<f64>, y: Option<f64>| match (x, y) {
                    (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * (1.0 + y.abs()),
                    (None, None) => true,
                    _ => false,
                };
                assert!(close(live.mae(), totals.mae()));
                assert!(close(live.rmse(), totals.rmse()));
                assert!(close(live.smape(), totals.smape()));
                let scale = seasonal_naive_mae(&actuals, season);
                assert!(close(live.naive_mae(), scale));
                assert!(close(live.mase(), scale.and_then(|s| totals.mase(s))));
            }
        }
    }

    #[test]
    fn smape_of_zero_against_zero_is_zero() {
        assert_eq!(smape_term(0.0, 0.0), 0.0);
        assert_eq!(smape_term(1.0, 0.0), 200.0);
    }
}
