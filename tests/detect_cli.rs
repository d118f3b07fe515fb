//! `tidewatch detect`: NAB's layout (`timestamp,value,anomaly_score`, one row per value, scores
//! in [0, 1]), a planted spike on a real series is the top score of every detector, the rest
//! period silences the points after a detection, and wrong usage is one line.

mod support;
use support::{assert_one_line_error, tidewatch};

const AMBIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/benchmarks/data/ambient_temperature_system_failure.csv"
);

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
        "best",
    ] {
        let out = dir.path().join(format!("{detector}.csv"));
        let output = tidewatch(&[
            "detect",
            "--input",
            input.to_str().expect("utf-8"),
            "--detector",
            detector,
            "--out",
            out.to_str().expect("utf-8"),
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let rows = scores(&out);
        assert_eq!(rows.len(), 7_267);
        assert!(rows.iter().all(|(_, _, s)| (0.0..=1.0).contains(s)));
        let spike = &rows[spike_line - 1];
        assert_eq!(spike.1, spiked);
        let top = rows.iter().map(|r| r.2).fold(0.0, f64::max);
        assert_eq!(spike.2, top, "{detector}: the spike is not the top score");
        assert!(spike.2 > 0.9999, "{detector}: {}", spike.2);
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
}
