//! Handing a batch of events to a timely input at their own times.
//!
//! # Examples
//! ```
//! use std::sync::{mpsc, Arc, Mutex};
//! use timely::dataflow::operators::capture::{Capture, Extract};
//! use timely::dataflow::operators::vec::UnorderedInput;
//! use tidewatch_connectors::input::send_by_time;
//!
//! let (send, receive) = mpsc::channel();
//! let send = Arc::new(Mutex::new(send));
//! timely::execute_directly(move |worker| {
//!     let send = send.lock().unwrap().clone();
//!     let (mut input, capability) = worker.dataflow::<u64, _, _>(|scope| {
//!         let (input, stream) = scope.new_unordered_input::<&str>();
//!         stream.capture_into(send);
//!         input
//!     });
//!     let mut batch = vec![(5, "b"), (3, "a"), (5, "c")];
//!     send_by_time(&mut input, &capability, &mut batch);
//!     assert!(batch.is_empty());
//! });
//! let mut got = receive.extract();
//! got.iter_mut().for_each(|(_, words)| words.sort());
//! assert_eq!(got, vec![(3, vec!["a"]), (5, vec!["b", "c"])]);
//! ```

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::core::UnorderedHandle;
use timely::dataflow::operators::ActivateCapability;

/// Sends every `(time, record)` of `batch` (which is left empty) through `input`, one session
/// per distinct time: a batch of events spans few timely times, so this is few sessions.
///
/// Every time must be at or after `capability`'s time (timely panics otherwise: a broken
/// invariant of the caller, which sends late events to dead letters instead).
pub fn send_by_time<D: 'static>(
    input: &mut UnorderedHandle<u64, CapacityContainerBuilder<Vec<D>>>,
    capability: &ActivateCapability<u64>,
    batch: &mut Vec<(u64, D)>,
) {
    batch.sort_by_key(|(time, _)| *time);
    let mut records = batch.drain(..).peekable();
    while let Some((time, record)) = records.next() {
        let at = capability.delayed(&time);
        let mut handle = input.activate();
        let mut session = handle.session(&at);
        session.give(record);
        while let Some((_, record)) = records.next_if(|(next, _)| *next == time) {
            session.give(record);
        }
    }
}
