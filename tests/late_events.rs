//! Late events (SPEC §2): an event whose ts is below the watermark when it
//! arrives goes to the dead-letter output with reason `late` and changes no
//! result. Checked on a small hand-made input at one worker, against the same
//! input without the late line and against the oracle.

mod support;

use serde_json::{json, Value};
use std::path::Path;
use support::compare::{self, ALERT_FLOATS, WINDOW_FLOATS};
use support::inputs::write_lines;
use support::oracle::{logi1, raw_text};

/// The SPEC default disorder bound (the binary runs with its default).
const DISORDER: u64 = 5_000;
/// A window start.
const T: u64 = 1_764_288_000_000;

fn order(id: &str, ts: u64) -> Vec<u8> {
    json!({"type":"order","order_id":id,"warehouse":"wh-late","sku":"sku-9","qty":3,"amount":12.25,"ts":ts})
        .to_string()
        .into_bytes()
}

fn delivered(id: &str, ts: u64) -> Vec<u8> {
    json!({"type":"delivery","order_id":id,"warehouse":"wh-late","carrier":"c-1","status":"delivered","ts":ts})
        .to_string()
        .into_bytes()
}

fn temperature(value: f64, ts: u64) -> Vec<u8> {
    json!({"type":"sensor","sensor_id":"s-1","warehouse":"wh-late","metric":"temperature","value":value,"ts":ts})
        .to_string()
        .into_bytes()
}

/// Malformed lines: one per dead-letter reason family.
fn malformed() -> Vec<Vec<u8>> {
    vec![
        b"not json".to_vec(),
        Vec::new(),
        b"{\"type\":\"order\",\"warehouse\":\"\xff\"}".to_vec(),
        b"[1]".to_vec(),
        b"{\"type\":\"refund\",\"ts\":1}".to_vec(),
        b"{\"order_id\":\"x\"}".to_vec(),
        br#"{"type":"order","order_id":"m","warehouse":"wh-late","sku":"s","qty":0,"amount":1,"ts":1764288000000}"#.to_vec(),
        br#"{"type":"sensor","sensor_id":"s","warehouse":"wh-late","metric":"temperature","value":1,"ts":1.5}"#.to_vec(),
    ]
}

/// The input: 14 minutes of one delivered order per minute (durations
/// 1000/1200 alternating, 1500 at minute 10, so an alert fires) with a
/// temperature reading each minute, malformed lines in between, one reading
/// exactly at the watermark (on time) and one late delivered delivery that
/// would join and change both a window and the alert if it were accepted.
/// Returns the lines and the index of the late line.
fn late_input() -> (Vec<Vec<u8>>, usize) {
    let mut lines = Vec::new();
    let mut bad = malformed().into_iter();
    let mut late_at = 0;
    for m in 0..14u64 {
        let d_ts = T + m * 60_000 + 30_000;
        let duration = match m {
            10 => 1_500,
            m if m % 2 == 0 => 1_000,
            _ => 1_200,
        };
        let id = format!("o-{m}");
        lines.push(temperature(20.0 + m as f64 / 4.0, d_ts - 10_000));
        lines.push(order(&id, d_ts - duration));
        lines.extend(bad.next());
        lines.push(delivered(&id, d_ts));
        if m == 11 {
            // max ts is d_ts: the watermark is d_ts - 5000.
            lines.push(temperature(-1.5, d_ts - DISORDER)); // exactly at the watermark: on time
            late_at = lines.len();
            lines.push(delivered("o-5", T + 5 * 60_000 + 45_000)); // late
        }
    }
    (lines, late_at)
}

/// Runs the binary at one worker on `lines` in a fresh directory under `tmp`.
fn run_one_worker(tmp: &Path, name: &str, lines: &[Vec<u8>]) -> std::path::PathBuf {
    let input = tmp.join(format!("{name}.jsonl"));
    write_lines(&input, lines);
    let out = tmp.join(format!("{name}-out"));
    support::run_cli(&input, &out, 1, None);
    out
}

/// Consolidated (windows, alerts) of a run directory.
fn consolidated(dir: &Path) -> (Vec<Value>, Vec<Value>) {
    let windows = compare::read_jsonl(&dir.join("windows.jsonl"));
    let alerts = compare::read_jsonl(&dir.join("alerts.jsonl"));
    (
        compare::consolidate(&windows, WINDOW_FLOATS).unwrap_or_else(|e| panic!("{e}")),
        compare::consolidate(&alerts, ALERT_FLOATS).unwrap_or_else(|e| panic!("{e}")),
    )
}

#[test]
fn oracle_sees_exactly_one_late_line() {
    let (lines, late_at) = late_input();
    let with = logi1(&lines, DISORDER);
    let mut without_lines = lines.clone();
    without_lines.remove(late_at);
    let without = logi1(&without_lines, DISORDER);
    assert_eq!(with.stats.late, 1);
    assert_eq!(without.stats.late, 0);
    assert_eq!(
        with.alerts.len(),
        1,
        "the planted jump alerts: {:?}",
        with.alerts
    );
    assert_eq!(with.dead_letters.len(), malformed().len() + 1);
    assert!(
        compare::compare_rows("windows", &with.windows, &without.windows, WINDOW_FLOATS).is_ok()
    );
    assert!(compare::compare_rows("alerts", &with.alerts, &without.alerts, ALERT_FLOATS).is_ok());
    // Accepting the late line would have changed both windows and alerts.
    let accepted = logi1(&late_line_moved_in_time(&lines, late_at), DISORDER);
    assert_eq!(accepted.stats.late, 0);
    assert!(compare::compare_rows("w", &accepted.windows, &with.windows, WINDOW_FLOATS).is_err());
    assert!(compare::compare_rows("a", &accepted.alerts, &with.alerts, ALERT_FLOATS).is_err());
}

/// The same input with the late line moved to where it would be on time.
fn late_line_moved_in_time(lines: &[Vec<u8>], late_at: usize) -> Vec<Vec<u8>> {
    let mut moved = lines.to_vec();
    let late = moved.remove(late_at);
    let delivery_of_minute_5 = moved
        .iter()
        .position(|l| *l == delivered("o-5", T + 5 * 60_000 + 30_000))
        .expect("minute 5 delivery is in the input");
    moved.insert(delivery_of_minute_5 + 1, late);
    moved
}

#[test]
fn late_event_is_dead_lettered_and_changes_nothing() {
    let (lines, late_at) = late_input();
    let expected = logi1(&lines, DISORDER);
    let tmp = tempfile::tempdir().expect("create temp dir");

    let with_late = run_one_worker(tmp.path(), "with-late", &lines);
    compare::assert_outputs_match(&with_late, &expected);
    let dead = compare::read_dead_letters(&with_late.join("dlq.jsonl"));
    let key = ("late".to_string(), raw_text(&lines[late_at]));
    assert_eq!(
        dead.get(&key),
        Some(&1),
        "the late line is dead-lettered as late: {dead:?}"
    );

    let mut without_lines = lines.clone();
    without_lines.remove(late_at);
    let without_late = run_one_worker(tmp.path(), "without-late", &without_lines);
    let (w1, a1) = consolidated(&with_late);
    let (w2, a2) = consolidated(&without_late);
    for (what, a, b, floats) in [
        ("windows", &w1, &w2, WINDOW_FLOATS),
        ("alerts", &a1, &a2, ALERT_FLOATS),
    ] {
        if let Err(report) = compare::compare_rows(what, a, b, floats) {
            panic!("the late line changed a result:\n{report}");
        }
    }
}

#[test]
fn dead_letter_rows_are_malformed_plus_late() {
    let (lines, _) = late_input();
    let tmp = tempfile::tempdir().expect("create temp dir");
    let out = run_one_worker(tmp.path(), "count", &lines);
    let rows = compare::read_jsonl(&out.join("dlq.jsonl"));
    assert_eq!(
        rows.len(),
        malformed().len() + 1,
        "one dead-letter row per malformed line plus one for the late line: {rows:#?}"
    );
    let late = rows.iter().filter(|r| r["reason"] == "late").count();
    assert_eq!(late, 1, "{rows:#?}");
}
