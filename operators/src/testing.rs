//! Test support: run a dataflow on the workers `config` describes and gather what it captured.

use std::sync::mpsc::Sender;
use timely::dataflow::operators::capture::{Event, Extract};

/// Where a test dataflow sends its output (`stream.capture_into(sink)`).
pub(crate) type Sink<D> = Sender<Event<u64, Vec<D>>>;

/// Runs `build_and_feed` on every worker with a capture sink; returns the captured batches by
/// time, each sorted.
pub(crate) fn run_captured<D, F>(config: timely::Config, build_and_feed: F) -> Vec<(u64, Vec<D>)>
where
    D: Ord + Clone + Send + 'static,
    F: Fn(&mut timely::worker::Worker, Sink<D>) + Send + Sync + 'static,
{
    let (send, recv) = std::sync::mpsc::channel();
    let send = std::sync::Arc::new(std::sync::Mutex::new(send));
    timely::execute(config, move |worker| {
        let send = send
            .lock()
            .map(|s| s.clone())
            .expect("the capture sender lock");
        build_and_feed(worker, send);
    })
    .expect("timely runs");
    recv.extract()
}

/// The worker setups every operator test runs under: one thread, two threads, and three
/// threads exchanging serialized data (`ProcessBinary`, so serde is exercised).
pub(crate) fn worker_configs() -> [timely::Config; 3] {
    [
        timely::Config::thread(),
        timely::Config::process(2),
        timely::Config {
            communication: timely::CommunicationConfig::ProcessBinary(3),
            worker: timely::WorkerConfig::default(),
        },
    ]
}

/// The captured batches as `(time, record)` pairs, sorted.
pub(crate) fn timed_rows<D: Ord>(captured: Vec<(u64, Vec<D>)>) -> Vec<(u64, D)> {
    let mut rows: Vec<(u64, D)> = captured
        .into_iter()
        .flat_map(|(t, v)| v.into_iter().map(move |r| (t, r)))
        .collect();
    rows.sort();
    rows
}
