//! Resident memory of this process (Linux `/proc/self/status`).
//!
//! # Examples
//! ```
//! use tidewatch_benchmarks::rss::parse_status;
//!
//! let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
//! assert_eq!(parse_status(status), Some((1024, 2048)));
//! ```

/// `(VmRSS, VmHWM)` in KiB: the resident set now and its peak so far; `None` where
/// `/proc/self/status` cannot be read (not Linux).
pub fn current_and_peak_kib() -> Option<(u64, u64)> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| parse_status(&status))
}

/// Reads `(VmRSS, VmHWM)` in KiB out of the text of `/proc/<pid>/status`.
pub fn parse_status(status: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_fields_or_nothing() {
        let status = "VmPeak:\t 999 kB\nVmHWM:\t  5000 kB\nVmRSS:\t  4000 kB\nThreads: 3\n";
        assert_eq!(parse_status(status), Some((4000, 5000)));
        assert_eq!(parse_status("VmRSS:\t 1 kB\n"), None);
        assert_eq!(parse_status("VmRSS:\t x kB\nVmHWM:\t 2 kB\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_a_resident_set() {
        let (now, peak) = current_and_peak_kib().expect("Linux has /proc/self/status");
        assert!(now > 0 && peak >= now, "{now} {peak}");
    }
}
