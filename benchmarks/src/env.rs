//! Benchmark settings from environment variables (`TIDEWATCH_BENCH_*`).
//!
//! # Examples
//! ```
//! use tidewatch_benchmarks::env::count_or;
//!
//! assert_eq!(count_or("TIDEWATCH_BENCH_SURELY_UNSET", 7), Ok(7));
//! ```

/// The number in environment variable `name`, or `default` when it is unset; an error that
/// names the variable when it is set to something else.
pub fn count_or(name: &str, default: usize) -> Result<usize, String> {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .map_err(|_| format!("{name} must be a number, got {value:?}")),
        Err(_) => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_defaults_and_rejects_words() {
        // Each variable is only touched by this test.
        std::env::set_var("TIDEWATCH_BENCH_TEST_COUNT", " 42 ");
        assert_eq!(count_or("TIDEWATCH_BENCH_TEST_COUNT", 1), Ok(42));
        std::env::set_var("TIDEWATCH_BENCH_TEST_WORD", "many");
        let error = count_or("TIDEWATCH_BENCH_TEST_WORD", 1).unwrap_err();
        assert!(error.contains("TIDEWATCH_BENCH_TEST_WORD"), "{error}");
        assert_eq!(count_or("TIDEWATCH_BENCH_TEST_UNSET", 3), Ok(3));
    }
}
