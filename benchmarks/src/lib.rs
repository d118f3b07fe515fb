//! The measuring engine of tidewatch's benchmarks, as a library: an open-loop load schedule and
//! latency histograms with their percentile report.
//!
//! * [`schedule`]: when each event of an open-loop load is due. The instants are fixed in advance
//!   from the target rate, so a system that stalls cannot slow its own load down (no coordinated
//!   omission): events due during a stall are sent late, and the latency measured from their
//!   *due* instant includes the stall.
//! * [`latency`]: an HDR histogram of latencies in microseconds (1 µs to 10 minutes, 3
//!   significant digits) and the percentile report (`p50_us` … `p9999_us`, `max_us`, `count`)
//!   that reports print as JSON.
#![forbid(missing_docs)]

pub mod latency;
pub mod schedule;
