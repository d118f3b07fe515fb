//! The Kafka source: one consumer per worker, partitions assigned deterministically.
//!
//! Worker `index` of `peers` reads every partition `p` of every input topic with
//! `p % peers == index`, by `assign` (never group rebalancing), so which worker reads what does
//! not depend on timing. Each partition has its own queue ([`PartitionQueue`]); reads go round
//! the partitions in bounded slices, so one busy partition cannot starve the others, and a
//! partition the caller marks as ahead is simply not read (librdkafka's prefetch queue is
//! bounded, so nothing grows without bound).
//!
//! The source tracks, per partition: the next offset, whether the partition sits at its end
//! (librdkafka's partition-EOF event) and since when, whether it is done (`--stop-at-end`: it has
//! reached its end), and *checkpoints* `(next offset, largest event time before
//! it)` from which [`KafkaSource::commit`] picks the offsets that are safe to commit (see the
//! commit rule there).
//!
//! # Example
//! ```no_run
//! use tidewatch_connectors::kafka::{KafkaConfig, source::{KafkaSource, SourceConfig, StartFrom}};
//! let config = SourceConfig::new(KafkaConfig::new("127.0.0.1:9092"));
//! let mut source = KafkaSource::open(&config, 0, 1).expect("broker reachable");
//! let mut line = Vec::new();
//! while let Some((part, offset)) = source.next_message(&mut line, &|_| true) {
//!     println!("{} @ {offset}: {}", source.part_name(part), String::from_utf8_lossy(&line));
//! }
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use tidewatch_operators::event::Millis;

use super::{KafkaConfig, KafkaError, CONNECT_TIMEOUT, DEFAULT_GROUP, DEFAULT_INPUT_TOPICS};

/// Where a run starts reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartFrom {
    /// The beginning of each partition.
    Earliest,
    /// The end of each partition: only messages produced after the start.
    Latest,
    /// The group's committed offsets (the beginning where the group has none), resuming a run.
    Committed,
}

/// Settings of the source.
#[derive(Clone, Debug)]
pub struct SourceConfig {
    /// Brokers and pass-through options.
    pub kafka: KafkaConfig,
    /// Input topics.
    pub topics: Vec<String>,
    /// Consumer group whose committed offsets are read and written.
    pub group: String,
    /// Where to start.
    pub from: StartFrom,
    /// Stop once every assigned partition has reached its end: the consumer has caught up with
    /// the partition's high watermark (at least the end offset it had at start).
    pub stop_at_end: bool,
    /// A partition at its end for this long stops holding the watermark back.
    pub idle_timeout: Duration,
}

impl SourceConfig {
    /// The default topics and group, from the earliest offsets, running until stopped.
    pub fn new(kafka: KafkaConfig) -> Self {
        SourceConfig {
            kafka,
            topics: DEFAULT_INPUT_TOPICS.iter().map(|t| t.to_string()).collect(),
            group: DEFAULT_GROUP.to_string(),
            from: StartFrom::Earliest,
            stop_at_end: false,
            idle_timeout: Duration::from_secs(10),
        }
    }
}

/// Logs librdkafka's own log lines and errors through `tracing`, rate-limited: while a broker is
/// down, librdkafka reports an error every few milliseconds. Until the client has reached the
/// brokers once ([`LoggingContext::connected`]), they are debug lines only: a broker that is
/// unreachable at start is reported once, by the error the caller gets after its bounded wait.
#[derive(Default)]
pub struct LoggingContext {
    connected: std::sync::atomic::AtomicBool,
    last_error: std::sync::Mutex<Option<Instant>>,
}

impl LoggingContext {
    /// Marks the client as having reached the brokers: from now on, trouble is a warning.
    pub fn connected(&self) {
        self.connected
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn is_connected(&self) -> bool {
        self.connected.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn should_log(&self) -> bool {
        let Ok(mut last) = self.last_error.lock() else {
            return false;
        };
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < Duration::from_secs(5)) {
            return false;
        }
        *last = Some(now);
        true
    }
}

impl ClientContext for LoggingContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        let serious = matches!(
            level,
            L::Emerg | L::Alert | L::Critical | L::Error | L::Warning
        );
        if serious && self.is_connected() && self.should_log() {
            tracing::warn!(target: "tidewatch::kafka", facility = fac, "{log_message}");
        } else {
            tracing::debug!(target: "tidewatch::kafka", facility = fac, "{log_message}");
        }
    }

    fn error(&self, error: RdError, reason: &str) {
        if matches!(error, RdError::PartitionEOF(_))
            || error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::PartitionEOF)
        {
            return;
        }
        // Transport errors while a broker is away are expected: librdkafka reconnects by itself.
        if self.is_connected() && self.should_log() {
            tracing::warn!(target: "tidewatch::kafka", %error, reason, "kafka client error (retrying)");
        }
    }
}

impl ConsumerContext for LoggingContext {
    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        _offsets: &TopicPartitionList,
    ) {
        if let Err(error) = result {
            if self.should_log() {
                tracing::warn!(%error, "offset commit failed (will retry)");
            }
        }
    }
}

type Queue = PartitionQueue<LoggingContext>;

/// One assigned partition.
struct Part {
    topic: String,
    partition: i32,
    queue: Queue,
    /// Offset of the next message to read (`None` until the first message).
    next_offset: Option<i64>,
    /// With `--stop-at-end`: the partition is done once it reports its end.
    stop_at_end: bool,
    /// At its end since this instant, with nothing read since.
    at_end_since: Option<Instant>,
    /// Reached its end with `--stop-at-end`: nothing more is read.
    done: bool,
    /// Largest event time read so far (as reported by the caller).
    max_ts: Option<Millis>,
    /// `(next offset, largest event time of the messages before it)`, oldest first.
    checkpoints: VecDeque<(i64, Millis)>,
    /// Offset of the first message read in this run: where a replay must start while no
    /// checkpoint is old enough to commit.
    first_offset: Option<i64>,
    /// Last committed offset and the durable frontier stored with it.
    committed: Option<(i64, u64)>,
}

/// Committed offsets found at start, and the output frontier stored with them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resume {
    /// Offsets per `(topic, partition)`.
    pub offsets: BTreeMap<(String, i32), i64>,
    /// The largest output frontier stored with any committed offset: every output at a time
    /// below it was written before that commit, so a resumed run suppresses them.
    pub durable_frontier: Option<u64>,
}

/// Prefix of the commit metadata that carries the durable output frontier.
const FRONTIER_METADATA: &str = "tidewatch:durable_frontier=";

/// One worker's Kafka consumer and its partitions.
pub struct KafkaSource {
    consumer: Arc<BaseConsumer<LoggingContext>>,
    parts: Vec<Part>,
    /// Round-robin position.
    cursor: usize,
    /// Messages read from the current partition in this slice.
    slice: usize,
    idle_timeout: Duration,
    group: String,
    last_commit_error: Option<Instant>,
    /// Messages read since the consumer's own queue was last served.
    since_served: usize,
}

/// Serve the consumer's own queue once per this many reads (and whenever nothing is ready).
const SERVE_EVERY: usize = 1024;

/// Messages read from one partition before moving to the next.
const SLICE: usize = 256;

impl KafkaSource {
    /// Connects worker `index` of `peers`, assigns its partitions and positions them.
    ///
    /// Fails after a bounded wait ([`CONNECT_TIMEOUT`]) when the brokers do not answer, and at
    /// once when an input topic does not exist.
    pub fn open(config: &SourceConfig, index: usize, peers: usize) -> Result<Self, KafkaError> {
        let consumer = Arc::new(create_consumer(config, index)?);
        let partitions = topic_partitions(consumer.as_ref(), &config.kafka, &config.topics)?;
        consumer.context().connected();
        let mine: Vec<(String, i32)> = partitions
            .iter()
            .filter(|(_, p)| (*p as usize) % peers.max(1) == index)
            .cloned()
            .collect();
        let mut assignment = TopicPartitionList::with_capacity(mine.len());
        for (topic, partition) in &mine {
            let offset = match config.from {
                StartFrom::Earliest => Offset::Beginning,
                StartFrom::Latest => Offset::End,
                StartFrom::Committed => Offset::Stored,
            };
            assignment
                .add_partition_offset(topic, *partition, offset)
                .map_err(|e| KafkaError::client("cannot build the partition assignment", e))?;
        }
        let mut parts = Vec::with_capacity(mine.len());
        for (topic, partition) in mine {
            let queue = consumer
                .split_partition_queue(&topic, partition)
                .ok_or_else(|| {
                    KafkaError::Other(format!("cannot open the queue of {topic}/{partition}"))
                })?;
            parts.push(Part {
                topic,
                partition,
                queue,
                next_offset: None,
                stop_at_end: config.stop_at_end,
                at_end_since: None,
                done: false,
                max_ts: None,
                checkpoints: VecDeque::new(),
                first_offset: None,
                committed: None,
            });
        }
        consumer
            .assign(&assignment)
            .map_err(|e| KafkaError::client("cannot assign partitions", e))?;
        tracing::info!(
            worker = index,
            partitions = ?parts.iter().map(|p| format!("{}/{}", p.topic, p.partition)).collect::<Vec<_>>(),
            from = ?config.from,
            "kafka source assigned"
        );
        Ok(KafkaSource {
            consumer,
            parts,
            cursor: 0,
            slice: 0,
            idle_timeout: config.idle_timeout,
            group: config.group.clone(),
            last_commit_error: None,
            since_served: 0,
        })
    }

    /// Number of partitions this worker reads.
    pub fn parts(&self) -> usize {
        self.parts.len()
    }

    /// `topic/partition` of part `part`, for logs and dead letters.
    pub fn part_name(&self, part: usize) -> String {
        self.parts
            .get(part)
            .map_or_else(String::new, |p| format!("{}/{}", p.topic, p.partition))
    }

    /// Topic and partition number of part `part`.
    pub fn topic_partition(&self, part: usize) -> Option<(&str, i32)> {
        self.parts
            .get(part)
            .map(|p| (p.topic.as_str(), p.partition))
    }

    /// Whether every partition has reached its end offset (only with `--stop-at-end`).
    pub fn finished(&self) -> bool {
        self.parts.iter().all(|p| p.done)
    }

    /// Whether part `part` may hold the watermark back: not done, and not sitting at its end
    /// for longer than the idle timeout.
    pub fn holds_watermark(&self, part: usize) -> bool {
        self.parts.get(part).is_some_and(|p| {
            !p.done
                && p.at_end_since
                    .is_none_or(|since| since.elapsed() < self.idle_timeout)
        })
    }

    /// Reads the next message of a partition that `may_read` allows into `line` (replacing its
    /// content) and returns its part and offset; `None` when no allowed partition has a message
    /// ready now. Never blocks.
    pub fn next_message(
        &mut self,
        line: &mut Vec<u8>,
        may_read: &dyn Fn(usize) -> bool,
    ) -> Option<(usize, u64)> {
        // The consumer's own queue (errors, logs) needs serving now and then, not per message.
        self.since_served += 1;
        if self.since_served >= SERVE_EVERY {
            self.since_served = 0;
            self.serve_events();
        }
        let n = self.parts.len();
        // At most one full round without a message.
        let mut empty_in_a_row = 0;
        while empty_in_a_row < n {
            if self.slice >= SLICE {
                self.advance_cursor();
            }
            let index = self.cursor;
            if self.parts[index].done || !may_read(index) {
                self.advance_cursor();
                empty_in_a_row += 1;
                continue;
            }
            let part = &mut self.parts[index];
            match part.queue.poll(Duration::ZERO) {
                Some(Ok(message)) => {
                    line.clear();
                    line.extend_from_slice(message.payload().unwrap_or_default());
                    let offset = message.offset();
                    part.next_offset = Some(offset + 1);
                    part.first_offset.get_or_insert(offset);
                    part.at_end_since = None;
                    self.slice += 1;
                    return Some((index, offset.max(0) as u64));
                }
                Some(Err(RdError::PartitionEOF(_))) => {
                    if part.at_end_since.is_none() {
                        part.at_end_since = Some(Instant::now());
                    }
                    // The consumer has caught up with the partition's high watermark, which is
                    // at least the end offset it had at start. (The event comes with the fetch
                    // itself; some brokers, tansu 0.6 among them, answer the separate
                    // end-offset query wrongly, so it is not used.)
                    if part.stop_at_end {
                        part.done = true;
                    }
                    self.advance_cursor();
                    empty_in_a_row += 1;
                }
                Some(Err(error)) => {
                    tracing::warn!(partition = %format!("{}/{}", part.topic, part.partition), %error, "kafka read error (retrying)");
                    self.advance_cursor();
                    empty_in_a_row += 1;
                }
                None => {
                    self.advance_cursor();
                    empty_in_a_row += 1;
                }
            }
        }
        self.serve_events();
        None
    }

    fn advance_cursor(&mut self) {
        self.slice = 0;
        self.cursor = (self.cursor + 1) % self.parts.len().max(1);
    }

    /// Serves the consumer's own queue (errors, commit results, logs).
    fn serve_events(&mut self) {
        while let Some(result) = self.consumer.poll(Duration::ZERO) {
            match result {
                Ok(message) => tracing::warn!(
                    topic = message.topic(),
                    partition = message.partition(),
                    "message on the main queue ignored"
                ),
                Err(error) => {
                    if self.consumer.context().should_log() {
                        tracing::warn!(%error, "kafka consumer error (retrying)");
                    }
                }
            }
        }
    }

    /// Records that the messages of `part` read so far have event times at most `max_ts`
    /// (the caller's watermark bookkeeping knows it), as a commit checkpoint.
    pub fn checkpoint(&mut self, part: usize, max_ts: Option<Millis>) {
        let Some(p) = self.parts.get_mut(part) else {
            return;
        };
        let (Some(next), Some(max_ts)) = (p.next_offset, max_ts.or(p.max_ts)) else {
            return;
        };
        p.max_ts = Some(max_ts);
        if p.checkpoints
            .back()
            .is_some_and(|(offset, _)| *offset == next)
        {
            return;
        }
        p.checkpoints.push_back((next, max_ts));
    }

    /// Commits, per partition, the largest checkpointed offset all of whose messages are
    /// finished: every output they can still cause lies below `durable_frontier`, the frontier
    /// below which every output has been written and acknowledged by the sinks.
    ///
    /// A message with event time `ts` can change outputs at times up to `ts + horizon_ms` (the
    /// dataflow's state horizon: for LOGI-1, the 7-day join plus the 30-minute statistics), so
    /// offset `o` is committed once every message before `o` has `ts + horizon_ms <
    /// durable_frontier`. Restarting from the committed offsets therefore rebuilds all state
    /// needed for outputs at or after `durable_frontier`, which is stored in the commit's
    /// metadata so that the restarted run does not emit the outputs below it a second time.
    ///
    /// Asynchronous: never blocks the worker, also while the broker is away.
    pub fn commit(&mut self, durable_frontier: u64, horizon_ms: Millis) {
        let mut list = TopicPartitionList::new();
        for p in &mut self.parts {
            // Where a replay has to start at the latest: the last commit, else this run's
            // first message (committed again with a newer frontier, so that a resumed run
            // knows which outputs it need not write again).
            let mut offset = p.committed.map(|(offset, _)| offset).or(p.first_offset);
            while let Some(&(next, max_ts)) = p.checkpoints.front() {
                if max_ts.saturating_add(horizon_ms) >= durable_frontier {
                    break;
                }
                offset = Some(offset.map_or(next, |o| o.max(next)));
                p.checkpoints.pop_front();
            }
            let Some(offset) = offset else { continue };
            if p.committed
                .is_some_and(|(o, f)| o == offset && f >= durable_frontier)
            {
                continue;
            }
            match list.add_partition_offset(&p.topic, p.partition, Offset::Offset(offset)) {
                Ok(()) => {
                    if let Some(mut element) = list.find_partition(&p.topic, p.partition) {
                        element.set_metadata(format!("{FRONTIER_METADATA}{durable_frontier}"));
                    }
                    p.committed = Some((offset, durable_frontier));
                }
                Err(error) => tracing::warn!(%error, "cannot build the commit list"),
            }
        }
        if list.count() == 0 {
            return;
        }
        if let Err(error) = self.consumer.commit(&list, CommitMode::Async) {
            let now = Instant::now();
            if self
                .last_commit_error
                .is_none_or(|at| now.duration_since(at) > Duration::from_secs(5))
            {
                tracing::warn!(group = %self.group, %error, "offset commit failed (will retry)");
                self.last_commit_error = Some(now);
            }
            // Retry with the next commit: forget that these were committed.
            for p in &mut self.parts {
                if list.find_partition(&p.topic, p.partition).is_some() {
                    p.committed = None;
                }
            }
        }
    }

    /// Commits synchronously what [`KafkaSource::commit`] would, waiting up to `timeout` (at
    /// the end of a run).
    pub fn commit_final(&mut self, durable_frontier: u64, horizon_ms: Millis, timeout: Duration) {
        self.commit(durable_frontier, horizon_ms);
        // An asynchronous manual commit reports no result event, so read the committed offsets
        // back until they show this commit (or the time is up: the broker may be away; then a
        // resumed run replays a little more, which the commit rule allows).
        let mut wanted = TopicPartitionList::new();
        let mut expected = BTreeMap::new();
        for p in &self.parts {
            if let Some((offset, _)) = p.committed {
                wanted.add_partition(&p.topic, p.partition);
                expected.insert((p.topic.clone(), p.partition), offset);
            }
        }
        if expected.is_empty() {
            return;
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            self.serve_events();
            let seen = self
                .consumer
                .committed_offsets(wanted.clone(), Duration::from_secs(1))
                .map(|list| {
                    // Converted at once: a live list would make the consumer's drop hang.
                    let map = list.to_topic_map();
                    drop(list);
                    map
                });
            let done = seen.is_ok_and(|map| {
                expected.iter().all(|(key, offset)| {
                    map.get(key)
                        .is_some_and(|o| o.to_raw().is_some_and(|raw| raw >= *offset))
                })
            });
            if done {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        tracing::warn!(group = %self.group, "the final offset commit was not confirmed in time");
    }
}

fn create_consumer(
    config: &SourceConfig,
    index: usize,
) -> Result<BaseConsumer<LoggingContext>, KafkaError> {
    let client_id = format!("tidewatch-worker-{index}");
    let reset = match config.from {
        StartFrom::Latest => "latest",
        _ => "earliest",
    };
    config
        .kafka
        .client_config(&[
            ("group.id", config.group.as_str()),
            ("client.id", client_id.as_str()),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "true"),
            ("auto.offset.reset", reset),
            // Prefetch per partition queue (librdkafka's default is 64 MiB); smaller starves
            // the workers (measured: 4 MiB reads 35 % slower).
            ("queued.max.messages.kbytes", "16384"),
            // How long the broker may hold an empty fetch: the end of a partition is noticed
            // this much later (librdkafka's default, 500 ms, made every `--stop-at-end` run
            // half a second longer); new messages are returned as soon as they arrive anyway.
            ("fetch.wait.max.ms", "100"),
        ])
        .create_with_context(LoggingContext::default())
        .map_err(|e| KafkaError::client("cannot create the Kafka consumer", e))
}

/// Every `(topic, partition)` of `topics`, in order; fails if the brokers do not answer within
/// [`CONNECT_TIMEOUT`] or a topic is missing.
pub fn topic_partitions<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    kafka: &KafkaConfig,
    topics: &[String],
) -> Result<Vec<(String, i32)>, KafkaError> {
    let mut out = Vec::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), CONNECT_TIMEOUT)
            .map_err(|cause| KafkaError::Unreachable {
                brokers: kafka.brokers.clone(),
                timeout: CONNECT_TIMEOUT,
                cause,
            })?;
        let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Err(KafkaError::MissingTopic {
                topic: topic.clone(),
                brokers: kafka.brokers.clone(),
            });
        };
        if found.error().is_some() || found.partitions().is_empty() {
            return Err(KafkaError::MissingTopic {
                topic: topic.clone(),
                brokers: kafka.brokers.clone(),
            });
        }
        let mut partitions: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
        partitions.sort_unstable();
        out.extend(partitions.into_iter().map(|p| (topic.clone(), p)));
    }
    Ok(out)
}

/// Checks, before a run starts, that the brokers answer (bounded wait) and every topic exists.
pub fn check_topics(config: &SourceConfig) -> Result<(), KafkaError> {
    let consumer = create_consumer(config, usize::MAX)?;
    topic_partitions(&consumer, &config.kafka, &config.topics).map(|_| ())
}

/// Reads the group's committed offsets of every partition of `topics` and the largest durable
/// output frontier stored with them (see [`KafkaSource::commit`]).
pub fn read_resume(config: &SourceConfig) -> Result<Resume, KafkaError> {
    let consumer = create_consumer(config, usize::MAX)?;
    let partitions = topic_partitions(&consumer, &config.kafka, &config.topics)?;
    let mut list = TopicPartitionList::with_capacity(partitions.len());
    for (topic, partition) in &partitions {
        list.add_partition(topic, *partition);
    }
    let committed = consumer
        .committed_offsets(list, CONNECT_TIMEOUT)
        .map_err(|e| KafkaError::client("cannot read the committed offsets", e))?;
    let mut resume = Resume::default();
    for element in committed.elements() {
        if let Offset::Offset(offset) = element.offset() {
            resume
                .offsets
                .insert((element.topic().to_string(), element.partition()), offset);
        }
        if let Some(frontier) = element
            .metadata()
            .strip_prefix(FRONTIER_METADATA)
            .and_then(|f| f.parse::<u64>().ok())
        {
            resume.durable_frontier = Some(
                resume
                    .durable_frontier
                    .map_or(frontier, |f| f.max(frontier)),
            );
        }
    }
    // The list must be gone before the consumer (a live list makes its drop hang).
    drop(committed);
    drop(consumer);
    Ok(resume)
}
