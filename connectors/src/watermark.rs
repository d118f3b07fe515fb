//! Per-source watermarks and lateness (SPEC §2).

use tidewatch_operators::event::Millis;

/// Tracks one source's watermark: the largest event time seen minus the disorder bound.
///
/// # Examples
/// ```
/// use tidewatch_connectors::watermark::Watermark;
///
/// let mut watermark = Watermark::new(5_000);
/// assert!(watermark.observe(10_000));     // accepted; watermark is now 5 000
/// assert!(watermark.observe(5_000));      // exactly at the watermark: not late
/// assert!(!watermark.observe(4_999));     // below it: late, and it does not move the watermark
/// assert_eq!(watermark.current(), 5_000);
/// ```
#[derive(Clone, Debug)]
pub struct Watermark {
    disorder_ms: Millis,
    max_seen: Option<Millis>,
}

impl Watermark {
    /// A source that has seen nothing yet, with disorder bound `disorder_ms`.
    pub fn new(disorder_ms: Millis) -> Self {
        Watermark {
            disorder_ms,
            max_seen: None,
        }
    }

    /// The watermark: no event below it is accepted any more (0 before the first event).
    pub fn current(&self) -> Millis {
        self.max_seen
            .map_or(0, |max| max.saturating_sub(self.disorder_ms))
    }

    /// Offers an event time: `true` if the event is on time (and the watermark may advance),
    /// `false` if it is late (below the watermark; nothing changes).
    pub fn observe(&mut self, ts: Millis) -> bool {
        if ts < self.current() {
            return false;
        }
        self.max_seen = Some(self.max_seen.map_or(ts, |max| max.max(ts)));
        true
    }

    /// Moves the watermark to at least `at_least` without an event (an idle source whose clock
    /// says time has passed, e.g. the real-time generator).
    pub fn advance_to(&mut self, at_least: Millis) {
        let as_seen = at_least.saturating_add(self.disorder_ms);
        self.max_seen = Some(self.max_seen.map_or(as_seen, |max| max.max(as_seen)));
    }
}
