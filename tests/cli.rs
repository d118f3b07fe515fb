//! Command-line behaviour: wrong usage gives one line and a non-zero exit, never a panic;
//! file mode and stdin agree; the embedded demo prints an alert and stops cleanly on SIGINT.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod support;
use support::{assert_one_line_error, tidewatch};

#[test]
fn wrong_usage_is_one_line_and_nonzero() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out");
    let out = out.to_str().expect("utf-8 path");
    assert_one_line_error(
        &["run", "--input", "/nonexistent/events.jsonl", "--out", out],
        "/nonexistent/events.jsonl",
    );
    assert_one_line_error(&["run", "--bogus-option"], "--bogus-option");
    assert_one_line_error(&["run", "--workers", "0"], "--workers");
    assert_one_line_error(&["run", "--workers", "many"], "many");
    assert_one_line_error(&["run", "--disorder-ms", "-5"], "-5");
    assert_one_line_error(&["run", "--input"], "--input");
    assert_one_line_error(&["frobnicate"], "frobnicate");
    assert_one_line_error(&["run", "--rate=-3"], "--rate");
    assert_one_line_error(&["run", "--rate", "0"], "--rate");
    assert_one_line_error(
        &[
            "run",
            "--input",
            dir.path().to_str().expect("utf-8"),
            "--out",
            out,
        ],
        "not a file",
    );
    // An output directory that cannot be created (its parent is a file).
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").expect("write");
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, b"{}\n").expect("write");
    let bad_out = file.join("out");
    assert_one_line_error(
        &[
            "run",
            "--input",
            input.to_str().expect("utf-8"),
            "--out",
            bad_out.to_str().expect("utf-8"),
        ],
        "plain-file",
    );
}

#[test]
fn help_explains_the_commands() {
    let output = tidewatch(&["--help"]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for word in ["run", "generate", "alerts"] {
        assert!(text.contains(word), "--help lacks {word}: {text}");
    }
    let output = tidewatch(&["run", "--help"]);
    let text = String::from_utf8_lossy(&output.stdout);
    for flag in ["--input", "--out", "--workers", "--disorder-ms"] {
        assert!(text.contains(flag), "run --help lacks {flag}");
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `generate` then `run --input FILE` and `run --input -` (stdin) give byte-identical window and
/// alert logs, and the generated traffic raises alerts.
#[test]
fn file_and_stdin_agree_and_generated_traffic_alerts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("events.jsonl");
    let generated = tidewatch(&[
        "generate",
        "--events",
        "150000",
        "--out",
        input.to_str().expect("utf-8"),
    ]);
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );

    let from_file = dir.path().join("file");
    let output = tidewatch(&[
        "run",
        "--input",
        input.to_str().expect("utf-8"),
        "--out",
        from_file.to_str().expect("utf-8"),
        "--workers",
        "2",
        "-q",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = String::from_utf8_lossy(&output.stderr);
    assert!(summary.contains("150000 lines"), "summary: {summary}");

    let from_stdin = dir.path().join("stdin");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args([
            "run",
            "--input",
            "-",
            "--out",
            from_stdin.to_str().expect("utf-8"),
            "--workers",
            "2",
            "-q",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(read(&input).as_bytes())
            .expect("feed stdin");
    }
    let output = child.wait_with_output().expect("wait");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    for name in ["windows.jsonl", "alerts.jsonl", "dlq.jsonl"] {
        assert_eq!(
            read(&from_file.join(name)),
            read(&from_stdin.join(name)),
            "{name} differs"
        );
    }
    let alerts = read(&from_file.join("alerts.jsonl"));
    assert!(
        alerts.lines().count() >= 1,
        "the generator's incidents raise no alert"
    );
    assert!(alerts.contains("\"rule\":\"delivery_duration_z\""));
}

/// The embedded default: a LOGI-1 alert and an alert rule's alert (on by default in the demo)
/// within 2 minutes, clean stop with a summary on SIGINT.
#[test]
fn demo_alerts_within_two_minutes_and_stops_on_sigint() {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["run", "--workers", "2"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (send, recv) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = started + Duration::from_secs(120);
    let mut first_alert = None;
    let mut first_rule_alert = None;
    while first_alert.is_none() || first_rule_alert.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match recv.recv_timeout(left) {
            // The two sinks print independently: either may come first.
            Ok(line) if line.starts_with("ALERT") && line.contains("_anomaly") => {
                first_rule_alert.get_or_insert(line);
            }
            Ok(line) if line.starts_with("ALERT") => {
                first_alert.get_or_insert(line);
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let status = Command::new("kill")
        .args(["-s", "INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let alert =
        first_alert.unwrap_or_else(|| panic!("no alert within 2 minutes; stderr: {stderr}"));
    assert!(
        alert.contains("delivery_duration_z")
            && alert.contains("warehouse=wh-")
            && alert.contains("z="),
        "{alert}"
    );
    let rule_alert = first_rule_alert
        .unwrap_or_else(|| panic!("no alert rule's alert within 2 minutes; stderr: {stderr}"));
    assert!(
        rule_alert.contains("warehouse=wh-") && rule_alert.contains("score="),
        "{rule_alert}"
    );
    assert!(
        output.status.success(),
        "exit {:?} after SIGINT; stderr: {stderr}",
        output.status.code()
    );
    assert!(
        stderr.contains("stopped after") && stderr.contains("alerts"),
        "no summary: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
