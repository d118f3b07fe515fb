//! `tidewatch bench` from the command line: a latency run, a sweep and throughput mode write
//! the files they promise, consistent with each other; wrong usage is one line.
//!
//! These tests check structure and accounting, never timing: they hold on a loaded machine.

use std::path::Path;

use tidewatch_benchmarks::hlog::read_interval_log;

mod support;
use support::{assert_one_line_error, tidewatch};

fn succeed(args: &[&str]) -> String {
    let output = tidewatch(args);
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_latency_run_writes_its_report_and_interval_logs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("bench");
    let out_arg = out.to_str().expect("utf-8 path");
    let stdout = succeed(&[
        "bench",
        "--rate",
        "20k",
        "--duration",
        "1500ms",
        "--warmup",
        "200ms",
        "--workers",
        "2",
        "--out",
        out_arg,
        "-q",
    ]);
    for needle in [
        "offered 20000 events/s",
        "processing:",
        "event-to-alert:",
        "RSS",
    ] {
        assert!(stdout.contains(needle), "{needle:?} not in\n{stdout}");
    }
    let report = json(&out.join("report.json"));
    assert_eq!(report["rate_offered"], 20_000.0);
    assert_eq!(report["workers"], 2);
    assert_eq!(report["events_due"], 30_000);
    for section in ["processing", "event_to_alert"] {
        let count = report[section]["count"].as_u64().expect("count");
        assert!(count > 0, "{section}: no samples");
        let p50 = report[section]["p50_us"].as_u64().expect("p50");
        let p99 = report[section]["p99_us"].as_u64().expect("p99");
        let max = report[section]["max_us"].as_u64().expect("max");
        assert!(p50 <= p99 && p99 <= max, "{section}: {}", report[section]);
        // The interval log holds the same samples as the report.
        let log = std::fs::read(out.join(format!("{section}.hlog"))).expect("hlog");
        let intervals = read_interval_log(&log).expect("a valid interval log");
        assert!(intervals.iter().all(|i| i.tag.as_deref() == Some(section)));
        let logged: u64 = intervals.iter().map(|i| i.histogram.len()).sum();
        assert_eq!(logged, count, "{section}");
    }
    // The rows the sink wrote are SPEC change-log lines.
    let windows = std::fs::read_to_string(out.join("windows.jsonl")).expect("windows");
    let rows = windows.lines().count() as u64;
    assert_eq!(rows, report["windows"].as_u64().expect("windows"));
    let first: serde_json::Value =
        serde_json::from_str(windows.lines().next().expect("a row")).expect("json");
    assert_eq!(first["diff"], 1);
}

#[test]
fn a_sweep_writes_every_rate_and_the_plot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("sweep");
    let out_arg = out.to_str().expect("utf-8 path");
    let stdout = succeed(&[
        "bench",
        "--sweep",
        "10k,20k",
        "--duration",
        "1s",
        "--warmup",
        "200ms",
        "--workers",
        "2",
        "--slo",
        "10ms",
        "--out",
        out_arg,
        "-q",
    ]);
    assert!(stdout.contains("within SLO"), "{stdout}");
    let sweep = json(&out.join("sweep.json"));
    let points = sweep["points"].as_array().expect("points");
    let rates: Vec<f64> = points
        .iter()
        .map(|p| p["rate_offered"].as_f64().expect("rate"))
        .collect();
    assert_eq!(rates, vec![10_000.0, 20_000.0]);
    assert_eq!(sweep["slo_p99_us"], 10_000);
    assert!(sweep.get("highest_rate_within_slo").is_some());
    for rate in ["10000", "20000"] {
        let report = json(&out.join(format!("rate-{rate}")).join("report.json"));
        assert_eq!(report["rate_offered"].to_string(), format!("{rate}.0"));
    }
    let svg = std::fs::read_to_string(out.join("sweep.svg")).expect("svg");
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
    assert_eq!(svg.matches("<polyline").count(), 6);
}

#[test]
fn throughput_mode_reads_memory_and_file_at_each_worker_count() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("throughput");
    let out_arg = out.to_str().expect("utf-8 path");
    let stdout = succeed(&[
        "bench",
        "--throughput",
        "--events",
        "40000",
        "--workers",
        "2",
        "--out",
        out_arg,
        "-q",
    ]);
    assert!(stdout.contains("events/s"), "{stdout}");
    let rows = json(&out.join("throughput.json"));
    let rows = rows.as_array().expect("rows");
    let runs: Vec<(String, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["source"].as_str().expect("source").to_string(),
                r["workers"].as_u64().expect("workers"),
            )
        })
        .collect();
    let expected: Vec<(String, u64)> = [("memory", 1), ("memory", 2), ("file", 1), ("file", 2)]
        .iter()
        .map(|(s, w)| (s.to_string(), *w))
        .collect();
    assert_eq!(runs, expected);
    for row in rows {
        assert_eq!(row["lines"], 40_000, "{row}");
    }
    // Same input, same results, whatever the source and worker count.
    let windows: Vec<&serde_json::Value> = rows.iter().map(|r| &r["windows"]).collect();
    assert!(windows.windows(2).all(|w| w[0] == w[1]), "{windows:?}");
}

#[test]
fn wrong_bench_usage_is_one_line() {
    for (args, needle) in [
        (vec!["bench", "--rate", "fast"], "fast"),
        (vec!["bench", "--duration", "soon"], "soon"),
        (vec!["bench", "--sweep", "10k,x"], "x"),
        (
            vec!["bench", "--workers", "2", "--warehouses", "1"],
            "--warehouses",
        ),
        (vec!["bench", "--duration", "0s"], "--duration"),
        (vec!["bench", "--time-grid-ms", "7"], "time grid"),
        (
            vec![
                "run",
                "--fast",
                "--minutes",
                "1",
                "--time-grid-ms",
                "7",
                "-q",
            ],
            "--time-grid-ms",
        ),
        (
            vec![
                "bench",
                "--throughput",
                "--input",
                "/nonexistent/events.jsonl",
            ],
            "/nonexistent/events.jsonl",
        ),
    ] {
        assert_one_line_error(&args, needle);
    }
}
