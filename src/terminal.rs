//! Human-readable lines for the terminal.

use tidewatch_dataflows::anomaly::{AnomalyAlertRow, Metric};
use tidewatch_dataflows::logi1::AlertRow;
use tidewatch_dataflows::logi2::{ForecastAlertRow, DELIVERY_DURATION_FORECAST_DEVIATION};
use tidewatch_operators::event::Millis;

/// `YYYY-MM-DD HH:MM:SS` (UTC) for a time in milliseconds since the epoch.
///
/// # Examples
/// ```
/// assert_eq!(tidewatch::terminal::utc(1_764_288_000_000), "2025-11-28 00:00:00");
/// ```
pub fn utc(ms: Millis) -> String {
    let seconds = ms / 1000;
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// A duration in milliseconds as `1h23m`, `4m05s` or `12.3s`.
pub fn duration(ms: f64) -> String {
    let seconds = ms / 1000.0;
    if seconds >= 3600.0 {
        format!(
            "{}h{:02}m",
            (seconds / 3600.0) as u64,
            ((seconds % 3600.0) / 60.0) as u64
        )
    } else if seconds >= 60.0 {
        format!(
            "{}m{:02}s",
            (seconds / 60.0) as u64,
            (seconds % 60.0) as u64
        )
    } else {
        format!("{seconds:.1}s")
    }
}

/// The alert as one readable line.
///
/// # Examples
/// ```
/// use tidewatch::terminal::alert_line;
/// use tidewatch_dataflows::logi1::AlertRow;
/// use tidewatch_operators::event::FiniteF64;
/// let f = |x| FiniteF64::new(x).unwrap();
/// let row = AlertRow { rule: "delivery_duration_z".into(), warehouse: "wh-03".into(),
///     window_start: 1_764_288_000_000, value: f(9_100_000.0), mu: f(7_150_000.0),
///     sigma: f(410_000.0), z: f(4.75), n: 30 };
/// let line = alert_line(&row, 1);
/// assert!(line.contains("delivery_duration_z") && line.contains("wh-03") && line.contains("z=+4.75"));
/// ```
pub fn alert_line(row: &AlertRow, diff: isize) -> String {
    let verb = if diff > 0 { "ALERT " } else { "CLEARED" };
    format!(
        "{verb} {rule}  warehouse={warehouse}  window={start}..{end} UTC  mean delivery {value} vs {mu} ± {sigma} over {n} windows  z={z:+.2}",
        rule = row.rule,
        warehouse = row.warehouse,
        start = utc(row.window_start),
        end = &utc(row.window_start + 60_000)[11..16],
        value = duration(row.value.get()),
        mu = duration(row.mu.get()),
        sigma = duration(row.sigma.get()),
        n = row.n,
        z = row.z.get(),
    )
}

/// Prints the alert line on stdout.
pub fn print_alert(row: &AlertRow, diff: isize) {
    println!("{}", alert_line(row, diff));
}

/// One readable line for a LOGI-2 forecast alert: expected vs actual, the interval, the model
/// and its recent error score.
///
/// # Examples
/// ```
/// use tidewatch::terminal::forecast_alert_line;
/// use tidewatch_dataflows::logi2::ForecastAlertRow;
/// use tidewatch_operators::event::FiniteF64;
/// let f = |x| FiniteF64::new(x).unwrap();
/// let row = ForecastAlertRow { rule: "demand_forecast_deviation".into(), warehouse: "wh-03".into(),
///     window_start: 1_764_288_000_000, actual: f(180.0), expected: f(61.2), lower: f(30.0),
///     upper: f(92.4), model: "holt_winters".into(), mase: Some(f(0.71)), z: f(15.2) };
/// let line = forecast_alert_line(&row, 1);
/// assert!(line.contains("expected 61.2") && line.contains("got 180.0") && line.contains("holt_winters"));
/// ```
pub fn forecast_alert_line(row: &ForecastAlertRow, diff: isize) -> String {
    let verb = if diff > 0 { "ALERT " } else { "CLEARED" };
    let show = |value: f64| {
        if row.rule == DELIVERY_DURATION_FORECAST_DEVIATION {
            duration(value)
        } else {
            format!("{value:.1}")
        }
    };
    format!(
        "{verb} {rule}  warehouse={warehouse}  window={start}..{end} UTC  expected {expected} [{lower}, {upper}], got {actual}  model={model} mase={mase}  z={z:+.2}",
        rule = row.rule,
        warehouse = row.warehouse,
        start = utc(row.window_start),
        end = &utc(row.window_start + 60_000)[11..16],
        expected = show(row.expected.get()),
        lower = show(row.lower.get()),
        upper = show(row.upper.get()),
        actual = show(row.actual.get()),
        model = row.model,
        mase = row.mase.map_or("n/a".to_string(), |m| format!("{:.2}", m.get())),
        z = row.z.get(),
    )
}

/// Prints the forecast alert line on stdout.
pub fn print_forecast_alert(row: &ForecastAlertRow, diff: isize) {
    println!("{}", forecast_alert_line(row, diff));
}

/// One readable line for a change of an alert rule's alert: the raise (the raising window, its
/// metric values and score) or the clear (when, and which raise it ends). `time` is the change's
/// event time (the `window_end` of the raising or clearing window).
///
/// # Examples
/// ```
/// use tidewatch::terminal::anomaly_alert_line;
/// use tidewatch_dataflows::anomaly::AnomalyAlertRow;
/// use tidewatch_operators::event::FiniteF64;
/// let f = |x| FiniteF64::new(x).unwrap();
/// let row = AnomalyAlertRow { rule: "delivery_duration_anomaly".into(), alert_id: "5d0c2b5e1f3a9b77".into(),
///     warehouse: "wh-01".into(), detector: "best".into(), window_start: 1_764_298_800_000,
///     score: f(0.99999), values: [("delivery_duration".into(), f(16_200_000.0))].into() };
/// let raised = anomaly_alert_line(&row, 1_764_298_860_000, 1);
/// assert!(raised.starts_with("ALERT ") && raised.contains("delivery_duration=4h30m") && raised.contains("(best)"));
/// let cleared = anomaly_alert_line(&row, 1_764_299_700_000, -1);
/// assert!(cleared.starts_with("CLEARED") && cleared.contains("at 2025-11-28 03:15 UTC") && cleared.contains("5d0c2b5e1f3a9b77"));
/// ```
pub fn anomaly_alert_line(row: &AnomalyAlertRow, time: Millis, diff: isize) -> String {
    let head = format!(
        "{verb} {rule}  warehouse={warehouse}",
        verb = if diff > 0 { "ALERT " } else { "CLEARED" },
        rule = row.rule,
        warehouse = row.warehouse,
    );
    let window = format!(
        "{}..{}",
        utc(row.window_start),
        &utc(row.window_start + 60_000)[11..16]
    );
    if diff <= 0 {
        return format!(
            "{head}  at {at} UTC, raised by window {window}  id={id}",
            at = &utc(time)[..16],
            id = row.alert_id,
        );
    }
    let values: Vec<String> = row
        .values
        .iter()
        .map(|(metric, value)| {
            let value = value.get();
            let shown = match metric.as_str() {
                name if name == Metric::DeliveryDuration.as_str() => duration(value),
                name if name == Metric::Temperature.as_str() => format!("{value:.1}°C"),
                _ => format!("{value}"),
            };
            format!("{metric}={shown}")
        })
        .collect();
    format!(
        "{head}  window={window} UTC  {values}  score={score:.5} ({detector})  id={id}",
        values = values.join(" "),
        score = row.score.get(),
        detector = row.detector,
        id = row.alert_id,
    )
}

/// Prints the alert rule's change line on stdout.
pub fn print_anomaly_alert(row: &AnomalyAlertRow, time: Millis, diff: isize) {
    println!("{}", anomaly_alert_line(row, time, diff));
}
