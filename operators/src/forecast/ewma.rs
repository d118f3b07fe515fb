//! Exponentially weighted moving average (simple exponential smoothing): the forecast is the
//! level `l`, and an observation `y` moves it to `l + alpha (y - l)`.
//!
//! [`Ewma::new`] keeps `alpha` fixed. [`Ewma::fitted`] re-estimates it like
//! [`super::holt_winters`] does its parameters: every [`FIT_REFIT_EVERY`] observations, `alpha`
//! becomes the minimiser of the one-step-ahead squared error over (about) the last
//! [`FIT_WINDOW`] observations, replayed from the level stored at the start of that window, and
//! the level becomes the replay's under the new `alpha`. The search is a shrinking grid: each
//! pass over the window replays 16 values of `alpha` side by side (a replay is a serial chain, so
//! the lanes cost little more than one) and keeps the two grid steps around the best; 7 passes
//! reach a step below 2e-7, where a golden-section search (one value per pass) took 32 for
//! 5e-7. An update then takes about 0.05 µs, refits included (0.18 µs with the golden section;
//! one core of an AMD EPYC, `nyc_taxi`).
//!
//! The model warms up for one observation: the first one becomes the level.
//!
//! # Examples
//! ```
//! use tidewatch_operators::forecast::ewma::Ewma;
//! use tidewatch_operators::forecast::Forecaster;
//!
//! let mut ewma = Ewma::new(0.5);
//! assert_eq!(ewma.forecast(), None);
//! ewma.update(10.0);
//! assert_eq!(ewma.forecast(), Some(10.0));
//! ewma.update(20.0);
//! assert_eq!(ewma.forecast(), Some(15.0));
//! assert_eq!(ewma.alpha(), 0.5);
//! ```

use super::Forecaster;
use std::collections::VecDeque;

/// Smallest `alpha`: [`Ewma::new`] raises smaller (and NaN) values to it, so the level always
/// moves towards the data.
pub const MIN_ALPHA: f64 = 1e-6;

/// Observations between two re-estimations of `alpha` in [`Ewma::fitted`].
pub const FIT_REFIT_EVERY: usize = 256;

/// Observations the re-estimation of [`Ewma::fitted`] fits on.
pub const FIT_WINDOW: usize = 512;

/// Observations before the first re-estimation of [`Ewma::fitted`]; it re-estimates again
/// at each power of two up to [`FIT_REFIT_EVERY`], then every [`FIT_REFIT_EVERY`].
pub const FIRST_FIT: u64 = 16;

/// Values of `alpha` tried together in one pass over the window of a refit.
const GRID_LANES: usize = 16;

/// Passes over the window per refit: each narrows the bracket of `alpha` by
/// `(GRID_LANES + 1) / 2 = 8.5`, so the last grid step is `1 / (17 * 8.5^6)`, below 2e-7 (the
/// bracket of the golden-section search this replaced ended at 5e-7, after 32 passes).
const GRID_PASSES: usize = 7;

/// Exponentially weighted moving average; see the module documentation.
#[derive(Clone, Debug)]
pub struct Ewma {
    alpha: f64,
    /// `None` before the first observation.
    level: Option<f64>,
    /// `Some` for [`Ewma::fitted`].
    fit: Option<Fit>,
}

/// What [`Ewma::fitted`] keeps to re-estimate `alpha`.
#[derive(Clone, Debug, Default)]
struct Fit {
    /// Observations since the oldest snapshot.
    history: Vec<f64>,
    /// `(observations seen when taken, level)`, increasing; the first is where `history` starts.
    snapshots: VecDeque<(u64, f64)>,
    seen: u64,
    since_refit: usize,
}

impl Ewma {
    /// An EWMA with fixed smoothing `alpha`, clamped into `[MIN_ALPHA, 1]` (NaN becomes
    /// [`MIN_ALPHA`]); `alpha = 1` forecasts the last observation.
    pub fn new(alpha: f64) -> Ewma {
        let alpha = if alpha >= MIN_ALPHA {
            alpha.min(1.0)
        } else {
            MIN_ALPHA
        };
        Ewma {
            alpha,
            level: None,
            fit: None,
        }
    }

    /// An EWMA whose `alpha` is re-estimated every [`FIT_REFIT_EVERY`] observations on the last
    /// [`FIT_WINDOW`]; it starts at 0.5 and makes its first fits after [`FIRST_FIT`] observations
    /// and at each power of two after that.
    pub fn fitted() -> Ewma {
        Ewma {
            alpha: 0.5,
            level: None,
            fit: Some(Fit::default()),
        }
    }

    /// The current smoothing parameter.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// The current level (the forecast), `None` before the first observation.
    pub fn level(&self) -> Option<f64> {
        self.level
    }

    fn refit(&mut self) {
        let (Some(fit), Some(_)) = (&mut self.fit, self.level) else {
            return;
        };
        fit.since_refit = 0;
        let window_start = fit.seen.saturating_sub(FIT_WINDOW as u64);
        // Keep the latest snapshot at or before the window start.
        while fit.snapshots.len() > 1 && fit.snapshots[1].0 <= window_start {
            let gone = fit.snapshots[1].0 - fit.snapshots[0].0;
            fit.history.drain(..gone as usize);
            fit.snapshots.pop_front();
        }
        let Some(&(_, start)) = fit.snapshots.front() else {
            return;
        };
        // A grid search: each pass replays the window under `GRID_LANES` values of `alpha`
        // spread evenly inside the bracket, interleaved (the replay is a serial chain per
        // value, so sixteen lanes cost little more than one), and narrows the bracket to the
        // two grid steps around the best one. A golden-section search needs one pass per step
        // and 32 passes for the same precision.
        let (mut lo, mut hi) = (MIN_ALPHA.max(1e-3), 1.0);
        let mut best: Option<(f64, f64)> = None;
        for _ in 0..GRID_PASSES {
            let step = (hi - lo) / (GRID_LANES + 1) as f64;
            let alpha: [f64; GRID_LANES] = std::array::from_fn(|k| lo + (k + 1) as f64 * step);
            let (sse, level) = grid_pass(&fit.history, start, &alpha);
            // The lowest finite SSE with a finite level; ties keep the smaller alpha.
            let mut pass_best: Option<(usize, f64)> = None;
            for k in 0..GRID_LANES {
                if sse[k].is_finite()
                    && level[k].is_finite()
                    && pass_best.is_none_or(|(_, value)| sse[k] < value)
                {
                    pass_best = Some((k, sse[k]));
                }
            }
            let Some((k, _)) = pass_best else {
                break;
            };
            best = Some((alpha[k], level[k]));
            lo = alpha[k] - step;
            hi = alpha[k] + step;
        }
        if let Some((alpha, level)) = best {
            self.alpha = alpha;
            self.level = Some(level);
        }
        if let Some(level) = self.level {
            fit.snapshots.push_back((fit.seen, level));
        }
    }
}

impl Forecaster for Ewma {
    fn name(&self) -> &'static str {
        "ewma"
    }

    fn forecast(&self) -> Option<f64> {
        self.level.filter(|l| l.is_finite())
    }

    fn update(&mut self, value: f64) {
        if !value.is_finite() {
            return;
        }
        let Some(level) = &mut self.level else {
            self.level = Some(value);
            if let Some(fit) = &mut self.fit {
                fit.snapshots.push_back((0, value));
            }
            return;
        };
        *level += self.alpha * (value - *level);
        if !level.is_finite() {
            // Only overflowing input gets here; start over rather than forecast infinities.
            self.level = None;
            if let Some(fit) = &mut self.fit {
                *fit = Fit::default();
            }
            return;
        }
        if let Some(fit) = &mut self.fit {
            fit.history.push(value);
            fit.seen += 1;
            fit.since_refit += 1;
            // Early fits (after 16, 32, 64, 128 observations) so that a young series does not
            // wait FIT_REFIT_EVERY observations at the starting alpha.
            let early = fit.seen < FIT_REFIT_EVERY as u64
                && fit.seen >= FIRST_FIT
                && fit.seen.is_power_of_two();
            if fit.since_refit >= FIT_REFIT_EVERY || early {
                self.refit();
            }
        }
    }
}

/// The one-step SSE over `history` from level `start` and the final level, for each `alpha`.
fn grid_pass(
    history: &[f64],
    start: f64,
    alpha: &[f64; GRID_LANES],
) -> ([f64; GRID_LANES], [f64; GRID_LANES]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU has AVX, checked just above.
        return unsafe { grid_pass_avx(history, start, alpha) };
    }
    grid_pass_lanes(history, start, alpha)
}

/// [`grid_pass_lanes`] compiled for AVX (four lanes per register instead of two). No fused
/// multiply-add, so both give the same result to the bit.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn grid_pass_avx(
    history: &[f64],
    start: f64,
    alpha: &[f64; GRID_LANES],
) -> ([f64; GRID_LANES], [f64; GRID_LANES]) {
    grid_pass_lanes(history, start, alpha)
}

/// [`grid_pass`], the lanes interleaved. The level moves as `(1 - alpha) level + alpha y`
/// rather than `level + alpha (y - level)`: the same up to rounding, but the error `y - level`
/// is then off the chain from one level to the next, which bounds the pass.
#[inline(always)]
fn grid_pass_lanes(
    history: &[f64],
    start: f64,
    alpha: &[f64; GRID_LANES],
) -> ([f64; GRID_LANES], [f64; GRID_LANES]) {
    let keep: [f64; GRID_LANES] = std::array::from_fn(|k| 1.0 - alpha[k]);
    let mut level = [start; GRID_LANES];
    let mut sse = [0.0; GRID_LANES];
    for &y in history {
        for k in 0..GRID_LANES {
            let e = y - level[k];
            sse[k] += e * e;
            level[k] = keep[k] * level[k] + alpha[k] * y;
        }
    }
    (sse, level)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::test_support::{mase_smape, nab_series, AMBIENT, NYC};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn converges_on_a_constant() {
        for mut ewma in [Ewma::new(0.3), Ewma::new(0.05), Ewma::fitted()] {
            ewma.update(-40.0);
            for _ in 0..2000 {
                ewma.update(7.0);
            }
            let f = ewma.forecast().unwrap_or(f64::NAN);
            assert!((f - 7.0).abs() < 1e-9, "alpha {}: {f}", ewma.alpha());
        }
    }

    #[test]
    fn alpha_is_clamped() {
        assert_eq!(Ewma::new(0.0).alpha(), MIN_ALPHA);
        assert_eq!(Ewma::new(-3.0).alpha(), MIN_ALPHA);
        assert_eq!(Ewma::new(f64::NAN).alpha(), MIN_ALPHA);
        assert_eq!(Ewma::new(7.0).alpha(), 1.0);
        assert_eq!(Ewma::new(0.25).alpha(), 0.25);
        assert_eq!(Ewma::new(0.25).name(), "ewma");
    }

    #[test]
    fn fitted_alpha_follows_the_data() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        // A random walk: the last value is the best forecast, alpha = 1.
        let mut walk = Ewma::fitted();
        let mut y = 0.0;
        for _ in 0..5000 {
            y += rng.random_range(-1.0..1.0);
            walk.update(y);
        }
        assert!(walk.alpha() > 0.9, "random walk: alpha {}", walk.alpha());
        // White noise around a constant: the mean is the best forecast, alpha near 0.
        let mut noise = Ewma::fitted();
        for _ in 0..5000 {
            noise.update(10.0 + rng.random_range(-1.0..1.0));
        }
        assert!(noise.alpha() < 0.05, "white noise: alpha {}", noise.alpha());
    }

    #[test]
    fn forecasts_stay_finite_on_extreme_input() {
        let mut ewma = Ewma::fitted();
        for t in 0..3000 {
            let value = if t % 300 < 3 {
                f64::MAX
            } else {
                -f64::MAX / 2.0
            };
            ewma.update(value);
            if let Some(f) = ewma.forecast() {
                assert!(f.is_finite(), "t = {t}");
            }
        }
    }

    /// Run: `cargo test -p tidewatch-operators --release -- --nocapture nab_report`.
    #[test]
    fn nab_report() {
        for (file, m) in [NYC, AMBIENT] {
            let y = nab_series(file);
            for (label, mut ewma) in [
                ("0.5", Ewma::new(0.5)),
                ("0.9", Ewma::new(0.9)),
                ("fitted", Ewma::fitted()),
            ] {
                let (mase, smape) = mase_smape(&mut ewma, &y, m);
                println!("ewma({label}) {file}: MASE {mase:.4} sMAPE {smape:.3}%");
                assert!(mase.is_finite());
            }
        }
    }
}
