//! Small numeric helpers shared by aggregates.

/// Sums `values` with Neumaier's compensated summation.
///
/// The error stays at a few units in the last place whatever the number of terms, so sums of
/// many readings match an exact (rational) reference within the SPEC's 1e-6 relative tolerance.
/// Callers that need results independent of arrival order pass the values in a canonical order
/// (sorted, or by time).
///
/// # Examples
/// ```
/// use tidewatch_operators::numeric::compensated_sum;
/// assert_eq!(compensated_sum([0.1; 10]), 1.0);
/// assert_eq!(compensated_sum([1e100, 1.0, -1e100]), 1.0);
/// ```
pub fn compensated_sum(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut sum = 0.0f64;
    let mut compensation = 0.0f64;
    for value in values {
        let total = sum + value;
        if sum.abs() >= value.abs() {
            compensation += (sum - total) + value;
        } else {
            compensation += (value - total) + sum;
        }
        sum = total;
    }
    sum + compensation
}

/// Mean and population standard deviation of `values` (two passes, compensated sums).
///
/// Returns `None` for an empty slice. The deviation is exactly `0.0` when all values are equal,
/// so "sigma > 0" means "the values differ", free of rounding noise.
///
/// # Examples
/// ```
/// use tidewatch_operators::numeric::mean_and_std_dev;
/// assert_eq!(mean_and_std_dev(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]), Some((5.0, 2.0)));
/// assert_eq!(mean_and_std_dev(&[0.1; 10]), Some((0.1, 0.0)));
/// ```
pub fn mean_and_std_dev(values: &[f64]) -> Option<(f64, f64)> {
    let first = *values.first()?;
    let count = values.len() as f64;
    if values.iter().all(|v| v.to_bits() == first.to_bits()) {
        return Some((first, 0.0));
    }
    let mean = compensated_sum(values.iter().copied()) / count;
    let variance = compensated_sum(values.iter().map(|v| (v - mean) * (v - mean))) / count;
    Some((mean, variance.sqrt()))
}
