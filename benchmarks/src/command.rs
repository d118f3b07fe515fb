//! `tidewatch bench`: one latency run, a rate sweep, or throughput mode, with progress on
//! stderr, the summary on stdout and the files in `--out`.
//!
//! Files, for one run: `report.json`, `processing.hlog`, `event_to_alert.hlog` (HdrHistogram
//! interval logs, one histogram per second), and the rows written (`windows.jsonl`,
//! `alerts.jsonl`). For a sweep: the same per rate under `rate-<events/s>/`, plus `sweep.json`
//! and `sweep.svg` (latency percentiles against throughput). Throughput mode writes
//! `throughput.json`.
//!
//! # Examples
//! ```no_run
//! use std::time::Duration;
//! use tidewatch_benchmarks::command::{run, BenchCommand, Mode};
//! use tidewatch_benchmarks::openloop::LoadOptions;
//!
//! let command = BenchCommand {
//!     load: LoadOptions::new(100_000.0),
//!     mode: Mode::Single,
//!     slo: Duration::from_millis(10),
//!     out: None,
//! };
//! run(&command, &mut std::io::stdout()).unwrap();
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::hlog::{write_interval_log, IntervalHistograms};
use crate::openloop::{run_load, LoadError, LoadOptions, LoadResult};
use crate::plot::{sweep_svg, SweepPoint};
use crate::report::{BenchReport, Machine};
use crate::sweep::{highest_within_slo, within_slo, SweepReport};
use crate::throughput::{generate_lines, run_throughput, Lines, ThroughputError};

/// What `tidewatch bench` does.
#[derive(Clone, Debug)]
pub enum Mode {
    /// One run at `load.rate`.
    Single,
    /// One run per rate, each like `load` otherwise.
    Sweep(Vec<f64>),
    /// Throughput mode.
    Throughput(ThroughputPlan),
}

/// Throughput mode's runs.
#[derive(Clone, Debug)]
pub struct ThroughputPlan {
    /// Events generated for the in-memory buffer (and the file, unless `input` is given).
    pub events: usize,
    /// Worker counts to run, e.g. `[1, 2]`.
    pub workers: Vec<usize>,
    /// A JSON Lines file to read instead of writing the generated lines to one.
    pub input: Option<PathBuf>,
}

/// A `tidewatch bench` invocation.
#[derive(Clone, Debug)]
pub struct BenchCommand {
    /// The load (a sweep varies its rate; throughput mode uses its generator and D).
    pub load: LoadOptions,
    /// What to run.
    pub mode: Mode,
    /// SLO on processing latency p99 for a sweep's verdict.
    pub slo: Duration,
    /// Directory for the report files.
    pub out: Option<PathBuf>,
}

/// Errors of `tidewatch bench`.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A latency run failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A throughput run failed.
    #[error(transparent)]
    Throughput(#[from] ThroughputError),
    /// A report file could not be written.
    #[error("cannot write {path}: {cause}")]
    Write {
        /// The file.
        path: String,
        /// The cause.
        cause: String,
    },
}

fn write_error(path: &Path, cause: impl std::fmt::Display) -> CommandError {
    CommandError::Write {
        path: path.display().to_string(),
        cause: cause.to_string(),
    }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), CommandError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    }
    std::fs::write(path, bytes).map_err(|e| write_error(path, e))
}

fn write_json(path: &Path, value: &impl Serialize) -> Result<(), CommandError> {
    let mut text = serde_json::to_vec_pretty(value).map_err(|e| write_error(path, e))?;
    text.push(b'\n');
    write_file(path, &text)
}

/// Runs `command`, printing summaries to `out` (progress goes to stderr).
pub fn run(command: &BenchCommand, out: &mut dyn Write) -> Result<(), CommandError> {
    let stdout_error = |e: std::io::Error| write_error(Path::new("stdout"), e);
    match &command.mode {
        Mode::Single => {
            let (report, _) = measure(&command.load, command.out.as_deref())?;
            writeln!(out, "{}", report.summary()).map_err(stdout_error)?;
            if let Some(dir) = &command.out {
                writeln!(out, "  files:           {}", dir.display()).map_err(stdout_error)?;
            }
        }
        Mode::Sweep(rates) => {
            let mut points = Vec::new();
            for (i, rate) in rates.iter().enumerate() {
                let mut load = command.load.clone();
                load.rate = *rate;
                if command.load.progress {
                    eprintln!("sweep {}/{}: {rate:.0} events/s", i + 1, rates.len());
                }
                let dir = command
                    .out
                    .as_ref()
                    .map(|d| d.join(format!("rate-{rate:.0}")));
                let (report, _) = measure(&load, dir.as_deref())?;
                writeln!(out, "{}\n", report.summary()).map_err(stdout_error)?;
                points.push(report);
            }
            let sweep = SweepReport {
                workers: command.load.workers,
                slo_p99_us: command.slo.as_micros() as u64,
                highest_rate_within_slo: highest_within_slo(&points, command.slo),
                points,
            };
            writeln!(out, "{}", sweep_table(&sweep, command.slo)).map_err(stdout_error)?;
            if let Some(dir) = &command.out {
                write_json(&dir.join("sweep.json"), &sweep)?;
                let svg_points: Vec<SweepPoint> = sweep
                    .points
                    .iter()
                    .map(|p| SweepPoint {
                        rate_offered: p.rate_offered,
                        rate_achieved: p.rate_achieved,
                        processing: p.processing,
                    })
                    .collect();
                let title = format!(
                    "tidewatch LOGI-1 processing latency, {} worker(s), {}",
                    command.load.workers,
                    Machine::this().cpu
                );
                write_file(
                    &dir.join("sweep.svg"),
                    sweep_svg(&title, &svg_points, Some(command.slo)).as_bytes(),
                )?;
                writeln!(out, "  files:           {}", dir.display()).map_err(stdout_error)?;
            }
        }
        Mode::Throughput(plan) => {
            let table = throughput(command, plan)?;
            writeln!(out, "{table}").map_err(stdout_error)?;
        }
    }
    Ok(())
}

/// One latency run, its report, and its files in `dir`.
fn measure(
    load: &LoadOptions,
    dir: Option<&Path>,
) -> Result<(BenchReport, LoadResult), CommandError> {
    let mut load = load.clone();
    load.outputs_dir = dir.map(Path::to_path_buf);
    let result = run_load(&load)?;
    let report = BenchReport::new(&result, &load);
    if let Some(dir) = dir {
        write_json(&dir.join("report.json"), &report)?;
        for (name, log) in [
            ("processing", &result.processing_log),
            ("event_to_alert", &result.event_to_alert_log),
        ] {
            write_hlog(
                &dir.join(format!("{name}.hlog")),
                name,
                log,
                result.measured_from,
            )?;
        }
    }
    Ok((report, result))
}

fn write_hlog(
    path: &Path,
    tag: &str,
    log: &IntervalHistograms,
    base: SystemTime,
) -> Result<(), CommandError> {
    let mut bytes = Vec::new();
    let comment =
        format!("tidewatch bench: LOGI-1 {tag} latency in microseconds, one interval per second");
    write_interval_log(&mut bytes, base, &[comment.as_str()], &[(tag, log)])
        .map_err(|e| write_error(path, e))?;
    write_file(path, &bytes)
}

/// The sweep as a table, and its verdict.
fn sweep_table(sweep: &SweepReport, slo: Duration) -> String {
    let mut text = format!(
        "{:>12} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  within SLO\n",
        "offered/s", "achieved/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "p99.99", "max ms"
    );
    let ms = |us: u64| us as f64 / 1_000.0;
    for p in &sweep.points {
        let r = &p.processing;
        text.push_str(&format!(
            "{:>12.0} {:>12.0} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}  {}\n",
            p.rate_offered,
            p.rate_achieved,
            ms(r.p50_us),
            ms(r.p90_us),
            ms(r.p99_us),
            ms(r.p999_us),
            ms(r.p9999_us),
            ms(r.max_us),
            if within_slo(p, slo) { "yes" } else { "no" }
        ));
    }
    match sweep.highest_rate_within_slo {
        Some(rate) => text.push_str(&format!(
            "highest rate with processing p99 <= {:.3} ms: {rate:.0} events/s",
            ms(slo.as_micros() as u64)
        )),
        None => text.push_str(&format!(
            "no rate kept processing p99 <= {:.3} ms",
            ms(slo.as_micros() as u64)
        )),
    }
    text
}

/// One throughput run, as `throughput.json` has it.
#[derive(Clone, Debug, Serialize)]
pub struct ThroughputRow {
    /// `memory` or `file`.
    pub source: String,
    /// Worker threads.
    pub workers: usize,
    /// Lines read.
    pub lines: u64,
    /// Seconds from start to the last output.
    pub seconds: f64,
    /// Lines per second.
    pub events_per_second: f64,
    /// Against the same source at the first worker count.
    pub scaling: f64,
    /// Window rows and alerts written.
    pub windows: u64,
    /// Alerts written.
    pub alerts: u64,
}

fn throughput(command: &BenchCommand, plan: &ThroughputPlan) -> Result<String, CommandError> {
    let disorder_ms = command.load.disorder_ms;
    let progress = command.load.progress;
    if progress {
        eprintln!("generating {} events in memory ...", plan.events);
    }
    let lines = Arc::new(generate_lines(&command.load.generator, plan.events));
    let file = match &plan.input {
        Some(path) => path.clone(),
        None => {
            let dir = command
                .out
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join("tidewatch-bench"));
            let path = dir.join(format!("throughput-{}-events.jsonl", plan.events));
            let mut text = Vec::with_capacity(lines.len() * 160);
            for line in lines.iter() {
                text.extend_from_slice(line);
                text.push(b'\n');
            }
            write_file(&path, &text)?;
            path
        }
    };
    let mut rows: Vec<ThroughputRow> = Vec::new();
    for (source, input) in [
        ("memory", Lines::Memory(Arc::clone(&lines))),
        ("file", Lines::File(file.clone())),
    ] {
        let mut first: Option<f64> = None;
        for &workers in &plan.workers {
            if progress {
                eprintln!("throughput: {source}, {workers} worker(s) ...");
            }
            let result = run_throughput(&input, workers, disorder_ms)?;
            let rate = result.events_per_second();
            let base = *first.get_or_insert(rate);
            rows.push(ThroughputRow {
                source: source.to_string(),
                workers,
                lines: result.lines,
                seconds: result.elapsed.as_secs_f64(),
                events_per_second: rate,
                scaling: rate / base,
                windows: result.windows,
                alerts: result.alerts,
            });
        }
    }
    if let Some(dir) = &command.out {
        write_json(&dir.join("throughput.json"), &rows)?;
    }
    let mut text = format!(
        "LOGI-1 throughput (parse + dataflow + encoding the rows; file: {})\n{:>8} {:>8} {:>10} {:>9} {:>13} {:>8}\n",
        file.display(),
        "source",
        "workers",
        "events",
        "seconds",
        "events/s",
        "scaling"
    );
    for row in &rows {
        text.push_str(&format!(
            "{:>8} {:>8} {:>10} {:>9.3} {:>13.0} {:>7.2}x\n",
            row.source, row.workers, row.lines, row.seconds, row.events_per_second, row.scaling
        ));
    }
    Ok(text.trim_end().to_string())
}

/// A duration such as `30s`, `500ms`, `2m`, `1.5s` or `90` (seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds_per_unit = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3_600.0,
        _ => f64::NAN,
    };
    match number.parse::<f64>() {
        Ok(value) if value >= 0.0 && seconds_per_unit.is_finite() => {
            Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|e| e.to_string())
        }
        _ => Err(format!(
            "`{text}` is not a duration (such as 30s, 500ms, 2m or 90)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1_500)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "s", "3 days", "-1s", "1..2s", "5x"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sweep_table_marks_each_rate_and_names_the_highest() {
        let mut fast = BenchReport::example();
        fast.rate_offered = 50_000.0;
        fast.events_sent = fast.events_due;
        fast.processing.p99_us = 800;
        fast.processing.count = 10;
        let mut slow = fast.clone();
        slow.rate_offered = 400_000.0;
        slow.processing.p99_us = 40_000;
        let sweep = SweepReport {
            workers: 2,
            slo_p99_us: 10_000,
            highest_rate_within_slo: Some(50_000.0),
            points: vec![fast, slow],
        };
        let table = sweep_table(&sweep, Duration::from_millis(10));
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[1].ends_with("yes"), "{table}");
        assert!(lines[2].ends_with("no"), "{table}");
        assert!(lines[3].contains("50000 events/s"), "{table}");
    }
}
