//! An in-memory Kafka broker for development and tests (`tidewatch broker`): librdkafka's mock
//! cluster, reachable at a fixed port on 127.0.0.1.
//!
//! The mock cluster listens on a random port and cannot be moved. A [`DevBroker`] therefore
//! binds the port it was asked for itself, forwards every connection to the mock, and has the
//! mock advertise the fixed port in its metadata, so that clients that reconnect after the
//! bootstrap (all of them do) come back through the forwarder too.
//!
//! Development only: everything lives in this process's memory and is gone when it stops, and
//! the mock keeps only the newest [`RETAINED_BYTES_PER_PARTITION`] of each partition (older
//! batches are discarded as new ones arrive, like a very short retention). The mock supports
//! producing (idempotent included), fetching, metadata, offset commits and consumer groups; it
//! does not support the admin API (topics are created here, at start).

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext};
use rdkafka_sys as rdsys;

use super::{
    KafkaError, DEFAULT_ALERTS_TOPIC, DEFAULT_DLQ_TOPIC, DEFAULT_INPUT_TOPICS,
    DEFAULT_WINDOWS_TOPIC,
};

/// Port of `tidewatch broker` when none is given (Kafka's usual port).
pub const DEFAULT_BROKER_PORT: u16 = 9092;
/// Partitions of every precreated topic unless told otherwise.
pub const DEFAULT_PARTITIONS: i32 = 4;
/// Largest partition count accepted for one topic.
pub const MAX_PARTITIONS: i32 = 1024;
/// The mock keeps about this many bytes of record batches per partition and drops the oldest
/// batches beyond it (librdkafka 2.12, `rdkafka_mock.c`; also at most 100 000 batches).
pub const RETAINED_BYTES_PER_PARTITION: u64 = 5 * 1024 * 1024;

/// How long the forwarder waits for the mock's own listener (on the same host) to accept.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Id of the mock's only broker (mock broker ids start at 1).
const MOCK_BROKER_ID: i32 = 1;

/// A topic to create at start: `name`, or `name:partitions`.
///
/// # Examples
/// ```
/// use tidewatch_connectors::kafka::broker::TopicSpec;
/// let spec: TopicSpec = "clicks:8".parse().unwrap();
/// assert_eq!((spec.name.as_str(), spec.partitions), ("clicks", Some(8)));
/// assert_eq!("clicks".parse::<TopicSpec>().unwrap().partitions, None);
/// assert!("bad topic".parse::<TopicSpec>().is_err());
/// assert!("clicks:0".parse::<TopicSpec>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSpec {
    /// Topic name: 1 to 249 of `[A-Za-z0-9._-]`, not `.` or `..` (Kafka's rule).
    pub name: String,
    /// Partition count; `None` takes the broker's default ([`DevBrokerConfig::partitions`]).
    pub partitions: Option<i32>,
}

impl TopicSpec {
    /// A topic named `name` with the broker's default partition count.
    pub fn new(name: impl Into<String>) -> Self {
        TopicSpec {
            name: name.into(),
            partitions: None,
        }
    }

    /// Checks the name and the partition count.
    pub fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if name.is_empty() || name.len() > 249 || name == "." || name == ".." {
            return Err(format!(
                "topic name `{name}` must have 1 to 249 characters and not be `.` or `..`"
            ));
        }
        if let Some(bad) = name.chars().find(|c| !legal(*c)) {
            return Err(format!(
                "topic name `{name}` contains `{bad}`; allowed are letters, digits, `.`, `_` and `-`"
            ));
        }
        match self.partitions {
            Some(n) if !(1..=MAX_PARTITIONS).contains(&n) => Err(format!(
                "topic `{name}`: {n} partitions is outside 1..={MAX_PARTITIONS}"
            )),
            _ => Ok(()),
        }
    }
}

impl FromStr for TopicSpec {
    type Err = String;

    fn from_str(arg: &str) -> Result<Self, String> {
        let spec = match arg.split_once(':') {
            None => TopicSpec::new(arg),
            Some((name, partitions)) => TopicSpec {
                name: name.to_string(),
                partitions: Some(
                    partitions
                        .parse()
                        .map_err(|_| format!("expected NAME or NAME:PARTITIONS, got `{arg}`"))?,
                ),
            },
        };
        spec.validate()?;
        Ok(spec)
    }
}

/// Settings of a [`DevBroker`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevBrokerConfig {
    /// Port on 127.0.0.1; 0 picks a free one (read it back with [`DevBroker::port`]).
    pub port: u16,
    /// Partitions of the topics whose [`TopicSpec::partitions`] is `None`.
    pub partitions: i32,
    /// Topics created at start, in this order.
    pub topics: Vec<TopicSpec>,
}

impl Default for DevBrokerConfig {
    /// A free port, [`DEFAULT_PARTITIONS`] partitions, and tidewatch's default topics: the
    /// input topics ([`DEFAULT_INPUT_TOPICS`]) and the windows, alerts and dead-letter topics.
    fn default() -> Self {
        let names = DEFAULT_INPUT_TOPICS.into_iter().chain([
            DEFAULT_WINDOWS_TOPIC,
            DEFAULT_ALERTS_TOPIC,
            DEFAULT_DLQ_TOPIC,
        ]);
        DevBrokerConfig {
            port: 0,
            partitions: DEFAULT_PARTITIONS,
            topics: names.map(TopicSpec::new).collect(),
        }
    }
}

impl DevBrokerConfig {
    /// Adds `spec`, or replaces the topic of the same name.
    pub fn with_topic(mut self, spec: TopicSpec) -> Self {
        match self.topics.iter_mut().find(|t| t.name == spec.name) {
            Some(existing) => *existing = spec,
            None => self.topics.push(spec),
        }
        self
    }

    /// The topics with their partition counts resolved.
    fn resolved_topics(&self) -> Result<Vec<(String, i32)>, KafkaError> {
        if !(1..=MAX_PARTITIONS).contains(&self.partitions) {
            return Err(KafkaError::Other(format!(
                "{} partitions is outside 1..={MAX_PARTITIONS}",
                self.partitions
            )));
        }
        self.topics
            .iter()
            .map(|spec| {
                spec.validate().map_err(KafkaError::Other)?;
                Ok((
                    spec.name.clone(),
                    spec.partitions.unwrap_or(self.partitions),
                ))
            })
            .collect()
    }
}

/// An in-memory Kafka broker (librdkafka's mock cluster with one broker) at `127.0.0.1:PORT`,
/// for development and tests. Not durable, and it keeps only the newest
/// [`RETAINED_BYTES_PER_PARTITION`] of each partition (see the [module docs](self)).
///
/// Stops when dropped. Not `Send`: keep it on the thread that started it.
///
/// # Examples
/// ```
/// use std::time::{Duration, Instant};
/// use rdkafka::config::ClientConfig;
/// use rdkafka::consumer::{BaseConsumer, Consumer};
/// use rdkafka::message::Message;
/// use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
/// use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
/// use tidewatch_connectors::kafka::broker::{DevBroker, DevBrokerConfig};
///
/// let broker = DevBroker::start(&DevBrokerConfig::default())?;
/// assert_eq!(broker.bootstrap(), format!("127.0.0.1:{}", broker.port()));
///
/// let producer: BaseProducer = ClientConfig::new()
///     .set("bootstrap.servers", broker.bootstrap())
///     .create()?;
/// producer
///     .send(BaseRecord::to("orders").partition(2).key("wh-01").payload("hello"))
///     .map_err(|(error, _)| error)?;
/// producer.flush(Duration::from_secs(10))?;
///
/// let consumer: BaseConsumer = ClientConfig::new()
///     .set("bootstrap.servers", broker.bootstrap())
///     .set("group.id", "example") // needed for assign too
///     .create()?;
/// let mut partitions = TopicPartitionList::new();
/// partitions.add_partition_offset("orders", 2, Offset::Beginning)?;
/// consumer.assign(&partitions)?;
/// let deadline = Instant::now() + Duration::from_secs(30);
/// let value = loop {
///     assert!(Instant::now() < deadline, "no message within 30 s");
///     if let Some(message) = consumer.poll(Duration::from_millis(100)) {
///         break message?.payload().map(<[u8]>::to_vec);
///     }
/// };
/// assert_eq!(value.as_deref(), Some(&b"hello"[..]));
/// # drop(consumer);
/// # drop(producer);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct DevBroker {
    port: u16,
    partitions: i32,
    topics: Vec<(String, i32)>,
    forwarder: Forwarder,
    // Dropped after `forwarder` has stopped (see `Drop`).
    mock: MockCluster,
}

impl DevBroker {
    /// Starts a broker as `config` says and creates its topics.
    ///
    /// Fails with [`KafkaError::Other`] when the port cannot be bound (in use, or privileged)
    /// or a topic is invalid, and with [`KafkaError::Client`] when librdkafka refuses.
    pub fn start(config: &DevBrokerConfig) -> Result<Self, KafkaError> {
        let topics = config.resolved_topics()?;
        // Bind first: a port in use is the common failure and costs nothing to detect.
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, config.port)).map_err(|error| {
            KafkaError::Other(format!(
                "cannot listen on 127.0.0.1:{}: {error}",
                config.port
            ))
        })?;
        let address = listener.local_addr().map_err(|error| {
            KafkaError::Other(format!("cannot read the listening address: {error}"))
        })?;
        let port = address.port();

        let mock = MockCluster::new()?;
        for (name, partitions) in &topics {
            mock.create_topic(name, *partitions)?;
        }
        let upstream = mock.listener_address()?;
        mock.advertise(port)?;
        let forwarder = Forwarder::start(listener, upstream).map_err(|error| {
            KafkaError::Other(format!("cannot start the connection forwarder: {error}"))
        })?;
        tracing::debug!(port, upstream = %upstream, topics = topics.len(), "development broker started");
        Ok(DevBroker {
            port,
            partitions: config.partitions,
            topics,
            forwarder,
            mock,
        })
    }

    /// The port the broker listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `bootstrap.servers` for clients: `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The topics created at start with their partition counts, in creation order.
    pub fn topics(&self) -> &[(String, i32)] {
        &self.topics
    }

    /// Creates another topic (with [`DevBrokerConfig::partitions`] partitions unless `spec`
    /// says).
    pub fn create_topic(&mut self, spec: &TopicSpec) -> Result<(), KafkaError> {
        spec.validate().map_err(KafkaError::Other)?;
        let partitions = spec.partitions.unwrap_or(self.partitions);
        self.mock.create_topic(&spec.name, partitions)?;
        self.topics.push((spec.name.clone(), partitions));
        Ok(())
    }
}

impl Drop for DevBroker {
    fn drop(&mut self) {
        // Disconnect clients before the mock goes away, so no forwarded connection talks to a
        // destroyed cluster; `mock` is dropped after this.
        self.forwarder.stop();
        tracing::debug!(port = self.port, "development broker stopped");
    }
}

impl fmt::Debug for DevBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevBroker")
            .field("port", &self.port)
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

/// A librdkafka mock cluster with one broker, owned: destroyed on drop, before the client
/// handle it was created on.
struct MockCluster {
    cluster: *mut rdsys::rd_kafka_mock_cluster_t,
    /// The handle the cluster runs on; fields drop after `Drop::drop` destroyed the cluster.
    _handle: BaseProducer<QuietContext>,
}

impl MockCluster {
    fn new() -> Result<Self, KafkaError> {
        // A handle for the mock to live on. It never produces, so it needs no bootstrap servers
        // (with one it would keep trying to connect there).
        let client: BaseProducer<QuietContext> = ClientConfig::new()
            .create_with_context(QuietContext)
            .map_err(|error| {
                KafkaError::client("cannot create the mock cluster's client handle", error)
            })?;
        // SAFETY: the handle is valid; it outlives the cluster (destroyed first, in Drop).
        let cluster = unsafe { rdsys::rd_kafka_mock_cluster_new(client.client().native_ptr(), 1) };
        if cluster.is_null() {
            return Err(KafkaError::Other(
                "librdkafka could not create the mock cluster".to_string(),
            ));
        }
        Ok(MockCluster {
            cluster,
            _handle: client,
        })
    }

    fn create_topic(&self, name: &str, partitions: i32) -> Result<(), KafkaError> {
        let name_c = CString::new(name)
            .map_err(|_| KafkaError::Other(format!("topic name `{name}` contains a NUL byte")))?;
        // SAFETY: the cluster is alive and `name_c` is a NUL-terminated string that outlives
        // the call (librdkafka copies it).
        let code = unsafe {
            rdsys::rd_kafka_mock_topic_create(self.cluster, name_c.as_ptr(), partitions, 1)
        };
        if code == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            Ok(())
        } else {
            Err(KafkaError::client(
                format!("cannot create topic `{name}` with {partitions} partitions"),
                rdkafka::error::KafkaError::MockCluster(code.into()),
            ))
        }
    }

    /// Where the mock's broker really listens (a random port on the loopback interface).
    fn listener_address(&self) -> Result<SocketAddr, KafkaError> {
        // SAFETY: the cluster is alive; the returned string is owned by it and copied at once.
        let bootstraps = unsafe {
            CStr::from_ptr(rdsys::rd_kafka_mock_cluster_bootstraps(self.cluster))
                .to_string_lossy()
                .into_owned()
        };
        let first = bootstraps.split(',').next().unwrap_or_default();
        first
            .to_socket_addrs()
            .ok()
            .and_then(|mut addresses| addresses.next())
            .ok_or_else(|| {
                KafkaError::Other(format!(
                    "unexpected mock cluster bootstrap address `{bootstraps}`"
                ))
            })
    }

    /// Makes the mock advertise `127.0.0.1:port` for its broker in metadata responses. (This
    /// does not move its listener: the forwarder bridges the two.)
    fn advertise(&self, port: u16) -> Result<(), KafkaError> {
        let host = CString::new("127.0.0.1")
            .map_err(|_| KafkaError::Other("host contains a NUL byte".to_string()))?;
        // SAFETY: the cluster is alive; `host` outlives the call (librdkafka copies it).
        unsafe {
            rdsys::rd_kafka_mock_broker_set_host_port(
                self.cluster,
                MOCK_BROKER_ID,
                host.as_ptr(),
                i32::from(port),
            );
        }
        Ok(())
    }
}

impl Drop for MockCluster {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_mock_cluster_new, destroyed exactly once, here, while
        // `self.client` (the handle it runs on) is still alive.
        unsafe { rdsys::rd_kafka_mock_cluster_destroy(self.cluster) };
    }
}

/// Client context of the mock's handle: librdkafka's messages go to `tracing` at debug level
/// (the handle is not a client anyone uses).
struct QuietContext;

impl ClientContext for QuietContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        tracing::debug!(?level, facility, message, "librdkafka (development broker)");
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        tracing::debug!(%error, reason, "librdkafka error (development broker)");
    }
}

impl ProducerContext for QuietContext {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

/// Forwards every TCP connection accepted on a listener to `upstream`, byte for byte, both
/// ways, one thread per direction.
struct Forwarder {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

/// The two ends of each open forwarded connection, to cut them all at stop.
type Connections = Arc<Mutex<HashMap<u64, Arc<(TcpStream, TcpStream)>>>>;

impl Forwarder {
    fn start(listener: TcpListener, upstream: SocketAddr) -> io::Result<Self> {
        let address = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = std::thread::Builder::new()
            .name(format!("broker-forward-{}", address.port()))
            .spawn({
                let stop = Arc::clone(&stop);
                move || accept_loop(&listener, upstream, &stop)
            })?;
        Ok(Forwarder {
            address,
            stop,
            acceptor: Some(acceptor),
        })
    }

    /// Stops accepting, cuts every open connection and waits for the forwarding threads.
    fn stop(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept with a connection of our own.
        match TcpStream::connect_timeout(&self.address, UPSTREAM_CONNECT_TIMEOUT) {
            Ok(_) => {
                if acceptor.join().is_err() {
                    tracing::warn!("the development broker's forwarder thread panicked");
                }
            }
            Err(error) => {
                // Not joined: the thread stays blocked in accept until the process ends.
                tracing::warn!(%error, "could not wake the development broker's forwarder");
            }
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: &TcpListener, upstream: SocketAddr, stop: &AtomicBool) {
    let connections: Connections = Arc::default();
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    let mut next_id = 0u64;
    for incoming in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let client = match incoming {
            Ok(client) => client,
            Err(error) => {
                // E.g. out of file descriptors: back off instead of spinning.
                tracing::warn!(%error, "development broker: accept failed");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let server = match TcpStream::connect_timeout(&upstream, UPSTREAM_CONNECT_TIMEOUT) {
            Ok(server) => server,
            Err(error) => {
                tracing::warn!(%error, %upstream, "development broker: cannot reach the mock");
                let _ = client.shutdown(Shutdown::Both);
                continue;
            }
        };
        // Kafka requests are small and latency-bound.
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let pair = Arc::new((client, server));
        let id = next_id;
        next_id += 1;
        // Registered before its thread starts, so that `stop` below cuts it for sure.
        lock(&connections).insert(id, Arc::clone(&pair));
        let spawned = std::thread::Builder::new()
            .name(format!("broker-conn-{id}"))
            .spawn({
                let connections = Arc::clone(&connections);
                move || {
                    forward(&pair);
                    lock(&connections).remove(&id);
                }
            });
        match spawned {
            Ok(worker) => workers.push(worker),
            Err(error) => {
                tracing::warn!(%error, "development broker: cannot start a connection thread");
                if let Some(pair) = lock(&connections).remove(&id) {
                    cut(&pair);
                }
            }
        }
        workers.retain(|worker| !worker.is_finished());
    }
    for pair in lock(&connections).values() {
        cut(pair);
    }
    for worker in workers {
        let _ = worker.join();
    }
}

/// Copies both directions until either ends, then closes both sockets (Kafka has no use for a
/// half-closed connection).
fn forward(pair: &(TcpStream, TcpStream)) {
    let (client, server) = (&pair.0, &pair.1);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let _ = io::copy(&mut &*server, &mut &*client);
            cut(pair);
        });
        let _ = io::copy(&mut &*client, &mut &*server);
        cut(pair);
    });
}

fn cut(pair: &(TcpStream, TcpStream)) {
    let _ = pair.0.shutdown(Shutdown::Both);
    let _ = pair.1.shutdown(Shutdown::Both);
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The map stays consistent even if a holder panicked: entries are inserted or removed whole.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::consumer::{BaseConsumer, Consumer};

    fn metadata_client(bootstrap: &str) -> BaseConsumer {
        ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .create()
            .expect("create a client")
    }

    /// Metadata lists the default topics with their partition counts, and advertises the
    /// fixed port (not the mock's random one), so clients reconnect through the forwarder.
    #[test]
    fn advertises_fixed_port_and_default_topics() {
        let config = DevBrokerConfig {
            partitions: 3,
            ..DevBrokerConfig::default()
        }
        .with_topic("extra:7".parse().expect("valid spec"))
        .with_topic("orders:2".parse().expect("valid spec"));
        let broker = DevBroker::start(&config).expect("start the broker");
        assert_ne!(broker.port(), 0);
        let client = metadata_client(&broker.bootstrap());
        let metadata = client
            .fetch_metadata(None, Duration::from_secs(30))
            .expect("metadata");
        let brokers: Vec<(String, i32)> = metadata
            .brokers()
            .iter()
            .map(|b| (b.host().to_string(), b.port()))
            .collect();
        assert_eq!(
            brokers,
            vec![("127.0.0.1".to_string(), i32::from(broker.port()))]
        );
        let mut topics: Vec<(String, usize)> = metadata
            .topics()
            .iter()
            .map(|t| (t.name().to_string(), t.partitions().len()))
            .collect();
        topics.sort();
        let mut expected = vec![
            ("deliveries".to_string(), 3),
            ("extra".to_string(), 7),
            ("orders".to_string(), 2),
            ("sensors".to_string(), 3),
            (DEFAULT_ALERTS_TOPIC.to_string(), 3),
            (DEFAULT_DLQ_TOPIC.to_string(), 3),
            (DEFAULT_WINDOWS_TOPIC.to_string(), 3),
        ];
        expected.sort();
        assert_eq!(topics, expected);
        assert_eq!(broker.topics().len(), 7);
        drop(client);
    }

    #[test]
    fn port_in_use_is_an_error() {
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let port = taken.local_addr().expect("address").port();
        let config = DevBrokerConfig {
            port,
            ..DevBrokerConfig::default()
        };
        let error = DevBroker::start(&config).expect_err("port is taken");
        assert!(
            error.to_string().contains(&format!("127.0.0.1:{port}")),
            "{error}"
        );
    }

    /// After the broker stops, its port is free again and nothing answers there.
    #[test]
    fn drop_releases_the_port() {
        let broker = DevBroker::start(&DevBrokerConfig::default()).expect("start");
        let port = broker.port();
        let client = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
        drop(broker);
        // The forwarded connection was cut: reading gives end of file (or a reset).
        let mut buffer = [0u8; 1];
        let read = io::Read::read(&mut &client, &mut buffer);
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("port is free again");
    }

    #[test]
    fn invalid_topics_are_rejected() {
        for bad in ["", "a b", "..", "x:", "x:0", "x:-1", "x:abc", "x:5000", "ü"] {
            assert!(bad.parse::<TopicSpec>().is_err(), "{bad:?} accepted");
        }
        let config = DevBrokerConfig {
            partitions: 0,
            ..DevBrokerConfig::default()
        };
        assert!(DevBroker::start(&config).is_err());
    }
}
