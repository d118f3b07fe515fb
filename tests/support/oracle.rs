//! A deliberately naive reference implementation ("oracle") of the LOGI-1
//! dataflow, written from SPEC.md alone: parse every line with
//! `serde_json::Value`, validate by hand, then compute everything with plain
//! loops over the complete set of events. It knows nothing about timely,
//! watermarks beyond the single-source rule, or incremental maintenance.

use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Tumbling window length (SPEC §3.2).
pub const WINDOW_MS: u64 = 60_000;
/// Maximal order-to-delivery distance for the join (SPEC §3.1).
pub const JOIN_MS: u64 = 604_800_000;
/// Length of the rolling history before a window (SPEC §3.3).
pub const HISTORY_MS: u64 = 1_800_000;
/// Largest accepted `ts` (2^53, the largest integer every JSON reader keeps exact).
pub const MAX_TS: u64 = 1 << 53;
/// The only alert rule of LOGI-1.
pub const RULE: &str = "delivery_duration_z";
/// Accepted delivery statuses.
pub const STATUSES: [&str; 3] = ["picked", "in_transit", "delivered"];

/// One valid event, with exactly the SPEC §1 fields of its type.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Order {
        order_id: String,
        warehouse: String,
        sku: String,
        qty: u64,
        amount: f64,
        ts: u64,
    },
    Delivery {
        order_id: String,
        warehouse: String,
        carrier: String,
        status: String,
        ts: u64,
    },
    Sensor {
        sensor_id: String,
        warehouse: String,
        metric: String,
        value: f64,
        ts: u64,
    },
}

impl Event {
    /// The event time.
    pub fn ts(&self) -> u64 {
        match self {
            Event::Order { ts, .. } | Event::Delivery { ts, .. } | Event::Sensor { ts, .. } => *ts,
        }
    }

    /// A string that is equal for two events exactly when they are duplicates
    /// (equal field by field, numbers compared as numbers).
    pub fn dedup_key(&self) -> String {
        match self {
            Event::Order {
                order_id,
                warehouse,
                sku,
                qty,
                amount,
                ts,
            } => format!(
                "order|{order_id:?}|{warehouse:?}|{sku:?}|{qty}|{}|{ts}",
                float_key(*amount)
            ),
            Event::Delivery {
                order_id,
                warehouse,
                carrier,
                status,
                ts,
            } => format!("delivery|{order_id:?}|{warehouse:?}|{carrier:?}|{status:?}|{ts}"),
            Event::Sensor {
                sensor_id,
                warehouse,
                metric,
                value,
                ts,
            } => format!(
                "sensor|{sensor_id:?}|{warehouse:?}|{metric:?}|{}|{ts}",
                float_key(*value)
            ),
        }
    }
}

/// Bit pattern of a float with -0.0 folded onto 0.0, so `==` and the key agree.
fn float_key(x: f64) -> u64 {
    if x == 0.0 {
        0
    } else {
        x.to_bits()
    }
}

/// Counters that the tests use to check that an input exercises LOGI-1.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OracleStats {
    /// Lines that parsed into a valid event (including late ones and duplicates).
    pub valid: usize,
    /// Valid, on-time events dropped because an equal event was seen before.
    pub duplicates: usize,
    /// Valid events dead-lettered as `late`.
    pub late: usize,
    /// Joined (order, delivered delivery) pairs.
    pub joins: usize,
    /// Alerts whose |z| is within 1e-6 of the threshold 3 (fragile to compare).
    pub borderline_z: usize,
}

/// Everything LOGI-1 produces, in final (consolidated) form.
#[derive(Debug, Clone, Default)]
pub struct OracleOutput {
    /// One row per existing window, SPEC §4 shape without `time`/`diff`.
    pub windows: Vec<Value>,
    /// One row per alert, SPEC §4 shape without `time`/`diff`.
    pub alerts: Vec<Value>,
    /// `(reason, raw line)` per dead-lettered line, in input order.
    pub dead_letters: Vec<(String, String)>,
    /// Counters for sanity checks.
    pub stats: OracleStats,
}

/// Runs LOGI-1 over `lines` (one source, read in order) with disorder bound `disorder_ms`.
pub fn logi1(lines: &[Vec<u8>], disorder_ms: u64) -> OracleOutput {
    let mut out = OracleOutput::default();
    let events = admit_events(lines, disorder_ms, &mut out);
    let pairs = join_deliveries(&events);
    out.stats.joins = pairs.len();
    let windows = build_windows(&events, &pairs);
    out.windows = windows
        .iter()
        .map(|((warehouse, start), acc)| window_row(warehouse, *start, acc))
        .collect();
    let (alerts, borderline) = compute_alerts(&windows);
    out.alerts = alerts;
    out.stats.borderline_z = borderline;
    out
}

/// The dead-letter `raw` text of a line: the bytes read, as (lossy) UTF-8.
pub fn raw_text(line: &[u8]) -> String {
    String::from_utf8_lossy(line).into_owned()
}

/// Validates, applies the lateness rule and removes duplicates, in input order.
/// Dead letters and counters are recorded in `out`; the admitted events are returned.
fn admit_events(lines: &[Vec<u8>], disorder_ms: u64, out: &mut OracleOutput) -> Vec<Event> {
    let mut max_ts: Option<u64> = None;
    let mut seen: HashSet<String> = HashSet::new();
    let mut events = Vec::new();
    for line in lines {
        let event = match parse_line(line) {
            Ok(event) => event,
            Err(reason) => {
                out.dead_letters.push((reason, raw_text(line)));
                continue;
            }
        };
        out.stats.valid += 1;
        let ts = event.ts();
        if let Some(max) = max_ts {
            if ts < max.saturating_sub(disorder_ms) {
                out.stats.late += 1;
                out.dead_letters.push(("late".to_string(), raw_text(line)));
                continue;
            }
        }
        max_ts = Some(max_ts.map_or(ts, |m| m.max(ts)));
        if seen.insert(event.dedup_key()) {
            events.push(event);
        } else {
            out.stats.duplicates += 1;
        }
    }
    events
}

/// Parses and validates one line; `Err` carries the dead-letter reason.
pub fn parse_line(line: &[u8]) -> Result<Event, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not_json".to_string())?;
    let value: Value = serde_json::from_str(text).map_err(|_| "not_json".to_string())?;
    let obj = match value {
        Value::Object(obj) => obj,
        _ => return Err("not_object".into()),
    };
    let kind = obj.get("type").ok_or("missing_field:type")?;
    match kind.as_str() {
        Some("order") => parse_order(&obj),
        Some("delivery") => parse_delivery(&obj),
        Some("sensor") => parse_sensor(&obj),
        _ => Err("unknown_type".into()),
    }
}

fn parse_order(obj: &Map<String, Value>) -> Result<Event, String> {
    Ok(Event::Order {
        order_id: order_id_field(obj)?,
        warehouse: string_field(obj, "warehouse")?,
        sku: string_field(obj, "sku")?,
        qty: qty_field(obj)?,
        amount: amount_field(obj)?,
        ts: ts_field(obj)?,
    })
}

fn parse_delivery(obj: &Map<String, Value>) -> Result<Event, String> {
    Ok(Event::Delivery {
        order_id: order_id_field(obj)?,
        warehouse: string_field(obj, "warehouse")?,
        carrier: string_field(obj, "carrier")?,
        status: status_field(obj)?,
        ts: ts_field(obj)?,
    })
}

fn parse_sensor(obj: &Map<String, Value>) -> Result<Event, String> {
    Ok(Event::Sensor {
        sensor_id: string_field(obj, "sensor_id")?,
        warehouse: string_field(obj, "warehouse")?,
        metric: string_field(obj, "metric")?,
        value: value_field(obj)?,
        ts: ts_field(obj)?,
    })
}

fn bad(name: &str) -> String {
    format!("bad_value:{name}")
}

/// The field `name`, or `missing_field:<name>`.
fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a Value, String> {
    obj.get(name).ok_or_else(|| format!("missing_field:{name}"))
}

/// Any JSON string.
fn string_field(obj: &Map<String, Value>, name: &str) -> Result<String, String> {
    match field(obj, name)? {
        Value::String(s) => Ok(s.clone()),
        _ => Err(bad(name)),
    }
}

/// A non-empty JSON string (for orders and deliveries alike).
fn order_id_field(obj: &Map<String, Value>) -> Result<String, String> {
    let id = string_field(obj, "order_id")?;
    if id.is_empty() {
        return Err(bad("order_id"));
    }
    Ok(id)
}

/// A JSON integer >= 1 (`1.0` and booleans are rejected).
fn qty_field(obj: &Map<String, Value>) -> Result<u64, String> {
    match field(obj, "qty")?.as_u64() {
        Some(q) if q >= 1 => Ok(q),
        _ => Err(bad("qty")),
    }
}

/// Any JSON number >= 0.
fn amount_field(obj: &Map<String, Value>) -> Result<f64, String> {
    match field(obj, "amount")?.as_f64() {
        Some(a) if a >= 0.0 => Ok(a),
        _ => Err(bad("amount")),
    }
}

/// Any finite JSON number.
fn value_field(obj: &Map<String, Value>) -> Result<f64, String> {
    match field(obj, "value")?.as_f64() {
        Some(v) if v.is_finite() => Ok(v),
        _ => Err(bad("value")),
    }
}

/// One of the three status strings.
fn status_field(obj: &Map<String, Value>) -> Result<String, String> {
    let status = string_field(obj, "status")?;
    if !STATUSES.contains(&status.as_str()) {
        return Err(bad("status"));
    }
    Ok(status)
}

/// A JSON integer in [0, 2^53].
fn ts_field(obj: &Map<String, Value>) -> Result<u64, String> {
    match field(obj, "ts")?.as_u64() {
        Some(ts) if ts <= MAX_TS => Ok(ts),
        _ => Err(bad("ts")),
    }
}

/// A joined (order, delivered delivery) pair, as far as windows need it.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    /// The order's warehouse.
    pub warehouse: String,
    /// The delivery's event time.
    pub delivery_ts: u64,
    /// delivery.ts - order.ts.
    pub duration_ms: u64,
}

/// SPEC §3.1: every delivered delivery with every order of the same id within 7 days.
pub fn join_deliveries(events: &[Event]) -> Vec<Pair> {
    let mut orders: HashMap<&str, Vec<(&str, u64)>> = HashMap::new();
    for event in events {
        if let Event::Order {
            order_id,
            warehouse,
            ts,
            ..
        } = event
        {
            orders
                .entry(order_id.as_str())
                .or_default()
                .push((warehouse.as_str(), *ts));
        }
    }
    let mut pairs = Vec::new();
    for event in events {
        let Event::Delivery {
            order_id,
            status,
            ts: d_ts,
            ..
        } = event
        else {
            continue;
        };
        if status != "delivered" {
            continue;
        }
        for (warehouse, o_ts) in orders.get(order_id.as_str()).into_iter().flatten() {
            if *o_ts <= *d_ts && *d_ts <= *o_ts + JOIN_MS {
                pairs.push(Pair {
                    warehouse: warehouse.to_string(),
                    delivery_ts: *d_ts,
                    duration_ms: *d_ts - *o_ts,
                });
            }
        }
    }
    pairs
}

/// Per-(warehouse, window) sums.
#[derive(Debug, Clone, Default)]
pub struct WindowAcc {
    pub orders: u64,
    pub delivered: u64,
    pub duration_sum: u128,
    pub readings: u64,
    pub temp_sum: f64,
}

impl WindowAcc {
    /// Mean delivery duration, `None` when nothing was delivered.
    pub fn mean_duration(&self) -> Option<f64> {
        (self.delivered > 0).then(|| self.duration_sum as f64 / self.delivered as f64)
    }

    /// Mean temperature, `None` without readings.
    pub fn mean_temp(&self) -> Option<f64> {
        (self.readings > 0).then(|| self.temp_sum / self.readings as f64)
    }
}

/// Start of the tumbling window containing `ts`.
pub fn window_start(ts: u64) -> u64 {
    ts / WINDOW_MS * WINDOW_MS
}

/// SPEC §3.2: accumulates orders, joined pairs and temperature readings per window.
pub fn build_windows(events: &[Event], pairs: &[Pair]) -> BTreeMap<(String, u64), WindowAcc> {
    let mut windows: BTreeMap<(String, u64), WindowAcc> = BTreeMap::new();
    for event in events {
        match event {
            Event::Order { warehouse, ts, .. } => {
                let acc = windows
                    .entry((warehouse.clone(), window_start(*ts)))
                    .or_default();
                acc.orders += 1;
            }
            Event::Sensor {
                warehouse,
                metric,
                value,
                ts,
                ..
            } if metric == "temperature" => {
                let acc = windows
                    .entry((warehouse.clone(), window_start(*ts)))
                    .or_default();
                acc.readings += 1;
                acc.temp_sum += value;
            }
            _ => {}
        }
    }
    for pair in pairs {
        let acc = windows
            .entry((pair.warehouse.clone(), window_start(pair.delivery_ts)))
            .or_default();
        acc.delivered += 1;
        acc.duration_sum += u128::from(pair.duration_ms);
    }
    windows
}

/// The SPEC §4 window row (without `time`/`diff`).
pub fn window_row(warehouse: &str, start: u64, acc: &WindowAcc) -> Value {
    json!({
        "warehouse": warehouse,
        "window_start": start,
        "window_end": start + WINDOW_MS,
        "orders": acc.orders,
        "delivered": acc.delivered,
        "mean_duration_ms": acc.mean_duration(),
        "readings": acc.readings,
        "mean_temp": acc.mean_temp(),
    })
}

/// SPEC §3.3: one alert row per window whose mean duration is a > 3 sigma outlier
/// against at least 10 earlier windows of the last 30 minutes. Also returns how
/// many alerts (or near-alerts) have |z| within 1e-6 of 3.
pub fn compute_alerts(windows: &BTreeMap<(String, u64), WindowAcc>) -> (Vec<Value>, usize) {
    let mut alerts = Vec::new();
    let mut borderline = 0;
    for ((warehouse, start), acc) in windows {
        let Some(value) = acc.mean_duration() else {
            continue;
        };
        let history = history_means(windows, warehouse, *start);
        let n = history.len();
        if n < 10 || history.iter().all(|m| *m == history[0]) {
            continue;
        }
        let mu = history.iter().sum::<f64>() / n as f64;
        let variance = history.iter().map(|m| (m - mu) * (m - mu)).sum::<f64>() / n as f64;
        let sigma = variance.sqrt();
        let z = (value - mu) / sigma;
        if (z.abs() - 3.0).abs() < 1e-6 {
            borderline += 1;
        }
        if z.abs() > 3.0 {
            alerts.push(json!({
                "rule": RULE,
                "warehouse": warehouse,
                "window_start": start,
                "value": value,
                "mu": mu,
                "sigma": sigma,
                "z": z,
                "n": n,
            }));
        }
    }
    (alerts, borderline)
}

/// Mean durations of the windows of `warehouse` with deliveries that start in
/// [start - 30 min, start).
fn history_means(
    windows: &BTreeMap<(String, u64), WindowAcc>,
    warehouse: &str,
    start: u64,
) -> Vec<f64> {
    let lo = start.saturating_sub(HISTORY_MS);
    windows
        .range((warehouse.to_string(), lo)..(warehouse.to_string(), start))
        .filter_map(|(_, acc)| acc.mean_duration())
        .collect()
}
