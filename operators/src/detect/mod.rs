//! Online anomaly detectors: per-series state machines that score each value against the
//! values before it, in time order, with a score in `[0, 1]` (1 = certainly anomalous).
//!
//! * [`windowed_gaussian`]: the rolling z-score, scored by the normal distribution;
//! * [`robust`]: the robust z-score, median and MAD over a sliding window;
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
}
