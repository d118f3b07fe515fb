//! `tidewatch produce` and `tidewatch broker` when something is wrong: an unreachable broker, a
//! port in use, wrong usage. Each gives one line on stderr and a non-zero exit, within a bound,
//! never a panic or a hang.

use std::net::TcpListener;
use std::time::Instant;

mod support;
use support::assert_one_line_error;

/// A port on 127.0.0.1 where nothing listens (bound, read, released).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

#[test]
fn produce_to_an_unreachable_broker_fails_in_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("events.jsonl");
    std::fs::write(&input, b"{\"type\":\"order\"}\n").expect("write");
    let bootstrap = format!("127.0.0.1:{}", closed_port());
    let started = Instant::now();
    assert_one_line_error(
        &[
            "produce",
            "--kafka",
            &bootstrap,
            "--input",
            input.to_str().expect("UTF-8 path"),
        ],
        &format!("cannot reach Kafka at {bootstrap}"),
    );
    eprintln!("unreachable broker reported after {:?}", started.elapsed());
}

#[test]
fn broker_on_a_port_in_use_fails_in_one_line() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = taken
        .local_addr()
        .expect("local address")
        .port()
        .to_string();
    assert_one_line_error(
        &["broker", "--port", &port],
        &format!("cannot listen on 127.0.0.1:{port}"),
    );
    drop(taken);
}

#[test]
fn produce_and_broker_usage_errors_are_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.jsonl");
    let missing = missing.to_str().expect("UTF-8 path");
    let kafka = "127.0.0.1:9";
    assert_one_line_error(&["produce", "--kafka", kafka, "--input", missing], missing);
    assert_one_line_error(&["produce", "--kafka", kafka], "--generate");
    assert_one_line_error(&["produce", "--input", missing], "--kafka");
    assert_one_line_error(
        &[
            "produce",
            "--kafka",
            kafka,
            "--input",
            missing,
            "--generate",
        ],
        "--generate",
    );
    assert_one_line_error(
        &[
            "produce", "--kafka", kafka, "--input", missing, "--events", "5",
        ],
        "--events",
    );
    assert_one_line_error(
        &["produce", "--kafka", kafka, "--generate", "--rate", "0"],
        "--rate",
    );
    assert_one_line_error(
        &["produce", "--kafka", kafka, "--generate", "--topics", "a,b"],
        "a,b",
    );
    assert_one_line_error(
        &[
            "produce",
            "--kafka",
            kafka,
            "--generate",
            "--kafka-option",
            "novalue",
        ],
        "novalue",
    );
    assert_one_line_error(&["broker", "--partitions", "0"], "--partitions");
    assert_one_line_error(&["broker", "--topic", "bad name"], "bad name");
    assert_one_line_error(&["broker", "--topic", "t:zero"], "t:zero");
}

/// `run --kafka` usage and configuration errors: one line each, before anything is created.
#[test]
fn run_kafka_usage_and_option_errors_are_one_line() {
    let port = closed_port().to_string();
    let brokers = format!("127.0.0.1:{port}");
    // librdkafka rejects an unknown property at once.
    assert_one_line_error(
        &[
            "run",
            "--kafka",
            &brokers,
            "--kafka-option",
            "no.such.property=1",
        ],
        "no.such.property",
    );
    assert_one_line_error(
        &[
            "run",
            "--kafka",
            &brokers,
            "--kafka-option",
            "missing-equals",
        ],
        "key=value",
    );
    assert_one_line_error(
        &["run", "--kafka", &brokers, "--input", "x.jsonl"],
        "--input",
    );
    assert_one_line_error(&["run", "--stop-at-end"], "--kafka");
    assert_one_line_error(
        &["run", "--kafka", &brokers, "--sink", "both"],
        "--sink both needs --out",
    );
    // TLS and SASL/SCRAM settings are accepted (OpenSSL is built in): the only failure left
    // is the unreachable broker, after the bounded wait.
    assert_one_line_error(
        &[
            "run",
            "--kafka",
            &brokers,
            "--stop-at-end",
            "--kafka-option",
            "security.protocol=SASL_SSL",
            "--kafka-option",
            "sasl.mechanism=SCRAM-SHA-512",
            "--kafka-option",
            "sasl.username=u",
            "--kafka-option",
            "sasl.password=p",
        ],
        "cannot reach Kafka",
    );
}
