//! The robust z-score: a value is scored by its distance from the median of the last `window`
//! values, in units of their scaled median absolute deviation (`1.4826 × MAD`, which estimates
//! the standard deviation of Gaussian data), through the normal distribution. A few earlier
//! outliers in the window move neither the median nor the MAD, so one spike does not mask the
//! next, as it does with a mean and standard deviation.
//!
//! When more than half the window is one value (a plateau), the MAD is 0; the scale then falls
//! back to the mean absolute deviation from the median (× √(π/2)), and only a window of one
//! single value scores every other value 1.
//!
//! The window is kept sorted (binary search, one shift per insert and removal), so the median
//! is exact at every value. The MAD needs a walk outwards from the median, O(window); it is
//! refreshed every [`MAD_REFRESH`] values, which keeps the cost per value near that of the
//! median.
//!
//! # Examples
//! ```
//! use tidewatch_operators::detect::robust::RobustZScore;
//! use tidewatch_operators::detect::Detector;
//!
//! let mut detector = RobustZScore::new(200);
//! for step in 0..200 {
//!     let value = if step % 50 == 0 { 500.0 } else { 10.0 + (step % 7) as f64 };
//!     detector.score(value); // four earlier spikes of 500 in the window
//! }
//! assert!(detector.score(40.0) > 0.9999); // still plainly unusual
//! assert!(detector.score(13.0) < 0.9);
//! ```

use std::collections::VecDeque;

use super::{deviation_score, Detector};

/// Values between two refreshes of the MAD.
pub const MAD_REFRESH: usize = 16;

/// `1 / Φ⁻¹(3/4)`: makes the MAD of Gaussian data estimate its standard deviation.
const MAD_TO_SIGMA: f64 = 1.482_602_218_505_602;

/// `√(π/2)`: makes the mean absolute deviation of Gaussian data estimate its standard deviation.
const MEAN_AD_TO_SIGMA: f64 = 1.253_314_137_315_500_3;

/// The median/MAD detector; see the module documentation.
#[derive(Clone, Debug)]
pub struct RobustZScore {
    window: usize,
    arrivals: VecDeque<f64>,
    sorted: Vec<f64>,
    mad: f64,
    /// Mean absolute deviation from the median, the fallback scale when more than half the
    /// window is one value (MAD = 0, common on sensor plateaus).
    mean_ad: f64,
    since_refresh: usize,
}

impl RobustZScore {
    /// A detector over the last `window` values (at least 3).
    pub fn new(window: usize) -> Self {
        let window = window.max(3);
        RobustZScore {
            window,
            arrivals: VecDeque::with_capacity(window + 1),
            sorted: Vec::with_capacity(window + 1),
            mad: 0.0,
            mean_ad: 0.0,
            since_refresh: MAD_REFRESH,
        }
    }

    /// The median of the window, `None` when it is empty.
    pub fn median(&self) -> Option<f64> {
        let n = self.sorted.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => Some(self.sorted[n / 2]),
            _ => Some((self.sorted[n / 2 - 1] + self.sorted[n / 2]) / 2.0),
        }
    }

    /// The MAD as last refreshed.
    pub fn mad(&self) -> f64 {
        self.mad
    }

    /// The median of `|x - median|` over the sorted window: the k smallest deviations are found
    /// by walking outwards from the median, as in a merge of the two sides.
    fn compute_mad(&self) -> f64 {
        let Some(median) = self.median() else {
            return 0.0;
        };
        let n = self.sorted.len();
        // Left side: indices below `split` (descending), right side: from `split` up.
        let split = self.sorted.partition_point(|v| *v < median);
        let (mut left, mut right) = (split, split);
        let mut deviations = Vec::with_capacity(n / 2 + 2);
        while deviations.len() < n / 2 + 1 {
            let take_left = match (left > 0, right < n) {
                (true, true) => median - self.sorted[left - 1] <= self.sorted[right] - median,
                (true, false) => true,
                (false, true) => false,
                (false, false) => break,
            };
            if take_left {
                left -= 1;
                deviations.push(median - self.sorted[left]);
            } else {
                deviations.push(self.sorted[right] - median);
                right += 1;
            }
        }
        if n % 2 == 1 {
            deviations.get(n / 2).copied().unwrap_or(0.0)
        } else {
            match (deviations.get(n / 2 - 1), deviations.get(n / 2)) {
                (Some(a), Some(b)) => (a + b) / 2.0,
                _ => 0.0,
            }
        }
    }
}

impl Detector for RobustZScore {
    fn name(&self) -> &'static str {
        "robust_zscore"
    }

    fn score(&mut self, value: f64) -> f64 {
        if !value.is_finite() {
            return 0.0;
        }
        let score = match self.median() {
            Some(median) if self.sorted.len() >= 3 => {
                let sigma = if self.mad > 0.0 {
                    MAD_TO_SIGMA * self.mad
                } else {
                    MEAN_AD_TO_SIGMA * self.mean_ad
                };
                deviation_score(value, median, sigma)
            }
            _ => 0.0,
        };
        self.arrivals.push_back(value);
        let at = self.sorted.partition_point(|v| *v < value);
        self.sorted.insert(at, value);
        if self.arrivals.len() > self.window {
            if let Some(old) = self.arrivals.pop_front() {
                let at = self.sorted.partition_point(|v| *v < old);
                self.sorted.remove(at);
            }
        }
        self.since_refresh += 1;
        if self.since_refresh >= MAD_REFRESH {
            self.since_refresh = 0;
            self.mad = self.compute_mad();
            if let Some(median) = self.median() {
                let n = self.sorted.len() as f64;
                self.mean_ad = self.sorted.iter().map(|v| (v - median).abs()).sum::<f64>() / n;
            }
        }
        score
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::test_support::gaussian;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Median and MAD equal a sort-based computation over the last `window` values.
    #[test]
    fn median_and_mad_match_a_sort() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for window in [3, 4, 25, 100] {
            let mut detector = RobustZScore::new(window);
            let mut seen: Vec<f64> = Vec::new();
            for step in 0..600 {
                // Repeated values included: ties must not confuse the walk. The MAD is
                // refreshed at the first value and every MAD_REFRESH values after.
                let value = f64::from(rng.random_range(0..20u32));
                detector.score(value);
                seen.push(value);
                let mut recent = seen[seen.len().saturating_sub(window)..].to_vec();
                recent.sort_by(f64::total_cmp);
                let median_of = |v: &[f64]| {
                    let n = v.len();
                    if n % 2 == 1 {
                        v[n / 2]
                    } else {
                        (v[n / 2 - 1] + v[n / 2]) / 2.0
                    }
                };
                let median = median_of(&recent);
                assert_eq!(detector.median(), Some(median));
                if step % MAD_REFRESH == 0 {
                    let mut deviations: Vec<f64> =
                        recent.iter().map(|v| (v - median).abs()).collect();
                    deviations.sort_by(f64::total_cmp);
                    assert_eq!(
                        detector.mad(),
                        median_of(&deviations),
                        "window {window} step {step}"
                    );
                }
            }
        }
    }

    /// On Gaussian noise the rate of scores ≥ 0.999 is within a factor 2 of the normal tail
    /// (0.1%), over 3 seeds; a spike of 8 sigma scores above 0.9999 even right after others.
    #[test]
    fn false_alarm_rate_and_spikes() {
        for seed in 0..3 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut detector = RobustZScore::new(500);
            let mut above = 0usize;
            let points = 100_000;
            for step in 0..points {
                let score = detector.score(20.0 + 3.0 * gaussian(&mut rng));
                if step >= 500 {
                    above += usize::from(score >= 0.999);
                }
            }
            let expected = 0.001 * (points - 500) as f64;
            assert!(
                (0.5..2.0).contains(&(above as f64 / expected)),
                "seed {seed}: {above}, expected {expected}"
            );
            for _ in 0..3 {
                assert!(detector.score(20.0 + 24.0) > 0.9999);
            }
        }
    }
}
