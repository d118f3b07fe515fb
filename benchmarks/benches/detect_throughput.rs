//! Detector points per second per core: one thread scores every value of a series, over the
//! NAB machine-temperature series (`benchmarks/data/machine_temperature_system_failure.csv`,
//! 22,695 five-minute values, season 288) played `TIDEWATCH_BENCH_ROUNDS` times (default 10).
//!
//! Detectors: the rolling z-score (window 6,400), the robust z-score (median/MAD, window
//! 6,400), the EWMA chart, the forecast residual (the `auto` forecaster) and `best` as
//! `tidewatch detect` builds it (residual and rolling z-score, with a rest period).
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
use tidewatch_operators::detect::combine::MaxOf;
use tidewatch_operators::detect::dbscan::{DbscanConfig, WindowDbscan};
use tidewatch_operators::detect::ewma_chart::EwmaChart;
use tidewatch_operators::detect::residual::ForecastResidual;
use tidewatch_operators::detect::rest::RestPeriod;
use tidewatch_operators::detect::robust::RobustZScore;
use tidewatch_operators::detect::windowed_gaussian::{WindowedGaussian, NAB_WINDOW};
use tidewatch_operators::detect::{Detector, MultiDetector};
use tidewatch_operators::forecast::model::ModelKind;

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
    type Make = Box<dyn Fn() -> Box<dyn Detector>>;
    let residual = || ForecastResidual::new(ModelKind::Auto.build(SEASON), NAB_WINDOW);
    let detectors: Vec<(&str, Make)> = vec![
        (
            "windowed_gaussian (6,400)",
            Box::new(|| Box::new(WindowedGaussian::new(NAB_WINDOW))),
        ),
        (
            "robust (median/MAD, 6,400)",
            Box::new(|| Box::new(RobustZScore::new(NAB_WINDOW))),
        ),
        ("ewma_chart", Box::new(|| Box::new(EwmaChart::new(0.01)))),
        (
            "residual (auto forecaster)",
            Box::new(move || Box::new(residual())),
        ),
        (
            "best (residual + z, rest)",
            Box::new(move || {
                Box::new(RestPeriod::new(
                    MaxOf::new(vec![
                        Box::new(residual()),
                        Box::new(WindowedGaussian::new(NAB_WINDOW)),
                    ]),
                    0.9999,
                    base.len() / 50,
                ))
            }),
        ),
    ];
    for (name, make) in &detectors {
        let mut detector = make();
        let started = Instant::now();
        let mut checksum = 0.0;
        for value in &series {
            checksum += detector.score(*value);
        }
        let rate = series.len() as f64 / started.elapsed().as_secs_f64();
        black_box(checksum);
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
