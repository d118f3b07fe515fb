//! Per-worker input feeds: lines from a file or stdin, or events from the built-in generator,
//! with the generator's pacing (as fast as possible, a fixed rate, or real time).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tidewatch_connectors::generator::{Generator, GeneratorConfig};
use tidewatch_connectors::jsonl_source::{LinePoll, LineReader, SourceError};
use tidewatch_connectors::kafka::source::KafkaSource;
use tidewatch_operators::event::{Event, Millis};

/// How fast the generator emits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pacing {
    /// As fast as the dataflow takes events.
    AsFastAsPossible,
    /// A fixed number of events per second of wall-clock time (over all workers).
    Rate(f64),
    /// Event time follows the wall clock: events due before the start are replayed as fast as
    /// possible (simulated history), later ones are emitted when the wall clock reaches them.
    RealTime,
}

/// The generator, its pacing, and where it stops.
#[derive(Clone, Debug)]
pub struct GeneratorSpec {
    /// Traffic settings (seed, warehouses, incidents, ...).
    pub config: GeneratorConfig,
    /// Emission pacing.
    pub pacing: Pacing,
    /// Stop once the generator's emit time reaches this event time (`None`: run until stopped).
    pub stop_at_ms: Option<Millis>,
}

/// The next thing a feed has.
pub enum Next {
    /// A line, now in the caller's buffer, from part `part` of the feed at this offset.
    Line {
        /// Which of the feed's parts (Kafka partitions; 0 for a file or stdin).
        part: usize,
        /// Byte offset in the source (Kafka: the message's offset).
        offset: u64,
    },
    /// A generated event.
    Event(Event),
    /// Nothing due yet; if the source has a clock, it says no event below `clock_ms` will come.
    Idle {
        /// Event time the source has reached without events.
        clock_ms: Option<Millis>,
    },
    /// The input has ended.
    Done,
}

/// One worker's share of the input.
pub enum Feed {
    /// File or stdin lines.
    Lines(LineReader),
    /// Generated events.
    Generator(PacedGenerator),
    /// Kafka partitions.
    Kafka(Box<KafkaSource>),
}

/// A generator with a pacing.
pub struct PacedGenerator {
    generator: Generator,
    pacing: Pacing,
    stop_at_ms: Option<Millis>,
    started: Instant,
    emitted: u64,
    per_worker_rate: f64,
}

fn wall_clock_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as Millis)
}

impl Feed {
    /// Opens worker `index`'s share of `input` among `peers` workers.
    pub fn open(
        input: &crate::runner::InputSpec,
        index: usize,
        peers: usize,
    ) -> Result<Self, crate::runner::RunError> {
        match input {
            crate::runner::InputSpec::Kafka(config) => Ok(Feed::Kafka(Box::new(
                KafkaSource::open(config, index, peers)?,
            ))),
            crate::runner::InputSpec::Lines(source) => {
                Ok(Feed::Lines(LineReader::open(source, index, peers)?))
            }
            crate::runner::InputSpec::Generator(spec) => {
                let generator =
                    Generator::for_worker(spec.config.clone(), index, peers).map_err(|error| {
                        crate::runner::RunError::from(SourceError::Io {
                            path: "generator".to_string(),
                            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, error),
                        })
                    })?;
                let per_worker_rate = match spec.pacing {
                    Pacing::Rate(rate) => rate / peers.max(1) as f64,
                    _ => 0.0,
                };
                Ok(Feed::Generator(PacedGenerator {
                    generator,
                    pacing: spec.pacing,
                    stop_at_ms: spec.stop_at_ms,
                    started: Instant::now(),
                    emitted: 0,
                    per_worker_rate,
                }))
            }
        }
    }

    /// A name for dead letters: the file path, `stdin` or `generator`.
    pub fn name(&self) -> &str {
        match self {
            Feed::Lines(reader) => reader.name(),
            Feed::Generator(_) => "generator",
            Feed::Kafka(_) => "kafka",
        }
    }

    /// Number of parts (sources with their own watermark): Kafka partitions, else 1.
    pub fn parts(&self) -> usize {
        match self {
            Feed::Kafka(source) => source.parts(),
            _ => 1,
        }
    }

    /// Whether `part` holds the worker's watermark back (Kafka: not idle, not at its end).
    pub fn holds_watermark(&self, part: usize) -> bool {
        match self {
            Feed::Kafka(source) => source.holds_watermark(part),
            _ => true,
        }
    }

    /// The Kafka source, if this is one.
    pub fn kafka(&mut self) -> Option<&mut KafkaSource> {
        match self {
            Feed::Kafka(source) => Some(source),
            _ => None,
        }
    }

    /// The next line or event, if one is due; `may_read` says which parts may be read now
    /// (the runner holds back parts that run too far ahead).
    pub fn next(
        &mut self,
        line: &mut Vec<u8>,
        may_read: &dyn Fn(usize) -> bool,
    ) -> Result<Next, SourceError> {
        match self {
            Feed::Lines(reader) => Ok(match reader.poll_line(line)? {
                LinePoll::Line(offset) => Next::Line { part: 0, offset },
                LinePoll::Pending => Next::Idle { clock_ms: None },
                LinePoll::End => Next::Done,
            }),
            Feed::Generator(paced) => Ok(paced.next()),
            Feed::Kafka(source) => Ok(match source.next_message(line, may_read) {
                Some((part, offset)) => Next::Line { part, offset },
                None if source.finished() => Next::Done,
                None => Next::Idle { clock_ms: None },
            }),
        }
    }
}

impl PacedGenerator {
    fn next(&mut self) -> Next {
        let Some(emit_ms) = self.generator.peek_emit_ms() else {
            return Next::Done;
        };
        if self.stop_at_ms.is_some_and(|stop| emit_ms >= stop) {
            return Next::Done;
        }
        match self.pacing {
            Pacing::AsFastAsPossible => {}
            Pacing::Rate(_) => {
                let due =
                    Duration::from_secs_f64(self.emitted as f64 / self.per_worker_rate.max(1e-9));
                if self.started.elapsed() < due {
                    // The clock of a rate-paced generator is its own emit time.
                    return Next::Idle { clock_ms: None };
                }
            }
            Pacing::RealTime => {
                let now = wall_clock_ms();
                if emit_ms > now {
                    return Next::Idle {
                        clock_ms: Some(now),
                    };
                }
            }
        }
        match self.generator.next() {
            Some((_, event)) => {
                self.emitted += 1;
                Next::Event(event)
            }
            None => Next::Done,
        }
    }
}
