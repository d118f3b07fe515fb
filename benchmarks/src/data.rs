//! The public series in `benchmarks/data` (NAB, see its README), for the forecasting and
//! detection benchmarks.
//!
//! # Examples
//! ```
//! let values = tidewatch_benchmarks::data::values("nyc_taxi.csv").unwrap();
//! assert_eq!(values.len(), 10_320);
//! assert!(tidewatch_benchmarks::data::values("missing.csv").is_err());
//! ```

/// The values (second column) of `benchmarks/data/<file>`, header skipped; an error that
/// names the file when it cannot be read.
pub fn values(file: &str) -> Result<Vec<f64>, String> {
    let path = format!("{}/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|line| line.split(',').nth(1)?.trim().parse().ok())
        .collect())
}
