//! Dataflows composed from tidewatch operators.
//!
//! Each dataflow is a plain function from source streams to result collections, configured by a
//! typed config; sources and sinks are attached by the caller (see the `tidewatch` crate).
#![forbid(missing_docs)]

pub mod anomaly;
pub mod logi1;
pub mod logi2;
