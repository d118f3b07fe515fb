//! The live view behind the dashboard and `/api`: recent windows per warehouse, with their
//! forecasts, and the alerts active now.
//!
//! The sinks of worker 0 apply every output delta here as they write it, so the view holds
//! exactly what the outputs say, but only the recent part of it: the last [`KEPT_WINDOWS`]
//! windows of at most [`MAX_WAREHOUSES`] warehouses. Every read is bounded by those numbers,
//! whatever the event rate: the dashboard's cost does not grow with the input.
//!
//! # Active alerts
//! - Alert rules (`anomaly_alerts.jsonl`) have a lifecycle: an alert is active from its +1 row
//!   until its -1 row.
//! - `delivery_duration_z` (LOGI-1) and the forecast deviations (LOGI-2) alert per window and
//!   are never cleared: such an alert is active while its window ended at most
//!   [`ACTIVE_FOR_MS`] of event time before the watermark.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use tidewatch_dataflows::anomaly::AnomalyAlertRow;
use tidewatch_dataflows::logi1::{AlertRow, WindowRow};
use tidewatch_dataflows::logi2::{ForecastAlertRow, ForecastRow, Series};
use tidewatch_operators::event::Millis;

/// Windows kept per warehouse: 6 hours of one-minute windows.
pub const KEPT_WINDOWS: usize = 360;
/// Warehouses tracked; rows of further warehouses are counted, not kept.
pub const MAX_WAREHOUSES: usize = 256;
/// How long a per-window alert stays active: 5 minutes of event time after its window.
pub const ACTIVE_FOR_MS: Millis = 5 * 60_000;
/// Changed rows sent per warehouse in one update; beyond, the warehouse is reported truncated
/// and the client fetches its windows instead.
pub const MAX_CHANGED_ROWS: usize = 120;
/// Changed rows sent in one update over all warehouses; beyond, warehouses are reported
/// truncated.
pub const MAX_CHANGED_TOTAL: usize = 2048;
/// Alert changes kept for `/api/alerts`' `recent`.
pub const RECENT_ALERTS: usize = 50;
/// The history an alert rule's "expected" value is the median of: 30 minutes before its window.
pub const TYPICAL_HISTORY_MS: Millis = 30 * 60_000;

/// A forecast and its interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Band {
    /// The forecast.
    pub expected: f64,
    /// Lower end of the interval.
    pub lower: f64,
    /// Upper end of the interval.
    pub upper: f64,
}

/// One window of one warehouse, as the dashboard draws it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LiveRow {
    /// Start of the window (event time, Unix ms).
    pub window_start: Millis,
    /// Orders in the window.
    pub orders: u64,
    /// Deliveries joined with their order in the window.
    pub delivered: u64,
    /// Their mean duration, ms.
    pub mean_duration_ms: Option<f64>,
    /// Temperature readings in the window.
    pub readings: u64,
    /// Their mean, °C.
    pub mean_temp: Option<f64>,
    /// LOGI-2's forecast of the orders, when it runs.
    pub orders_forecast: Option<Band>,
    /// LOGI-2's forecast of the mean delivery duration (ms), when it runs.
    pub duration_forecast: Option<Band>,
    /// The view's version at the last change of this row.
    #[serde(skip)]
    changed: u64,
}

impl LiveRow {
    fn empty(window_start: Millis) -> Self {
        LiveRow {
            window_start,
            orders: 0,
            delivered: 0,
            mean_duration_ms: None,
            readings: 0,
            mean_temp: None,
            orders_forecast: None,
            duration_forecast: None,
            changed: 0,
        }
    }

    /// The value of an alert rule's metric (`delivery_duration`, `order_volume`, `temperature`).
    fn metric(&self, metric: &str) -> Option<f64> {
        match metric {
            "delivery_duration" => self.mean_duration_ms.filter(|_| self.delivered > 0),
            "order_volume" => Some(self.orders as f64),
            "temperature" => self.mean_temp.filter(|_| self.readings > 0),
            _ => None,
        }
    }
}

/// An alert as `/api/alerts` and the dashboard show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LiveAlert {
    /// Stable id: the alert rule's `alert_id`, else `rule/warehouse/window_start`.
    pub id: String,
    /// `rule` (an alert rule, with a lifecycle), `zscore` (LOGI-1) or `forecast` (LOGI-2).
    pub kind: &'static str,
    /// The rule's name.
    pub rule: String,
    /// Warehouse.
    pub warehouse: String,
    /// The window that raised it.
    pub window_start: Millis,
    /// What was measured: `delivery_duration`, `order_volume`, `orders` or `temperature`
    /// (several joined by `+` for a multi-metric rule).
    pub metric: String,
    /// Unit of `actual` and `expected`: `ms`, `orders` or `celsius`.
    pub unit: &'static str,
    /// The window's value (of the first metric, for a multi-metric rule).
    pub actual: Option<f64>,
    /// What was expected: the history's mean (z-score), the forecast (LOGI-2), or the median
    /// of the 30 minutes before the window (alert rules); `null` when unknown.
    pub expected: Option<f64>,
    /// Lower end of the expected range (mean - 3σ, the forecast interval, or the 10th
    /// percentile).
    pub lower: Option<f64>,
    /// Upper end of the expected range.
    pub upper: Option<f64>,
    /// The rule's own figures, as text (`z=+7.46 n=30`, `score 0.97 (contextual)`).
    pub detail: String,
    /// In `recent` only: `raised` or `cleared`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<&'static str>,
}

#[derive(Default)]
struct Inner {
    version: u64,
    watermark_ms: Option<Millis>,
    warehouses: BTreeMap<String, Warehouse>,
    /// Alert-rule alerts active now, by id.
    rule_alerts: BTreeMap<String, LiveAlert>,
    /// Per-window alerts, by (window_start, id): pruned as the watermark moves on.
    window_alerts: BTreeMap<(Millis, String), LiveAlert>,
    recent: VecDeque<LiveAlert>,
}

#[derive(Default)]
struct Warehouse {
    rows: BTreeMap<Millis, LiveRow>,
    /// The version of the last removal of a row (a change an update cannot express).
    removed: u64,
}

/// What changed since a version: rows by warehouse, and the warehouses to fetch whole.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Changes {
    /// The view's version now: pass it to the next call.
    #[serde(skip)]
    pub version: u64,
    /// New or changed rows, oldest first, by warehouse.
    pub windows: BTreeMap<String, Vec<LiveRow>>,
    /// Warehouses with more changes than [`MAX_CHANGED_ROWS`] (or than fit in
    /// [`MAX_CHANGED_TOTAL`]), or a removed row: fetch their windows whole.
    pub truncated: Vec<String>,
}

/// The live view; shared between worker 0's sinks (writers) and the HTTP server (readers).
#[derive(Default)]
pub struct LiveView {
    inner: Mutex<Inner>,
}

impl LiveView {
    /// An empty view.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        // A panic while holding the lock leaves plain data behind: keep serving it.
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        f(&mut inner)
    }

    /// Applies window deltas; returns how many rows belonged to untracked warehouses.
    pub fn apply_windows(&self, rows: &[(WindowRow, isize)]) -> u64 {
        self.with(|inner| {
            inner.version += 1;
            let version = inner.version;
            let mut untracked = 0;
            for (row, diff) in rows {
                let Some(warehouse) = inner.warehouse(&row.warehouse) else {
                    untracked += 1;
                    continue;
                };
                if *diff > 0 {
                    let live = warehouse
                        .rows
                        .entry(row.window_start)
                        .or_insert_with(|| LiveRow::empty(row.window_start));
                    live.orders = row.orders;
                    live.delivered = row.delivered;
                    live.mean_duration_ms = row.mean_duration_ms.map(|m| m.get());
                    live.readings = row.readings;
                    live.mean_temp = row.mean_temp.map(|m| m.get());
                    live.changed = version;
                    while warehouse.rows.len() > KEPT_WINDOWS {
                        warehouse.rows.pop_first();
                    }
                } else if warehouse.rows.remove(&row.window_start).is_some() {
                    warehouse.removed = version;
                }
            }
            untracked
        })
    }

    /// Applies LOGI-2 forecast deltas.
    pub fn apply_forecasts(&self, rows: &[(ForecastRow, isize)]) {
        self.with(|inner| {
            inner.version += 1;
            let version = inner.version;
            // A retracted forecast is replaced by its window's next one; only additions show.
            for (row, _) in rows.iter().filter(|(_, diff)| *diff > 0) {
                let Some(warehouse) = inner.warehouse(&row.warehouse) else {
                    continue;
                };
                // A forecast of a window older than every kept one is not kept.
                if warehouse.rows.len() >= KEPT_WINDOWS
                    && warehouse
                        .rows
                        .first_key_value()
                        .is_some_and(|(first, _)| row.window_start < *first)
                {
                    continue;
                }
                let live = warehouse
                    .rows
                    .entry(row.window_start)
                    .or_insert_with(|| LiveRow::empty(row.window_start));
                let band = Band {
                    expected: row.expected.get(),
                    lower: row.lower.get(),
                    upper: row.upper.get(),
                };
                match row.series {
                    Series::Demand => live.orders_forecast = Some(band),
                    Series::DeliveryDuration => live.duration_forecast = Some(band),
                }
                live.changed = version;
            }
        })
    }

    /// Applies LOGI-1 alert deltas (`delivery_duration_z`).
    pub fn apply_zscore_alerts(&self, rows: &[(AlertRow, isize)]) {
        let alerts = rows.iter().map(|(row, diff)| {
            let sigma = row.sigma.get();
            let mu = row.mu.get();
            let alert = LiveAlert {
                id: format!("{}/{}/{}", row.rule, row.warehouse, row.window_start),
                kind: "zscore",
                rule: row.rule.to_string(),
                warehouse: row.warehouse.to_string(),
                window_start: row.window_start,
                metric: "delivery_duration".to_string(),
                unit: "ms",
                actual: Some(row.value.get()),
                expected: Some(mu),
                lower: Some(mu - 3.0 * sigma),
                upper: Some(mu + 3.0 * sigma),
                detail: format!("z={:+.2} over {} windows", row.z.get(), row.n),
                change: None,
            };
            (alert, *diff)
        });
        self.apply_window_alerts(alerts);
    }

    /// Applies LOGI-2 forecast-alert deltas.
    pub fn apply_forecast_alerts(&self, rows: &[(ForecastAlertRow, isize)]) {
        let alerts = rows.iter().map(|(row, diff)| {
            let (metric, unit) = if row.rule == Series::Demand.rule() {
                ("orders", "orders")
            } else {
                ("delivery_duration", "ms")
            };
            let alert = LiveAlert {
                id: format!("{}/{}/{}", row.rule, row.warehouse, row.window_start),
                kind: "forecast",
                rule: row.rule.to_string(),
                warehouse: row.warehouse.to_string(),
                window_start: row.window_start,
                metric: metric.to_string(),
                unit,
                actual: Some(row.actual.get()),
                expected: Some(row.expected.get()),
                lower: Some(row.lower.get()),
                upper: Some(row.upper.get()),
                detail: format!("z={:+.2} ({})", row.z.get(), row.model),
                change: None,
            };
            (alert, *diff)
        });
        self.apply_window_alerts(alerts);
    }

    fn apply_window_alerts(&self, alerts: impl Iterator<Item = (LiveAlert, isize)>) {
        self.with(|inner| {
            for (alert, diff) in alerts {
                let key = (alert.window_start, alert.id.clone());
                if diff > 0 {
                    inner.log(&alert, "raised");
                    inner.window_alerts.insert(key, alert);
                } else if inner.window_alerts.remove(&key).is_some() {
                    inner.log(&alert, "cleared");
                }
            }
        })
    }

    /// Applies alert-rule deltas (`anomaly_alerts.jsonl`): +1 raises, -1 clears.
    pub fn apply_rule_alerts(&self, rows: &[(AnomalyAlertRow, isize)]) {
        self.with(|inner| {
            for (row, diff) in rows {
                let metrics: Vec<&str> = row.values.keys().map(|k| k.as_str()).collect();
                let first = metrics.first().copied().unwrap_or("");
                let unit = match first {
                    "delivery_duration" => "ms",
                    "temperature" => "celsius",
                    _ => "orders",
                };
                let typical = inner
                    .warehouses
                    .get(row.warehouse.as_str())
                    .and_then(|w| typical(w, first, row.window_start));
                let mut detail = format!("score {:.3} ({})", row.score.get(), row.detector);
                for (name, value) in row.values.iter().skip(1) {
                    detail.push_str(&format!(", {name}={:.1}", value.get()));
                }
                let alert = LiveAlert {
                    id: row.alert_id.to_string(),
                    kind: "rule",
                    rule: row.rule.to_string(),
                    warehouse: row.warehouse.to_string(),
                    window_start: row.window_start,
                    metric: metrics.join("+"),
                    unit,
                    actual: row.values.values().next().map(|v| v.get()),
                    expected: typical.map(|t| t.0),
                    lower: typical.map(|t| t.1),
                    upper: typical.map(|t| t.2),
                    detail,
                    change: None,
                };
                if *diff > 0 {
                    inner.log(&alert, "raised");
                    inner.rule_alerts.insert(alert.id.clone(), alert);
                } else if let Some(raised) = inner.rule_alerts.remove(&alert.id) {
                    inner.log(&raised, "cleared");
                }
            }
        })
    }

    /// Sets the dataflow's watermark (event time, ms); per-window alerts expire by it.
    pub fn set_watermark(&self, watermark_ms: Millis) {
        self.with(|inner| {
            inner.watermark_ms = Some(watermark_ms);
            let cutoff = watermark_ms.saturating_sub(ACTIVE_FOR_MS + 60_000);
            while inner
                .window_alerts
                .first_key_value()
                .is_some_and(|((start, _), _)| *start < cutoff)
            {
                inner.window_alerts.pop_first();
            }
        })
    }

    /// The watermark last set.
    pub fn watermark(&self) -> Option<Millis> {
        self.with(|inner| inner.watermark_ms)
    }

    /// The tracked warehouses, sorted.
    pub fn warehouses(&self) -> Vec<String> {
        self.with(|inner| inner.warehouses.keys().cloned().collect())
    }

    /// The last `limit` windows of `warehouse`, oldest first; `None` if it is not tracked.
    pub fn windows(&self, warehouse: &str, limit: usize) -> Option<Vec<LiveRow>> {
        self.with(|inner| {
            let rows = &inner.warehouses.get(warehouse)?.rows;
            let skip = rows.len().saturating_sub(limit);
            Some(rows.values().skip(skip).cloned().collect())
        })
    }

    /// The alerts active now: alert rules' first, then per-window alerts, newest first.
    pub fn active_alerts(&self) -> Vec<LiveAlert> {
        self.with(|inner| {
            let mut active: Vec<LiveAlert> = inner.rule_alerts.values().cloned().collect();
            active.sort_by_key(|alert| std::cmp::Reverse(alert.window_start));
            let cutoff = inner
                .watermark_ms
                .map_or(0, |w| w.saturating_sub(ACTIVE_FOR_MS + 60_000));
            active.extend(
                inner
                    .window_alerts
                    .range((cutoff, String::new())..)
                    .rev()
                    .map(|(_, alert)| alert.clone()),
            );
            active
        })
    }

    /// The last [`RECENT_ALERTS`] alert changes, newest first.
    pub fn recent_alerts(&self) -> Vec<LiveAlert> {
        self.with(|inner| inner.recent.iter().rev().cloned().collect())
    }

    /// Active alerts by rule.
    pub fn active_by_rule(&self) -> BTreeMap<String, i64> {
        let mut by_rule = BTreeMap::new();
        for alert in self.active_alerts() {
            *by_rule.entry(alert.rule).or_insert(0) += 1;
        }
        by_rule
    }

    /// The rows changed since `version` (0: everything).
    pub fn changes_since(&self, version: u64) -> Changes {
        self.with(|inner| {
            let mut changes = Changes {
                version: inner.version,
                ..Changes::default()
            };
            let mut total = 0;
            for (name, warehouse) in &inner.warehouses {
                if warehouse.removed > version {
                    changes.truncated.push(name.clone());
                    continue;
                }
                let mut changed: Vec<LiveRow> = Vec::new();
                for row in warehouse.rows.values().rev() {
                    if row.changed > version {
                        if changed.len() == MAX_CHANGED_ROWS {
                            changed.clear();
                            changes.truncated.push(name.clone());
                            break;
                        }
                        changed.push(row.clone());
                    }
                }
                if total + changed.len() > MAX_CHANGED_TOTAL {
                    changes.truncated.push(name.clone());
                    continue;
                }
                total += changed.len();
                if !changed.is_empty() {
                    changed.reverse();
                    changes.windows.insert(name.clone(), changed);
                }
            }
            changes
        })
    }
}

impl Inner {
    /// The warehouse's series, created if there is room.
    fn warehouse(&mut self, name: &str) -> Option<&mut Warehouse> {
        if !self.warehouses.contains_key(name) {
            if self.warehouses.len() >= MAX_WAREHOUSES {
                return None;
            }
            self.warehouses
                .insert(name.to_string(), Warehouse::default());
        }
        self.warehouses.get_mut(name)
    }

    fn log(&mut self, alert: &LiveAlert, change: &'static str) {
        if self.recent.len() == RECENT_ALERTS {
            self.recent.pop_front();
        }
        let mut entry = alert.clone();
        entry.change = Some(change);
        self.recent.push_back(entry);
    }
}

/// The median and the 10th and 90th percentiles of `metric` over the windows of the
/// [`TYPICAL_HISTORY_MS`] before `window_start`.
fn typical(warehouse: &Warehouse, metric: &str, window_start: Millis) -> Option<(f64, f64, f64)> {
    let from = window_start.saturating_sub(TYPICAL_HISTORY_MS);
    let mut values: Vec<f64> = warehouse
        .rows
        .range(from..window_start)
        .filter_map(|(_, row)| row.metric(metric))
        .collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    Some((at(0.5), at(0.1), at(0.9)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidewatch_operators::event::FiniteF64;

    fn window(warehouse: &str, minute: u64, orders: u64, duration_min: f64) -> WindowRow {
        WindowRow {
            warehouse: warehouse.into(),
            window_start: minute * 60_000,
            window_end: (minute + 1) * 60_000,
            orders,
            delivered: 1,
            mean_duration_ms: FiniteF64::new(duration_min * 60_000.0),
            readings: 0,
            mean_temp: None,
        }
    }

    #[test]
    fn keeps_the_last_windows_and_reports_what_changed() {
        let view = LiveView::new();
        let rows: Vec<_> = (0..400).map(|m| (window("a", m, m, 30.0), 1)).collect();
        view.apply_windows(&rows);
        let kept = view.windows("a", usize::MAX).unwrap();
        assert_eq!(kept.len(), KEPT_WINDOWS);
        assert_eq!(kept[0].window_start, 40 * 60_000);
        // 360 changed rows are more than one update carries.
        let all = view.changes_since(0);
        assert_eq!(all.truncated, vec!["a".to_string()]);
        view.apply_windows(&[
            (window("a", 400, 7, 31.0), 1),
            (window("b", 400, 1, 1.0), 1),
        ]);
        let changes = view.changes_since(all.version);
        assert!(changes.truncated.is_empty());
        assert_eq!(changes.windows["a"].len(), 1);
        assert_eq!(changes.windows["a"][0].orders, 7);
        assert_eq!(changes.windows["b"].len(), 1);
        assert!(view.changes_since(changes.version).windows.is_empty());
        assert_eq!(view.windows("a", 2).unwrap().len(), 2);
        assert!(view.windows("c", 2).is_none());
    }

    #[test]
    fn rule_alerts_live_until_cleared_and_window_alerts_until_they_age() {
        let view = LiveView::new();
        let history: Vec<_> = (0..40).map(|m| (window("a", m, 10, 30.0), 1)).collect();
        view.apply_windows(&history);
        let mut values = BTreeMap::new();
        values.insert("delivery_duration".into(), FiniteF64::new(9e6).unwrap());
        let raised = AnomalyAlertRow {
            rule: "slow".into(),
            alert_id: "00ff".into(),
            warehouse: "a".into(),
            detector: "contextual".into(),
            window_start: 40 * 60_000,
            score: FiniteF64::new(0.99).unwrap(),
            values,
        };
        view.apply_rule_alerts(&[(raised.clone(), 1)]);
        let zscore = AlertRow {
            rule: "delivery_duration_z".into(),
            warehouse: "a".into(),
            window_start: 40 * 60_000,
            value: FiniteF64::new(9e6).unwrap(),
            mu: FiniteF64::new(1.8e6).unwrap(),
            sigma: FiniteF64::new(1e5).unwrap(),
            z: FiniteF64::new(72.0).unwrap(),
            n: 30,
        };
        view.apply_zscore_alerts(&[(zscore, 1)]);
        view.set_watermark(42 * 60_000);
        let active = view.active_alerts();
        assert_eq!(active.len(), 2);
        assert_eq!(active[0].kind, "rule");
        // Expected: the median of the 30 minutes before: every window was 30 minutes.
        assert_eq!(active[0].expected, Some(1.8e6));
        assert_eq!(active[1].expected, Some(1.8e6));
        assert_eq!(view.active_by_rule().len(), 2);
        // The z-score alert ages out; the rule's stays until its -1.
        view.set_watermark(50 * 60_000);
        assert_eq!(view.active_alerts().len(), 1);
        view.apply_rule_alerts(&[(raised, -1)]);
        assert!(view.active_alerts().is_empty());
        let recent = view.recent_alerts();
        assert_eq!(recent.len(), 3);
        assert_eq!(recent[0].change, Some("cleared"));
    }
}
