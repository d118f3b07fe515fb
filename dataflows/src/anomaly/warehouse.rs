//! The per-warehouse state of the alert rules: per rule, a detector and an alert lifecycle.

use std::collections::BTreeMap;

use tidewatch_operators::alert_lifecycle::{alert_id, AlertLifecycle, AlertPolicy};
use tidewatch_operators::detect::registry::DetectorSpec;
use tidewatch_operators::detect::MultiDetector;
use tidewatch_operators::event::{FiniteF64, Millis, Text};

use super::{AnomalyAlertRow, Metric, Transform};
use crate::logi1::WindowRow;

/// A checked rule, ready to build per warehouse.
#[derive(Clone, Debug)]
pub(crate) struct CompiledRule {
    pub(crate) name: Text,
    pub(crate) metrics: Vec<Metric>,
    pub(crate) transform: Transform,
    pub(crate) warmup: usize,
    pub(crate) spec: DetectorSpec,
    pub(crate) policy: AlertPolicy,
}

/// One rule at one warehouse.
struct RuleState {
    detector: Box<dyn MultiDetector>,
    lifecycle: AlertLifecycle<AnomalyAlertRow>,
    /// The current point's values, reused from window to window.
    values: Vec<f64>,
    /// The same, transformed: what the detector scores.
    point: Vec<f64>,
    /// Points scored so far.
    scored: usize,
}

/// Every rule's state at one warehouse.
pub(crate) struct WarehouseRules {
    states: Vec<RuleState>,
}

impl WarehouseRules {
    pub(crate) fn new(rules: &[CompiledRule]) -> Self {
        let states = rules
            .iter()
            .map(|rule| RuleState {
                detector: rule.spec.build(rule.metrics.len()),
                lifecycle: AlertLifecycle::new(rule.policy),
                values: Vec::with_capacity(rule.metrics.len()),
                point: Vec::with_capacity(rule.metrics.len()),
                scored: 0,
            })
            .collect();
        WarehouseRules { states }
    }

    /// Scores the warehouse's next window row with every rule that has all its metrics in it;
    /// returns the alert changes (each at the row's `window_end`, as `(row, time, diff)`).
    pub(crate) fn window(
        &mut self,
        rules: &[CompiledRule],
        row: &WindowRow,
    ) -> Vec<(AnomalyAlertRow, Millis, isize)> {
        let mut changes = Vec::new();
        for (rule, state) in rules.iter().zip(&mut self.states) {
            state.values.clear();
            state.point.clear();
            for metric in &rule.metrics {
                let Some(value) = metric.of(row) else { break };
                let Some(transformed) = rule.transform.apply(value) else {
                    break;
                };
                state.values.push(value);
                state.point.push(transformed);
            }
            if state.point.len() != rule.metrics.len() {
                continue; // a metric the window does not have: skipped, like a missing window
            }
            let score = state.detector.score(&state.point);
            state.scored += 1;
            if state.scored <= rule.warmup {
                continue;
            }
            let values = &state.values;
            let raise = || AnomalyAlertRow {
                rule: rule.name.clone(),
                alert_id: Text::from(alert_id(&rule.name, &row.warehouse, row.window_start)),
                warehouse: row.warehouse.clone(),
                detector: Text::const_new(rule.spec.kind.as_str()),
                window_start: row.window_start,
                score: finite(score),
                values: rule
                    .metrics
                    .iter()
                    .zip(values)
                    .map(|(metric, value)| (Text::const_new(metric.as_str()), finite(*value)))
                    .collect::<BTreeMap<_, _>>(),
            };
            if let Some(change) = state.lifecycle.observe(row.window_start, score, raise) {
                changes.push((change.row, row.window_end, change.diff));
            }
        }
        changes
    }
}

/// Scores and metric values are finite by construction (detectors score in `[0, 1]`, window
/// values are finite); a non-finite one would be a broken invariant, but a row is still better
/// than a panic: clamp to 0.
fn finite(value: f64) -> FiniteF64 {
    FiniteF64::new(value).unwrap_or(FiniteF64::ZERO)
}
