//! Kafka in and out, with `rdkafka` (librdkafka): a per-worker source with deterministic
//! partition assignment, a sink of final deltas, a loader (`tidewatch produce`) and an
//! in-memory development broker (`tidewatch broker`).
//!
//! Nothing here is specific to one broker: every client is configured from a [`KafkaConfig`]
//! (bootstrap servers plus pass-through `key=value` options, e.g. `security.protocol`,
//! `sasl.mechanism`), so the same code runs against Apache Kafka, Redpanda, tansu or the mock.

use std::time::Duration;

use rdkafka::config::ClientConfig;

pub mod broker;
pub mod produce;
pub mod sink;
pub mod source;

/// Default input topics (SPEC §1: the `type` field, not the topic, decides the event type).
pub const DEFAULT_INPUT_TOPICS: [&str; 3] = ["orders", "deliveries", "sensors"];
/// Default topic for alert deltas.
pub const DEFAULT_ALERTS_TOPIC: &str = "tidewatch.alerts";
/// Default topic for window deltas.
pub const DEFAULT_WINDOWS_TOPIC: &str = "tidewatch.windows";
/// Default topic for dead letters.
pub const DEFAULT_DLQ_TOPIC: &str = "tidewatch.dlq";
/// Default consumer group (used only to store committed offsets; partitions are assigned
/// explicitly, never by group rebalancing).
pub const DEFAULT_GROUP: &str = "tidewatch";
/// How long a client waits for the broker before giving up at start.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the brokers are and how to talk to them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `bootstrap.servers`: comma-separated `host:port` list.
    pub brokers: String,
    /// librdkafka properties passed through unchanged (security settings and tuning), applied
    /// after tidewatch's own so that a user can override them.
    pub options: Vec<(String, String)>,
}

impl KafkaConfig {
    /// Brokers at `brokers` with no extra options.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaConfig {
            brokers: brokers.into(),
            options: Vec::new(),
        }
    }

    /// A librdkafka client configuration: bootstrap servers, `extra` (tidewatch's settings for
    /// this client), then the user's pass-through options.
    pub fn client_config(&self, extra: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in extra {
            config.set(*key, *value);
        }
        for (key, value) in &self.options {
            config.set(key, value);
        }
        config
    }
}

/// Parses a `--kafka-option key=value` argument.
///
/// # Examples
/// ```
/// use tidewatch_connectors::kafka::parse_option;
/// assert_eq!(parse_option("security.protocol=SASL_SSL").unwrap(),
///            ("security.protocol".to_string(), "SASL_SSL".to_string()));
/// assert!(parse_option("no-equals-sign").is_err());
/// ```
pub fn parse_option(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("expected key=value, got `{arg}`")),
    }
}

/// Errors of the Kafka connectors.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// The brokers did not answer in time (external).
    #[error("cannot reach Kafka at {brokers} within {timeout:?} ({cause})")]
    Unreachable {
        /// The bootstrap servers.
        brokers: String,
        /// How long we waited.
        timeout: Duration,
        /// librdkafka's error (in the message, not a separate cause: its own cause repeats it).
        cause: rdkafka::error::KafkaError,
    },
    /// A topic that must exist does not (user).
    #[error(
        "topic `{topic}` does not exist on {brokers} (create it, or choose topics with --topics)"
    )]
    MissingTopic {
        /// The topic.
        topic: String,
        /// The bootstrap servers.
        brokers: String,
    },
    /// A client could not be created or an operation failed (external or user: bad options).
    #[error("{what}: {cause}")]
    Client {
        /// What was being done.
        what: String,
        /// librdkafka's error (in the message, not a separate cause: its own cause repeats it).
        cause: rdkafka::error::KafkaError,
    },
    /// Anything else, with a message that says what.
    #[error("{0}")]
    Other(String),
}

impl KafkaError {
    /// Wraps a librdkafka error with what was being done.
    pub fn client(what: impl Into<String>, cause: rdkafka::error::KafkaError) -> Self {
        KafkaError::Client {
            what: what.into(),
            cause,
        }
    }
}
