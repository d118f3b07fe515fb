//! Detectors by name: what `tidewatch detect --detector` and the alert rules of the dataflows
//! accept, and how each name builds its detector for points of `dims` features.
//!
//! | name | detector |
//! |---|---|
//! | `windowed_gaussian` | [`WindowedGaussian`]: the rolling z-score over the last `window` values |
//! | `robust` | [`RobustZScore`]: median and MAD over the last `window` values |
//! | `ewma_chart` | [`EwmaChart`] with smoothing [`EWMA_CHART_LAMBDA`] |
//! | `residual` | [`ForecastResidual`]: a rolling z-score of the one-step residuals of the forecaster `model` (season `season`) |
//! | `learned_weights` | [`LearnedWeights`] over `residual` and `windowed_gaussian`, silenced for `rest` values after a score of [`LEARNED_FIRE`] |
//! | `contextual` | the larger of `residual` and `windowed_gaussian` (a value wrong for the moment, or wrong for the series), silenced for `rest` values after a score of [`NORMAL_TAIL_ALARM`]: the alert rules' default on logistics metrics with a daily rhythm |
//! | `value_novelty` | [`ValueNovelty`]: the gap to the nearest of the last `window` values, unusual and large |
//! | `dbscan` | [`WindowDbscan`] over the last `window` points (default 1,000): noise points are anomalous |
//! | `autoencoder` | [`Autoencoder`] trained online: reconstruction error against its recent errors |
//! | `best` | the recommendation: `value_novelty`, silenced for `rest` values after a score of [`BEST_FIRE`] ([`RestPeriod`]) |
//!
//! The univariate detectors score points of several features one feature at a time, each
//! with its own state, and report the largest score ([`PerFeature`]). The multi-feature
//! detectors (`dbscan`, `autoencoder`) see the whole point; on a single series they see each
//! value with its change from the previous one, `(x, x - previous)` ([`LevelAndChange`]), so
//! that a value ordinary in level but reached by an unusual jump stands out.
//!
//! # Examples
//! ```
//! use tidewatch_operators::detect::registry::{DetectorKind, DetectorSpec};
//!
//! let kind: DetectorKind = "windowed_gaussian".parse().unwrap();
//! let mut detector = DetectorSpec::new(kind).build(2);
//! for step in 0..100 {
//!     detector.score(&[(step % 5) as f64, 10.0 + (step % 3) as f64]);
//! }
//! assert!(detector.score(&[2.0, 40.0]) > 0.9999); // the second feature jumped
//! assert!("knn".parse::<DetectorKind>().unwrap_err().contains("windowed_gaussian"));
//! ```

use std::fmt;
use std::str::FromStr;

use super::autoencoder::{Autoencoder, AutoencoderConfig};
use super::combine::MaxOf;
use super::dbscan::{DbscanConfig, WindowDbscan};
use super::ewma_chart::EwmaChart;
use super::residual::ForecastResidual;
use super::rest::RestPeriod;
use super::robust::RobustZScore;
use super::value_novelty::ValueNovelty;
use super::weighted::LearnedWeights;
use super::windowed_gaussian::{WindowedGaussian, NAB_WINDOW};
use super::{Detector, MultiDetector};
use crate::forecast::model::ModelKind;

/// Score at or above which `best` counts a detection and rests: a value novelty evidence of 1
/// (a gap one deviation above the usual gaps, times one deviation of the values).
pub const BEST_FIRE: f64 = 0.5;

/// Score at or above which `learned_weights` counts a detection and rests (its scores are a
/// logistic model's, less extreme than a normal tail's).
pub const LEARNED_FIRE: f64 = 0.999;

/// The default alarm level of the detectors scored by a normal tail: a z of 3.89.
pub const NORMAL_TAIL_ALARM: f64 = 0.9999;

/// The default alarm level of `dbscan`: a noise point about 3.2 eps from the nearest core point
/// (its score is `r⁴ / (1 + r⁴)` of that distance `r` in eps).
pub const DBSCAN_ALARM: f64 = 0.99;

/// Smoothing of the `ewma_chart` detector.
pub const EWMA_CHART_LAMBDA: f64 = 0.01;

/// A detector by name; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DetectorKind {
    /// The rolling z-score.
    WindowedGaussian,
    /// The robust (median/MAD) z-score.
    Robust,
    /// The EWMA control chart.
    EwmaChart,
    /// The forecast-residual score.
    Residual,
    /// A learned weighting of `residual` and `windowed_gaussian`.
    LearnedWeights,
    /// The larger of the residual and value z-scores, with a rest period.
    Contextual,
    /// Value novelty.
    ValueNovelty,
    /// DBSCAN over a sliding window of points.
    Dbscan,
    /// An autoencoder trained online.
    Autoencoder,
    /// The recommended combination.
    Best,
}

impl DetectorKind {
    /// Every detector, in the order of the table above.
    pub const ALL: [DetectorKind; 10] = [
        DetectorKind::WindowedGaussian,
        DetectorKind::Robust,
        DetectorKind::EwmaChart,
        DetectorKind::Residual,
        DetectorKind::LearnedWeights,
        DetectorKind::Contextual,
        DetectorKind::ValueNovelty,
        DetectorKind::Dbscan,
        DetectorKind::Autoencoder,
        DetectorKind::Best,
    ];

    /// The name that [`FromStr`] accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            DetectorKind::WindowedGaussian => "windowed_gaussian",
            DetectorKind::Robust => "robust",
            DetectorKind::EwmaChart => "ewma_chart",
            DetectorKind::Residual => "residual",
            DetectorKind::LearnedWeights => "learned_weights",
            DetectorKind::Contextual => "contextual",
            DetectorKind::ValueNovelty => "value_novelty",
            DetectorKind::Dbscan => "dbscan",
            DetectorKind::Autoencoder => "autoencoder",
            DetectorKind::Best => "best",
        }
    }

    /// The score at or above which this detector's value is an alarm by default: [`BEST_FIRE`]
    /// for `value_novelty` and `best` (their own scale), [`LEARNED_FIRE`] for
    /// `learned_weights`, [`DBSCAN_ALARM`] for `dbscan`, and [`NORMAL_TAIL_ALARM`] for the
    /// detectors scored by a normal tail.
    pub fn alarm_level(self) -> f64 {
        match self {
            DetectorKind::ValueNovelty | DetectorKind::Best => BEST_FIRE,
            DetectorKind::LearnedWeights => LEARNED_FIRE,
            DetectorKind::Dbscan => DBSCAN_ALARM,
            _ => NORMAL_TAIL_ALARM,
        }
    }

    /// The default window of this detector: [`NAB_WINDOW`] values, or for `dbscan` the
    /// [`DbscanConfig`] default (1,000 points: every noise point costs a scan of the window).
    pub fn default_window(self) -> usize {
        match self {
            DetectorKind::Dbscan => DbscanConfig::default().window,
            _ => NAB_WINDOW,
        }
    }

    /// Whether the detector sees whole multi-feature points (else one feature at a time).
    pub fn is_multi_feature(self) -> bool {
        matches!(self, DetectorKind::Dbscan | DetectorKind::Autoencoder)
    }

    /// Every name, for usage messages.
    pub fn names() -> Vec<&'static str> {
        DetectorKind::ALL.iter().map(|kind| kind.as_str()).collect()
    }
}

impl fmt::Display for DetectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DetectorKind {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        DetectorKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| {
                format!(
                    "unknown detector `{name}` (expected one of {})",
                    DetectorKind::names().join(", ")
                )
            })
    }
}

/// A detector and its parameters: everything needed to build one per key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DetectorSpec {
    /// Which detector.
    pub kind: DetectorKind,
    /// The rolling window of the z-scores (values) or of `dbscan` (points), default
    /// [`DetectorKind::default_window`]; the autoencoder has its own memories.
    pub window: usize,
    /// The forecaster of `residual` and `best`, default `auto`.
    pub model: ModelKind,
    /// The season of that forecaster, in steps (0: none).
    pub season: usize,
    /// Values silenced after a detection by `best`; 0 for none.
    pub rest: usize,
}

impl DetectorSpec {
    /// `kind` with the defaults: its default window, the `auto` forecaster without a season,
    /// no rest.
    pub fn new(kind: DetectorKind) -> Self {
        DetectorSpec {
            kind,
            window: kind.default_window(),
            model: ModelKind::Auto,
            season: 0,
            rest: 0,
        }
    }

    /// The univariate detector, for one feature.
    pub fn build_one(&self) -> Box<dyn Detector> {
        let residual = || ForecastResidual::new(self.model.build(self.season), self.window);
        match self.kind {
            DetectorKind::WindowedGaussian => Box::new(WindowedGaussian::new(self.window)),
            DetectorKind::Robust => Box::new(RobustZScore::new(self.window)),
            DetectorKind::EwmaChart => Box::new(EwmaChart::new(EWMA_CHART_LAMBDA)),
            DetectorKind::Residual => Box::new(residual()),
            DetectorKind::LearnedWeights => Box::new(RestPeriod::new(
                LearnedWeights::new(vec![
                    Box::new(residual()),
                    Box::new(WindowedGaussian::new(self.window)),
                ]),
                LEARNED_FIRE,
                self.rest,
            )),
            DetectorKind::Contextual => Box::new(RestPeriod::new(
                MaxOf::new(vec![
                    Box::new(residual()),
                    Box::new(WindowedGaussian::new(self.window)),
                ]),
                NORMAL_TAIL_ALARM,
                self.rest,
            )),
            DetectorKind::ValueNovelty => Box::new(ValueNovelty::new(self.window)),
            DetectorKind::Dbscan | DetectorKind::Autoencoder => {
                Box::new(LevelAndChange::new(self.build_multi(2)))
            }
            DetectorKind::Best => Box::new(RestPeriod::new(
                ValueNovelty::new(self.window),
                BEST_FIRE,
                self.rest,
            )),
        }
    }

    /// The multi-feature detector (`dbscan`, `autoencoder`) for points of `dims` features;
    /// for the other kinds, one univariate detector per feature ([`PerFeature`]).
    fn build_multi(&self, dims: usize) -> Box<dyn MultiDetector> {
        match self.kind {
            DetectorKind::Dbscan => Box::new(WindowDbscan::new(
                dims,
                DbscanConfig {
                    window: self.window,
                    ..DbscanConfig::default()
                },
            )),
            DetectorKind::Autoencoder => {
                Box::new(Autoencoder::new(dims, AutoencoderConfig::default()))
            }
            _ => Box::new(PerFeature::new(
                (0..dims).map(|_| self.build_one()).collect(),
            )),
        }
    }

    /// The detector for points of `dims` features (at least 1).
    pub fn build(&self, dims: usize) -> Box<dyn MultiDetector> {
        let dims = dims.max(1);
        if dims == 1 {
            return Box::new(PerFeature::new(vec![self.build_one()]));
        }
        self.build_multi(dims)
    }
}

/// A multi-feature detector over a single series: each value is scored as the point
/// `(value, value - previous value)` (the first value's change is 0).
pub struct LevelAndChange {
    inner: Box<dyn MultiDetector>,
    previous: Option<f64>,
}

impl LevelAndChange {
    /// Feeds `inner` (of 2 features) with level and change.
    pub fn new(inner: Box<dyn MultiDetector>) -> Self {
        LevelAndChange {
            inner,
            previous: None,
        }
    }
}

impl Detector for LevelAndChange {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn score(&mut self, value: f64) -> f64 {
        if !value.is_finite() {
            return 0.0;
        }
        let change = value - self.previous.unwrap_or(value);
        self.previous = Some(value);
        self.inner.score(&[value, change])
    }
}

/// Univariate detectors applied feature by feature: feature `i` is scored by detector `i`,
/// and the point scores the largest of them.
pub struct PerFeature {
    detectors: Vec<Box<dyn Detector>>,
}

impl PerFeature {
    /// One detector per feature.
    pub fn new(detectors: Vec<Box<dyn Detector>>) -> Self {
        PerFeature { detectors }
    }
}

impl MultiDetector for PerFeature {
    fn name(&self) -> &'static str {
        self.detectors
            .first()
            .map_or("per_feature", |detector| detector.name())
    }

    fn dims(&self) -> usize {
        self.detectors.len()
    }

    /// A point of the wrong length scores 0 and teaches nothing.
    fn score(&mut self, point: &[f64]) -> f64 {
        if point.len() != self.detectors.len() {
            return 0.0;
        }
        self.detectors
            .iter_mut()
            .zip(point)
            .map(|(detector, value)| detector.score(*value))
            .fold(0.0, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name parses back to its kind and builds a detector of the requested width.
    #[test]
    fn names_round_trip_and_build() {
        for kind in DetectorKind::ALL {
            assert_eq!(kind.as_str().parse::<DetectorKind>(), Ok(kind));
            let detector = DetectorSpec::new(kind).build(3);
            assert_eq!(detector.dims(), 3);
        }
    }

    /// Feature by feature: a jump in any one feature is seen, and a point of the wrong width
    /// scores 0.
    #[test]
    fn per_feature_scores_the_largest_feature() {
        let mut detector = DetectorSpec::new(DetectorKind::WindowedGaussian).build(3);
        for step in 0..200 {
            let wiggle = (step % 4) as f64;
            detector.score(&[wiggle, 100.0 + wiggle, -wiggle]);
        }
        assert!(detector.score(&[1.0, 101.0, -30.0]) > 0.9999);
        assert!(detector.score(&[1.0, 101.0, -2.0]) < 0.99);
        assert_eq!(detector.score(&[1.0, 2.0]), 0.0);
    }
}
