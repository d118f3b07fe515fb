//! Latency histograms (HDR, microseconds) and their percentile report.
//!
//! # Examples
//! ```
//! use std::time::Duration;
//! use tidewatch_benchmarks::latency::Latencies;
//!
//! let mut latencies = Latencies::new();
//! for ms in 1..=100 {
//!     latencies.record(Duration::from_millis(ms));
//! }
//! let report = latencies.report();
//! assert_eq!(report.count, 100);
//! assert!((49_900..=50_100).contains(&report.p50_us));
//! assert!((99_900..=100_100).contains(&report.max_us));
//! ```

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The largest latency recorded exactly: 10 minutes. Larger ones are recorded as this.
pub const MAX_TRACKED: Duration = Duration::from_secs(600);

/// A histogram of latencies, 1 µs to [`MAX_TRACKED`], 3 significant digits.
#[derive(Clone, Debug)]
pub struct Latencies {
    histogram: Histogram<u64>,
    /// Latencies above [`MAX_TRACKED`] (recorded as it).
    saturated: u64,
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    /// An empty histogram.
    pub fn new() -> Self {
        // The bounds are constants that hdrhistogram accepts (low >= 1, high >= 2 * low,
        // sigfig <= 5); a failure here would be a programming error caught by every test.
        let histogram = Histogram::new_with_bounds(1, MAX_TRACKED.as_micros() as u64, 3)
            .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid"));
        Latencies {
            histogram,
            saturated: 0,
        }
    }

    /// Records one latency (rounded down to whole microseconds; 0 counts as 1 µs).
    pub fn record(&mut self, latency: Duration) {
        let micros = latency.as_micros().min(u64::MAX as u128) as u64;
        if latency > MAX_TRACKED {
            self.saturated += 1;
        }
        self.histogram.saturating_record(micros.max(1));
    }

    /// Adds every latency of `other`.
    pub fn merge(&mut self, other: &Latencies) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.histogram.add(&other.histogram);
        self.saturated += other.saturated;
    }

    /// Latencies recorded.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// Latencies above [`MAX_TRACKED`], counted as it.
    pub fn saturated(&self) -> u64 {
        self.saturated
    }

    /// The underlying histogram (for interval logs).
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.histogram
    }

    /// Percentiles of what was recorded (all zero when nothing was).
    pub fn report(&self) -> Report {
        let h = &self.histogram;
        let at = |q: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(q)
            }
        };
        Report {
            p50_us: at(0.50),
            p90_us: at(0.90),
            p99_us: at(0.99),
            p999_us: at(0.999),
            p9999_us: at(0.9999),
            max_us: if h.is_empty() { 0 } else { h.max() },
            count: h.len(),
        }
    }
}

/// Percentiles of a latency histogram, in microseconds, as the JSON report has them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// 99.99th percentile.
    pub p9999_us: u64,
    /// Largest latency.
    pub max_us: u64,
    /// Latencies recorded.
    pub count: u64,
}

impl Report {
    /// One line for humans: `p50 0.21 ms  p90 …  max …  (n)`.
    pub fn line(&self) -> String {
        let ms = |us: u64| us as f64 / 1_000.0;
        format!(
            "p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  p99.99 {:.3} ms  max {:.3} ms  ({} samples)",
            ms(self.p50_us),
            ms(self.p90_us),
            ms(self.p99_us),
            ms(self.p999_us),
            ms(self.p9999_us),
            ms(self.max_us),
            self.count
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a sorted-vector reference: percentiles agree within the histogram's 3
    /// significant digits (0.1 %), on a skewed distribution.
    #[test]
    fn percentiles_match_a_sorted_reference() {
        let mut latencies = Latencies::new();
        let mut values: Vec<u64> = Vec::new();
        let mut x: u64 = 12_345;
        for _ in 0..100_000 {
            // xorshift: deterministic, skewed toward small values by squaring.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x % 10_000) as f64 / 10_000.0;
            let micros = 1 + (u * u * 50_000.0) as u64;
            values.push(micros);
            latencies.record(Duration::from_micros(micros));
        }
        values.sort_unstable();
        let reference = |q: f64| values[((q * values.len() as f64).ceil() as usize).max(1) - 1];
        let report = latencies.report();
        for (q, got) in [
            (0.50, report.p50_us),
            (0.90, report.p90_us),
            (0.99, report.p99_us),
            (0.999, report.p999_us),
            (0.9999, report.p9999_us),
        ] {
            let want = reference(q) as f64;
            assert!(
                (got as f64 - want).abs() <= want * 0.001 + 1.0,
                "q {q}: histogram {got} µs, reference {want} µs"
            );
        }
        assert_eq!(report.count, 100_000);
        let max = *values.last().expect("values");
        assert!((report.max_us as f64 - max as f64).abs() <= max as f64 * 0.001 + 1.0);
    }

    /// Open loop at 100 k events/s, one 50 ms stall: the 5 000 events due during it wait for
    /// its end (50 ms down to 0), so the stall shows from p99 on; the median does not move.
    #[test]
    fn an_open_loop_stall_shows_in_the_tail() {
        let mut latencies = Latencies::new();
        for _ in 0..95_000 {
            latencies.record(Duration::from_micros(200));
        }
        for due in 0..5_000u64 {
            // Event `due` was due `due * 10 µs` into the stall and sent at its end.
            latencies.record(Duration::from_micros(200 + 50_000 - due * 10));
        }
        let report = latencies.report();
        assert!((199..=201).contains(&report.p50_us), "{report:?}");
        assert!(report.p99_us >= 40_000, "{report:?}");
        assert!((50_100..=50_300).contains(&report.max_us), "{report:?}");
    }

    #[test]
    fn empty_report_is_zero_and_huge_values_saturate() {
        let mut latencies = Latencies::new();
        assert_eq!(latencies.report(), Report::default());
        latencies.record(Duration::ZERO);
        latencies.record(Duration::from_secs(3_600));
        assert_eq!(latencies.saturated(), 1);
        let report = latencies.report();
        assert_eq!(report.count, 2);
        assert!(report.max_us <= (MAX_TRACKED.as_micros() as u64) * 1_001 / 1_000);
        let mut other = Latencies::new();
        other.record(Duration::from_millis(1));
        latencies.merge(&other);
        assert_eq!(latencies.count(), 3);
        assert_eq!(latencies.saturated(), 1);
    }

    #[test]
    fn report_serializes_with_the_documented_fields() {
        let report = Report {
            p50_us: 1,
            p90_us: 2,
            p99_us: 3,
            p999_us: 4,
            p9999_us: 5,
            max_us: 6,
            count: 7,
        };
        let json = serde_json::to_value(report).expect("serialize");
        for field in [
            "p50_us", "p90_us", "p99_us", "p999_us", "p9999_us", "max_us", "count",
        ] {
            assert!(json.get(field).is_some(), "{field} missing in {json}");
        }
    }
}
