//! Simple and weighted moving averages of the last `window` observations, as forecasts of the
//! next one.
//!
//! * [`MovingAverage::simple`] (`"sma"`): the mean of the last `window` observations;
//! * [`MovingAverage::weighted`] (`"wma"`): linear weights `1, 2, ..., window` from the oldest
//!   to the newest, divided by `window (window + 1) / 2`.
//!
//! Both forecast once `window` observations have been seen (`None` before). An update is O(1):
//! a ring buffer and running sums, the weighted sum moving by
//! `weighted' = weighted - sum + window * newest` (every weight drops by one and the oldest, at
//! weight 1, leaves). Rounding errors of running sums accumulate without bound on long series
//! (and catastrophically after a huge value has passed through), so both sums are recomputed from
//! the buffer every `window` updates, which keeps the amortised cost O(1).
//!
//! # Examples
//! ```
//! use tidewatch_operators::forecast::moving_average::MovingAverage;
//! use tidewatch_operators::forecast::Forecaster;
//!
//! let mut sma = MovingAverage::simple(3);
//! let mut wma = MovingAverage::weighted(3);
//! for y in [1.0, 2.0, 3.0, 4.0] {
//!     sma.update(y);
//!     wma.update(y);
//! }
//! assert_eq!(sma.forecast(), Some(3.0)); // (2 + 3 + 4) / 3
//! assert_eq!(wma.forecast(), Some(20.0 / 6.0)); // (1*2 + 2*3 + 3*4) / 6
//! assert_eq!((sma.name(), wma.name()), ("sma", "wma"));
//! ```

use super::Forecaster;

/// Moving average forecaster, simple or linearly weighted; see the module documentation.
#[derive(Clone, Debug)]
pub struct MovingAverage {
    weighted: bool,
    window: usize,
    /// The last `window` observations; `buffer[next]` is the oldest once full.
    buffer: Vec<f64>,
    next: usize,
    /// Sum of the buffer.
    sum: f64,
    /// Sum of the buffer with weight `1` for the oldest up to `buffer.len()` for the newest.
    weighted_sum: f64,
    /// Updates since the sums were last recomputed from the buffer.
    since_exact: usize,
}

impl MovingAverage {
    /// Mean of the last `window` observations (`window` 0 is taken as 1); name `"sma"`.
    pub fn simple(window: usize) -> MovingAverage {
        MovingAverage::with_weights(false, window)
    }

    /// Linearly weighted mean of the last `window` observations, the newest weighing `window`
    /// and the oldest 1 (`window` 0 is taken as 1); name `"wma"`.
    pub fn weighted(window: usize) -> MovingAverage {
        MovingAverage::with_weights(true, window)
    }

    fn with_weights(weighted: bool, window: usize) -> MovingAverage {
        let window = window.max(1);
        MovingAverage {
            weighted,
            window,
            buffer: Vec::with_capacity(window),
            next: 0,
            sum: 0.0,
            weighted_sum: 0.0,
            since_exact: 0,
        }
    }

    /// The window length.
    pub fn window(&self) -> usize {
        self.window
    }

    /// Whether this is the weighted average.
    pub fn is_weighted(&self) -> bool {
        self.weighted
    }

    fn recompute_sums(&mut self) {
        let (newer, older) = self.buffer.split_at(self.next);
        let (mut sum, mut weighted_sum) = (0.0, 0.0);
        for (k, &y) in older.iter().chain(newer).enumerate() {
            sum += y;
            weighted_sum += (k + 1) as f64 * y;
        }
        self.sum = sum;
        self.weighted_sum = weighted_sum;
        self.since_exact = 0;
    }
}

impl Forecaster for MovingAverage {
    fn name(&self) -> &'static str {
        if self.weighted {
            "wma"
        } else {
            "sma"
        }
    }

    fn forecast(&self) -> Option<f64> {
        if self.buffer.len() < self.window {
            return None;
        }
        let n = self.window as f64;
        let f = if self.weighted {
            self.weighted_sum / (n * (n + 1.0) / 2.0)
        } else {
            self.sum / n
        };
        f.is_finite().then_some(f)
    }

    fn update(&mut self, value: f64) {
        if !value.is_finite() {
            return;
        }
        if self.buffer.len() < self.window {
            self.buffer.push(value);
            self.sum += value;
            self.weighted_sum += self.buffer.len() as f64 * value;
            self.next = self.buffer.len() % self.window;
            return;
        }
        let oldest = std::mem::replace(&mut self.buffer[self.next], value);
        self.weighted_sum += self.window as f64 * value - self.sum;
        self.sum += value - oldest;
        self.next += 1;
        if self.next == self.window {
            self.next = 0;
        }
        self.since_exact += 1;
        if self.since_exact >= self.window {
            self.recompute_sums();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::test_support::{mase_smape, nab_series, AMBIENT, NYC};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn naive(weighted: bool, last: &[f64]) -> f64 {
        let weight = |k: usize| if weighted { (k + 1) as f64 } else { 1.0 };
        let total: f64 = (0..last.len()).map(weight).sum();
        last.iter()
            .enumerate()
            .map(|(k, y)| weight(k) * y)
            .sum::<f64>()
            / total
    }

    #[test]
    fn matches_naive_recomputation_on_random_data() {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        for window in [0, 1, 2, 3, 7, 50] {
            for weighted in [false, true] {
                let mut ma = if weighted {
                    MovingAverage::weighted(window)
                } else {
                    MovingAverage::simple(window)
                };
                let mut seen = Vec::new();
                for t in 0..3000 {
                    // Bursts of huge values test that the running sums do not keep their
                    // rounding error after the burst has left the window.
                    let value = if t % 1000 < 5 {
                        rng.random_range(-1e15..1e15)
                    } else {
                        rng.random_range(-100.0..100.0)
                    };
                    ma.update(value);
                    seen.push(value);
                    let w = window.max(1);
                    let expected =
                        (seen.len() >= w).then(|| naive(weighted, &seen[seen.len() - w..]));
                    match (ma.forecast(), expected) {
                        (None, None) => {}
                        (Some(f), Some(e)) => {
                            // A few updates after a burst the sums still carry its rounding.
                            let since_burst = t % 1000;
                            let scale = if since_burst < 5 + 2 * w { 1e15 } else { 100.0 };
                            assert!(
                                (f - e).abs() <= 1e-9 * scale,
                                "window {w} weighted {weighted} t {t}: {f} vs {e}"
                            );
                        }
                        other => panic!("window {w} weighted {weighted} t {t}: {other:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn names_and_window() {
        let (sma, wma) = (MovingAverage::simple(5), MovingAverage::weighted(0));
        assert_eq!(
            (sma.name(), sma.window(), sma.is_weighted()),
            ("sma", 5, false)
        );
        assert_eq!(
            (wma.name(), wma.window(), wma.is_weighted()),
            ("wma", 1, true)
        );
    }

    /// Run: `cargo test -p tidewatch-operators --release -- --nocapture nab_report`.
    #[test]
    fn nab_report() {
        for (file, m) in [NYC, AMBIENT] {
            let y = nab_series(file);
            for window in [2, 4, m] {
                for mut ma in [
                    MovingAverage::simple(window),
                    MovingAverage::weighted(window),
                ] {
                    let (mase, smape) = mase_smape(&mut ma, &y, m);
                    println!(
                        "{}({window}) {file}: MASE {mase:.4} sMAPE {smape:.3}%",
                        ma.name()
                    );
                    assert!(mase.is_finite());
                }
            }
        }
    }
}
