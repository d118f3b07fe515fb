//! `tidewatch broker` and `tidewatch produce` seen through an independent Kafka client: kcat
//! (Debian's package, with its own librdkafka). Fails, never skips, when kcat is missing: run
//! `.ci/run`.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::brokers::{kcat, DevBrokerProcess};

/// How long one kcat or `tidewatch produce` run may take before the test gives up on it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `program args` with `stdin` as its standard input; panics (with its stderr) unless it
/// exits 0 within [`COMMAND_TIMEOUT`]. Returns its output.
fn run(program: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {} {args:?}: {e}", program.display()));
    let mut input = child.stdin.take().expect("stdin is piped");
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout is piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr is piped")));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            break Some(status);
        }
        if start.elapsed() > COMMAND_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = writer.join();
    let output = Output {
        status: status.unwrap_or_default(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    let describe = || {
        format!(
            "{} {args:?}\nstderr:\n{}",
            program.display(),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    assert!(
        status.is_some(),
        "did not finish within {COMMAND_TIMEOUT:?}: {}",
        describe()
    );
    assert!(output.status.success(), "{}: {}", output.status, describe());
    output
}

/// One consumed message: (partition, offset, key or "NULL", value).
type Consumed = (i32, i64, String, String);

/// Every message of `topic` from the beginning, read by kcat, in partition then offset order.
fn kcat_consume(bootstrap: &str, topic: &str) -> Vec<Consumed> {
    // -Z prints a missing key as NULL; -e exits at the end of every partition.
    let format = "%p\t%o\t%k\t%s\n";
    let output = run(
        &kcat(),
        &[
            "-b",
            bootstrap,
            "-C",
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-Z",
            "-f",
            format,
        ],
        b"",
    );
    let text = String::from_utf8(output.stdout).expect("kcat prints UTF-8 here");
    let mut messages: Vec<Consumed> = text
        .lines()
        .map(|line| {
            let mut fields = line.splitn(4, '\t');
            let mut next = || fields.next().expect("four tab-separated fields");
            let partition = next().parse().expect("partition");
            let offset = next().parse().expect("offset");
            (partition, offset, next().to_string(), next().to_string())
        })
        .collect();
    messages.sort_by_key(|(partition, offset, _, _)| (*partition, *offset));
    messages
}

/// Messages keyed alike are in one partition, in `expected_order` (a subsequence of it).
fn assert_key_order(topic: &str, messages: &[Consumed], expected_order: &[String]) {
    let mut by_key: BTreeMap<&str, Vec<&Consumed>> = BTreeMap::new();
    for message in messages {
        by_key.entry(&message.2).or_default().push(message);
    }
    for (key, group) in by_key.into_iter().filter(|(key, _)| *key != "NULL") {
        let partitions: Vec<i32> = group.iter().map(|m| m.0).collect();
        assert!(
            partitions.iter().all(|p| *p == partitions[0]),
            "{topic}: key {key} spread over partitions {partitions:?}"
        );
        let values: Vec<&String> = group.iter().map(|m| &m.3).collect();
        let in_input_order: Vec<&String> = expected_order
            .iter()
            .filter(|line| values.contains(line))
            .collect();
        assert_eq!(
            values, in_input_order,
            "{topic}: key {key} out of input order"
        );
    }
}

/// kcat produces three keyed messages into the development broker and reads them back.
#[test]
fn kcat_round_trip_through_the_development_broker() {
    let broker = DevBrokerProcess::start();
    let lines = [
        r#"wh-01:{"type":"order","order_id":"o-1","warehouse":"wh-01","sku":"s","qty":1,"amount":1.5,"ts":1000}"#,
        r#"wh-02:{"type":"order","order_id":"o-2","warehouse":"wh-02","sku":"s","qty":2,"amount":3.0,"ts":2000}"#,
        r#"wh-01:{"type":"order","order_id":"o-3","warehouse":"wh-01","sku":"s","qty":3,"amount":4.5,"ts":3000}"#,
    ];
    let mut stdin = lines.join("\n").into_bytes();
    stdin.push(b'\n');
    run(
        &kcat(),
        &["-b", &broker.bootstrap, "-P", "-t", "orders", "-K", ":"],
        &stdin,
    );

    let messages = kcat_consume(&broker.bootstrap, "orders");
    let mut got: Vec<(String, String)> = messages
        .iter()
        .map(|(_, _, key, value)| (key.clone(), value.clone()))
        .collect();
    got.sort();
    let mut expected: Vec<(String, String)> = lines
        .iter()
        .map(|line| {
            let (key, value) = line.split_once(':').expect("key:value");
            (key.to_string(), value.to_string())
        })
        .collect();
    expected.sort();
    assert_eq!(got, expected);
    let values: Vec<String> = lines
        .iter()
        .map(|line| line.split_once(':').expect("key:value").1.to_string())
        .collect();
    assert_key_order("orders", &messages, &values);

    let status = broker.terminate();
    assert!(
        status.success(),
        "tidewatch broker exited with {status} on SIGTERM"
    );
}

/// `tidewatch produce --input FILE` routes every line to the topic of its type, keyed by its
/// warehouse; kcat finds exactly those lines there, and the malformed ones unkeyed in orders.
#[test]
fn produce_loads_a_file_that_kcat_reads_back() {
    let broker = DevBrokerProcess::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("events.jsonl");
    let config = tidewatch_connectors::generator::GeneratorConfig {
        warehouses: 3,
        ..tidewatch_connectors::generator::GeneratorConfig::default()
    }
    .with_default_incidents();
    let mut content = Vec::new();
    tidewatch_connectors::generator::write_jsonl(&config, 3000, &mut content).expect("generate");
    content.extend_from_slice(b"not json at all\n{\"type\":\"refund\",\"warehouse\":\"wh-01\"}\n");
    std::fs::write(&path, &content).expect("write the input");
    let lines: Vec<String> = String::from_utf8(content)
        .expect("UTF-8")
        .lines()
        .map(String::from)
        .collect();

    let output = run(
        Path::new(env!("CARGO_BIN_EXE_tidewatch")),
        &[
            "produce",
            "--kafka",
            &broker.bootstrap,
            "--input",
            path.to_str().expect("UTF-8 path"),
        ],
        b"",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one summary line: {stderr}"
    );
    assert!(
        stderr.contains(&format!("done: {} messages", lines.len()))
            && stderr.contains("unroutable 2"),
        "{stderr}"
    );

    let mut expected: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut unroutable = Vec::new();
    for line in &lines {
        let kind = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v["type"].as_str().map(String::from));
        match kind.as_deref() {
            Some("order") => expected.entry("orders").or_default().push(line.clone()),
            Some("delivery") => expected.entry("deliveries").or_default().push(line.clone()),
            Some("sensor") => expected.entry("sensors").or_default().push(line.clone()),
            _ => unroutable.push(line.clone()),
        }
    }
    assert_eq!(unroutable.len(), 2);
    for (topic, routed) in &expected {
        let messages = kcat_consume(&broker.bootstrap, topic);
        let mut keyed: Vec<String> = Vec::new();
        let mut unkeyed: Vec<String> = Vec::new();
        for (_, _, key, value) in &messages {
            if key == "NULL" {
                unkeyed.push(value.clone());
                continue;
            }
            let warehouse = serde_json::from_str::<serde_json::Value>(value)
                .expect("routed values are JSON")["warehouse"]
                .as_str()
                .map(String::from);
            assert_eq!(
                warehouse.as_deref(),
                Some(key.as_str()),
                "{topic}: key is the warehouse"
            );
            keyed.push(value.clone());
        }
        let mut want = routed.clone();
        want.sort();
        keyed.sort();
        assert_eq!(keyed.len(), want.len(), "{topic}: message count");
        assert_eq!(keyed, want, "{topic}: exactly its lines, byte for byte");
        unkeyed.sort();
        let mut want_unkeyed = if *topic == "orders" {
            unroutable.clone()
        } else {
            Vec::new()
        };
        want_unkeyed.sort();
        assert_eq!(unkeyed, want_unkeyed, "{topic}: unkeyed (unroutable) lines");
        assert_key_order(topic, &messages, routed);
    }
    drop(broker);
}

/// The issue's interoperability path end to end: kcat produces the events (one topic per type,
/// keyed by warehouse), `tidewatch run --kafka` computes LOGI-1 into the output topics, kcat
/// reads the alerts back. They equal file mode's alerts row for row, keyed by warehouse.
#[test]
fn kcat_in_tidewatch_between_kcat_out() {
    let broker = DevBrokerProcess::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("events.jsonl");
    let bin = Path::new(env!("CARGO_BIN_EXE_tidewatch"));
    run(
        bin,
        &[
            "generate",
            "--events",
            "30000",
            "--out",
            input.to_str().expect("utf-8 path"),
        ],
        b"",
    );
    let text = std::fs::read_to_string(&input).expect("read the input");
    // kcat -K: splits `key:value` on the first colon: the warehouse, then the JSON line.
    let mut by_topic: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    for line in text.lines() {
        let event: serde_json::Value = serde_json::from_str(line).expect("generated JSON");
        let topic = match event["type"].as_str() {
            Some("order") => "orders",
            Some("delivery") => "deliveries",
            _ => "sensors",
        };
        let key = event["warehouse"].as_str().expect("warehouse");
        let batch = by_topic.entry(topic).or_default();
        batch.extend_from_slice(format!("{key}:{line}\n").as_bytes());
    }
    for (topic, batch) in &by_topic {
        run(
            &kcat(),
            &["-b", &broker.bootstrap, "-P", "-t", topic, "-K:"],
            batch,
        );
    }
    run(
        bin,
        &[
            "run",
            "--kafka",
            &broker.bootstrap,
            "--stop-at-end",
            "--workers",
            "2",
            "-q",
        ],
        b"",
    );
    let file_out = dir.path().join("file");
    run(
        bin,
        &[
            "run",
            "--input",
            input.to_str().expect("utf-8"),
            "--out",
            file_out.to_str().expect("utf-8"),
            "-q",
        ],
        b"",
    );
    let expected: Vec<String> = std::fs::read_to_string(file_out.join("alerts.jsonl"))
        .expect("file-mode alerts")
        .lines()
        .map(str::to_string)
        .collect();
    assert!(!expected.is_empty(), "the input raises no alert");
    let consumed = kcat_consume(&broker.bootstrap, "tidewatch.alerts");
    let mut values: Vec<String> = consumed.iter().map(|m| m.3.clone()).collect();
    let mut sorted_expected = expected.clone();
    values.sort();
    sorted_expected.sort();
    assert_eq!(values, sorted_expected, "alerts read by kcat");
    for (_, _, key, value) in &consumed {
        let row: serde_json::Value = serde_json::from_str(value).expect("alert JSON");
        assert_eq!(
            Some(key.as_str()),
            row["warehouse"].as_str(),
            "key of {value}"
        );
    }
}
