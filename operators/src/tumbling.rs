//! `tumbling`: tumbling event-time windows with a pluggable aggregate.
//!
//! Each input record `(key, ts, value)` belongs to the window starting at
//! `ts - ts % window_ms`. Records are exchanged by `(key, window_start)`, folded into one
//! [`WindowAggregate`] per key and window, and each window is finished exactly once, when the
//! input frontier has passed its last millisecond. The output record is emitted at the timely
//! time `window_end`, so a window row "takes effect" when its window closes, and its state is
//! dropped at that moment (state holds only windows that are still open).
//!
//! Unchecked assumption: a record's timely time never exceeds its event time.
//!
//! # Output
//! `(key, window_start, aggregate.finish())` at time `window_start + window_ms`, once per key and
//! window that received at least one record (and whose `finish` returned `Some`).

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
pub const NAME: &str = "TumblingWindow";

/// A fold over the records of one key and window.
pub trait WindowAggregate: Default + 'static {
    /// What a record contributes.
    type Input: ExchangeData;
    /// The finished window.
    type Output: 'static;
    /// Adds one record.
    fn insert(&mut self, input: Self::Input);
    /// Finishes the window; `None` emits nothing.
    fn finish(self) -> Option<Self::Output>;
}

/// Groups `(key, ts, value)` records into tumbling windows of `window_ms` and folds each with `A`.
///
/// # Examples
/// ```
/// use timely::dataflow::operators::{Capture, ToStream};
/// use timely::dataflow::operators::capture::Extract;
/// use tidewatch_operators::tumbling::{tumbling, WindowAggregate};
///
/// #[derive(Default)]
/// struct Sum(u64);
/// impl WindowAggregate for Sum {
///     type Input = u64;
///     type Output = u64;
///     fn insert(&mut self, x: u64) { self.0 += x; }
///     fn finish(self) -> Option<u64> { Some(self.0) }
/// }
///
/// let captured = timely::example(|scope| {
///     let readings = vec![('a', 0u64, 1u64), ('a', 59_999, 2), ('a', 60_000, 5)].to_stream(scope);
///     tumbling::<_, Sum>(readings, 60_000).capture()
/// });
/// let mut rows: Vec<_> = captured.extract().into_iter().flat_map(|(t, v)| v.into_iter().map(move |r| (t, r))).collect();
/// rows.sort();
/// assert_eq!(rows, vec![(60_000, ('a', 0, 3)), (120_000, ('a', 60_000, 5))]);
/// ```
pub fn tumbling<'scope, K, A>(
    stream: StreamVec<'scope, u64, (K, Millis, A::Input)>,
    window_ms: Millis,
) -> StreamVec<'scope, u64, (K, Millis, A::Output)>
where
    K: ExchangeData + Clone + Hash + Eq,
    A: WindowAggregate,
{
    assert!(
        window_ms > 0,
        "tumbling windows need a positive length, got {window_ms}"
    );
    let pact = Exchange::new(move |(key, ts, _): &(K, Millis, A::Input)| {
        route_hash(&(key, ts - ts % window_ms))
    });
    stream.unary_frontier(pact, NAME, move |_capability, info| {
        let worker = info.global_id;
        // Open windows by window end: a capability at the window end and one aggregate per key.
        let mut open: BTreeMap<Millis, (Capability<u64>, FxHashMap<K, A>)> = BTreeMap::new();
        move |(input, frontier), output| {
            input.for_each_stamp(|capability, batches| {
                for batch in batches {
                    for (key, ts, value) in batch.drain(..) {
                        let window_end = ts - ts % window_ms + window_ms;
                        let (_, aggregates) = open.entry(window_end).or_insert_with(|| {
                            (
                                capability.delayed(&window_end, output.output_index()),
                                FxHashMap::default(),
                            )
                        });
                        aggregates.entry(key).or_default().insert(value);
                    }
                }
            });
            while let Some(entry) = open.first_entry() {
                let window_end = *entry.key();
                // Complete when no record with ts <= window_end - 1 can still arrive.
                if frontier.less_equal(&(window_end - 1)) {
                    break;
                }
                let (capability, aggregates) = entry.remove();
                let window_start = window_end - window_ms;
                tracing::debug!(
                    operator = NAME,
                    worker,
                    window_end,
                    keys = aggregates.len(),
                    "window closed"
                );
                let mut session = output.session(&capability);
                for (key, aggregate) in aggregates {
                    if let Some(finished) = aggregate.finish() {
                        session.give((key, window_start, finished));
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

    #[derive(Default)]
    struct CountSum(u64, u64);
    impl WindowAggregate for CountSum {
        type Input = u64;
        type Output = (u64, u64);
        fn insert(&mut self, x: u64) {
            self.0 += 1;
            self.1 += x;
        }
        fn finish(self) -> Option<(u64, u64)> {
            Some((self.0, self.1))
        }
    }

    type Row = (u64, (u32, Millis, (u64, u64)));

    fn run(config: timely::Config, records: Vec<(u32, Millis, u64)>) -> Vec<Row> {
        let captured = crate::testing::run_captured(config, move |worker, send| {
            let (index, peers) = (worker.index(), worker.peers());
            let (mut handle, capability) = worker.dataflow::<u64, _, _>(|scope| {
                let (handle, stream) = scope.new_unordered_input::<(u32, Millis, u64)>();
                tumbling::<_, CountSum>(stream, 1_000).capture_into(send);
                handle
            });
            for record in records.iter().skip(index).step_by(peers) {
                handle
                    .activate()
                    .session(&capability.delayed(&(record.1 - record.1 % 500)))
                    .give(*record);
            }
        });
        crate::testing::timed_rows(captured)
    }

    #[test]
    fn matches_a_map_reference_at_any_worker_count() {
        for seed in 0..5u64 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let records: Vec<(u32, Millis, u64)> = (0..400)
                .map(|_| {
                    (
                        rng.random_range(0..5),
                        rng.random_range(0..10_000),
                        rng.random_range(0..100),
                    )
                })
                .collect();
            let mut expected: BTreeMap<(Millis, u32), (u64, u64)> = BTreeMap::new();
            for (key, ts, value) in &records {
                let slot = expected.entry((ts - ts % 1_000, *key)).or_default();
                slot.0 += 1;
                slot.1 += value;
            }
            let mut expected: Vec<Row> = expected
                .into_iter()
                .map(|((start, key), agg)| (start + 1_000, (key, start, agg)))
                .collect();
            expected.sort();
            for config in crate::testing::worker_configs() {
                assert_eq!(run(config, records.clone()), expected, "seed {seed}");
            }
        }
    }
}
