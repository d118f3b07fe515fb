//! `zscore_alerts`: the z-score alert rule over rolling statistics.
//!
//! A point raises an alert when its history has at least `min_history` points, a positive
//! standard deviation, and `|z| > threshold` with `z = (value - mean) / std_dev`.
//!
//! # Output
//! `((key, t), ZScoreAlert)` for each alerting point, with the diff of its statistics row.

use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};
use std::hash::Hash;

use crate::event::{FiniteF64, Millis};
use crate::rolling_stats::{RollingStats, StatsCollection};

/// Operator name, for logs and timely's logging.
pub const NAME: &str = "ZScoreAlert";

/// Parameters of the rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ZScoreRule {
    /// Least number of history points (SPEC §3: 10).
    pub min_history: u64,
    /// Alert when `|z|` is strictly above this (SPEC §3: 3).
    pub threshold: f64,
}

impl Default for ZScoreRule {
    fn default() -> Self {
        ZScoreRule {
            min_history: 10,
            threshold: 3.0,
        }
    }
}

/// An alert: the value, its history's statistics and its z-score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ZScoreAlert {
    /// The point's value.
    pub value: FiniteF64,
    /// Mean of the history.
    pub mu: FiniteF64,
    /// Population standard deviation of the history.
    pub sigma: FiniteF64,
    /// `(value - mu) / sigma`.
    pub z: FiniteF64,
    /// Number of history points.
    pub n: u64,
}

impl ZScoreRule {
    /// Evaluates the rule on one point.
    ///
    /// # Examples
    /// ```
    /// use tidewatch_operators::event::FiniteF64;
    /// use tidewatch_operators::rolling_stats::RollingStats;
    /// use tidewatch_operators::zscore::ZScoreRule;
    ///
    /// let f = |x| FiniteF64::new(x).unwrap();
    /// let stats = RollingStats { n: 10, mean: f(100.0), std_dev: f(10.0) };
    /// let alert = ZScoreRule::default().evaluate(f(131.0), &stats).unwrap();
    /// assert!((alert.z.get() - 3.1).abs() < 1e-12);
    /// assert!(ZScoreRule::default().evaluate(f(130.0), &stats).is_none()); // |z| = 3 is not > 3
    /// ```
    pub fn evaluate(&self, value: FiniteF64, stats: &RollingStats) -> Option<ZScoreAlert> {
        if stats.n < self.min_history || stats.std_dev.get() <= 0.0 {
            return None;
        }
        let z = (value.get() - stats.mean.get()) / stats.std_dev.get();
        if z.abs() > self.threshold {
            Some(ZScoreAlert {
                value,
                mu: stats.mean,
                sigma: stats.std_dev,
                z: FiniteF64::new(z)?,
                n: stats.n,
            })
        } else {
            None
        }
    }
}

/// Keeps the points whose statistics satisfy `rule`, as alerts.
///
/// # Examples
/// ```
/// use differential_dataflow::AsCollection;
/// use timely::dataflow::operators::{Capture, ToStream};
/// use timely::dataflow::operators::capture::Extract;
/// use tidewatch_operators::event::FiniteF64;
/// use tidewatch_operators::rolling_stats::RollingStats;
/// use tidewatch_operators::zscore::{zscore_alerts, ZScoreRule};
///
/// let f = |x| FiniteF64::new(x).unwrap();
/// let stats = RollingStats { n: 12, mean: f(100.0), std_dev: f(5.0) };
/// let captured = timely::example(move |scope| {
///     let rows = vec![((("wh-1", 0u64), (f(101.0), stats)), 60_000u64, 1isize),
///                     ((("wh-1", 60_000u64), (f(150.0), stats)), 120_000, 1)]
///         .to_stream(scope).as_collection();
///     zscore_alerts(rows, ZScoreRule::default()).inner.capture()
/// });
/// let alerts: Vec<_> = captured.extract().into_iter().flat_map(|(_, v)| v).collect();
/// assert_eq!(alerts.len(), 1);
/// assert_eq!(((alerts[0].0).0).1, 60_000);
/// ```
pub fn zscore_alerts<'scope, K>(
    stats: StatsCollection<'scope, K>,
    rule: ZScoreRule,
) -> VecCollection<'scope, u64, ((K, Millis), ZScoreAlert), isize>
where
    K: differential_dataflow::Data + Hash,
{
    stats.flat_map(move |(point, (value, stats))| {
        rule.evaluate(value, &stats).map(|alert| (point, alert))
    })
}
