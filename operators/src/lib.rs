//! Pure stream operators for tidewatch: no I/O here.
//!
//! * [`event`] and [`validate`]: typed events (SPEC §1) and the line parser that splits input
//!   into events and dead letters;
//! * [`dedup`], [`interval_join`], [`tumbling`], [`rolling_stats`], [`zscore`],
//!   [`sequence_by_key`]: one operator per file, each a method-free generic function over timely
//!   streams or differential collections;
//! * [`alert_lifecycle`]: alert hygiene (hysteresis, `for`, dedup, stable ids, +1/-1 deltas),
//!   a per-key state machine for the alert rules;
//! * [`forecast`]: online forecasters (moving averages, EWMA, Holt-Winters, AR/ARIMA/SARIMA, RLS
//!   regression), their accuracy, and automatic model choice; [`sequence_by_key`] runs them per
//!   key inside a dataflow.
//!
//! Time: the timely timestamp is event time in milliseconds (`u64`), rounded down to a grid
//! (for LOGI-1 the 60 s window grid) so that events of one grid cell travel in one batch; the
//! exact `ts` always travels in the data.
#![forbid(missing_docs)]

pub mod event;
pub mod validate;

pub mod alert_lifecycle;
pub mod dedup;
pub mod detect;
pub mod forecast;
pub mod interval_join;
pub mod numeric;
pub mod rolling_stats;
pub mod sequence_by_key;
pub mod tumbling;
pub mod zscore;

#[cfg(test)]
mod testing;
