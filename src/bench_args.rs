//! `tidewatch bench`: the command line of the benchmarks library (`tidewatch_benchmarks`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

use tidewatch_benchmarks::command::{self, parse_duration, BenchCommand, Mode, ThroughputPlan};
use tidewatch_benchmarks::openloop::{LoadOptions, SinkPause};
use tidewatch_benchmarks::sweep::{parse_rate, parse_rates};
use tidewatch_connectors::generator::GeneratorConfig;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Events per second offered (open loop: fixed send instants), e.g. 100000, 100k, 1.5M.
    #[arg(long, value_name = "EVENTS_PER_SEC", default_value = "100k", value_parser = parse_rate)]
    rate: f64,
    /// Length of the measurement, e.g. 30s, 2m.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// Load before the measurement starts (not measured).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    warmup: Duration,
    /// Worker threads [default: number of cores]. Throughput mode runs 1 to N.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    workers: Option<u32>,
    /// Disorder bound D in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    disorder_ms: u64,
    /// Run each of these rates and report the highest whose processing p99 stays within --slo,
    /// e.g. 50k,100k,200k,400k.
    #[arg(long, value_name = "RATES", value_parser = rate_list, conflicts_with = "throughput")]
    sweep: Option<RateList>,
    /// The sweep's SLO on processing latency p99.
    #[arg(long, value_name = "DURATION", default_value = "10ms", value_parser = parse_duration)]
    slo: Duration,
    /// Directory for report.json, the .hlog interval logs, sweep.json and sweep.svg.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Event time = wall clock at generation (else the generator's faster simulated clock).
    /// Windows then close once a minute: use a --duration of minutes.
    #[arg(long)]
    real_time: bool,
    /// Grid of the timely time in ms (divides 60000; see `tidewatch run --help`).
    #[arg(long, value_name = "MS", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    time_grid_ms: u64,
    /// Number of warehouses generated (at least --workers).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    warehouses: u32,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Pause the sink once for this long (e.g. 50ms), to see a stall in the tail.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    sink_pause: Option<Duration>,
    /// When the sink pause happens, from the start of the measurement [default: half-way].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "sink_pause")]
    sink_pause_at: Option<Duration>,
    /// Throughput mode: as fast as possible, from lines in memory and from a JSON Lines file.
    #[arg(long)]
    throughput: bool,
    /// Throughput mode: events to generate.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1_000_000,
        requires = "throughput"
    )]
    events: usize,
    /// Throughput mode: read this JSON Lines file instead of writing the generated events to one.
    #[arg(long, value_name = "FILE", requires = "throughput")]
    input: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

/// The rates of `--sweep` (one value to clap, which would otherwise take a `Vec` as repeats).
#[derive(Clone, Debug)]
pub struct RateList(Vec<f64>);

fn rate_list(text: &str) -> Result<RateList, String> {
    parse_rates(text).map(RateList)
}

/// Runs `tidewatch bench`.
pub fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let workers = args.workers.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |w| w as usize,
    );
    if !args.throughput && (args.warehouses as usize) < workers {
        bail!(
            "--warehouses {} is fewer than --workers {workers}: each worker generates whole warehouses",
            args.warehouses
        );
    }
    if args.duration.is_zero() {
        bail!("--duration must be positive");
    }
    if let Some(input) = &args.input {
        std::fs::metadata(input).with_context(|| format!("cannot read {}", input.display()))?;
    }
    let generator = GeneratorConfig {
        seed: args.seed,
        warehouses: args.warehouses as usize,
        ..GeneratorConfig::default()
    }
    .with_default_incidents();
    let mut load = LoadOptions::new(args.rate);
    load.duration = args.duration;
    load.warmup = args.warmup;
    load.workers = workers;
    load.disorder_ms = args.disorder_ms;
    load.real_time = args.real_time;
    load.generator = generator;
    load.progress = !args.quiet;
    load.time_grid_ms = args.time_grid_ms;
    load.sink_pause = args.sink_pause.map(|length| SinkPause {
        at: args.sink_pause_at.unwrap_or(args.duration / 2),
        length,
    });
    let mode = if args.throughput {
        Mode::Throughput(ThroughputPlan {
            events: args.events,
            workers: (1..=workers).collect(),
            input: args.input,
        })
    } else if let Some(RateList(rates)) = args.sweep {
        Mode::Sweep(rates)
    } else {
        Mode::Single
    };
    let command = BenchCommand {
        load,
        mode,
        slo: args.slo,
        out: args.out,
    };
    command::run(&command, &mut std::io::stdout().lock())?;
    Ok(())
}
