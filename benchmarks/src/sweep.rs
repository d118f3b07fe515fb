//! Rate sweeps: the rates to try, and the highest one that is sustainable within the latency
//! SLO.
//!
//! # Examples
//! ```
//! use tidewatch_benchmarks::sweep::parse_rates;
//!
//! assert_eq!(parse_rates("50k,100k,1.5M,2500").unwrap(), vec![50e3, 100e3, 1.5e6, 2500.0]);
//! assert!(parse_rates("50k,fast").is_err());
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::report::BenchReport;

/// A rate in events per second: a number with an optional `k` (thousand) or `M` (million)
/// suffix, such as `100k`, `1.5M` or `25000`.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (number, scale) = match text.char_indices().last() {
        Some((at, 'k' | 'K')) => (&text[..at], 1e3),
        Some((at, 'm' | 'M')) => (&text[..at], 1e6),
        _ => (text, 1.0),
    };
    match number.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value * scale),
        _ => Err(format!(
            "`{text}` is not a rate (events/s, such as 50000, 100k or 1.5M)"
        )),
    }
}

/// A comma-separated list of rates, ascending or not (see [`parse_rate`]).
pub fn parse_rates(list: &str) -> Result<Vec<f64>, String> {
    let rates: Vec<f64> = list
        .split(',')
        .filter(|r| !r.trim().is_empty())
        .map(parse_rate)
        .collect::<Result<_, _>>()?;
    if rates.is_empty() {
        return Err("the sweep needs at least one rate".to_string());
    }
    Ok(rates)
}

/// Share of the offered events a sustainable run must send in time.
pub const SUSTAINED_SHARE: f64 = 0.99;

/// Whether a run kept up with its load: it sent at least [`SUSTAINED_SHARE`] of the events due.
pub fn sustained(report: &BenchReport) -> bool {
    report.events_due == 0
        || report.events_sent as f64 >= SUSTAINED_SHARE * report.events_due as f64
}

/// Whether a run is within the SLO: it kept up, and its processing latency p99 is at most `slo`.
pub fn within_slo(report: &BenchReport, slo: Duration) -> bool {
    sustained(report)
        && report.processing.count > 0
        && u128::from(report.processing.p99_us) <= slo.as_micros()
}

/// The highest offered rate within the SLO (see [`within_slo`]), if any.
pub fn highest_within_slo(points: &[BenchReport], slo: Duration) -> Option<f64> {
    points
        .iter()
        .filter(|report| within_slo(report, slo))
        .map(|report| report.rate_offered)
        .max_by(f64::total_cmp)
}

/// The report of a sweep, as `sweep.json` has it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    /// Worker threads.
    pub workers: usize,
    /// The SLO on processing latency p99, µs.
    pub slo_p99_us: u64,
    /// The highest rate within the SLO (`null`: none).
    pub highest_rate_within_slo: Option<f64>,
    /// Every rate's report, in the order run.
    pub points: Vec<BenchReport>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::Report;

    #[test]
    fn rates_parse_with_suffixes_and_reject_the_rest() {
        assert_eq!(parse_rate("100k"), Ok(100_000.0));
        assert_eq!(parse_rate(" 2M "), Ok(2_000_000.0));
        assert_eq!(parse_rate("12.5K"), Ok(12_500.0));
        for bad in ["", "k", "0", "-5k", "abc", "1e400", "NaN", "5 k"] {
            assert!(parse_rate(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_rates(",").is_err());
    }

    fn point(rate: f64, p99_us: u64, sent_share: f64) -> BenchReport {
        let mut report = BenchReport::example();
        report.rate_offered = rate;
        report.events_due = 1_000_000;
        report.events_sent = (1_000_000.0 * sent_share) as u64;
        report.processing = Report {
            p99_us,
            count: 100,
            ..Report::default()
        };
        report
    }

    /// The highest passing rate wins, even past a failing one; a run that fell behind fails
    /// whatever its latency (its samples stop when it stops keeping up).
    #[test]
    fn highest_within_slo_needs_both_latency_and_throughput() {
        let slo = Duration::from_millis(10);
        let points = vec![
            point(50e3, 900, 1.0),
            point(100e3, 12_000, 1.0),
            point(200e3, 9_000, 1.0),
            point(400e3, 1_000, 0.7),
        ];
        assert_eq!(highest_within_slo(&points, slo), Some(200e3));
        assert_eq!(highest_within_slo(&points[1..2], slo), None);
        assert_eq!(highest_within_slo(&[], slo), None);
        // Exactly at the SLO passes.
        assert_eq!(
            highest_within_slo(&[point(1e3, 10_000, 1.0)], slo),
            Some(1e3)
        );
        // No samples: no verdict.
        let mut empty = point(1e3, 0, 1.0);
        empty.processing.count = 0;
        assert_eq!(highest_within_slo(&[empty], slo), None);
    }
}
