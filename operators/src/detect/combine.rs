//! Combines detectors by the maximum of their scores: a value is as anomalous as the most
//! alarmed detector says. Every detector sees every value, so each keeps its own state.
//!
//! # Examples
//! ```
//! use tidewatch_operators::detect::combine::MaxOf;
//! use tidewatch_operators::detect::windowed_gaussian::WindowedGaussian;
//! use tidewatch_operators::detect::Detector;
//!
//! let mut detector = MaxOf::new(vec![
//!     Box::new(WindowedGaussian::new(10)),
//!     Box::new(WindowedGaussian::new(1_000)),
//! ]);
//! for step in 0..50 {
//!     detector.score((step % 3) as f64);
//! }
//! assert!(detector.score(30.0) > 0.9999);
//! ```

use super::Detector;

/// The maximum of several detectors' scores.
pub struct MaxOf {
    detectors: Vec<Box<dyn Detector>>,
}

impl MaxOf {
    /// Combines `detectors` (an empty list scores 0).
    pub fn new(detectors: Vec<Box<dyn Detector>>) -> Self {
        MaxOf { detectors }
    }
}

impl Detector for MaxOf {
    fn name(&self) -> &'static str {
        "max_of"
    }

    fn score(&mut self, value: f64) -> f64 {
        self.detectors
            .iter_mut()
            .map(|detector| detector.score(value))
            .fold(0.0, f64::max)
    }
}
