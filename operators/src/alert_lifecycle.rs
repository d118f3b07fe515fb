//! `alert_lifecycle`: the hygiene every alert rule shares, as a per-key state machine over
//! scored points in event-time order (a plain struct: run it inside [`sequence_by_key`]).
//!
//! * **Hysteresis.** An alert is raised when the score is at or above `high` and cleared when
//!   it falls below `low` (`low <= high`). Between the two it keeps its state, so a score that
//!   hovers around one threshold does not flap.
//! * **Minimum duration** (Prometheus `for`), in points: the score must be at or above `high`
//!   for `for_points` consecutive points before the alert is raised; a point below `high`
//!   starts the count again. Points, not event time, because a point is whatever the caller
//!   scores (a window that carries the metric): series with gaps (a warehouse with no row for a
//!   minute) then need no rule for what a gap means. 0 and 1 both raise on the first point.
//! * **Dedup.** While an alert is active nothing new is raised. A point at the same event time
//!   as the previous one (or earlier) is ignored: a replayed or duplicated point can neither
//!   raise twice nor count twice toward `for`. A NaN score is ignored too.
//! * **Deltas.** Raising returns the alert's row with diff +1 at the raising point's time;
//!   clearing returns the very same row (kept in the state) with diff -1 at the clearing
//!   point's time. So, as SPEC §4 requires, the diffs of equal rows sum to 0 or 1.
//! * **Ids.** [`alert_id`] derives an id from (rule, key, event time of the raising point)
//!   with FNV-1a: the same input gives the same ids in every run, on any number of workers,
//!   and after a restart that replays the input.
//!
//! Unchecked assumption: the caller feeds one key's points in event-time order (what
//! [`sequence_by_key`] does); an earlier time is ignored like a repeated one.
//!
//! # Examples
//! ```
//! use timely::dataflow::operators::{Capture, ToStream};
//! use timely::dataflow::operators::capture::Extract;
//! use tidewatch_operators::alert_lifecycle::{alert_id, AlertLifecycle, AlertPolicy};
//! use tidewatch_operators::sequence_by_key::sequence_by_key;
//!
//! // Scores of one sensor, minute by minute: raised at 2 (>= 0.9), held through 0.7 (not below
//! // the low threshold 0.5), cleared at 5.
//! let scores = vec![(1u64, 0.2), (2, 0.95), (3, 0.7), (4, 0.92), (5, 0.3)];
//! let captured = timely::example(move |scope| {
//!     let points = scores
//!         .into_iter()
//!         .map(|(minute, score)| ("s-1".to_string(), minute, (score * 1000.0) as u64))
//!         .to_stream(scope);
//!     let policy = AlertPolicy::new(0.9, 0.5, 1).unwrap();
//!     sequence_by_key(points, move |_key| AlertLifecycle::new(policy), |key, lifecycle, time, milli| {
//!         let change = lifecycle.observe(time, milli as f64 / 1000.0, || alert_id("hot", key, time))?;
//!         Some((change.row, change.time, change.diff))
//!     })
//!     .capture()
//! });
//! let changes: Vec<_> = captured.extract().into_iter().flat_map(|(_, v)| v).collect();
//! let id = alert_id("hot", "s-1", 2);
//! assert_eq!(changes, vec![(id.clone(), 2, 1), (id, 5, -1)]);
//! ```
//!
//! [`sequence_by_key`]: crate::sequence_by_key::sequence_by_key

use crate::event::Millis;

/// Operator name, for logs.
pub const NAME: &str = "AlertLifecycle";

/// The thresholds and minimum duration of an alert rule; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AlertPolicy {
    high: f64,
    low: f64,
    for_points: usize,
}

/// Why an [`AlertPolicy`] cannot be built: a user error in a rule's settings.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// A threshold is NaN or infinite.
    #[error("{name} {value} is not a finite number")]
    NotFinite {
        /// `high` or `low`.
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// The clearing threshold lies above the raising one.
    #[error("low {low} must not be above high {high}")]
    LowAboveHigh {
        /// The clearing threshold.
        low: f64,
        /// The raising threshold.
        high: f64,
    },
}

impl AlertPolicy {
    /// Raise at `score >= high` held for `for_points` consecutive points (0 counts as 1),
    /// clear at `score < low`.
    pub fn new(high: f64, low: f64, for_points: usize) -> Result<Self, PolicyError> {
        for (name, value) in [("high", high), ("low", low)] {
            if !value.is_finite() {
                return Err(PolicyError::NotFinite { name, value });
            }
        }
        if low > high {
            return Err(PolicyError::LowAboveHigh { low, high });
        }
        Ok(AlertPolicy {
            high,
            low,
            for_points: for_points.max(1),
        })
    }

    /// The raising threshold.
    pub fn high(&self) -> f64 {
        self.high
    }

    /// The clearing threshold.
    pub fn low(&self) -> f64 {
        self.low
    }

    /// Consecutive points at or above `high` needed to raise (at least 1).
    pub fn for_points(&self) -> usize {
        self.for_points
    }
}

/// One change of the alert state: `row` with `diff` +1 (raised) or -1 (cleared) at `time`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertChange<R> {
    /// The alert's row; a clear carries the row its raise carried.
    pub row: R,
    /// Event time of the point that raised or cleared the alert.
    pub time: Millis,
    /// +1 raised, -1 cleared.
    pub diff: isize,
}

/// Where one key's alert stands.
#[derive(Clone, Debug, PartialEq)]
enum Phase<R> {
    /// No alert; `run` consecutive points so far at or above `high`.
    Inactive { run: usize },
    /// Raised with `row`, not yet cleared.
    Active { row: R },
}

/// One key's alert state machine; see the module documentation.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertLifecycle<R> {
    policy: AlertPolicy,
    phase: Phase<R>,
    last_time: Option<Millis>,
}

impl<R: Clone> AlertLifecycle<R> {
    /// A key with no alert.
    pub fn new(policy: AlertPolicy) -> Self {
        AlertLifecycle {
            policy,
            phase: Phase::Inactive { run: 0 },
            last_time: None,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &AlertPolicy {
        &self.policy
    }

    /// The active alert's row, if an alert is raised.
    pub fn active(&self) -> Option<&R> {
        match &self.phase {
            Phase::Active { row } => Some(row),
            Phase::Inactive { .. } => None,
        }
    }

    /// Takes the point at `time` with `score`; returns the change it makes, if any. `raise`
    /// builds the alert's row, and is called only when the alert is raised.
    pub fn observe(
        &mut self,
        time: Millis,
        score: f64,
        raise: impl FnOnce() -> R,
    ) -> Option<AlertChange<R>> {
        if self.last_time.is_some_and(|last| time <= last) || score.is_nan() {
            return None;
        }
        self.last_time = Some(time);
        match &mut self.phase {
            Phase::Inactive { run } => {
                if score < self.policy.high {
                    *run = 0;
                    return None;
                }
                *run += 1;
                if *run < self.policy.for_points {
                    return None;
                }
                let row = raise();
                self.phase = Phase::Active { row: row.clone() };
                Some(AlertChange { row, time, diff: 1 })
            }
            Phase::Active { .. } => {
                if score >= self.policy.low {
                    return None;
                }
                let Phase::Active { row } =
                    std::mem::replace(&mut self.phase, Phase::Inactive { run: 0 })
                else {
                    unreachable!("the phase was matched as active just above");
                };
                Some(AlertChange {
                    row,
                    time,
                    diff: -1,
                })
            }
        }
    }
}

/// The id of the alert that `rule` raised for `key` at event time `raised_at`: FNV-1a (64 bit)
/// of `rule`, a 0x1f separator, `key`, a 0x1f separator and `raised_at` in decimal, as 16
/// lowercase hex digits. FNV-1a is written out here because std's hasher is seeded per process
/// (and may change between Rust versions): these ids must stay the same across runs, restarts
/// and releases.
///
/// ```
/// use tidewatch_operators::alert_lifecycle::alert_id;
/// let id = alert_id("order_volume_anomaly", "wh-03", 1_764_288_000_000);
/// assert_eq!(id.len(), 16);
/// assert_eq!(id, alert_id("order_volume_anomaly", "wh-03", 1_764_288_000_000));
/// assert_ne!(id, alert_id("order_volume_anomaly", "wh-03", 1_764_288_060_000));
/// assert_eq!(alert_id("", "", 0), "8f3e4b18d31fa209"); // pinned: ids never change
/// ```
pub fn alert_id(rule: &str, key: &str, raised_at: Millis) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let time = raised_at.to_string();
    let bytes = rule
        .as_bytes()
        .iter()
        .chain(&[0x1f])
        .chain(key.as_bytes())
        .chain(&[0x1f])
        .chain(time.as_bytes());
    let hash = bytes.fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    });
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The changes a score sequence makes (point `i` at time `i`); rows are the raising time.
    fn run(policy: AlertPolicy, scores: &[f64]) -> Vec<(Millis, isize, Millis)> {
        let mut lifecycle = AlertLifecycle::new(policy);
        scores
            .iter()
            .enumerate()
            .filter_map(|(time, score)| {
                let time = time as Millis;
                lifecycle.observe(time, *score, || time)
            })
            .map(|change| (change.time, change.diff, change.row))
            .collect()
    }

    fn policy(high: f64, low: f64, for_points: usize) -> AlertPolicy {
        AlertPolicy::new(high, low, for_points).expect("a valid policy")
    }

    #[test]
    fn hysteresis_raises_at_high_and_clears_below_low() {
        let scores = [0.1, 0.95, 0.85, 0.6, 0.5, 0.49, 0.89, 0.9];
        // Raised at 1; 0.85, 0.6 and 0.5 hold it (not below 0.5); cleared at 5; 0.89 is not
        // high enough to raise again, 0.9 is.
        assert_eq!(
            run(policy(0.9, 0.5, 1), &scores),
            vec![(1, 1, 1), (5, -1, 1), (7, 1, 7)]
        );
    }

    #[test]
    fn a_flapping_score_is_held_steady_by_hysteresis() {
        let scores: Vec<f64> = (0..20)
            .map(|i| if i % 2 == 0 { 0.95 } else { 0.8 })
            .collect();
        assert_eq!(run(policy(0.9, 0.5, 1), &scores), vec![(0, 1, 0)]);
        // Without hysteresis (low = high) the same score flaps on every point.
        assert_eq!(run(policy(0.9, 0.9, 1), &scores).len(), 20);
    }

    #[test]
    fn for_needs_consecutive_points_at_or_above_high() {
        let scores = [0.95, 0.95, 0.2, 0.95, 0.95, 0.95, 0.99, 0.1];
        // The run of two breaks at 2; the next run reaches three points at 5.
        assert_eq!(
            run(policy(0.9, 0.5, 3), &scores),
            vec![(5, 1, 5), (7, -1, 5)]
        );
        // A point between low and high also breaks the run (it is not at or above high).
        let scores = [0.95, 0.95, 0.7, 0.95, 0.95];
        assert_eq!(run(policy(0.9, 0.5, 3), &scores), vec![]);
        // 0 counts as 1.
        assert_eq!(run(policy(0.9, 0.5, 0), &[0.95]), vec![(0, 1, 0)]);
    }

    #[test]
    fn dedup_no_second_raise_while_active_nor_from_a_repeated_time() {
        let mut lifecycle = AlertLifecycle::new(policy(0.9, 0.5, 2));
        assert_eq!(lifecycle.observe(10, 0.95, || "a"), None);
        // The same point again (a duplicate) does not count toward `for`.
        assert_eq!(lifecycle.observe(10, 0.95, || "b"), None);
        let raised = lifecycle.observe(11, 0.97, || "c");
        assert_eq!(
            raised,
            Some(AlertChange {
                row: "c",
                time: 11,
                diff: 1
            })
        );
        // Active: neither a repeated time nor more high scores raise again, and a repeated
        // time cannot clear either.
        assert_eq!(lifecycle.observe(11, 0.99, || "d"), None);
        assert_eq!(lifecycle.observe(11, 0.0, || "e"), None);
        assert_eq!(lifecycle.observe(12, 0.99, || "f"), None);
        assert_eq!(lifecycle.observe(13, f64::NAN, || "g"), None);
        assert_eq!(lifecycle.active(), Some(&"c"));
        // The clear retracts the raised row, at the clearing point's time.
        assert_eq!(
            lifecycle.observe(14, 0.1, || "h"),
            Some(AlertChange {
                row: "c",
                time: 14,
                diff: -1
            })
        );
        assert_eq!(lifecycle.active(), None);
    }

    #[test]
    fn invalid_policies_are_refused() {
        assert_eq!(
            AlertPolicy::new(0.5, 0.9, 1),
            Err(PolicyError::LowAboveHigh {
                low: 0.9,
                high: 0.5
            })
        );
        assert!(AlertPolicy::new(f64::NAN, 0.1, 1).is_err());
        assert!(AlertPolicy::new(0.9, f64::NEG_INFINITY, 1).is_err());
    }

    /// The reference: at point `i` (times deduplicated beforehand), an inactive alert is raised
    /// when the last `for` points are all at or above `high`; an active one is cleared when the
    /// score is below `low`.
    fn reference(
        high: f64,
        low: f64,
        for_points: usize,
        points: &[(Millis, f64)],
    ) -> Vec<(Millis, isize, Millis)> {
        let mut distinct: Vec<(Millis, f64)> = Vec::new();
        for &(time, score) in points {
            if distinct.last().is_none_or(|&(last, _)| time > last) {
                distinct.push((time, score));
            }
        }
        let for_points = for_points.max(1);
        let mut changes = Vec::new();
        let mut raised_at: Option<Millis> = None;
        for i in 0..distinct.len() {
            let (time, score) = distinct[i];
            match raised_at {
                None => {
                    let recent = &distinct[(i + 1).saturating_sub(for_points)..=i];
                    if recent.len() == for_points && recent.iter().all(|&(_, s)| s >= high) {
                        changes.push((time, 1, time));
                        raised_at = Some(time);
                    }
                }
                Some(at) if score < low => {
                    changes.push((time, -1, at));
                    raised_at = None;
                }
                Some(_) => {}
            }
        }
        changes
    }

    #[test]
    fn matches_a_naive_reference_on_random_score_sequences() {
        for seed in 0..300u64 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let high = rng.random_range(0.3..1.0);
            let low = rng.random_range(0.0..=high);
            let for_points = rng.random_range(0..5);
            let mut time = 0;
            let points: Vec<(Millis, f64)> = (0..rng.random_range(0..200))
                .map(|_| {
                    // Some repeated times, to exercise dedup.
                    time += if rng.random_bool(0.1) {
                        0
                    } else {
                        rng.random_range(1..4)
                    };
                    (time, rng.random::<f64>())
                })
                .collect();
            let mut lifecycle = AlertLifecycle::new(policy(high, low, for_points));
            let got: Vec<_> = points
                .iter()
                .filter_map(|&(time, score)| lifecycle.observe(time, score, || time))
                .map(|change| (change.time, change.diff, change.row))
                .collect();
            assert_eq!(
                got,
                reference(high, low, for_points, &points),
                "seed {seed}"
            );
            // Change-log shape: raises and clears alternate, each clear retracts the row just
            // raised, later in time; so each row's diffs sum to 0 or 1.
            for pair in got.chunks(2) {
                assert_eq!(pair[0].1, 1, "seed {seed}");
                if let [raise, clear] = pair {
                    assert_eq!((clear.1, clear.2), (-1, raise.2), "seed {seed}");
                    assert!(clear.0 > raise.0, "seed {seed}");
                }
            }
        }
    }

    #[test]
    fn alert_ids_are_pinned_and_separate_their_parts() {
        // Golden values: changing the id scheme would orphan every alert already written.
        assert_eq!(alert_id("", "", 0), "8f3e4b18d31fa209");
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(alert_id("ab", "c", 1), alert_id("a", "bc", 1));
        assert_ne!(alert_id("r", "k1", 1), alert_id("r", "k", 11));
    }
}
