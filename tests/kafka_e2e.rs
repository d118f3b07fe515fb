//! LOGI-1 end to end through Kafka, against two independent brokers: the development broker
//! (`tidewatch broker`, librdkafka's mock cluster) and tansu.
//!
//! * `dev_broker_*` / `tansu_*`: a seeded input is loaded with `tidewatch produce`, then read
//!   by `tidewatch run --kafka ... --stop-at-end` at 1 and 2 workers. Windows and alerts must
//!   be byte-identical to file mode's and match the oracle; dead letters must be the oracle's
//!   (reason, raw) multiset and point at distinct input messages; with `--sink both` the
//!   output topics must hold exactly the rows of the output files, keyed by warehouse.
//! * `unreachable_broker_*`, `missing_topic_*`: start-up failures end the run with one line.
//!
//! Needs kcat and tansu (`.ci/run` installs both); fails, never skips, without them.

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use support::brokers::{free_port, kcat, DevBrokerProcess, Tansu, PARTITIONS, TIDEWATCH_TOPICS};
use support::compare;
use support::inputs;
use support::oracle::{logi1, OracleOutput};

/// The SPEC default disorder bound.
const DISORDER: u64 = 5_000;
/// Input topics (SPEC §1 types).
const INPUT_TOPICS: [&str; 3] = ["orders", "deliveries", "sensors"];
/// Upper bound for one `tidewatch produce` / `run` / `kcat` invocation.
const CLI_TIMEOUT: Duration = Duration::from_secs(120);

/// What one finished command did.
struct Ran {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
    elapsed: Duration,
}

/// Runs `program args` with stdin closed; panics if it outlives `timeout` (it is killed).
fn run_program(program: &Path, args: &[&str], timeout: Duration) -> Ran {
    use std::io::Read;
    let start = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
    let mut out_pipe = child.stdout.take().expect("stdout is piped");
    let mut err_pipe = child.stderr.take().expect("stderr is piped");
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll child") {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
            panic!(
                "{} {} did not finish within {timeout:?}; stderr:\n{stderr}",
                program.display(),
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = start.elapsed();
    Ran {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
        elapsed,
    }
}

/// Runs the tidewatch binary.
fn tidewatch(args: &[&str], timeout: Duration) -> Ran {
    run_program(Path::new(env!("CARGO_BIN_EXE_tidewatch")), args, timeout)
}

/// Runs the tidewatch binary and panics (with its stderr) unless it exits 0.
fn tidewatch_ok(args: &[&str]) -> Ran {
    let ran = tidewatch(args, CLI_TIMEOUT);
    assert!(
        ran.status.success(),
        "tidewatch {} exited with {} after {:?}; stderr:\n{}",
        args.join(" "),
        ran.status,
        ran.elapsed,
        ran.stderr
    );
    ran
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// A broker under test: its address and whether kcat can read from it.
struct Broker<'a> {
    name: &'a str,
    bootstrap: &'a str,
    kcat_readable: bool,
}

/// One message as kcat prints it.
struct Record {
    partition: i32,
    offset: u64,
    /// `None` for a null key.
    key: Option<Vec<u8>>,
    value: Vec<u8>,
}

/// `kcat -C -t TOPIC -e`: every message of the topic. Each record is a header line
/// `PARTITION OFFSET KEYLEN VALUELEN` followed by exactly that many key and value bytes and a
/// newline, so keys and values may contain any byte.
fn kcat_records(bootstrap: &str, topic: &str) -> Vec<Record> {
    let args = [
        "-b",
        bootstrap,
        "-C",
        "-t",
        topic,
        "-e",
        "-q",
        "-f",
        "%p %o %K %S\n%k%s\n",
    ];
    let ran = run_program(&kcat(), &args, CLI_TIMEOUT);
    assert!(
        ran.status.success(),
        "kcat {} exited with {}; stderr:\n{}",
        args.join(" "),
        ran.status,
        ran.stderr
    );
    let out = &ran.stdout;
    let mut records = Vec::new();
    let mut at = 0;
    // `len` bytes at `at` (none for a null key or value, length -1), advancing `at`.
    let take = |at: &mut usize, len: i64, header: &str| -> Vec<u8> {
        let len = usize::try_from(len).unwrap_or(0);
        let bytes = out
            .get(*at..*at + len)
            .unwrap_or_else(|| panic!("kcat {topic}: truncated record {header:?}"));
        *at += len;
        bytes.to_vec()
    };
    while at < out.len() {
        let header_len = out[at..]
            .iter()
            .position(|b| *b == b'\n')
            .unwrap_or_else(|| panic!("kcat {topic}: truncated record header at byte {at}"));
        let header = String::from_utf8_lossy(&out[at..at + header_len]).into_owned();
        at += header_len + 1;
        let fields: Vec<i64> = header
            .split(' ')
            .map(|f| {
                f.parse()
                    .unwrap_or_else(|_| panic!("kcat {topic}: bad header {header:?}"))
            })
            .collect();
        let [partition, offset, key_len, value_len] = fields[..] else {
            panic!("kcat {topic}: bad header {header:?}");
        };
        let key = take(&mut at, key_len, &header);
        let value = take(&mut at, value_len, &header);
        assert_eq!(
            out.get(at),
            Some(&b'\n'),
            "kcat {topic}: record {header:?} not followed by a newline"
        );
        at += 1;
        records.push(Record {
            partition: i32::try_from(partition).expect("partition fits i32"),
            offset: u64::try_from(offset).expect("offsets are not negative"),
            key: (key_len >= 0).then_some(key),
            value,
        });
    }
    records
}

/// The non-empty lines of a JSON Lines file, as a sorted multiset.
fn sorted_lines(path: &Path) -> Vec<String> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// Asserts `DIR/name` is byte-identical in both directories.
fn assert_same_file(kafka_dir: &Path, file_dir: &Path, name: &str, what: &str) {
    let read = |dir: &Path| {
        std::fs::read(dir.join(name))
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.join(name).display()))
    };
    let (kafka, file) = (read(kafka_dir), read(file_dir));
    if kafka != file {
        let same_multiset =
            sorted_lines(&kafka_dir.join(name)) == sorted_lines(&file_dir.join(name));
        panic!(
            "{what}: {name} differs from file mode's ({} vs {} bytes; same lines in another \
             order: {same_multiset})",
            kafka.len(),
            file.len()
        );
    }
}

/// The oracle's result for `seed`, checked to exercise everything the comparisons look at.
fn expected_for(seed: u64, lines: &[Vec<u8>]) -> OracleOutput {
    let expected = logi1(lines, DISORDER);
    assert!(!expected.alerts.is_empty(), "seed {seed}: no alerts");
    assert!(expected.stats.joins > 0, "seed {seed}: no joins");
    assert!(expected.stats.duplicates > 0, "seed {seed}: no duplicates");
    assert_eq!(expected.stats.late, 0, "seed {seed}: late events");
    let reasons: BTreeSet<&str> = expected
        .dead_letters
        .iter()
        .map(|(r, _)| r.as_str())
        .collect();
    assert!(reasons.len() >= 20, "seed {seed}: reasons {reasons:?}");
    // The blank line and the invalid UTF-8 line must reach Kafka and come back as dead letters.
    assert!(
        lines.iter().any(|l| l.is_empty()),
        "seed {seed}: the input has no empty line"
    );
    assert!(
        lines.iter().any(|l| std::str::from_utf8(l).is_err()),
        "seed {seed}: the input has no invalid UTF-8 line"
    );
    expected
}

/// Every dead letter of a Kafka run names an input topic, a partition in 0..PARTITIONS and an
/// offset, and no two name the same message. Returns them by (topic, partition, offset).
fn check_kafka_dead_letters(dir: &Path, what: &str) -> BTreeMap<(String, i32, u64), Value> {
    let mut seen = BTreeMap::new();
    for row in compare::read_jsonl(&dir.join("dlq.jsonl")) {
        let source = row["source"].as_str().unwrap_or_default().to_string();
        assert!(
            INPUT_TOPICS.contains(&source.as_str()),
            "{what}: dead letter with source {source:?}, not an input topic: {row}"
        );
        let partition = row["partition"]
            .as_i64()
            .and_then(|p| i32::try_from(p).ok())
            .filter(|p| (0..PARTITIONS).contains(p))
            .unwrap_or_else(|| panic!("{what}: dead letter without a partition in 0..4: {row}"));
        let offset = row["offset"]
            .as_u64()
            .unwrap_or_else(|| panic!("{what}: dead letter without an integer offset: {row}"));
        if let Some(earlier) = seen.insert((source, partition, offset), row.clone()) {
            panic!("{what}: two dead letters for one message:\n  {earlier}\n  {row}");
        }
    }
    seen
}

/// Dev broker only: every dead letter's raw text is the value of the message it names.
fn check_dead_letters_name_their_messages(
    bootstrap: &str,
    letters: &BTreeMap<(String, i32, u64), Value>,
    what: &str,
) {
    let mut messages = BTreeMap::new();
    for topic in INPUT_TOPICS {
        for record in kcat_records(bootstrap, topic) {
            messages.insert(
                (topic.to_string(), record.partition, record.offset),
                record.value,
            );
        }
    }
    for (at, letter) in letters {
        let value = messages
            .get(at)
            .unwrap_or_else(|| panic!("{what}: dead letter names no message: {letter}"));
        assert_eq!(
            letter["raw"].as_str(),
            Some(String::from_utf8_lossy(value).as_ref()),
            "{what}: dead letter at {at:?} is not that message's value"
        );
    }
}

/// Dev broker only: the messages of the output topics are exactly the rows of the output
/// files (as multisets), each keyed by its row's warehouse.
fn check_sink_topics(bootstrap: &str, dir: &Path, what: &str) {
    for (topic, file) in [
        ("tidewatch.windows", "windows.jsonl"),
        ("tidewatch.alerts", "alerts.jsonl"),
    ] {
        let mut values = Vec::new();
        for Record {
            partition,
            offset,
            key,
            value,
        } in kcat_records(bootstrap, topic)
        {
            let value = String::from_utf8(value)
                .unwrap_or_else(|e| panic!("{what}: {topic}/{partition}@{offset}: not UTF-8: {e}"));
            let row: Value = serde_json::from_str(&value).unwrap_or_else(|e| {
                panic!("{what}: {topic}/{partition}@{offset}: not JSON ({e}): {value}")
            });
            let key = key.map(|k| String::from_utf8_lossy(&k).into_owned());
            assert_eq!(
                row["warehouse"].as_str(),
                key.as_deref(),
                "{what}: {topic}/{partition}@{offset}: key is not the row's warehouse: {value}"
            );
            values.push(value);
        }
        values.sort();
        let lines = sorted_lines(&dir.join(file));
        assert!(!lines.is_empty(), "{what}: {file} is empty");
        assert!(
            values == lines,
            "{what}: topic {topic} holds {} messages, {file} {} rows; first differences: {:?}",
            values.len(),
            lines.len(),
            values
                .iter()
                .zip(&lines)
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!("topic {a} / file {b}"))
        );
    }
}

/// Tansu (kcat cannot read it): reads the output topics back with `tidewatch run` itself,
/// where every row is a dead letter `missing_field:type` whose raw text is the message value,
/// and checks they are exactly the rows of the output files, each warehouse in one partition.
fn check_sink_topics_via_tidewatch(bootstrap: &str, dir: &Path, readback: &Path, what: &str) {
    let name = readback
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("readback");
    let group = format!("e2e-{name}-{}", std::process::id());
    tidewatch_ok(&[
        "run",
        "--kafka",
        bootstrap,
        "--topics",
        "tidewatch.windows,tidewatch.alerts",
        "--stop-at-end",
        "--sink",
        "files",
        "--out",
        path_str(readback),
        "--group",
        &group,
        "--workers",
        "1",
        "-q",
    ]);
    let mut by_topic: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut partition_of: BTreeMap<(String, String), BTreeSet<i64>> = BTreeMap::new();
    for letter in compare::read_jsonl(&readback.join("dlq.jsonl")) {
        assert_eq!(
            letter["reason"], "missing_field:type",
            "{what}: read back {letter}"
        );
        let topic = letter["source"].as_str().unwrap_or_default().to_string();
        let raw = letter["raw"].as_str().unwrap_or_default().to_string();
        let row: Value = serde_json::from_str(&raw)
            .unwrap_or_else(|e| panic!("{what}: {topic}: not JSON ({e}): {raw}"));
        let warehouse = row["warehouse"].as_str().unwrap_or_default().to_string();
        partition_of
            .entry((topic.clone(), warehouse))
            .or_default()
            .insert(letter["partition"].as_i64().unwrap_or(-1));
        by_topic.entry(topic).or_default().push(raw);
    }
    for ((topic, warehouse), partitions) in &partition_of {
        assert_eq!(
            partitions.len(),
            1,
            "{what}: {topic}: rows of warehouse {warehouse:?} in partitions {partitions:?}"
        );
    }
    for (topic, file) in [
        ("tidewatch.windows", "windows.jsonl"),
        ("tidewatch.alerts", "alerts.jsonl"),
    ] {
        let mut values = by_topic.remove(topic).unwrap_or_default();
        values.sort();
        let lines = sorted_lines(&dir.join(file));
        assert!(!lines.is_empty(), "{what}: {file} is empty");
        assert!(
            values == lines,
            "{what}: topic {topic} holds {} messages, {file} {} rows",
            values.len(),
            lines.len()
        );
    }
    assert!(by_topic.is_empty(), "{what}: other topics {by_topic:?}");
}

/// Loads seed `seed` into `broker` and checks the Kafka runs `runs` (workers, sink).
fn kafka_matches_file_mode(broker: &Broker, seed: u64, runs: &[(usize, &str)]) {
    let lines = inputs::random_input(seed);
    let expected = expected_for(seed, &lines);
    let tmp = tempfile::tempdir().expect("create temp dir");
    let input = tmp.path().join(format!("seed-{seed}.jsonl"));
    inputs::write_lines(&input, &lines);

    // File mode, the reference: it must itself match the oracle.
    let file_out = tmp.path().join("file-mode");
    support::run_cli(&input, &file_out, 2, None);
    compare::assert_outputs_match(&file_out, &expected);
    let file_letters = compare::read_dead_letters(&file_out.join("dlq.jsonl"));

    let produced = tidewatch_ok(&[
        "produce",
        "--kafka",
        broker.bootstrap,
        "--input",
        path_str(&input),
    ]);
    assert!(
        produced
            .stderr
            .contains(&format!("done: {} messages", lines.len())),
        "{} seed {seed}: produce did not load all {} lines:\n{}",
        broker.name,
        lines.len(),
        produced.stderr
    );
    eprintln!(
        "{} seed {seed}: produced {} lines in {:?}",
        broker.name,
        lines.len(),
        produced.elapsed
    );

    for &(workers, sink) in runs {
        let what = format!("{} seed {seed} workers {workers} sink {sink}", broker.name);
        let out = tmp.path().join(format!("kafka-w{workers}-{sink}"));
        let group = format!(
            "e2e-{}-{seed}-w{workers}-{}",
            broker.name,
            std::process::id()
        );
        let workers_arg = workers.to_string();
        let ran = tidewatch_ok(&[
            "run",
            "--kafka",
            broker.bootstrap,
            "--stop-at-end",
            "--out",
            path_str(&out),
            "-q",
            "--group",
            &group,
            "--workers",
            &workers_arg,
            "--sink",
            sink,
        ]);
        eprintln!("{what}: run took {:?}", ran.elapsed);

        // (a) The same bytes as file mode, the oracle's results and dead letters.
        assert_same_file(&out, &file_out, "windows.jsonl", &what);
        assert_same_file(&out, &file_out, "alerts.jsonl", &what);
        compare::assert_outputs_match(&out, &expected);
        assert_eq!(
            compare::read_dead_letters(&out.join("dlq.jsonl")),
            file_letters,
            "{what}: dead letters (reason, raw) differ from file mode's"
        );

        // (b) Dead letters name distinct input messages.
        let letters = check_kafka_dead_letters(&out, &what);
        assert_eq!(letters.len(), expected.dead_letters.len(), "{what}");
        if broker.kcat_readable {
            check_dead_letters_name_their_messages(broker.bootstrap, &letters, &what);
        }

        // (c) The Kafka sink holds the rows of the files, keyed by warehouse.
        if sink == "both" {
            if broker.kcat_readable {
                check_sink_topics(broker.bootstrap, &out, &what);
            } else {
                let readback = tmp.path().join(format!("readback-w{workers}"));
                check_sink_topics_via_tidewatch(broker.bootstrap, &out, &readback, &what);
            }
        }
    }
}

/// Two seeds; each loaded into a fresh broker, so that the output topics of its one
/// `--sink both` run hold nothing else.
const SEED_RUNS: [(u64, [(usize, &str); 2]); 2] = [
    (1, [(1, "files"), (2, "both")]),
    (2, [(1, "both"), (2, "files")]),
];

#[test]
fn dev_broker_matches_file_mode_and_oracle() {
    for (seed, runs) in SEED_RUNS {
        let dev = DevBrokerProcess::start();
        let broker = Broker {
            name: "dev",
            bootstrap: &dev.bootstrap,
            kcat_readable: true,
        };
        kafka_matches_file_mode(&broker, seed, &runs);
    }
}

#[test]
fn tansu_matches_file_mode_and_oracle() {
    for (seed, runs) in SEED_RUNS {
        let tansu = Tansu::start(&TIDEWATCH_TOPICS);
        let broker = Broker {
            name: "tansu",
            bootstrap: &tansu.bootstrap,
            kcat_readable: false,
        };
        kafka_matches_file_mode(&broker, seed, &runs);
    }
}

/// Asserts a failed start: non-zero exit, and stderr one line `tidewatch: ...` mentioning
/// `needle`, without panic text.
fn assert_one_line_failure(ran: &Ran, needle: &str, what: &str) {
    assert!(
        !ran.status.success(),
        "{what}: exited 0; stderr:\n{}",
        ran.stderr
    );
    let lines: Vec<&str> = ran
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(
        !ran.stderr.contains("panicked"),
        "{what}: panic:\n{}",
        ran.stderr
    );
    assert_eq!(
        lines.len(),
        1,
        "{what}: expected one line on stderr, got:\n{}",
        ran.stderr
    );
    assert!(
        lines[0].starts_with("tidewatch:"),
        "{what}: stderr does not start with `tidewatch:`: {}",
        lines[0]
    );
    assert!(
        lines[0].contains(needle),
        "{what}: stderr does not mention {needle}: {}",
        lines[0]
    );
}

#[test]
fn unreachable_broker_fails_with_one_line() {
    let tmp = tempfile::tempdir().expect("create temp dir");
    let address = format!("127.0.0.1:{}", free_port());
    let out = tmp.path().join("out");
    let ran = tidewatch(
        &[
            "run",
            "--kafka",
            &address,
            "--stop-at-end",
            "--out",
            path_str(&out),
        ],
        Duration::from_secs(60),
    );
    eprintln!(
        "unreachable broker: exit {} after {:?}",
        ran.status, ran.elapsed
    );
    assert_one_line_failure(&ran, &address, "unreachable broker");
    assert!(
        ran.elapsed < Duration::from_secs(30),
        "unreachable broker: took {:?}",
        ran.elapsed
    );
}

#[test]
fn missing_topic_fails_with_one_line() {
    let dev = DevBrokerProcess::start();
    let tmp = tempfile::tempdir().expect("create temp dir");
    let out = tmp.path().join("out");
    let ran = tidewatch(
        &[
            "run",
            "--kafka",
            &dev.bootstrap,
            "--topics",
            "orders,nope",
            "--stop-at-end",
            "--out",
            path_str(&out),
        ],
        Duration::from_secs(60),
    );
    eprintln!("missing topic: exit {} after {:?}", ran.status, ran.elapsed);
    assert_one_line_failure(&ran, "nope", "missing topic");
}
