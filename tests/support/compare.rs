//! Reading change logs (SPEC §4), consolidating them (sum of `diff` per row),
//! and comparing the result with expected rows, floats with relative tolerance.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// Float fields of window rows.
pub const WINDOW_FLOATS: &[&str] = &["mean_duration_ms", "mean_temp"];
/// Float fields of alert rows.
pub const ALERT_FLOATS: &[&str] = &["value", "mu", "sigma", "z"];
/// Relative tolerance for floats (SPEC §4).
pub const REL_TOL: f64 = 1e-6;
/// Absolute tolerance for floats very close to zero.
pub const ABS_TOL: f64 = 1e-9;
/// How many missing / extra rows a mismatch report shows.
const SHOW: usize = 8;

/// Reads a JSON Lines file into values (blank lines are skipped).
pub fn read_jsonl(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read output file {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| {
                panic!("{}:{}: not a JSON row ({e}): {l}", path.display(), i + 1)
            })
        })
        .collect()
}

/// True when `a` and `b` agree within the SPEC tolerance.
pub fn close(a: f64, b: f64) -> bool {
    let d = (a - b).abs();
    a == b || d <= ABS_TOL || d <= REL_TOL * a.abs().max(b.abs())
}

/// A row split into an exact key (canonical JSON, sorted keys, numeric float
/// fields replaced by a placeholder) and the float fields' values.
#[derive(Debug, Clone)]
struct Split {
    key: String,
    floats: Vec<f64>,
    row: Value,
}

/// Drops `time`/`diff` and splits `row` for tolerant comparison.
fn split(row: &Value, float_fields: &[&str]) -> Split {
    let mut obj: Map<String, Value> = row.as_object().cloned().unwrap_or_default();
    obj.remove("time");
    obj.remove("diff");
    let mut floats = Vec::new();
    let mut keyed = obj.clone();
    for name in float_fields {
        if let Some(x) = obj.get(*name).and_then(Value::as_f64) {
            floats.push(x);
            keyed.insert(name.to_string(), Value::String("<float>".into()));
        }
    }
    Split {
        key: canonical(&Value::Object(keyed)),
        floats,
        row: Value::Object(obj),
    }
}

/// JSON text with object keys sorted at every level.
pub fn canonical(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            let parts: Vec<String> = sorted
                .iter()
                .map(|(k, v)| format!("{}:{}", Value::String((*k).clone()), canonical(v)))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", parts.join(","))
        }
        other => other.to_string(),
    }
}

fn floats_close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| close(*x, *y))
}

/// Sums `diff` per row (floats matched with tolerance). Returns the rows whose
/// final count is 1 (without `time`/`diff`), or an error naming rows whose
/// count is neither 0 nor 1, or rows without an integer `diff`.
pub fn consolidate(rows: &[Value], float_fields: &[&str]) -> Result<Vec<Value>, String> {
    let mut groups: BTreeMap<String, Vec<(Split, i64)>> = BTreeMap::new();
    for row in rows {
        let diff = row
            .get("diff")
            .and_then(Value::as_i64)
            .ok_or_else(|| format!("row without an integer `diff`: {row}"))?;
        let s = split(row, float_fields);
        let group = groups.entry(s.key.clone()).or_default();
        match group
            .iter_mut()
            .find(|(g, _)| floats_close(&g.floats, &s.floats))
        {
            Some((_, count)) => *count += diff,
            None => group.push((s, diff)),
        }
    }
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (s, count) in groups.into_values().flatten() {
        match count {
            0 => {}
            1 => out.push(s.row),
            c => bad.push(format!("count {c}: {}", s.row)),
        }
    }
    if bad.is_empty() {
        Ok(out)
    } else {
        Err(format!(
            "{} rows have a final count other than 0 or 1, e.g.:\n  {}",
            bad.len(),
            bad.iter()
                .take(SHOW)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n  ")
        ))
    }
}

/// Compares two row sets (each row at most once), floats with tolerance.
/// `Err` carries a report of the first missing and extra rows.
pub fn compare_rows(
    what: &str,
    actual: &[Value],
    expected: &[Value],
    float_fields: &[&str],
) -> Result<(), String> {
    let mut pending: BTreeMap<String, Vec<Split>> = BTreeMap::new();
    for row in expected {
        let s = split(row, float_fields);
        pending.entry(s.key.clone()).or_default().push(s);
    }
    let mut extra = Vec::new();
    for row in actual {
        let s = split(row, float_fields);
        let group = pending.entry(s.key.clone()).or_default();
        match group
            .iter()
            .position(|e| floats_close(&e.floats, &s.floats))
        {
            Some(i) => {
                group.swap_remove(i);
            }
            None => extra.push(s.row),
        }
    }
    let missing: Vec<Value> = pending.into_values().flatten().map(|s| s.row).collect();
    if missing.is_empty() && extra.is_empty() {
        return Ok(());
    }
    Err(mismatch_report(
        what,
        actual.len(),
        expected.len(),
        &missing,
        &extra,
    ))
}

fn mismatch_report(
    what: &str,
    n_actual: usize,
    n_expected: usize,
    missing: &[Value],
    extra: &[Value],
) -> String {
    let show = |rows: &[Value]| {
        rows.iter()
            .take(SHOW)
            .map(|r| format!("  {}", canonical(r)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        "{what}: {n_actual} rows, expected {n_expected}; {} missing, {} unexpected\n\
         missing (expected but not produced):\n{}\nunexpected (produced but not expected):\n{}",
        missing.len(),
        extra.len(),
        show(missing),
        show(extra)
    )
}

/// Reads the change log at `path`, consolidates it and compares it with `expected`.
pub fn check_change_log(
    path: &Path,
    expected: &[Value],
    float_fields: &[&str],
) -> Result<Vec<Value>, String> {
    let rows = read_jsonl(path);
    let what = path.display().to_string();
    let final_rows = consolidate(&rows, float_fields).map_err(|e| format!("{what}: {e}"))?;
    compare_rows(&what, &final_rows, expected, float_fields)?;
    Ok(final_rows)
}

/// Dead letters of `dlq.jsonl` as a multiset of (reason, raw). A row's
/// multiplicity is its `diff` when present, else 1.
pub fn read_dead_letters(path: &Path) -> BTreeMap<(String, String), i64> {
    let mut out = BTreeMap::new();
    for row in read_jsonl(path) {
        let reason = row.get("reason").and_then(Value::as_str);
        let raw = row.get("raw").and_then(Value::as_str);
        let (Some(reason), Some(raw)) = (reason, raw) else {
            panic!(
                "{}: dead letter without string reason/raw: {row}",
                path.display()
            );
        };
        let n = row.get("diff").and_then(Value::as_i64).unwrap_or(1);
        *out.entry((reason.to_string(), raw.to_string()))
            .or_insert(0) += n;
    }
    out.retain(|_, n| *n != 0);
    out
}

/// Multiset of expected dead letters.
pub fn multiset(letters: &[(String, String)]) -> BTreeMap<(String, String), i64> {
    let mut out = BTreeMap::new();
    for l in letters {
        *out.entry(l.clone()).or_insert(0) += 1;
    }
    out
}

/// Compares the dead letters in `path` with `expected` exactly (as multisets).
pub fn check_dead_letters(path: &Path, expected: &[(String, String)]) -> Result<(), String> {
    let actual = read_dead_letters(path);
    let expected = multiset(expected);
    if actual == expected {
        return Ok(());
    }
    let mut lines = Vec::new();
    for (k, n) in &expected {
        let a = actual.get(k).copied().unwrap_or(0);
        if a != *n {
            lines.push(format!(
                "  expected {n}x, got {a}x: reason={:?} raw={:?}",
                k.0, k.1
            ));
        }
    }
    for (k, a) in &actual {
        if !expected.contains_key(k) {
            lines.push(format!(
                "  expected 0x, got {a}x: reason={:?} raw={:?}",
                k.0, k.1
            ));
        }
    }
    let total = |m: &BTreeMap<_, i64>| m.values().sum::<i64>();
    Err(format!(
        "{}: {} dead letters, expected {}; {} differences, e.g.:\n{}",
        path.display(),
        total(&actual),
        total(&expected),
        lines.len(),
        lines
            .iter()
            .take(2 * SHOW)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    ))
}

/// Checks `DIR/windows.jsonl`, `DIR/alerts.jsonl` and `DIR/dlq.jsonl` against
/// the oracle; panics with every mismatch report. Returns the consolidated
/// (windows, alerts) for cross-run comparison.
pub fn assert_outputs_match(
    dir: &Path,
    oracle: &super::oracle::OracleOutput,
) -> (Vec<Value>, Vec<Value>) {
    let windows = check_change_log(&dir.join("windows.jsonl"), &oracle.windows, WINDOW_FLOATS);
    let alerts = check_change_log(&dir.join("alerts.jsonl"), &oracle.alerts, ALERT_FLOATS);
    let dlq = check_dead_letters(&dir.join("dlq.jsonl"), &oracle.dead_letters);
    let errors: Vec<String> = [
        windows.as_ref().err(),
        alerts.as_ref().err(),
        dlq.as_ref().err(),
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    assert!(
        errors.is_empty(),
        "output in {} differs from the oracle:\n{}",
        dir.display(),
        errors.join("\n\n")
    );
    (
        windows.expect("checked above"),
        alerts.expect("checked above"),
    )
}
