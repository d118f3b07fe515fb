//! `rolling_stats`: for each point of a keyed series, the mean and population standard deviation
//! of the same key's points in the `range_ms` before it, as a differential collection.
//!
//! # Circuit
//! ```text
//! points ((K, t), v) --+-- target ((K, t), Target(v)) ------------------\
//!                      +-- fan-out ((K, t + i*step), History(t, v)),      +--> reduce per (K, t)
//!                          i = 1 ..= range/step -------------------------/        |
//!                                                                  filter: time < t + retire_after
//! ```
//!
//! Each point is sent to the keys of the later points whose history window contains it, and a
//! `reduce` per `(key, t)` computes the statistics once the target itself is present. Every
//! input record of `(key, t)` is retracted at `t + retire_after_ms` (the temporal-filter idiom),
//! so the reduce's arrangements hold only recent keys and compact; the retraction this causes in
//! the reduce's output is filtered away, so the output holds each point's statistics exactly once,
//! never retracted.
//!
//! Unchecked assumptions: all points of a key lie on one grid of `step_ms` (for windows: their
//! starts); a point `(key, t)` arrives at a timely time below `t + retire_after_ms`; and a key has
//! at most one point per time.
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
use timely::dataflow::operators::vec::{Filter, Map};
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

/// A record of the reduce's input: the point itself, or a point of its history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
enum Entry {
    /// The point whose statistics are computed.
    Target(FiniteF64),
    /// A history point: its time and value.
    History(Millis, FiniteF64),
}

/// Rolling mean and standard deviation over the `range_ms` before each point.
///
/// # Arguments
/// * `points`: `((key, t), value)` with diff +1; at most one point per key and time.
/// * `range_ms`, `step_ms`: the history of `(key, t)` is the key's points in `[t - range_ms, t)`;
///   points lie on a grid of `step_ms`.
/// * `retire_after_ms`: state for `(key, t)` is retired at time `t + retire_after_ms`.
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
///     rolling_stats(points, 120_000, 60_000, 600_000).inner.capture()
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
    step_ms: Millis,
    retire_after_ms: Millis,
) -> VecCollection<'scope, u64, ((K, Millis), (FiniteF64, RollingStats)), isize>
where
    K: differential_dataflow::ExchangeData + Hash,
{
    assert!(
        step_ms > 0,
        "rolling statistics need a positive step, got {step_ms}"
    );
    let steps = range_ms / step_ms;
    // A history record is due when its target's window opens (`target_t`): every record of a
    // key then arrives at (at most) three times — history, target, retirement — instead of
    // one reduce evaluation per history point.
    let entries = points
        .inner
        .flat_map(move |(((key, t), value), time, diff)| {
            let target = (((key.clone(), t), Entry::Target(value)), time);
            let history = (1..=steps).map(move |i| {
                let target_t = t + i * step_ms;
                (
                    ((key.clone(), target_t), Entry::History(t, value)),
                    time.max(target_t),
                )
            });
            std::iter::once(target)
                .chain(history)
                .flat_map(move |(record, due)| {
                    let retire = (record.0).1 + retire_after_ms;
                    [(record.clone(), due, diff), (record, retire, -diff)]
                })
        });
    let entries = release_when_due(entries).as_collection();
    entries
        .reduce_named(NAME, |_key, entries, output| {
            let mut target = None;
            let mut history = Vec::with_capacity(entries.len());
            for (entry, count) in entries {
                if *count <= 0 {
                    continue;
                }
                match entry {
                    Entry::Target(value) => target = Some(*value),
                    Entry::History(_, value) => history.push(value.get()),
                }
            }
            if let Some(value) = target {
                let (mean, std_dev) = mean_and_std_dev(&history).unwrap_or((0.0, 0.0));
                let stats = RollingStats {
                    n: history.len() as u64,
                    mean: FiniteF64::new(mean).unwrap_or(FiniteF64::ZERO),
                    std_dev: FiniteF64::new(std_dev).unwrap_or(FiniteF64::ZERO),
                };
                output.push(((value, stats), 1));
            }
        })
        .inner
        .filter(move |(((_, t), _), time, _)| *time < *t + retire_after_ms)
        .as_collection()
}

/// Holds updates whose time is later than their batch's timely time until the frontier reaches
/// that time, so that downstream arrangements do not keep re-sorting future updates.
fn release_when_due<'scope, D: Clone + 'static>(
    updates: StreamVec<'scope, u64, (D, u64, isize)>,
) -> StreamVec<'scope, u64, (D, u64, isize)> {
    updates.unary_frontier(Pipeline, "ReleaseWhenDue", |_capability, _info| {
        let mut waiting: BTreeMap<u64, (Capability<u64>, Vec<(D, u64, isize)>)> = BTreeMap::new();
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
