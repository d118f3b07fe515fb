//! A rest period after each detection: once a detector scores a value at or above `fire`, the
//! next `rest` values score 0 while the detector keeps learning.
//!
//! Why: an anomaly is rarely one point. A level shift or a failure keeps scoring high for a
//! while, and an alerting system that raises on every one of those points buries the first,
//! useful alert under repeats. On the NAB corpus, a rolling z-score (NAB's `windowedGaussian`)
//! goes from 39.7 to about 54 on the standard profile with a rest of 2% of each file after a
//! score of 0.9999 (a prototype of this wrapper, issue 5's closing note).
//!
//! # Examples
//! ```
//! use tidewatch_operators::detect::rest::RestPeriod;
//! use tidewatch_operators::detect::windowed_gaussian::WindowedGaussian;
//! use tidewatch_operators::detect::Detector;
//!
//! let mut detector = RestPeriod::new(WindowedGaussian::new(100), 0.9999, 5);
//! for step in 0..100 {
//!     detector.score(10.0 + (step % 5) as f64);
//! }
//! assert!(detector.score(40.0) > 0.9999); // detected
//! assert_eq!(detector.score(45.0), 0.0); // resting: the shift is not reported again
//! ```

use super::Detector;

/// A detector with a rest period after each detection; see the module documentation.
#[derive(Clone, Debug)]
pub struct RestPeriod<D> {
    inner: D,
    fire: f64,
    rest: usize,
    /// Values left to rest.
    resting: usize,
}

impl<D: Detector> RestPeriod<D> {
    /// Wraps `inner`: after a score at or above `fire`, the next `rest` scores are 0.
    pub fn new(inner: D, fire: f64, rest: usize) -> Self {
        RestPeriod {
            inner,
            fire,
            rest,
            resting: 0,
        }
    }

    /// The wrapped detector.
    pub fn inner(&self) -> &D {
        &self.inner
    }
}

impl<D: Detector> Detector for RestPeriod<D> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn score(&mut self, value: f64) -> f64 {
        let score = self.inner.score(value);
        if self.resting > 0 {
            self.resting -= 1;
            return 0.0;
        }
        if score >= self.fire {
            self.resting = self.rest;
        }
        score
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores a fixed script, ignoring the value.
    struct Script(std::vec::IntoIter<f64>);
    impl Detector for Script {
        fn name(&self) -> &'static str {
            "script"
        }
        fn score(&mut self, _value: f64) -> f64 {
            self.0.next().unwrap_or(0.0)
        }
    }

    #[test]
    fn silences_the_rest_period_after_each_detection() {
        let script = vec![0.1, 0.99, 0.99, 0.99, 0.5, 0.99, 0.2];
        let mut detector = RestPeriod::new(Script(script.into_iter()), 0.9, 2);
        let scores: Vec<f64> = (0..7).map(|_| detector.score(0.0)).collect();
        assert_eq!(scores, vec![0.1, 0.99, 0.0, 0.0, 0.5, 0.99, 0.0]);
    }
}
