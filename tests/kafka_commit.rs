//! The Kafka source's offset-commit rule and resuming from committed offsets, against the
//! in-process development broker (librdkafka's mock cluster), through the library API.
//!
//! The rule (`KafkaSource::commit`): offset `o` of a partition is committed once every message
//! before it has `ts + horizon < durable_frontier`, judged on the checkpoints
//! `(next offset, largest ts before it)` the caller recorded; the frontier travels in the
//! commit's metadata and comes back as `Resume::durable_frontier`. Where no checkpoint is
//! finished yet, the source may commit the first offset it read (where a replay starts anyway)
//! to store a newer frontier; it never commits past an unfinished checkpoint.
//!
//! Scenario: a 2-partition input topic (keys spread the messages over both) plus a 1-partition
//! topic that stays empty at first. Batch A is read and checkpointed, then batch B, so each
//! partition has two checkpoints. Commits at chosen frontiers must then advance exactly the
//! partitions (and only to the checkpoints) the rule allows; a source opened from the committed
//! offsets must read nothing old and exactly the messages produced afterwards, also on the
//! partition that never had a committed offset. A second test checks that `commit_final` (the
//! end-of-run commit) returns once its commit is done rather than when its timeout runs out.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use tidewatch_connectors::kafka::broker::{DevBroker, DevBrokerConfig, TopicSpec};
use tidewatch_connectors::kafka::produce::{produce_lines, EventTopics, ProduceConfig};
use tidewatch_connectors::kafka::source::{
    read_resume, KafkaSource, Resume, SourceConfig, StartFrom,
};
use tidewatch_connectors::kafka::KafkaConfig;
use tidewatch_dataflows::logi1::Logi1Config;

/// The input topic with two partitions.
const TOPIC: &str = "commit-in";
/// A one-partition input topic that is empty until the end of the test.
const EMPTY_TOPIC: &str = "commit-empty";
const GROUP: &str = "commit-test";
/// Event time of the first message.
const BASE_TS: u64 = 1_764_288_000_000;
/// Upper bound on every wait for the broker (generous: only there to avoid a hang).
const WAIT: Duration = Duration::from_secs(30);
/// `commit_final`'s timeout (the runner's); the development broker answers in milliseconds.
const FINAL_TIMEOUT: Duration = Duration::from_secs(10);

/// One message as the test produced and then read it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Read {
    topic: String,
    partition: i32,
    offset: u64,
    line: String,
}

/// A sensor event of warehouse `w-{wh}` at `ts`.
fn sensor(wh: usize, ts: u64) -> String {
    format!(
        r#"{{"type":"sensor","sensor_id":"s-{ts}","warehouse":"w-{wh}","metric":"temperature","value":20.5,"ts":{ts}}}"#
    )
}

fn ts_of(line: &str) -> u64 {
    let value: serde_json::Value = serde_json::from_str(line).expect("the test's lines are JSON");
    value["ts"].as_u64().expect("the test's lines carry ts")
}

/// Produces `lines` into `topic` (all three event types routed there), keyed by warehouse.
fn produce(bootstrap: &str, topic: &str, lines: &[String]) {
    let config = ProduceConfig {
        kafka: KafkaConfig::new(bootstrap),
        topics: EventTopics {
            orders: topic.to_string(),
            deliveries: topic.to_string(),
            sensors: topic.to_string(),
        },
    };
    let mut text = lines.join("\n");
    text.push('\n');
    let summary = produce_lines(&config, Cursor::new(text), &AtomicBool::new(false))
        .expect("produce into the development broker");
    assert_eq!(summary.lines, lines.len() as u64, "{summary:?}");
    assert_eq!(summary.unroutable, 0, "{summary:?}");
}

fn source_config(bootstrap: &str, from: StartFrom) -> SourceConfig {
    SourceConfig {
        topics: vec![TOPIC.to_string(), EMPTY_TOPIC.to_string()],
        group: GROUP.to_string(),
        from,
        stop_at_end: false,
        // A partition at its end stops holding the watermark at once: `holds_watermark` then
        // says whether a partition has caught up.
        idle_timeout: Duration::ZERO,
        ..SourceConfig::new(KafkaConfig::new(bootstrap))
    }
}

/// Reads until `want` messages have arrived and every partition is at its end again (bounded
/// by [`WAIT`]); returns what was read.
fn read_until(source: &mut KafkaSource, want: usize) -> Vec<(usize, Read)> {
    let deadline = Instant::now() + WAIT;
    let mut got = Vec::new();
    let mut line = Vec::new();
    loop {
        while let Some((part, offset)) = source.next_message(&mut line, &|_| true) {
            let (topic, partition) = source.topic_partition(part).expect("a valid part");
            got.push((
                part,
                Read {
                    topic: topic.to_string(),
                    partition,
                    offset,
                    line: String::from_utf8(line.clone()).expect("UTF-8 message"),
                },
            ));
        }
        let caught_up = (0..source.parts()).all(|part| !source.holds_watermark(part));
        if got.len() >= want && caught_up {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "read {} of {want} messages within {WAIT:?} (caught up: {caught_up}): {got:?}",
            got.len()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Polls `read_resume` until `done` accepts it (an asynchronous commit lands a little later).
fn resume_when(config: &SourceConfig, what: &str, done: impl Fn(&Resume) -> bool) -> Resume {
    let deadline = Instant::now() + WAIT;
    loop {
        let resume = read_resume(config).expect("read the committed offsets");
        if done(&resume) {
            return resume;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not committed within {WAIT:?}; committed: {resume:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Per part: (messages, largest ts) of `reads`.
fn per_part(parts: usize, reads: &[(usize, Read)]) -> Vec<(u64, Option<u64>)> {
    let mut out = vec![(0u64, None::<u64>); parts];
    for (part, read) in reads {
        let entry = &mut out[*part];
        entry.0 += 1;
        let ts = ts_of(&read.line);
        entry.1 = Some(entry.1.map_or(ts, |m| m.max(ts)));
    }
    out
}

/// A development broker with [`TOPIC`] (2 partitions) and [`EMPTY_TOPIC`] (1 partition).
fn start_broker() -> DevBroker {
    DevBroker::start(&DevBrokerConfig {
        port: 0,
        partitions: 2,
        topics: vec![
            TopicSpec::new(TOPIC),
            TopicSpec {
                name: EMPTY_TOPIC.to_string(),
                partitions: Some(1),
            },
        ],
    })
    .expect("start the development broker")
}

/// Asserts that `resume` commits every partition of `advanced` at exactly that offset and
/// every other partition nowhere but at offset 0 (the first message this run read) — no offset
/// advanced — and that a commit carries `frontier`.
fn assert_no_offset_beyond(
    resume: &Resume,
    advanced: &BTreeMap<(String, i32), i64>,
    all: &[(String, i32)],
    frontier: u64,
) {
    for key in all {
        let committed = resume.offsets.get(key).copied();
        match advanced.get(key) {
            Some(&offset) => assert_eq!(
                committed,
                Some(offset),
                "{key:?} must be committed at {offset}: {resume:?}"
            ),
            None => assert!(
                matches!(committed, None | Some(0)),
                "{key:?}: offset advanced to {committed:?} although frontier {frontier} does \
                 not finish its messages: {resume:?}"
            ),
        }
    }
    let expected_frontier = (!resume.offsets.is_empty()).then_some(frontier);
    assert_eq!(resume.durable_frontier, expected_frontier, "{resume:?}");
}

#[test]
fn commit_rule_and_resume_from_committed_offsets() {
    let broker = start_broker();
    let bootstrap = broker.bootstrap();
    let horizon = Logi1Config::default().state_horizon_ms();

    // Batch A and then batch B; ts strictly increasing, so every partition's largest ts differs.
    let warehouses = 8;
    let batch_a: Vec<String> = (0..24)
        .map(|i| sensor(i % warehouses, BASE_TS + i as u64 * 1_000))
        .collect();
    let batch_b: Vec<String> = (24..40)
        .map(|i| sensor(i % warehouses, BASE_TS + i as u64 * 1_000))
        .collect();

    let config = source_config(&bootstrap, StartFrom::Earliest);
    let mut source = KafkaSource::open(&config, 0, 1).expect("open the source");
    assert_eq!(
        source.parts(),
        3,
        "two partitions of {TOPIC}, one of {EMPTY_TOPIC}"
    );
    let parts = source.parts();
    let empty_part = (0..parts)
        .find(|&p| source.topic_partition(p).map(|(t, _)| t) == Some(EMPTY_TOPIC))
        .expect("the empty topic is assigned");

    produce(&bootstrap, TOPIC, &batch_a);
    let read_a = read_until(&mut source, batch_a.len());
    let stats_a = per_part(parts, &read_a);
    for (part, (_, max_ts)) in stats_a.iter().enumerate() {
        source.checkpoint(part, *max_ts);
    }
    produce(&bootstrap, TOPIC, &batch_b);
    let read_b = read_until(&mut source, batch_b.len());
    let all_reads: Vec<(usize, Read)> = read_a.iter().chain(&read_b).cloned().collect();
    let stats_all = per_part(parts, &all_reads);
    for (part, (_, max_ts)) in stats_all.iter().enumerate() {
        source.checkpoint(part, *max_ts);
    }

    // Everything was read exactly once, in offset order per partition, from offset 0.
    let mut lines: Vec<&str> = all_reads.iter().map(|(_, r)| r.line.as_str()).collect();
    lines.sort_unstable();
    let mut expected_lines: Vec<&str> =
        batch_a.iter().chain(&batch_b).map(String::as_str).collect();
    expected_lines.sort_unstable();
    assert_eq!(lines, expected_lines, "read what was produced, once each");
    for part in 0..parts {
        let offsets: Vec<u64> = all_reads
            .iter()
            .filter(|(p, _)| *p == part)
            .map(|(_, r)| r.offset)
            .collect();
        assert_eq!(
            offsets,
            (0..offsets.len() as u64).collect::<Vec<_>>(),
            "part {part}"
        );
    }
    // Both input partitions got messages of both batches (else the scenario tests less).
    let input_parts: Vec<usize> = (0..parts).filter(|&p| p != empty_part).collect();
    for &part in &input_parts {
        assert!(
            stats_a[part].0 > 0 && stats_all[part].0 > stats_a[part].0,
            "partition {} has messages of both batches: A {:?}, all {:?}",
            source.part_name(part),
            stats_a,
            stats_all
        );
    }
    assert_eq!(stats_all[empty_part].0, 0);
    let keys: Vec<(String, i32)> = (0..parts)
        .map(|part| {
            let (topic, partition) = source.topic_partition(part).expect("valid part");
            (topic.to_string(), partition)
        })
        .collect();
    let key = |part: usize| keys[part].clone();
    let max_a = |part: usize| stats_a[part].1.expect("the partition has messages");
    let max_all = |part: usize| stats_all[part].1.expect("the partition has messages");
    // The input partition whose batch-A messages end earlier, and the other one.
    let (lo, hi) = if max_a(input_parts[0]) < max_a(input_parts[1]) {
        (input_parts[0], input_parts[1])
    } else {
        (input_parts[1], input_parts[0])
    };
    assert!(max_a(lo) < max_a(hi));

    // (a) A frontier equal to the earliest `max_ts + horizon` lets no offset advance: the rule
    // is strict (an output at the frontier itself may still depend on those messages). The
    // source may commit where a replay would start anyway, the first offset it read (0 here),
    // to store the newer frontier; it must not commit past it.
    let frontier_a = max_a(lo) + horizon;
    source.commit_final(frontier_a, horizon, FINAL_TIMEOUT);
    let resume = read_resume(&config).expect("read the committed offsets");
    assert_no_offset_beyond(&resume, &BTreeMap::new(), &keys, frontier_a);

    // One millisecond more: `lo`'s batch-A checkpoint is finished (an asynchronous commit,
    // without commit_final: polled until it lands). `hi` (later batch-A messages) and `lo`'s
    // batch B are not.
    let frontier_lo = frontier_a + 1;
    assert!(max_a(hi) + horizon >= frontier_lo && max_all(lo) + horizon >= frontier_lo);
    source.commit(frontier_lo, horizon);
    let resume = resume_when(&config, "lo's batch-A checkpoint", |r| {
        r.offsets.contains_key(&key(lo))
            && r.offsets[&key(lo)] > 0
            && r.durable_frontier == Some(frontier_lo)
    });
    let lo_committed = BTreeMap::from([(key(lo), stats_a[lo].0 as i64)]);
    assert_no_offset_beyond(&resume, &lo_committed, &keys, frontier_lo);
    assert_eq!(
        resume.offsets.get(&key(lo)),
        Some(&(stats_a[lo].0 as i64)),
        "frontier {frontier_lo}: {}'s batch-A checkpoint is finished",
        source.part_name(lo)
    );

    // (b) A frontier past every message's `ts + horizon`: each input partition is committed at
    // its message count (its end), with that frontier. The empty partition (no message, no
    // checkpoint) has nothing to commit.
    let frontier_b = input_parts
        .iter()
        .map(|&p| max_all(p))
        .max()
        .expect("two parts")
        + horizon
        + 1;
    source.commit_final(frontier_b, horizon, FINAL_TIMEOUT);
    let resume = read_resume(&config).expect("read the committed offsets");
    let expected: BTreeMap<(String, i32), i64> = input_parts
        .iter()
        .map(|&p| (key(p), stats_all[p].0 as i64))
        .collect();
    assert_eq!(
        resume.offsets, expected,
        "the commit is done once commit_final returns"
    );
    assert_eq!(resume.durable_frontier, Some(frontier_b));
    // Committing again at the same or a smaller frontier changes nothing.
    source.commit_final(frontier_b, horizon, FINAL_TIMEOUT);
    source.commit_final(frontier_lo, horizon, FINAL_TIMEOUT);
    let again = read_resume(&config).expect("read the committed offsets");
    assert_eq!(again.offsets, expected);
    assert_eq!(again.durable_frontier, Some(frontier_b));
    // The run is over (a restarted process opens a new consumer).
    drop(source);

    // (c) Resuming from the committed offsets reads nothing old ...
    let resumed_config = source_config(&bootstrap, StartFrom::Committed);
    let mut resumed = KafkaSource::open(&resumed_config, 0, 1).expect("open the resumed source");
    let nothing = read_until(&mut resumed, 0);
    assert!(
        nothing.is_empty(),
        "a source resumed from the committed offsets read old messages again: {nothing:?}"
    );
    // ... and exactly what is produced afterwards: three more messages, at the offsets after
    // the committed ones, and two on the partition that never had a committed offset (read
    // from its beginning).
    let batch_c: Vec<String> = (40..43)
        .map(|i| sensor(i % warehouses, BASE_TS + i as u64 * 1_000))
        .collect();
    produce(&bootstrap, TOPIC, &batch_c);
    let read_c = read_until(&mut resumed, batch_c.len());
    let mut got: Vec<String> = read_c.iter().map(|(_, r)| r.line.clone()).collect();
    got.sort_unstable();
    let mut want = batch_c.clone();
    want.sort_unstable();
    assert_eq!(
        got, want,
        "the resumed source reads exactly the new messages"
    );
    let mut next_offset: BTreeMap<(String, i32), i64> = expected.clone();
    for (_, read) in &read_c {
        let slot = next_offset
            .get_mut(&(read.topic.clone(), read.partition))
            .expect("the new messages are in the input topic");
        assert_eq!(
            read.offset as i64, *slot,
            "{read:?} follows the committed offset"
        );
        *slot += 1;
    }

    let batch_d: Vec<String> = (43..45)
        .map(|i| sensor(i % warehouses, BASE_TS + i as u64 * 1_000))
        .collect();
    produce(&bootstrap, EMPTY_TOPIC, &batch_d);
    let read_d = read_until(&mut resumed, batch_d.len());
    let got: Vec<(String, u64, String)> = read_d
        .iter()
        .map(|(_, r)| (r.topic.clone(), r.offset, r.line.clone()))
        .collect();
    let want: Vec<(String, u64, String)> = batch_d
        .iter()
        .enumerate()
        .map(|(i, l)| (EMPTY_TOPIC.to_string(), i as u64, l.clone()))
        .collect();
    assert_eq!(
        got, want,
        "the never-committed partition is read from its beginning"
    );

    // Committing the resumed run's reads moves every partition that read something to its
    // end, with the new frontier.
    let stats_resumed = per_part(
        resumed.parts(),
        &read_c.iter().chain(&read_d).cloned().collect::<Vec<_>>(),
    );
    for (part, (_, max_ts)) in stats_resumed.iter().enumerate() {
        resumed.checkpoint(part, *max_ts);
    }
    let frontier_c = BASE_TS + 45_000 + horizon;
    resumed.commit_final(frontier_c, horizon, FINAL_TIMEOUT);
    let resume = read_resume(&resumed_config).expect("read the committed offsets");
    let mut ends = next_offset;
    ends.insert((EMPTY_TOPIC.to_string(), 0), batch_d.len() as i64);
    assert_eq!(resume.offsets, ends);
    assert_eq!(resume.durable_frontier, Some(frontier_c));
    drop(resumed);
    drop(broker);
}

/// `commit_final` is the end-of-run commit: it must return once the broker has answered its
/// commit (the runner drops the consumer right after), not only when its timeout runs out —
/// else every Kafka run that has something left to commit at its end exits that much later.
/// The development broker answers an offset commit within milliseconds.
#[test]
fn commit_final_returns_once_its_commit_is_acknowledged() {
    let broker = start_broker();
    let bootstrap = broker.bootstrap();
    let horizon = Logi1Config::default().state_horizon_ms();
    let lines: Vec<String> = (0..8).map(|i| sensor(i, BASE_TS + i as u64)).collect();
    produce(&bootstrap, TOPIC, &lines);
    let config = source_config(&bootstrap, StartFrom::Earliest);
    let mut source = KafkaSource::open(&config, 0, 1).expect("open the source");
    let reads = read_until(&mut source, lines.len());
    let stats = per_part(source.parts(), &reads);
    for (part, (_, max_ts)) in stats.iter().enumerate() {
        source.checkpoint(part, *max_ts);
    }
    let expected: BTreeMap<(String, i32), i64> = stats
        .iter()
        .enumerate()
        .filter(|(_, (count, _))| *count > 0)
        .map(|(part, (count, _))| {
            let (topic, partition) = source.topic_partition(part).expect("valid part");
            ((topic.to_string(), partition), *count as i64)
        })
        .collect();

    let timeout = Duration::from_secs(30);
    let frontier = BASE_TS + 8 + horizon;
    let started = Instant::now();
    source.commit_final(frontier, horizon, timeout);
    let took = started.elapsed();
    let resume = read_resume(&config).expect("read the committed offsets");
    assert_eq!(resume.offsets, expected, "the final commit is done");
    assert_eq!(resume.durable_frontier, Some(frontier));
    assert!(
        took < timeout / 2,
        "commit_final took {took:?} of its {timeout:?} timeout although the broker stored the \
         commit at once: it never learns that its commit completed"
    );
    drop(source);
    drop(broker);
}
