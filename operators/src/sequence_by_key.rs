//! `sequence_by_key`: runs a state machine per key over that key's points in event-time order,
//! the home of the forecasters and of any other model that must see a series in order.
//!
//! Points `(key, point_time, input)` are exchanged by key and stashed by their timely time.
//! A time is processed only once the input frontier has passed it, so every point at or before
//! it has arrived: its points are sorted by `(point_time, key, input)` and fed, one by one, to
//! the key's state (created by `init` on the key's first point). Whatever `step` returns is
//! emitted at that timely time. The stash holds one capability per pending time and drops it as
//! soon as the time is processed.
//!
//! Because each key's points reach its state in one well-defined order, the outputs do not
//! depend on the number of workers, on how the input was split, or on arrival order.
//!
//! Unchecked assumptions: a point's timely time never exceeds its `point_time`, and a later
//! `point_time` of the same key never travels at an earlier timely time (true when the timely
//! time is the point's time rounded down to a grid, as in the dataflows here).
//! State is kept for every key ever seen: meant for keys from a bounded set (warehouses,
//! sensors), not for order ids.
//!
//! # Arguments
//! * `points`: `(key, point_time, input)` records;
//! * `init`: the state of a new key;
//! * `step`: takes a key's state and its next point, returns an output or `None`.
//!
//! # Output
//! `step`'s outputs, at the timely time of the point that produced them.
//!
//! # Examples
//! ```
//! use timely::dataflow::operators::{Capture, ToStream};
//! use timely::dataflow::operators::capture::Extract;
//! use tidewatch_operators::sequence_by_key::sequence_by_key;
//!
//! // A running total per key, emitted with each point.
//! let captured = timely::example(|scope| {
//!     let points = vec![('a', 2u64, 5i64), ('b', 1, 1), ('a', 1, 10)].to_stream(scope);
//!     sequence_by_key(points, |_key| 0i64, |key, total, time, value| {
//!         *total += value;
//!         Some((*key, time, *total))
//!     })
//!     .capture()
//! });
//! let mut rows: Vec<_> = captured.extract().into_iter().flat_map(|(_, v)| v).collect();
//! rows.sort();
//! // 'a' saw time 1 (10) before time 2 (5), whatever the arrival order.
//! assert_eq!(rows, vec![('a', 1, 10), ('a', 2, 15), ('b', 1, 1)]);
//! ```

use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::hash::Hash;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;
use timely::ExchangeData;

use crate::event::Millis;
use crate::interval_join::route_hash;

/// Operator name, for logs and timely's logging.
pub const NAME: &str = "SequenceByKey";

/// The points of one pending time and the capability to emit at it.
type Pending<K, I> = (Capability<u64>, Vec<(K, Millis, I)>);

/// Feeds each key's points, in event-time order, to a per-key state machine. See the module
/// documentation.
pub fn sequence_by_key<'scope, K, I, S, O>(
    points: StreamVec<'scope, u64, (K, Millis, I)>,
    init: impl Fn(&K) -> S + 'static,
    mut step: impl FnMut(&K, &mut S, Millis, I) -> Option<O> + 'static,
) -> StreamVec<'scope, u64, O>
where
    K: ExchangeData + Clone + Hash + Eq + Ord,
    I: ExchangeData + Ord,
    S: 'static,
    O: ExchangeData,
{
    let pact = Exchange::new(|(key, _, _): &(K, Millis, I)| route_hash(key));
    points.unary_frontier(pact, NAME, move |_capability, info| {
        let worker = info.global_id;
        let mut pending: BTreeMap<u64, Pending<K, I>> = BTreeMap::new();
        let mut states: FxHashMap<K, S> = FxHashMap::default();
        move |(input, frontier), output| {
            input.for_each_stamp(|capability, batches| {
                let Some(&time) = capability.least() else {
                    return;
                };
                let (_, stash) = pending.entry(time).or_insert_with(|| {
                    (capability.delayed(&time, output.output_index()), Vec::new())
                });
                for batch in batches {
                    stash.append(batch);
                }
            });
            while let Some(entry) = pending.first_entry() {
                if frontier.less_equal(entry.key()) {
                    break;
                }
                let time = *entry.key();
                let (capability, mut stash) = entry.remove();
                tracing::debug!(operator = NAME, worker, time, points = stash.len(), "step");
                let mut session = output.session(&capability);
                // Sorted by key first would not be time order; sort by point time, then key.
                stash.sort_by(|a, b| (a.1, &a.0, &a.2).cmp(&(b.1, &b.0, &b.2)));
                for (key, point_time, value) in stash {
                    let state = states.entry(key.clone()).or_insert_with(|| init(&key));
                    if let Some(out) = step(&key, state, point_time, value) {
                        session.give(out);
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use timely::dataflow::operators::vec::UnorderedInput;
    use timely::dataflow::operators::Capture;

    type Row = (u64, (u32, Millis, u64, u64));

    /// A per-key state that depends on order: an order-sensitive hash of the values so far.
    fn run(config: timely::Config, points: Vec<(u32, Millis, u64)>) -> Vec<Row> {
        let captured = crate::testing::run_captured(config, move |worker, send| {
            let (index, peers) = (worker.index(), worker.peers());
            let (mut handle, capability) = worker.dataflow::<u64, _, _>(|scope| {
                let (handle, stream) = scope.new_unordered_input::<(u32, Millis, u64)>();
                sequence_by_key(
                    stream,
                    |_| 0u64,
                    |key, state, time, value| {
                        *state = state.wrapping_mul(31).wrapping_add(value);
                        Some((*key, time, value, *state))
                    },
                )
                .capture_into(send);
                handle
            });
            for point in points.iter().skip(index).step_by(peers) {
                handle
                    .activate()
                    .session(&capability.delayed(&(point.1 - point.1 % 100)))
                    .give(*point);
            }
        });
        crate::testing::timed_rows(captured)
    }

    #[test]
    fn each_key_sees_its_points_in_time_order_at_any_worker_count() {
        for seed in 0..5u64 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut points: Vec<(u32, Millis, u64)> = (0..300)
                .map(|_| {
                    (
                        rng.random_range(0..4),
                        rng.random_range(0..2_000),
                        rng.random_range(0..1_000),
                    )
                })
                .collect();
            // The reference: sort by (time, key, value), fold per key.
            let mut sorted = points.clone();
            sorted.sort_by_key(|&(key, time, value)| (time, key, value));
            let mut states: BTreeMap<u32, u64> = BTreeMap::new();
            let mut expected: Vec<Row> = sorted
                .into_iter()
                .map(|(key, time, value)| {
                    let state = states.entry(key).or_default();
                    *state = state.wrapping_mul(31).wrapping_add(value);
                    (time - time % 100, (key, time, value, *state))
                })
                .collect();
            expected.sort();
            // Arrival order must not matter.
            points.reverse();
            for config in crate::testing::worker_configs() {
                assert_eq!(run(config, points.clone()), expected, "seed {seed}");
            }
        }
    }
}
