//! The `tidewatch` command line (SPEC §5).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use tidewatch::feed::{GeneratorSpec, Pacing};
use tidewatch::runner::{self, InputSpec, KafkaSinkSpec, RunOptions, RunSummary};
use tidewatch_connectors::generator::{self, GeneratorConfig};
use tidewatch_connectors::jsonl_source::LineSource;
use tidewatch_connectors::kafka::{self, sink::SinkTopics, source, KafkaConfig};
use tidewatch_dataflows::anomaly::AnomalyConfig;
use tidewatch_dataflows::logi1::{Logi1Config, DEFAULT_TIME_GRID_MS, LIVE_TIME_GRID_MS};
use tidewatch_dataflows::logi2::Logi2Config;
use tidewatch_operators::detect::registry::DetectorKind;
use tidewatch_operators::detect::windowed_gaussian::NAB_WINDOW;
use tidewatch_operators::forecast::model::ModelKind;

mod bench_args;
mod serve_args;

use serve_args::{start_serving, ServeArgs, Serving};

/// Real-time monitoring of e-commerce logistics streams: joins orders and deliveries, keeps
/// per-minute statistics per warehouse and raises alerts when delivery times jump — exact,
/// incremental, on timely and differential dataflow.
///
/// Start with `tidewatch run`: it simulates a few warehouses and prints alerts as they fire.
#[derive(Parser, Debug)]
#[command(name = "tidewatch", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the reference dataflow LOGI-1. Without options: on the built-in generator in real
    /// time, printing alerts until Ctrl-C. With --input: on a JSON Lines file, until its end.
    #[command(after_help = "Examples:
  tidewatch run                                   # the demo: simulated warehouses, alerts as they fire
  tidewatch run --input events.jsonl --out out/   # file mode: out/windows.jsonl, alerts.jsonl, dlq.jsonl
  tidewatch run --input events.jsonl --out out/ --detect [--rules rules.json]   # + out/anomaly_alerts.jsonl
  cat events.jsonl | tidewatch run --input - --out out/
  tidewatch run --fast --minutes 1440 --out out/  # one simulated day as fast as possible
  tidewatch generate --events 1000000 --out events.jsonl")]
    Run(Box<RunArgs>),
    /// Write generated traffic (orders, deliveries, sensors) as a JSON Lines file.
    Generate(GenerateArgs),
    /// Start an in-memory Kafka broker on 127.0.0.1 for development and tests (NOT durable),
    /// with the default topics created, until Ctrl-C.
    #[command(after_help = "Examples:
  tidewatch broker                                # 127.0.0.1:9092, orders, deliveries, sensors, tidewatch.* (4 partitions)
  tidewatch broker --port 19092 --partitions 8 --topic clicks:2")]
    Broker(BrokerArgs),
    /// Load JSON Lines (or generated traffic) into Kafka: each line one message, in the topic
    /// of its `type`, keyed by its `warehouse`.
    #[command(after_help = "Examples:
  tidewatch produce --kafka 127.0.0.1:9092 --input events.jsonl
  tidewatch produce --kafka 127.0.0.1:9092 --generate --rate 2000      # until Ctrl-C
  tidewatch produce --kafka 127.0.0.1:9092 --generate --events 100000 --warehouses 4")]
    Produce(ProduceArgs),
    /// Measure LOGI-1: open-loop latency at a rate (processing and event-to-alert latency,
    /// HDR histograms), rate sweeps against a latency SLO, or throughput.
    #[command(after_help = "Examples:
  tidewatch bench --rate 100000 --duration 30s --workers 2 --out bench/
  tidewatch bench --sweep 50k,100k,200k,400k --slo 10ms --out sweep/   # sweep.json, sweep.svg
  tidewatch bench --rate 100k --sink-pause 50ms                         # a stall shows in the tail
  tidewatch bench --real-time --rate 20k --duration 5m                  # event time = wall clock
  tidewatch bench --throughput --events 1000000                         # memory and file, 1..N workers")]
    Bench(bench_args::BenchArgs),
    /// Backtest an online forecaster on a `timestamp,value` CSV: one-step-ahead MAE, RMSE,
    /// sMAPE and MASE over the last part of the series (the models LOGI-2 runs).
    #[command(after_help = "Examples:
  tidewatch forecast --input nyc_taxi.csv --model hw --season 48
  tidewatch forecast --input series.csv --model all                 # every model, season from the step
  tidewatch forecast --input series.csv --model auto --out forecasts.csv")]
    Forecast(ForecastArgs),
    /// Score every value of a `timestamp,value` CSV with an online anomaly detector; writes
    /// `timestamp,value,anomaly_score` (the layout NAB's scorer reads).
    #[command(after_help = "Examples:
  tidewatch detect --input nyc_taxi.csv --detector best --out scores.csv
  tidewatch detect --input series.csv --detector windowed_gaussian --window 1000")]
    Detect(DetectArgs),
}

#[derive(Args, Debug)]
struct DetectArgs {
    /// CSV with `timestamp,value` rows, or `timestamp,value,value…` for several features (a
    /// header line names the columns and is skipped).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// The detector: windowed_gaussian (rolling z-score of the values), robust (median and
    /// MAD over the window), ewma_chart (EWMA control chart, lambda 0.01), residual (rolling
    /// z-score of the forecaster's one-step residuals), learned_weights (a learned weighting
    /// of residual and windowed_gaussian), value_novelty (the gap to the nearest past value,
    /// unusual and large), or best (the recommended default: value_novelty with a rest period
    /// after each detection).
    /// With several value columns, each column is scored on its own and the point gets the
    /// largest score.
    #[arg(long, value_name = "NAME", default_value = "best",
          value_parser = clap::builder::PossibleValuesParser::new(DetectorKind::names()))]
    detector: String,
    /// Values in the rolling window.
    #[arg(long, value_name = "N", default_value_t = NAB_WINDOW as u64, value_parser = clap::value_parser!(u64).range(2..=10_000_000))]
    window: u64,
    /// Season of the residual detector's forecaster, in steps [default: the steps in a day,
    /// from the timestamps; 1 if none].
    #[arg(long, value_name = "M", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    season: Option<u64>,
    /// The forecaster of the residual, learned_weights and contextual detectors.
    #[arg(long, value_name = "MODEL", default_value = "auto",
          value_parser = clap::builder::PossibleValuesParser::new(["hw", "sarima", "arima", "ar", "ma", "wma", "ewma", "trend", "auto"]))]
    model: String,
    /// Points silenced after a detection by `best`, `contextual` and `learned_weights`
    /// [default: 2% of the series].
    #[arg(long, value_name = "N")]
    rest: Option<u64>,
    /// Where to write the scores [default: standard output].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// NAB-style labelled anomaly windows (`{"dir/file.csv": [[start, end], ...]}`): report the
    /// windows the detector hit and its false alarms outside them.
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
    /// Score at or above which a point is an alarm, for --labels [default: the detector's
    /// alarm level: 0.5 for value_novelty and best, 0.999 for learned_weights, 0.99 for
    /// dbscan, else 0.9999].
    #[arg(long, value_name = "SCORE", value_parser = parse_unit_score)]
    threshold: Option<f64>,
}

#[derive(Args, Debug)]
struct ForecastArgs {
    /// CSV with `timestamp,value` rows (a header line is skipped).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// The model, or `all` to compare every model.
    #[arg(long, value_name = "MODEL", default_value = "auto",
          value_parser = clap::builder::PossibleValuesParser::new(["hw", "sarima", "arima", "ar", "ma", "wma", "ewma", "trend", "auto", "all"]))]
    model: String,
    /// Season length in steps [default: the steps in a day, from the timestamps; 1 if none].
    #[arg(long, value_name = "M", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    season: Option<u64>,
    /// Share of the series, at its end, over which forecasts are scored.
    #[arg(long, value_name = "F", default_value_t = 0.2)]
    test_fraction: f64,
    /// Write every step's forecast as CSV (timestamp,value,forecast,model,part).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// JSON Lines input file (`-` for standard input). Without it, the built-in generator runs.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Directory for windows.jsonl, alerts.jsonl and dlq.jsonl (created if missing).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Worker threads in this process [default: number of cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    workers: Option<u32>,
    /// Disorder bound D in milliseconds: an event more than D below the largest time seen is late.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    disorder_ms: u64,
    /// Grid of the timely time in ms (divides 60000): a window's results are final one grid step
    /// after the watermark passes its end. Finer is sooner, coarser is more throughput
    /// [default: 1000 for the real-time demo, 60000 otherwise].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=60_000))]
    time_grid_ms: Option<u64>,
    /// Do not print alerts on the terminal.
    #[arg(long, short)]
    quiet: bool,
    /// Also run LOGI-2: per-warehouse forecasts of orders and delivery duration, written to
    /// forecasts.jsonl and forecast_alerts.jsonl in --out (see README "LOGI-2").
    #[arg(long)]
    logi2: bool,
    /// LOGI-2: the forecasting model of both series.
    #[arg(long, value_name = "MODEL", default_value = "auto", requires = "logi2",
          value_parser = clap::builder::PossibleValuesParser::new(["hw", "sarima", "arima", "ar", "ma", "wma", "ewma", "trend", "auto"]))]
    forecast_model: String,
    /// LOGI-2: half-width of the forecast interval, in RMSEs of recent one-step errors.
    #[arg(long, value_name = "Z", default_value_t = 4.0, requires = "logi2")]
    interval_z: f64,
    /// Also run the alert rules over the window rows (anomaly detectors with hysteresis):
    /// raised and cleared alerts go to anomaly_alerts.jsonl in --out (files only, not Kafka)
    /// and to the terminal (see README "Alert rules"). On by default in the demo.
    #[arg(long)]
    detect: bool,
    /// The alert rules as JSON ({"rules": [...]}, README "Alert rules"); implies --detect
    /// [default: delivery_duration_anomaly, order_volume_anomaly and temperature_anomaly].
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,
    /// Do not run the alert rules in the demo.
    #[arg(long, conflicts_with_all = ["detect", "rules"])]
    no_detect: bool,
    #[command(flatten)]
    generator: GeneratorArgs,
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Args, Debug)]
struct KafkaArgs {
    /// Read the events from Kafka at these bootstrap servers (HOST:PORT[,HOST:PORT...]).
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["input", "rate", "fast", "minutes"])]
    kafka: Option<String>,
    /// Kafka: input topics (the `type` field, not the topic, decides an event's type).
    #[arg(
        long,
        value_name = "T1,T2,...",
        value_delimiter = ',',
        default_value = "orders,deliveries,sensors",
        requires = "kafka"
    )]
    topics: Vec<String>,
    /// Kafka: consumer group whose committed offsets are read (--from committed) and written.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "tidewatch",
        requires = "kafka"
    )]
    group: String,
    /// Kafka: where to start reading.
    #[arg(long, value_enum, default_value_t = FromArg::Earliest, requires = "kafka")]
    from: FromArg,
    /// Where the outputs go [default: kafka with --kafka unless --out is given, else files].
    #[arg(long, value_enum)]
    sink: Option<SinkArg>,
    /// Kafka: exit once every assigned partition has reached the end offset it had at start
    /// and every output is flushed (replays, backfills, tests).
    #[arg(long, requires = "kafka")]
    stop_at_end: bool,
    /// Kafka: a partition with nothing new for this long stops holding the watermark back.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 10.0,
        requires = "kafka"
    )]
    idle_timeout: f64,
    /// Kafka: topic for alert deltas.
    #[arg(long, value_name = "TOPIC", default_value = kafka::DEFAULT_ALERTS_TOPIC)]
    alerts_topic: String,
    /// Kafka: topic for window deltas.
    #[arg(long, value_name = "TOPIC", default_value = kafka::DEFAULT_WINDOWS_TOPIC)]
    windows_topic: String,
    /// Kafka: topic for dead letters.
    #[arg(long, value_name = "TOPIC", default_value = kafka::DEFAULT_DLQ_TOPIC)]
    dlq_topic: String,
    /// Kafka: a librdkafka property passed through to every client (repeatable), e.g.
    /// security.protocol=SASL_SSL, sasl.mechanism=PLAIN, ssl.ca.location=/path/ca.pem.
    #[arg(long = "kafka-option", value_name = "KEY=VALUE", value_parser = kafka::parse_option)]
    kafka_options: Vec<(String, String)>,
    /// Kafka sink without --kafka: the brokers to write to.
    #[arg(long, value_name = "HOST:PORT")]
    sink_kafka: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum FromArg {
    /// The beginning of each partition.
    Earliest,
    /// Only messages produced after the start.
    Latest,
    /// The group's committed offsets: resume an earlier run (appends to its output files).
    Committed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum SinkArg {
    /// Kafka topics (--alerts-topic, --windows-topic, --dlq-topic).
    Kafka,
    /// windows.jsonl, alerts.jsonl and dlq.jsonl in --out.
    Files,
    /// Both.
    Both,
}

#[derive(Args, Debug)]
struct GeneratorArgs {
    /// Generator: emit this many events per second instead of following the wall clock.
    #[arg(long, value_name = "EVENTS_PER_SEC", conflicts_with_all = ["input", "fast"])]
    rate: Option<f64>,
    /// Generator: emit as fast as the dataflow takes events.
    #[arg(long, conflicts_with = "input")]
    fast: bool,
    /// Generator: stop after this many minutes of simulated event time.
    #[arg(long, value_name = "MINUTES", conflicts_with = "input")]
    minutes: Option<u64>,
    /// Generator: random seed.
    #[arg(long, default_value_t = 42, conflicts_with = "input")]
    seed: u64,
    /// Generator: number of warehouses.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000), conflicts_with = "input")]
    warehouses: u32,
}

#[derive(Args, Debug)]
struct ClusterArgs {
    /// Cluster mode: number of processes (timely's -n). Every process runs the same command.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    processes: u32,
    /// Cluster mode: index of this process, 0-based (timely's -p). Process 0 writes the outputs.
    #[arg(long, value_name = "I", default_value_t = 0)]
    process: u32,
    /// Cluster mode: file with one host:port per process [default: 127.0.0.1:2101, :2102, ...].
    #[arg(long, value_name = "FILE")]
    hostfile: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct GenerateArgs {
    /// Number of events to write.
    #[arg(long, value_name = "N")]
    events: usize,
    /// Output file (`-` for standard output).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Number of warehouses.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    warehouses: u32,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            use clap::error::ErrorKind;
            if matches!(
                error.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = error.print();
                return if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // One line: clap's first line names the problem; the rest is usage we point to.
            // Everything before clap's usage block, on one line (a missing argument's name is
            // on the line after "were not provided:").
            let rendered = error.render().to_string();
            let message = rendered
                .lines()
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more"))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            let message = if message.is_empty() {
                "invalid usage"
            } else {
                message.trim_start_matches("error: ")
            };
            eprintln!("tidewatch: {message} (see `tidewatch --help`)");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,tidewatch=info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Run(args) => run(*args),
        Command::Generate(args) => generate(args),
        Command::Broker(args) => broker(args),
        Command::Produce(args) => produce(args),
        Command::Bench(args) => bench_args::bench(args),
        Command::Forecast(args) => forecast(args),
        Command::Detect(args) => detect(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tidewatch: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// Simulated history the demo replays before it follows the wall clock.
const DEMO_HISTORY_MS: u64 = 8 * 3_600_000;
/// The demo prints alerts of windows at most this old when it starts.
const DEMO_PRINT_BACK_MS: u64 = 5 * 60_000;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn timely_config(workers: u32, cluster: &ClusterArgs) -> anyhow::Result<timely::Config> {
    let threads = workers as usize;
    if cluster.processes <= 1 {
        if cluster.process != 0 {
            bail!(
                "--process {} needs --processes greater than it",
                cluster.process
            );
        }
        return Ok(timely::Config::process(threads));
    }
    if cluster.process >= cluster.processes {
        bail!(
            "--process {} is out of range for --processes {}",
            cluster.process,
            cluster.processes
        );
    }
    let addresses: Vec<String> = match &cluster.hostfile {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read hostfile {}", path.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        None => (0..cluster.processes)
            .map(|i| format!("127.0.0.1:{}", 2101 + i))
            .collect(),
    };
    if addresses.len() != cluster.processes as usize {
        bail!(
            "the hostfile lists {} addresses for --processes {}",
            addresses.len(),
            cluster.processes
        );
    }
    Ok(timely::Config {
        communication: timely::CommunicationConfig::Cluster {
            threads,
            process: cluster.process as usize,
            addresses,
            report: false,
            zerocopy: false,
        },
        worker: timely::WorkerConfig::default(),
    })
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let workers = match args.workers {
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
    };
    let config = timely_config(workers, &args.cluster)?;
    let stop = stop_on_signal()?;

    let (input, demo) = match &args.input {
        None if args.kafka.kafka.is_some() => (kafka_input(&args.kafka)?, false),
        Some(path) if path.as_os_str() == "-" => (InputSpec::Lines(LineSource::Stdin), false),
        Some(path) => {
            let meta = std::fs::metadata(path)
                .with_context(|| format!("cannot read input file {}", path.display()))?;
            if !meta.is_file() {
                bail!("input {} is not a file", path.display());
            }
            (InputSpec::Lines(LineSource::File(path.clone())), false)
        }
        None => {
            let g = &args.generator;
            let pacing = if g.fast {
                Pacing::AsFastAsPossible
            } else if let Some(rate) = g.rate {
                if !(rate.is_finite() && rate > 0.0) {
                    bail!("--rate must be a positive number of events per second, got {rate}");
                }
                Pacing::Rate(rate)
            } else {
                Pacing::RealTime
            };
            let mut config = GeneratorConfig {
                seed: g.seed,
                warehouses: g.warehouses as usize,
                ..GeneratorConfig::default()
            };
            let config = match pacing {
                // Real time starts with eight hours of simulated history, replayed at full
                // speed, so that deliveries have their orders and the z-score rule its history.
                // The first incident (slow deliveries at wh-01) began 150 s before the present,
                // so its first full minute has closed and alerts at start-up; then one every 90 minutes.
                Pacing::RealTime => {
                    let now = now_ms() - now_ms() % 1000;
                    config.start_ms = now - DEMO_HISTORY_MS;
                    config.incidents = generator::default_incidents(
                        now - 150_000 - 3 * 3_600_000,
                        config.warehouses,
                        7 * 24 * 3_600_000,
                    );
                    config
                }
                _ => config.with_default_incidents(),
            };
            let start_ms = config.start_ms;
            config.validate().context("invalid generator settings")?;
            let spec = GeneratorSpec {
                stop_at_ms: g.minutes.map(|m| start_ms + m * 60_000),
                config,
                pacing,
            };
            (
                InputSpec::Generator(spec),
                matches!(pacing, Pacing::RealTime),
            )
        }
    };
    // Rules are read before anything starts, so that a bad file fails fast.
    let anomaly = if args.detect || args.rules.is_some() || (demo && !args.no_detect) {
        Some(alert_rules(args.rules.as_deref())?)
    } else {
        None
    };
    if demo && !args.quiet {
        println!(
            "tidewatch: simulating {} warehouses on {} worker(s): {} h of history replayed at full speed, \
             then real time. Alerts of the last {} minutes and new ones print below; Ctrl-C stops.",
            args.generator.warehouses,
            workers,
            DEMO_HISTORY_MS / 3_600_000,
            DEMO_PRINT_BACK_MS / 60_000
        );
    }
    let (out_dir, kafka_sink) = sinks(&args)?;
    let logi1 = Logi1Config {
        time_grid_ms: args.time_grid_ms.unwrap_or(if demo {
            LIVE_TIME_GRID_MS
        } else {
            DEFAULT_TIME_GRID_MS
        }),
        ..Logi1Config::default()
    };
    if let Err(problem) = logi1.validate() {
        bail!("--time-grid-ms: {problem}");
    }
    let logi2 = if args.logi2 {
        let model: ModelKind = args.forecast_model.parse().map_err(anyhow::Error::msg)?;
        let config = Logi2Config {
            demand_model: model,
            duration_model: model,
            interval_z: args.interval_z,
            ..Logi2Config::default()
        };
        if let Err(problem) = config.validate() {
            bail!("--interval-z: {problem}");
        }
        Some(config)
    } else {
        None
    };
    let Serving {
        telemetry,
        server,
        urls,
        warnings,
    } = start_serving(&args.serve, demo, args.cluster.process, workers)?;
    if demo && !args.quiet && !urls.is_empty() {
        println!("tidewatch: {}", urls.join(", "));
    }
    let options = RunOptions {
        telemetry,
        start_notes: urls
            .iter()
            .map(|url| format!("serving the {url}"))
            .collect(),
        start_warnings: warnings,
        input,
        out_dir,
        kafka_sink,
        flush_every: runner::DEFAULT_FLUSH_EVERY,
        disorder_ms: args.disorder_ms,
        print_alerts: !args.quiet,
        print_alerts_from_ms: if demo {
            now_ms() - DEMO_PRINT_BACK_MS
        } else {
            0
        },
        stop,
        logi1,
        logi2,
        anomaly,
        progress_every: Some(Duration::from_secs(if demo { 60 } else { 10 })),
    };
    let summary = runner::run(options, config)?;
    drop(server);
    print_summary(&summary);
    Ok(())
}

/// The alert rules of `run --detect`: the file's, or the defaults.
fn alert_rules(path: Option<&std::path::Path>) -> anyhow::Result<AnomalyConfig> {
    let Some(path) = path else {
        return Ok(AnomalyConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read rules file {}", path.display()))?;
    AnomalyConfig::from_json(&text).with_context(|| format!("rules file {}", path.display()))
}

/// The Kafka input of `run --kafka`.
fn kafka_input(args: &KafkaArgs) -> anyhow::Result<InputSpec> {
    let Some(brokers) = &args.kafka else {
        bail!("--kafka is required for a Kafka input");
    };
    if args.topics.iter().any(|t| t.trim().is_empty()) {
        bail!("--topics has an empty topic name");
    }
    if !(args.idle_timeout.is_finite() && args.idle_timeout >= 0.0) {
        bail!(
            "--idle-timeout must be a non-negative number of seconds, got {}",
            args.idle_timeout
        );
    }
    let mut config = source::SourceConfig::new(kafka_config(brokers, args));
    config.topics = args.topics.iter().map(|t| t.trim().to_string()).collect();
    config.group = args.group.clone();
    config.from = match args.from {
        FromArg::Earliest => source::StartFrom::Earliest,
        FromArg::Latest => source::StartFrom::Latest,
        FromArg::Committed => source::StartFrom::Committed,
    };
    config.stop_at_end = args.stop_at_end;
    config.idle_timeout = Duration::from_secs_f64(args.idle_timeout);
    Ok(InputSpec::Kafka(config))
}

fn kafka_config(brokers: &str, args: &KafkaArgs) -> KafkaConfig {
    KafkaConfig {
        brokers: brokers.to_string(),
        options: args.kafka_options.clone(),
    }
}

/// The output directory and the Kafka sink of `run`, from --out, --sink and --kafka.
fn sinks(args: &RunArgs) -> anyhow::Result<(Option<PathBuf>, Option<KafkaSinkSpec>)> {
    let k = &args.kafka;
    let sink_brokers = k.sink_kafka.clone().or_else(|| k.kafka.clone());
    let choice = match k.sink {
        Some(choice) => choice,
        None if k.kafka.is_some() && args.out.is_none() => SinkArg::Kafka,
        None if k.sink_kafka.is_some() && args.out.is_none() => SinkArg::Kafka,
        None if k.sink_kafka.is_some() => SinkArg::Both,
        None => SinkArg::Files,
    };
    let kafka_sink = match choice {
        SinkArg::Files => None,
        SinkArg::Kafka | SinkArg::Both => {
            let Some(brokers) = sink_brokers else {
                bail!("--sink kafka needs --kafka HOST:PORT (or --sink-kafka HOST:PORT)");
            };
            Some(KafkaSinkSpec {
                kafka: kafka_config(&brokers, k),
                topics: SinkTopics {
                    alerts: k.alerts_topic.clone(),
                    windows: k.windows_topic.clone(),
                    dlq: k.dlq_topic.clone(),
                },
            })
        }
    };
    let out_dir = match choice {
        SinkArg::Kafka => {
            if args.out.is_some() {
                bail!("--out was given with --sink kafka: use --sink both to write files too");
            }
            None
        }
        SinkArg::Files | SinkArg::Both => {
            if choice == SinkArg::Both && args.out.is_none() {
                bail!("--sink both needs --out DIR");
            }
            args.out.clone()
        }
    };
    Ok((out_dir, kafka_sink))
}

fn print_summary(summary: &RunSummary) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "tidewatch: {} {} lines in {:.2} s ({:.0} events/s, {} worker(s)): events in {}, dead letters {} (late {}), windows {}, alerts {}",
        if summary.stopped_early { "stopped after" } else { "done:" },
        summary.lines_read,
        summary.elapsed.as_secs_f64(),
        summary.events_per_second(),
        summary.workers,
        summary.events_in,
        summary.dead_letters,
        summary.late,
        summary.windows,
        summary.alerts,
    );
    if summary.forecasts > 0 {
        let _ = writeln!(
            err,
            "tidewatch: LOGI-2: forecasts {}, forecast alerts {}",
            summary.forecasts, summary.forecast_alerts
        );
    }
    if summary.anomaly_raised + summary.anomaly_cleared > 0 {
        let _ = writeln!(
            err,
            "tidewatch: alert rules: raised {}, cleared {}",
            summary.anomaly_raised, summary.anomaly_cleared
        );
    }
    if let Some(below) = summary.resumed_below {
        let _ = writeln!(
            err,
            "tidewatch: resumed from committed offsets; outputs at times below {below} were written by the earlier run and were not repeated"
        );
    }
}

fn forecast(args: ForecastArgs) -> anyhow::Result<()> {
    if !(args.test_fraction > 0.0 && args.test_fraction < 1.0) {
        bail!(
            "--test-fraction must be between 0 and 1 (exclusive), got {}",
            args.test_fraction
        );
    }
    let model = match args.model.as_str() {
        "all" => None,
        name => Some(name.parse::<ModelKind>().map_err(anyhow::Error::msg)?),
    };
    let request = tidewatch::forecast_cmd::ForecastRequest {
        input: &args.input,
        model,
        season: args.season.map(|m| m as usize),
        test_fraction: args.test_fraction,
        out: args.out.as_deref(),
    };
    tidewatch::forecast_cmd::run(
        &request,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    )?;
    Ok(())
}

fn detect(args: DetectArgs) -> anyhow::Result<()> {
    let detector: DetectorKind = args.detector.parse().map_err(anyhow::Error::msg)?;
    let request = tidewatch::detect_cmd::DetectRequest {
        input: &args.input,
        detector,
        window: args.window as usize,
        season: args.season.map(|m| m as usize),
        model: args.model.parse().map_err(anyhow::Error::msg)?,
        rest: args.rest.map(|n| n as usize),
        out: args.out.as_deref(),
        labels: args.labels.as_deref(),
        threshold: args.threshold.unwrap_or(detector.alarm_level()),
    };
    tidewatch::detect_cmd::run(
        &request,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    )?;
    Ok(())
}

/// A score threshold in [0, 1].
fn parse_unit_score(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(score) if (0.0..=1.0).contains(&score) => Ok(score),
        _ => Err(format!("`{text}` is not a score between 0 and 1")),
    }
}

fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    let config = GeneratorConfig {
        seed: args.seed,
        warehouses: args.warehouses as usize,
        ..GeneratorConfig::default()
    }
    .with_default_incidents();
    config.validate().context("invalid generator settings")?;
    let written = if args.out.as_os_str() == "-" {
        generator::write_jsonl(&config, args.events, &mut std::io::stdout().lock())
            .context("cannot write to standard output")?
    } else {
        let mut file = std::fs::File::create(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))?;
        let written = generator::write_jsonl(&config, args.events, &mut file)
            .with_context(|| format!("cannot write {}", args.out.display()))?;
        file.flush()
            .with_context(|| format!("cannot write {}", args.out.display()))?;
        written
    };
    eprintln!("tidewatch: wrote {} events ({written} bytes)", args.events);
    Ok(())
}

#[derive(Args, Debug)]
struct BrokerArgs {
    /// Port on 127.0.0.1 to listen on (0 picks a free one; the line printed at start says which).
    #[arg(long, default_value_t = tidewatch_connectors::kafka::broker::DEFAULT_BROKER_PORT)]
    port: u16,
    /// Partitions of each topic created at start (unless its --topic says otherwise).
    #[arg(long, value_name = "N", default_value_t = tidewatch_connectors::kafka::broker::DEFAULT_PARTITIONS,
          value_parser = clap::value_parser!(i32).range(1..=i64::from(tidewatch_connectors::kafka::broker::MAX_PARTITIONS)))]
    partitions: i32,
    /// Another topic to create, or a default one with another partition count (repeatable).
    #[arg(long = "topic", value_name = "NAME[:PARTITIONS]")]
    topics: Vec<tidewatch_connectors::kafka::broker::TopicSpec>,
}

#[derive(Args, Debug)]
struct ProduceArgs {
    /// Bootstrap servers of the Kafka cluster (required).
    // Checked in `produce`, not by clap: clap's message for a missing required option puts
    // the option's name on a second line, which the one-line error of `main` drops.
    #[arg(long, value_name = "HOST:PORT[,HOST:PORT...]")]
    kafka: Option<String>,
    /// JSON Lines file to load (`-` for standard input).
    #[arg(long, value_name = "FILE", conflicts_with = "generate")]
    input: Option<PathBuf>,
    /// Produce traffic from the built-in generator instead of a file.
    #[arg(long)]
    generate: bool,
    /// Generator: stop after this many events [default: run until Ctrl-C].
    #[arg(long, value_name = "N", conflicts_with = "input")]
    events: Option<u64>,
    /// Generator: events per second, paced by the wall clock [default: as fast as the brokers take them].
    #[arg(long, value_name = "EVENTS_PER_SEC", conflicts_with = "input")]
    rate: Option<f64>,
    /// Generator: random seed.
    #[arg(long, default_value_t = 42, conflicts_with = "input")]
    seed: u64,
    /// Generator: number of warehouses.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000), conflicts_with = "input")]
    warehouses: u32,
    /// Topics of orders, deliveries and sensors (lines without a known `type` go to the first).
    #[arg(
        long,
        value_name = "ORDERS,DELIVERIES,SENSORS",
        default_value = "orders,deliveries,sensors"
    )]
    topics: tidewatch_connectors::kafka::produce::EventTopics,
    /// A librdkafka property passed through to the producer (repeatable), e.g.
    /// security.protocol=SASL_SSL, compression.type=zstd.
    #[arg(long = "kafka-option", value_name = "KEY=VALUE", value_parser = tidewatch_connectors::kafka::parse_option)]
    kafka_options: Vec<(String, String)>,
}

/// A stop flag raised by SIGINT or SIGTERM; a second signal exits at once.
fn stop_on_signal() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
    }
    Ok(stop)
}

/// A Kafka connector error as one line (its message already names its cause).
fn kafka_error(error: tidewatch_connectors::kafka::KafkaError) -> anyhow::Error {
    anyhow::Error::new(error)
}

fn broker(args: BrokerArgs) -> anyhow::Result<()> {
    use tidewatch_connectors::kafka::broker::{
        DevBroker, DevBrokerConfig, RETAINED_BYTES_PER_PARTITION,
    };
    let stop = stop_on_signal()?;
    let mut config = DevBrokerConfig {
        port: args.port,
        partitions: args.partitions,
        ..DevBrokerConfig::default()
    };
    for topic in args.topics {
        config = config.with_topic(topic);
    }
    let broker = DevBroker::start(&config).map_err(kafka_error)?;
    // Consecutive topics with the same partition count share one "(N partitions)".
    let mut groups: Vec<(Vec<&str>, i32)> = Vec::new();
    for (name, partitions) in broker.topics() {
        match groups.last_mut() {
            Some((names, n)) if n == partitions => names.push(name),
            _ => groups.push((vec![name], *partitions)),
        }
    }
    let topics: Vec<String> = groups
        .iter()
        .map(|(names, n)| {
            format!(
                "{} ({n} partition{})",
                names.join(", "),
                if *n == 1 { "" } else { "s" }
            )
        })
        .collect();
    // Scripts and tests wait for this line: write it at once.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "tidewatch broker: listening on {} — in memory, NOT durable, keeps the newest {} MiB of each partition \
         (development only); topics {}",
        broker.bootstrap(),
        RETAINED_BYTES_PER_PARTITION >> 20,
        topics.join(", ")
    );
    let _ = out.flush();
    drop(out);
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(broker);
    eprintln!("tidewatch broker: stopped");
    Ok(())
}

fn produce(args: ProduceArgs) -> anyhow::Result<()> {
    use tidewatch_connectors::kafka::produce::{
        produce_generated, produce_lines, GeneratedLoad, ProduceConfig,
    };
    let Some(brokers) = args.kafka.clone() else {
        bail!("produce needs --kafka HOST:PORT (the bootstrap servers)");
    };
    if args.input.is_none() && !args.generate {
        bail!("produce needs --input FILE (`-` for standard input) or --generate");
    }
    if let Some(path) = args.input.as_ref().filter(|p| p.as_os_str() != "-") {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("cannot read input file {}", path.display()))?;
        if !meta.is_file() {
            bail!("input {} is not a file", path.display());
        }
    }
    if let Some(rate) = args.rate {
        if !(rate.is_finite() && rate > 0.0) {
            bail!("--rate must be a positive number of events per second, got {rate}");
        }
    }
    let stop = stop_on_signal()?;
    let config = ProduceConfig {
        kafka: tidewatch_connectors::kafka::KafkaConfig {
            brokers: brokers.clone(),
            options: args.kafka_options,
        },
        topics: args.topics,
    };
    let summary = match &args.input {
        None => {
            let generator_config = GeneratorConfig {
                seed: args.seed,
                warehouses: args.warehouses as usize,
                ..GeneratorConfig::default()
            }
            .with_default_incidents();
            let generator = generator::Generator::new(generator_config, |_| true)
                .context("invalid generator settings")?;
            let load = GeneratedLoad {
                events: args.events,
                rate: args.rate,
            };
            produce_generated(&config, generator, &load, &stop)
        }
        Some(path) if path.as_os_str() == "-" => {
            produce_lines(&config, std::io::stdin().lock(), &stop)
        }
        Some(path) => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot read input file {}", path.display()))?;
            produce_lines(
                &config,
                std::io::BufReader::with_capacity(1 << 20, file),
                &stop,
            )
        }
    }
    .map_err(kafka_error)?;
    let per_topic: Vec<String> = summary
        .per_topic
        .iter()
        .map(|(topic, count)| format!("{topic} {count}"))
        .collect();
    eprintln!(
        "tidewatch produce: {} {} messages ({} bytes) in {:.2} s ({:.0} messages/s) to {}: {}; unroutable {} (sent to {} without a key)",
        if summary.stopped_early { "stopped after" } else { "done:" },
        summary.lines,
        summary.bytes,
        summary.elapsed.as_secs_f64(),
        summary.messages_per_second(),
        brokers,
        per_topic.join(", "),
        summary.unroutable,
        config.topics.orders,
    );
    Ok(())
}
