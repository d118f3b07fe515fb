//! An order-statistic multiset of `f64` for sliding windows: insert and remove in
//! O(B + n/B) with small constants (B = [`MAX_BLOCK`]), the k-th smallest value in O(log n),
//! the median, the exact median absolute deviation (MAD) in a few O(1) probes (O(log² n) at
//! worst) and the mean absolute deviation from the median in O(n/B) amortised. The caller
//! keeps the arrival order (a `VecDeque`) and removes the value that leaves the window, as
//! [`super::robust::RobustZScore`] does.
//!
//! The values live in a blocked sorted list (square-root decomposition): a sequence of sorted
//! blocks of at most [`MAX_BLOCK`] values, each block's values all ≤ the next block's, with the
//! blocks' prefix counts and last values in two small arrays. An insert or removal finds its
//! block by binary search over the last values, shifts at most [`MAX_BLOCK`] values inside it
//! (one short `memmove`) and bumps the prefix counts after it (a few dozen integers for a
//! window of thousands). `select(k)` is a binary search over the prefix counts. A block that
//! outgrows [`MAX_BLOCK`] is split in halves; one that falls below a quarter of it is merged
//! into a neighbour (and split again if that overflows), so a window of `n` values has at most
//! `4n / MAX_BLOCK + 1` blocks whatever the order of arrivals (a trending series inserts at one
//! end and removes at the other).
//!
//! The MAD is the median of `|x − m|`, `m` the median, over the window sorted as
//! `a[0] ≤ … ≤ a[n−1]`. The deviations below the median, `m − a[i]` read downwards, and above
//! it, `a[j] − m` read upwards, are two sorted sequences, and the MAD is the middle of their
//! merge: the k-th element of two sorted arrays. Taking the `k` smallest deviations takes
//! `k` consecutive values `a[s..s + k]`, so the search is over one start `s`, the first where
//! sliding right stops paying: `a[s + k] − m ≥ m − a[s]`. It gallops from the previous call's
//! `s` (one insert and one removal move it by a step or two), and each probe's `select` first
//! tries the block where the previous probe on that side landed. So the MAD is exact at every
//! value, at about the cost of the median: no periodic refresh, no approximation.
//!
//! The mean absolute deviation sums `|x − m|` from per-block sums kept relative to the block's
//! own ends (`Σ(v − first)` and `Σ(last − v)`): a block below the median contributes
//! `len·(m − last) + Σ(last − v)`, one above `len·(first − m) + Σ(v − first)`, the block holding
//! the median is summed directly. Every term is non-negative, so nothing cancels, even for
//! values far from zero. The block sums are refreshed lazily, only for blocks changed since
//! the last call: a caller that never asks pays nothing.
//!
//! Measured (window 6,400, NAB machine temperature ×10, the robust detector's values per
//! second on one core of an idle 2-core EPYC): one sorted `Vec` with the MAD refreshed every 16
//! values (the previous detector, two `memmove`s of up to 50 KB per value) 0.5 M; these blocks
//! with a plain binary search for the MAD, each probe a binary search over the blocks, 1.5 M;
//! with the galloping search and the block hints 4.4 M. Blocks of at most 64 values gave
//! 4.1 M, 256 gave 4.5 M (but about 20% less than 128 on a loaded machine); 128 is kept.
//!
//! The search hints are `Cell`s, so a `SortedWindow` is `Send` but not `Sync` (the detectors
//! only need `Send`).
//!
//! Unchecked assumption: values are finite (NaN is refused by [`SortedWindow::insert`]).
//!
//! # Examples
//! ```
//! use tidewatch_operators::detect::sorted_window::SortedWindow;
//!
//! let mut window = SortedWindow::new();
//! for value in [5.0, 1.0, 4.0, 1.0, 3.0] {
//!     window.insert(value);
//! }
//! assert_eq!(window.select(0), Some(1.0));
//! assert_eq!(window.median(), Some(3.0));
//! // Deviations from 3: 2, 2, 1, 2, 0, so the MAD is 2; their mean is 7/5.
//! assert_eq!(window.mad(), Some(2.0));
//! assert_eq!(window.mean_absolute_deviation(), Some(1.4));
//! assert!(window.remove(1.0));
//! assert!(!window.remove(2.0));
//! assert_eq!(window.iter().collect::<Vec<_>>(), [1.0, 3.0, 4.0, 5.0]);
//! ```

use std::cell::Cell;

/// The largest block; a block that grows past it is split in halves.
pub const MAX_BLOCK: usize = 128;

/// A block that shrinks below this is merged into a neighbour.
const MIN_BLOCK: usize = MAX_BLOCK / 4;

/// A sorted run of values with lazily refreshed sums of deviations from its ends.
#[derive(Clone, Debug)]
struct Block {
    values: Vec<f64>,
    /// `Σ (v − first)` over the block, valid when `fresh`.
    above_first: f64,
    /// `Σ (last − v)` over the block, valid when `fresh`.
    below_last: f64,
    fresh: bool,
}

impl Block {
    fn new(values: &[f64]) -> Self {
        // One spare slot: an insert into a full block happens before its split.
        let mut stored = Vec::with_capacity(MAX_BLOCK + 1);
        stored.extend_from_slice(values);
        Block {
            values: stored,
            above_first: 0.0,
            below_last: 0.0,
            fresh: false,
        }
    }

    fn refresh(&mut self) {
        if self.fresh {
            return;
        }
        let (Some(&first), Some(&last)) = (self.values.first(), self.values.last()) else {
            return;
        };
        let (mut above, mut below) = (0.0, 0.0);
        for v in &self.values {
            above += v - first;
            below += last - v;
        }
        self.above_first = above;
        self.below_last = below;
        self.fresh = true;
    }
}

/// An order-statistic multiset of `f64`; see the module documentation.
#[derive(Clone, Debug, Default)]
pub struct SortedWindow {
    /// Non-empty sorted blocks, in order; empty exactly when the multiset is.
    blocks: Vec<Block>,
    /// `starts[b]`: the number of values in the blocks before `b`.
    starts: Vec<usize>,
    /// `lasts[b]`: the last (largest) value of block `b`, contiguous for the binary search.
    lasts: Vec<f64>,
    len: usize,
    /// Where the last [`SortedWindow::mad`] found the values nearest the median: the next
    /// search starts there (a hint only; any value gives the same answer).
    mad_start: Cell<usize>,
    /// Blocks where the median, the lower and the upper end of the MAD search last found their
    /// ranks (hints for [`SortedWindow::select_near`]).
    fingers: [Cell<usize>; 3],
}

impl SortedWindow {
    /// An empty multiset.
    pub fn new() -> Self {
        SortedWindow::default()
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The values in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        self.blocks.iter().flat_map(|b| b.values.iter().copied())
    }

    /// The first block whose last value is at least `value`, or `blocks.len()`.
    fn block_for(&self, value: f64) -> usize {
        self.lasts.partition_point(|last| *last < value)
    }

    /// Adds `value`; returns `false` (and adds nothing) for NaN, which has no place in the
    /// order.
    pub fn insert(&mut self, value: f64) -> bool {
        if value.is_nan() {
            return false;
        }
        if self.blocks.is_empty() {
            self.blocks.push(Block::new(&[value]));
            self.starts.push(0);
            self.lasts.push(value);
            self.len = 1;
            return true;
        }
        // Past every block's end: append to the last block.
        let b = self.block_for(value).min(self.blocks.len() - 1);
        let block = &mut self.blocks[b];
        let at = block.values.partition_point(|v| *v < value);
        block.values.insert(at, value);
        block.fresh = false;
        self.len += 1;
        if value > self.lasts[b] {
            self.lasts[b] = value;
        }
        if block.values.len() > MAX_BLOCK {
            self.split(b);
        } else {
            for start in &mut self.starts[b + 1..] {
                *start += 1;
            }
        }
        true
    }

    /// Removes one copy of `value`; returns whether there was one.
    pub fn remove(&mut self, value: f64) -> bool {
        let b = self.block_for(value);
        let Some(block) = self.blocks.get_mut(b) else {
            return false;
        };
        // The block's last value is ≥ `value`, so `at` is in range; it holds `value` when the
        // multiset does (earlier blocks end below it).
        let at = block.values.partition_point(|v| *v < value);
        if block.values.get(at) != Some(&value) {
            return false;
        }
        block.values.remove(at);
        block.fresh = false;
        self.len -= 1;
        match block.values.last() {
            Some(last) => self.lasts[b] = *last,
            None => {
                // The only block, now empty: the multiset is.
                self.blocks.clear();
                self.starts.clear();
                self.lasts.clear();
                return true;
            }
        }
        if block.values.len() < MIN_BLOCK && self.blocks.len() > 1 {
            self.merge(b);
        } else {
            for start in &mut self.starts[b + 1..] {
                *start -= 1;
            }
        }
        true
    }

    /// Splits block `b` in halves.
    fn split(&mut self, b: usize) {
        let values = &mut self.blocks[b].values;
        let half = values.len() / 2;
        let upper = Block::new(&values[half..]);
        values.truncate(half);
        self.blocks[b].fresh = false;
        self.blocks.insert(b + 1, upper);
        self.rebuild_starts();
    }

    /// Merges the small block `b` into its smaller neighbour, splitting the result if it
    /// overflows.
    fn merge(&mut self, b: usize) {
        let left = if b == 0 {
            0
        } else if b + 1 == self.blocks.len()
            || self.blocks[b - 1].values.len() <= self.blocks[b + 1].values.len()
        {
            b - 1
        } else {
            b
        };
        let right = self.blocks.remove(left + 1);
        let merged = &mut self.blocks[left];
        merged.values.extend_from_slice(&right.values);
        merged.fresh = false;
        if merged.values.len() > MAX_BLOCK {
            self.split(left);
        } else {
            self.rebuild_starts();
        }
    }

    /// Recomputes the prefix counts and last values after a split or merge.
    fn rebuild_starts(&mut self) {
        self.starts.clear();
        self.lasts.clear();
        let mut start = 0;
        for block in &self.blocks {
            self.starts.push(start);
            start += block.values.len();
            self.lasts
                .push(block.values.last().copied().unwrap_or(f64::NAN));
        }
    }

    /// The `k`-th smallest value (from 0), `None` when `k >= len`.
    pub fn select(&self, k: usize) -> Option<f64> {
        if k >= self.len {
            return None;
        }
        // The last block starting at or before k (starts[0] = 0).
        let b = self.starts.partition_point(|start| *start <= k) - 1;
        self.blocks[b].values.get(k - self.starts[b]).copied()
    }

    /// [`SortedWindow::select`] for `k < len`, trying block `finger` first and leaving there
    /// the block that held `k`: the median and MAD searches probe ranks close to one another
    /// (and to the previous call's), so most probes skip the binary search over the blocks.
    fn select_near(&self, k: usize, finger: &Cell<usize>) -> f64 {
        let b = finger.get();
        if let (Some(start), Some(block)) = (self.starts.get(b), self.blocks.get(b)) {
            if let Some(value) = k.checked_sub(*start).and_then(|i| block.values.get(i)) {
                return *value;
            }
        }
        let b = self
            .starts
            .partition_point(|start| *start <= k)
            .saturating_sub(1);
        finger.set(b);
        self.starts
            .get(b)
            .and_then(|start| self.blocks[b].values.get(k.checked_sub(*start)?))
            .copied()
            .unwrap_or(f64::NAN)
    }

    /// The median: the middle value, or the midpoint of the two middle values; `None` when
    /// empty.
    pub fn median(&self) -> Option<f64> {
        let n = self.len;
        if n == 0 {
            return None;
        }
        let finger = &self.fingers[0];
        let upper = self.select_near(n / 2, finger);
        if n % 2 == 1 {
            Some(upper)
        } else {
            Some(f64::midpoint(self.select_near(n / 2 - 1, finger), upper))
        }
    }

    /// The median absolute deviation from the median (unscaled), `None` when empty.
    pub fn mad(&self) -> Option<f64> {
        self.median_and_mad().map(|(_, mad)| mad)
    }

    /// The median and the MAD (unscaled), `None` when empty: [`SortedWindow::median`] and
    /// [`SortedWindow::mad`] in one search.
    pub fn median_and_mad(&self) -> Option<(f64, f64)> {
        let n = self.len;
        let m = self.median()?;
        // The `need` values nearest the median are `need` consecutive ones, a[s..s + need], and
        // the MAD is the largest of their deviations (odd n), or its midpoint with the next
        // one (even n). The window slides right while that swaps a far lower value for a
        // nearer upper one: s is the first start where a[s + need] − m ≥ m − a[s].
        let need = n / 2 + n % 2;
        let last_start = n - need;
        let lower = |k: usize| self.select_near(k, &self.fingers[1]);
        let upper = |k: usize| self.select_near(k, &self.fingers[2]);
        let settled = |s: usize| s == last_start || upper(s + need) - m >= m - lower(s);
        let s = self.first_settled(last_start, settled);
        self.mad_start.set(s);
        let kth = (m - lower(s)).max(upper(s + need - 1) - m);
        if n % 2 == 1 {
            return Some((m, kth));
        }
        // Even n: the midpoint with the next deviation, the nearer of the two neighbours.
        let next_lower = if s > 0 {
            m - lower(s - 1)
        } else {
            f64::INFINITY
        };
        let next_upper = if s < last_start {
            upper(s + need) - m
        } else {
            f64::INFINITY
        };
        Some((m, f64::midpoint(kth, next_lower.min(next_upper))))
    }

    /// The first `s` in `0..=last` where the monotone `settled` holds (it holds at `last`), by
    /// a galloping search from the previous call's answer: one insert and one removal move it
    /// by a step or two, so a window pays a few probes rather than a full binary search.
    fn first_settled(&self, last: usize, settled: impl Fn(usize) -> bool) -> usize {
        let hint = self.mad_start.get().min(last);
        // Bracket the answer in lo..=hi, with settled(hi) and lo = 0 or not settled(lo − 1).
        let (mut lo, mut hi);
        let mut step = 1;
        if settled(hint) {
            hi = hint;
            loop {
                if hi == 0 {
                    lo = 0;
                    break;
                }
                let probe = hi.saturating_sub(step);
                if !settled(probe) {
                    lo = probe + 1;
                    break;
                }
                hi = probe;
                step *= 2;
            }
        } else {
            let mut failed = hint;
            loop {
                // settled(last) holds, so this ends.
                let probe = (failed + step).min(last);
                if settled(probe) {
                    lo = failed + 1;
                    hi = probe;
                    break;
                }
                failed = probe;
                step *= 2;
            }
        }
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if settled(mid) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        hi
    }

    /// The mean of `|x − median|`, `None` when empty. Takes `&mut self` to refresh the sums of
    /// the blocks changed since the last call (see the module documentation).
    pub fn mean_absolute_deviation(&mut self) -> Option<f64> {
        let m = self.median()?;
        let mid = self.len / 2;
        let mut sum = 0.0;
        for (block, start) in self.blocks.iter_mut().zip(&self.starts) {
            let (Some(&first), Some(&last)) = (block.values.first(), block.values.last()) else {
                continue;
            };
            let len = block.values.len();
            if start + len <= mid {
                block.refresh();
                sum += len as f64 * (m - last) + block.below_last;
            } else if *start >= mid {
                block.refresh();
                sum += len as f64 * (first - m) + block.above_first;
            } else {
                sum += block.values.iter().map(|v| (v - m).abs()).sum::<f64>();
            }
        }
        Some(sum / self.len as f64)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The median of a sorted slice, as the multiset defines it.
    pub(crate) fn median_of(sorted: &[f64]) -> f64 {
        let n = sorted.len();
        if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        }
    }

    /// Checks every query against a sorted `Vec`; the mean absolute deviation within rounding.
    fn check(window: &mut SortedWindow, naive: &[f64], context: &str) {
        assert_eq!(window.len(), naive.len(), "{context}");
        assert!(window.iter().eq(naive.iter().copied()), "{context}");
        for (k, want) in naive.iter().enumerate() {
            assert_eq!(window.select(k), Some(*want), "{context}: select({k})");
        }
        assert_eq!(window.select(naive.len()), None, "{context}");
        // The block invariants: bounded sizes, so the cost bounds hold.
        let blocks = window.blocks.len();
        assert!(
            blocks <= 4 * naive.len() / MAX_BLOCK + 1,
            "{context}: {blocks} blocks"
        );
        assert!(window.blocks.iter().all(|b| b.values.len() <= MAX_BLOCK));
        if naive.is_empty() {
            assert_eq!(window.median(), None);
            assert_eq!(window.mad(), None);
            assert_eq!(window.mean_absolute_deviation(), None);
            return;
        }
        let median = median_of(naive);
        assert_eq!(window.median(), Some(median), "{context}");
        let mut deviations: Vec<f64> = naive.iter().map(|v| (v - median).abs()).collect();
        deviations.sort_by(f64::total_cmp);
        assert_eq!(window.mad(), Some(median_of(&deviations)), "{context}: MAD");
        let mean_ad = deviations.iter().sum::<f64>() / naive.len() as f64;
        let got = window.mean_absolute_deviation().unwrap_or(f64::NAN);
        let scale = naive.iter().map(|v| v.abs()).fold(0.0, f64::max);
        assert!(
            (got - mean_ad).abs() <= 1e-12 * scale.max(1.0),
            "{context}: mean AD {got} vs {mean_ad}"
        );
    }

    /// A value from a small set (ties), a plateau value, or a wide one, some negative.
    fn draw(rng: &mut ChaCha8Rng) -> f64 {
        match rng.random_range(0..10u32) {
            0..=3 => f64::from(rng.random_range(-5..5i32)),
            4..=5 => 7.0,
            _ => rng.random_range(-1e3..1e3),
        }
    }

    /// Sliding windows of 1..=300 values (and one of 5,000), values with ties, plateaus and
    /// negatives: every select, the median, the MAD (exactly) and the mean absolute deviation
    /// (to rounding) match a sorted `Vec` after every insert and removal.
    #[test]
    fn matches_a_sorted_vec_over_sliding_windows() {
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        let mut windows: Vec<usize> = (1..=300).collect();
        windows.push(5_000);
        for window in windows {
            let steps = if window > 300 {
                12_000
            } else {
                3 * window + 40
            };
            let mut sorted = SortedWindow::new();
            let mut naive: Vec<f64> = Vec::new();
            let mut arrivals = std::collections::VecDeque::new();
            // Large windows are checked every few steps (each check is O(n log n)).
            let every = if window > 300 { 97 } else { 1 };
            for step in 0..steps {
                let value = draw(&mut rng);
                assert!(sorted.insert(value));
                let at = naive.partition_point(|v| *v < value);
                naive.insert(at, value);
                arrivals.push_back(value);
                if arrivals.len() > window {
                    let old = arrivals.pop_front().unwrap();
                    assert!(sorted.remove(old));
                    let at = naive.partition_point(|v| *v < old);
                    naive.remove(at);
                }
                if step % every == 0 {
                    check(&mut sorted, &naive, &format!("window {window} step {step}"));
                }
            }
        }
    }

    /// Random inserts and removals, not in arrival order: removals of present and absent
    /// values, the multiset growing and shrinking to empty, runs of one value (plateaus), and
    /// monotone runs that insert at one end and remove at the other.
    #[test]
    fn matches_a_sorted_vec_under_random_inserts_and_removals() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut sorted = SortedWindow::new();
        let mut naive: Vec<f64> = Vec::new();
        for round in 0..40 {
            let target = [0, 1, 2, 50, 129, 600, 2_000][round % 7];
            let mut trend = 0.0;
            for step in 0..1_500 {
                let grow = naive.len() < target || (naive.len() == target && rng.random());
                if grow {
                    let value = match round % 4 {
                        0 => draw(&mut rng),
                        1 => -3.5, // a plateau
                        2 => {
                            trend += 1.0;
                            trend
                        }
                        _ => {
                            trend -= 0.5;
                            trend
                        }
                    };
                    sorted.insert(value);
                    let at = naive.partition_point(|v| *v < value);
                    naive.insert(at, value);
                } else if rng.random_range(0..4u32) == 0 || naive.is_empty() {
                    // Absent (or maybe present) values: both must agree.
                    let value = draw(&mut rng) + 0.25;
                    let at = naive.partition_point(|v| *v < value);
                    let present = naive.get(at) == Some(&value);
                    if present {
                        naive.remove(at);
                    }
                    assert_eq!(sorted.remove(value), present);
                } else {
                    // In trending rounds remove the oldest end, else a random value.
                    let at = match round % 4 {
                        2 => 0,
                        3 => naive.len() - 1,
                        _ => rng.random_range(0..naive.len()),
                    };
                    let value = naive.remove(at);
                    assert!(sorted.remove(value));
                }
                if step % 7 == 0 || naive.len() < 3 {
                    check(&mut sorted, &naive, &format!("round {round} step {step}"));
                }
            }
        }
    }

    /// NaN is refused; infinities take their place in the order.
    #[test]
    fn nan_is_refused() {
        let mut window = SortedWindow::new();
        assert!(!window.insert(f64::NAN));
        assert!(window.is_empty());
        assert!(window.insert(f64::INFINITY));
        assert!(window.insert(-1.0));
        assert_eq!(window.select(1), Some(f64::INFINITY));
        assert!(!window.remove(f64::NAN));
        assert_eq!(window.len(), 2);
    }

    /// Far from zero (values near 1e12 with deviations of about 1), the mean absolute deviation
    /// keeps its precision: the block sums are relative to the blocks' own ends.
    #[test]
    fn mean_absolute_deviation_is_precise_far_from_zero() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut window = SortedWindow::new();
        let mut values = Vec::new();
        for _ in 0..3_000 {
            let value = 1e12 + f64::from(rng.random_range(-100..100i32)) / 64.0;
            window.insert(value);
            values.push(value);
        }
        values.sort_by(f64::total_cmp);
        let median = median_of(&values);
        let want = values.iter().map(|v| (v - median).abs()).sum::<f64>() / 3_000.0;
        let got = window.mean_absolute_deviation().unwrap_or(f64::NAN);
        assert!((got - want).abs() <= 1e-9 * want, "{got} vs {want}");
    }
}
