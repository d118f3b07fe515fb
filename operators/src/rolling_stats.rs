//! `rolling_stats`: for each point of a keyed series, the mean and population standard deviation
//! of the same key's points in the `range_ms` before it, as a differential collection.
//!
//! # Circuit
//! ```text
//! points ((K, t), v) at time a --> (K, (t, v, a)) +1 at a, -1 at t + retire_after
//!                                   --> release_when_due --> reduce per K --> filter: time == a
//! ```
//!
//! The `reduce` per key sees the key's points that have not retired; its output is the
//! statistics of the latest point (largest `t`) over the points in `[t - range_ms, t)`. Each
//! point's record is retracted at `t + retire_after_ms` (the temporal-filter idiom), so the
//! reduce's arrangements hold only the recent points of each key and compact. The reduce's output
//! also changes when a later point arrives or a point retires; only the change at the latest
//! point's own arrival time `a` is kept, so the output holds each point's statistics exactly
//! once, never retracted.
//!
//! Unchecked assumptions: a key's points arrive in increasing order of `t`, at most one per
//! timely time, each at a time `a >= t`; and every point that lies in the range of a later point
//! is still there when that later point arrives (`a' < t + retire_after_ms` whenever
//! `t' - range_ms <= t < t'`; for windows arriving at their end: `retire_after_ms > range_ms +
//! window length`).
//!
//! # Output
//! `((key, t), (v, stats))` with diff +1 at the point's arrival time, for every point; `stats.n`
//! is the number of history points (possibly 0, with mean and deviation 0).

use differential_dataflow::{AsCollection, VecCollection};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::hash::Hash;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;

use crate::event::{FiniteF64, Millis};
use crate::numeric::mean_and_std_dev;

/// Operator name, for logs and timely's logging.
pub const NAME: &str = "RollingStats";

/// Statistics of a point's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RollingStats {
    /// Number of history points.
    pub n: u64,
    /// Mean of their values (0 when `n` = 0).
    pub mean: FiniteF64,
    /// Population standard deviation of their values: exactly 0 when they are all equal.
    pub std_dev: FiniteF64,
}

/// A point as the reduce holds it: its time, value and the timely time it arrived at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
struct Point {
    t: Millis,
    value: FiniteF64,
    arrival: u64,
}

/// Points with their history's statistics: `((key, t), (value, stats))`.
pub type StatsCollection<'scope, K> =
    VecCollection<'scope, u64, ((K, Millis), (FiniteF64, RollingStats)), isize>;

/// Updates of a timely stream whose times may lie ahead of their batch's time.
type DelayedUpdates<D> = BTreeMap<u64, (Capability<u64>, Vec<(D, u64, isize)>)>;

/// Rolling mean and standard deviation over the `range_ms` before each point.
///
/// # Arguments
/// * `points`: `((key, t), value)` with diff +1 (see the module's assumptions).
/// * `range_ms`: the history of `(key, t)` is the key's points in `[t - range_ms, t)`.
/// * `retire_after_ms`: a point leaves the state at time `t + retire_after_ms`.
///
/// # Examples
/// ```
/// use differential_dataflow::AsCollection;
/// use timely::dataflow::operators::{Capture, ToStream};
/// use timely::dataflow::operators::capture::Extract;
/// use tidewatch_operators::event::FiniteF64;
/// use tidewatch_operators::rolling_stats::rolling_stats;
///
/// let captured = timely::example(|scope| {
///     // One point a minute; each arrives when its minute ends.
///     let points = (0..4u64)
///         .map(|i| ((("wh-1".to_string(), i * 60_000), FiniteF64::new(i as f64 * 10.0).unwrap()), (i + 1) * 60_000, 1isize))
///         .collect::<Vec<_>>()
///         .to_stream(scope)
///         .as_collection();
///     rolling_stats(points, 120_000, 240_000).inner.capture()
/// });
/// let mut rows: Vec<_> = captured.extract().into_iter().flat_map(|(_, v)| v).collect();
/// rows.sort();
/// // The point at 3 min has history {10, 20}: mean 15, deviation 5.
/// let ((_, at), (value, stats)) = &rows[3].0;
/// assert_eq!((*at, value.get(), stats.n, stats.mean.get(), stats.std_dev.get()), (180_000, 30.0, 2, 15.0, 5.0));
/// assert!(rows.iter().all(|(_, _, diff)| *diff == 1));
/// ```
pub fn rolling_stats<'scope, K>(
    points: VecCollection<'scope, u64, ((K, Millis), FiniteF64), isize>,
    range_ms: Millis,
    retire_after_ms: Millis,
) -> StatsCollection<'scope, K>
where
    K: differential_dataflow::ExchangeData + Hash,
{
    let by_key = points
        .inner
        .flat_map(move |(((key, t), value), arrival, diff)| {
            let record = (key, Point { t, value, arrival });
            [
                (record.clone(), arrival, diff),
                (record, t.saturating_add(retire_after_ms), -diff),
            ]
        });
    release_when_due(by_key)
        .as_collection()
        .reduce_named(NAME, move |_key, points, output| {
            // Points come sorted by `t`; the latest present one is the target.
            let present = || {
                points
                    .iter()
                    .filter(|(_, count)| *count > 0)
                    .map(|(point, _)| *point)
            };
            let Some(target) = present().next_back() else {
                return;
            };
            let history: Vec<f64> = present()
                .filter(|p| p.t < target.t && p.t >= target.t.saturating_sub(range_ms))
                .map(|p| p.value.get())
                .collect();
            let (mean, std_dev) = mean_and_std_dev(&history).unwrap_or((0.0, 0.0));
            let stats = RollingStats {
                n: history.len() as u64,
                mean: FiniteF64::new(mean).unwrap_or(FiniteF64::ZERO),
                std_dev: FiniteF64::new(std_dev).unwrap_or(FiniteF64::ZERO),
            };
            output.push(((*target, stats), 1));
        })
        .inner
        .flat_map(|((key, (point, stats)), time, diff)| {
            (time == point.arrival).then_some((((key, point.t), (point.value, stats)), time, diff))
        })
        .as_collection()
}

/// Holds updates whose time is later than their batch's timely time until the frontier reaches
/// that time, so that downstream arrangements do not keep re-sorting future updates.
fn release_when_due<'scope, D: Clone + 'static>(
    updates: StreamVec<'scope, u64, (D, u64, isize)>,
) -> StreamVec<'scope, u64, (D, u64, isize)> {
    updates.unary_frontier(Pipeline, "ReleaseWhenDue", |_capability, _info| {
        let mut waiting: DelayedUpdates<D> = BTreeMap::new();
        move |(input, frontier), output| {
            input.for_each_stamp(|capability, batches| {
                for batch in batches {
                    for update in batch.drain(..) {
                        let due = update.1;
                        waiting
                            .entry(due)
                            .or_insert_with(|| {
                                (capability.delayed(&due, output.output_index()), Vec::new())
                            })
                            .1
                            .push(update);
                    }
                }
            });
            while let Some(entry) = waiting.first_entry() {
                if frontier.less_than(entry.key()) {
                    break;
                }
                let (capability, updates) = entry.remove();
                output
                    .session(&capability)
                    .give_iterator(updates.into_iter());
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeMap;
    use timely::dataflow::operators::vec::UnorderedInput;
    use timely::dataflow::operators::Capture;

    type Row = ((u32, Millis), (u64, u64, u64)); // (key, t), (value, n, mean bits)
    type Output = (((u32, Millis), (FiniteF64, RollingStats)), u64, isize);

    /// From-scratch reference: for each point, the points of its key in `[t - range, t)`.
    fn reference(
        points: &[(u32, Millis, u64)],
        range: Millis,
    ) -> BTreeMap<(u32, Millis), (u64, u64, f64, f64)> {
        let mut out = BTreeMap::new();
        for (key, t, value) in points {
            let history: Vec<f64> = points
                .iter()
                .filter(|(k, s, _)| k == key && s < t && *s + range >= *t)
                .map(|(_, _, v)| *v as f64)
                .collect();
            let (mean, std_dev) = mean_and_std_dev(&history).unwrap_or((0.0, 0.0));
            out.insert((*key, *t), (*value, history.len() as u64, mean, std_dev));
        }
        out
    }

    fn run(
        config: timely::Config,
        points: Vec<(u32, Millis, u64)>,
        range: Millis,
        step: Millis,
    ) -> Vec<Output> {
        let captured = crate::testing::run_captured(config, move |worker, send| {
            let (index, peers) = (worker.index(), worker.peers());
            let (mut input, capability) = worker.dataflow::<u64, _, _>(|scope| {
                let (handle, stream) =
                    scope.new_unordered_input::<(((u32, Millis), FiniteF64), u64, isize)>();
                rolling_stats(stream.as_collection(), range, range + 2 * step)
                    .inner
                    .capture_into(send);
                handle
            });
            for (key, t, value) in points.iter().skip(index).step_by(peers) {
                let arrival = t + step; // a window's row arrives at its end
                let value = FiniteF64::new(*value as f64).expect("finite");
                input
                    .activate()
                    .session(&capability.delayed(&arrival))
                    .give((((*key, *t), value), arrival, 1));
            }
        });
        captured.into_iter().flat_map(|(_, v)| v).collect()
    }

    #[test]
    fn matches_a_from_scratch_reference_with_gaps_and_many_keys() {
        let (range, step) = (1_800_000, 60_000);
        for seed in 0..4u64 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut points = Vec::new();
            for key in 0..5u32 {
                for minute in 0..150u64 {
                    // Gaps (and long ones for key 4) so that histories of every size occur.
                    if rng.random_bool(if key == 4 { 0.2 } else { 0.7 }) {
                        let value = if key == 3 {
                            500
                        } else {
                            rng.random_range(0..1_000)
                        };
                        points.push((key, minute * step, value));
                    }
                }
            }
            let expected = reference(&points, range);
            assert!(expected.values().any(|(_, n, _, sd)| *n >= 10 && *sd > 0.0));
            assert!(
                expected
                    .values()
                    .any(|(_, n, _, sd)| *n >= 10 && *sd == 0.0),
                "constant key 3 has sigma exactly 0"
            );
            for config in crate::testing::worker_configs() {
                let got = run(config, points.clone(), range, step);
                let mut seen: BTreeMap<(u32, Millis), Row> = BTreeMap::new();
                for (((key, t), (value, stats)), time, diff) in got {
                    assert_eq!(
                        (time, diff),
                        (t + step, 1),
                        "each point once, at its arrival, never retracted"
                    );
                    let row = (
                        (key, t),
                        (value.get() as u64, stats.n, stats.mean.get().to_bits()),
                    );
                    assert!(
                        seen.insert((key, t), row).is_none(),
                        "duplicate output for {key} {t}"
                    );
                    let (want_value, want_n, want_mean, want_sd) = expected[&(key, t)];
                    assert_eq!(
                        (value.get() as u64, stats.n),
                        (want_value, want_n),
                        "key {key} t {t}"
                    );
                    assert!(
                        (stats.mean.get() - want_mean).abs() <= 1e-9 * want_mean.abs().max(1.0)
                    );
                    assert!((stats.std_dev.get() - want_sd).abs() <= 1e-9 * want_sd.abs().max(1.0));
                    assert_eq!(stats.std_dev.get() == 0.0, want_sd == 0.0);
                }
                assert_eq!(seen.len(), expected.len(), "seed {seed}");
            }
        }
    }
}
