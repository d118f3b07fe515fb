//! LOGI-1 throughput over a 1 M-event JSON Lines file, JSON parsing included.
//!
//! What is measured: wall-clock time from start to "every output flushed" of
//! `tidewatch::runner::run_file` (read + parse + validate + dedup + join + windows + rolling
//! statistics + alerts + writing windows.jsonl / alerts.jsonl / dlq.jsonl), at 1 and 2 worker
//! threads, the events per second that gives, and the peak resident set size (VmHWM) of the
//! process that ran it. Each configuration runs in a fresh child process (this benchmark
//! re-executes itself), so one run's peak memory does not hide another's, and runs
//! `TIDEWATCH_BENCH_REPEAT` times (default 3); the best and the median are printed.
//!
//! Input: the built-in generator, seed 42, 8 warehouses, default incidents, 1,000,000 events
//! (about 122 MB), written once to `target/bench-data/logi1-1m-seed42.jsonl`.
//!
//! Run: `cargo bench -p tidewatch-benchmarks --bench logi1_throughput`
//! (environment: `TIDEWATCH_BENCH_EVENTS` to change the size, `TIDEWATCH_BENCH_WORKERS` such as
//! `1,2,4`, `TIDEWATCH_BENCH_REPEAT`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use tidewatch_connectors::generator::{self, GeneratorConfig};

const CHILD_ENV: &str = "TIDEWATCH_BENCH_CHILD";

fn main() -> anyhow::Result<()> {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        return child(&spec);
    }
    let events: usize = env_or("TIDEWATCH_BENCH_EVENTS", 1_000_000)?;
    let repeat: usize = env_or("TIDEWATCH_BENCH_REPEAT", 3)?;
    let workers: Vec<usize> = std::env::var("TIDEWATCH_BENCH_WORKERS")
        .unwrap_or_else(|_| "1,2".to_string())
        .split(',')
        .map(|w| {
            w.trim()
                .parse()
                .context("TIDEWATCH_BENCH_WORKERS must list numbers")
        })
        .collect::<anyhow::Result<_>>()?;

    let input = input_file(events)?;
    let bytes = std::fs::metadata(&input)?.len();
    println!(
        "logi1_throughput: {events} events, {:.1} MB, seed 42, {} core(s)",
        bytes as f64 / 1e6,
        cores()
    );
    println!(
        "{:>8} {:>10} {:>10} {:>14} {:>14} {:>12}",
        "workers", "best s", "median s", "best ev/s", "median ev/s", "peak RSS MB"
    );
    for &w in &workers {
        let mut runs = Vec::new();
        for _ in 0..repeat {
            runs.push(run_child(&input, w)?);
        }
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (best, _) = runs[0];
        let (median, _) = runs[runs.len() / 2];
        let peak = runs.iter().map(|r| r.1).max().unwrap_or(0);
        println!(
            "{w:>8} {best:>10.3} {median:>10.3} {:>14.0} {:>14.0} {:>12.1}",
            events as f64 / best,
            events as f64 / median,
            peak as f64 / 1024.0
        );
    }
    Ok(())
}

fn env_or(name: &str, default: usize) -> anyhow::Result<usize> {
    tidewatch_benchmarks::env::count_or(name, default).map_err(anyhow::Error::msg)
}

fn cores() -> usize {
    tidewatch_benchmarks::report::Machine::this().cores
}

/// The input file, generated once per size.
fn input_file(events: usize) -> anyhow::Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("logi1-{events}-seed42.jsonl"));
    if !path.exists() {
        let started = Instant::now();
        let tmp = path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp)?;
        generator::write_jsonl(&GeneratorConfig::default(), events, &mut file)?;
        std::fs::rename(&tmp, &path)?;
        println!(
            "generated {} in {:.2} s",
            path.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(path)
}

/// Runs one configuration in a child process; returns (seconds, peak RSS in KiB).
fn run_child(input: &Path, workers: usize) -> anyhow::Result<(f64, u64)> {
    let output = Command::new(std::env::current_exe()?)
        .env(CHILD_ENV, format!("{workers}|{}", input.display()))
        .output()
        .context("cannot start the benchmark child")?;
    if !output.status.success() {
        bail!(
            "benchmark child failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut fields = text.split_whitespace();
    let seconds: f64 = fields.next().context("child printed nothing")?.parse()?;
    let peak_kib: u64 = fields.next().context("child printed no RSS")?.parse()?;
    Ok((seconds, peak_kib))
}

/// Child: one run, printing "seconds peak_kib".
fn child(spec: &str) -> anyhow::Result<()> {
    let (workers, input) = spec.split_once('|').context("bad child spec")?;
    let workers: usize = workers.parse()?;
    let out = tempfile_dir()?;
    let started = Instant::now();
    let summary = tidewatch::runner::run_file(
        Path::new(input),
        &out,
        5000,
        timely::Config::process(workers),
    )?;
    let seconds = started.elapsed().as_secs_f64();
    if summary.lines_read == 0 || summary.windows == 0 {
        bail!("the run produced nothing: {summary:?}");
    }
    std::fs::remove_dir_all(&out)?;
    println!("{seconds} {}", peak_rss_kib()?);
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("tidewatch-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Peak resident set size of this process (Linux `VmHWM`), in KiB.
fn peak_rss_kib() -> anyhow::Result<u64> {
    let (_, peak) = tidewatch_benchmarks::rss::current_and_peak_kib()
        .context("no VmHWM in /proc/self/status")?;
    Ok(peak)
}
