//! The broker freezes in the middle of a run (issue 3): tansu is paused with SIGSTOP for 20 s
//! while `tidewatch run --kafka ... --stop-at-end --sink both` is reading from it, then resumed
//! with SIGCONT. tidewatch must wait (not fail, not finish without the broker), carry on, and
//! lose nothing: its output files match the oracle, windows and alerts are byte-identical to
//! file mode's, and the output topics hold every row of the output files exactly once.
//!
//! Two moments: (1) on the oracle's seeded input (5 436 lines, read and processed in about half
//! a second), as soon as every worker has logged `kafka source assigned`: consumers and sink
//! producer connected, first fetches under way; (2) on 300 000 generated events, once window
//! rows are being written: reading, computing and producing to the output topics all under way
//! (compared with file mode, which the oracle tests check on the same generator).
//!
//! Timing on the 2-core development machine (release build): (1) partitions assigned 0.37 s
//! after start, the run took 21.0 s (0.66 s after the broker resumed); (2) paused with 440
//! window rows written, 2 792 written while frozen (already fetched input), the run took
//! 20.8 s (0.16 s after the resume).
//!
//! Needs tansu (`.ci/run` installs it); fails, never skips, without it.

mod support;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use support::brokers::{process_state, Tansu, TIDEWATCH_TOPICS};
use support::{compare, inputs, oracle};
use tidewatch_connectors::kafka::source::{KafkaSource, SourceConfig, StartFrom};
use tidewatch_connectors::kafka::KafkaConfig;

/// The seeded input (tests/support/inputs.rs).
const SEED: u64 = 3;
/// SPEC's default disorder bound, as the run uses it.
const DISORDER: u64 = 5_000;
/// Worker threads of the run; each logs `kafka source assigned` once it has its partitions.
const WORKERS: usize = 2;
/// How long the broker stays frozen (the 20 s).
const PAUSE: Duration = Duration::from_secs(20);
/// Bounds that only keep a broken run from hanging the test.
const PRODUCE_TIMEOUT: Duration = Duration::from_secs(120);
const START_TIMEOUT: Duration = Duration::from_secs(60);
const FINISH_TIMEOUT: Duration = Duration::from_secs(120);
const READ_BACK_TIMEOUT: Duration = Duration::from_secs(60);

/// A child process that is killed and reaped when dropped (also when the test panics).
struct ChildGuard(Child);

impl ChildGuard {
    fn try_wait(&mut self) -> Option<ExitStatus> {
        self.0.try_wait().expect("poll the child process")
    }

    /// Waits up to `timeout` for the exit status; `None` if it is still running.
    fn wait_for(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if start.elapsed() > timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn text(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// `tidewatch produce --kafka BOOTSTRAP --input FILE`, which must succeed.
fn produce(bootstrap: &str, input: &Path, log: &Path) {
    let mut child = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_tidewatch"))
            .args(["produce", "--kafka", bootstrap, "--input"])
            .arg(input)
            .stdin(Stdio::null())
            .stdout(File::create(log).expect("create the produce log"))
            .stderr(File::create(log.with_extension("stderr")).expect("create the produce log"))
            .spawn()
            .expect("spawn tidewatch produce"),
    );
    let status = child.wait_for(PRODUCE_TIMEOUT);
    assert!(
        status.is_some_and(|s| s.success()),
        "tidewatch produce ended with {status:?} (None: still running after \
         {PRODUCE_TIMEOUT:?})\nstdout: {}\nstderr: {}",
        text(log),
        text(&log.with_extension("stderr"))
    );
}

/// Reads every message of the output topics back from the broker (the library's own source,
/// from the beginning to the end each partition had), as value lists by topic.
fn read_topics(bootstrap: &str, topics: &[&str]) -> BTreeMap<String, Vec<String>> {
    let config = SourceConfig {
        topics: topics.iter().map(|t| t.to_string()).collect(),
        group: format!("pause-read-back-{}", std::process::id()),
        from: StartFrom::Earliest,
        stop_at_end: true,
        ..SourceConfig::new(KafkaConfig::new(bootstrap))
    };
    let mut source = KafkaSource::open(&config, 0, 1).expect("open a source on the output topics");
    let mut by_topic: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut line = Vec::new();
    let start = Instant::now();
    while !source.finished() {
        assert!(
            start.elapsed() < READ_BACK_TIMEOUT,
            "the output topics were not read to their end within {READ_BACK_TIMEOUT:?}"
        );
        match source.next_message(&mut line, &|_| true) {
            Some((part, _offset)) => {
                let (topic, _) = source.topic_partition(part).expect("a valid part");
                by_topic
                    .entry(topic.to_string())
                    .or_default()
                    .push(String::from_utf8_lossy(&line).into_owned());
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    drop(source);
    by_topic
}

/// The non-empty lines of a file, sorted.
fn sorted_lines(path: &Path) -> Vec<String> {
    let mut lines: Vec<String> = text(path)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

fn line_count(path: &Path) -> usize {
    text(path).lines().count()
}

/// When to freeze the broker.
#[derive(Clone, Copy, Debug, PartialEq)]
enum PauseAt {
    /// As soon as every worker has assigned its partitions (first fetches under way).
    Assigned,
    /// Once results flow: the run has written window rows (reading, computing and the Kafka
    /// sink's producing are all under way).
    ResultsFlowing,
}

#[test]
fn broker_paused_for_20_s_mid_run_loses_nothing() {
    let lines = inputs::random_input(SEED);
    let expected = oracle::logi1(&lines, DISORDER);
    assert_eq!(expected.stats.late, 0, "seed {SEED}: late events");
    assert!(expected.stats.joins > 0 && !expected.alerts.is_empty());
    let tmp = tempfile::tempdir().expect("create a temp dir");
    let input = tmp.path().join("input.jsonl");
    inputs::write_lines(&input, &lines);
    paused_run(tmp.path(), &input, Some(&expected), PauseAt::Assigned);
}

/// A larger generated input (the oracle tests cover this generator through file mode): the
/// pause falls while results are being computed and produced to the output topics.
#[test]
fn broker_paused_for_20_s_while_results_flow_loses_nothing() {
    let tmp = tempfile::tempdir().expect("create a temp dir");
    let input = tmp.path().join("input.jsonl");
    let status = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["generate", "--events", "300000", "--seed", "11", "--out"])
        .arg(&input)
        .stderr(Stdio::null())
        .status()
        .expect("run tidewatch generate");
    assert!(status.success(), "tidewatch generate failed");
    // Two malformed lines, so the dead-letter topic has something to carry.
    let mut text = std::fs::read_to_string(&input).expect("read the generated input");
    text.push_str("not json\n{\"type\":\"parcel\",\"ts\":1}\n");
    std::fs::write(&input, text).expect("write the input");
    paused_run(tmp.path(), &input, None, PauseAt::ResultsFlowing);
}

fn paused_run(
    tmp: &Path,
    input: &Path,
    expected: Option<&oracle::OracleOutput>,
    pause_at: PauseAt,
) {
    // File mode: the reference for byte-identical windows and alerts.
    let file_out = tmp.join("file-mode");
    support::run_cli(input, &file_out, WORKERS, Some(DISORDER));
    if let Some(expected) = expected {
        compare::assert_outputs_match(&file_out, expected);
    }
    let input_lines = text(input).lines().count();

    let tansu = Tansu::start(&TIDEWATCH_TOPICS);
    produce(&tansu.bootstrap, input, &tmp.join("produce.log"));

    let kafka_out = tmp.join("kafka-mode");
    let stderr_path = tmp.join("run.stderr");
    let started = Instant::now();
    let mut run = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_tidewatch"))
            .args(["run", "--kafka", &tansu.bootstrap, "--stop-at-end"])
            .args(["--sink", "both", "--out"])
            .arg(&kafka_out)
            .args(["-q", "--group", "pause-test", "--workers"])
            .arg(WORKERS.to_string())
            // The default filter; spelled out so the `kafka source assigned` line is there.
            .env("RUST_LOG", "warn,tidewatch=info,tidewatch_connectors=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr_path).expect("create the run's stderr file"))
            .spawn()
            .expect("spawn tidewatch run"),
    );

    // Freeze the broker as soon as every worker has assigned its partitions: start-up is over
    // (a broker that does not answer during start-up ends the run after a bounded wait, by
    // design), reading is about to begin.
    loop {
        let ready = match pause_at {
            PauseAt::Assigned => {
                text(&stderr_path).matches("kafka source assigned").count() == WORKERS
            }
            PauseAt::ResultsFlowing => line_count(&kafka_out.join("windows.jsonl")) > 0,
        };
        if ready {
            break;
        }
        if let Some(status) = run.try_wait() {
            panic!(
                "tidewatch run exited with {status} before assigning its partitions\nstderr:\n{}",
                text(&stderr_path)
            );
        }
        assert!(
            started.elapsed() < START_TIMEOUT,
            "tidewatch run's {WORKERS} workers did not all log `kafka source assigned` within \
             {START_TIMEOUT:?}\n\
             stderr:\n{}",
            text(&stderr_path)
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let assigned_after = started.elapsed();
    let windows_before = line_count(&kafka_out.join("windows.jsonl"));
    tansu.pause();
    assert!(
        run.try_wait().is_none(),
        "tidewatch run had already exited when the broker was paused; stderr:\n{}",
        text(&stderr_path)
    );
    let paused = Instant::now();
    while process_state(tansu.pid()) != Some('T') {
        assert!(
            paused.elapsed() < Duration::from_secs(5),
            "tansu (pid {}) is not stopped after SIGSTOP: state {:?}",
            tansu.pid(),
            process_state(tansu.pid())
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Frozen for the whole pause; the run may not end meanwhile: it cannot have read its input
    // to the end nor had its outputs acknowledged.
    while paused.elapsed() < PAUSE {
        if let Some(status) = run.try_wait() {
            panic!(
                "tidewatch run exited with {status} {:?} into the broker's pause\nstderr:\n{}",
                paused.elapsed(),
                text(&stderr_path)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        process_state(tansu.pid()),
        Some('T'),
        "tansu stayed stopped for the whole pause"
    );
    let windows_during = line_count(&kafka_out.join("windows.jsonl"));
    tansu.resume();
    let resumed = Instant::now();

    let status = run.wait_for(FINISH_TIMEOUT);
    let stderr = text(&stderr_path);
    assert!(
        status.is_some_and(|s| s.success()),
        "tidewatch run ended with {status:?} (None: still running {FINISH_TIMEOUT:?} after the \
         broker resumed)\nstderr:\n{stderr}\ntansu log:\n{}",
        tansu.log()
    );
    eprintln!(
        "{} input lines; partitions assigned after {assigned_after:?}; window rows in the file \
         at the pause {windows_before}, at its end {windows_during}; run took {:?} in all, \
         {:?} after the broker resumed",
        input_lines,
        started.elapsed(),
        resumed.elapsed()
    );

    if pause_at == PauseAt::ResultsFlowing {
        // Rows already fetched may still be computed and written to the files during the
        // pause; the output topics and the end of the input wait for the broker.
        assert!(
            windows_before > 0,
            "the pause did not fall while results were flowing ({windows_before} rows at the \
             pause, {windows_during} at its end)"
        );
    }
    // Nothing lost, nothing doubled: the oracle's results, byte-identical to file mode's.
    if let Some(expected) = expected {
        compare::assert_outputs_match(&kafka_out, expected);
    }
    for name in ["windows.jsonl", "alerts.jsonl"] {
        let kafka = std::fs::read(kafka_out.join(name)).expect("read the Kafka run's output");
        let file = std::fs::read(file_out.join(name)).expect("read file mode's output");
        assert!(
            kafka == file,
            "{name} differs from file mode's ({} vs {} bytes; same lines in another order: {})",
            kafka.len(),
            file.len(),
            sorted_lines(&kafka_out.join(name)) == sorted_lines(&file_out.join(name))
        );
    }

    // The Kafka sink delivered every row of the output files exactly once.
    let outputs = [
        ("tidewatch.windows", "windows.jsonl"),
        ("tidewatch.alerts", "alerts.jsonl"),
        ("tidewatch.dlq", "dlq.jsonl"),
    ];
    let mut topics = read_topics(&tansu.bootstrap, &outputs.map(|(topic, _)| topic));
    for (topic, file) in outputs {
        let mut values = topics.remove(topic).unwrap_or_default();
        values.sort();
        let rows = sorted_lines(&kafka_out.join(file));
        assert!(!rows.is_empty(), "{file} is empty");
        assert!(
            values == rows,
            "topic {topic} holds {} messages, {file} {} rows (each row exactly once expected)",
            values.len(),
            rows.len()
        );
    }
}
