//! Combines detectors by a learned weighting: a logistic model over the detectors' surprises.
//!
//! Each detector's score `s` becomes a surprise `u = -ln(1 - s)` (0 for a score of 0, about 9
//! for 0.9999; capped at [`SURPRISE_CAP`]), which is divided by that detector's typical
//! surprise, an exponentially weighted mean over about [`BASELINE_POINTS`] points. So a
//! detector that is always somewhat alarmed on this series (a z-score on heavy-tailed data)
//! counts for less than one that is usually quiet; that is the unsupervised part, learned
//! from the stream itself. The combined score is the logistic `σ(b + Σ wᵢ xᵢ)` of the
//! normalised surprises `xᵢ`.
//!
//! The weights start equal (`1 / n`) with bias [`INITIAL_BIAS`], and are learned from labels
//! when there are any: [`LearnedWeights::feedback`] says whether the last scored point was an
//! anomaly (an operator acknowledging or dismissing an alert), and one step of online logistic
//! regression (learning rate [`LEARNING_RATE`]) moves the weights toward the detectors that
//! were right.
//!
//! # Examples
//! ```
//! use tidewatch_operators::detect::weighted::LearnedWeights;
//! use tidewatch_operators::detect::windowed_gaussian::WindowedGaussian;
//! use tidewatch_operators::detect::ewma_chart::EwmaChart;
//! use tidewatch_operators::detect::Detector;
//!
//! let mut detector = LearnedWeights::new(vec![
//!     Box::new(WindowedGaussian::new(500)),
//!     Box::new(EwmaChart::new(0.05)),
//! ]);
//! for step in 0..500 {
//!     detector.score(10.0 + (step % 7) as f64);
//! }
//! let quiet = detector.score(13.0);
//! let spike = detector.score(60.0);
//! assert!(spike > 0.99 && spike > quiet);
//! // An operator dismisses the spike as expected: the weights move, the next spike scores less.
//! let before = detector.weights().to_vec();
//! detector.feedback(false);
//! assert!(detector.weights().iter().zip(&before).all(|(after, before)| after < before));
//! ```

use super::Detector;

/// The largest surprise a score counts for (a score of `1 - e^-40`): a score of exactly 1
/// would be infinitely surprising and drown every other detector.
pub const SURPRISE_CAP: f64 = 40.0;

/// The memory, in points, of each detector's typical surprise.
pub const BASELINE_POINTS: f64 = 1_000.0;

/// The bias before any feedback: with equal weights, a point whose normalised surprises are
/// all 1 (typical) scores `σ(-4 + 1) ≈ 0.05`, and one ten times as surprising as usual `σ(6)`.
pub const INITIAL_BIAS: f64 = -4.0;

/// The step of online logistic regression per label.
pub const LEARNING_RATE: f64 = 0.05;

/// A learned weighting of several detectors; see the module documentation.
pub struct LearnedWeights {
    detectors: Vec<Box<dyn Detector>>,
    weights: Vec<f64>,
    bias: f64,
    /// Each detector's typical surprise (exponentially weighted mean), `None` before its first.
    baselines: Vec<Option<f64>>,
    /// The normalised surprises of the last point, for [`LearnedWeights::feedback`].
    last: Vec<f64>,
    last_score: f64,
}

impl LearnedWeights {
    /// Combines `detectors` with equal weights to start.
    pub fn new(detectors: Vec<Box<dyn Detector>>) -> Self {
        let n = detectors.len().max(1);
        LearnedWeights {
            weights: vec![1.0 / n as f64; detectors.len()],
            bias: INITIAL_BIAS,
            baselines: vec![None; detectors.len()],
            last: vec![0.0; detectors.len()],
            last_score: 0.0,
            detectors,
        }
    }

    /// The current weights, one per detector.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Learns from a label for the last scored point: `true` if it was an anomaly. One step of
    /// online logistic regression on the log loss.
    pub fn feedback(&mut self, anomalous: bool) {
        let error = f64::from(u8::from(anomalous)) - self.last_score;
        for (weight, x) in self.weights.iter_mut().zip(&self.last) {
            *weight += LEARNING_RATE * error * x;
        }
        self.bias += LEARNING_RATE * error;
    }
}

/// `-ln(1 - score)`, capped.
fn surprise(score: f64) -> f64 {
    if score.is_nan() || score <= 0.0 {
        0.0
    } else {
        (-(1.0 - score.min(1.0)).ln()).min(SURPRISE_CAP)
    }
}

impl Detector for LearnedWeights {
    fn name(&self) -> &'static str {
        "learned_weights"
    }

    fn score(&mut self, value: f64) -> f64 {
        let mut logit = self.bias;
        for (index, detector) in self.detectors.iter_mut().enumerate() {
            let u = surprise(detector.score(value));
            // Normalise by the baseline before this point, so a point cannot excuse itself.
            let baseline = self.baselines[index].unwrap_or(u).max(1e-3);
            let x = u / baseline;
            self.last[index] = x;
            logit += self.weights[index] * x;
            let alpha = 1.0 / BASELINE_POINTS;
            self.baselines[index] = Some(match self.baselines[index] {
                Some(mean) => mean + alpha * (u - mean),
                None => u,
            });
        }
        self.last_score = 1.0 / (1.0 + (-logit).exp());
        self.last_score
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores a fixed script, ignoring the value.
    struct Script(Vec<f64>, usize);
    impl Detector for Script {
        fn name(&self) -> &'static str {
            "script"
        }
        fn score(&mut self, _value: f64) -> f64 {
            self.1 += 1;
            self.0[(self.1 - 1) % self.0.len()]
        }
    }

    /// A detector that is always half alarmed is discounted against one that is usually
    /// quiet: the same score from each moves the combination by very different amounts.
    #[test]
    fn normalises_each_detector_by_its_typical_surprise() {
        let mut noisy = vec![0.9; 2_000];
        noisy.push(0.99);
        let mut quiet = vec![0.1; 2_000];
        quiet.push(0.99);
        let mut noisy_alarm = LearnedWeights::new(vec![
            Box::new(Script(noisy, 0)),
            Box::new(Script(vec![0.1], 0)),
        ]);
        let mut quiet_alarm = LearnedWeights::new(vec![
            Box::new(Script(vec![0.9], 0)),
            Box::new(Script(quiet, 0)),
        ]);
        let mut last = (0.0, 0.0);
        for _ in 0..2_001 {
            last = (noisy_alarm.score(0.0), quiet_alarm.score(0.0));
        }
        assert!(last.1 > 0.99, "{last:?}");
        assert!(last.0 < 0.5, "{last:?}");
    }

    /// Labels teach the weights: feedback that only the first detector's alarms are anomalies
    /// raises its weight above the second's.
    #[test]
    fn feedback_learns_which_detector_to_trust() {
        // Detector 0 alarms on every 10th point (true anomalies), detector 1 on every 7th.
        let pattern = |every: usize| -> Vec<f64> {
            (0..70)
                .map(|i| if i % every == 0 { 0.999 } else { 0.2 })
                .collect()
        };
        let mut detector = LearnedWeights::new(vec![
            Box::new(Script(pattern(10), 0)),
            Box::new(Script(pattern(7), 0)),
        ]);
        for step in 0..7_000 {
            detector.score(0.0);
            detector.feedback(step % 10 == 0);
        }
        let weights = detector.weights();
        assert!(weights[0] > 2.0 * weights[1].max(0.0), "{weights:?}");
        assert!(surprise(1.0) == SURPRISE_CAP && surprise(0.0) == 0.0 && surprise(f64::NAN) == 0.0);
    }
}
