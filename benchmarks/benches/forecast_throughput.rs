//! Forecast updates per second per core, for every model LOGI-2 and `tidewatch forecast` run.
//!
//! What is measured: one thread feeds a series to a forecaster, reading the one-step forecast
//! before each update (what the dataflow and the backtest do per point), and times the whole
//! series. The series is the NYC taxi demand (`benchmarks/data/nyc_taxi.csv`, 10,320 half-hours,
//! season 48) played `TIDEWATCH_BENCH_ROUNDS` times (default 20) back to back, so that
//! Holt-Winters' periodic re-fits are included at their real cadence. Two layouts:
//! * one key: one model state, the whole series through it;
//! * 100 keys: 100 independent states that each see the whole series once, interleaved point
//!   by point (key 0 gets point 0, key 1 point 0, ..., key 0 point 1, ...), as the per-key
//!   operator does with many warehouses or sensors; this adds cache misses.
//!
//! Models: `hw` as the CLI and LOGI-2 build it for season 48 (daily-only and double-seasonal
//! Holt-Winters side by side, forecasting with the better), each of the two alone, AR(2),
//! AR(8), `sarima` (2,0,1)(0,1,1,48), ARIMA(1,1,1), EWMA, SMA and WMA over 3, and `auto` (hw,
//! sarima, ar, ewma and ma at once).
//!
//! Run: `cargo bench -p tidewatch-benchmarks --bench forecast_throughput`
//! (environment: `TIDEWATCH_BENCH_ROUNDS`). Deterministic: no randomness.

use std::hint::black_box;
use std::time::Instant;

use tidewatch_benchmarks::env::count_or;
use tidewatch_benchmarks::report::Machine;
use tidewatch_operators::forecast::arima::{Arima, ArimaConfig};
use tidewatch_operators::forecast::holt_winters::{HoltWinters, HoltWintersConfig};
use tidewatch_operators::forecast::model::ModelKind;
use tidewatch_operators::forecast::Forecaster;

const SEASON: usize = 48;
const KEYS: usize = 100;

fn main() -> Result<(), String> {
    let rounds = count_or("TIDEWATCH_BENCH_ROUNDS", 20)?;
    let base: Vec<f64> = tidewatch_benchmarks::data::values("nyc_taxi.csv")?;
    let series: Vec<f64> = (0..rounds).flat_map(|_| base.iter().copied()).collect();
    println!("{}", Machine::this().describe());
    println!(
        "series: nyc_taxi x {rounds} = {} points; one thread",
        series.len()
    );
    println!(
        "{:<26} {:>14} {:>14}",
        "model", "1 key (M/s)", "100 keys (M/s)"
    );

    type Make = Box<dyn Fn() -> Box<dyn Forecaster>>;
    let models: Vec<(&str, Make)> = vec![
        (
            "hw (m=48: both below)",
            Box::new(|| ModelKind::HoltWinters.build(SEASON)),
        ),
        (
            "holt-winters daily only",
            Box::new(|| Box::new(HoltWinters::new(HoltWintersConfig::new(SEASON)))),
        ),
        (
            "holt-winters double",
            Box::new(|| {
                Box::new(HoltWinters::new(HoltWintersConfig::double(
                    SEASON,
                    7 * SEASON,
                )))
            }),
        ),
        (
            "ar(2)",
            Box::new(|| Box::new(Arima::new(ArimaConfig::ar(2)))),
        ),
        (
            "ar(8)",
            Box::new(|| Box::new(Arima::new(ArimaConfig::ar(8)))),
        ),
        (
            "sarima(2,0,1)(0,1,1)",
            Box::new(|| ModelKind::Sarima.build(SEASON)),
        ),
        ("arima(1,1,1)", Box::new(|| ModelKind::Arima.build(SEASON))),
        ("ewma", Box::new(|| ModelKind::Ewma.build(SEASON))),
        (
            "sma (3)",
            Box::new(|| ModelKind::MovingAverage.build(SEASON)),
        ),
        (
            "wma (3)",
            Box::new(|| ModelKind::WeightedMovingAverage.build(SEASON)),
        ),
        (
            "auto (5 candidates)",
            Box::new(|| ModelKind::Auto.build(SEASON)),
        ),
    ];
    for (name, make) in &models {
        let one = updates_per_second(&series, 1, make);
        let many = updates_per_second(&base, KEYS, make);
        println!("{name:<26} {:>14.2} {:>14.2}", one / 1e6, many / 1e6);
    }
    Ok(())
}

/// Feeds the whole `series` to each of `keys` fresh models, interleaved point by point;
/// returns updates per second.
fn updates_per_second(series: &[f64], keys: usize, make: &dyn Fn() -> Box<dyn Forecaster>) -> f64 {
    let mut states: Vec<Box<dyn Forecaster>> = (0..keys).map(|_| make()).collect();
    let started = Instant::now();
    let mut checksum = 0.0;
    for value in series {
        for state in &mut states {
            checksum += state.forecast().unwrap_or(0.0);
            state.update(*value);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    black_box(checksum);
    (series.len() * keys) as f64 / elapsed
}
