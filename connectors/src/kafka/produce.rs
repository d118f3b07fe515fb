//! The loader behind `tidewatch produce`: JSON Lines (or generated events) into Kafka topics.
//!
//! Each line becomes one message whose value is the line exactly as read (without its `\n`).
//! The line's `type` picks the topic ([`EventTopics`]); its `warehouse` is the message key, so
//! that all events of one warehouse land in one partition, in input order (the producer is
//! idempotent, so retries neither reorder nor duplicate them).
//!
//! Routing reads only those two fields; it does not validate the event. Lines that cannot be
//! routed (not JSON, not an object, unknown or missing `type`) are not dropped: they go out
//! unchanged, without a key, to the orders topic, where the consumer's validation turns them
//! into dead letters (SPEC §1), and they are counted ([`ProduceSummary::unroutable`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::broker::TopicSpec;
use super::{KafkaConfig, KafkaError, CONNECT_TIMEOUT, DEFAULT_INPUT_TOPICS};
use crate::generator::Generator;

/// How long each message may take to be acknowledged before it counts as failed
/// (`message.timeout.ms`, unless the user's options set it).
const MESSAGE_TIMEOUT_MS: u64 = 60_000;
/// The final flush waits this much longer than the message timeout, so that every message
/// has a definite outcome (delivered or failed) when it returns.
const FLUSH_MARGIN: Duration = Duration::from_secs(10);
/// Serve delivery reports after this many messages (and whenever the queue is full).
const POLL_EVERY: u32 = 256;
/// How long to wait for room when the producer's queue is full.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(50);

/// The topics of the three event types. The defaults are [`DEFAULT_INPUT_TOPICS`]; the same
/// topic may serve several types (the `type` field, not the topic, decides the event type).
///
/// # Examples
/// ```
/// use tidewatch_connectors::kafka::produce::EventTopics;
/// let topics: EventTopics = "o,d,s".parse().unwrap();
/// assert_eq!(topics.for_type("delivery"), Some("d"));
/// assert_eq!(topics.for_type("refund"), None);
/// assert_eq!(EventTopics::default().names(), ["orders", "deliveries", "sensors"]);
/// assert!("orders,deliveries".parse::<EventTopics>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventTopics {
    /// Topic of `order` events, and of lines that cannot be routed.
    pub orders: String,
    /// Topic of `delivery` events.
    pub deliveries: String,
    /// Topic of `sensor` events.
    pub sensors: String,
}

impl Default for EventTopics {
    fn default() -> Self {
        let [orders, deliveries, sensors] = DEFAULT_INPUT_TOPICS.map(String::from);
        EventTopics {
            orders,
            deliveries,
            sensors,
        }
    }
}

impl EventTopics {
    /// The topic of events of SPEC type `kind` (`order`, `delivery`, `sensor`).
    pub fn for_type(&self, kind: &str) -> Option<&str> {
        match kind {
            "order" => Some(&self.orders),
            "delivery" => Some(&self.deliveries),
            "sensor" => Some(&self.sensors),
            _ => None,
        }
    }

    /// The three topics: orders, deliveries, sensors.
    pub fn names(&self) -> [&str; 3] {
        [&self.orders, &self.deliveries, &self.sensors]
    }
}

impl FromStr for EventTopics {
    type Err = String;

    /// Parses `ORDERS,DELIVERIES,SENSORS`.
    fn from_str(arg: &str) -> Result<Self, String> {
        let names: Vec<&str> = arg.split(',').map(str::trim).collect();
        let [orders, deliveries, sensors] = names[..] else {
            return Err(format!(
                "expected three topics ORDERS,DELIVERIES,SENSORS, got `{arg}`"
            ));
        };
        for name in [orders, deliveries, sensors] {
            TopicSpec::new(name).validate()?;
        }
        Ok(EventTopics {
            orders: orders.to_string(),
            deliveries: deliveries.to_string(),
            sensors: sensors.to_string(),
        })
    }
}

/// Where and how to produce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProduceConfig {
    /// Brokers and pass-through client options.
    pub kafka: KafkaConfig,
    /// Topic of each event type.
    pub topics: EventTopics,
}

impl ProduceConfig {
    /// Produce to `kafka`, into the default topics.
    pub fn new(kafka: KafkaConfig) -> Self {
        ProduceConfig {
            kafka,
            topics: EventTopics::default(),
        }
    }
}

/// What a load did. On success every message counted here was acknowledged by the brokers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProduceSummary {
    /// Messages produced: lines read, or events generated.
    pub lines: u64,
    /// Messages per topic (every topic of the [`EventTopics`], zeros included).
    pub per_topic: BTreeMap<String, u64>,
    /// Lines that could not be routed by type, sent unchanged and without a key to the
    /// orders topic.
    pub unroutable: u64,
    /// Bytes of message values.
    pub bytes: u64,
    /// Wall-clock time from connecting to the end of the final flush.
    pub elapsed: Duration,
    /// Whether the load was stopped (by the `stop` flag) before its input ended.
    pub stopped_early: bool,
}

impl ProduceSummary {
    /// Messages per second of wall-clock time.
    pub fn messages_per_second(&self) -> f64 {
        self.lines as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// How many generated events to produce, and how fast.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GeneratedLoad {
    /// Stop after this many events; `None` runs until the stop flag is raised.
    pub events: Option<u64>,
    /// Events per second, paced against the wall clock from the start (a slow moment is made
    /// up afterwards, so the average holds); `None` produces as fast as the brokers take them.
    pub rate: Option<f64>,
}

/// Produces every line of `input` (JSON Lines) as one message, routed by type and keyed by
/// warehouse (see the [module docs](self)), then waits until the brokers acknowledged all.
///
/// Checks first, within [`CONNECT_TIMEOUT`], that the brokers answer and the three topics
/// exist. Raising `stop` ends the load early: what was sent is still flushed and the summary
/// says [`ProduceSummary::stopped_early`].
///
/// # Errors
/// [`KafkaError::Unreachable`], [`KafkaError::MissingTopic`]; [`KafkaError::Client`] when a
/// message is refused or not delivered (the load stops at the first failed delivery);
/// [`KafkaError::Other`] when reading `input` fails (after flushing what was read) or the final
/// flush does not finish in time.
pub fn produce_lines(
    config: &ProduceConfig,
    mut input: impl BufRead,
    stop: &AtomicBool,
) -> Result<ProduceSummary, KafkaError> {
    let mut loader = Loader::connect(config)?;
    let topics = &config.topics;
    let mut line = Vec::with_capacity(512);
    loop {
        if stop.load(Ordering::Relaxed) {
            return loader.finish(true);
        }
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) => {
                let lines = loader.summary.lines;
                loader.finish(false)?;
                return Err(KafkaError::Other(format!(
                    "cannot read the input after line {lines}: {error}"
                )));
            }
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let routing = RoutingFields::of(&line);
        let (topic, key) = match routing.kind.0.as_deref().and_then(|k| topics.for_type(k)) {
            Some(topic) => (topic, routing.warehouse.0.as_deref()),
            None => {
                loader.summary.unroutable += 1;
                (topics.orders.as_str(), None)
            }
        };
        if !loader.send(topic, key.map(str::as_bytes), &line, stop)? {
            return loader.finish(true);
        }
    }
    loader.finish(false)
}

/// Produces the events of `generator`, each as the JSON line that
/// [`Event::write_json`](tidewatch_operators::event::Event::write_json) writes (the lines of
/// `tidewatch generate`), routed by type and keyed by warehouse, as many and as fast as `load`
/// says, then waits until the brokers acknowledged all. Errors and `stop` as for
/// [`produce_lines`]; with [`GeneratedLoad::events`] `None` only `stop` ends the load.
pub fn produce_generated(
    config: &ProduceConfig,
    generator: Generator,
    load: &GeneratedLoad,
    stop: &AtomicBool,
) -> Result<ProduceSummary, KafkaError> {
    if let Some(rate) = load.rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(KafkaError::Other(format!(
                "the rate must be a positive number of events per second, got {rate}"
            )));
        }
    }
    let mut loader = Loader::connect(config)?;
    let started = Instant::now();
    let mut line = Vec::with_capacity(256);
    for (index, (_emit_ms, event)) in generator.enumerate() {
        let index = index as u64;
        if load.events.is_some_and(|events| index >= events) {
            break;
        }
        if let Some(rate) = load.rate {
            // Event i is due at start + i / rate: pacing against this schedule, not sleeping
            // per event, keeps the rate exact however long each send takes.
            let due = Duration::try_from_secs_f64(index as f64 / rate)
                .ok()
                .and_then(|offset| started.checked_add(offset));
            loader.wait_until(due, stop)?;
        }
        if stop.load(Ordering::Relaxed) {
            return loader.finish(true);
        }
        line.clear();
        event.write_json(&mut line);
        let topic = config
            .topics
            .for_type(event.type_name())
            .unwrap_or(&config.topics.orders);
        if !loader.send(topic, Some(event.warehouse().as_bytes()), &line, stop)? {
            return loader.finish(true);
        }
    }
    loader.finish(false)
}

/// The two fields routing needs, read without validating anything else. Strings borrow from
/// the line unless they contain escapes.
#[derive(Debug, Default, Deserialize)]
struct RoutingFields<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: LenientStr<'a>,
    #[serde(default, borrow)]
    warehouse: LenientStr<'a>,
}

impl<'a> RoutingFields<'a> {
    /// The fields of `line`; both empty when it is not a JSON object.
    fn of(line: &'a [u8]) -> Self {
        serde_json::from_slice(line).unwrap_or_default()
    }
}

/// A string field, or `None` when the value is of another JSON type (so that a wrong type in
/// one field does not make the whole line unreadable).
#[derive(Debug, Default)]
struct LenientStr<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for LenientStr<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LenientVisitor;
        impl<'de> Visitor<'de> for LenientVisitor {
            type Value = LenientStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(LenientStr(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(LenientStr(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(LenientStr(Some(Cow::Owned(v))))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(LenientStr(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(LenientStr(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(LenientStr(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(LenientStr(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(LenientStr(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(LenientStr(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(LenientStr(None))
            }
        }
        deserializer.deserialize_any(LenientVisitor)
    }
}

/// A connected producer and the running counts of one load.
struct Loader {
    producer: BaseProducer<LoaderContext>,
    brokers: String,
    summary: ProduceSummary,
    started: Instant,
    flush_timeout: Duration,
    since_poll: u32,
}

impl Loader {
    /// Creates the producer and checks that the brokers answer and the topics exist.
    fn connect(config: &ProduceConfig) -> Result<Self, KafkaError> {
        let message_timeout_ms = MESSAGE_TIMEOUT_MS.to_string();
        let client_config = config.kafka.client_config(&[
            ("client.id", "tidewatch-produce"),
            // Retries neither duplicate nor reorder: per-warehouse order survives.
            ("enable.idempotence", "true"),
            ("linger.ms", "5"),
            ("compression.type", "lz4"),
            // The Java client's partitioner, so that other producers keyed by warehouse agree.
            ("partitioner", "murmur2_random"),
            ("message.timeout.ms", &message_timeout_ms),
            // Bounds the memory of messages waiting to be sent (QueueFull beyond it).
            ("queue.buffering.max.kbytes", "65536"),
        ]);
        let message_timeout = client_config
            .get("message.timeout.ms")
            .and_then(|ms| ms.parse::<u64>().ok())
            .map_or(
                Duration::from_millis(MESSAGE_TIMEOUT_MS),
                Duration::from_millis,
            );
        let producer: BaseProducer<LoaderContext> = client_config
            .create_with_context(LoaderContext::default())
            .map_err(|error| KafkaError::client("cannot create the Kafka producer", error))?;
        let brokers = config.kafka.brokers.clone();
        let metadata = producer
            .client()
            .fetch_metadata(None, CONNECT_TIMEOUT)
            .map_err(|cause| KafkaError::Unreachable {
                brokers: brokers.clone(),
                timeout: CONNECT_TIMEOUT,
                cause,
            })?;
        producer.context().connected.store(true, Ordering::Relaxed);
        let mut per_topic = BTreeMap::new();
        for topic in config.topics.names() {
            let exists = metadata
                .topics()
                .iter()
                .any(|t| t.name() == topic && t.error().is_none());
            if !exists {
                return Err(KafkaError::MissingTopic {
                    topic: topic.to_string(),
                    brokers,
                });
            }
            per_topic.insert(topic.to_string(), 0);
        }
        drop(metadata);
        tracing::debug!(brokers = %brokers, topics = ?config.topics.names(), "producing");
        Ok(Loader {
            producer,
            brokers,
            summary: ProduceSummary {
                per_topic,
                ..ProduceSummary::default()
            },
            started: Instant::now(),
            flush_timeout: message_timeout + FLUSH_MARGIN,
            since_poll: 0,
        })
    }

    /// Enqueues one message, waiting for room while the queue is full. Returns `false` when
    /// `stop` was raised while waiting (the message was not sent).
    fn send(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: &[u8],
        stop: &AtomicBool,
    ) -> Result<bool, KafkaError> {
        let mut record = BaseRecord::<[u8], [u8]>::to(topic).payload(value);
        if let Some(key) = key {
            record = record.key(key);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                    returned,
                )) => {
                    record = returned;
                    self.producer.poll(QUEUE_FULL_WAIT);
                    self.check_deliveries()?;
                    if stop.load(Ordering::Relaxed) {
                        return Ok(false);
                    }
                }
                Err((error, _)) => {
                    return Err(KafkaError::client(
                        format!(
                            "cannot produce line {} ({} bytes) to `{topic}`",
                            self.summary.lines + 1,
                            value.len()
                        ),
                        error,
                    ));
                }
            }
        }
        self.summary.lines += 1;
        self.summary.bytes += value.len() as u64;
        match self.summary.per_topic.get_mut(topic) {
            Some(count) => *count += 1,
            None => {
                self.summary.per_topic.insert(topic.to_string(), 1);
            }
        }
        self.since_poll += 1;
        if self.since_poll >= POLL_EVERY {
            self.since_poll = 0;
            self.producer.poll(Duration::ZERO);
            self.check_deliveries()?;
        }
        Ok(true)
    }

    /// Serves delivery reports until `due` (forever when `None`) or until `stop` is raised.
    fn wait_until(&mut self, due: Option<Instant>, stop: &AtomicBool) -> Result<(), KafkaError> {
        const STEP: Duration = Duration::from_millis(100);
        while !stop.load(Ordering::Relaxed) {
            let wait = match due {
                Some(due) => match due.checked_duration_since(Instant::now()) {
                    Some(wait) if !wait.is_zero() => wait.min(STEP),
                    _ => break,
                },
                None => STEP,
            };
            self.producer.poll(wait);
            self.check_deliveries()?;
        }
        Ok(())
    }

    /// An error when any delivery has failed so far.
    fn check_deliveries(&self) -> Result<(), KafkaError> {
        let context = self.producer.context();
        let failed = context.failed.load(Ordering::Relaxed);
        if failed == 0 {
            return Ok(());
        }
        let delivered = context.delivered.load(Ordering::Relaxed);
        let first = context
            .first_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let what = format!(
            "{failed} message(s) not delivered to {} ({delivered} delivered, {} sent)",
            self.brokers, self.summary.lines
        );
        Err(match first {
            Some((topic, source)) => {
                KafkaError::client(format!("{what}; first to `{topic}`"), source)
            }
            None => KafkaError::Other(what),
        })
    }

    /// Waits until every message sent is acknowledged (or failed), within the flush timeout.
    fn finish(mut self, stopped_early: bool) -> Result<ProduceSummary, KafkaError> {
        let flushed = self.producer.flush(self.flush_timeout);
        self.check_deliveries()?;
        if flushed.is_err() {
            return Err(KafkaError::Other(format!(
                "{} of {} message(s) not acknowledged by {} within {:?}",
                self.producer.in_flight_count(),
                self.summary.lines,
                self.brokers,
                self.flush_timeout
            )));
        }
        self.summary.elapsed = self.started.elapsed();
        self.summary.stopped_early = stopped_early;
        tracing::debug!(
            lines = self.summary.lines,
            unroutable = self.summary.unroutable,
            bytes = self.summary.bytes,
            stopped_early,
            "produced"
        );
        Ok(std::mem::take(&mut self.summary))
    }
}

/// Counts delivery outcomes and sends librdkafka's messages to `tracing`.
#[derive(Default)]
struct LoaderContext {
    delivered: AtomicU64,
    failed: AtomicU64,
    /// Topic and error of the first failed delivery.
    first_failure: Mutex<Option<(String, rdkafka::error::KafkaError)>>,
    /// Set once the brokers answered: until then, connection errors are expected noise (the
    /// connect check reports the outcome in one error) and are logged at debug level only.
    connected: AtomicBool,
}

impl ClientContext for LoaderContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let connected = self.connected.load(Ordering::Relaxed);
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
                if connected =>
            {
                tracing::error!(facility, message, "librdkafka")
            }
            RDKafkaLogLevel::Warning if connected => {
                tracing::warn!(facility, message, "librdkafka")
            }
            _ => tracing::debug!(?level, facility, message, "librdkafka"),
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        if self.connected.load(Ordering::Relaxed) {
            tracing::warn!(%error, reason, "Kafka client error");
        } else {
            tracing::debug!(%error, reason, "Kafka client error while connecting");
        }
    }
}

impl ProducerContext for LoaderContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, message)) => {
                if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                    let mut first = self
                        .first_failure
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    *first = Some((message.topic().to_string(), error.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::broker::{DevBroker, DevBrokerConfig};
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
    use std::collections::HashMap;

    /// One consumed message.
    #[derive(Clone, Debug, PartialEq, Eq)]
    struct Consumed {
        partition: i32,
        offset: i64,
        key: Option<Vec<u8>>,
        value: Vec<u8>,
    }

    /// Every message of `topic`, read from the beginning of each partition up to its high
    /// watermark, in partition then offset order.
    fn consume_all(bootstrap: &str, topic: &str) -> Vec<Consumed> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "tidewatch-produce-test")
            .set("enable.auto.commit", "false")
            .create()
            .expect("create a consumer");
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(30))
            .expect("metadata");
        let partitions: Vec<i32> = metadata.topics()[0]
            .partitions()
            .iter()
            .map(|p| p.id())
            .collect();
        drop(metadata);
        let mut assignment = TopicPartitionList::new();
        let mut remaining = HashMap::new();
        for &partition in &partitions {
            let (_, high) = consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(30))
                .expect("watermarks");
            assignment
                .add_partition_offset(topic, partition, Offset::Beginning)
                .expect("add partition");
            if high > 0 {
                remaining.insert(partition, high);
            }
        }
        consumer.assign(&assignment).expect("assign");
        drop(assignment);
        let mut messages = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !remaining.is_empty() {
            assert!(
                Instant::now() < deadline,
                "topic {topic}: partitions {remaining:?} not read to their end within 60 s"
            );
            let Some(message) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let message = message.expect("consume");
            messages.push(Consumed {
                partition: message.partition(),
                offset: message.offset(),
                key: message.key().map(<[u8]>::to_vec),
                value: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            });
            if remaining.get(&message.partition()) == Some(&(message.offset() + 1)) {
                remaining.remove(&message.partition());
            }
        }
        messages.sort_by_key(|m| (m.partition, m.offset));
        messages
    }

    fn mixed_input() -> Vec<String> {
        let mut lines = Vec::new();
        for i in 0..60u64 {
            let warehouse = format!("wh-0{}", i % 3 + 1);
            lines.push(match i % 3 {
                0 => format!(
                    r#"{{"type":"order","order_id":"o-{i}","warehouse":"{warehouse}","sku":"sku-1","qty":1,"amount":2.5,"ts":{}}}"#,
                    1000 * i
                ),
                1 => format!(
                    r#"{{"type":"delivery","order_id":"o-{}","warehouse":"{warehouse}","carrier":"c-1","status":"delivered","ts":{}}}"#,
                    i - 1,
                    1000 * i
                ),
                _ => format!(
                    r#"{{"ts":{},"warehouse":"{warehouse}","value":20.5,"metric":"temperature","sensor_id":"s-1","type":"sensor"}}"#,
                    1000 * i
                ),
            });
            if i == 20 {
                lines.push("this is not json".to_string());
            }
            if i == 40 {
                lines.push(r#"{"type":"refund","warehouse":"wh-01","ts":5}"#.to_string());
            }
        }
        // An escaped key and type still route (borrowing fails, the Cow owns them).
        lines.push(r#"{"type":"sens\u006fr","warehouse":"wh-\u00302","sensor_id":"s-2","metric":"humidity","value":1,"ts":99}"#.to_string());
        lines
    }

    /// Each topic gets exactly its lines, byte for byte; every message of a warehouse is in
    /// one partition, in input order; unroutable lines land in the orders topic without a key.
    #[test]
    fn routes_keys_and_orders_lines() {
        let broker = DevBroker::start(&DevBrokerConfig::default()).expect("start the broker");
        let lines = mixed_input();
        let mut input = lines.join("\n").into_bytes();
        input.push(b'\n');
        let config = ProduceConfig::new(KafkaConfig::new(broker.bootstrap()));
        let summary =
            produce_lines(&config, &input[..], &AtomicBool::new(false)).expect("produce the lines");
        assert_eq!(summary.lines, lines.len() as u64);
        assert_eq!(summary.unroutable, 2);
        assert_eq!(
            summary.bytes,
            lines.iter().map(|l| l.len() as u64).sum::<u64>()
        );
        assert!(!summary.stopped_early);

        let expected_of = |kind: &str| -> Vec<&String> {
            lines
                .iter()
                .filter(|l| {
                    let value: Option<serde_json::Value> = serde_json::from_str(l).ok();
                    let line_kind = value
                        .as_ref()
                        .and_then(|v| v["type"].as_str())
                        .filter(|t| ["order", "delivery", "sensor"].contains(t));
                    line_kind.unwrap_or("order") == kind
                })
                .collect()
        };
        for (topic, kind) in [
            ("orders", "order"),
            ("deliveries", "delivery"),
            ("sensors", "sensor"),
        ] {
            let expected = expected_of(kind);
            let messages = consume_all(&broker.bootstrap(), topic);
            assert_eq!(summary.per_topic[topic], expected.len() as u64, "{topic}");
            assert_eq!(messages.len(), expected.len(), "{topic}");
            // Group by key: one partition per key, values in input order.
            let mut by_key: BTreeMap<Option<Vec<u8>>, Vec<&Consumed>> = BTreeMap::new();
            for message in &messages {
                by_key.entry(message.key.clone()).or_default().push(message);
            }
            for (key, group) in &by_key {
                let values: Vec<&[u8]> = group.iter().map(|m| m.value.as_slice()).collect();
                let input_order: Vec<&[u8]> = expected
                    .iter()
                    .map(|l| l.as_bytes())
                    .filter(|l| values.contains(l))
                    .collect();
                match key {
                    Some(key) => {
                        let partitions: Vec<i32> = group.iter().map(|m| m.partition).collect();
                        assert!(
                            partitions.iter().all(|p| *p == partitions[0]),
                            "{topic} key {:?} in partitions {partitions:?}",
                            String::from_utf8_lossy(key)
                        );
                        assert_eq!(values, input_order, "{topic}: order of one warehouse");
                        for value in &values {
                            let warehouse = serde_json::from_slice::<serde_json::Value>(value)
                                .expect("routed lines are JSON")["warehouse"]
                                .as_str()
                                .map(|w| w.as_bytes().to_vec());
                            assert_eq!(warehouse.as_ref(), Some(key), "key is the warehouse");
                        }
                    }
                    None => {
                        assert_eq!(topic, "orders", "only unroutable lines have no key");
                        let mut unkeyed = values.clone();
                        unkeyed.sort();
                        assert_eq!(
                            unkeyed,
                            vec![
                                &b"this is not json"[..],
                                &br#"{"type":"refund","warehouse":"wh-01","ts":5}"#[..],
                            ]
                        );
                    }
                }
            }
            let mut got: Vec<&[u8]> = messages.iter().map(|m| m.value.as_slice()).collect();
            let mut want: Vec<&[u8]> = expected.iter().map(|l| l.as_bytes()).collect();
            got.sort();
            want.sort();
            assert_eq!(got, want, "{topic}: exactly its lines, byte for byte");
        }
        // The escaped sensor line was routed and keyed by its decoded warehouse.
        let sensors = consume_all(&broker.bootstrap(), "sensors");
        let escaped = sensors
            .iter()
            .find(|m| m.value.starts_with(br#"{"type":"sens\u006fr""#))
            .expect("escaped line in sensors");
        assert_eq!(escaped.key.as_deref(), Some(&b"wh-02"[..]));
    }

    #[test]
    fn routing_fields_are_lenient() {
        let fields = RoutingFields::of(br#"{"warehouse":7,"type":"order","x":{"y":[1,{}]}}"#);
        assert_eq!(fields.kind.0.as_deref(), Some("order"));
        assert_eq!(fields.warehouse.0, None);
        for line in [
            &b""[..],
            b"[1,2]",
            b"\"order\"",
            b"{\"type\":\"order\"} trailing",
            b"{",
        ] {
            let fields = RoutingFields::of(line);
            assert_eq!(fields.kind.0, None, "{:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn generated_events_go_to_their_topics() {
        let broker = DevBroker::start(&DevBrokerConfig::default()).expect("start the broker");
        let config = ProduceConfig::new(KafkaConfig::new(broker.bootstrap()));
        let generator_config = crate::generator::GeneratorConfig {
            warehouses: 3,
            ..crate::generator::GeneratorConfig::default()
        }
        .with_default_incidents();
        let mut expected = Vec::new();
        crate::generator::write_jsonl(&generator_config, 500, &mut expected).expect("write");
        let generator = Generator::new(generator_config, |_| true).expect("generator");
        let load = GeneratedLoad {
            events: Some(500),
            rate: None,
        };
        let summary = produce_generated(&config, generator, &load, &AtomicBool::new(false))
            .expect("produce generated events");
        assert_eq!(summary.lines, 500);
        assert_eq!(summary.unroutable, 0);
        let mut got: Vec<Vec<u8>> = Vec::new();
        for topic in DEFAULT_INPUT_TOPICS {
            let messages = consume_all(&broker.bootstrap(), topic);
            assert_eq!(summary.per_topic[topic], messages.len() as u64);
            got.extend(messages.into_iter().map(|m| m.value));
        }
        let mut want: Vec<Vec<u8>> = expected
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "the generated lines, as `generate` writes them");
    }

    #[test]
    fn missing_topic_and_unreachable_broker_are_errors() {
        let broker = DevBroker::start(&DevBrokerConfig::default()).expect("start the broker");
        let config = ProduceConfig {
            kafka: KafkaConfig::new(broker.bootstrap()),
            topics: "orders,nowhere,sensors".parse().expect("topics"),
        };
        let error = produce_lines(&config, &b"{}\n"[..], &AtomicBool::new(false))
            .expect_err("topic is missing");
        assert!(
            matches!(&error, KafkaError::MissingTopic { topic, .. } if topic == "nowhere"),
            "{error}"
        );
        let port = broker.port();
        drop(broker);
        let config = ProduceConfig::new(KafkaConfig::new(format!("127.0.0.1:{port}")));
        let error = produce_lines(&config, &b"{}\n"[..], &AtomicBool::new(false))
            .expect_err("nothing listens");
        assert!(matches!(error, KafkaError::Unreachable { .. }), "{error}");
    }

    #[test]
    fn raised_stop_flag_ends_early() {
        let broker = DevBroker::start(&DevBrokerConfig::default()).expect("start the broker");
        let config = ProduceConfig::new(KafkaConfig::new(broker.bootstrap()));
        let generator = Generator::new(crate::generator::GeneratorConfig::default(), |_| true)
            .expect("generator");
        let summary = produce_generated(
            &config,
            generator,
            &GeneratedLoad::default(),
            &AtomicBool::new(true),
        )
        .expect("stops at once");
        assert!(summary.stopped_early);
        assert_eq!(summary.lines, 0);
    }
}
