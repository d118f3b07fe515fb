//! `/metrics` and the JSON API during a run, against the oracle.
//!
//! * `metrics_match_the_input_exactly`: a seeded input (valid events, malformed lines, late
//!   events) is piped into `tidewatch run --input -` with stdin left open, so the run is still
//!   going while the test scrapes. The page must pass `promtool check metrics`, and its counters
//!   must equal the oracle's counts exactly: events in by type, dead letters by reason, late
//!   events, lines read; every window `/api/windows` serves must be the oracle's row. Closing
//!   stdin ends the run, whose summary line must agree.
//! * `non_loopback_needs_allow_remote`, `an_explicit_busy_port_is_an_error`: one-line errors.
//!
//! Needs promtool (Debian's prometheus package; `tests/setup.sh` installs it); fails, never
//! skips, without it.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::brokers::free_port;
use support::http::{get, get_as, sample, sum};
use support::oracle::{self, Event};

/// Runs `promtool check metrics` on `page`; panics with its complaints unless it passes.
fn promtool_check(page: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}): install Debian's prometheus package (tests/setup.sh does)")
        });
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(page.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("wait for promtool");
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}\npage:\n{page}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn type_of(event: &Event) -> &'static str {
    match event {
        Event::Order { .. } => "order",
        Event::Delivery { .. } => "delivery",
        Event::Sensor { .. } => "sensor",
    }
}

/// Polls `/metrics` until `done(page)` or `timeout`; returns the last page.
fn scrape_until(addr: &str, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        if let Ok(response) = get(addr, "/metrics") {
            assert_eq!(response.status, 200, "{}", response.body);
            if done(&response.body) || start.elapsed() > timeout {
                return response.body;
            }
        } else if start.elapsed() > timeout {
            panic!("no /metrics at {addr} within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn metrics_match_the_input_exactly() {
    let seed = 7;
    let mut lines = support::inputs::random_input(seed);
    // The seeded input has no late event: append copies of its first valid events, far below
    // the watermark by then.
    let early: Vec<Vec<u8>> = lines
        .iter()
        .filter(|line| oracle::parse_line(line).is_ok())
        .take(5)
        .cloned()
        .collect();
    lines.extend(early);
    let expected = oracle::logi1(&lines, 5_000);
    // The oracle's counts by type and reason.
    let mut events_in: BTreeMap<&str, u64> = BTreeMap::new();
    for line in &lines {
        if let Ok(event) = oracle::parse_line(line) {
            *events_in.entry(type_of(&event)).or_default() += 1;
        }
    }
    let mut letters: BTreeMap<String, u64> = BTreeMap::new();
    for (reason, raw) in &expected.dead_letters {
        *letters.entry(reason.clone()).or_default() += 1;
        if reason == "late" {
            let event = oracle::parse_line(raw.as_bytes()).expect("a late line is valid");
            *events_in.get_mut(type_of(&event)).expect("counted") -= 1;
        }
    }
    assert!(
        letters.len() >= 3,
        "the input exercises few reasons: {letters:?}"
    );
    assert!(letters.contains_key("late"), "{letters:?}");

    let tmp = tempfile::tempdir().expect("temp dir");
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let dashboard_addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["run", "--input", "-", "--workers", "2", "--out"])
        .arg(tmp.path())
        .args(["--metrics-addr", &metrics_addr])
        .args(["--dashboard", &dashboard_addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tidewatch");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    for line in &lines {
        stdin.write_all(line).expect("write a line");
        stdin.write_all(b"\n").expect("write a newline");
    }
    stdin.flush().expect("flush stdin");

    // Everything is read, and every dead letter written; stdin is still open.
    let total_lines = lines.len() as f64;
    let total_letters = expected.dead_letters.len() as f64;
    let page = scrape_until(&metrics_addr, Duration::from_secs(60), |page| {
        sample(page, r#"tidewatch_lines_read_total{source="stdin"}"#) == Some(total_lines)
            && sample(page, r#"tidewatch_outputs_total{kind="dead_letters"}"#)
                == Some(total_letters)
    });
    assert!(
        child.try_wait().expect("poll").is_none(),
        "the run ended with stdin open"
    );
    promtool_check(&page);
    assert_eq!(
        sample(&page, r#"tidewatch_lines_read_total{source="stdin"}"#),
        Some(total_lines),
        "{page}"
    );
    for kind in ["order", "delivery", "sensor"] {
        let labels = format!(r#"tidewatch_events_in_total{{source="stdin",type="{kind}"}}"#);
        assert_eq!(
            sample(&page, &labels),
            Some(events_in[kind] as f64),
            "{kind} events in:\n{page}"
        );
    }
    for (reason, count) in &letters {
        let labels = format!(r#"reason="{reason}""#);
        assert_eq!(
            sum(&page, "tidewatch_dead_letters_total", &[&labels]),
            *count as f64,
            "dead letters {reason}:\n{page}"
        );
    }
    assert_eq!(
        sum(&page, "tidewatch_dead_letters_total", &[]),
        total_letters
    );
    assert_eq!(
        sample(&page, r#"tidewatch_late_events_total{source="stdin"}"#),
        Some(letters["late"] as f64)
    );
    assert_eq!(sample(&page, "tidewatch_workers"), Some(2.0));
    assert!(
        sum(
            &page,
            "tidewatch_operator_activations_total",
            &[r#"operator="IntervalJoin""#]
        ) > 0.0
            || sum(&page, "tidewatch_operator_activations_total", &[]) > 100.0,
        "no operator activations:\n{page}"
    );
    assert!(sample(&page, r#"tidewatch_watermark_seconds{source="stdin"}"#).is_some());
    grafana_queries_name_served_metrics(&page);

    // The live view serves final rows: each is the oracle's.
    let oracle_rows: BTreeMap<(String, u64), &Value> = expected
        .windows
        .iter()
        .map(|row| {
            (
                (
                    row["warehouse"].as_str().unwrap_or_default().to_string(),
                    row["window_start"].as_u64().unwrap_or_default(),
                ),
                row,
            )
        })
        .collect();
    let warehouses = get(&dashboard_addr, "/api/warehouses")
        .expect("warehouses")
        .json();
    let warehouses = warehouses["warehouses"].as_array().expect("a list").clone();
    assert!(!warehouses.is_empty());
    let mut compared = 0;
    for warehouse in &warehouses {
        let name = warehouse.as_str().expect("a name");
        let path = format!("/api/windows?warehouse={}", percent_encode(name));
        let body = get(&dashboard_addr, &path).expect("windows").json();
        assert!(body["seq"].is_u64(), "no tick seq: {body}");
        for row in body["windows"].as_array().expect("windows") {
            let start = row["window_start"].as_u64().expect("window_start");
            let want = oracle_rows
                .get(&(name.to_string(), start))
                .unwrap_or_else(|| panic!("{name} {start}: not an oracle window: {row}"));
            for field in ["orders", "delivered", "readings"] {
                assert_eq!(row[field], want[field], "{name} {start} {field}");
            }
            for field in ["mean_duration_ms", "mean_temp"] {
                match (row[field].as_f64(), want[field].as_f64()) {
                    (Some(a), Some(b)) => {
                        assert!(support::compare::close(a, b), "{name} {start} {field}")
                    }
                    (a, b) => assert_eq!(a, b, "{name} {start} {field}"),
                }
            }
            compared += 1;
        }
    }
    assert!(compared > 0, "the live view served no windows");
    let missing = get(&dashboard_addr, "/api/windows").expect("windows");
    assert_eq!(missing.status, 400, "{}", missing.body);
    let unknown = get(&dashboard_addr, "/api/windows?warehouse=nowhere").expect("windows");
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    // A page that rebinds its own host name to 127.0.0.1 is refused (DNS rebinding).
    for (addr, path) in [
        (&dashboard_addr, "/api/alerts"),
        (&metrics_addr, "/metrics"),
    ] {
        let rebound = get_as(addr, path, "attacker.example:80").expect("an answer");
        assert_eq!(rebound.status, 403, "{path}: {}", rebound.body);
        let localhost = get_as(addr, path, "localhost").expect("an answer");
        assert_eq!(localhost.status, 200, "{path}: {}", localhost.body);
    }
    let alerts = get(&dashboard_addr, "/api/alerts").expect("alerts").json();
    assert!(
        alerts["active"].is_array() && alerts["recent"].is_array(),
        "{alerts}"
    );

    // Closing stdin ends the run; its summary agrees with the last scrape.
    drop(stdin);
    let output = child.wait_with_output().expect("wait for tidewatch");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let events: u64 = events_in.values().sum();
    assert!(
        stderr.contains(&format!(
            "events in {events}, dead letters {}",
            letters.values().sum::<u64>()
        )),
        "summary does not match the metrics: {stderr}"
    );
}

/// Every metric that `dashboards/tidewatch.json` queries is one the page declares, and
/// `dashboards/prometheus.yml` is a valid Prometheus configuration.
fn grafana_queries_name_served_metrics(page: &str) {
    let declared: Vec<&str> = page
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("tidewatch.json")).expect("read the Grafana dashboard"),
    )
    .expect("the Grafana dashboard is JSON");
    let mut expressions = Vec::new();
    collect_expressions(&dashboard, &mut expressions);
    assert!(expressions.len() >= 10, "{expressions:?}");
    let mut queried = 0;
    for expression in &expressions {
        for (start, _) in expression.match_indices("tidewatch_") {
            let name: String = expression[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|base| declared.contains(base))
                .unwrap_or(&name);
            assert!(
                declared.contains(&family),
                "the Grafana dashboard queries {name}, which tidewatch does not serve: {expression}"
            );
            queried += 1;
        }
    }
    assert!(queried >= 10);
    let checked = Command::new("promtool")
        .args(["check", "config"])
        .arg(root.join("prometheus.yml"))
        .output()
        .expect("run promtool");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stdout)
    );
}

fn collect_expressions(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr" | "query", Value::String(expression)) => out.push(expression.clone()),
                    _ => collect_expressions(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_expressions(v, out)),
        _ => {}
    }
}

/// Percent-encodes a query value (the seeded input has a warehouse with a non-ASCII name).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn non_loopback_needs_allow_remote() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let input = tmp.path().join("empty.jsonl");
    std::fs::write(&input, "").expect("write input");
    let input = input.to_str().expect("UTF-8 path");
    let out = tmp.path().to_str().expect("UTF-8 path");
    for (flag, addr) in [
        ("--metrics-addr", "0.0.0.0:9464"),
        ("--dashboard", "0.0.0.0:8080"),
        ("--metrics-addr", "[::]:9464"),
        ("--dashboard", "192.0.2.10:8080"),
    ] {
        support::assert_one_line_error(
            &["run", "--input", input, "--out", out, flag, addr],
            "--allow-remote",
        );
    }
    support::assert_one_line_error(
        &[
            "run",
            "--input",
            input,
            "--out",
            out,
            "--metrics-addr",
            "localhost",
        ],
        "--metrics-addr",
    );
}

#[test]
fn an_explicit_busy_port_is_an_error() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let input = tmp.path().join("empty.jsonl");
    std::fs::write(&input, "").expect("write input");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("address").to_string();
    support::assert_one_line_error(
        &[
            "run",
            "--input",
            input.to_str().expect("UTF-8 path"),
            "--out",
            tmp.path().to_str().expect("UTF-8 path"),
            "--metrics-addr",
            &addr,
        ],
        &format!("cannot listen on {addr}"),
    );
}
