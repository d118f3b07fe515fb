//! A Kafka run stopped mid-stream and started again with `--from committed` loses nothing and
//! repeats nothing a consumer cannot drop: after dropping replayed `(row, time)` duplicates and
//! summing diffs, its outputs equal an uninterrupted run's.
//!
//! Scenario (against `tidewatch broker`): load the first half of a generated input (plus a few
//! malformed lines), start `tidewatch run --kafka … --from committed` live, wait until it has
//! written windows and committed offsets, load the second half, stop the run (SIGKILL: no
//! shutdown at all; SIGTERM: a graceful stop), then run again with `--from committed
//! --stop-at-end`. The resumed run appends to the same files (and topics); the combined change
//! logs must equal those of `tidewatch run --input FILE` over the whole input.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::brokers::{kcat, send_signal, DevBrokerProcess};

const BIN: &str = env!("CARGO_BIN_EXE_tidewatch");

fn tidewatch<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(args: &[S]) -> std::process::Output {
    let output = Command::new(BIN)
        .args(args)
        .output()
        .expect("run tidewatch");
    assert!(
        output.status.success(),
        "tidewatch {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The final rows of a change log as a consumer reads them: exact duplicate lines (replays)
/// dropped, then diffs summed per row (all fields but `diff`); rows that sum to 0 vanish.
fn final_rows(lines: &[String]) -> BTreeMap<String, i64> {
    let mut seen = BTreeSet::new();
    let mut sums: BTreeMap<String, i64> = BTreeMap::new();
    for line in lines {
        if !seen.insert(line.clone()) {
            continue;
        }
        let mut row: Value = serde_json::from_str(line).expect("a change-log line is JSON");
        let diff = row
            .as_object_mut()
            .and_then(|o| o.remove("diff"))
            .and_then(|d| d.as_i64())
            .expect("diff");
        *sums.entry(row.to_string()).or_default() += diff;
    }
    sums.retain(|_, n| *n != 0);
    sums
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn topic_lines(bootstrap: &str, topic: &str) -> Vec<String> {
    let output = Command::new(kcat())
        .args(["-b", bootstrap, "-C", "-t", topic, "-e", "-q"])
        .output()
        .expect("run kcat");
    assert!(output.status.success(), "kcat failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Dead letters with replays dropped: one per (source, partition, offset).
fn dead_letters(lines: &[String]) -> BTreeMap<(String, i64, i64), String> {
    lines
        .iter()
        .map(|line| {
            let row: Value = serde_json::from_str(line).expect("dead letter is JSON");
            (
                (
                    row["source"].as_str().unwrap_or_default().to_string(),
                    row["partition"].as_i64().unwrap_or(-1),
                    row["offset"].as_i64().unwrap_or(-1),
                ),
                row["raw"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop_and_resume(signal: &str, sink: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("events.jsonl");
    tidewatch(&[
        "generate",
        "--events",
        "60000",
        "--seed",
        "7",
        // Enough warehouses (message keys) that every partition of every topic gets messages:
        // an empty partition would only stop holding the watermark after the idle timeout.
        "--warehouses",
        "16",
        "--out",
        input.to_str().expect("utf-8 path"),
    ]);
    let text = std::fs::read_to_string(&input).expect("read input");
    let lines: Vec<&str> = text.lines().collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    let bad = [
        "{\"type\":\"order\",\"warehouse\":\"wh-01\"}",
        "not json at all",
    ];
    let half = |name: &str, part: &[&str], extra: &str| {
        let path = dir.path().join(name);
        let mut body = part.join("\n");
        body.push('\n');
        body.push_str(extra);
        body.push('\n');
        std::fs::write(&path, body).expect("write half");
        path
    };
    let first_path = half("first.jsonl", first, bad[0]);
    let second_path = half("second.jsonl", second, bad[1]);

    // The uninterrupted reference (file mode, itself checked against the oracle elsewhere).
    let reference = dir.path().join("reference");
    tidewatch(&[
        "run",
        "--input",
        input.to_str().expect("utf-8"),
        "--out",
        reference.to_str().expect("utf-8"),
        "--workers",
        "2",
        "-q",
    ]);

    let broker = DevBrokerProcess::start();
    let produce = |path: &Path| {
        tidewatch(&[
            "produce",
            "--kafka",
            &broker.bootstrap,
            "--input",
            path.to_str().expect("utf-8"),
        ]);
    };
    produce(&first_path);
    let out = dir.path().join("out");
    let out_arg = out.to_str().expect("utf-8").to_string();
    let run_args = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "run",
            "--kafka",
            &broker.bootstrap,
            "--group",
            "resume-test",
            "--from",
            "committed",
            "--sink",
            sink,
            "--out",
            &out_arg,
            "--workers",
            "2",
            "-q",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    // No partition goes idle here (the default idle timeout is longer than the first run):
    // an idle partition whose messages resume after the others have moved on would see them
    // dead-lettered as late, as with any watermark-with-idleness scheme.
    let mut first_run = Command::new(BIN)
        .args(run_args(&[]))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the first run");
    let windows = out.join("windows.jsonl");
    wait_for("the first run's windows", Duration::from_secs(60), || {
        !lines_of(&windows).is_empty()
    });
    // Offsets are committed every second, after the outputs are flushed.
    std::thread::sleep(Duration::from_millis(2500));
    produce(&second_path);
    std::thread::sleep(Duration::from_millis(200));
    send_signal(first_run.id(), signal);
    let status = first_run.wait().expect("first run ends");
    let written_before = lines_of(&windows).len();
    assert!(written_before > 0, "the first run wrote no window");
    if signal == "TERM" {
        assert!(status.success(), "a graceful stop exits 0, got {status}");
    }

    let resumed = tidewatch(&run_args(&["--stop-at-end"]));
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    let resumed_below: u64 = stderr
        .split("outputs at times below ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the resumed run did not resume from a frontier: {stderr}"));
    assert!(resumed_below > 0, "{stderr}");

    for name in ["windows", "alerts"] {
        let expected = final_rows(&lines_of(&reference.join(format!("{name}.jsonl"))));
        assert!(!expected.is_empty(), "the reference has no {name}");
        let from_files = final_rows(&lines_of(&out.join(format!("{name}.jsonl"))));
        assert_eq!(
            from_files, expected,
            "{name}.jsonl after stop ({signal}) and resume differs from an uninterrupted run"
        );
        if sink == "both" {
            let from_topic = final_rows(&topic_lines(
                &broker.bootstrap,
                &format!("tidewatch.{name}"),
            ));
            assert_eq!(from_topic, expected, "topic tidewatch.{name} differs");
        }
    }
    // Both malformed lines are dead letters, each once after dropping replays.
    let letters = dead_letters(&lines_of(&out.join("dlq.jsonl")));
    let raws: BTreeSet<&str> = letters.values().map(String::as_str).collect();
    assert_eq!(letters.len(), 2, "dead letters: {letters:?}");
    assert_eq!(
        raws,
        bad.iter().copied().collect(),
        "dead letters: {letters:?}"
    );
}

#[test]
fn killed_run_resumes_from_committed_offsets() {
    stop_and_resume("KILL", "files");
}

#[test]
fn stopped_run_resumes_from_committed_offsets_with_kafka_sink() {
    stop_and_resume("TERM", "both");
}
