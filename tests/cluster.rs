//! Cluster mode: two processes (timely's own networking on 127.0.0.1) give the same results as
//! one process, byte for byte — from a file, and from Kafka (each process's worker reads the
//! partitions its global worker index owns).

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port on 127.0.0.1")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Runs `tidewatch run -q` as two cluster processes (one worker each) with `source` (the input
/// options) writing to `out`; returns each process's stderr, after asserting exit 0.
fn run_two_processes(dir: &Path, source: &[&std::ffi::OsStr], out: &Path) -> Vec<String> {
    let hostfile = dir.join("hosts.txt");
    std::fs::write(
        &hostfile,
        format!("127.0.0.1:{}\n127.0.0.1:{}\n", free_port(), free_port()),
    )
    .expect("hostfile");
    let children: Vec<_> = (0..2)
        .map(|process| {
            Command::new(env!("CARGO_BIN_EXE_tidewatch"))
                .args([
                    "run",
                    "-q",
                    "--workers",
                    "1",
                    "--processes",
                    "2",
                    "--process",
                ])
                .arg(process.to_string())
                .arg("--hostfile")
                .arg(&hostfile)
                .args(source)
                .arg("--out")
                .arg(out)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn a cluster process")
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().expect("wait");
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            assert!(output.status.success(), "{stderr}");
            stderr
        })
        .collect()
}

/// Generates `events` events (seed `seed`) plus `extra` lines into `dir/events.jsonl` and runs
/// one process with 2 workers on it into `dir/single`; returns both paths.
fn input_and_single_run(
    dir: &Path,
    events: u32,
    seed: u32,
    extra: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let input = dir.join("events.jsonl");
    let status = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["generate", "--events", &events.to_string()])
        .args(["--seed", &seed.to_string(), "--out"])
        .arg(&input)
        .stderr(Stdio::null())
        .status()
        .expect("generate");
    assert!(status.success());
    let mut text = read(&input);
    text.push_str(extra);
    std::fs::write(&input, text).expect("write");
    let single = dir.join("single");
    let status = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["run", "-q", "--workers", "2", "--input"])
        .arg(&input)
        .arg("--out")
        .arg(&single)
        .stderr(Stdio::null())
        .status()
        .expect("run");
    assert!(status.success());
    (input, single)
}

#[test]
fn two_processes_match_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Malformed lines, so that dead letters cross processes too.
    let (input, single) =
        input_and_single_run(dir.path(), 120_000, 7, "not json\n{\"type\":\"order\"}\n");
    let cluster = dir.path().join("cluster");
    run_two_processes(
        dir.path(),
        &["--input".as_ref(), input.as_os_str()],
        &cluster,
    );
    for name in ["windows.jsonl", "alerts.jsonl"] {
        let (a, b) = (read(&single.join(name)), read(&cluster.join(name)));
        assert!(!a.is_empty(), "{name} is empty");
        assert_eq!(a, b, "{name} differs between one and two processes");
    }
    let sorted = |text: String| {
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        lines.sort();
        lines
    };
    let dlq = sorted(read(&cluster.join("dlq.jsonl")));
    assert_eq!(dlq.len(), 2);
    assert_eq!(dlq, sorted(read(&single.join("dlq.jsonl"))));
}

#[test]
fn two_processes_from_kafka_match_file_mode() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (input, single) = input_and_single_run(dir.path(), 40_000, 5, "");
    let broker = support::brokers::DevBrokerProcess::start();
    let status = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["produce", "--kafka", &broker.bootstrap, "--input"])
        .arg(&input)
        .stderr(Stdio::null())
        .status()
        .expect("produce");
    assert!(status.success());

    let cluster = dir.path().join("cluster");
    let bootstrap = broker.bootstrap.clone();
    let args = ["--kafka", &bootstrap, "--stop-at-end", "--group", "cluster"];
    let source: Vec<&std::ffi::OsStr> = args.iter().map(|arg| arg.as_ref()).collect();
    let mut lines_read = 0u64;
    for stderr in run_two_processes(dir.path(), &source, &cluster) {
        // Each process reads only its own partitions: "done: N lines".
        let read: u64 = stderr
            .split("done: ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no summary line: {stderr}"));
        assert!(read > 0, "a process read nothing: {stderr}");
        lines_read += read;
    }
    assert_eq!(
        lines_read, 40_000,
        "the two processes together read every message once"
    );
    for name in ["windows.jsonl", "alerts.jsonl"] {
        let (a, b) = (read(&single.join(name)), read(&cluster.join(name)));
        assert!(!a.is_empty(), "{name} is empty");
        assert_eq!(
            a, b,
            "{name} differs between file mode and two processes on Kafka"
        );
    }
}
