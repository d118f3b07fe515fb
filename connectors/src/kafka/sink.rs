//! The Kafka sink: alert, window and dead-letter rows (SPEC §4 JSON) to three topics.
//!
//! One idempotent producer (so a retried send after a broker hiccup is not written twice). The
//! message key is the row's warehouse, so one warehouse's deltas stay in order in one
//! partition. Every message gets a sequence number; [`KafkaSink::acknowledged`] says, without
//! blocking, whether every message sent before a barrier has been acknowledged by the broker —
//! the runner commits input offsets only then.
//!
//! # Example
//! ```no_run
//! use tidewatch_connectors::kafka::{KafkaConfig, sink::{KafkaSink, SinkTopics, Output}};
//! let mut sink = KafkaSink::create(&KafkaConfig::new("127.0.0.1:9092"), SinkTopics::default())
//!     .expect("broker reachable");
//! sink.send(Output::Alerts, b"wh-01", b"{\"rule\":\"delivery_duration_z\",\"diff\":1}").expect("sent");
//! let barrier = sink.barrier();
//! while !sink.acknowledged(barrier).expect("no delivery failed") {}
//! ```

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::consumer::BaseConsumer;
use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

use super::source::LoggingContext;
use super::{
    KafkaConfig, KafkaError, DEFAULT_ALERTS_TOPIC, DEFAULT_DLQ_TOPIC, DEFAULT_WINDOWS_TOPIC,
};

/// Output topics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkTopics {
    /// Alert deltas.
    pub alerts: String,
    /// Window deltas.
    pub windows: String,
    /// Dead letters.
    pub dlq: String,
}

impl Default for SinkTopics {
    fn default() -> Self {
        SinkTopics {
            alerts: DEFAULT_ALERTS_TOPIC.to_string(),
            windows: DEFAULT_WINDOWS_TOPIC.to_string(),
            dlq: DEFAULT_DLQ_TOPIC.to_string(),
        }
    }
}

/// Which output a row belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// `tidewatch.alerts`.
    Alerts,
    /// `tidewatch.windows`.
    Windows,
    /// `tidewatch.dlq`.
    DeadLetters,
}

/// Tracks messages in flight and delivery failures.
#[derive(Default)]
pub struct SinkContext {
    log: LoggingContext,
    in_flight: Mutex<BTreeSet<usize>>,
    failed: AtomicU64,
    first_failure: Mutex<Option<String>>,
}

impl ClientContext for SinkContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log.log(level, fac, log_message);
    }

    fn error(&self, error: RdError, reason: &str) {
        self.log.error(error, reason);
    }
}

impl ProducerContext for SinkContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sequence: usize) {
        if let Ok(mut in_flight) = self.in_flight.lock() {
            in_flight.remove(&sequence);
        }
        if let Err((error, _)) = result {
            self.failed.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut first) = self.first_failure.lock() {
                first.get_or_insert_with(|| error.to_string());
            }
        }
    }
}

/// The producer of the three output topics.
pub struct KafkaSink {
    producer: BaseProducer<SinkContext>,
    topics: SinkTopics,
    next_sequence: usize,
    brokers: String,
}

impl KafkaSink {
    /// Connects (bounded wait) and checks that the output topics exist.
    pub fn create(kafka: &KafkaConfig, topics: SinkTopics) -> Result<Self, KafkaError> {
        let producer: BaseProducer<SinkContext> = kafka
            .client_config(&[
                ("client.id", "tidewatch-sink"),
                ("enable.idempotence", "true"),
                ("linger.ms", "5"),
                ("compression.type", "none"),
            ])
            .create_with_context(SinkContext::default())
            .map_err(|e| KafkaError::client("cannot create the Kafka producer", e))?;
        // The topics must exist: auto-creation (where a broker allows it) would give them
        // whatever partition count the broker defaults to.
        let checker: BaseConsumer<LoggingContext> = kafka
            .client_config(&[("group.id", "tidewatch-sink-check")])
            .create_with_context(LoggingContext::default())
            .map_err(|e| KafkaError::client("cannot create a Kafka client", e))?;
        let names = [&topics.alerts, &topics.windows, &topics.dlq].map(|t| t.to_string());
        super::source::topic_partitions(&checker, kafka, &names)?;
        drop(checker);
        producer.context().log.connected();
        Ok(KafkaSink {
            producer,
            topics,
            next_sequence: 0,
            brokers: kafka.brokers.clone(),
        })
    }

    /// Sends one message to `output`'s topic. When librdkafka's queue is full, serves delivery
    /// reports until there is room (backpressure on the caller, never dropping a row).
    pub fn send(&mut self, output: Output, key: &[u8], payload: &[u8]) -> Result<(), KafkaError> {
        self.check_failures()?;
        let topic = match output {
            Output::Alerts => &self.topics.alerts,
            Output::Windows => &self.topics.windows,
            Output::DeadLetters => &self.topics.dlq,
        };
        let sequence = self.next_sequence;
        if let Ok(mut in_flight) = self.producer.context().in_flight.lock() {
            in_flight.insert(sequence);
        }
        let mut record = BaseRecord::with_opaque_to(topic, sequence)
            .key(key)
            .payload(payload);
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((error, _)) => {
                    if let Ok(mut in_flight) = self.producer.context().in_flight.lock() {
                        in_flight.remove(&sequence);
                    }
                    return Err(KafkaError::client(
                        format!("cannot send to topic {topic} on {}", self.brokers),
                        error,
                    ));
                }
            }
        }
        self.next_sequence += 1;
        Ok(())
    }

    /// A barrier: [`KafkaSink::acknowledged`] of it is true once every message sent so far is.
    pub fn barrier(&self) -> usize {
        self.next_sequence
    }

    /// Serves delivery reports (non-blocking) and says whether every message sent before
    /// `barrier` has been acknowledged. Errors if a delivery failed for good.
    pub fn acknowledged(&mut self, barrier: usize) -> Result<bool, KafkaError> {
        self.producer.poll(Duration::ZERO);
        self.check_failures()?;
        Ok(self
            .producer
            .context()
            .in_flight
            .lock()
            .map(|in_flight| in_flight.first().is_none_or(|first| *first >= barrier))
            .unwrap_or(false))
    }

    /// Waits up to `timeout` for every message to be acknowledged.
    pub fn flush(&mut self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer
            .flush(timeout)
            .map_err(|e| KafkaError::client(format!("cannot flush to {}", self.brokers), e))?;
        self.check_failures()
    }

    /// Messages sent so far.
    pub fn sent(&self) -> usize {
        self.next_sequence
    }

    fn check_failures(&self) -> Result<(), KafkaError> {
        let context = self.producer.context();
        if context.failed.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        let first = context
            .first_failure
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .unwrap_or_default();
        Err(KafkaError::Other(format!(
            "{} message(s) could not be delivered to {}: {first}",
            context.failed.load(Ordering::Relaxed),
            self.brokers
        )))
    }
}

/// How long a sink waits for the broker at the end of a run before reporting an error.
pub const FINAL_FLUSH_TIMEOUT: Duration = Duration::from_secs(60);
