//! Sources and sinks for tidewatch: I/O only, no statistics.
//!
//! * [`jsonl_source`]: JSON Lines from a file (split across workers by byte ranges) or stdin;
//! * [`input`]: a batch of events into a timely input, one session per time;
//! * [`watermark`]: per-source watermarks and lateness (SPEC §2);
//! * [`kafka`]: Kafka source, sink, loader and development broker;
//! * [`sink`]: change logs of final, consolidated deltas and dead letters (SPEC §4).
#![forbid(missing_docs)]

pub mod generator;
pub mod input;
pub mod jsonl_source;
pub mod kafka;
pub mod line_pump;
pub mod sink;
pub mod watermark;
