//! AR(p), ARIMA(p,d,q) and seasonal SARIMA(p,d,q)(P,D,Q)_m forecasters estimated online.
//!
//! Each observation goes through three incremental stages:
//!
//! 1. **Differencing.** `w_t = (1 − B)^d (1 − B^m)^D y_t`, computed from the last `d + D·m`
//!    observations (the operator is expanded once into its sparse lag coefficients).
//! 2. **ARMA on `w` by recursive extended least squares** (pseudo-linear regression): the
//!    regressors of `w_t` are the lagged differenced values, the lagged one-step residuals (the
//!    stand-in for the unobservable innovations), their seasonal lags and, for the
//!    multiplicative seasonal terms, the cross lags `i + j·m` (see [`Arima::coefficients`]).
//!    The coefficients are fitted by [`Rls`] with forgetting. The cross-lag coefficients are
//!    free rather than tied to the products `φ_i·Φ_j` / `θ_i·Θ_j`, which keeps the regression
//!    linear; with enough data they settle near the products anyway.
//! 3. **Forecast**: the ARMA one-step forecast `ŵ_{t+1}`, un-differenced:
//!    `ŷ_{t+1} = ŵ_{t+1} − Σ_{i ≥ 1} c_i y_{t+1−i}` with `c_i` the coefficients of the differencing
//!    operator.
//!
//! RLS (recursive extended least squares) rather than periodic re-estimation on a trailing
//! window, because: every update costs `O(k²)` for `k` coefficients, the same at every step
//! (re-estimation by maximum likelihood costs `O(window · k · iterations)` in bursts, which shows
//! up as latency spikes when thousands of keyed series refit in the same batch); there are no refit
//! spikes or coefficient jumps between refits; and the forgetting factor tracks slow drift in
//! the dynamics continuously instead of in steps. The price: early estimates are noisier than a
//! batch fit, and the MA part is approximate (residuals are those of the earlier, less
//! accurate, estimates).
//!
//! Internals worth knowing:
//!
//! * The differenced series is divided by a fixed scale (the mean absolute value of the first
//!   differenced values) before it reaches the RLS, so that the diffuse start and the small
//!   internal ridge mean the same thing for taxi counts and for sensor readings of 1e-9.
//!   AR and MA coefficients are scale-free; the intercept is reported in the units of `w`.
//! * Residuals fed back as MA regressors are the a-posteriori residuals (computed with the
//!   updated coefficients; the a-priori error is larger while the fit moves) and are clipped to
//!   ±[`RESIDUAL_CLIP`] scale units, so an outlier or a momentarily unstable MA estimate cannot
//!   feed on itself.
//! * A forecast that is not finite (only with absurd inputs, e.g. values near `f64::MAX` whose
//!   differences overflow) falls back to the last observation.
//!
//! # Examples
//!
//! ```
//! use tidewatch_operators::forecast::arima::{Arima, ArimaConfig};
//! use tidewatch_operators::forecast::Forecaster;
//!
//! // A daily pattern (m = 24) on a rising line: seasonal differencing (D = 1) with an intercept
//! // for the drift forecasts it almost exactly once warmed up.
//! let mut model = Arima::new(ArimaConfig::sarima(1, 0, 0, 0, 1, 0, 24).with_intercept(true));
//! assert_eq!(model.name(), "sarima");
//! let series = |t: usize| 100.0 + 0.1 * t as f64 + [0.0, 5.0, 9.0, 4.0][(t % 24) / 6];
//! for t in 0..500 {
//!     model.update(series(t));
//! }
//! let forecast = model.forecast().unwrap();
//! assert!((forecast - series(500)).abs() < 0.05, "{forecast}");
//! ```

use super::rls::Rls;
use super::Forecaster;

/// Default forgetting factor of [`ArimaConfig`]'s constructors: a memory of about
/// 1/(1−λ) = 500 observations (10 days of half-hourly, 3 weeks of hourly data).
///
/// Tuned for SARIMA(2,0,1)(0,1,1)_m on the NAB taxi (m = 48) and temperature (m = 24) series:
/// MASE 0.2741 / 0.4952 at 0.995, 0.2704 / 0.4943 at 0.998, 0.2690 / 0.4993 at 0.999,
/// 0.2741 / 0.5049 at 1 — 0.998 is the best single value for both.
pub const DEFAULT_FORGETTING: f64 = 0.998;

/// Ridge penalty of the internal RLS, in units of the scaled series: negligible against the
/// data, but it bounds the covariance of coefficients that the data do not excite.
const RIDGE: f64 = 1e-3;

/// Bound on the residuals fed back as MA regressors, in scale units.
pub const RESIDUAL_CLIP: f64 = 20.0;

/// Bound on the scaled differenced values, so that absurd inputs cannot overflow the regression.
const VALUE_CLIP: f64 = 1e9;

/// Orders of an (S)ARIMA model and how it is estimated.
///
/// A `season` below 2 disables the seasonal part (`seasonal_p`, `seasonal_d` and `seasonal_q`
/// are then ignored).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArimaConfig {
    /// Non-seasonal autoregressive order.
    pub p: usize,
    /// Non-seasonal differencing order.
    pub d: usize,
    /// Non-seasonal moving-average order.
    pub q: usize,
    /// Seasonal autoregressive order `P` (lags `m, 2m, …`).
    pub seasonal_p: usize,
    /// Seasonal differencing order `D` (lag `m`).
    pub seasonal_d: usize,
    /// Seasonal moving-average order `Q`.
    pub seasonal_q: usize,
    /// Season length `m` in observations (e.g. 48 for half-hourly data with a daily cycle).
    pub season: usize,
    /// Forgetting factor `λ` of the recursive estimation, in `(0, 1]`.
    pub forgetting: f64,
    /// Whether to fit a constant in the ARMA part (a mean for `d = D = 0`, a drift otherwise).
    pub intercept: bool,
}

impl ArimaConfig {
    /// AR(p) on the undifferenced series, with intercept.
    pub fn ar(p: usize) -> ArimaConfig {
        ArimaConfig::arima(p, 0, 0)
    }

    /// ARIMA(p, d, q); an intercept only when `d = 0` (with differencing it would be a drift,
    /// which most series do not have).
    pub fn arima(p: usize, d: usize, q: usize) -> ArimaConfig {
        ArimaConfig::sarima(p, d, q, 0, 0, 0, 0)
    }

    /// SARIMA(p, d, q)(sp, sd, sq)_m; an intercept only without any differencing.
    #[allow(clippy::too_many_arguments)]
    pub fn sarima(
        p: usize,
        d: usize,
        q: usize,
        sp: usize,
        sd: usize,
        sq: usize,
        m: usize,
    ) -> ArimaConfig {
        let seasonal = m >= 2;
        ArimaConfig {
            p,
            d,
            q,
            seasonal_p: sp,
            seasonal_d: sd,
            seasonal_q: sq,
            season: m,
            forgetting: DEFAULT_FORGETTING,
            intercept: d == 0 && (!seasonal || sd == 0),
        }
    }

    /// The same configuration with another forgetting factor.
    pub fn with_forgetting(self, forgetting: f64) -> ArimaConfig {
        ArimaConfig { forgetting, ..self }
    }

    /// The same configuration with or without intercept.
    pub fn with_intercept(self, intercept: bool) -> ArimaConfig {
        ArimaConfig { intercept, ..self }
    }

    fn is_seasonal(&self) -> bool {
        self.season >= 2 && (self.seasonal_p + self.seasonal_d + self.seasonal_q) > 0
    }
}

/// Fixed-capacity history; `lag(1)` is the most recent value.
#[derive(Debug, Clone)]
struct Ring {
    buf: Vec<f64>,
    mask: usize,
    head: usize,
}

impl Ring {
    /// Room for lags `1..=max_lag`.
    fn new(max_lag: usize) -> Ring {
        let cap = max_lag.max(1).next_power_of_two();
        Ring {
            buf: vec![0.0; cap],
            mask: cap - 1,
            head: 0,
        }
    }

    #[inline]
    fn push(&mut self, v: f64) {
        self.head = (self.head + 1) & self.mask;
        self.buf[self.head] = v;
    }

    #[inline]
    fn lag(&self, k: usize) -> f64 {
        self.buf[(self.head + self.buf.len() + 1 - k) & self.mask]
    }
}

/// An online (S)ARIMA forecaster; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Arima {
    config: ArimaConfig,
    /// Non-zero coefficients `(i, c_i)`, `i ≥ 1`, of the differencing operator (`c_0 = 1`).
    diff: Vec<(usize, f64)>,
    /// Raw observations, for differencing and un-differencing (lags up to `d + D·m`).
    y_hist: Ring,
    /// Differenced values (scaled once the scale is known).
    w_hist: Ring,
    /// Scaled a-posteriori residuals.
    e_hist: Ring,
    w_lags: Vec<usize>,
    e_lags: Vec<usize>,
    max_w_lag: usize,
    diff_order: usize,
    rls: Rls,
    x_next: Vec<f64>,
    coefficients: Vec<f64>,
    scale: Option<f64>,
    observations: u64,
    differenced: u64,
    forecast: Option<f64>,
    last: f64,
    residual_clip: f64,
    posterior: bool,
}

impl Arima {
    /// A model of the given configuration, with no observations yet.
    pub fn new(config: ArimaConfig) -> Arima {
        Arima::with_knobs(config, RIDGE, RESIDUAL_CLIP, true)
    }

    fn with_knobs(config: ArimaConfig, ridge: f64, residual_clip: f64, posterior: bool) -> Arima {
        let mut config = config;
        if !config.is_seasonal() {
            config.seasonal_p = 0;
            config.seasonal_d = 0;
            config.seasonal_q = 0;
        }
        let m = config.season;
        // (1 − B)^d (1 − B^m)^D as dense polynomial coefficients.
        let mut poly = vec![1.0];
        let factors =
            std::iter::repeat_n(1, config.d).chain(std::iter::repeat_n(m, config.seasonal_d));
        for lag in factors {
            let mut next = vec![0.0; poly.len() + lag];
            for (i, &c) in poly.iter().enumerate() {
                next[i] += c;
                next[i + lag] -= c;
            }
            poly = next;
        }
        let diff_order = poly.len() - 1;
        let diff = poly
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, &c)| c != 0.0)
            .map(|(i, &c)| (i, c))
            .collect();

        let seasonal_lags = |order: usize, regular: usize| {
            let mut lags: Vec<usize> = (1..=regular).collect();
            lags.extend((1..=order).map(|j| j * m));
            for j in 1..=order {
                lags.extend((1..=regular).map(|i| i + j * m));
            }
            lags
        };
        let w_lags = seasonal_lags(config.seasonal_p, config.p);
        let e_lags = seasonal_lags(config.seasonal_q, config.q);
        let max_w_lag = w_lags.iter().copied().max().unwrap_or(0);
        let max_e_lag = e_lags.iter().copied().max().unwrap_or(0);
        let dim = usize::from(config.intercept) + w_lags.len() + e_lags.len();
        let mut ridges = vec![ridge; dim];
        if config.intercept {
            ridges[0] = 0.0;
        }
        Arima {
            config,
            diff,
            y_hist: Ring::new(diff_order + 1),
            w_hist: Ring::new(max_w_lag.max(1)),
            e_hist: Ring::new(max_e_lag),
            w_lags,
            e_lags,
            max_w_lag,
            diff_order,
            rls: Rls::with_ridges(ridges, config.forgetting),
            x_next: vec![0.0; dim],
            coefficients: vec![0.0; dim],
            scale: None,
            observations: 0,
            differenced: 0,
            forecast: None,
            last: 0.0,
            residual_clip,
            posterior,
        }
    }

    /// The configuration in use (seasonal orders zeroed when `season < 2`).
    pub fn config(&self) -> &ArimaConfig {
        &self.config
    }

    /// The estimated ARMA coefficients of the differenced series `w`, in this order:
    ///
    /// 1. the intercept, if configured (in the units of `w`);
    /// 2. AR: `φ_1..φ_p` (lags `1..p`), then seasonal AR `Φ_1..Φ_P` (lags `m..P·m`), then the AR
    ///    cross lags `i + j·m` for `j` in `1..=P` (outer) and `i` in `1..=p` (inner);
    /// 3. MA, in the same pattern: `θ_1..θ_q`, `Θ_1..Θ_Q`, then cross lags `i + j·m`.
    ///
    /// Signs follow the regression `w_t = c + Σ φ·w_{t−lag} + Σ θ·e_{t−lag} + e_t`, i.e. the
    /// statsmodels convention for both AR and MA. A multiplicative model has cross coefficients
    /// near `−φ_i·Φ_j` (AR) and `θ_i·Θ_j` (MA).
    pub fn coefficients(&self) -> &[f64] {
        &self.coefficients
    }

    /// The fixed scale of the differenced series used inside the regression, once known.
    pub fn scale(&self) -> Option<f64> {
        self.scale
    }

    /// Number of observations taken.
    pub fn observations(&self) -> u64 {
        self.observations
    }

    /// Builds the regressors of the next differenced value into `x_next`.
    fn build_next_regressors(&mut self) {
        let mut k = 0;
        if self.config.intercept {
            self.x_next[0] = 1.0;
            k = 1;
        }
        for &lag in &self.w_lags {
            self.x_next[k] = self.w_hist.lag(lag);
            k += 1;
        }
        for &lag in &self.e_lags {
            self.x_next[k] = self.e_hist.lag(lag);
            k += 1;
        }
    }

    /// Fixes the scale from the (unscaled) differenced values seen so far and rescales them.
    fn fix_scale(&mut self) {
        let count = self.differenced as usize;
        let mean_abs = (1..=count)
            .map(|k| self.w_hist.lag(k).abs() / count as f64)
            .sum::<f64>();
        let scale = if mean_abs.is_finite() && mean_abs > 0.0 {
            mean_abs
        } else {
            1.0
        };
        for k in 1..=count {
            let v = self.w_hist.lag(k) / scale;
            let i = (self.w_hist.head + self.w_hist.buf.len() + 1 - k) & self.w_hist.mask;
            self.w_hist.buf[i] = v;
        }
        self.scale = Some(scale);
    }
}

impl Forecaster for Arima {
    fn name(&self) -> &'static str {
        let c = &self.config;
        if c.is_seasonal() {
            "sarima"
        } else if c.d == 0 && c.q == 0 {
            "ar"
        } else {
            "arima"
        }
    }

    fn forecast(&self) -> Option<f64> {
        self.forecast
    }

    fn update(&mut self, value: f64) {
        self.observations += 1;
        self.last = value;
        self.y_hist.push(value);
        if self.observations <= self.diff_order as u64 {
            return;
        }
        let mut w = value;
        for &(i, c) in &self.diff {
            w += c * self.y_hist.lag(i + 1);
        }
        let Some(scale) = self.scale else {
            self.w_hist.push(if w.is_finite() { w } else { 0.0 });
            self.e_hist.push(0.0);
            self.differenced += 1;
            if self.differenced >= self.max_w_lag.max(1) as u64 {
                self.fix_scale();
                self.build_next_regressors();
            }
            return;
        };
        let ws = if w.is_nan() {
            0.0
        } else {
            (w / scale).clamp(-VALUE_CLIP, VALUE_CLIP)
        };
        self.differenced += 1;
        let residual = if self.differenced > self.max_w_lag as u64 {
            let prior = self.rls.update(&self.x_next, ws);
            let theta = self.rls.coefficients();
            self.coefficients.copy_from_slice(theta);
            if self.config.intercept {
                self.coefficients[0] *= scale;
            }
            let posterior = if self.posterior {
                ws - self.rls.predict(&self.x_next)
            } else {
                prior
            };
            if posterior.is_finite() {
                posterior.clamp(-self.residual_clip, self.residual_clip)
            } else {
                0.0
            }
        } else {
            0.0
        };
        self.w_hist.push(ws);
        self.e_hist.push(residual);
        self.build_next_regressors();
        if self.rls.updates() < self.rls.dim() as u64 {
            return;
        }
        let mut f = scale * self.rls.predict(&self.x_next);
        for &(i, c) in &self.diff {
            f -= c * self.y_hist.lag(i);
        }
        self.forecast = Some(if f.is_finite() { f } else { self.last });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::test_support::{
        gaussian, mase_smape as accuracy, nab_series as read_series,
    };
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const SERIES: [(&str, usize); 2] = [
        ("nyc_taxi.csv", 48),
        ("ambient_temperature_system_failure.csv", 24),
    ];

    /// The default SARIMA(2,0,1)(0,1,1)_m on the NAB series. Reference (statsmodels SARIMAX,
    /// periodically re-estimated): MASE 0.2593 (taxi) and 0.4901 (temperature); target within
    /// 5% (0.272 / 0.515). Reached: 0.2704 and 0.4943; asserted with a margin of 0.002.
    #[test]
    fn sarima_default_mase_on_nab_series() {
        let limits = [0.2724, 0.4963];
        for ((file, m), limit) in SERIES.into_iter().zip(limits) {
            let y = read_series(file);
            assert!(y.len() > 5000, "{file}: {} values", y.len());
            let mut model = Arima::new(ArimaConfig::sarima(2, 0, 1, 0, 1, 1, m));
            let (mase, smape) = accuracy(&mut model, &y, m);
            println!("{file}: MASE {mase:.4} sMAPE {smape:.3}%");
            assert!(mase <= limit, "{file}: MASE {mase}");
        }
    }

    fn configurations(m: usize) -> Vec<(String, ArimaConfig)> {
        let mut out = vec![(
            "sarima(2,0,1)(0,1,1)".to_string(),
            ArimaConfig::sarima(2, 0, 1, 0, 1, 1, m),
        )];
        for p in [2, 4, 8] {
            out.push((format!("ar({p})"), ArimaConfig::ar(p)));
            out.push((
                format!("ar({p}) D=1"),
                ArimaConfig::sarima(p, 0, 0, 0, 1, 0, m),
            ));
        }
        out.push(("arima(1,1,1)".to_string(), ArimaConfig::arima(1, 1, 1)));
        out
    }

    /// Prints MASE and sMAPE of every configuration on both series:
    /// `cargo test --release -p tidewatch-operators accuracy_table -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn accuracy_table() {
        for (file, m) in SERIES {
            let y = read_series(file);
            for (label, config) in configurations(m) {
                let mut model = Arima::new(config);
                let (mase, smape) = accuracy(&mut model, &y, m);
                println!("{file:40} {label:22} MASE {mase:.4} sMAPE {smape:.3}%");
            }
        }
    }

    /// AR(2) `y_t = 0.6·y_{t−1} − 0.3·y_{t−2} + N(0, 1)`: with `λ = 1` the estimates after 5,000
    /// observations are within ±0.05 (standard error ≈ √((1 − 0.09)/5000) ≈ 0.013, so ±0.05 is
    /// almost 4σ); with the default forgetting (memory ≈ 500) within ±0.15.
    #[test]
    fn ar2_recovers_known_coefficients() {
        for (lambda, tolerance) in [(1.0, 0.05), (DEFAULT_FORGETTING, 0.15)] {
            let mut rng = ChaCha8Rng::seed_from_u64(21);
            let mut model = Arima::new(ArimaConfig::ar(2).with_forgetting(lambda));
            assert_eq!(model.name(), "ar");
            let (mut y1, mut y2) = (0.0, 0.0);
            for _ in 0..5000 {
                let y = 0.6 * y1 - 0.3 * y2 + gaussian(&mut rng);
                model.update(y);
                (y2, y1) = (y1, y);
            }
            // Layout: [intercept, φ1, φ2].
            let c = model.coefficients();
            assert_eq!(c.len(), 3);
            assert!((c[1] - 0.6).abs() < tolerance, "λ={lambda}: {c:?}");
            assert!((c[2] + 0.3).abs() < tolerance, "λ={lambda}: {c:?}");
            assert!(c[0].abs() < 0.1, "λ={lambda}: {c:?}");
        }
    }

    /// ARMA(1,1) `y_t = 0.5·y_{t−1} + e_t + 0.4·e_{t−1}`: extended least squares recovers the MA
    /// coefficient within ±0.08 and the AR coefficient within ±0.08 after 20,000 observations
    /// (`λ = 1`; the residual regressor converges more slowly than a lagged value).
    #[test]
    fn arma11_recovers_ma_coefficient() {
        let mut rng = ChaCha8Rng::seed_from_u64(22);
        let mut model = Arima::new(ArimaConfig::arima(1, 0, 1).with_forgetting(1.0));
        assert_eq!(model.name(), "arima");
        let (mut y1, mut e1) = (0.0, 0.0);
        for _ in 0..20_000 {
            let e = gaussian(&mut rng);
            let y = 0.5 * y1 + e + 0.4 * e1;
            model.update(y);
            (y1, e1) = (y, e);
        }
        // Layout: [intercept, φ1, θ1].
        let c = model.coefficients();
        assert!((c[1] - 0.5).abs() < 0.08, "{c:?}");
        assert!((c[2] - 0.4).abs() < 0.08, "{c:?}");
    }

    /// A pure line `y = 5 + 2t` with `d = 1`: ARIMA(p,1,q) with `p ≥ 1` or a drift forecasts it
    /// exactly (within 1e-6 relative) once warmed up, whatever the forgetting.
    #[test]
    fn linear_trend_with_d1_is_exact_after_warm_up() {
        for config in [
            ArimaConfig::arima(1, 1, 1),
            ArimaConfig::arima(0, 1, 0).with_intercept(true),
            ArimaConfig::arima(2, 1, 0).with_forgetting(0.95),
        ] {
            let mut model = Arima::new(config);
            for t in 0..2000 {
                let y = 5.0 + 2.0 * t as f64;
                if t >= 50 {
                    let f = model.forecast().unwrap_or(f64::NAN);
                    assert!((f - y).abs() < 1e-6 * y, "{config:?} t={t}: {f} vs {y}");
                }
                model.update(y);
            }
        }
    }

    /// A repeating daily pattern (m = 24) with seasonal differencing: exact without noise; with
    /// N(0, 0.01²) noise the mean absolute error after warm-up is below 0.02 (the pattern spans
    /// ±10).
    #[test]
    fn seasonal_pattern_with_seasonal_difference_is_near_exact() {
        let pattern: Vec<f64> = (0..24)
            .map(|h| 10.0 * (h as f64 / 24.0 * std::f64::consts::TAU).sin())
            .collect();
        for noise in [0.0, 0.01] {
            let mut rng = ChaCha8Rng::seed_from_u64(23);
            let mut model = Arima::new(ArimaConfig::sarima(2, 0, 1, 0, 1, 1, 24));
            assert_eq!(model.name(), "sarima");
            let (mut abs, mut count) = (0.0, 0);
            for t in 0..5000 {
                let y = 50.0 + pattern[t % 24] + noise * gaussian(&mut rng);
                if t >= 1000 {
                    abs += (model.forecast().unwrap_or(f64::NAN) - y).abs();
                    count += 1;
                }
                model.update(y);
            }
            let mae = abs / count as f64;
            if noise == 0.0 {
                assert!(mae < 1e-9, "{mae}");
            } else {
                assert!(mae < 0.02, "{mae}");
            }
        }
    }

    /// Forecasts stay finite and nothing panics on any finite input: huge (near `f64::MAX`, whose
    /// differences overflow), tiny (subnormal), zero and sign-flipping values, for every model
    /// shape including ones with an empty regression and a season of 1.
    #[test]
    fn never_panics_and_forecasts_stay_finite() {
        let mut rng = ChaCha8Rng::seed_from_u64(24);
        let configs = [
            ArimaConfig::ar(0),
            ArimaConfig::ar(3),
            ArimaConfig::arima(0, 0, 0).with_intercept(false),
            ArimaConfig::arima(2, 2, 2).with_forgetting(0.9),
            ArimaConfig::sarima(1, 1, 1, 1, 1, 1, 4),
            ArimaConfig::sarima(2, 0, 1, 0, 1, 1, 1),
            ArimaConfig::sarima(1, 0, 1, 2, 0, 2, 0).with_forgetting(f64::NAN),
        ];
        for config in configs {
            for regime in 0..6 {
                let mut model = Arima::new(config);
                for t in 0..3000 {
                    let y = match regime {
                        0 => f64::MAX * if t % 3 == 0 { -1.0 } else { 0.999 },
                        1 => 5e-324 * (t % 7) as f64,
                        2 => 1e300 * gaussian(&mut rng),
                        3 => 1e-300 * gaussian(&mut rng),
                        4 => 0.0,
                        _ => [1e308, -1e-308, 0.0, 3.0, -1e200][t % 5],
                    };
                    model.update(y);
                    if let Some(f) = model.forecast() {
                        assert!(f.is_finite(), "{config:?} regime {regime} t={t}");
                    }
                }
                assert!(model.forecast().is_some(), "{config:?} regime {regime}");
                assert!(model.coefficients().iter().all(|c| c.is_finite()));
            }
        }
    }

    fn env_list(name: &str, default: &[f64]) -> Vec<f64> {
        std::env::var(name)
            .ok()
            .map(|s| s.split(',').filter_map(|v| v.parse().ok()).collect())
            .unwrap_or_else(|| default.to_vec())
    }

    /// Grid over forgetting factors and internal knobs, for tuning the defaults
    /// (`TW_LAMBDAS`, `TW_CLIPS`, `TW_RIDGES`, `TW_POSTERIOR` = comma-separated lists).
    #[test]
    #[ignore]
    fn tuning_grid() {
        let lambdas = env_list("TW_LAMBDAS", &[0.995, 0.998, 0.999]);
        let clips = env_list("TW_CLIPS", &[RESIDUAL_CLIP]);
        let ridges = env_list("TW_RIDGES", &[RIDGE]);
        let posteriors = env_list("TW_POSTERIOR", &[1.0]);
        for &lambda in &lambdas {
            for &clip in &clips {
                for &ridge in &ridges {
                    for &posterior in &posteriors {
                        let mut line =
                            format!("λ={lambda} clip={clip} ridge={ridge} post={posterior}");
                        for (file, m) in SERIES {
                            let y = read_series(file);
                            let config =
                                ArimaConfig::sarima(2, 0, 1, 0, 1, 1, m).with_forgetting(lambda);
                            let mut model = Arima::with_knobs(config, ridge, clip, posterior > 0.0);
                            let (mase, smape) = accuracy(&mut model, &y, m);
                            line += &format!("  {file:.8} MASE {mase:.4} sMAPE {smape:.3}%");
                        }
                        println!("{line}");
                    }
                }
            }
        }
    }

    /// Updates (plus a forecast read) per second on one core:
    /// `cargo test --release -p tidewatch-operators throughput -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn throughput() {
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        let series: Vec<f64> = (0..1 << 16)
            .map(|t| 100.0 + 10.0 * ((t % 48) as f64 / 7.6).sin() + gaussian(&mut rng))
            .collect();
        let mut configs: Vec<(String, ArimaConfig)> = [1, 2, 4, 8]
            .into_iter()
            .map(|p| (format!("ar({p})"), ArimaConfig::ar(p)))
            .collect();
        configs.push(("arima(1,1,1)".into(), ArimaConfig::arima(1, 1, 1)));
        configs.push((
            "sarima(2,0,1)(0,1,1)48".into(),
            ArimaConfig::sarima(2, 0, 1, 0, 1, 1, 48),
        ));
        for (label, config) in configs {
            let mut model = Arima::new(config);
            let rounds = 40;
            let start = std::time::Instant::now();
            let mut sink = 0.0;
            for _ in 0..rounds {
                for &v in &series {
                    sink += model.forecast().unwrap_or(0.0);
                    model.update(v);
                }
            }
            let elapsed = start.elapsed().as_secs_f64();
            let rate = (rounds * series.len()) as f64 / elapsed;
            println!(
                "{label:24} {:.2} M updates/s (checksum {sink:.3e})",
                rate / 1e6
            );
        }
    }
}
