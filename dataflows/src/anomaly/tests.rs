//! The stage on synthetic window rows: the same alert deltas at 1 thread, 2 threads and 2
//! threads exchanging serialized data as a sequential replay of each warehouse's rows, and the
//! planted incidents alert.

use std::sync::{Arc, Mutex};

use differential_dataflow::AsCollection;
use rand::{Rng, SeedableRng};
use timely::dataflow::operators::capture::{Capture, Extract};
use timely::dataflow::operators::vec::{Map, UnorderedInput};

use super::warehouse::WarehouseRules;
use super::*;

const MINUTE: Millis = 60_000;

/// Three warehouses over 400 minutes: wh-1 has an order surge at minutes 300..315, wh-2 slow
/// deliveries at 250..265 and a row only four minutes in five, wh-3 a heat excursion at
/// 200..220. Deliveries stop now and then (rows without a duration).
fn rows() -> Vec<WindowRow> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
    let mut rows = Vec::new();
    for (index, warehouse) in ["wh-1", "wh-2", "wh-3"].iter().enumerate() {
        for minute in 0..400u64 {
            if index == 1 && minute % 5 == 4 {
                continue;
            }
            let surge = if index == 0 && (300..315).contains(&minute) {
                3.0
            } else {
                1.0
            };
            let slow = if index == 1 && (250..265).contains(&minute) {
                3.0
            } else {
                1.0
            };
            let heat = if index == 2 && (200..220).contains(&minute) {
                6.0
            } else {
                0.0
            };
            let delivered = if rng.random_bool(0.05) {
                0
            } else {
                rng.random_range(20..40)
            };
            let duration = slow * 5_400_000.0 * rng.random_range(0.9..1.1);
            let temperature = 20.0 + heat + rng.random_range(-0.3..0.3);
            let window_start = minute * MINUTE;
            rows.push(WindowRow {
                warehouse: Text::from(*warehouse),
                window_start,
                window_end: window_start + MINUTE,
                orders: (surge * rng.random_range(40.0..60.0)) as u64,
                delivered,
                mean_duration_ms: (delivered > 0).then(|| FiniteF64::new(duration)).flatten(),
                readings: 12,
                mean_temp: FiniteF64::new(temperature),
            });
        }
    }
    rows
}

type Change = (AnomalyAlertRow, Millis, isize);

/// The rows fed warehouse by warehouse, in window order, to the same per-warehouse state.
fn replay(config: &AnomalyConfig, rows: &[WindowRow]) -> Vec<Change> {
    let rules = compile(config);
    let mut sorted = rows.to_vec();
    sorted.sort_by(|a, b| (&a.warehouse, a.window_start).cmp(&(&b.warehouse, b.window_start)));
    let mut changes = Vec::new();
    let mut current: Option<(Text, WarehouseRules)> = None;
    for row in &sorted {
        if current.as_ref().is_none_or(|(w, _)| *w != row.warehouse) {
            current = Some((row.warehouse.clone(), WarehouseRules::new(&rules)));
        }
        if let Some((_, state)) = current.as_mut() {
            changes.extend(state.window(&rules, row));
        }
    }
    changes.sort();
    changes
}

/// The stage on `config`'s workers, each feeding its share of the rows in reverse order.
fn run(workers: timely::Config, config: &AnomalyConfig, rows: &[WindowRow]) -> Vec<Change> {
    let (send, receive) = std::sync::mpsc::channel();
    let send = Arc::new(Mutex::new(send));
    let (config, rows) = (config.clone(), rows.to_vec());
    timely::execute(workers, move |worker| {
        let send = send.lock().map(|s| s.clone()).expect("the capture sender");
        let (index, peers) = (worker.index(), worker.peers());
        let (mut input, capability) = worker.dataflow::<u64, _, _>(|scope| {
            let (input, rows) = scope.new_unordered_input::<WindowRow>();
            let windows = rows
                .map(|row| (row.clone(), row.window_end, 1isize))
                .as_collection();
            anomaly_rules(windows, &config).inner.capture_into(send);
            input
        });
        for row in rows.iter().rev().skip(index).step_by(peers) {
            input
                .activate()
                .session(&capability.delayed(&row.window_end))
                .give(row.clone());
        }
    })
    .expect("timely runs");
    let mut changes: Vec<Change> = receive.extract().into_iter().flat_map(|(_, v)| v).collect();
    changes.sort();
    changes
}

#[test]
fn workers_and_serialization_do_not_change_the_alerts() {
    let config = AnomalyConfig::default();
    let rows = rows();
    let expected = replay(&config, &rows);
    let binary = timely::Config {
        communication: timely::CommunicationConfig::ProcessBinary(2),
        worker: timely::WorkerConfig::default(),
    };
    for workers in [timely::Config::thread(), timely::Config::process(2), binary] {
        assert_eq!(run(workers, &config, &rows), expected);
    }

    // Each planted incident is raised inside it, and every raise is cleared by the same row.
    for (rule, warehouse, incident) in [
        (ORDER_VOLUME_ANOMALY, "wh-1", 300..315),
        (DELIVERY_DURATION_ANOMALY, "wh-2", 250..265),
        (TEMPERATURE_ANOMALY, "wh-3", 200..220),
    ] {
        let raised = expected.iter().any(|(row, _, diff)| {
            *diff == 1
                && row.rule == rule
                && row.warehouse == warehouse
                && incident.contains(&(row.window_start / MINUTE))
        });
        assert!(raised, "{rule} at {warehouse}: {expected:#?}");
    }
    for (row, time, diff) in expected.iter().filter(|change| change.2 == 1) {
        assert!(row.values.values().all(|value| value.get() > 0.0));
        assert_eq!(*time, row.window_start + MINUTE);
        let cleared = expected.iter().filter(|c| c.0 == *row && c.2 == -1).count();
        assert!(cleared <= 1 && *diff == 1);
    }
}
