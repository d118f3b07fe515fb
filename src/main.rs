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
use tidewatch::runner::{self, InputSpec, RunOptions, RunSummary};
use tidewatch_connectors::generator::{self, GeneratorConfig};
use tidewatch_connectors::jsonl_source::LineSource;
use tidewatch_dataflows::logi1::Logi1Config;

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
  cat events.jsonl | tidewatch run --input - --out out/
  tidewatch run --fast --minutes 1440 --out out/  # one simulated day as fast as possible
  tidewatch generate --events 1000000 --out events.jsonl")]
    Run(RunArgs),
    /// Write generated traffic (orders, deliveries, sensors) as a JSON Lines file.
    Generate(GenerateArgs),
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
    /// Do not print alerts on the terminal.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    generator: GeneratorArgs,
    #[command(flatten)]
    cluster: ClusterArgs,
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
            let rendered = error.render().to_string();
            let first = rendered
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("error: invalid usage");
            eprintln!(
                "tidewatch: {} (see `tidewatch --help`)",
                first.trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,tidewatch=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Generate(args) => generate(args),
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
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping exits at once.
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
    }

    let (input, demo) = match &args.input {
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
    let options = RunOptions {
        input,
        out_dir: args.out.clone(),
        disorder_ms: args.disorder_ms,
        print_alerts: !args.quiet,
        print_alerts_from_ms: if demo {
            now_ms() - DEMO_PRINT_BACK_MS
        } else {
            0
        },
        stop,
        logi1: Logi1Config::default(),
        progress_every: Some(Duration::from_secs(if demo { 60 } else { 10 })),
    };
    let summary = runner::run(options, config)?;
    print_summary(&summary);
    Ok(())
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
