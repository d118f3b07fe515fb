//! Online anomaly detectors: per-series state machines that score each value against the
//! values before it, in time order, with a score in `[0, 1]` (1 = certainly anomalous).
//!
//! * [`windowed_gaussian`]: the rolling z-score, scored by the normal distribution;
//! * [`robust`]: the robust z-score, median and MAD over a sliding window;
//! * [`sorted_window`]: the order-statistic multiset behind it (select, median, exact MAD);
//! * [`ewma_chart`]: the EWMA control chart;
//! * [`residual`]: the rolling z-score of a forecaster's one-step residuals;
//! * [`value_novelty`]: the gap from a value to the nearest past value, unusual and large;
//! * [`combine`]: the maximum of several detectors;
//! * [`weighted`]: a learned weighting of several detectors (normalised surprises, logistic
//!   model, online learning from labels);
//! * [`registry`]: detectors by name, and feature by feature for multi-feature points;
//! * [`rest`]: alert hygiene for any detector: after a detection, a rest period of silence.
//!
//! Multi-feature detectors ([`MultiDetector`], a point of several features at a time):
//!
//! * [`dbscan`]: DBSCAN over a sliding window; a point is anomalous when it would be noise;
//! * [`autoencoder`]: a small autoencoder trained online; anomalous when it reconstructs the
//!   point badly.
//!
//! The contract of [`Detector::score`]: the value is scored with the state built from the
//! values before it, then learned. So a score never looks at the future, and the same code runs
//! over a CSV file (`tidewatch detect`) or per key inside a dataflow.
//!
//! Unchecked assumption: values are finite (callers drop the others, as for the forecasters).

pub mod autoencoder;
pub mod combine;
pub mod dbscan;
pub mod ewma_chart;
#[cfg(test)]
mod properties;
pub mod registry;
pub mod residual;
pub mod rest;
pub mod robust;
pub mod sorted_window;
pub mod value_novelty;
pub mod weighted;
pub mod windowed_gaussian;

/// An online anomaly detector.
pub trait Detector: Send {
    /// Short name for reports and alerts, e.g. `"windowed_gaussian"`.
    fn name(&self) -> &'static str;

    /// Scores `value` against the values seen so far (in `[0, 1]`), then learns from it.
    fn score(&mut self, value: f64) -> f64;

    /// Scores `value` like [`Detector::score`] and judges it against `threshold`.
    fn verdict(&mut self, value: f64, threshold: f64) -> Verdict {
        Verdict::of(self.score(value), threshold)
    }
}

/// An online anomaly detector over multi-feature points (e.g. delivery duration, temperature
/// and orders of one warehouse's window): the same contract as [`Detector`], for a point of
/// [`MultiDetector::dims`] values.
pub trait MultiDetector: Send {
    /// Short name for reports and alerts, e.g. `"dbscan"`.
    fn name(&self) -> &'static str;

    /// The number of features of a point.
    fn dims(&self) -> usize;

    /// Scores `point` (of [`MultiDetector::dims`] values) against the points seen so far (in
    /// `[0, 1]`), then learns from it.
    fn score(&mut self, point: &[f64]) -> f64;

    /// Scores `point` like [`MultiDetector::score`] and judges it against `threshold`.
    fn verdict(&mut self, point: &[f64], threshold: f64) -> Verdict {
        Verdict::of(self.score(point), threshold)
    }
}

impl<D: MultiDetector + ?Sized> MultiDetector for Box<D> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn dims(&self) -> usize {
        (**self).dims()
    }
    fn score(&mut self, point: &[f64]) -> f64 {
        (**self).score(point)
    }
}

/// A score and the verdict of a threshold on it: anomalous when `score >= threshold`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verdict {
    /// The detector's score, in `[0, 1]`.
    pub score: f64,
    /// Whether the score reached the threshold.
    pub anomalous: bool,
}

impl Verdict {
    /// The verdict of `threshold` on `score`.
    ///
    /// ```
    /// use tidewatch_operators::detect::Verdict;
    /// assert!(Verdict::of(0.9999, 0.999).anomalous);
    /// assert!(!Verdict::of(0.5, 0.999).anomalous);
    /// ```
    pub fn of(score: f64, threshold: f64) -> Self {
        Verdict {
            score,
            anomalous: score >= threshold,
        }
    }
}

impl<D: Detector + ?Sized> Detector for Box<D> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn score(&mut self, value: f64) -> f64 {
        (**self).score(value)
    }
}

/// The probability that a standard normal variable lies within `±z`: `erf(|z| / √2)`. A z-score
/// of 0 scores 0, 1.96 scores 0.95, 3.89 scores 0.9999.
///
/// ```
/// use tidewatch_operators::detect::two_sided_normal;
/// assert_eq!(two_sided_normal(0.0), 0.0);
/// assert!((two_sided_normal(1.959964) - 0.95).abs() < 1e-6);
/// assert!((two_sided_normal(-3.890592) - 0.9999).abs() < 1e-7);
/// assert_eq!(two_sided_normal(f64::INFINITY), 1.0);
/// ```
pub fn two_sided_normal(z: f64) -> f64 {
    if z.is_nan() {
        return 0.0;
    }
    (1.0 - erfc(z.abs() / std::f64::consts::SQRT_2)).clamp(0.0, 1.0)
}

/// Scores `value` against a centre and a scale (a standard deviation or its robust
/// equivalent) through [`two_sided_normal`]. A scale of (numerically) zero means the past was
/// one value: that value scores 0 and anything else 1.
pub fn deviation_score(value: f64, center: f64, scale: f64) -> f64 {
    if scale > f64::EPSILON * center.abs().max(1.0) {
        two_sided_normal((value - center) / scale)
    } else if value == center {
        0.0
    } else {
        1.0
    }
}

/// `1 / Φ⁻¹(3/4)`: makes the MAD of Gaussian data estimate its standard deviation.
const MAD_TO_SIGMA: f64 = 1.482_602_218_505_602;

/// The robust centre and scale of finite `values` (reordered), for the multi-feature
/// detectors' standardisation: the median, and the median absolute deviation from it × 1.4826
/// (which estimates the standard deviation of Gaussian data). When more than half the values
/// are one value (MAD 0, a count that is mostly 0), the median of the non-zero deviations
/// × 1.4826, the typical departure from that value; when all are one value, a floor of
/// `1e-12` × the median's magnitude (at least `1e-300`), so that any other value lies very far
/// away. A few extreme values move none of these. Computed on the values divided by their
/// largest magnitude, so that no difference can overflow.
pub(crate) fn robust_center_and_scale(values: &mut [f64]) -> (f64, f64) {
    let magnitude = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if magnitude == 0.0 || values.is_empty() {
        return (0.0, 1e-300);
    }
    values.iter_mut().for_each(|v| *v /= magnitude);
    let median = *values
        .select_nth_unstable_by(values.len() / 2, f64::total_cmp)
        .1;
    values.iter_mut().for_each(|v| *v = (*v - median).abs());
    let mut mad = *values
        .select_nth_unstable_by(values.len() / 2, f64::total_cmp)
        .1;
    if mad == 0.0 {
        // Move the non-zero deviations to the front and take their median.
        let mut nonzero = 0;
        for at in 0..values.len() {
            if values[at] > 0.0 {
                values.swap(at, nonzero);
                nonzero += 1;
            }
        }
        if nonzero > 0 {
            let departures = &mut values[..nonzero];
            mad = *departures
                .select_nth_unstable_by(nonzero / 2, f64::total_cmp)
                .1;
        }
    }
    let center = magnitude * median;
    let floor = (1e-12 * center.abs()).max(1e-300);
    (center, (magnitude * MAD_TO_SIGMA * mad).max(floor))
}

/// Where [`log_tail_normal`] leaves the normal distribution: the `|z|` whose two-sided tail
/// probability is 1e-6 (score 0.999999).
pub const LOG_TAIL_KNEE: f64 = 4.891_638_475_698_59;

/// The slope of [`log_tail_normal`]'s tail in `ln |z|`, in units of its remaining 1e-6: chosen
/// so that the map is smooth (C¹) at the knee, `z·√(2/π)·e^(−z²/2) / 1e-6` at
/// [`LOG_TAIL_KNEE`] (about `1 + z²`, by the Mills ratio).
const LOG_TAIL_GAIN: f64 = 24.858_084_480_015_4;

/// [`two_sided_normal`] with resolution in the far tail, for detectors whose z-scores run to
/// the hundreds or more (a median/MAD scale on heavy-tailed data): `1 − p` with `p` the
/// two-sided normal tail probability up to [`LOG_TAIL_KNEE`] (score 0.999999), then
/// `1 − p_knee / (1 + g·ln(|z| / z_knee))` with `g` making the map smooth at the knee. So the
/// score is strictly increasing in `|z|` all the way (in `f64`, distinct scores for `|z|`
/// 0.1% apart up to about 1e100) where `1 − p` rounds to exactly 1 beyond `|z|` ≈ 8.3 and a
/// threshold search cannot rank the points any more. It reaches 1 only at `|z| = ∞`.
///
/// Reading a threshold: below 0.999999 it is the normal tail, as for [`two_sided_normal`];
/// above, the table gives the `|z|` it takes.
///
/// | z | score | | z | score |
/// |---|---|---|---|---|
/// | 1.96 | 0.95 | | 8 | 1 − 7.6e-8 |
/// | 3.29 | 0.999 | | 10 | 1 − 5.3e-8 |
/// | 3.89 | 0.9999 | | 20 | 1 − 2.8e-8 |
/// | 4.42 | 0.99999 | | 100 | 1 − 1.3e-8 |
/// | 4.89 | 0.999999 (knee) | | 1,000 | 1 − 7.5e-9 |
/// | 6 | 1 − 1.6e-7 | | 10⁶ | 1 − 3.3e-9 |
/// | 7 | 1 − 1.0e-7 | | 10¹⁰⁰ | 1 − 1.8e-10 |
///
/// ```
/// use tidewatch_operators::detect::{log_tail_normal, two_sided_normal};
/// assert_eq!(log_tail_normal(1.959964), two_sided_normal(1.959964));
/// assert!((log_tail_normal(10.0) - (1.0 - 5.326e-8)).abs() < 1e-11);
/// assert!(log_tail_normal(1e3) < log_tail_normal(1.001e3));
/// assert!(log_tail_normal(1e9) < 1.0);
/// assert_eq!(two_sided_normal(1e3), 1.0); // where the plain map saturates
/// assert_eq!(log_tail_normal(f64::NEG_INFINITY), 1.0);
/// assert_eq!(log_tail_normal(f64::NAN), 0.0);
/// ```
pub fn log_tail_normal(z: f64) -> f64 {
    let z = z.abs();
    if z.is_nan() {
        return 0.0;
    }
    if z <= LOG_TAIL_KNEE {
        return two_sided_normal(z);
    }
    // The tail probability of the erfc fit at the knee (within 1.2e-7 of 1e-6), so that the
    // two pieces meet exactly and the map stays monotone across the knee.
    let knee_tail = erfc(LOG_TAIL_KNEE / std::f64::consts::SQRT_2);
    // ln z − ln z_knee rather than ln(z / z_knee): no overflow for z near f64::MAX.
    let log_ratio = z.ln() - LOG_TAIL_KNEE.ln();
    1.0 - knee_tail / (1.0 + LOG_TAIL_GAIN * log_ratio)
}

/// [`deviation_score`] through [`log_tail_normal`]: scores `value` against a centre and a
/// scale, with resolution in the far tail. A scale of (numerically) zero means the past was
/// one value: that value scores 0 and anything else 1.
///
/// ```
/// use tidewatch_operators::detect::log_tail_deviation_score;
/// assert!(log_tail_deviation_score(150.0, 0.0, 1.0) < log_tail_deviation_score(151.0, 0.0, 1.0));
/// assert_eq!(log_tail_deviation_score(3.0, 3.0, 0.0), 0.0);
/// assert_eq!(log_tail_deviation_score(3.5, 3.0, 0.0), 1.0);
/// ```
pub fn log_tail_deviation_score(value: f64, center: f64, scale: f64) -> f64 {
    if scale > f64::EPSILON * center.abs().max(1.0) {
        log_tail_normal((value - center) / scale)
    } else if value == center {
        0.0
    } else {
        1.0
    }
}

/// The complementary error function for `x >= 0`, by the Chebyshev fit of Numerical Recipes
/// (`erfcc`, fractional error below 1.2e-7 everywhere): the standard library has no `erf`.
fn erfc(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.5 * x);
    let poly = -x * x - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    t * poly.exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against reference values of erfc (Abramowitz and Stegun, table 7.1, and high-precision
    /// values), within the fit's 1.2e-7 fractional error.
    #[test]
    fn erfc_matches_reference_values() {
        let reference = [
            (0.0, 1.0),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_1),
            (2.0, 0.004_677_734_981_047_266),
            (3.0, 2.209_049_699_858_544e-5),
            (4.0, 1.541_725_790_028_002e-8),
        ];
        for (x, want) in reference {
            let got = erfc(x);
            assert!(
                (got - want).abs() <= 1.2e-7 * want,
                "erfc({x}) = {got}, want {want}"
            );
        }
    }

    /// [`log_tail_normal`] is non-decreasing everywhere and strictly increasing beyond the
    /// knee (on a fine grid near it and a geometric grid out to 1e100), equals
    /// [`two_sided_normal`] up to the knee, meets it there and is smooth across it.
    #[test]
    fn log_tail_normal_is_monotone_and_smooth_at_the_knee() {
        let mut previous = 0.0;
        let mut z = 0.0;
        while z < 12.0 {
            let score = log_tail_normal(z);
            assert!(score >= previous, "not monotone at z = {z}");
            if z > LOG_TAIL_KNEE {
                assert!(score > previous, "flat at z = {z}");
            } else {
                assert_eq!(score, two_sided_normal(z));
            }
            assert!(score < 1.0 || z == 0.0 && score == 0.0);
            previous = score;
            z += 1e-3;
        }
        let mut z: f64 = 12.0;
        while z < 1e100 {
            let next = z * 1.001;
            assert!(
                log_tail_normal(next) > log_tail_normal(z),
                "flat at z = {z}"
            );
            z = next;
        }
        // Continuity and equal slopes on both sides of the knee (1e-4 apart).
        let h = 1e-4;
        let below = log_tail_normal(LOG_TAIL_KNEE - h);
        let at = log_tail_normal(LOG_TAIL_KNEE);
        let above = log_tail_normal(LOG_TAIL_KNEE + h);
        let (slope_below, slope_above) = ((at - below) / h, (above - at) / h);
        assert!(
            (slope_above / slope_below - 1.0).abs() < 1e-2,
            "{slope_below} vs {slope_above}"
        );
        assert!((at - 0.999_999).abs() < 1e-12, "{at}");
    }
}
