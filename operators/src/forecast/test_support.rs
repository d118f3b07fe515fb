//! Test support shared by the forecasters' tests: Gaussian noise, the NAB series in
//! `benchmarks/data` and the accuracy protocol of its README.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::evaluate::evaluate_forecaster;
use super::Forecaster;

/// Standard normal by Box-Muller (rand_distr is not a dependency).
pub(crate) fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Three correlated features in different units (delivery minutes, °C, orders), for the
/// multi-feature detectors: a common latent level plus independent noise, correlations ±0.89
/// (the third moves against the others); means 30, 4 and 200, standard deviations 6, 0.8
/// and 40.
pub(crate) fn correlated_features(rng: &mut ChaCha8Rng) -> [f64; 3] {
    let level = gaussian(rng);
    let unit = |n: f64| (level + 0.35 * n) / (1.0f64 + 0.35 * 0.35).sqrt();
    [
        30.0 + 6.0 * unit(gaussian(rng)),
        4.0 + 0.8 * unit(gaussian(rng)),
        200.0 - 40.0 * unit(gaussian(rng)),
    ]
}

/// A NAB series: its values, in file order.
pub(crate) fn nab_series(file: &str) -> Vec<f64> {
    let path = format!("{}/../benchmarks/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let mut values = Vec::new();
    for (number, line) in text.lines().enumerate().skip(1) {
        let value = line
            .split(',')
            .nth(1)
            .and_then(|v| v.trim().parse::<f64>().ok());
        match value {
            Some(v) => values.push(v),
            None => panic!("{path}:{}: no numeric value in {line:?}", number + 1),
        }
    }
    values
}

/// Runs `model` over the whole series and returns (MASE, sMAPE %) over the last 20%, by the
/// protocol of `benchmarks/data/README.md` ([`evaluate_forecaster`]); panics if a test step
/// has no forecast.
pub(crate) fn mase_smape(model: &mut dyn Forecaster, y: &[f64], m: usize) -> (f64, f64) {
    let name = model.name();
    let evaluation =
        evaluate_forecaster(model, y, m, 0.2).unwrap_or_else(|error| panic!("{name}: {error}"));
    assert_eq!(
        evaluation.missing, 0,
        "{name}: no forecast at some test steps"
    );
    match (evaluation.mase, evaluation.smape) {
        (Some(mase), Some(smape)) => (mase, smape),
        _ => panic!("{name}: no MASE (a constant training part?)"),
    }
}

/// NAB `nyc_taxi` and its season (a day of half hours).
pub(crate) const NYC: (&str, usize) = ("nyc_taxi.csv", 48);
/// NAB ambient temperature and its season (a day of hours).
pub(crate) const AMBIENT: (&str, usize) = ("ambient_temperature_system_failure.csv", 24);
