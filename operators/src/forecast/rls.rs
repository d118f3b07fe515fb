//! Recursive least squares (RLS) with exponential forgetting and an optional ridge penalty: the
//! estimator under [`super::arima`] and [`super::regression`].
//!
//! After `n` updates the coefficients `θ` minimise
//!
//! ```text
//! Σ_{i ≤ n} λ^(n−i) · (y_i − θ·x_i)²  +  ridge · ‖θ‖²
//! ```
//!
//! where `λ` is the forgetting factor in `(0, 1]` (`λ = 1`: ordinary least squares; `λ < 1`: an
//! effective memory of about `1 / (1 − λ)` observations, so the fit tracks drift). Each update
//! costs `O(dim²)`; with `dim ≤ 20` the hand-written loops on a flat `Vec<f64>` are faster than a
//! general linear-algebra crate would be, because everything stays in L1 and there is no
//! dispatch or allocation per update.
//!
//! # Numerical safeguards
//!
//! * **Symmetry.** `P` (the inverse information matrix) is stored in full and every update is a
//!   symmetric elementwise formula whose products are written as `(a_i · a_j) · g`, so `P_ij` and
//!   `P_ji` stay bit-identical instead of drifting apart; an asymmetric `P` is the classic route
//!   to RLS divergence.
//! * **Wind-up under forgetting.** With `λ < 1`, directions that the regressors do not excite
//!   are divided by `λ` at every step, so `P` grows geometrically ("covariance wind-up") and the
//!   next burst of excitation makes the coefficients jump. The guard is a leaky
//!   re-regularisation (below): the ridge penalty is re-applied continuously, which bounds `P`
//!   by about `I / ridge` in unexcited directions while excited directions forget normally; with
//!   `ridge = 0` the same leak runs with the diffuse `1 / p0 = 1e-6` (a penalty negligible against
//!   data of order one). A trace cap would also bound `P`, but rescaling the whole of `P` stops
//!   the forgetting in the excited directions too (it inflates all information); so the cap,
//!   at `2 · dim · p0 / λ^dim`, is only a last-resort safety that the leak keeps from firing.
//! * **Loss of positive definiteness** (a non-positive or non-finite diagonal, or a non-positive
//!   denominator) re-initialises `P` to `p0 · I` and keeps `θ`; a non-finite `θ` after an update
//!   (only possible with absurd inputs) resets `θ` to zero as well. Non-finite inputs are ignored.
//!
//! # Ridge under forgetting
//!
//! The textbook start `P0 = I / ridge` is a penalty that fades like `λ^n`, so after a few memory
//! lengths a forgetting RLS is unpenalised. Here, when `λ < 1` and `ridge > 0`, every update also
//! adds a "leaky" pseudo-observation `c · e_j e_jᵀ` to the information matrix, cycling `j` over
//! the coordinates, with `c = ridge · (1 − λ^dim)`: each coordinate receives it once every `dim`
//! steps and it decays like the data, so in steady state it sums to exactly `ridge · I` — the
//! penalty stays at `ridge` for ever, at the cost of one extra rank-one `O(dim²)` update. With
//! `λ = 1` nothing is forgotten and `P0 = I / ridge` alone is exact ridge regression (no leak).
//! With `ridge = 0`, `P0 = p0 · I` with `p0 = 1e6`: a diffuse start, negligible against a handful
//! of observations whose regressors are of order one or larger (scale regressors accordingly).
//!
//! # Examples
//!
//! ```
//! use tidewatch_operators::forecast::rls::Rls;
//!
//! // y = 3 + 2·x, no noise: ordinary least squares (λ = 1, no ridge) recovers it.
//! let mut rls = Rls::new(2, 1.0, 0.0);
//! for i in 0..50 {
//!     let x = i as f64 / 10.0;
//!     rls.update(&[1.0, x], 3.0 + 2.0 * x);
//! }
//! let c = rls.coefficients();
//! assert!((c[0] - 3.0).abs() < 1e-6 && (c[1] - 2.0).abs() < 1e-6);
//! assert!((rls.predict(&[1.0, 10.0]) - 23.0).abs() < 1e-5);
//! ```

/// Initial diagonal of `P` for an unpenalised coordinate: a diffuse prior.
const DIFFUSE_P0: f64 = 1e6;

/// Forgetting factors are clamped into `[MIN_FORGETTING, 1]`: below this the memory is about two
/// observations and the estimate is noise.
pub const MIN_FORGETTING: f64 = 0.5;

/// Recursive least squares estimator of `y ≈ θ·x` with forgetting factor and ridge penalty.
///
/// See the [module documentation](self) for the objective and the numerical safeguards.
#[derive(Debug, Clone)]
pub struct Rls {
    dim: usize,
    forgetting: f64,
    /// Per-coordinate ridge penalty (uniform through [`Rls::new`]).
    ridge: Vec<f64>,
    /// Per-coordinate leak `c_j = (1 − λ^dim) / p0_j`; empty for `λ = 1`.
    leak: Vec<f64>,
    /// Initial diagonal of `P`, per coordinate.
    p0: Vec<f64>,
    max_trace: f64,
    theta: Vec<f64>,
    /// Row-major `dim × dim`, symmetric.
    p: Vec<f64>,
    /// Scratch for `P·x` and for a column of `P`.
    scratch: Vec<f64>,
    leak_index: usize,
    updates: u64,
}

impl Rls {
    /// An estimator for `dim` coefficients, all starting at zero.
    ///
    /// `forgetting` is `λ`, clamped into `[`[`MIN_FORGETTING`]`, 1]` (a non-finite value means 1);
    /// `ridge ≥ 0` is the penalty on `‖θ‖²` (a negative or non-finite value means 0).
    pub fn new(dim: usize, forgetting: f64, ridge: f64) -> Rls {
        Rls::with_ridges(vec![ridge; dim], forgetting)
    }

    /// Like [`Rls::new`] with one ridge penalty per coordinate, e.g. `0` for an intercept that
    /// should not be shrunk.
    pub fn with_ridges(ridge: Vec<f64>, forgetting: f64) -> Rls {
        let dim = ridge.len();
        let forgetting = if forgetting.is_finite() {
            forgetting.clamp(MIN_FORGETTING, 1.0)
        } else {
            1.0
        };
        let ridge: Vec<f64> = ridge
            .into_iter()
            .map(|r| if r.is_finite() && r > 0.0 { r } else { 0.0 })
            .collect();
        let p0: Vec<f64> = ridge
            .iter()
            .map(|&r| {
                if r > 0.0 {
                    (1.0 / r).min(DIFFUSE_P0)
                } else {
                    DIFFUSE_P0
                }
            })
            .collect();
        let lambda_dim = forgetting.powi(i32::try_from(dim).unwrap_or(i32::MAX));
        let leak = if forgetting < 1.0 {
            p0.iter().map(|&p| (1.0 - lambda_dim) / p).collect()
        } else {
            Vec::new()
        };
        let max_trace = 2.0 * p0.iter().sum::<f64>() / lambda_dim.max(f64::MIN_POSITIVE);
        let mut rls = Rls {
            dim,
            forgetting,
            ridge,
            leak,
            p0,
            max_trace,
            theta: vec![0.0; dim],
            p: vec![0.0; dim * dim],
            scratch: vec![0.0; dim],
            leak_index: 0,
            updates: 0,
        };
        rls.reset_covariance();
        rls
    }

    /// Number of coefficients.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The forgetting factor `λ` in use (after clamping).
    pub fn forgetting(&self) -> f64 {
        self.forgetting
    }

    /// The ridge penalty of each coordinate (after sanitising).
    pub fn ridge(&self) -> &[f64] {
        &self.ridge
    }

    /// The current coefficients `θ`, in the order of the regressors.
    pub fn coefficients(&self) -> &[f64] {
        &self.theta
    }

    /// Number of updates that changed the estimate (non-finite inputs are not counted).
    pub fn updates(&self) -> u64 {
        self.updates
    }

    /// `θ·x`. A shorter `x` is padded with zeros, extra entries are ignored.
    pub fn predict(&self, x: &[f64]) -> f64 {
        self.theta.iter().zip(x).map(|(t, v)| t * v).sum()
    }

    /// Takes the observation `(x, y)` and returns the a-priori error `y − predict(x)`.
    ///
    /// A shorter `x` is padded with zeros, extra entries are ignored. If `x` or `y` is not
    /// finite the estimator is left unchanged (the returned error is then not finite either).
    pub fn update(&mut self, x: &[f64], y: f64) -> f64 {
        let error = y - self.predict(x);
        if !error.is_finite() || x.iter().take(self.dim).any(|v| !v.is_finite()) {
            return error;
        }
        let n = self.dim;
        let x = &x[..x.len().min(n)];
        // scratch = P·x.
        for (i, out) in self.scratch.iter_mut().enumerate() {
            let row = &self.p[i * n..i * n + x.len()];
            *out = row.iter().zip(x).map(|(a, b)| a * b).sum();
        }
        let denom = self.forgetting + x.iter().zip(&self.scratch).map(|(a, b)| a * b).sum::<f64>();
        if !(denom.is_finite() && denom > 0.0) {
            self.reset_covariance();
            return error;
        }
        let gain = 1.0 / denom;
        let scaled_error = error * gain;
        for (t, px) in self.theta.iter_mut().zip(&self.scratch) {
            *t += px * scaled_error;
        }
        let inv_forgetting = 1.0 / self.forgetting;
        for i in 0..n {
            let pxi = self.scratch[i];
            let row = &mut self.p[i * n..(i + 1) * n];
            for (pij, &pxj) in row.iter_mut().zip(&self.scratch) {
                *pij = (*pij - (pxi * pxj) * gain) * inv_forgetting;
            }
        }
        if !self.leak.is_empty() {
            self.leak_step();
        }
        self.guard();
        self.updates += 1;
        error
    }

    /// Adds this step's leaky ridge pseudo-observation `c · e_j e_jᵀ` (target 0, no forgetting).
    fn leak_step(&mut self) {
        let n = self.dim;
        let j = self.leak_index;
        self.leak_index = if j + 1 >= n { 0 } else { j + 1 };
        let c = self.leak[j];
        if c <= 0.0 {
            return;
        }
        for i in 0..n {
            self.scratch[i] = self.p[i * n + j];
        }
        let g = c / (1.0 + c * self.scratch[j]);
        let theta_j = self.theta[j];
        for (t, col) in self.theta.iter_mut().zip(&self.scratch) {
            *t -= (col * theta_j) * g;
        }
        for i in 0..n {
            let ci = self.scratch[i];
            let row = &mut self.p[i * n..(i + 1) * n];
            for (pik, &ck) in row.iter_mut().zip(&self.scratch) {
                *pik -= (ci * ck) * g;
            }
        }
    }

    /// Trace cap and positive-definiteness / finiteness checks; `O(dim)` unless they fire.
    fn guard(&mut self) {
        let n = self.dim;
        let mut trace = 0.0;
        let mut healthy = true;
        for i in 0..n {
            let d = self.p[i * n + i];
            healthy &= d.is_finite() && d > 0.0;
            trace += d;
        }
        if !healthy {
            self.reset_covariance();
        } else if trace > self.max_trace {
            let shrink = self.max_trace / trace;
            self.p.iter_mut().for_each(|v| *v *= shrink);
        }
        if self.theta.iter().any(|t| !t.is_finite()) {
            self.theta.iter_mut().for_each(|t| *t = 0.0);
            self.reset_covariance();
        }
    }

    /// `P = diag(p0)`: forgets how certain the estimate is, keeps the estimate.
    fn reset_covariance(&mut self) {
        let n = self.dim;
        self.p.iter_mut().for_each(|v| *v = 0.0);
        for i in 0..n {
            self.p[i * n + i] = self.p0[i];
        }
    }

    /// Re-parametrises the model by the `dim × dim` matrix `t` (row-major): `θ ← T·θ`,
    /// `P ← T·P·Tᵀ`, for regressors that change as `x ← T⁻ᵀ·x` (e.g. moving the time origin of a
    /// polynomial trend). `O(dim³)`; meant for small `dim`.
    pub(crate) fn reparametrise(&mut self, t: &[f64]) {
        let n = self.dim;
        if t.len() != n * n {
            return;
        }
        let theta: Vec<f64> = (0..n)
            .map(|i| (0..n).map(|k| t[i * n + k] * self.theta[k]).sum())
            .collect();
        let mut tp = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                tp[i * n + j] = (0..n).map(|k| t[i * n + k] * self.p[k * n + j]).sum();
            }
        }
        let mut p = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                p[i * n + j] = (0..n).map(|k| tp[i * n + k] * t[j * n + k]).sum();
            }
        }
        // Average the two triangles so that P stays exactly symmetric.
        for i in 0..n {
            for j in i + 1..n {
                let v = 0.5 * (p[i * n + j] + p[j * n + i]);
                p[i * n + j] = v;
                p[j * n + i] = v;
            }
        }
        self.theta = theta;
        self.p = p;
        self.guard();
    }

    /// The inverse information matrix `P`, row-major (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn covariance(&self) -> &[f64] {
        &self.p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::test_support::gaussian;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn max_asymmetry(rls: &Rls) -> u64 {
        let n = rls.dim();
        let p = rls.covariance();
        let mut worst = 0;
        for i in 0..n {
            for j in 0..n {
                if p[i * n + j].to_bits() != p[j * n + i].to_bits() {
                    worst += 1;
                }
            }
        }
        worst
    }

    /// Noisy `y = 1 − 2·x1 + 0.5·x2`: OLS recovers within 0.02 after 5,000 observations
    /// (standard error ≈ 0.1/√5000 ≈ 0.0014).
    #[test]
    fn recovers_linear_model_and_keeps_p_symmetric() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut rls = Rls::new(3, 1.0, 0.0);
        for _ in 0..5000 {
            let x = [1.0, gaussian(&mut rng), gaussian(&mut rng)];
            let y = 1.0 - 2.0 * x[1] + 0.5 * x[2] + 0.1 * gaussian(&mut rng);
            rls.update(&x, y);
        }
        let c = rls.coefficients();
        assert!((c[0] - 1.0).abs() < 0.02, "{c:?}");
        assert!((c[1] + 2.0).abs() < 0.02, "{c:?}");
        assert!((c[2] - 0.5).abs() < 0.02, "{c:?}");
        assert_eq!(max_asymmetry(&rls), 0);
    }

    /// λ < 1 with two regressors stuck at zero: without a guard `P` would grow like λ⁻ⁿ
    /// (0.95^-20000 overflows); with the leak the trace stays within `p0 / λ^dim` per coordinate
    /// and `P` stays symmetric, with and without ridge. When excitation returns, the fit forgets
    /// the old regime at the normal rate (exact within 1e-3 after 200 noise-free steps).
    #[test]
    fn no_wind_up_without_excitation() {
        for ridge in [0.0, 0.1] {
            let mut rls = Rls::new(3, 0.95, ridge);
            let max_trace: f64 = rls.covariance().iter().step_by(4).sum::<f64>() / 0.95f64.powi(3);
            for i in 0..20_000 {
                let y = if i % 2 == 0 { 1.0 } else { 2.0 };
                rls.update(&[1.0, 0.0, 0.0], y);
                let trace: f64 = rls.covariance().iter().step_by(4).sum();
                assert!(trace.is_finite() && trace <= max_trace * (1.0 + 1e-12));
            }
            assert_eq!(max_asymmetry(&rls), 0);
            // Excitation comes back: the estimate moves but stays finite and sensible.
            for i in 0..200 {
                let x = [1.0, (i % 7) as f64, (i % 3) as f64];
                rls.update(&x, 2.0 + x[1] - x[2]);
            }
            let c = rls.coefficients();
            assert!(c.iter().all(|v| v.is_finite()));
            if ridge == 0.0 {
                let want = [2.0, 1.0, -1.0];
                assert!(
                    c.iter().zip(want).all(|(c, w)| (c - w).abs() < 1e-3),
                    "{c:?}"
                );
            }
        }
    }

    /// With forgetting, the leaky re-regularisation keeps the penalty: the ridge estimate of a
    /// coefficient stays shrunk long after `P0` has been forgotten, in line with the closed form
    /// `Σx·y / (Σx² + ridge)` of the weighted problem.
    #[test]
    fn ridge_does_not_fade_under_forgetting() {
        let lambda: f64 = 0.99;
        let ridge = 50.0;
        let mut rls = Rls::new(1, lambda, ridge);
        let mut plain = Rls::new(1, lambda, 0.0);
        for _ in 0..10_000 {
            rls.update(&[1.0], 1.0);
            plain.update(&[1.0], 1.0);
        }
        // Weighted Σx² = 1/(1−λ) = 100, Σxy = 100: ridge estimate 100/150.
        let expected = 100.0 / (100.0 + ridge);
        assert!(
            (rls.coefficients()[0] - expected).abs() < 0.02,
            "{:?}",
            rls.coefficients()
        );
        assert!((plain.coefficients()[0] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn never_panics_or_goes_non_finite() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for lambda in [1.0, 0.9, f64::NAN, -3.0, 7.0] {
            for ridge in [0.0, 1e-300, 1.0, f64::INFINITY, -1.0] {
                let mut rls = Rls::new(4, lambda, ridge);
                for i in 0..2000 {
                    let scale = match i % 4 {
                        0 => 1e300,
                        1 => 1e-300,
                        2 => 1.0,
                        _ => 1e150,
                    };
                    let x: Vec<f64> = (0..4).map(|_| scale * gaussian(&mut rng)).collect();
                    rls.update(&x, scale * gaussian(&mut rng));
                    rls.update(&x[..2], f64::NAN);
                    assert!(rls.coefficients().iter().all(|v| v.is_finite()));
                    assert!(rls.predict(&[1.0; 4]).is_finite());
                }
            }
        }
        let mut empty = Rls::new(0, 0.99, 1.0);
        assert_eq!(empty.update(&[1.0], 2.0), 2.0);
        assert_eq!(empty.predict(&[]), 0.0);
    }
}
