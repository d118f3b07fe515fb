//! Per-operator activation time from timely's own event log.
//!
//! Timely logs, per worker, each operator's creation (`Operates`: id, address, name) and each
//! time it is scheduled (`Schedule` start and stop, with the worker's elapsed time). A logger
//! registered before the dataflows are built pairs the starts and stops and adds their
//! durations to `tidewatch_operator_activation_seconds_total{operator, address}`, once per
//! batch of log events (timely hands the logger a buffer at a time), not per event.

use std::collections::HashMap;
use std::time::Duration;

use prometheus::{Counter, IntCounter};
use timely::logging::{StartStop, TimelyEvent, TimelyEventBuilder};

use super::metrics::Metrics;

/// One operator of one worker.
struct Operator {
    seconds: Counter,
    activations: IntCounter,
    started: Option<Duration>,
    /// Not yet added to the shared counters (added once per log buffer: the counters are
    /// shared by every worker, and one add per activation would contend on them).
    pending: Duration,
    pending_activations: u64,
}

/// Registers the logger on `worker`; call before building its dataflows (operators built
/// earlier are not named in the log).
pub fn log_activations(worker: &mut timely::worker::Worker, metrics: &std::sync::Arc<Metrics>) {
    let Some(mut registry) = worker.log_register() else {
        return;
    };
    let metrics = std::sync::Arc::clone(metrics);
    let mut operators: HashMap<usize, Operator> = HashMap::new();
    registry.insert::<TimelyEventBuilder, _>("timely", move |_time, events| {
        let Some(events) = events else {
            return;
        };
        for (at, event) in events.iter() {
            match event {
                TimelyEvent::Operates(operates) => {
                    let address = operates
                        .addr
                        .iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(".");
                    let labels = [operates.name.as_str(), address.as_str()];
                    operators.insert(
                        operates.id,
                        Operator {
                            seconds: metrics.activation_seconds.with_label_values(&labels),
                            activations: metrics.activations.with_label_values(&labels),
                            started: None,
                            pending: Duration::ZERO,
                            pending_activations: 0,
                        },
                    );
                }
                TimelyEvent::Schedule(schedule) => {
                    let Some(operator) = operators.get_mut(&schedule.id) else {
                        continue;
                    };
                    match schedule.start_stop {
                        StartStop::Start => operator.started = Some(*at),
                        StartStop::Stop => {
                            if let Some(started) = operator.started.take() {
                                operator.pending += at.saturating_sub(started);
                                operator.pending_activations += 1;
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        for operator in operators.values_mut() {
            if operator.pending_activations > 0 {
                operator.seconds.inc_by(operator.pending.as_secs_f64());
                operator.activations.inc_by(operator.pending_activations);
                operator.pending = Duration::ZERO;
                operator.pending_activations = 0;
            }
        }
    });
}
