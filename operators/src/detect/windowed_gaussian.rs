//! The rolling z-score: a value is scored by how far it lies from the mean of the last `window`
//! values, in their standard deviations, through the normal distribution
//! ([`two_sided_normal`]). NAB's `windowedGaussian` baseline is this detector with a window of
//! 6,400.
//!
//! Sums over the window are running sums of the values minus a shift (the first value), so a
//! series far from zero keeps its precision; they are recomputed from the window once per
//! `window` values so that rounding cannot build up.
//!
//! # Examples
//! ```
//! use tidewatch_operators::detect::windowed_gaussian::WindowedGaussian;
//! use tidewatch_operators::detect::Detector;
//!
//! let mut detector = WindowedGaussian::new(100);
//! for step in 0..100 {
//!     let calm = detector.score(10.0 + (step % 5) as f64); // 10..14
//!     assert!(step < 5 || calm < 0.99); // once a whole cycle is in the window
//! }
//! assert!(detector.score(40.0) > 0.9999);
//! ```

use std::collections::VecDeque;

use super::{deviation_score, Detector};

/// NAB's tuned window for its `windowedGaussian` baseline.
pub const NAB_WINDOW: usize = 6_400;

/// The rolling z-score detector; see the module documentation.
#[derive(Clone, Debug)]
pub struct WindowedGaussian {
    window: usize,
    values: VecDeque<f64>,
    shift: Option<f64>,
    sum: f64,
    squares: f64,
    since_recompute: usize,
}

impl WindowedGaussian {
    /// A detector over the last `window` values (at least 2).
    pub fn new(window: usize) -> Self {
        let window = window.max(2);
        WindowedGaussian {
            window,
            values: VecDeque::with_capacity(window + 1),
            shift: None,
            sum: 0.0,
            squares: 0.0,
            since_recompute: 0,
        }
    }

    /// Mean and population standard deviation of the window, `None` with fewer than 2 values.
    pub fn mean_and_std_dev(&self) -> Option<(f64, f64)> {
        let n = self.values.len();
        let shift = self.shift?;
        if n < 2 {
            return None;
        }
        let mean = self.sum / n as f64;
        let variance = (self.squares / n as f64 - mean * mean).max(0.0);
        Some((shift + mean, variance.sqrt()))
    }

    fn recompute(&mut self) {
        let shift = self.shift.unwrap_or(0.0);
        self.sum = self.values.iter().map(|v| v - shift).sum();
        self.squares = self.values.iter().map(|v| (v - shift) * (v - shift)).sum();
        self.since_recompute = 0;
    }
}

impl Detector for WindowedGaussian {
    fn name(&self) -> &'static str {
        "windowed_gaussian"
    }

    fn score(&mut self, value: f64) -> f64 {
        if !value.is_finite() {
            return 0.0;
        }
        let score = self
            .mean_and_std_dev()
            .map_or(0.0, |(mean, std_dev)| deviation_score(value, mean, std_dev));
        let shift = *self.shift.get_or_insert(value);
        self.values.push_back(value);
        self.sum += value - shift;
        self.squares += (value - shift) * (value - shift);
        if self.values.len() > self.window {
            if let Some(old) = self.values.pop_front() {
                self.sum -= old - shift;
                self.squares -= (old - shift) * (old - shift);
            }
        }
        self.since_recompute += 1;
        if self.since_recompute >= self.window {
            self.recompute();
        }
        score
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::test_support::gaussian;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Mean and deviation equal a from-scratch computation over the last `window` values, also
    /// far from zero (values near 1e9 with unit noise).
    #[test]
    fn statistics_match_a_recomputation() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for window in [2, 7, 100] {
            let mut detector = WindowedGaussian::new(window);
            let mut seen = Vec::new();
            for _ in 0..1_000 {
                let value = 1e9 + gaussian(&mut rng);
                detector.score(value);
                seen.push(value);
                let recent = &seen[seen.len().saturating_sub(window)..];
                if recent.len() < 2 {
                    continue;
                }
                let n = recent.len() as f64;
                let mean = recent.iter().sum::<f64>() / n;
                let sd = (recent.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
                let (got_mean, got_sd) = detector.mean_and_std_dev().unwrap();
                assert!((got_mean - mean).abs() < 1e-6, "{got_mean} vs {mean}");
                assert!((got_sd - sd).abs() < 1e-6 * sd.max(1.0), "{got_sd} vs {sd}");
            }
        }
    }

    /// On stationary Gaussian noise the rate of scores at or above p is about 1 - p (within a
    /// factor of 1.5 over 200,000 points and 3 seeds); a planted spike of 8 sigma scores above
    /// 0.9999.
    #[test]
    fn false_alarm_rate_matches_the_normal_tail_and_spikes_are_flagged() {
        for seed in 0..3 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut detector = WindowedGaussian::new(1_000);
            let mut above = [0usize; 2];
            let levels = [0.99, 0.999];
            let points = 200_000;
            for step in 0..points {
                let score = detector.score(50.0 + 2.0 * gaussian(&mut rng));
                if step >= 1_000 {
                    for (count, level) in above.iter_mut().zip(levels) {
                        *count += usize::from(score >= level);
                    }
                }
            }
            for (count, level) in above.iter().zip(levels) {
                let expected = (1.0 - level) * (points - 1_000) as f64;
                let ratio = *count as f64 / expected;
                assert!(
                    (0.67..1.5).contains(&ratio),
                    "seed {seed}: {count} at {level}, expected {expected}"
                );
            }
            assert!(detector.score(50.0 + 16.0) > 0.9999);
        }
    }
}
