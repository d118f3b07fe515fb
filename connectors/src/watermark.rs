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

/// Watermarks of several sources read by one worker (Kafka partitions): one [`Watermark`] each.
///
/// # Examples
/// ```
/// use tidewatch_connectors::watermark::PartWatermarks;
///
/// let mut parts = PartWatermarks::new(2, 1_000);
/// assert!(parts.observe(0, 10_000));
/// assert!(parts.observe(1, 4_000));
/// // The least over the parts that hold the watermark back:
/// assert_eq!(parts.least(|_| true), Some(3_000));
/// // Part 1 idle: only part 0 counts.
/// assert_eq!(parts.least(|part| part == 0), Some(9_000));
/// assert_eq!(parts.least(|_| false), None);
/// assert_eq!(parts.greatest(), 9_000);
/// ```
#[derive(Clone, Debug)]
pub struct PartWatermarks {
    parts: Vec<Watermark>,
}

impl PartWatermarks {
    /// `parts` sources that have seen nothing yet.
    pub fn new(parts: usize, disorder_ms: Millis) -> Self {
        PartWatermarks {
            parts: vec![Watermark::new(disorder_ms); parts],
        }
    }

    /// The watermark of `part` (0 for an unknown part).
    pub fn current(&self, part: usize) -> Millis {
        self.parts.get(part).map_or(0, Watermark::current)
    }

    /// The largest event time `part` has accepted.
    pub fn max_seen(&self, part: usize) -> Option<Millis> {
        self.parts.get(part).and_then(|w| w.max_seen)
    }

    /// Offers an event time of `part`; see [`Watermark::observe`].
    pub fn observe(&mut self, part: usize, ts: Millis) -> bool {
        self.parts.get_mut(part).is_some_and(|w| w.observe(ts))
    }

    /// Moves every part's watermark to at least `at_least`; see [`Watermark::advance_to`].
    pub fn advance_all_to(&mut self, at_least: Millis) {
        for part in &mut self.parts {
            part.advance_to(at_least);
        }
    }

    /// The least watermark over the parts for which `holds` is true; `None` if there are none.
    pub fn least(&self, holds: impl Fn(usize) -> bool) -> Option<Millis> {
        (0..self.parts.len())
            .filter(|&part| holds(part))
            .map(|part| self.parts[part].current())
            .min()
    }

    /// The greatest watermark of any part (0 with no parts).
    pub fn greatest(&self) -> Millis {
        self.parts.iter().map(Watermark::current).max().unwrap_or(0)
    }
}
