//! The measuring engine of tidewatch's benchmarks, as a library; `tidewatch bench` is its
//! command line.
//!
//! * [`schedule`]: when each event of an open-loop load is due. The instants are fixed in advance
//!   from the target rate, so a system that stalls cannot slow its own load down (no coordinated
//!   omission): events due during a stall are sent late, and the latency measured from their
//!   *due* instant includes the stall.
//! * [`latency`]: an HDR histogram of latencies in microseconds (1 µs to 10 minutes, 3
//!   significant digits) and the percentile report (`p50_us` … `p9999_us`, `max_us`, `count`)
//!   that reports print as JSON.
//! * [`openloop`]: one open-loop run of LOGI-1 at a rate, measuring processing latency and
//!   event-to-alert latency.
//! * [`hlog`]: the latencies per second as HdrHistogram interval logs (`.hlog`).
//! * [`report`], [`sweep`], [`plot`]: the JSON report and human summary, rate sweeps and the
//!   highest rate within a latency SLO, and the SVG plot of percentiles against throughput.
//! * [`throughput`]: LOGI-1 as fast as possible from lines in memory or in a file.
//! * [`env`](mod@env): benchmark settings from `TIDEWATCH_BENCH_*` variables.
//! * [`command`]: `tidewatch bench` itself: runs, progress, files in `--out`.
//! * [`data`]: the public series in `benchmarks/data`, for the forecasting and detection
//!   benches.
#![forbid(missing_docs)]

pub mod command;
pub mod data;
pub mod env;
pub mod hlog;
pub mod latency;
pub mod openloop;
pub mod plot;
pub mod report;
pub mod rss;
pub mod schedule;
pub mod sweep;
pub mod throughput;
