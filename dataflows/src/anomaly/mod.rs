//! Alert rules over LOGI-1's window rows: per warehouse, in window order, each rule scores its
//! metrics with a detector of the registry and turns the scores into alert deltas with the
//! shared alert hygiene ([`tidewatch_operators::alert_lifecycle`]). README "Alert rules" states
//! the semantics for users.
//!
//! # Circuit
//! ```text
//! events --> logi1 --> windows --(warehouse, window_start, row)--> sequence_by_key(warehouse)
//!                                                                     | per rule: metrics ->
//!                                                                     | detector -> lifecycle
//!                                                                     v
//!                                                          alert deltas (+1 raise, -1 clear)
//! ```
//!
//! # Semantics
//! A warehouse's series is its window rows in window order; a minute without a row is skipped.
//! For each row and each rule ([`RuleConfig`]):
//! 1. The point is the row's values of the rule's metrics ([`Metric`]), each through the
//!    rule's [`Transform`]; a row that lacks one (no deliveries, no temperature readings, a
//!    value the transform cannot take) is skipped by that rule.
//! 2. The rule's detector (one per warehouse and rule, `DetectorSpec::build(metrics)`) scores
//!    the point against the points before it, then learns it. The first `warmup` scores of a
//!    warehouse go no further.
//! 3. The rule's lifecycle ([`tidewatch_operators::alert_lifecycle::AlertLifecycle`]) raises an
//!    alert at a score `>= high` held for `for` points, and clears it below `low`.
//!
//! A raise is the row [`AnomalyAlertRow`] with diff +1 at the raising window's `window_end`; the
//! clear is the same row with diff -1 at the clearing window's `window_end`. The row carries the
//! raising window, its score and metric values, and an id derived from (rule, warehouse,
//! raising window's start). State is per warehouse and sequential ([`sequence_by_key`]), so the
//! alerts do not depend on the number of workers or on arrival order; LOGI-1's outputs are
//! untouched.
//!
//! Unchecked assumption: window rows are append-only (+1, never retracted), as LOGI-1's are.

mod config;
#[cfg(test)]
mod tests;
mod warehouse;

use std::collections::BTreeMap;

use differential_dataflow::{AsCollection, VecCollection};
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;

use tidewatch_operators::event::{FiniteF64, Millis, Text};
use tidewatch_operators::sequence_by_key::sequence_by_key;

use crate::logi1::WindowRow;
pub use config::{
    AnomalyConfig, AnomalyConfigError, DetectorConfig, Metric, RuleConfig, Transform,
    DEFAULT_DETECTOR_WINDOW, DEFAULT_FOR, DEFAULT_HIGH, DEFAULT_LOW, DEFAULT_WARMUP,
    DELIVERY_DURATION_ANOMALY, MAX_DETECTOR_WINDOW, MAX_SEASON, ORDER_VOLUME_ANOMALY,
    TEMPERATURE_ANOMALY,
};
use warehouse::{CompiledRule, WarehouseRules};

/// An alert of a rule (`anomaly_alerts.jsonl`), without its `time` and `diff`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AnomalyAlertRow {
    /// The rule's name.
    pub rule: Text,
    /// Stable id: FNV-1a of (rule, warehouse, `window_start`), 16 hex digits
    /// ([`tidewatch_operators::alert_lifecycle::alert_id`]).
    pub alert_id: Text,
    /// Warehouse.
    pub warehouse: Text,
    /// The rule's detector, by registry name.
    pub detector: Text,
    /// Start of the window that raised the alert.
    pub window_start: Millis,
    /// The detector's score of that window, in `[0, 1]`.
    pub score: FiniteF64,
    /// The window's values of the rule's metrics, by metric name (durations in ms).
    pub values: BTreeMap<Text, FiniteF64>,
}

/// Runs the rules of `config` over LOGI-1's `windows`; returns the alert deltas, each at the `window_end` of the window that raised or cleared it.
///
/// # Panics
/// If `config` is invalid: check it first with [`AnomalyConfig::validate`] (the CLI does).
///
/// # Examples
/// ```
/// use timely::dataflow::operators::{Capture, ToStream};
/// use timely::dataflow::operators::capture::Extract;
/// use tidewatch_dataflows::anomaly::{anomaly_rules, AnomalyConfig, Metric, RuleConfig};
/// use tidewatch_dataflows::logi1::{logi1, Logi1Config};
/// use tidewatch_operators::detect::registry::DetectorKind;
/// use tidewatch_operators::validate::parse_line;
///
/// // A reading of about 20 °C a minute; from minute 100 to 104, 26 °C.
/// let events: Vec<_> = (0..110u64)
///     .map(|minute| {
///         let value = if (100..105).contains(&minute) { 26.0 } else { 20.0 + (minute % 3) as f64 / 10.0 };
///         let line = format!(
///             r#"{{"type":"sensor","sensor_id":"t","warehouse":"wh-1","metric":"temperature","value":{value},"ts":{}}}"#,
///             minute * 60_000,
///         );
///         parse_line(line.as_bytes()).unwrap()
///     })
///     .collect();
/// let mut rule = RuleConfig::new("heat", vec![Metric::Temperature]);
/// rule.detector.kind = DetectorKind::WindowedGaussian;
/// let config = AnomalyConfig { rules: vec![rule] };
/// let captured = timely::example(move |scope| {
///     let windows = logi1(events.to_stream(scope), &Logi1Config::default()).windows;
///     anomaly_rules(windows, &config).inner.capture()
/// });
/// let mut changes: Vec<_> = captured.extract().into_iter().flat_map(|(_, v)| v).collect();
/// changes.sort_by_key(|(_, time, _)| *time);
/// // Raised by the window of minute 101 (the second in a row at or above `high`: `for` 2),
/// // cleared by that of minute 105: one row, +1 then -1.
/// assert_eq!(changes.len(), 2);
/// assert_eq!((changes[0].0.window_start, changes[0].1, changes[0].2), (6_060_000, 6_120_000, 1));
/// assert_eq!((changes[1].0.clone(), changes[1].1, changes[1].2), (changes[0].0.clone(), 6_360_000, -1));
/// assert_eq!(changes[0].0.values["temperature"].get(), 26.0);
/// ```
pub fn anomaly_rules<'scope>(
    windows: VecCollection<'scope, u64, WindowRow, isize>,
    config: &AnomalyConfig,
) -> VecCollection<'scope, u64, AnomalyAlertRow, isize> {
    let rules = compile(config);
    let points = windows
        .inner
        .map(|(row, _time, _diff)| (row.warehouse.clone(), row.window_start, row));
    let init_rules = rules.clone();
    sequence_by_key(
        points,
        move |_warehouse| WarehouseRules::new(&init_rules),
        move |_warehouse, state, _window_start, row| {
            let changes = state.window(&rules, &row);
            (!changes.is_empty()).then_some(changes)
        },
    )
    .flat_map(|changes| changes)
    .as_collection()
}

/// The checked rules of `config`; panics if it is invalid (see [`anomaly_rules`]).
fn compile(config: &AnomalyConfig) -> Vec<CompiledRule> {
    if let Err(problem) = config.validate() {
        panic!("invalid alert rules: {problem}");
    }
    config
        .rules
        .iter()
        .map(|rule| CompiledRule {
            name: Text::from(rule.name.as_str()),
            metrics: rule.metrics.clone(),
            transform: rule.transform,
            warmup: rule.warmup,
            spec: rule.detector.spec(),
            policy: rule
                .policy()
                .unwrap_or_else(|problem| panic!("rule {} was validated: {problem}", rule.name)),
        })
        .collect()
}
