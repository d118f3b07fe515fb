//! `tidewatch forecast`: reads a `timestamp,value` CSV, runs an online forecaster over it and
//! reports the one-step-ahead accuracy over the last part (see
//! [`tidewatch_operators::forecast::evaluate`]). The forecasters are the very ones LOGI-2 runs
//! inside the dataflow.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{bail, Context};
use tidewatch_operators::forecast::evaluate::{evaluate, Evaluation};
use tidewatch_operators::forecast::model::ModelKind;

/// A series read from CSV.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// Timestamps as written in the file.
    pub timestamps: Vec<String>,
    /// Timestamps in ms since the epoch, where they parse.
    pub times_ms: Vec<Option<i64>>,
    /// The values.
    pub values: Vec<f64>,
    /// Lines skipped, with their 1-based line number and the reason.
    pub skipped: Vec<(usize, String)>,
}

/// Reads `timestamp,value` lines. A first line whose value is not a number is a header. Lines
/// whose value is missing, not a number or not finite are skipped and listed in
/// [`Series::skipped`]; they never reach a model.
pub fn read_series(reader: impl BufRead) -> std::io::Result<Series> {
    let mut series = Series::default();
    for (index, line) in reader.lines().enumerate() {
        let line = line?;
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((timestamp, rest)) = line.split_once(',') else {
            series.skipped.push((number, "no comma".into()));
            continue;
        };
        let value_field = rest.split(',').next().unwrap_or("").trim();
        match value_field.parse::<f64>() {
            Ok(value) if value.is_finite() => {
                let timestamp = timestamp.trim().trim_matches('"').to_string();
                series.times_ms.push(parse_timestamp_ms(&timestamp));
                series.timestamps.push(timestamp);
                series.values.push(value);
            }
            Ok(_) => series.skipped.push((number, "value is not finite".into())),
            Err(_) if number == 1 => {} // the header
            Err(_) => series
                .skipped
                .push((number, format!("value `{value_field}` is not a number"))),
        }
    }
    Ok(series)
}

/// Parses `YYYY-MM-DD HH:MM:SS` (or with `T`, optional fraction and `Z`) as UTC, or an integer
/// epoch (milliseconds when above 10^11, else seconds), into milliseconds since the epoch.
///
/// ```
/// use tidewatch::forecast_cmd::parse_timestamp_ms;
/// assert_eq!(parse_timestamp_ms("2014-07-01 00:30:00"), Some(1_404_174_600_000));
/// assert_eq!(parse_timestamp_ms("2014-07-01T00:30:00Z"), Some(1_404_174_600_000));
/// assert_eq!(parse_timestamp_ms("1404174600"), Some(1_404_174_600_000));
/// assert_eq!(parse_timestamp_ms("yesterday"), None);
/// ```
pub fn parse_timestamp_ms(text: &str) -> Option<i64> {
    if let Ok(number) = text.parse::<i64>() {
        return Some(if number.abs() > 100_000_000_000 {
            number
        } else {
            number * 1000
        });
    }
    let text = text.trim_end_matches('Z');
    let (date, time) = text.split_once([' ', 'T'])?;
    let mut date_parts = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (
        date_parts.next()??,
        date_parts.next()??,
        date_parts.next()??,
    );
    let time = time.split('.').next()?;
    let mut time_parts = time.split(':').map(|p| p.parse::<i64>().ok());
    let hour = time_parts.next()??;
    let minute = time_parts.next().flatten().unwrap_or(0);
    let second = time_parts.next().flatten().unwrap_or(0);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm), proleptic Gregorian.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000)
}

/// The season implied by the series' step: the number of steps in a day, when the median step
/// divides a day into 2 to 2,000 steps (30 min gives 48, 1 h gives 24); else 1 (no season).
pub fn infer_season(times_ms: &[Option<i64>]) -> usize {
    let mut steps: Vec<i64> = times_ms
        .windows(2)
        .filter_map(|pair| Some(pair[1]? - pair[0]?))
        .filter(|step| *step > 0)
        .collect();
    if steps.is_empty() {
        return 1;
    }
    steps.sort_unstable();
    let step = steps[steps.len() / 2];
    let day = 86_400_000;
    if day % step == 0 && (2..=2_000).contains(&(day / step)) {
        (day / step) as usize
    } else {
        1
    }
}

/// What `tidewatch forecast` was asked to do.
#[derive(Clone, Debug)]
pub struct ForecastRequest<'a> {
    /// The CSV file.
    pub input: &'a Path,
    /// The model; `None` compares every model.
    pub model: Option<ModelKind>,
    /// The season; `None` infers it from the timestamps.
    pub season: Option<usize>,
    /// The share of the series scored at the end.
    pub test_fraction: f64,
    /// Where to write the per-step forecasts as CSV.
    pub out: Option<&'a Path>,
}

/// Runs the command: prints a header and one line per model on `stdout`, notes on `stderr`.
/// Returns the evaluations (one per model).
pub fn run(
    request: &ForecastRequest<'_>,
    stdout: &mut impl Write,
    stderr: &mut impl Write,
) -> anyhow::Result<Vec<Evaluation>> {
    let file = std::fs::File::open(request.input)
        .with_context(|| format!("cannot open --input {}", request.input.display()))?;
    let series = read_series(std::io::BufReader::new(file))
        .with_context(|| format!("cannot read --input {}", request.input.display()))?;
    if !series.skipped.is_empty() {
        let first: Vec<String> = series
            .skipped
            .iter()
            .take(5)
            .map(|(line, reason)| format!("line {line}: {reason}"))
            .collect();
        writeln!(
            stderr,
            "tidewatch forecast: skipped {} bad line(s) ({}{})",
            series.skipped.len(),
            first.join("; "),
            if series.skipped.len() > 5 {
                "; ..."
            } else {
                ""
            }
        )?;
    }
    if series.values.is_empty() {
        bail!(
            "--input {} holds no `timestamp,value` rows",
            request.input.display()
        );
    }
    let (season, how) = match request.season {
        Some(season) => (season, "given"),
        None => (infer_season(&series.times_ms), "inferred from the step"),
    };
    let models: Vec<ModelKind> = match request.model {
        Some(model) => vec![model],
        None => ModelKind::ALL.to_vec(),
    };
    let mut evaluations = Vec::new();
    for model in models {
        let evaluation = evaluate(&series.values, model, season, request.test_fraction)
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        evaluations.push(evaluation);
    }
    let first = &evaluations[0];
    writeln!(
        stdout,
        "{}: {} points, season {season} ({how}); one-step-ahead forecasts scored over the last {} points ({:.0}%), MASE scaled by the seasonal naive MAE of the first {} ({:.4})",
        request.input.display(),
        series.values.len(),
        first.test_points,
        100.0 * request.test_fraction,
        first.train_points,
        first.scale,
    )?;
    writeln!(
        stdout,
        "{:<8} {:>12} {:>12} {:>9} {:>8}  chosen",
        "model", "MAE", "RMSE", "sMAPE%", "MASE"
    )?;
    let show = |value: Option<f64>, digits: usize| {
        value.map_or("n/a".to_string(), |v| format!("{v:.digits$}"))
    };
    for evaluation in &evaluations {
        let model = evaluation.model.unwrap_or(ModelKind::Auto);
        let chosen = if model == ModelKind::Auto {
            chosen_shares(evaluation)
        } else {
            String::new()
        };
        writeln!(
            stdout,
            "{:<8} {:>12} {:>12} {:>9} {:>8}  {chosen}",
            model.as_str(),
            show(evaluation.mae, 4),
            show(evaluation.rmse, 4),
            show(evaluation.smape, 3),
            show(evaluation.mase, 4),
        )?;
        if evaluation.missing > 0 {
            writeln!(
                stderr,
                "tidewatch forecast: {}: no forecast yet at {} of the test points (not scored)",
                model, evaluation.missing
            )?;
        }
    }
    if let Some(out) = request.out {
        write_forecasts(out, &series, &evaluations[0])
            .with_context(|| format!("cannot write --out {}", out.display()))?;
    }
    Ok(evaluations)
}

/// For `auto`: which candidate forecast the test points, as shares.
fn chosen_shares(evaluation: &Evaluation) -> String {
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for (_, name) in &evaluation.forecasts[evaluation.train_points..] {
        match counts.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 += 1,
            None => counts.push((name, 1)),
        }
    }
    counts.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    let total = evaluation.test_points.max(1) as f64;
    counts
        .iter()
        .map(|(name, count)| format!("{name} {:.0}%", 100.0 * *count as f64 / total))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes `timestamp,value,forecast,model,part` per point.
fn write_forecasts(path: &Path, series: &Series, evaluation: &Evaluation) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "timestamp,value,forecast,model,part")?;
    for (index, (timestamp, value)) in series.timestamps.iter().zip(&series.values).enumerate() {
        let (forecast, model) = evaluation.forecasts[index];
        let part = if index < evaluation.train_points {
            "train"
        } else {
            "test"
        };
        match forecast {
            Some(forecast) => writeln!(out, "{timestamp},{value},{forecast},{model},{part}")?,
            None => writeln!(out, "{timestamp},{value},,,{part}")?,
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_are_skipped_with_a_reason() {
        let text = "timestamp,value\n2014-07-01 00:00:00,1\nnonsense\n2014-07-01 01:00:00,abc\n2014-07-01 02:00:00,NaN\n2014-07-01 03:00:00,4\n";
        let series = read_series(text.as_bytes()).unwrap();
        assert_eq!(series.values, vec![1.0, 4.0]);
        let lines: Vec<usize> = series.skipped.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, vec![3, 4, 5]);
    }

    #[test]
    fn season_is_a_day_of_steps() {
        let text: String = (0..10)
            .map(|i| format!("{},{}\n", 1_404_172_800 + i * 1800, i))
            .collect();
        let series = read_series(text.as_bytes()).unwrap();
        assert_eq!(infer_season(&series.times_ms), 48);
    }
}
