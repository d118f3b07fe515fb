//! LOGI-2 end to end through `tidewatch run --logi2` on the built-in generator's traffic:
//! its alerts fire on the injected incidents (demand surges, slow deliveries) and seldom
//! elsewhere, its outputs do not depend on the worker count, and LOGI-1's outputs are
//! byte-for-byte what they are without it.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use tidewatch_connectors::generator::{write_jsonl, GeneratorConfig, IncidentKind};
use tidewatch_operators::forecast::model::ModelKind;

const HOUR_MS: u64 = 3_600_000;

/// Three warehouses, so that every surge lands on wh-03 and every slow-deliveries incident on
/// wh-01 (the default schedule steps by 3); 14 hours of traffic.
fn config() -> GeneratorConfig {
    GeneratorConfig {
        seed: 11,
        warehouses: 3,
        ..GeneratorConfig::default()
    }
    .with_default_incidents()
}

fn run(input: &Path, out: &Path, workers: usize, logi2: bool) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidewatch"));
    command.args([
        "run",
        "--quiet",
        "--workers",
        &workers.to_string(),
        "--input",
    ]);
    command.arg(input).arg("--out").arg(out);
    if logi2 {
        command.arg("--logi2");
    }
    let output = command.output().expect("run tidewatch");
    assert!(
        output.status.success(),
        "tidewatch failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn rows(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON row"))
        .collect()
}

fn sorted_lines(path: &Path) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

#[test]
fn alerts_fire_on_the_incidents_and_logi1_is_unchanged() {
    let config = config();
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("events.jsonl");
    let events_per_hour = 3 * 260 * 60;
    let mut file = std::io::BufWriter::new(std::fs::File::create(&input).expect("create input"));
    write_jsonl(&config, 14 * events_per_hour, &mut file).expect("write input");
    drop(file);
    let end_ms = config.start_ms + 13 * HOUR_MS; // safely inside the generated traffic

    let plain = dir.path().join("plain");
    let with1 = dir.path().join("logi2-1");
    let with3 = dir.path().join("logi2-3");
    run(&input, &plain, 2, false);
    run(&input, &with1, 1, true);
    run(&input, &with3, 3, true);

    // LOGI-1 is untouched, and LOGI-2 does not depend on the worker count.
    for file in ["windows.jsonl", "alerts.jsonl", "dlq.jsonl"] {
        assert_eq!(
            sorted_lines(&plain.join(file)),
            sorted_lines(&with1.join(file)),
            "{file}"
        );
    }
    assert!(!plain.join("forecasts.jsonl").exists());
    for file in ["forecasts.jsonl", "forecast_alerts.jsonl"] {
        assert_eq!(
            sorted_lines(&with1.join(file)),
            sorted_lines(&with3.join(file)),
            "{file}"
        );
    }

    let forecasts = rows(&with1.join("forecasts.jsonl"));
    let alerts = rows(&with1.join("forecast_alerts.jsonl"));
    // Two series per warehouse and window (duration once deliveries flow).
    assert!(
        forecasts.len() > 3 * 60 * 12,
        "{} forecast rows",
        forecasts.len()
    );
    for row in &forecasts {
        let (lower, expected, upper) = (
            row["lower"].as_f64().expect("lower"),
            row["expected"].as_f64().expect("expected"),
            row["upper"].as_f64().expect("upper"),
        );
        assert!(lower <= expected && expected <= upper, "{row}");
        assert_eq!(row["diff"], 1);
    }

    // Deliveries ramp up over the first three hours of generated traffic (only fast parcels
    // have arrived before), and the first incident, at 03:00, has 4 to 5 deliveries a minute:
    // its window means are too noisy for a 4-sigma interval (z about 2.7), so incidents are
    // checked from 03:30 on, once the series are established.
    let warm_ms = config.start_ms + 7 * HOUR_MS / 2;
    let incidents: Vec<_> = config
        .incidents
        .iter()
        .filter(|i| i.end_ms + HOUR_MS / 2 <= end_ms)
        .collect();
    let checked_incidents = incidents.iter().filter(|i| i.start_ms >= warm_ms);
    let rule_of = |kind: &IncidentKind| match kind {
        IncidentKind::DemandSurge { .. } => Some("demand_forecast_deviation"),
        IncidentKind::SlowDeliveries { .. } => Some("delivery_duration_forecast_deviation"),
        IncidentKind::TemperatureExcursion { .. } => None,
    };
    let mut checked = 0;
    for incident in checked_incidents {
        let Some(rule) = rule_of(&incident.kind) else {
            continue;
        };
        let warehouse = format!("wh-{:02}", incident.warehouse + 1);
        let hit = alerts.iter().any(|a| {
            let start = a["window_start"].as_u64().expect("window_start");
            a["rule"] == rule
                && a["warehouse"] == warehouse.as_str()
                && (incident.start_ms..incident.end_ms).contains(&start)
        });
        assert!(hit, "no {rule} alert for {incident:?}");
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} incidents checked");

    // Alerts explain themselves: expected, interval, actual, model and score.
    for alert in &alerts {
        for field in [
            "expected", "lower", "upper", "actual", "model", "mase", "z", "time",
        ] {
            assert!(alert.get(field).is_some(), "{field} missing in {alert}");
        }
    }

    // False alarms: alerts of a rule outside its incidents (and the half hour after, when the
    // series returns to normal and the backlog of stuck parcels is delivered).
    let explained = |alert: &Value| {
        let start = alert["window_start"].as_u64().expect("window_start");
        incidents.iter().any(|i| {
            rule_of(&i.kind).is_some_and(|rule| alert["rule"] == rule)
                && alert["warehouse"] == format!("wh-{:02}", i.warehouse + 1).as_str()
                && (i.start_ms..i.end_ms + HOUR_MS / 2).contains(&start)
        })
    };
    let in_range: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["window_start"].as_u64().is_some_and(|s| s < end_ms))
        .collect();
    let false_alarms: Vec<&&Value> = in_range.iter().filter(|a| !explained(a)).collect();
    // 3 warehouses x 13 hours x 2 series = about 4,700 forecast windows.
    assert!(
        false_alarms.len() <= 10,
        "{} of {} alerts are outside the incidents: {:#?}",
        false_alarms.len(),
        in_range.len(),
        false_alarms.iter().take(10).collect::<Vec<_>>()
    );
}

/// The demand half of LOGI-2 redone by hand from `windows.jsonl`: per warehouse, the window rows
/// in order, the `auto` forecaster fed `orders`, the interval from the RMS of the last 60
/// errors, alerts outside it after 30 forecasts. The dataflow must agree row for row: this
/// checks the wiring (keys, order, gaps, timing) around the shared forecaster code.
#[test]
fn demand_forecasts_match_a_sequential_replay_of_the_windows() {
    let config = GeneratorConfig {
        seed: 5,
        warehouses: 4,
        ..GeneratorConfig::default()
    }
    .with_default_incidents();
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("events.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&input).expect("create input"));
    write_jsonl(&config, 6 * 4 * 260 * 60, &mut file).expect("write input");
    drop(file);
    let out = dir.path().join("out");
    run(&input, &out, 2, true);

    let mut windows: Vec<(String, u64, f64)> = rows(&out.join("windows.jsonl"))
        .iter()
        .map(|w| {
            (
                w["warehouse"].as_str().expect("warehouse").to_string(),
                w["window_start"].as_u64().expect("window_start"),
                w["orders"].as_f64().expect("orders"),
            )
        })
        .collect();
    windows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let mut expected_rows: Vec<(String, u64, f64, f64, f64)> = Vec::new();
    let mut expected_alerts: Vec<(String, u64)> = Vec::new();
    let mut current = String::new();
    let mut model = ModelKind::Auto.build(0);
    let mut errors: std::collections::VecDeque<f64> = Default::default();
    for (warehouse, window_start, orders) in &windows {
        if *warehouse != current {
            current = warehouse.clone();
            model = ModelKind::Auto.build(0);
            errors.clear();
        }
        if let Some(forecast) = model.forecast() {
            let rms = if errors.is_empty() {
                0.0
            } else {
                (errors.iter().map(|e| e * e).sum::<f64>() / errors.len() as f64).sqrt()
            };
            let (lower, upper) = (forecast - 4.0 * rms, forecast + 4.0 * rms);
            expected_rows.push((warehouse.clone(), *window_start, forecast, lower, upper));
            if errors.len() >= 30 && rms > 0.0 && (*orders < lower || *orders > upper) {
                expected_alerts.push((warehouse.clone(), *window_start));
            }
            errors.push_back(orders - forecast);
            if errors.len() > 60 {
                errors.pop_front();
            }
        }
        model.update(*orders);
    }

    let mut actual_rows: Vec<(String, u64, f64, f64, f64)> = rows(&out.join("forecasts.jsonl"))
        .iter()
        .filter(|r| r["series"] == "demand")
        .map(|r| {
            (
                r["warehouse"].as_str().expect("warehouse").to_string(),
                r["window_start"].as_u64().expect("window_start"),
                r["expected"].as_f64().expect("expected"),
                r["lower"].as_f64().expect("lower"),
                r["upper"].as_f64().expect("upper"),
            )
        })
        .collect();
    actual_rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    assert_eq!(actual_rows.len(), expected_rows.len());
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * (1.0 + b.abs());
    for (got, want) in actual_rows.iter().zip(&expected_rows) {
        assert_eq!((&got.0, got.1), (&want.0, want.1));
        assert!(
            close(got.2, want.2) && close(got.3, want.3) && close(got.4, want.4),
            "{got:?} != {want:?}"
        );
    }
    let mut actual_alerts: Vec<(String, u64)> = rows(&out.join("forecast_alerts.jsonl"))
        .iter()
        .filter(|a| a["rule"] == "demand_forecast_deviation")
        .map(|a| {
            (
                a["warehouse"].as_str().expect("warehouse").to_string(),
                a["window_start"].as_u64().expect("window_start"),
            )
        })
        .collect();
    actual_alerts.sort();
    expected_alerts.sort();
    assert_eq!(actual_alerts, expected_alerts);
    assert!(
        !expected_alerts.is_empty(),
        "the surge at 03:45 should alert"
    );
}
