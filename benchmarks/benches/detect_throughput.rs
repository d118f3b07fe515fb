//! Detector points per second per core: one thread scores every value of a series, over the
//! NAB machine-temperature series (`benchmarks/data/machine_temperature_system_failure.csv`,
//! 22,695 five-minute values, season 288) played `TIDEWATCH_BENCH_ROUNDS` times (default 10).
//!
//! Detectors: the rolling z-score (window 6,400), the robust z-score (median/MAD, window
//! 6,400), the EWMA chart, the forecast residual (the `auto` forecaster) and `best` as
//! `tidewatch detect` builds it (residual and rolling z-score, with a rest period).
//!
//! Run: `cargo bench -p tidewatch-benchmarks --bench detect_throughput`. Deterministic.

use std::hint::black_box;
use std::time::Instant;

use tidewatch_benchmarks::env::count_or;
use tidewatch_benchmarks::report::Machine;
use tidewatch_operators::detect::combine::MaxOf;
use tidewatch_operators::detect::ewma_chart::EwmaChart;
use tidewatch_operators::detect::residual::ForecastResidual;
use tidewatch_operators::detect::rest::RestPeriod;
use tidewatch_operators::detect::robust::RobustZScore;
use tidewatch_operators::detect::windowed_gaussian::{WindowedGaussian, NAB_WINDOW};
use tidewatch_operators::detect::Detector;
use tidewatch_operators::forecast::model::ModelKind;

const SEASON: usize = 288;

fn main() -> Result<(), String> {
    let rounds = count_or("TIDEWATCH_BENCH_ROUNDS", 10)?;
    let base: Vec<f64> =
        tidewatch_benchmarks::data::values("machine_temperature_system_failure.csv")?;
    let series: Vec<f64> = (0..rounds).flat_map(|_| base.iter().copied()).collect();
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
    Ok(())
}
