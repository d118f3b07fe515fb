//! tidewatch: the runner behind the `tidewatch` binary.
//!
//! [`runner::run`] wires a source (JSON Lines file or stdin, or the built-in generator) to the
//! LOGI-1 dataflow and its sinks on timely workers; [`runner::run_file`] is file mode.
//! [`telemetry`] is what a run reports while it runs, and [`serve`] serves it over HTTP:
//! Prometheus metrics and the live dashboard.
#![forbid(missing_docs)]

pub mod detect_cmd;
pub mod feed;
pub mod forecast_cmd;
pub mod runner;
pub mod serve;
pub mod telemetry;
pub mod terminal;
