//! Value novelty: a value is anomalous when it lands where the recent past has never been.
//!
//! For each value `x`, `d` is the distance from `x` to the nearest of the previous `window`
//! values (the left nearest-neighbour distance of the series' single points). The evidence is
//!
//! ```text
//! s = max(0, (d - mean_d) / sd_d) × d / sd_x
//! ```
//!
//! the z-score of this gap among the previous `window` gaps (is this gap unusual?) times the
//! gap in units of the previous `window` values' standard deviation (is it large against the
//! series' spread?). Both use only the past. The score is `s / (s + 1)`: `s = 1` scores 0.5,
//! `s = 9` scores 0.9, `s = 999` scores 0.999. A past of one repeated value makes any new
//! value score 1.
//!
//! Why both factors: the gap's z alone flags tiny gaps on dense or integer series (tweet
//! counts, where most gaps are 0 and a gap of 1 is many deviations of the gap), and the gap
//! against the spread alone flags every value in a sparse tail. Their product needs a gap
//! that is unusual *and* large. On the NAB corpus this detector, with a rest period, scores
//! 71.8 standard (BENCHMARKS.md): it is the basis of `best`.
//!
//! What it does not see: an anomaly inside the normal range of values (the right value at the
//! wrong time of day). The forecast-residual detector sees those ([`super::residual`]).
//!
//! The past values are a sorted multiset (a `BTreeMap` keyed by the value's bits in total
//! order), so a value costs O(log window).
//!
//! # Examples
//! ```
//! use tidewatch_operators::detect::value_novelty::ValueNovelty;
//! use tidewatch_operators::detect::Detector;
//!
//! let mut detector = ValueNovelty::new(1_000);
//! for step in 0..1_000 {
//!     detector.score(20.0 + ((step * 7_919) % 101) as f64 / 10.0); // 20.0 .. 30.0
//! }
//! assert!(detector.score(25.05) < 0.5); // among the values seen
//! assert!(detector.score(45.0) > 0.99); // far outside them (the alarm level is 0.5)
//! ```

use std::collections::{BTreeMap, VecDeque};

use super::windowed_gaussian::WindowedGaussian;
use super::Detector;

/// The value novelty detector; see the module documentation.
pub struct ValueNovelty {
    window: usize,
    /// The last `window` values, oldest first.
    past: VecDeque<f64>,
    /// The same values as a multiset, keyed by [`order_key`].
    sorted: BTreeMap<u64, u32>,
    /// Mean and deviation of the previous gaps.
    gaps: WindowedGaussian,
    /// Mean and deviation of the previous values.
    values: WindowedGaussian,
}

/// The bits of `x` mapped so that unsigned order is the order of the floats (for finite
/// values; -0.0 is folded into 0.0 before).
fn order_key(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// The inverse of [`order_key`].
fn key_value(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 {
        key & !(1 << 63)
    } else {
        !key
    })
}

/// `numerator / scale` where a scale of (numerically) zero means a past of one value: any
/// positive numerator is then infinitely unusual.
fn in_units(numerator: f64, mean: f64, scale: f64) -> f64 {
    if scale > f64::EPSILON * mean.abs().max(1.0) {
        numerator / scale
    } else if numerator > 0.0 {
        f64::INFINITY
    } else {
        0.0
    }
}

impl ValueNovelty {
    /// A detector over the last `window` values (at least 2).
    pub fn new(window: usize) -> Self {
        let window = window.max(2);
        ValueNovelty {
            window,
            past: VecDeque::with_capacity(window + 1),
            sorted: BTreeMap::new(),
            gaps: WindowedGaussian::new(window),
            values: WindowedGaussian::new(window),
        }
    }

    /// The distance from `x` to the nearest past value, `None` before the first.
    fn nearest_gap(&self, x: f64) -> Option<f64> {
        let key = order_key(x);
        let above = self
            .sorted
            .range(key..)
            .next()
            .map(|(k, _)| key_value(*k) - x);
        let below = self
            .sorted
            .range(..key)
            .next_back()
            .map(|(k, _)| x - key_value(*k));
        match (above, below) {
            (Some(above), Some(below)) => Some(above.min(below)),
            (one, other) => one.or(other),
        }
    }

    /// The evidence `s >= 0` of the module documentation for `value` (infinite when the past
    /// was one value and `value` differs), then learns `value`.
    pub fn evidence(&mut self, value: f64) -> f64 {
        if !value.is_finite() {
            return 0.0;
        }
        let value = if value == 0.0 { 0.0 } else { value }; // -0.0 and 0.0 are one value
        let gap = self.nearest_gap(value).unwrap_or(0.0);
        let unusual = self
            .gaps
            .mean_and_std_dev()
            .map_or(0.0, |(mean, sd)| in_units(gap - mean, mean, sd).max(0.0));
        let large = self
            .values
            .mean_and_std_dev()
            .map_or(0.0, |(mean, sd)| in_units(gap, mean, sd));
        self.gaps.score(gap);
        self.values.score(value);
        *self.sorted.entry(order_key(value)).or_insert(0) += 1;
        self.past.push_back(value);
        if self.past.len() > self.window {
            if let Some(old) = self.past.pop_front() {
                let key = order_key(old);
                if let Some(count) = self.sorted.get_mut(&key) {
                    *count -= 1;
                    if *count == 0 {
                        self.sorted.remove(&key);
                    }
                }
            }
        }
        if unusual == 0.0 || large == 0.0 {
            0.0
        } else {
            unusual * large
        }
    }
}

impl Detector for ValueNovelty {
    fn name(&self) -> &'static str {
        "value_novelty"
    }

    fn score(&mut self, value: f64) -> f64 {
        let evidence = self.evidence(value);
        if evidence.is_infinite() {
            1.0
        } else {
            evidence / (evidence + 1.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::test_support::gaussian;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn order_keys_sort_like_the_floats_and_round_trip() {
        let mut values = [-1e300, -2.5, -1e-300, 0.0, 1e-300, 3.0, 7.5, 1e300];
        let keys: Vec<u64> = values.iter().map(|v| order_key(*v)).collect();
        assert!(keys.windows(2).all(|pair| pair[0] < pair[1]));
        for (value, key) in values.iter_mut().zip(keys) {
            assert_eq!(key_value(key), *value);
        }
    }

    /// The nearest gap equals a scan of the last `window` values, over seeded series with
    /// repeats (integers) and negative values.
    #[test]
    fn nearest_gap_matches_a_scan() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for window in [2, 3, 50] {
            let mut detector = ValueNovelty::new(window);
            let mut seen: Vec<f64> = Vec::new();
            for _ in 0..2_000 {
                let value = f64::from(rng.random_range(-40..40_i32)) / 4.0;
                let recent = &seen[seen.len().saturating_sub(window)..];
                let scan = recent
                    .iter()
                    .map(|past| (past - value).abs())
                    .fold(None, |best: Option<f64>, gap| {
                        Some(best.map_or(gap, |b| b.min(gap)))
                    });
                assert_eq!(detector.nearest_gap(value), scan);
                detector.score(value);
                seen.push(value);
            }
        }
    }

    /// A spike far outside the past and a level shift beyond its range are flagged; a value
    /// inside the range is not; extreme values and constant series give finite scores in [0, 1].
    #[test]
    fn flags_new_territory_only() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut detector = ValueNovelty::new(2_000);
        for _ in 0..5_000 {
            detector.score(20.0 + 3.0 * gaussian(&mut rng));
        }
        assert!(detector.score(20.5) < 0.5);
        assert!(detector.score(50.0) > 0.9999);
        let mut constant = ValueNovelty::new(100);
        for _ in 0..200 {
            assert_eq!(constant.score(4.0), 0.0);
        }
        assert_eq!(constant.score(4.5), 1.0);
        for value in [1e300, -1e300, f64::NAN, 0.0, -0.0] {
            let score = constant.score(value);
            assert!((0.0..=1.0).contains(&score), "{value}: {score}");
        }
    }
}
