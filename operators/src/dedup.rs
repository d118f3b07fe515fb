//! `dedup`: exact duplicates count once (SPEC §1).
//!
//! Records are routed by a caller-supplied hash, so that duplicates meet on one worker, and kept
//! in a set per timely time. A record is passed on as soon as it arrives, unless its set already
//! holds it: nothing waits for the frontier, so dedup adds no latency. A set is dropped as soon
//! as the input frontier passes its time: a duplicate can only arrive at the same time as its
//! original (see the assumption below), so state never outlives the open times.
//!
//! Unchecked assumption: equal records carry equal timely times. This holds when the time is a
//! function of the record (here: its event time rounded down to the window grid).
//!
//! # Output
//! Each distinct record once, at its time, as soon as its first copy arrives.

use rustc_hash::{FxBuildHasher, FxHashSet};
use std::collections::BTreeMap;
use std::hash::Hash;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;
use timely::ExchangeData;

/// Operator name, for logs and timely's logging.
pub const NAME: &str = "Dedup";

/// Keeps one copy of each distinct record per timely time.
///
/// `route` must give equal records equal values (for instance a hash of a field that
/// duplicates share); records are exchanged by it.
///
/// # Examples
/// ```
/// use timely::dataflow::operators::{Capture, ToStream};
/// use timely::dataflow::operators::capture::Extract;
/// use tidewatch_operators::dedup::dedup;
///
/// let captured = timely::example(|scope| {
///     let stream = vec![3u64, 1, 3, 2, 1].to_stream(scope);
///     dedup(stream, |x: &u64| *x).capture()
/// });
/// let mut seen: Vec<u64> = captured.extract().into_iter().flat_map(|(_, v)| v).collect();
/// seen.sort();
/// assert_eq!(seen, vec![1, 2, 3]);
/// ```
pub fn dedup<'scope, D, F>(stream: StreamVec<'scope, u64, D>, route: F) -> StreamVec<'scope, u64, D>
where
    D: ExchangeData + Hash + Eq + Clone,
    F: Fn(&D) -> u64 + 'static,
{
    stream.unary_frontier(
        Exchange::new(move |record: &D| route(record)),
        NAME,
        |_capability, _info| {
            let mut open: BTreeMap<u64, FxHashSet<D>> = BTreeMap::new();
            move |(input, frontier), output| {
                input.for_each_stamp(|capability, batches| {
                    let Some(capability) = capability.retain_least(output.output_index()) else {
                        return;
                    };
                    let seen = open
                        .entry(*capability.time())
                        .or_insert_with(|| FxHashSet::with_hasher(FxBuildHasher));
                    let mut session = output.session(&capability);
                    for batch in batches {
                        for record in batch.drain(..) {
                            // One hash per record; the clone is needed for all but the rare
                            // duplicate anyway.
                            if seen.insert(record.clone()) {
                                session.give(record);
                            }
                        }
                    }
                });
                // A set whose time the frontier has passed can meet no more duplicates.
                while let Some(entry) = open.first_entry() {
                    if frontier.less_equal(entry.key()) {
                        break;
                    }
                    entry.remove();
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeSet;
    use timely::dataflow::operators::vec::UnorderedInput;
    use timely::dataflow::operators::Capture;

    /// Random records at random times, duplicated and shuffled, at 1, 2 and 3 workers and with
    /// serialization: the output is the set of distinct (time, record) pairs.
    #[test]
    fn matches_a_set_at_any_worker_count() {
        for seed in 0..4u64 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut records: Vec<(u64, u64)> = (0..500)
                .map(|_| {
                    let value = rng.random_range(0..50u64);
                    (value % 7, value) // time is a function of the record
                })
                .collect();
            let expected: BTreeSet<(u64, u64)> = records.iter().copied().collect();
            records.shuffle(&mut rng);
            for config in crate::testing::worker_configs() {
                let got = run(config, records.clone());
                assert_eq!(got, expected, "seed {seed}");
            }
        }
    }

    fn run(config: timely::Config, records: Vec<(u64, u64)>) -> BTreeSet<(u64, u64)> {
        let captured = crate::testing::run_captured(config, move |worker, send| {
            let index = worker.index();
            let peers = worker.peers();
            let ((mut handle, capability), ()) = worker.dataflow::<u64, _, _>(|scope| {
                let (input, stream) = scope.new_unordered_input::<u64>();
                dedup(stream, |x: &u64| *x).capture_into(send);
                (input, ())
            });
            for (i, (time, value)) in records.iter().enumerate() {
                if i % peers == index {
                    handle
                        .activate()
                        .session(&capability.delayed(time))
                        .give(*value);
                }
            }
            drop(capability);
        });
        captured
            .into_iter()
            .flat_map(|(t, v)| v.into_iter().map(move |x| (t, x)))
            .collect()
    }

    /// Latency: a record is passed on while its time is still open, before the frontier
    /// moves; a duplicate sent later at the same time is still held back.
    #[test]
    fn passes_first_copies_on_before_the_frontier_moves() {
        use std::sync::{Arc, Mutex};
        use timely::dataflow::operators::Inspect;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        timely::execute_directly(move |worker| {
            let sink = Arc::clone(&sink);
            let (mut input, capability) = worker.dataflow::<u64, _, _>(|scope| {
                let (input, stream) = scope.new_unordered_input::<u64>();
                dedup(stream, |x: &u64| *x).inspect(move |x| {
                    sink.lock().expect("lock").push(*x);
                });
                input
            });
            let at = capability.delayed(&7);
            input.activate().session(&at).give(1);
            for _ in 0..10 {
                worker.step();
            }
            assert_eq!(*seen.lock().expect("lock"), vec![1], "held back");
            input.activate().session(&at).give(1);
            input.activate().session(&at).give(2);
            for _ in 0..10 {
                worker.step();
            }
            assert_eq!(*seen.lock().expect("lock"), vec![1, 2]);
            drop((at, capability));
        });
    }
}
