//! An open-loop schedule: event `i` of a load at `rate` events per second is due `i / rate`
//! seconds after the start, whatever happened before.
//!
//! # Examples
//! ```
//! use std::time::Duration;
//! use tidewatch_benchmarks::schedule::Schedule;
//!
//! let schedule = Schedule::new(1_000.0).expect("a positive rate");
//! assert_eq!(schedule.due(0), Duration::ZERO);
//! assert_eq!(schedule.due(1_500), Duration::from_millis(1_500));
//! // After 2.5 ms, events 0, 1 and 2 are due: a sender that was stalled sends all three now.
//! assert_eq!(schedule.due_by(Duration::from_micros(2_500)), 3);
//! ```

use std::time::Duration;

/// When the events of an open-loop load are due, relative to the load's start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    rate: f64,
}

impl Schedule {
    /// A load of `rate` events per second; `None` unless the rate is finite and positive.
    pub fn new(rate: f64) -> Option<Self> {
        (rate.is_finite() && rate > 0.0).then_some(Schedule { rate })
    }

    /// Events per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// When event `index` is due, from the start.
    pub fn due(&self, index: u64) -> Duration {
        Duration::from_secs_f64(index as f64 / self.rate)
    }

    /// How many events are due at or before `elapsed` since the start (events `0..n`).
    pub fn due_by(&self, elapsed: Duration) -> u64 {
        // The largest i with i / rate <= elapsed, plus one; rounding is corrected both ways so
        // that `due_by(due(i)) > i` holds exactly.
        let mut n = (elapsed.as_secs_f64() * self.rate).floor() as u64 + 1;
        while n > 0 && self.due(n - 1) > elapsed {
            n -= 1;
        }
        while self.due(n) <= elapsed {
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_rates_that_are_not_positive() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(Schedule::new(rate).is_none(), "{rate}");
        }
    }

    /// Every event is due exactly once, in order, at `i / rate`, for awkward rates too.
    #[test]
    fn due_by_counts_exactly_the_due_events() {
        for rate in [1.0, 3.0, 7.0, 1_000.0, 100_000.0, 333_333.3] {
            let schedule = Schedule::new(rate).expect("rate");
            for index in [0u64, 1, 2, 9, 10, 999, 1_000, 123_457] {
                let at = schedule.due(index);
                assert!(schedule.due_by(at) > index, "rate {rate}, event {index}");
                if let Some(before) = at.checked_sub(Duration::from_nanos(1)) {
                    assert!(
                        schedule.due_by(before) <= index,
                        "rate {rate}, event {index}"
                    );
                }
            }
        }
    }

    /// Open loop: how many events are due depends only on the time, not on what was sent. A
    /// sender stalled for 50 ms at 100 k events/s owes 5 000 events when it wakes up.
    #[test]
    fn a_stall_does_not_slow_the_load() {
        let schedule = Schedule::new(100_000.0).expect("rate");
        let before = schedule.due_by(Duration::from_millis(10));
        let after = schedule.due_by(Duration::from_millis(60));
        assert_eq!(after - before, 5_000);
    }
}
