//! The tansu test broker (tests/support/brokers.rs) itself: it starts on 127.0.0.1 with its
//! topics, accepts connections, can be frozen and thawed, and is gone once its guard is dropped.
//! Fails (does not skip) when tansu is not installed: run `.ci/run`.

mod support;

use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::brokers::{process_state, Tansu};

/// Polls the state letter of `pid` until `accept` holds, for at most 5 s.
fn wait_for_state(pid: u32, what: &str, accept: impl Fn(Option<char>) -> bool) {
    let start = Instant::now();
    loop {
        let state = process_state(pid);
        if accept(state) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "process {pid}: expected {what}, state is {state:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn tansu_starts_with_topics_pauses_resumes_and_dies_on_drop() {
    let tansu = Tansu::start(&[("orders", 4)]);
    let pid = tansu.pid();
    assert!(
        tansu.bootstrap.starts_with("127.0.0.1:"),
        "{}",
        tansu.bootstrap
    );

    let topics = tansu.list_topics();
    assert!(
        topics
            .iter()
            .any(|(name, parts)| name == "orders" && *parts == 4),
        "orders with 4 partitions not listed: {topics:?}"
    );
    TcpStream::connect(&tansu.bootstrap).expect("connect to tansu");

    tansu.pause();
    wait_for_state(pid, "stopped (T)", |s| s == Some('T'));
    tansu.resume();
    wait_for_state(
        pid,
        "running again",
        |s| matches!(s, Some(c) if c != 'T' && c != 't' && c != 'Z'),
    );
    // It answers again after resuming.
    tansu.create_topic("deliveries", 2);
    assert!(tansu
        .list_topics()
        .iter()
        .any(|(name, parts)| name == "deliveries" && *parts == 2));

    drop(tansu);
    assert_eq!(
        process_state(pid),
        None,
        "tansu (pid {pid}) still exists after drop"
    );
}
