//! `interval_join`: joins each right record with every left record of the same key whose event
//! time lies at most `upper_ms` before it (`left.ts <= right.ts <= left.ts + upper_ms`).
//!
//! LOGI-1 uses it for delivery durations: left = orders, right = `delivered` deliveries, keyed by
//! `order_id`, `upper_ms` = 7 days.
//!
//! # Circuit
//! ```text
//! left  (K, ts, L) --exchange(K)--\
//!                                  +--> IntervalJoin --> O at the right record's time
//! right (K, ts, R) --exchange(K)--/
//! ```
//!
//! Left records enter the state as they arrive. Right records are stashed by timely time and
//! look up the state once both frontiers have passed their time: by then every left record
//! with `ts <= right.ts` has arrived (timely times are a monotone function of event times), and
//! lefts that arrived early are told apart by their `ts`. Only the rights wait, so little work is
//! left for the moment a time completes. A left record may leave the state once both frontiers have passed `left.ts + upper_ms`
//! (every right record that could match it has been processed); the state is swept for such
//! records each time that horizon has advanced by `upper_ms / 64`, so it holds the left records
//! of about the last `upper_ms + upper_ms / 64` of event time. Expired records are simply
//! dropped: the output is a stream of final matches, never retracted.
//!
//! Latency: the state is split into [`SHARDS`] hash maps by key hash, and a sweep visits at
//! most [`SHARDS_PER_ACTIVATION`] of them per activation. A map that grows rehashes only its
//! share and a sweep never walks the whole state at once, so neither stalls the operator (one
//! map of a million orders takes tens of milliseconds to double or to sweep). A record that
//! waits a little longer to be swept cannot match anything: matching checks the interval.
//!
//! Unchecked assumption: every record's timely time is a monotone non-decreasing function of its
//! event time, the same function on both inputs, and never exceeds the event time (the event
//! time itself, or the event time rounded down to a grid).
//!
//! # Output
//! `result(key, (left.ts, &left), (right.ts, &right))` for each matching pair, at the right
//! record's timely time, once that time is complete on both inputs.

use rustc_hash::{FxHashMap, FxHasher};
use smallvec::SmallVec;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;
use timely::ExchangeData;

use crate::event::Millis;

/// Operator name, for logs and timely's logging.
pub const NAME: &str = "IntervalJoin";

/// A stable (process-independent) hash, used to route records by key.
pub fn route_hash<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut hasher = FxHasher::default();
    key.hash(&mut hasher);
    hasher.finish()
}

/// Number of hash maps the left state is split into.
pub const SHARDS: usize = 256;

/// Most shards a sweep visits per activation of the operator.
pub const SHARDS_PER_ACTIVATION: usize = 16;

/// The left records of one key, with their event times; most keys have one, kept inline.
type Candidates<L> = SmallVec<[(Millis, L); 1]>;

/// Left records by key, split into [`SHARDS`] maps by key hash.
struct LeftState<K, L> {
    shards: Vec<FxHashMap<K, Candidates<L>>>,
    /// A sweep under way: the horizon it drops records below, and the next shard to visit.
    sweep: Option<(u64, usize)>,
}

impl<K: Hash + Eq, L> LeftState<K, L> {
    fn new() -> Self {
        LeftState {
            shards: (0..SHARDS).map(|_| FxHashMap::default()).collect(),
            sweep: None,
        }
    }

    /// The shard of `key`. Bits 40..48 of the hash: hashbrown picks buckets with the low bits
    /// and tags with the top 7, so these stay independent of both.
    fn shard(&self, key: &K) -> usize {
        (route_hash(key) >> 40) as usize % SHARDS
    }

    fn insert(&mut self, key: K, ts: Millis, payload: L) {
        let shard = self.shard(&key);
        self.shards[shard]
            .entry(key)
            .or_default()
            .push((ts, payload));
    }

    fn get(&self, key: &K) -> Option<&Candidates<L>> {
        self.shards[self.shard(key)].get(key)
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.len()).sum()
    }

    fn clear(&mut self) {
        self.shards.iter_mut().for_each(|shard| shard.clear());
        self.sweep = None;
    }

    /// Starts a sweep that drops records with `ts + upper_ms < horizon` (a sweep under way
    /// continues with the newer horizon).
    fn start_sweep(&mut self, horizon: u64) {
        let next = self.sweep.map_or(0, |(_, next)| next);
        self.sweep = Some((horizon, next));
    }

    /// Sweeps up to [`SHARDS_PER_ACTIVATION`] shards; returns true when the sweep is complete.
    fn continue_sweep(&mut self, upper_ms: Millis) -> bool {
        let Some((horizon, next)) = self.sweep else {
            return false;
        };
        let end = (next + SHARDS_PER_ACTIVATION).min(SHARDS);
        for shard in &mut self.shards[next..end] {
            shard.retain(|_, candidates| {
                candidates.retain(|(ts, _)| horizon <= ts.saturating_add(upper_ms));
                !candidates.is_empty()
            });
        }
        if end == SHARDS {
            self.sweep = None;
            true
        } else {
            self.sweep = Some((horizon, end));
            false
        }
    }
}

/// Right records waiting for their time to complete.
struct Pending<K, R> {
    capability: Capability<u64>,
    rights: Vec<(K, Millis, R)>,
}

impl<K, R> Pending<K, R> {
    /// The records waiting at `capability`'s time (created empty if there are none yet).
    fn at(
        pending: &mut BTreeMap<u64, Self>,
        capability: Option<Capability<u64>>,
    ) -> Option<&mut Self> {
        let capability = capability?;
        Some(
            pending
                .entry(*capability.time())
                .or_insert_with(|| Pending {
                    capability,
                    rights: Vec::new(),
                }),
        )
    }
}

/// Joins `right` records to the `left` records of the same key at most `upper_ms` earlier.
///
/// # Arguments
/// * `left`, `right`: `(key, event time, payload)` records.
/// * `upper_ms`: largest accepted `right.ts - left.ts`; pairs with `right.ts < left.ts` never match.
/// * `result`: builds an output record from the key and the two sides.
///
/// # Examples
/// ```
/// use timely::dataflow::operators::{Capture, ToStream};
/// use timely::dataflow::operators::capture::Extract;
/// use tidewatch_operators::interval_join::interval_join;
///
/// let captured = timely::example(|scope| {
///     let orders = vec![("o-1".to_string(), 1_000u64, "wh-1".to_string())].to_stream(scope);
///     let delivered = vec![
///         ("o-1".to_string(), 4_000u64, ()),  // 3 s after the order: joins
///         ("o-1".to_string(), 20_000u64, ()), // more than 10 s after: does not
///     ].to_stream(scope);
///     interval_join(orders, delivered, 10_000, |_id, (order_ts, wh), (delivery_ts, _)| {
///         (wh.to_string(), delivery_ts - order_ts)
///     })
///     .capture()
/// });
/// let pairs: Vec<_> = captured.extract().into_iter().flat_map(|(_, v)| v).collect();
/// assert_eq!(pairs, vec![("wh-1".to_string(), 3_000)]);
/// ```
pub fn interval_join<'scope, K, L, R, O, F>(
    left: StreamVec<'scope, u64, (K, Millis, L)>,
    right: StreamVec<'scope, u64, (K, Millis, R)>,
    upper_ms: Millis,
    mut result: F,
) -> StreamVec<'scope, u64, O>
where
    K: ExchangeData + Clone + Hash + Eq,
    L: ExchangeData,
    R: ExchangeData,
    O: 'static,
    F: FnMut(&K, (Millis, &L), (Millis, &R)) -> O + 'static,
{
    let left_pact = Exchange::new(|(key, _, _): &(K, Millis, L)| route_hash(key));
    let right_pact = Exchange::new(|(key, _, _): &(K, Millis, R)| route_hash(key));
    left.binary_frontier(right, left_pact, right_pact, NAME, |_capability, info| {
        let operator_id = info.global_id;
        let mut pending: BTreeMap<u64, Pending<K, R>> = BTreeMap::new();
        // Most keys have one left record: it is kept inline, without a heap allocation.
        let mut state: LeftState<K, L> = LeftState::new();
        // Expired lefts are swept out whenever the horizon has moved on by a 64th of the
        // interval: no per-record expiry index, and a left outlives its last possible match
        // by at most `upper_ms / 64` of event time.
        let sweep_every = (upper_ms / 64).max(1);
        let mut last_sweep: u64 = 0;
        move |(left_input, left_frontier), (right_input, right_frontier), output| {
            let port = output.output_index();
            left_input.for_each_stamp(|_capability, batches| {
                for batch in batches {
                    for (key, ts, payload) in batch.drain(..) {
                        state.insert(key, ts, payload);
                    }
                }
            });
            right_input.for_each_stamp(|capability, batches| {
                if let Some(slot) = Pending::at(&mut pending, capability.retain_least(port)) {
                    batches.for_each(|batch| slot.rights.append(batch));
                }
            });

            // Rights of complete times look up the state, in time order.
            while let Some(entry) = pending.first_entry() {
                let time = *entry.key();
                if left_frontier.less_equal(&time) || right_frontier.less_equal(&time) {
                    break;
                }
                let Pending { capability, rights } = entry.remove();
                if rights.is_empty() {
                    continue;
                }
                let mut session = output.session(&capability);
                for (key, right_ts, payload) in rights {
                    if let Some(candidates) = state.get(&key) {
                        for (left_ts, left_payload) in candidates {
                            if *left_ts <= right_ts && right_ts - *left_ts <= upper_ms {
                                session.give(result(
                                    &key,
                                    (*left_ts, left_payload),
                                    (right_ts, &payload),
                                ));
                            }
                        }
                    }
                }
            }

            // Drop lefts that no future right can match. A right is only processed once both
            // frontiers have passed its time, so the horizon is the lesser of the two frontiers:
            // every right below it has been processed (`None`: both inputs have ended).
            let horizon = match (
                left_frontier.frontier().first(),
                right_frontier.frontier().first(),
            ) {
                (Some(left), Some(right)) => Some(*left.min(right)),
                (Some(time), None) | (None, Some(time)) => Some(*time),
                (None, None) => None,
            };
            match horizon {
                None => state.clear(),
                Some(frontier) if frontier >= last_sweep.saturating_add(sweep_every) => {
                    last_sweep = frontier;
                    state.start_sweep(frontier);
                }
                Some(_) => {}
            }
            if state.continue_sweep(upper_ms) {
                tracing::debug!(
                    operator = NAME,
                    operator_id,
                    horizon = last_sweep,
                    keys_after = state.len(),
                    "swept expired state"
                );
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

    type Record = (u64, Millis, u32);

    /// Nested-loop reference: every (left, right) pair of a key with `0 <= r.ts - l.ts <= upper`.
    fn reference(
        lefts: &[Record],
        rights: &[Record],
        upper: Millis,
    ) -> BTreeMap<(u32, u32, Millis), isize> {
        let mut out = BTreeMap::new();
        for (lk, lts, lp) in lefts {
            for (rk, rts, rp) in rights {
                if lk == rk && lts <= rts && rts - lts <= upper {
                    *out.entry((*lp, *rp, rts - lts)).or_insert(0) += 1;
                }
            }
        }
        out
    }

    fn run(
        config: timely::Config,
        lefts: Vec<Record>,
        rights: Vec<Record>,
        upper: Millis,
        grid: u64,
    ) -> BTreeMap<(u32, u32, Millis), isize> {
        let captured = crate::testing::run_captured(config, move |worker, send| {
            let (index, peers) = (worker.index(), worker.peers());
            let ((mut left_in, left_cap), (mut right_in, right_cap)) = worker
                .dataflow::<u64, _, _>(|scope| {
                    let (left_handle, left) = scope.new_unordered_input::<Record>();
                    let (right_handle, right) = scope.new_unordered_input::<Record>();
                    interval_join(left, right, upper, |_k, (lts, lp), (rts, rp)| {
                        (*lp, *rp, rts - lts)
                    })
                    .capture_into(send);
                    (left_handle, right_handle)
                });
            for (i, record) in lefts.iter().enumerate().filter(|(i, _)| i % peers == index) {
                let _ = i;
                left_in
                    .activate()
                    .session(&left_cap.delayed(&(record.1 - record.1 % grid)))
                    .give(*record);
            }
            for (i, record) in rights
                .iter()
                .enumerate()
                .filter(|(i, _)| i % peers == index)
            {
                let _ = i;
                right_in
                    .activate()
                    .session(&right_cap.delayed(&(record.1 - record.1 % grid)))
                    .give(*record);
            }
        });
        let mut out = BTreeMap::new();
        for (_, batch) in captured {
            for pair in batch {
                *out.entry(pair).or_insert(0) += 1;
            }
        }
        out
    }

    /// Regression: with the left frontier behind, rights wait; the lefts they match must not be
    /// expired by the right frontier alone.
    #[test]
    fn lagging_left_frontier_keeps_matching_lefts() {
        let captured =
            crate::testing::run_captured(timely::Config::thread(), move |worker, send| {
                let ((mut left_in, left_cap), (mut right_in, right_cap)) = worker
                    .dataflow::<u64, _, _>(|scope| {
                        let (left_handle, left) = scope.new_unordered_input::<Record>();
                        let (right_handle, right) = scope.new_unordered_input::<Record>();
                        interval_join(left, right, 100, |_k, (lts, lp), (rts, rp)| {
                            (*lp, *rp, rts - lts)
                        })
                        .capture_into(send);
                        (left_handle, right_handle)
                    });
                left_in.activate().session(&left_cap).give((7, 0, 1));
                right_in
                    .activate()
                    .session(&right_cap.delayed(&100))
                    .give((7, 100, 2));
                let mut left_cap = left_cap;
                left_cap.downgrade(&1);
                drop(right_cap);
                for _ in 0..20 {
                    worker.step();
                }
                drop(left_cap);
            });
        let pairs: Vec<_> = captured.into_iter().flat_map(|(_, v)| v).collect();
        assert_eq!(pairs, vec![(1, 2, 100)]);
    }

    #[test]
    fn matches_nested_loop_reference() {
        for seed in 0..6u64 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let upper = 1_000;
            let lefts: Vec<Record> = (0..300)
                .map(|i| (rng.random_range(0..40), rng.random_range(0..5_000), i))
                .collect();
            let mut rights: Vec<Record> = (0..300)
                .map(|i| {
                    (
                        rng.random_range(0..40),
                        rng.random_range(0..6_000),
                        1_000 + i,
                    )
                })
                .collect();
            // Boundary cases: exactly `upper` after (joins) and one past (does not).
            rights.push((lefts[0].0, lefts[0].1 + upper, 9_000));
            rights.push((lefts[1].0, lefts[1].1 + upper + 1, 9_001));
            rights.push((lefts[2].0, lefts[2].1, 9_002));
            let expected = reference(&lefts, &rights, upper);
            assert!(expected.len() > 50, "the test needs matches");
            for (config, grid) in [
                (timely::Config::thread(), 1),
                (timely::Config::process(2), 100),
                (
                    timely::Config {
                        communication: timely::CommunicationConfig::ProcessBinary(3),
                        worker: timely::WorkerConfig::default(),
                    },
                    7,
                ),
            ] {
                assert_eq!(
                    run(config, lefts.clone(), rights.clone(), upper, grid),
                    expected,
                    "seed {seed} grid {grid}"
                );
            }
        }
    }
}
