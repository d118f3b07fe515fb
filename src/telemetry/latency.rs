//! When the input frontier passed each time: the start of a result's end-to-end latency.
//!
//! Every worker records the wall-clock instant at which it moved its input capability (its
//! watermark, in timely time) forward. A result at timely time `t` can be final only once every
//! worker's capability is past `t`, so its latency starts at the latest of the workers' first
//! instants past `t`, and ends when the sink is handed the result.
//!
//! Unchecked assumption: the workers that record here are all the workers of the dataflow. In a
//! cluster, only process 0 (which writes the outputs) measures, and it sees only its own
//! workers: the latency then leaves out how long the other processes took to pass `t`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

/// Frontier moves kept per worker; older ones are dropped (a result that old is measured from
/// the oldest move kept, which understates its latency only after hours of backlog).
const KEPT: usize = 8192;

/// Per worker, the instants at which its input frontier moved, oldest first.
#[derive(Debug, Default)]
pub struct FrontierClock {
    workers: Mutex<Vec<VecDeque<(u64, Instant)>>>,
}

impl FrontierClock {
    /// A clock for `workers` workers (indices `0..workers`).
    pub fn new(workers: usize) -> Self {
        FrontierClock {
            workers: Mutex::new(vec![VecDeque::new(); workers]),
        }
    }

    /// Worker `worker` moved its frontier to `frontier` (times below it are passed) at `at`.
    pub fn advanced(&self, worker: usize, frontier: u64, at: Instant) {
        let Ok(mut workers) = self.workers.lock() else {
            return;
        };
        if worker >= workers.len() {
            workers.resize(worker + 1, VecDeque::new());
        }
        let moves = &mut workers[worker];
        if moves.back().is_some_and(|(last, _)| *last >= frontier) {
            return;
        }
        if moves.len() == KEPT {
            moves.pop_front();
        }
        moves.push_back((frontier, at));
    }

    /// The instant every worker's frontier had passed `time`, if all of them have.
    pub fn passed(&self, time: u64) -> Option<Instant> {
        let workers = self.workers.lock().ok()?;
        let mut latest: Option<Instant> = None;
        for moves in workers.iter() {
            // The first move to a frontier above `time`.
            let index = moves.partition_point(|(frontier, _)| *frontier <= time);
            let (_, at) = moves.get(index)?;
            latest = Some(latest.map_or(*at, |l| l.max(*at)));
        }
        latest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_time_is_passed_when_the_slowest_worker_passes_it() {
        let clock = FrontierClock::new(2);
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        clock.advanced(0, 10, at(1));
        clock.advanced(0, 20, at(2));
        clock.advanced(1, 15, at(5));
        assert_eq!(clock.passed(9), Some(at(5)));
        assert_eq!(clock.passed(10), Some(at(5)));
        // Worker 1 has not passed 15 yet.
        assert_eq!(clock.passed(15), None);
        clock.advanced(1, u64::MAX, at(9));
        assert_eq!(clock.passed(15), Some(at(9)));
        assert_eq!(clock.passed(19), Some(at(9)));
        // A move that goes nowhere is not recorded.
        clock.advanced(0, 20, at(50));
        assert_eq!(clock.passed(19), Some(at(9)));
    }
}
