//! Detector points per second per core: one thread scores every value of a series, over the
//! NAB machine-temperature series (`benchmarks/data/machine_temperature_system_failure.csv`,
//! 22,695 five-minute values, season 288) played `TIDEWATCH_BENCH_ROUNDS` times (default 10).
//!
//! Detectors: every detector by name, as `tidewatch detect` builds it (operators'
//! `detect::registry`): the rolling z-score, the robust z-score (median/MAD), the EWMA chart,
//! the forecast residual (the `auto` forecaster), the learned weighting, `contextual`, value
//! novelty, DBSCAN and the autoencoder on (value, change), and `best` (value novelty with a
//! rest period of 2% of the series).
//!
//! Multi-feature detectors (a second table), on 3-feature points built from the same series:
//! the value, its first difference, and the value an hour (12 steps) earlier, from the 13th
//! value on (22,683 points a round): the level, its motion, and where it came from, the kind of
//! correlated features a warehouse's minute would bring. DBSCAN over a sliding window of 1,000
//! points (`eps` 0.5, `min_points` 6) and the online autoencoder (3 → 8 → 1 → 8 → 3), both
//! with their default configurations.
//!
//! Run: `cargo bench -p tidewatch-benchmarks --bench detect_throughput`. Deterministic.

use std::hint::black_box;
use std::time::Instant;

use tidewatch_benchmarks::env::count_or;
use tidewatch_benchmarks::report::Machine;
use tidewatch_operators::detect::autoencoder::{Autoencoder, AutoencoderConfig};
use tidewatch_operators::detect::dbscan::{DbscanConfig, WindowDbscan};
use tidewatch_operators::detect::registry::{DetectorKind, DetectorSpec};
use tidewatch_operators::detect::MultiDetector;

const SEASON: usize = 288;

fn main() -> Result<(), String> {
    let rounds = count_or("TIDEWATCH_BENCH_ROUNDS", 10)?;
    let base: Vec<f64> =
        tidewatch_benchmarks::data::values("machine_temperature_system_failure.csv")?;
    let series: Vec<f64> = (0..rounds).flat_map(|_| base.iter().copied()).collect();
    // Multi-feature points: value, first difference, value an hour earlier.
    const LAG: usize = 12;
    let points: Vec<[f64; 3]> = (0..rounds)
        .flat_map(|_| (LAG..base.len()).map(|t| [base[t], base[t] - base[t - 1], base[t - LAG]]))
        .collect();
    println!("{}", Machine::this().describe());
    println!(
        "series: machine_temperature x {rounds} = {} points; one thread",
        series.len()
    );
    println!("{:<34} {:>12}", "detector", "M points/s");
    for kind in DetectorKind::ALL {
        // As `tidewatch detect` builds it: the kind's window, season 288, `best` resting 2%.
        let spec = DetectorSpec {
            season: SEASON,
            rest: base.len() / 50,
            ..DetectorSpec::new(kind)
        };
        let mut detector = spec.build_one();
        let started = Instant::now();
        let mut checksum = 0.0;
        for value in &series {
            checksum += detector.score(*value);
        }
        let rate = series.len() as f64 / started.elapsed().as_secs_f64();
        black_box(checksum);
        let name = format!("{kind} (window {})", spec.window);
        println!("{name:<34} {:>12.2}", rate / 1e6);
    }
    println!();
    println!(
        "multi-feature: (value, difference, value {LAG} steps earlier) x {rounds} = {} points",
        points.len()
    );
    println!("{:<34} {:>12}", "detector", "M points/s");
    type MakeMulti = Box<dyn Fn() -> Box<dyn MultiDetector>>;
    let multi: Vec<(&str, MakeMulti)> = vec![
        (
            "dbscan (window 1,000, 3 features)",
            Box::new(|| Box::new(WindowDbscan::new(3, DbscanConfig::default()))),
        ),
        (
            "autoencoder (3-8-1-8-3)",
            Box::new(|| Box::new(Autoencoder::new(3, AutoencoderConfig::default()))),
        ),
    ];
    for (name, make) in &multi {
        let mut detector = make();
        let started = Instant::now();
        let mut checksum = 0.0;
        for point in &points {
            checksum += detector.score(point);
        }
        let rate = points.len() as f64 / started.elapsed().as_secs_f64();
        black_box(checksum);
        println!("{name:<34} {:>12.2}", rate / 1e6);
    }
    Ok(())
}
