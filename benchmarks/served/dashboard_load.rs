//! The dashboard and `/metrics` under load: how fast the HTTP side answers while the dataflow
//! takes 100,000 events/s, and how big its answers get.
//!
//! A bench of the root `tidewatch` package (it drives the runner and the server in process):
//!
//! ```sh
//! cargo bench --bench dashboard_load                 # 100,000 events/s, 5 s warm-up, 20 s measured
//! TIDEWATCH_BENCH_RATE=200000 cargo bench --bench dashboard_load
//! ```
//!
//! What runs: the built-in generator (seed 42, 8 warehouses, the default incidents) paced at the
//! rate, LOGI-1 + LOGI-2 + the default alert rules on 2 workers, no output files, the dashboard
//! and `/metrics` on 127.0.0.1 (ephemeral ports). After the warm-up, for 20 s:
//! - one client asks `/api/summary`, `/api/alerts`, `/api/windows?warehouse=wh-01` and
//!   `/metrics` in turn, each on a new connection, as fast as answers come; every answer's time
//!   (connect to last byte) goes into an HDR histogram per endpoint;
//! - one client holds `/api/events` open and records the gap between ticks and their sizes.
//!
//! It prints the events/s the run achieved, per endpoint p50/p99/p99.9/max and the largest
//! answer, and the tick gaps and sizes. The clients share the machine's cores with the workers,
//! as a browser on the same host would.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tidewatch::feed::{GeneratorSpec, Pacing};
use tidewatch::runner::{self, InputSpec, RunOptions};
use tidewatch::serve;
use tidewatch::telemetry::Telemetry;
use tidewatch_connectors::generator::GeneratorConfig;
use tidewatch_dataflows::anomaly::AnomalyConfig;
use tidewatch_dataflows::logi1::{Logi1Config, LIVE_TIME_GRID_MS};
use tidewatch_dataflows::logi2::Logi2Config;

const WORKERS: usize = 2;
const WARMUP: Duration = Duration::from_secs(5);
const MEASURED: Duration = Duration::from_secs(20);
const ENDPOINTS: [&str; 4] = [
    "/api/summary",
    "/api/alerts",
    "/api/windows?warehouse=wh-01",
    "/metrics",
];

fn main() {
    let rate: f64 = std::env::var("TIDEWATCH_BENCH_RATE")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(100_000.0);
    let telemetry = Arc::new(Telemetry::new(WORKERS));
    let localhost: SocketAddr = "127.0.0.1:0".parse().expect("an address");
    let dashboard = serve::bind(localhost, "--dashboard", false).expect("bind the dashboard");
    let metrics = serve::bind(localhost, "--metrics-addr", false).expect("bind /metrics");
    let (dashboard_addr, metrics_addr) = (dashboard.addr, metrics.addr);
    let server = serve::start(Arc::clone(&telemetry), Some(metrics), Some(dashboard))
        .expect("start the server");

    let stop = Arc::new(AtomicBool::new(false));
    let mut options = RunOptions::file(
        tidewatch_connectors::jsonl_source::LineSource::Stdin,
        std::path::Path::new("."),
        5_000,
    );
    options.input = InputSpec::Generator(GeneratorSpec {
        config: GeneratorConfig {
            seed: 42,
            warehouses: 8,
            ..GeneratorConfig::default()
        }
        .with_default_incidents(),
        pacing: Pacing::Rate(rate),
        stop_at_ms: None,
    });
    options.out_dir = None;
    options.stop = Arc::clone(&stop);
    options.logi1 = Logi1Config {
        time_grid_ms: LIVE_TIME_GRID_MS,
        ..Logi1Config::default()
    };
    options.logi2 = Some(Logi2Config::default());
    options.anomaly = Some(AnomalyConfig::default());
    options.telemetry = Some(Arc::clone(&telemetry));
    let run = std::thread::spawn(move || {
        runner::run(options, timely::Config::process(WORKERS)).expect("the run")
    });

    println!("dashboard_load: generator at {rate:.0} events/s, {WORKERS} workers, LOGI-1 + LOGI-2 + alert rules");
    std::thread::sleep(WARMUP);
    let events_before = telemetry.summary().events_in;
    let measuring = Instant::now();
    let ticks = std::thread::spawn(move || watch_ticks(dashboard_addr, MEASURED));

    let mut times: Vec<Histogram<u64>> = ENDPOINTS
        .iter()
        .map(|_| Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram"))
        .collect();
    let mut largest = [0usize; ENDPOINTS.len()];
    while measuring.elapsed() < MEASURED {
        for (index, path) in ENDPOINTS.iter().enumerate() {
            let addr = if *path == "/metrics" {
                metrics_addr
            } else {
                dashboard_addr
            };
            let asked = Instant::now();
            let bytes = get(addr, path);
            let micros = asked.elapsed().as_micros().max(1) as u64;
            times[index].saturating_record(micros);
            largest[index] = largest[index].max(bytes);
        }
    }
    let measured = measuring.elapsed();
    let events = telemetry.summary().events_in - events_before;
    let (gaps, sizes) = ticks.join().expect("the tick client");
    stop.store(true, Ordering::Relaxed);
    let summary = run.join().expect("the run thread");
    drop(server);

    println!(
        "achieved {:.0} events/s over {:.1} s ({} events in, {} windows, {} dead letters)",
        events as f64 / measured.as_secs_f64(),
        measured.as_secs_f64(),
        summary.events_in,
        summary.windows,
        summary.dead_letters
    );
    println!(
        "{:<32} {:>8} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "endpoint", "answers", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "largest B"
    );
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    for (index, path) in ENDPOINTS.iter().enumerate() {
        let h = &times[index];
        println!(
            "{:<32} {:>8} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>12}",
            path,
            h.len(),
            ms(h, 0.5),
            ms(h, 0.99),
            ms(h, 0.999),
            h.max() as f64 / 1000.0,
            largest[index]
        );
    }
    println!(
        "/api/events: {} ticks, gap p50 {:.0} ms, max {:.0} ms; size mean {:.0} B, max {} B",
        gaps.len(),
        ms(&gaps, 0.5),
        gaps.max() as f64 / 1000.0,
        sizes.mean(),
        sizes.max()
    );
}

/// GETs `path` on a new connection; returns the bytes received.
fn get(addr: SocketAddr, path: &str) -> usize {
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut body = Vec::new();
    stream.read_to_end(&mut body).expect("read");
    assert!(body.starts_with(b"HTTP/1.1 200"), "{path}: not 200");
    body.len()
}

/// Reads `/api/events` for `length`; returns the gaps between ticks (µs) and their sizes.
fn watch_ticks(addr: SocketAddr, length: Duration) -> (Histogram<u64>, Histogram<u64>) {
    let mut gaps = Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    let mut sizes = Histogram::new_with_bounds(1, 1 << 30, 3).expect("histogram");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        stream,
        "GET /api/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .expect("send");
    let mut reader = BufReader::new(stream);
    let started = Instant::now();
    let mut last: Option<Instant> = None;
    let mut line = String::new();
    while started.elapsed() < length {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(data) = line.strip_prefix("data: ") {
            let now = Instant::now();
            if let Some(last) = last {
                gaps.saturating_record(now.duration_since(last).as_micros().max(1) as u64);
            }
            last = Some(now);
            sizes.saturating_record(data.len() as u64);
        }
    }
    (gaps, sizes)
}
