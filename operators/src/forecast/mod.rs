//! Online forecasters: per-series state machines that see one observation at a time, in time
//! order, and always hold a one-step-ahead forecast.
//!
//! Every model implements [`Forecaster`]. The same code runs behind `tidewatch forecast` (a CSV
//! series) and inside the dataflow (one state per key, driven by the `forecast_by_key`
//! operator), so a model's accuracy measured offline is its accuracy in the dataflow.
//!
//! Models:
//! * [`moving_average`]: simple and weighted moving averages;
//! * [`ewma`]: exponentially weighted moving average (simple exponential smoothing);
//! * [`holt_winters`]: additive Holt-Winters with damped trend and season `m`, optionally a
//!   second (weekly) season with Taylor's AR(1) error term, parameters re-estimated
//!   periodically on a trailing window by Nelder-Mead;
//! * [`arima`]: AR(p), ARIMA(p,d,q) and seasonal SARIMA-style differencing, estimated online by
//!   recursive extended least squares;
//! * [`regression`]: linear, polynomial and ridge regression on features, and a local trend in
//!   time, by RLS with a forgetting factor;
//! * [`rls`]: the recursive least squares estimator under [`arima`] and [`regression`].
//!
//! Around them:
//! * [`accuracy`]: one-step MAE, RMSE, sMAPE and MASE, over an evaluation or a live window;
//! * [`auto`]: runs several models side by side and forecasts with the one of lowest recent
//!   error;
//! * [`model`]: models by name (`hw`, `sarima`, ..., `auto`), as the CLI and LOGI-2 take them;
//! * [`evaluate`]: the rolling-origin backtest behind `tidewatch forecast`.
//!
//! # Why hand-written numerics
//! Crates evaluated (November 2026): `augurs-ets` 0.10 fits ETS models in batch (fit, then
//! predict) with no way to feed one more observation, says its seasonal models are not yet
//! implemented, and pulls in nalgebra, rand 0.8 and an optimiser; statsforecast-style ports
//! (`anofox-forecast`) are batch as well. A per-key streaming state needs O(1) updates with a
//! fixed memory, which none offers. `nalgebra`/`ndarray` would serve the linear algebra, but
//! the only matrices here are the RLS covariances of at most ~20 coefficients, updated by a
//! rank-one formula in a dozen lines: a dependency would add compile time and nothing the
//! tests do not already pin down (symmetry, boundedness, recovery of known coefficients).
//!
//! Unchecked assumption, for every model: observations are finite. Callers filter non-finite
//! values before [`Forecaster::update`] (the dataflow never produces them; the CSV reader sends
//! them to its error output).

pub mod accuracy;
pub mod arima;
pub mod auto;
pub mod evaluate;
pub mod ewma;
pub mod holt_winters;
pub mod model;
pub mod moving_average;
pub mod regression;
pub mod rls;

#[cfg(test)]
pub(crate) mod test_support;

/// A univariate online forecaster.
///
/// The contract: `forecast()` is the forecast of the observation that the next `update` will
/// bring, made from the observations seen so far; `update(y)` takes that observation. So the
/// one-step-ahead error of a step is `y - forecast()` read just before `update(y)`.
pub trait Forecaster: Send {
    /// Short model name for reports and alerts, e.g. `"holt_winters"`.
    fn name(&self) -> &'static str;

    /// The one-step-ahead forecast, or `None` while the model is still warming up (too few
    /// observations to say anything).
    fn forecast(&self) -> Option<f64>;

    /// Takes the next observation of the series.
    fn update(&mut self, value: f64);
}

impl<F: Forecaster + ?Sized> Forecaster for Box<F> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn forecast(&self) -> Option<f64> {
        (**self).forecast()
    }
    fn update(&mut self, value: f64) {
        (**self).update(value)
    }
}
