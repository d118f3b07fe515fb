//! The EWMA control chart: an exponentially weighted mean and variance follow the series, and
//! a value is scored by its distance from the mean in standard deviations, through the normal
//! distribution. Constant memory, a few operations per value; it adapts to slow drifts (an old
//! level fades with weight `(1 - lambda)^age`) and flags sudden departures.
//!
//! # Examples
//! ```
//! use tidewatch_operators::detect::ewma_chart::EwmaChart;
//! use tidewatch_operators::detect::Detector;
//!
//! let mut detector = EwmaChart::new(0.05);
//! for step in 0..500 {
//!     detector.score(100.0 + (step % 10) as f64); // 100..109
//! }
//! assert!(detector.score(104.0) < 0.9);
//! assert!(detector.score(140.0) > 0.9999); // a level shift
//! ```

use super::{deviation_score, Detector};

/// Values before the chart scores: its variance needs a few values to mean anything.
pub const WARM_UP: u64 = 10;

/// The EWMA control chart; see the module documentation.
#[derive(Clone, Debug)]
pub struct EwmaChart {
    lambda: f64,
    mean: Option<f64>,
    variance: f64,
    seen: u64,
}

impl EwmaChart {
    /// A chart with smoothing `lambda`, clamped into `[1e-6, 1]`.
    pub fn new(lambda: f64) -> Self {
        let lambda = if lambda >= 1e-6 {
            lambda.min(1.0)
        } else {
            1e-6
        };
        EwmaChart {
            lambda,
            mean: None,
            variance: 0.0,
            seen: 0,
        }
    }

    /// The current mean and standard deviation.
    pub fn mean_and_std_dev(&self) -> Option<(f64, f64)> {
        self.mean.map(|mean| (mean, self.variance.sqrt()))
    }
}

impl Detector for EwmaChart {
    fn name(&self) -> &'static str {
        "ewma_chart"
    }

    fn score(&mut self, value: f64) -> f64 {
        if !value.is_finite() {
            return 0.0;
        }
        let Some(mean) = self.mean else {
            self.mean = Some(value);
            self.seen = 1;
            return 0.0;
        };
        let deviation = value - mean;
        let std_dev = self.variance.sqrt();
        let score = if self.seen < WARM_UP {
            0.0
        } else {
            deviation_score(value, mean, std_dev)
        };
        // West's exponentially weighted update of mean and variance.
        let lambda = self.lambda;
        self.mean = Some(mean + lambda * deviation);
        self.variance = (1.0 - lambda) * (self.variance + lambda * deviation * deviation);
        self.seen += 1;
        if !self.variance.is_finite() || !self.mean.is_some_and(f64::is_finite) {
            // Only overflowing input gets here: start over.
            *self = EwmaChart::new(lambda);
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

    /// On Gaussian noise the rate of scores ≥ 0.999 is within a factor 2 of the normal tail
    /// (the EWMA variance with lambda 0.01 is a fair estimate), over 3 seeds; a level shift of
    /// 6 sigma is flagged at its first value.
    #[test]
    fn false_alarm_rate_and_level_shift() {
        for seed in 0..3 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut detector = EwmaChart::new(0.01);
            let mut above = 0usize;
            let points = 100_000;
            for step in 0..points {
                let score = detector.score(-5.0 + 0.5 * gaussian(&mut rng));
                if step >= 1_000 {
                    above += usize::from(score >= 0.999);
                }
            }
            let expected = 0.001 * (points - 1_000) as f64;
            assert!(
                (0.5..2.0).contains(&(above as f64 / expected)),
                "seed {seed}: {above}, expected {expected}"
            );
            assert!(detector.score(-5.0 + 3.0) > 0.9999);
        }
    }

    #[test]
    fn never_panics_on_extreme_values() {
        let mut detector = EwmaChart::new(0.5);
        for value in [1e308, -1e308, 1e308, 0.0, f64::NAN, 5e-324, 1.0] {
            let score = detector.score(value);
            assert!((0.0..=1.0).contains(&score));
        }
    }
}
