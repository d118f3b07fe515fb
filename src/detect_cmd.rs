//! `tidewatch detect`: scores every value of a `timestamp,value` CSV with an online anomaly
//! detector and writes `timestamp,value,anomaly_score`, the layout NAB's scorer reads.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use tidewatch_operators::detect::combine::MaxOf;
use tidewatch_operators::detect::ewma_chart::EwmaChart;
use tidewatch_operators::detect::residual::ForecastResidual;
use tidewatch_operators::detect::rest::RestPeriod;
use tidewatch_operators::detect::robust::RobustZScore;
use tidewatch_operators::detect::windowed_gaussian::WindowedGaussian;
use tidewatch_operators::detect::Detector;
use tidewatch_operators::forecast::model::ModelKind;

use crate::forecast_cmd::{infer_season, read_series};

/// Score at or above which `best` counts a detection and rests.
pub const BEST_FIRE: f64 = 0.9999;

/// `best`'s rest period, as a share of the series' length.
pub const BEST_REST_FRACTION: f64 = 0.02;

/// The detectors `--detector` accepts.
pub const DETECTORS: [&str; 5] = [
    "windowed_gaussian",
    "robust",
    "ewma_chart",
    "residual",
    "best",
];

/// Smoothing of the `ewma_chart` detector.
pub const EWMA_CHART_LAMBDA: f64 = 0.01;

/// What `tidewatch detect` was asked to do.
#[derive(Clone, Debug)]
pub struct DetectRequest<'a> {
    /// The CSV file.
    pub input: &'a Path,
    /// One of [`DETECTORS`].
    pub detector: &'a str,
    /// The rolling window.
    pub window: usize,
    /// The season of the residual detector's forecaster; `None` infers it from the step.
    pub season: Option<usize>,
    /// Where to write the scores; `None` writes them to standard output.
    pub out: Option<&'a Path>,
}

/// Builds the detector for a series of `points` values with season `season`.
fn build(
    request: &DetectRequest<'_>,
    points: usize,
    season: usize,
) -> anyhow::Result<Box<dyn Detector>> {
    let residual = || ForecastResidual::new(ModelKind::Auto.build(season), request.window);
    Ok(match request.detector {
        "windowed_gaussian" => Box::new(WindowedGaussian::new(request.window)),
        "robust" => Box::new(RobustZScore::new(request.window)),
        "ewma_chart" => Box::new(EwmaChart::new(EWMA_CHART_LAMBDA)),
        "residual" => Box::new(residual()),
        // The recommendation for now: the larger of the residual and the value z-scores, with
        // a rest period after each detection (operators/src/detect/rest.rs).
        "best" => Box::new(RestPeriod::new(
            MaxOf::new(vec![
                Box::new(residual()),
                Box::new(WindowedGaussian::new(request.window)),
            ]),
            BEST_FIRE,
            (BEST_REST_FRACTION * points as f64) as usize,
        )),
        other => bail!(
            "unknown detector `{other}` (expected one of {})",
            DETECTORS.join(", ")
        ),
    })
}

/// Runs the command; returns how many values were scored.
pub fn run(request: &DetectRequest<'_>, stderr: &mut impl Write) -> anyhow::Result<usize> {
    let file = std::fs::File::open(request.input)
        .with_context(|| format!("cannot open --input {}", request.input.display()))?;
    let series = read_series(std::io::BufReader::new(file))
        .with_context(|| format!("cannot read --input {}", request.input.display()))?;
    if !series.skipped.is_empty() {
        writeln!(
            stderr,
            "tidewatch detect: skipped {} bad line(s) (first: line {}: {})",
            series.skipped.len(),
            series.skipped[0].0,
            series.skipped[0].1
        )?;
    }
    let season = request.season.unwrap_or_else(|| infer_season(&series));
    let mut detector = build(request, series.values.len(), season)?;
    let mut text = String::with_capacity(series.values.len() * 40);
    text.push_str("timestamp,value,anomaly_score\n");
    for (timestamp, value) in series.timestamps.iter().zip(&series.values) {
        let score = detector.score(*value);
        text.push_str(&format!("{timestamp},{value},{score}\n"));
    }
    match request.out {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write --out {}", path.display()))?,
        None => match std::io::stdout().lock().write_all(text.as_bytes()) {
            // A reader that stops early (`| head`) is not an error.
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
            result => result.context("cannot write the scores to standard output")?,
        },
    }
    Ok(series.values.len())
}
