//! `tidewatch detect`: scores every point of a `timestamp,value[,value…]` CSV with an online
//! anomaly detector and writes `timestamp,value,anomaly_score`, the layout NAB's scorer reads
//! (with several value columns, every column is written back before the score). With
//! `--labels`, it also reports which labelled anomaly windows the detector hit and how many
//! false alarms it raised outside them.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{bail, Context};
use tidewatch_operators::detect::registry::{DetectorKind, DetectorSpec};
use tidewatch_operators::forecast::model::ModelKind;

use crate::forecast_cmd::{infer_season, parse_timestamp_ms};
use crate::terminal::{duration, utc};

/// `best`'s rest period, as a share of the series' length, unless `--rest` says otherwise.
pub const BEST_REST_FRACTION: f64 = 0.02;

/// NAB's probationary period, as a share of the series' length (at most
/// [`PROBATION_MAX_POINTS`]): the detectors are still learning, so alarms there are reported
/// apart from the false alarms.
pub const PROBATION_FRACTION: f64 = 0.15;

/// The longest probationary period, in points (NAB: 15% of 5,000).
pub const PROBATION_MAX_POINTS: usize = 750;

/// The probationary period of a series of `points` points, as NAB computes it.
pub fn probation(points: usize) -> usize {
    ((PROBATION_FRACTION * points as f64) as usize).min(PROBATION_MAX_POINTS)
}

/// What `tidewatch detect` was asked to do.
#[derive(Clone, Debug)]
pub struct DetectRequest<'a> {
    /// The CSV file.
    pub input: &'a Path,
    /// The detector.
    pub detector: DetectorKind,
    /// The rolling window.
    pub window: usize,
    /// The season of the residual detector's forecaster; `None` infers it from the step.
    pub season: Option<usize>,
    /// The residual detector's forecaster.
    pub model: ModelKind,
    /// `best`'s rest period in points; `None`: [`BEST_REST_FRACTION`] of the series.
    pub rest: Option<usize>,
    /// Where to write the scores; `None` writes them to standard output.
    pub out: Option<&'a Path>,
    /// NAB-style labelled windows (`{"dir/file.csv": [[start, end], …]}`) to report against.
    pub labels: Option<&'a Path>,
    /// The score at or above which a point is an alarm, for the report.
    pub threshold: f64,
}

/// The points of a CSV: a timestamp and one or more values per row.
#[derive(Clone, Debug, Default)]
pub struct Points {
    /// The names of the value columns, from the header (`value` when there is none).
    pub columns: Vec<String>,
    /// Timestamps as written in the file.
    pub timestamps: Vec<String>,
    /// Timestamps in ms since the epoch, where they parse.
    pub times_ms: Vec<Option<i64>>,
    /// The values, row after row, `columns.len()` per row.
    pub values: Vec<f64>,
    /// Lines skipped, with their 1-based line number and the reason.
    pub skipped: Vec<(usize, String)>,
}

impl Points {
    /// The number of rows.
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// Row `index`.
    pub fn row(&self, index: usize) -> &[f64] {
        let width = self.columns.len();
        &self.values[index * width..(index + 1) * width]
    }
}

/// Reads `timestamp,value[,value…]` lines. A first line whose values are not all numbers is
/// the header and names the columns; without one, the width of the first row decides. Rows of
/// another width, or with a value that is not a finite number, are skipped and listed.
pub fn read_points(reader: impl BufRead) -> std::io::Result<Points> {
    let mut points = Points::default();
    for (index, line) in reader.lines().enumerate() {
        let line = line?;
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split(',').map(|field| field.trim().trim_matches('"'));
        let timestamp = fields.next().unwrap_or_default();
        let fields: Vec<&str> = fields.collect();
        if fields.is_empty() {
            points.skipped.push((number, "no comma".into()));
            continue;
        }
        let parsed: Vec<Result<f64, &str>> = fields
            .iter()
            .map(|field| field.parse::<f64>().map_err(|_| *field))
            .collect();
        if points.columns.is_empty() {
            if parsed.iter().any(Result::is_err) && points.skipped.is_empty() && number == 1 {
                points.columns = fields.iter().map(|name| name.to_string()).collect();
                continue;
            }
            points.columns = match fields.len() {
                1 => vec!["value".to_string()],
                width => (1..=width).map(|i| format!("value{i}")).collect(),
            };
        }
        if fields.len() != points.columns.len() {
            points.skipped.push((
                number,
                format!(
                    "{} value(s), expected {}",
                    fields.len(),
                    points.columns.len()
                ),
            ));
            continue;
        }
        let row: Result<Vec<f64>, String> = parsed
            .into_iter()
            .map(|value| match value {
                Ok(value) if value.is_finite() => Ok(value),
                Ok(_) => Err("value is not finite".to_string()),
                Err(field) => Err(format!("value `{field}` is not a number")),
            })
            .collect();
        match row {
            Ok(row) => {
                points.times_ms.push(parse_timestamp_ms(timestamp));
                points.timestamps.push(timestamp.to_string());
                points.values.extend(row);
            }
            Err(reason) => points.skipped.push((number, reason)),
        }
    }
    Ok(points)
}

/// Labelled windows per file, as NAB writes them (`labels/combined_windows.json`).
pub type Labels = BTreeMap<String, Vec<(String, String)>>;

/// The windows of `labels` for the file named like `input` (matched on the file name, since
/// the keys carry NAB's category folder), in ms since the epoch.
pub fn windows_for(labels: &Labels, input: &Path) -> anyhow::Result<Vec<(i64, i64)>> {
    let name = input
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    let Some((_, windows)) = labels
        .iter()
        .find(|(key, _)| Path::new(key).file_name().and_then(|n| n.to_str()) == Some(name))
    else {
        bail!("--labels has no windows for `{name}`");
    };
    windows
        .iter()
        .map(|(start, end)| {
            match (
                parse_timestamp_ms(start.trim()),
                parse_timestamp_ms(end.trim()),
            ) {
                (Some(start), Some(end)) => Ok((start, end)),
                _ => bail!("--labels: window [{start}, {end}] of `{name}` is not a time range"),
            }
        })
        .collect()
}

/// How a detector's alarms fall against labelled windows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelReport {
    /// Per window: its start and end, and the time of the first alarm inside it.
    pub windows: Vec<(i64, i64, Option<i64>)>,
    /// Alarms (points at or above the threshold after one below it) outside every window,
    /// after the probationary period.
    pub false_alarms: usize,
    /// Alarms outside every window during the probationary period.
    pub probation_alarms: usize,
    /// The probationary period, in points.
    pub probation: usize,
}

impl LabelReport {
    /// Windows with at least one alarm.
    pub fn hits(&self) -> usize {
        self.windows
            .iter()
            .filter(|(_, _, first)| first.is_some())
            .count()
    }
}

/// Matches the alarms of `scores` (at times `times_ms`) against `windows`: a window is hit by
/// any point inside it at or above `threshold`; an alarm is the first point of a run at or
/// above `threshold`, and it is false when it lies in no window (counted apart in the
/// probationary period, [`probation`]). Points without a time are ignored.
pub fn label_report(
    times_ms: &[Option<i64>],
    scores: &[f64],
    windows: &[(i64, i64)],
    threshold: f64,
) -> LabelReport {
    let probation = probation(scores.len());
    let mut report = LabelReport {
        windows: windows.iter().map(|&(s, e)| (s, e, None)).collect(),
        probation,
        ..LabelReport::default()
    };
    let mut previous_alarmed = false;
    for (index, (time, score)) in times_ms.iter().zip(scores).enumerate() {
        let alarmed = *score >= threshold;
        let onset = alarmed && !previous_alarmed;
        previous_alarmed = alarmed;
        let Some(time) = *time else { continue };
        if !alarmed {
            continue;
        }
        let mut inside = false;
        for (start, end, first) in &mut report.windows {
            if (*start..=*end).contains(&time) {
                inside = true;
                first.get_or_insert(time);
            }
        }
        if onset && !inside {
            if index < probation {
                report.probation_alarms += 1;
            } else {
                report.false_alarms += 1;
            }
        }
    }
    report
}

/// Runs the command; returns how many points were scored. The label report goes to `stdout`
/// when the scores go to a file, else to `stderr`.
pub fn run(
    request: &DetectRequest<'_>,
    stdout: &mut impl Write,
    stderr: &mut impl Write,
) -> anyhow::Result<usize> {
    let file = std::fs::File::open(request.input)
        .with_context(|| format!("cannot open --input {}", request.input.display()))?;
    let points = read_points(std::io::BufReader::new(file))
        .with_context(|| format!("cannot read --input {}", request.input.display()))?;
    if let Some((line, reason)) = points.skipped.first() {
        writeln!(
            stderr,
            "tidewatch detect: skipped {} bad line(s) (first: line {line}: {reason})",
            points.skipped.len(),
        )?;
    }
    let windows = match request.labels {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --labels {}", path.display()))?;
            let labels: Labels = serde_json::from_str(&text).with_context(|| {
                format!(
                    "--labels {}: expected {{\"file.csv\": [[start, end], …]}}",
                    path.display()
                )
            })?;
            Some(windows_for(&labels, request.input)?)
        }
        None => None,
    };
    let spec = DetectorSpec {
        kind: request.detector,
        window: request.window,
        model: request.model,
        season: request
            .season
            .unwrap_or_else(|| infer_season(&points.times_ms)),
        rest: request
            .rest
            .unwrap_or((BEST_REST_FRACTION * points.len() as f64) as usize),
    };
    let mut detector = spec.build(points.columns.len().max(1));
    let mut scores = Vec::with_capacity(points.len());
    let mut text = String::with_capacity(points.len() * 40);
    text.push_str("timestamp,");
    for column in &points.columns {
        text.push_str(column);
        text.push(',');
    }
    text.push_str("anomaly_score\n");
    for index in 0..points.len() {
        let row = points.row(index);
        let score = detector.score(row);
        scores.push(score);
        text.push_str(&points.timestamps[index]);
        for value in row {
            text.push_str(&format!(",{value}"));
        }
        text.push_str(&format!(",{score}\n"));
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
    if let Some(windows) = windows {
        let report = label_report(&points.times_ms, &scores, &windows, request.threshold);
        let written = match request.out {
            Some(_) => write_report(request, &report, stdout),
            None => write_report(request, &report, stderr),
        };
        match written {
            // A reader that stops early (`| head -1`) is not an error.
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
            result => result.context("cannot write the label report")?,
        }
    }
    Ok(points.len())
}

/// Prints the label report: a summary line, then one line per window.
fn write_report(
    request: &DetectRequest<'_>,
    report: &LabelReport,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let name = request
        .input
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default();
    writeln!(
        out,
        "{name}: {}: windows hit {}/{}, false alarms {} (+{} in the probationary first {} points), threshold {}",
        request.detector,
        report.hits(),
        report.windows.len(),
        report.false_alarms,
        report.probation_alarms,
        report.probation,
        request.threshold
    )?;
    for (start, end, first) in &report.windows {
        let detected = match first {
            Some(time) => format!(
                "first alarm {} after the start",
                duration((time - start) as f64)
            ),
            None => "missed".to_string(),
        };
        writeln!(
            out,
            "  window {} .. {}: {detected}",
            utc((*start).max(0) as u64),
            utc((*end).max(0) as u64)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_or_several_value_columns() {
        let points = read_points("timestamp,value\n2014-01-01 00:00:00,1.5\nx,bad\n".as_bytes())
            .expect("read");
        assert_eq!(points.columns, vec!["value"]);
        assert_eq!(points.values, vec![1.5]);
        assert_eq!(points.skipped.len(), 1);

        let text = "ts,duration,temp\n1,2,3\n2,4\n3,5,NaN\n4,6,7\n";
        let points = read_points(text.as_bytes()).expect("read");
        assert_eq!(points.columns, vec!["duration", "temp"]);
        assert_eq!(points.len(), 2);
        assert_eq!(points.row(1), &[6.0, 7.0]);
        assert_eq!(points.skipped.len(), 2);

        let points = read_points("1,2,3\n2,4,5\n".as_bytes()).expect("read");
        assert_eq!(points.columns, vec!["value1", "value2"]);
        assert_eq!(points.len(), 2);
    }

    /// Hits, misses, false alarms counted once per run, and the probationary period.
    #[test]
    fn matches_alarms_against_windows() {
        let times: Vec<Option<i64>> = (0..100).map(Some).collect();
        let mut scores = vec![0.0; 100];
        for i in [5, 30, 31, 32, 50, 70, 71, 90] {
            scores[i] = 1.0;
        }
        // Windows [28, 35] (hit at 30), [60, 65] (missed), [88, 95] (hit at 90).
        let report = label_report(&times, &scores, &[(28, 35), (60, 65), (88, 95)], 0.5);
        assert_eq!(
            report.windows,
            vec![(28, 35, Some(30)), (60, 65, None), (88, 95, Some(90))]
        );
        assert_eq!(report.hits(), 2);
        // 5 is in the first 15 points; 50 and the run 70-71 are false.
        assert_eq!(report.probation_alarms, 1);
        assert_eq!(report.false_alarms, 2);
    }
}
