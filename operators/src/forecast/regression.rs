//! Online regression by recursive least squares ([`super::rls`]) with forgetting: linear,
//! polynomial and ridge regression on features ([`RlsRegression`]), and a polynomial trend in
//! time as a univariate [`Forecaster`] ([`TrendRegression`]).
//!
//! The polynomial basis takes the powers `1..=degree` of each feature separately, without
//! cross terms (`x1·x2`): the number of coefficients grows linearly with features and degree
//! (`1 + features · degree`) instead of combinatorially, which keeps the `O(dim²)` update cheap;
//! pass products as extra features when an interaction matters.
//!
//! # Examples
//!
//! ```
//! use tidewatch_operators::forecast::regression::{Basis, RlsRegression, TrendRegression};
//! use tidewatch_operators::forecast::Forecaster;
//!
//! // y = 2 + 3·x1 − x2, fitted exactly.
//! let mut reg = RlsRegression::new(2, Basis::Linear, 1.0, 0.0);
//! for i in 0..100 {
//!     let x = [(i % 10) as f64, (i % 7) as f64];
//!     reg.update(&x, 2.0 + 3.0 * x[0] - x[1]);
//! }
//! let c = reg.coefficients(); // [intercept, x1, x2]
//! assert!((c[0] - 2.0).abs() < 1e-4 && (c[1] - 3.0).abs() < 1e-4 && (c[2] + 1.0).abs() < 1e-4);
//! assert_eq!(reg.observations(), 100);
//!
//! // A linear trend forecasts the next point of a line.
//! let mut trend = TrendRegression::linear(0.98);
//! for t in 0..50 {
//!     trend.update(10.0 + 0.5 * t as f64);
//! }
//! assert_eq!(trend.name(), "linear_trend");
//! assert!((trend.forecast().unwrap() - 35.0).abs() < 1e-4);
//! ```

use super::rls::Rls;
use super::Forecaster;

/// How features become regressors. The intercept is always included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// `[1, x1, …, xk]`.
    Linear,
    /// `[1, x1, x1², …, x1^degree, x2, …, xk^degree]`: per-feature powers, no cross terms.
    /// A degree of 0 is taken as 1.
    Polynomial {
        /// Highest power of each feature.
        degree: usize,
    },
}

impl Basis {
    fn degree(self) -> usize {
        match self {
            Basis::Linear => 1,
            Basis::Polynomial { degree } => degree.max(1),
        }
    }
}

/// Multi-feature regression `y ≈ θ·basis(x)` estimated by RLS with forgetting and ridge.
///
/// Coefficient layout ([`RlsRegression::coefficients`]): index 0 is the intercept; the
/// coefficient of `x_j^p` (feature `j` from 0, power `p` in `1..=degree`) is at
/// `1 + j·degree + (p − 1)`. For [`Basis::Linear`] that is `[intercept, x1, …, xk]`.
///
/// The ridge penalty applies to every coefficient except the intercept (shrinking the intercept
/// would bias the mean level, which is not what a penalty on model complexity is for).
#[derive(Debug, Clone)]
pub struct RlsRegression {
    features: usize,
    degree: usize,
    rls: Rls,
    regressors: Vec<f64>,
    observations: u64,
}

impl RlsRegression {
    /// A regression on `features` features with the given basis, forgetting factor `λ` in
    /// `(0, 1]` and ridge penalty `≥ 0` (see [`Rls::new`] for how out-of-range values are
    /// clamped).
    pub fn new(features: usize, basis: Basis, forgetting: f64, ridge: f64) -> RlsRegression {
        let degree = basis.degree();
        let dim = 1 + features * degree;
        let mut ridges = vec![ridge; dim];
        ridges[0] = 0.0;
        RlsRegression {
            features,
            degree,
            rls: Rls::with_ridges(ridges, forgetting),
            regressors: vec![0.0; dim],
            observations: 0,
        }
    }

    /// Number of features expected in `x`.
    pub fn features(&self) -> usize {
        self.features
    }

    /// The prediction `θ·basis(x)`. Missing features count as 0, extra ones are ignored.
    pub fn predict(&self, x: &[f64]) -> f64 {
        let theta = self.rls.coefficients();
        let mut sum = theta[0];
        for (j, &v) in x.iter().take(self.features).enumerate() {
            let mut power = 1.0;
            for c in &theta[1 + j * self.degree..1 + (j + 1) * self.degree] {
                power *= v;
                sum += c * power;
            }
        }
        sum
    }

    /// Takes the observation `(x, y)` and returns the a-priori error `y − predict(x)`.
    ///
    /// Missing features count as 0, extra ones are ignored. An observation with a non-finite
    /// feature or target (or a power that overflows) leaves the model unchanged and is not
    /// counted.
    pub fn update(&mut self, x: &[f64], y: f64) -> f64 {
        self.regressors[0] = 1.0;
        for j in 0..self.features {
            let v = x.get(j).copied().unwrap_or(0.0);
            let mut power = 1.0;
            for slot in &mut self.regressors[1 + j * self.degree..1 + (j + 1) * self.degree] {
                power *= v;
                *slot = power;
            }
        }
        let before = self.rls.updates();
        let error = self.rls.update(&self.regressors, y);
        if self.rls.updates() > before {
            self.observations += 1;
        }
        error
    }

    /// The coefficients, intercept first; layout in the [type documentation](RlsRegression).
    pub fn coefficients(&self) -> &[f64] {
        self.rls.coefficients()
    }

    /// Number of observations taken into the estimate.
    pub fn observations(&self) -> u64 {
        self.observations
    }
}

/// A polynomial trend in time, `y_t ≈ a_0 + a_1·s + … + a_k·s^k`, fitted by RLS with forgetting
/// and used as a univariate [`Forecaster`] (degree 1: `"linear_trend"`, the online analogue of
/// Brown's double exponential smoothing).
///
/// Regressing on the raw index `t` would make `[1, t]` ever more collinear as `t` grows. Instead
/// the time origin moves with the series: `s = (t − t_next) / h`, where `t_next` is the index of
/// the next observation and the time unit `h` is the length of the memory, `min(n, 1 / (1 − λ))`
/// steps after `n` observations. After each update the estimate is re-parametrised to the new
/// origin and unit (an exact linear change of coefficients, `O(degree³)`), so the forecast is
/// simply `a_0` and the regressors over the memory window stay within `[−1, 0]`.
///
/// Coefficients ([`TrendRegression::coefficients`]): `[a_0, a_1, …, a_k]` in that moving
/// parametrisation: `a_0` is the forecast of the next observation, `a_1 / h` the slope per step
/// (degree 1).
#[derive(Debug, Clone)]
pub struct TrendRegression {
    degree: usize,
    rls: Rls,
    /// `e_0`: the next observation is always at `s = 0`.
    unit: Vec<f64>,
    /// Row-major re-parametrisation for a one-step move of the origin.
    shift: Vec<f64>,
    time_unit: f64,
    /// `1 / (1 − λ)`, infinite for `λ = 1`.
    memory: f64,
    observations: u64,
}

impl TrendRegression {
    /// A trend of the given polynomial degree (0: a forgetting mean) with forgetting factor `λ`
    /// (clamped like [`Rls::new`]).
    pub fn new(degree: usize, forgetting: f64) -> TrendRegression {
        let rls = Rls::new(degree + 1, forgetting, 0.0);
        let lambda = rls.forgetting();
        let memory = if lambda < 1.0 {
            1.0 / (1.0 - lambda)
        } else {
            f64::INFINITY
        };
        let n = degree + 1;
        let mut unit = vec![0.0; n];
        unit[0] = 1.0;
        let mut trend = TrendRegression {
            degree,
            rls,
            unit,
            shift: vec![0.0; n * n],
            time_unit: 1.0,
            memory,
            observations: 0,
        };
        trend.build_shift(1.0);
        trend
    }

    /// The re-parametrisation from (origin `o`, unit `h`) to (origin `o + 1`, unit `h'`):
    /// `s_old = r·s_new + δ` with `r = h'/h`, `δ = 1/h`, so
    /// `a_new_q = Σ_{p ≥ q} C(p, q)·r^q·δ^(p−q)·a_old_p`.
    fn build_shift(&mut self, new_unit: f64) {
        let n = self.degree + 1;
        let ratio = new_unit / self.time_unit;
        let delta = 1.0 / self.time_unit;
        let mut ratio_power = 1.0;
        for q in 0..n {
            let mut binomial = 1.0;
            let mut delta_power = 1.0;
            for p in 0..n {
                self.shift[q * n + p] = if p < q {
                    0.0
                } else {
                    let v = binomial * ratio_power * delta_power;
                    binomial = binomial * (p + 1) as f64 / (p + 1 - q) as f64;
                    delta_power *= delta;
                    v
                };
            }
            ratio_power *= ratio;
        }
        self.time_unit = new_unit;
    }

    /// A linear trend (degree 1), named `"linear_trend"`.
    pub fn linear(forgetting: f64) -> TrendRegression {
        TrendRegression::new(1, forgetting)
    }

    /// The polynomial degree.
    pub fn degree(&self) -> usize {
        self.degree
    }

    /// The time unit `h` in steps (see the [type documentation](TrendRegression)).
    pub fn time_unit(&self) -> f64 {
        self.time_unit
    }

    /// `[a_0, …, a_k]` in the moving parametrisation of the [type documentation](TrendRegression).
    pub fn coefficients(&self) -> &[f64] {
        self.rls.coefficients()
    }

    /// Number of observations taken.
    pub fn observations(&self) -> u64 {
        self.observations
    }
}

impl Forecaster for TrendRegression {
    fn name(&self) -> &'static str {
        match self.degree {
            1 => "linear_trend",
            2 => "quadratic_trend",
            _ => "polynomial_trend",
        }
    }

    fn forecast(&self) -> Option<f64> {
        if self.observations <= self.degree as u64 {
            return None;
        }
        let f = self.rls.coefficients()[0];
        f.is_finite().then_some(f)
    }

    fn update(&mut self, value: f64) {
        let before = self.rls.updates();
        self.rls.update(&self.unit, value);
        if self.rls.updates() > before {
            self.observations += 1;
        }
        let new_unit = (self.observations as f64).min(self.memory).max(1.0);
        self.build_shift(new_unit);
        self.rls.reparametrise(&self.shift);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::test_support::gaussian;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// `y = 2 + 3·x1 − x2 + N(0, 0.5²)`, x ~ U(−5, 5): coefficients within ±0.05 after 2,000
    /// observations (standard errors ≈ 0.5/(√2000·2.9) ≈ 0.004 for the slopes).
    #[test]
    fn linear_regression_recovers_coefficients() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut reg = RlsRegression::new(2, Basis::Linear, 1.0, 0.0);
        for _ in 0..2000 {
            let x = [rng.random_range(-5.0..5.0), rng.random_range(-5.0..5.0)];
            let y = 2.0 + 3.0 * x[0] - x[1] + 0.5 * gaussian(&mut rng);
            reg.update(&x, y);
        }
        let c = reg.coefficients();
        assert!((c[0] - 2.0).abs() < 0.05, "{c:?}");
        assert!((c[1] - 3.0).abs() < 0.05, "{c:?}");
        assert!((c[2] + 1.0).abs() < 0.05, "{c:?}");
        assert_eq!(reg.observations(), 2000);
        assert!((reg.predict(&[1.0, 1.0]) - 4.0).abs() < 0.1);
    }

    /// `y = 1 + 2·x − 0.5·x² + N(0, 0.1²)` and a second, irrelevant feature: degree-2 basis
    /// recovers `[1, 2, −0.5, 0, 0]` within ±0.02.
    #[test]
    fn polynomial_degree_two_recovers_quadratic() {
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let mut reg = RlsRegression::new(2, Basis::Polynomial { degree: 2 }, 1.0, 0.0);
        for _ in 0..3000 {
            let x = [rng.random_range(-3.0..3.0), rng.random_range(-3.0..3.0)];
            let y = 1.0 + 2.0 * x[0] - 0.5 * x[0] * x[0] + 0.1 * gaussian(&mut rng);
            reg.update(&x, y);
        }
        let c = reg.coefficients();
        let expected = [1.0, 2.0, -0.5, 0.0, 0.0];
        assert_eq!(c.len(), expected.len());
        for (got, want) in c.iter().zip(expected) {
            assert!((got - want).abs() < 0.02, "{c:?}");
        }
    }

    fn slope_norm(c: &[f64]) -> f64 {
        c[1..].iter().map(|v| v * v).sum::<f64>().sqrt()
    }

    /// Ridge shrinks the (non-intercept) coefficient norm against the plain fit, with and without
    /// forgetting, on few, collinear observations where the penalty matters.
    #[test]
    fn ridge_shrinks_coefficient_norm() {
        for lambda in [1.0, 0.98] {
            let mut rng = ChaCha8Rng::seed_from_u64(13);
            let mut plain = RlsRegression::new(3, Basis::Linear, lambda, 0.0);
            let mut ridge = RlsRegression::new(3, Basis::Linear, lambda, 200.0);
            for _ in 0..500 {
                let a = gaussian(&mut rng);
                let x = [a, a + 0.05 * gaussian(&mut rng), gaussian(&mut rng)];
                let y = 1.0 + x[0] + x[1] + 0.5 * x[2] + gaussian(&mut rng);
                plain.update(&x, y);
                ridge.update(&x, y);
            }
            let (p, r) = (
                slope_norm(plain.coefficients()),
                slope_norm(ridge.coefficients()),
            );
            assert!(r < 0.9 * p, "λ={lambda}: ridge {r} plain {p}");
            // The intercept is not penalised.
            assert!((ridge.coefficients()[0] - 1.0).abs() < 0.3);
        }
    }

    /// The slope jumps from 1 to −1 at step 3,000 (noise σ = 0.1): with λ = 0.99 the estimate is
    /// within 0.05 of −1 after 500 more steps; with λ = 1 it is still near the average of the
    /// two regimes (above −0.5).
    #[test]
    fn forgetting_tracks_coefficient_change() {
        let mut rng = ChaCha8Rng::seed_from_u64(14);
        let mut tracking = RlsRegression::new(1, Basis::Linear, 0.99, 0.0);
        let mut frozen = RlsRegression::new(1, Basis::Linear, 1.0, 0.0);
        for step in 0..3500 {
            let slope = if step < 3000 { 1.0 } else { -1.0 };
            let x = [gaussian(&mut rng)];
            let y = slope * x[0] + 0.1 * gaussian(&mut rng);
            tracking.update(&x, y);
            frozen.update(&x, y);
        }
        assert!(
            (tracking.coefficients()[1] + 1.0).abs() < 0.05,
            "{:?}",
            tracking.coefficients()
        );
        assert!(
            frozen.coefficients()[1] > -0.5,
            "{:?}",
            frozen.coefficients()
        );
    }

    #[test]
    fn trend_forecasts_lines_and_quadratics_exactly() {
        for lambda in [1.0, 0.99, 0.9] {
            let mut line = TrendRegression::linear(lambda);
            let mut quad = TrendRegression::new(2, lambda);
            assert_eq!(line.forecast(), None);
            for t in 0..3000 {
                let t = t as f64;
                if t >= 10.0 {
                    let want_line = 5.0 - 0.25 * t;
                    let want_quad = 1.0 + 0.1 * t + 0.01 * t * t;
                    let got = line.forecast().unwrap_or(f64::NAN);
                    assert!(
                        (got - want_line).abs() < 1e-4 * (1.0 + want_line.abs()),
                        "{got}"
                    );
                    let got = quad.forecast().unwrap_or(f64::NAN);
                    assert!(
                        (got - want_quad).abs() < 1e-4 * want_quad,
                        "λ={lambda} t={t} {got}"
                    );
                }
                line.update(5.0 - 0.25 * t);
                quad.update(1.0 + 0.1 * t + 0.01 * t * t);
            }
        }
        assert_eq!(TrendRegression::new(2, 0.9).name(), "quadratic_trend");
    }

    #[test]
    fn never_panics_on_extreme_values() {
        let mut rng = ChaCha8Rng::seed_from_u64(15);
        let mut reg = RlsRegression::new(2, Basis::Polynomial { degree: 3 }, 0.95, 0.1);
        let mut trend = TrendRegression::new(2, 0.95);
        for i in 0..5000 {
            let scale = [1e300, 1e-300, 1.0, 1e-30, 1e30][i % 5];
            let x = [scale * gaussian(&mut rng), scale];
            reg.update(&x, scale * gaussian(&mut rng));
            reg.update(&x[..1], scale);
            trend.update(scale * gaussian(&mut rng));
            assert!(reg.coefficients().iter().all(|c| c.is_finite()));
            if let Some(f) = trend.forecast() {
                assert!(f.is_finite());
            }
        }
        let mut empty = RlsRegression::new(0, Basis::Linear, 1.0, 0.0);
        empty.update(&[], 3.0);
        assert!((empty.predict(&[1.0]) - 3.0).abs() < 1e-5);
    }
}
