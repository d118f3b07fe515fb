//! `tidewatch detect`: NAB's layout (`timestamp,value,anomaly_score`, one row per value, scores
//! in [0, 1]), a planted spike on a real series is the top score of every detector, the rest
//! period silences the points after a detection, and wrong usage is one line.

mod support;
use support::{assert_one_line_error, tidewatch};

const AMBIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/benchmarks/data/ambient_temperature_system_failure.csv"
);

/// Runs `tidewatch detect` with `args` and the `--input`, `--detector` and `--out` given,
/// asserts that it succeeded, and returns its standard output.
fn detect(input: &str, detector: &str, out: &std::path::Path, args: &[&str]) -> String {
    let mut all = vec![
        "detect",
        "--input",
        input,
        "--detector",
        detector,
        "--out",
        out.to_str().expect("utf-8"),
    ];
    all.extend_from_slice(args);
    let output = tidewatch(&all);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn scores(path: &std::path::Path) -> Vec<(String, f64, f64)> {
    let text = std::fs::read_to_string(path).expect("scores written");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("timestamp,value,anomaly_score"));
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 3, "{line}");
            (
                fields[0].to_string(),
                fields[1].parse().expect("value"),
                fields[2].parse().expect("score"),
            )
        })
        .collect()
}

#[test]
fn scores_every_value_and_flags_a_planted_spike_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The real series with one value pushed 40 °F up in its second half.
    let text = std::fs::read_to_string(AMBIENT).expect("read the series");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let spike_line = 5_000;
    let (timestamp, value) = lines[spike_line].split_once(',').expect("a row");
    let spiked: f64 = value.parse::<f64>().expect("a value") + 40.0;
    lines[spike_line] = format!("{timestamp},{spiked}");
    let input = dir.path().join("series.csv");
    std::fs::write(&input, lines.join("\n")).expect("write series");

    for detector in [
        "windowed_gaussian",
        "robust",
        "ewma_chart",
        "residual",
        "learned_weights",
        "value_novelty",
        "best",
    ] {
        let out = dir.path().join(format!("{detector}.csv"));
        detect(input.to_str().expect("utf-8"), detector, &out, &[]);
        let rows = scores(&out);
        assert_eq!(rows.len(), 7_267);
        assert!(rows.iter().all(|(_, _, s)| (0.0..=1.0).contains(s)));
        let spike = &rows[spike_line - 1];
        assert_eq!(spike.1, spiked);
        let top = rows.iter().map(|r| r.2).fold(0.0, f64::max);
        assert_eq!(spike.2, top, "{detector}: the spike is not the top score");
        // Each detector's alarm level (value novelty's scale is its own: 0.5).
        let alarm = match detector {
            "best" | "value_novelty" => 0.5,
            "learned_weights" => 0.999,
            _ => 0.9999,
        };
        assert!(spike.2 >= alarm, "{detector}: {}", spike.2);
        if detector == "best" {
            // 2% of 7,267 values rest after the detection.
            assert!(rows[spike_line..spike_line + 145]
                .iter()
                .all(|r| r.2 == 0.0));
        }
    }
}

#[test]
fn wrong_usage_is_one_line_and_nonzero() {
    assert_one_line_error(
        &["detect", "--input", "/nonexistent/series.csv"],
        "/nonexistent/series.csv",
    );
    assert_one_line_error(
        &["detect", "--input", AMBIENT, "--detector", "oracle"],
        "oracle",
    );
    assert_one_line_error(&["detect", "--input", AMBIENT, "--window", "1"], "--window");
    assert_one_line_error(&["detect"], "--input");
    assert_one_line_error(
        &["detect", "--input", AMBIENT, "--threshold", "2"],
        "--threshold",
    );
    assert_one_line_error(
        &[
            "detect",
            "--input",
            AMBIENT,
            "--labels",
            "/nonexistent/labels.json",
        ],
        "/nonexistent/labels.json",
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let labels = dir.path().join("labels.json");
    std::fs::write(&labels, r#"{"other/file.csv": []}"#).expect("write labels");
    let labels = labels.to_str().expect("utf-8");
    assert_one_line_error(
        &[
            "detect",
            "--input",
            AMBIENT,
            "--labels",
            labels,
            "--out",
            "/dev/null",
        ],
        "ambient_temperature_system_failure.csv",
    );
    std::fs::write(dir.path().join("bad.json"), "[1, 2").expect("write labels");
    let bad = dir.path().join("bad.json");
    assert_one_line_error(
        &[
            "detect",
            "--input",
            AMBIENT,
            "--labels",
            bad.to_str().expect("utf-8"),
        ],
        "--labels",
    );
}

const LABELS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/benchmarks/data/anomaly_windows.json"
);

/// `2014-01-27 14:20:00` or with a fraction, as NAB writes times; compared as text.
fn minute(text: &str) -> String {
    text.chars().take(19).collect()
}

/// The `--labels` report of `best` and `residual` on the three real series equals a
/// recomputation from the written scores (a window is hit by a score at the detector's alarm
/// level inside it; a false alarm is the first point of a run of such scores outside every
/// window, after NAB's probationary period: 15% of the series, at most 750 points), and the
/// detectors keep their measured hits: `best` (value novelty) hits 6 of the 11 windows and
/// `residual` 10, each with a handful of false alarms per file.
#[test]
fn labels_report_matches_a_recomputation_from_the_scores() {
    let dir = tempfile::tempdir().expect("temp dir");
    let labels: std::collections::BTreeMap<String, Vec<(String, String)>> =
        serde_json::from_str(&std::fs::read_to_string(LABELS).expect("labels")).expect("json");
    for (detector, alarm, least_hits) in [("best", 0.5, 6), ("residual", 0.9999, 10)] {
        let mut total_hits = 0;
        for (key, windows) in &labels {
            let name = key.rsplit('/').next().expect("a file name");
            let input = format!("{}/benchmarks/data/{name}", env!("CARGO_MANIFEST_DIR"));
            let out = dir.path().join(name);
            let report = detect(&input, detector, &out, &["--labels", LABELS]);

            let rows = scores(&out);
            let probation = (rows.len() * 15 / 100).min(750);
            let inside = |time: &str| {
                windows.iter().any(|(start, end)| {
                    minute(start).as_str() <= time && time <= minute(end).as_str()
                })
            };
            let hits = windows
                .iter()
                .filter(|(start, end)| {
                    rows.iter().any(|(time, _, score)| {
                        *score >= alarm
                            && minute(start) <= minute(time)
                            && minute(time) <= minute(end)
                    })
                })
                .count();
            let mut false_alarms = 0;
            for index in probation..rows.len() {
                let onset = rows[index].2 >= alarm && (index == 0 || rows[index - 1].2 < alarm);
                false_alarms += usize::from(onset && !inside(&minute(&rows[index].0)));
            }
            let summary = format!(
                "{name}: {detector}: windows hit {hits}/{}, false alarms {false_alarms} (",
                windows.len()
            );
            assert!(
                report.starts_with(&summary),
                "{report}\nexpected: {summary}"
            );
            assert!(false_alarms <= 25, "{report}");
            assert_eq!(report.lines().count(), 1 + windows.len(), "{report}");
            total_hits += hits;
        }
        assert!(
            total_hits >= least_hits,
            "{detector}: {total_hits} windows hit"
        );
    }
}

/// Several value columns: every column is written back, each is scored on its own, and a
/// spike in the second column is the top score.
#[test]
fn scores_several_value_columns() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut text = String::from("timestamp,duration,temperature\n");
    for step in 0..3_000 {
        let temperature = if step == 2_500 {
            90.0
        } else {
            20.0 + (step % 5) as f64
        };
        text.push_str(&format!("{step},{},{temperature}\n", 100 + step % 7));
    }
    let input = dir.path().join("points.csv");
    std::fs::write(&input, text).expect("write points");
    let out = dir.path().join("scores.csv");
    detect(
        input.to_str().expect("utf-8"),
        "windowed_gaussian",
        &out,
        &[],
    );
    let written = std::fs::read_to_string(&out).expect("scores");
    let mut lines = written.lines();
    assert_eq!(
        lines.next(),
        Some("timestamp,duration,temperature,anomaly_score")
    );
    let rows: Vec<Vec<f64>> = lines
        .map(|line| {
            line.split(',')
                .map(|f| f.parse().expect("number"))
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 3_000);
    assert_eq!(rows[2_500][2], 90.0);
    let top = rows.iter().map(|row| row[3]).fold(0.0, f64::max);
    assert_eq!(rows[2_500][3], top);
    assert!(top > 0.9999);
}
