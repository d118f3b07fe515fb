//! The typed configuration of the alert rules, read from JSON (`tidewatch run --detect --rules
//! FILE`), with the three default rules.

use std::collections::BTreeSet;
use std::fmt::Display;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tidewatch_operators::alert_lifecycle::AlertPolicy;
use tidewatch_operators::detect::registry::{DetectorKind, DetectorSpec};
use tidewatch_operators::forecast::model::ModelKind;

use crate::logi1::WindowRow;

/// Name of the default rule on the mean delivery duration.
pub const DELIVERY_DURATION_ANOMALY: &str = "delivery_duration_anomaly";
/// Name of the default rule on the orders per window.
pub const ORDER_VOLUME_ANOMALY: &str = "order_volume_anomaly";
/// Name of the default rule on the mean temperature.
pub const TEMPERATURE_ANOMALY: &str = "temperature_anomaly";

/// Default of [`RuleConfig::high`]: the score `contextual` counts as a detection
/// ([`tidewatch_operators::detect::registry::NORMAL_TAIL_ALARM`]), a z-score of about 3.9.
pub const DEFAULT_HIGH: f64 = 0.9999;
/// Default of [`RuleConfig::low`]: the alert clears once the score is below 0.95, a value
/// back within about two standard deviations.
pub const DEFAULT_LOW: f64 = 0.95;
/// Default of [`RuleConfig::for_points`]: two windows in a row, so that one odd minute (a
/// window mean of a few parcels at night) does not alert.
pub const DEFAULT_FOR: usize = 2;
/// Default of [`RuleConfig::warmup`]: an hour of one-minute windows.
pub const DEFAULT_WARMUP: usize = 60;
/// Default of [`DetectorConfig::window`]: two hours of one-minute windows, long enough for a
/// steady spread, short enough that an incident a few hours before has left it (a spread
/// inflated by the last incident would hide the next one).
pub const DEFAULT_DETECTOR_WINDOW: usize = 120;
/// Largest accepted [`DetectorConfig::window`] (the CLI's `detect --window` bound).
pub const MAX_DETECTOR_WINDOW: usize = 10_000_000;
/// Largest accepted [`DetectorConfig::season`].
pub const MAX_SEASON: usize = 100_000;

/// A value a rule can watch, read from a LOGI-1 window row. A window that lacks one of its
/// rule's metrics is not scored by that rule (it is skipped, like a minute with no row).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// `mean_duration_ms` of a window with `delivered > 0`, in ms.
    DeliveryDuration,
    /// `orders` of the window (0 included: a window with only deliveries or readings).
    OrderVolume,
    /// `mean_temp` of a window with `readings > 0`.
    Temperature,
}

impl Metric {
    /// The name in configs and in alert rows' `values`.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::DeliveryDuration => "delivery_duration",
            Metric::OrderVolume => "order_volume",
            Metric::Temperature => "temperature",
        }
    }

    /// The metric's value in `row`, if the window has one.
    pub fn of(self, row: &WindowRow) -> Option<f64> {
        match self {
            Metric::DeliveryDuration => row
                .mean_duration_ms
                .filter(|_| row.delivered > 0)
                .map(|mean| mean.get()),
            Metric::OrderVolume => Some(row.orders as f64),
            Metric::Temperature => row
                .mean_temp
                .filter(|_| row.readings > 0)
                .map(|mean| mean.get()),
        }
    }
}

/// A transform of a rule's metric values before its detector scores them (alert rows carry
/// the values as they were).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// The values as they are.
    #[default]
    None,
    /// `sqrt(x)`: makes the noise of counts (orders per window, Poisson) the same at every
    /// level, so a night and a peak hour are scored on one scale.
    Sqrt,
    /// `ln(1 + x)`: turns a change by a factor into a shift, for durations.
    Log,
}

impl Transform {
    /// The transformed value; `None` where it is undefined (a negative value), and the window
    /// is then skipped by the rule.
    pub fn apply(self, value: f64) -> Option<f64> {
        let out = match self {
            Transform::None => value,
            Transform::Sqrt => value.sqrt(),
            Transform::Log => value.ln_1p(),
        };
        out.is_finite().then_some(out)
    }
}

/// Which detector a rule runs, per warehouse: the fields of [`DetectorSpec`], by name.
/// Missing fields take the defaults below.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorConfig {
    /// A detector of the registry by name (`windowed_gaussian`, `robust`, `ewma_chart`,
    /// `residual`, `learned_weights`, `contextual`, `value_novelty`, `best`); default
    /// `contextual` (a value wrong for the time of day is caught by its forecast residual).
    #[serde(with = "by_name")]
    pub kind: DetectorKind,
    /// The rolling window of the z-scores, in scored windows; default
    /// [`DEFAULT_DETECTOR_WINDOW`].
    pub window: usize,
    /// The forecaster of `residual`, `learned_weights` and `contextual` (`hw`, `sarima`, `ar`, `ewma`, `auto`, ...);
    /// default `auto`.
    #[serde(with = "by_name")]
    pub model: ModelKind,
    /// Its season in scored windows; default 0 (none: skipped windows would shift a season).
    pub season: usize,
    /// Scored windows that `contextual` and `best` silence after a detection; default 0 (the rule's
    /// hysteresis already keeps one incident to one alert).
    pub rest: usize,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            kind: DetectorKind::Contextual,
            window: DEFAULT_DETECTOR_WINDOW,
            model: ModelKind::Auto,
            season: 0,
            rest: 0,
        }
    }
}

impl DetectorConfig {
    /// The registry's spec of this detector.
    pub fn spec(&self) -> DetectorSpec {
        DetectorSpec {
            kind: self.kind,
            window: self.window,
            model: self.model,
            season: self.season,
            rest: self.rest,
        }
    }
}

/// One alert rule: which metrics, which detector, and when its score raises and clears an
/// alert (see [`tidewatch_operators::alert_lifecycle`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// The rule's name, written in every alert row (unique within a config).
    pub name: String,
    /// The metrics, at least one. With several, a window is scored only when it has all of
    /// them, as one point of that many features (`DetectorSpec::build(dims)`).
    pub metrics: Vec<Metric>,
    /// The detector; default: [`DetectorConfig::default`].
    #[serde(default)]
    pub detector: DetectorConfig,
    /// Applied to every metric value before scoring; default none.
    #[serde(default)]
    pub transform: Transform,
    /// Scored windows per warehouse before the rule may raise (its detector learns
    /// meanwhile); default [`DEFAULT_WARMUP`].
    #[serde(default = "default_warmup")]
    pub warmup: usize,
    /// Raise at a score at or above this, in `(0, 1]`; default [`DEFAULT_HIGH`].
    #[serde(default = "default_high")]
    pub high: f64,
    /// Clear at a score below this, in `[0, high]`; default [`DEFAULT_LOW`].
    #[serde(default = "default_low")]
    pub low: f64,
    /// Consecutive scored windows at or above `high` before raising (JSON `for`); 0 and 1
    /// raise on the first; default [`DEFAULT_FOR`].
    #[serde(default = "default_for", rename = "for")]
    pub for_points: usize,
}

fn default_high() -> f64 {
    DEFAULT_HIGH
}

fn default_low() -> f64 {
    DEFAULT_LOW
}

fn default_for() -> usize {
    DEFAULT_FOR
}

fn default_warmup() -> usize {
    DEFAULT_WARMUP
}

impl RuleConfig {
    /// A rule on `metrics` with the default detector and thresholds.
    pub fn new(name: &str, metrics: Vec<Metric>) -> Self {
        RuleConfig {
            name: name.to_string(),
            metrics,
            detector: DetectorConfig::default(),
            transform: Transform::None,
            warmup: DEFAULT_WARMUP,
            high: DEFAULT_HIGH,
            low: DEFAULT_LOW,
            for_points: DEFAULT_FOR,
        }
    }

    /// The rule's hysteresis and minimum duration.
    pub fn policy(&self) -> Result<AlertPolicy, String> {
        if !(self.high > 0.0 && self.high <= 1.0) {
            return Err(format!(
                "high {} must be in (0, 1] (detector scores are in [0, 1])",
                self.high
            ));
        }
        if self.low.is_nan() || self.low < 0.0 {
            return Err(format!("low {} must be >= 0", self.low));
        }
        AlertPolicy::new(self.high, self.low, self.for_points).map_err(|e| e.to_string())
    }

    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("the rule name is empty".into());
        }
        if self.metrics.is_empty() {
            return Err("metrics is empty (name at least one)".into());
        }
        let distinct: BTreeSet<Metric> = self.metrics.iter().copied().collect();
        if distinct.len() != self.metrics.len() {
            return Err("a metric is listed twice".into());
        }
        let detector = &self.detector;
        if !(2..=MAX_DETECTOR_WINDOW).contains(&detector.window) {
            return Err(format!(
                "detector window {} must be in 2..={MAX_DETECTOR_WINDOW}",
                detector.window
            ));
        }
        if detector.season > MAX_SEASON {
            return Err(format!(
                "detector season {} must be at most {MAX_SEASON}",
                detector.season
            ));
        }
        self.policy().map(|_| ())
    }
}

/// The alert rules of a run; [`Default`] is the three documented default rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyConfig {
    /// The rules, each run per warehouse over its window rows.
    pub rules: Vec<RuleConfig>,
}

impl Default for AnomalyConfig {
    /// The three default rules, each with the detector `contextual` (README "Alert rules" has the
    /// table, and the measurements on the generator's incidents behind each choice):
    ///
    /// * `delivery_duration_anomaly`: window 60 (an hour: the noise of a window's mean
    ///   duration changes with the number of parcels, from night to day), `high` 0.999, for 2;
    /// * `order_volume_anomaly`: `sqrt` of the orders (Poisson counts: the same noise at night
    ///   and at the peak), window 120, `high` 0.9999, for 2;
    /// * `temperature_anomaly`: window 1,440 (a day, with its swing), `high` 0.99999, for 1.
    fn default() -> Self {
        let mut duration =
            RuleConfig::new(DELIVERY_DURATION_ANOMALY, vec![Metric::DeliveryDuration]);
        duration.detector.window = 60;
        duration.high = 0.999;
        let mut volume = RuleConfig::new(ORDER_VOLUME_ANOMALY, vec![Metric::OrderVolume]);
        volume.transform = Transform::Sqrt;
        let mut temperature = RuleConfig::new(TEMPERATURE_ANOMALY, vec![Metric::Temperature]);
        temperature.detector.window = 1_440;
        temperature.high = 0.99999;
        temperature.for_points = 1;
        AnomalyConfig {
            rules: vec![duration, volume, temperature],
        }
    }
}

/// Why a rules config cannot be used: a user error.
#[derive(Debug, thiserror::Error)]
pub enum AnomalyConfigError {
    /// Not JSON, or not of the expected shape (an unknown field, detector or metric). The
    /// parser's message is the whole story, so it is not also chained as a source (which
    /// would print it twice in a one-line error).
    #[error("invalid rules: {0}")]
    Json(serde_json::Error),
    /// Two rules share a name.
    #[error("two rules are named `{0}`")]
    DuplicateName(String),
    /// A rule's settings are out of range.
    #[error("rule `{rule}`: {problem}")]
    Rule {
        /// The rule's name.
        rule: String,
        /// What is wrong.
        problem: String,
    },
}

impl From<serde_json::Error> for AnomalyConfigError {
    fn from(error: serde_json::Error) -> Self {
        AnomalyConfigError::Json(error)
    }
}

impl AnomalyConfig {
    /// Parses and checks a rules config (`{"rules": [...]}`).
    ///
    /// ```
    /// use tidewatch_dataflows::anomaly::AnomalyConfig;
    /// let config = AnomalyConfig::from_json(
    ///     r#"{"rules": [{"name": "heat", "metrics": ["temperature"], "high": 0.999, "low": 0.9}]}"#,
    /// ).unwrap();
    /// assert_eq!(config.rules[0].detector.kind.as_str(), "contextual");
    /// let error = AnomalyConfig::from_json(r#"{"rules": [{"name": "x", "metrics": ["orders"]}]}"#);
    /// assert!(error.unwrap_err().to_string().contains("unknown variant `orders`"));
    /// ```
    pub fn from_json(text: &str) -> Result<Self, AnomalyConfigError> {
        let config: AnomalyConfig = serde_json::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every rule, and that names are unique.
    pub fn validate(&self) -> Result<(), AnomalyConfigError> {
        let mut names = BTreeSet::new();
        for rule in &self.rules {
            rule.validate()
                .map_err(|problem| AnomalyConfigError::Rule {
                    rule: rule.name.clone(),
                    problem,
                })?;
            if !names.insert(rule.name.as_str()) {
                return Err(AnomalyConfigError::DuplicateName(rule.name.clone()));
            }
        }
        Ok(())
    }
}

/// Serde by name, for the registry's kinds (which parse from and print as their names).
mod by_name {
    use super::*;

    pub fn serialize<S: serde::Serializer, T: Display>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub fn deserialize<'de, D, T>(deserializer: D) -> Result<T, D::Error>
    where
        D: serde::Deserializer<'de>,
        T: FromStr<Err = String>,
    {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_round_trip_through_json() {
        let config = AnomalyConfig::default();
        let text = serde_json::to_string_pretty(&config).expect("serializes");
        assert_eq!(AnomalyConfig::from_json(&text).expect("parses"), config);
        assert!(text.contains("\"for\": 1") && text.contains("\"kind\": \"contextual\""));
    }

    #[test]
    fn missing_fields_take_the_defaults() {
        let config = AnomalyConfig::from_json(
            r#"{"rules":[{"name":"r","metrics":["order_volume","temperature"],"detector":{"kind":"robust"}}]}"#,
        )
        .expect("parses");
        let rule = &config.rules[0];
        assert_eq!(rule.detector.kind, DetectorKind::Robust);
        assert_eq!(rule.detector.window, DEFAULT_DETECTOR_WINDOW);
        assert_eq!(
            (rule.high, rule.low, rule.for_points),
            (DEFAULT_HIGH, DEFAULT_LOW, DEFAULT_FOR)
        );
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        let cases = [
            (
                r#"{"rules":[{"name":"r","metrics":["order_volume"],"detector":{"kind":"knn"}}]}"#,
                "unknown detector `knn`",
            ),
            (
                r#"{"rules":[{"name":"r","metrics":["order_volume"],"high":0.5,"low":0.9}]}"#,
                "low 0.9 must not be above high 0.5",
            ),
            (
                r#"{"rules":[{"name":"r","metrics":[]}]}"#,
                "metrics is empty",
            ),
            (
                r#"{"rules":[{"name":"r","metrics":["order_volume"],"high":2}]}"#,
                "high 2 must be in (0, 1]",
            ),
            (
                r#"{"rules":[{"name":"r","metrics":["order_volume"],"detector":{"window":1}}]}"#,
                "window 1",
            ),
            (
                r#"{"rules":[{"name":"r","metrics":["order_volume"]},{"name":"r","metrics":["temperature"]}]}"#,
                "two rules are named `r`",
            ),
            (
                r#"{"rules":[{"name":"r","metrics":["order_volume"],"threshold":1}]}"#,
                "unknown field `threshold`",
            ),
            (
                r#"{"rules":[{"name":"r","metrics":["order_volume"],"detector":{"model":"prophet"}}]}"#,
                "unknown model `prophet`",
            ),
            ("[", "EOF"),
        ];
        for (text, needle) in cases {
            let error = AnomalyConfig::from_json(text).expect_err(text).to_string();
            assert!(error.contains(needle), "{text}: {error}");
            assert_eq!(error.lines().count(), 1, "{error}");
        }
    }
}
