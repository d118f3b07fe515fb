//! Latencies per interval of wall-clock time, as HdrHistogram interval logs (`.hlog`): the
//! format of Java's `HistogramLogWriter` (log format version 1.3, with tags), which
//! HistogramLogAnalyzer, hdr-plot and `HistogramLogReader` read.
//!
//! A log has header comments, `#[StartTime: …]` and `#[BaseTime: …]` lines (seconds since the
//! epoch), a CSV legend, then one line per interval:
//! `Tag=<tag>,<start s since BaseTime>,<length s>,<max ms>,<base64 of a V2 deflate histogram>`.
//! Histogram values are microseconds; the max column is in milliseconds
//! (`#[MaxValueDivisor: 1000.000]`).
//!
//! # Examples
//! ```
//! use std::time::{Duration, SystemTime};
//! use tidewatch_benchmarks::hlog::{read_interval_log, write_interval_log, IntervalHistograms};
//!
//! let mut processing = IntervalHistograms::new(Duration::from_secs(1));
//! processing.record(Duration::from_millis(200), Duration::from_micros(150));
//! processing.record(Duration::from_millis(1_700), Duration::from_millis(3));
//!
//! let mut log = Vec::new();
//! write_interval_log(&mut log, SystemTime::now(), &["an example"], &[("processing", &processing)])
//!     .expect("writing to a Vec");
//!
//! let intervals = read_interval_log(&log).expect("a log we just wrote");
//! assert_eq!(intervals.len(), 2);
//! assert_eq!(intervals[1].tag.as_deref(), Some("processing"));
//! assert_eq!(intervals[1].start, Duration::from_secs(1));
//! assert_eq!(intervals[1].length, Duration::from_secs(1));
//! assert_eq!(intervals[1].histogram.len(), 1);
//! ```

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry, LogIteratorError};
use hdrhistogram::serialization::{
    DeserializeError, Deserializer, Serializer, V2DeflateSerializeError, V2DeflateSerializer,
};
use hdrhistogram::Histogram;

use crate::latency::Latencies;

/// What writing or reading an interval log can fail with.
#[derive(Debug, thiserror::Error)]
pub enum HlogError {
    /// The writer failed.
    #[error("writing the interval log: {0}")]
    Io(#[from] io::Error),
    /// A tag with `,`, space, `\r` or `\n`, which would not parse back.
    #[error("interval log tag {0:?} contains ',', ' ', '\\r' or '\\n'")]
    BadTag(String),
    /// A base time before the Unix epoch, which the log's header cannot hold.
    #[error("interval log base time is before the Unix epoch")]
    BaseTimeBeforeEpoch,
    /// A histogram could not be encoded.
    #[error("encoding an interval histogram: {0}")]
    Encode(#[from] V2DeflateSerializeError),
    /// A line that is neither a comment, a StartTime or BaseTime header, the legend nor an
    /// interval.
    #[error("interval log does not parse at byte {offset}")]
    Parse {
        /// Where the line starts in the log.
        offset: usize,
    },
    /// An interval whose histogram is not base64.
    #[error("interval at {at:?}: histogram is not valid base64")]
    Base64 {
        /// The interval's timestamp as logged.
        at: Duration,
    },
    /// An interval whose histogram does not decode.
    #[error("interval at {at:?}: histogram does not decode: {source}")]
    Decode {
        /// The interval's timestamp as logged.
        at: Duration,
        /// Why.
        source: DeserializeError,
    },
}

/// The log format version Java's writer (with tag support) announces.
const LOG_FORMAT_VERSION: &str = "1.3";

/// Histogram values are µs; dividing the logged max by this makes it milliseconds, the unit
/// HdrHistogram's tools label their latency axes with.
const MAX_VALUE_DIVISOR: f64 = 1_000.0;

/// The legend line Java's `HistogramLogWriter.outputLegend` writes.
const LEGEND: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"";

/// One year, the threshold of Java's `HistogramLogReader` for telling interval timestamps
/// relative to a StartTime from absolute ones when the log has no BaseTime.
const YEAR: Duration = Duration::from_secs(365 * 24 * 3_600);

/// Latency histograms cut into fixed-length intervals of wall-clock time since a start instant.
#[derive(Clone, Debug)]
pub struct IntervalHistograms {
    length: Duration,
    /// By interval index (`at / length`), so that an out-of-order `at` still lands in its own
    /// interval.
    intervals: BTreeMap<u64, Latencies>,
}

impl IntervalHistograms {
    /// Intervals of `length` (e.g. 1 s).
    ///
    /// Logs hold timestamps in milliseconds, so `length` is rounded up to whole milliseconds
    /// (at least 1 ms); otherwise interval starts would be logged rounded and could collide.
    pub fn new(length: Duration) -> Self {
        let millis = length
            .as_nanos()
            .div_ceil(1_000_000)
            .clamp(1, u64::MAX as u128) as u64;
        IntervalHistograms {
            length: Duration::from_millis(millis),
            intervals: BTreeMap::new(),
        }
    }

    /// Records `latency` observed `at` (time since the start of the measurement), in the
    /// interval containing `at`, whatever order the calls come in. Latencies are kept like
    /// [`Latencies::record`] keeps them: whole µs, 0 as 1 µs, above 10 minutes as 10 minutes.
    pub fn record(&mut self, at: Duration, latency: Duration) {
        let index = (at.as_nanos() / self.length.as_nanos()).min(u64::MAX as u128) as u64;
        self.intervals.entry(index).or_default().record(latency);
    }

    /// The intervals recorded so far, in start order: (start since the base, length,
    /// histogram in µs). Intervals in which nothing was recorded are left out.
    pub fn intervals(&self) -> impl Iterator<Item = (Duration, Duration, &Histogram<u64>)> {
        self.intervals.iter().map(|(&index, latencies)| {
            (
                nanos_to_duration(index as u128 * self.length.as_nanos()),
                self.length,
                latencies.histogram(),
            )
        })
    }

    /// Total count over every interval.
    pub fn count(&self) -> u64 {
        self.intervals.values().map(Latencies::count).sum()
    }
}

/// One interval read from a log.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedInterval {
    /// The interval's tag; `None` when the line has none.
    pub tag: Option<String>,
    /// Start of the interval since the log's BaseTime (see [`read_interval_log`]).
    pub start: Duration,
    /// Length of the interval.
    pub length: Duration,
    /// The values recorded in the interval (µs in logs written by [`write_interval_log`]).
    pub histogram: Histogram<u64>,
}

/// Writes an interval log: `comments` (one `#` line per line of each), the
/// `#[Histogram log format version 1.3]` comment, `#[StartTime: …]` and `#[BaseTime: …]` (both
/// `base_time`), `#[MaxValueDivisor: 1000.000]` (values are µs; the divisor makes
/// `Interval_Max` read in ms as HdrHistogram tools expect), the legend line Java writes, then
/// every interval of every `(tag, histograms)` pair, merged in start order (ties in the order
/// of `logs`), each with its tag and a V2 deflate-compressed histogram like Java's default.
///
/// An empty tag writes untagged lines. Tags with `,`, space, `\r` or `\n` cannot be parsed
/// back and are rejected ([`HlogError::BadTag`]), as is a `base_time` before the Unix epoch.
pub fn write_interval_log<W: Write>(
    mut out: W,
    base_time: SystemTime,
    comments: &[&str],
    logs: &[(&str, &IntervalHistograms)],
) -> Result<(), HlogError> {
    for (tag, _) in logs {
        if tag.contains([',', ' ', '\r', '\n']) {
            return Err(HlogError::BadTag((*tag).to_owned()));
        }
    }
    let base = base_time
        .duration_since(UNIX_EPOCH)
        .map_err(|_| HlogError::BaseTimeBeforeEpoch)?;

    // Java's writer buffers through a PrintStream too; one line per write call would make an
    // unbuffered file writer issue thousands of syscalls.
    let mut text = String::new();
    for comment in comments {
        for line in comment.split('\n') {
            text.push('#');
            text.push_str(line.trim_end_matches('\r'));
            text.push('\n');
        }
    }
    text.push_str(&format!(
        "#[Histogram log format version {LOG_FORMAT_VERSION}]\n"
    ));
    let base = seconds(base);
    text.push_str(&format!("#[StartTime: {base} (seconds since epoch)]\n"));
    text.push_str(&format!("#[BaseTime: {base} (seconds since epoch)]\n"));
    text.push_str(&format!("#[MaxValueDivisor: {MAX_VALUE_DIVISOR:.3}]\n"));
    text.push_str(LEGEND);
    text.push('\n');
    out.write_all(text.as_bytes())?;

    let mut intervals: Vec<(Duration, &str, Duration, &Histogram<u64>)> = logs
        .iter()
        .flat_map(|(tag, log)| {
            log.intervals()
                .map(move |(start, length, histogram)| (start, *tag, length, histogram))
        })
        .collect();
    // Stable, so equal starts keep the order of `logs`.
    intervals.sort_by_key(|(start, ..)| *start);

    let mut serializer = V2DeflateSerializer::new();
    let mut compressed = Vec::new();
    for (start, tag, length, histogram) in intervals {
        compressed.clear();
        serializer.serialize(histogram, &mut compressed)?;
        text.clear();
        if !tag.is_empty() {
            text.push_str(&format!("Tag={tag},"));
        }
        text.push_str(&format!(
            "{},{},{:.3},",
            seconds(start),
            seconds(length),
            histogram.max() as f64 / MAX_VALUE_DIVISOR
        ));
        BASE64.encode_string(&compressed, &mut text);
        text.push('\n');
        out.write_all(text.as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

/// Reads back an interval log written by [`write_interval_log`] (or Java): every interval as
/// (tag, start since base, length, histogram), in the order of the log.
///
/// Starts are relative to the latest `#[BaseTime: …]` before the interval. Without one, they are
/// relative to the latest `#[StartTime: …]` if the logged timestamps are more than a year
/// smaller than it (Java's rule for relative timestamps), else the StartTime is subtracted from
/// them (absolute timestamps, as Java writes them by default); a log with neither gives seconds
/// since the epoch. A line that does not parse or a histogram that does not decode is an
/// error.
pub fn read_interval_log(bytes: &[u8]) -> Result<Vec<LoggedInterval>, HlogError> {
    // `IntervalLogIterator` skips `#` comments and the `"StartTimestamp",…` legend itself
    // (its `ignored_line` parser), so Java's and our headers need no handling here.
    let mut base_time: Option<Duration> = None;
    let mut start_time: Option<Duration> = None;
    let mut deserializer = Deserializer::new();
    let mut intervals = Vec::new();
    for entry in IntervalLogIterator::new(bytes) {
        let entry =
            entry.map_err(|LogIteratorError::ParseError { offset }| HlogError::Parse { offset })?;
        match entry {
            LogEntry::StartTime(t) => start_time = Some(t),
            LogEntry::BaseTime(t) => base_time = Some(t),
            LogEntry::Interval(interval) => {
                let logged = interval.start_timestamp();
                let start = match (base_time, start_time) {
                    (Some(_), _) | (None, None) => logged,
                    (None, Some(st)) if logged.saturating_add(YEAR) < st => logged,
                    (None, Some(st)) => logged.saturating_sub(st),
                };
                let compressed = BASE64
                    .decode(interval.encoded_histogram())
                    .map_err(|_| HlogError::Base64 { at: logged })?;
                let histogram = deserializer
                    .deserialize(&mut compressed.as_slice())
                    .map_err(|source| HlogError::Decode { at: logged, source })?;
                intervals.push(LoggedInterval {
                    tag: interval.tag().map(|t| t.as_str().to_owned()),
                    start,
                    length: interval.duration(),
                    histogram,
                });
            }
        }
    }
    Ok(intervals)
}

fn nanos_to_duration(nanos: u128) -> Duration {
    let secs = (nanos / 1_000_000_000).min(u64::MAX as u128) as u64;
    Duration::new(secs, (nanos % 1_000_000_000) as u32)
}

/// `d` as seconds with 3 decimals, rounded to the nearest millisecond; integer arithmetic so
/// that epoch times (10 digits before the point) print exactly.
fn seconds(d: Duration) -> String {
    let millis = (d.as_nanos() + 500_000) / 1_000_000;
    format!("{}.{:03}", millis / 1_000, millis % 1_000)
}

/// Standard base64: padded when written (as Java's `printBase64Binary` writes), padded or not
/// when read.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[cfg(test)]
mod tests {
    use super::*;

    use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

    fn base() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
    }

    fn write(comments: &[&str], logs: &[(&str, &IntervalHistograms)]) -> String {
        let mut bytes = Vec::new();
        write_interval_log(&mut bytes, base(), comments, logs).expect("write to a Vec");
        String::from_utf8(bytes).expect("the log is UTF-8")
    }

    fn within_3_digits(got: u64, want: u64) -> bool {
        (got as f64 - want as f64).abs() <= want as f64 * 0.001 + 1.0
    }

    /// Intervals recorded out of order, including one recorded after later ones, come back
    /// with their tag, start, length, count and max.
    #[test]
    fn intervals_round_trip_through_a_log() {
        let second = Duration::from_secs(1);
        let mut log = IntervalHistograms::new(second);
        let ms = Duration::from_millis;
        log.record(ms(10), ms(1));
        log.record(ms(999), ms(2));
        log.record(ms(2_500), ms(7));
        log.record(ms(2_600), Duration::from_micros(123_456));
        log.record(ms(2_700), ms(3));
        // Back to the second interval after the third started.
        log.record(ms(1_000), ms(40));
        log.record(ms(9_000), Duration::ZERO);
        assert_eq!(log.count(), 7);

        let intervals =
            read_interval_log(write(&[], &[("processing", &log)]).as_bytes()).expect("read back");
        let want: [(u64, u64, u64); 4] =
            [(0, 2, 2_000), (1, 1, 40_000), (2, 3, 123_456), (9, 1, 1)];
        assert_eq!(intervals.len(), want.len(), "{intervals:?}");
        for (interval, (start_s, count, max_us)) in intervals.iter().zip(want) {
            assert_eq!(interval.tag.as_deref(), Some("processing"));
            assert_eq!(interval.start, Duration::from_secs(start_s));
            assert_eq!(interval.length, second);
            assert_eq!(interval.histogram.len(), count, "interval at {start_s} s");
            assert!(
                within_3_digits(interval.histogram.max(), max_us),
                "interval at {start_s} s: max {} µs, want {max_us}",
                interval.histogram.max()
            );
        }
    }

    /// Two tags' intervals are merged by start, ties keeping the order of the arguments.
    #[test]
    fn two_tags_are_merged_in_start_order() {
        let length = Duration::from_millis(500);
        let mut a = IntervalHistograms::new(length);
        let mut b = IntervalHistograms::new(length);
        for at_ms in [0, 1_000, 2_500] {
            a.record(Duration::from_millis(at_ms), Duration::from_millis(1));
        }
        for at_ms in [600, 1_000, 3_000] {
            b.record(Duration::from_millis(at_ms), Duration::from_millis(2));
        }
        let intervals =
            read_interval_log(write(&[], &[("a", &a), ("b", &b)]).as_bytes()).expect("read back");
        let got: Vec<(u64, &str)> = intervals
            .iter()
            .map(|i| (i.start.as_millis() as u64, i.tag.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            got,
            [
                (0, "a"),
                (500, "b"),
                (1_000, "a"),
                (1_000, "b"),
                (2_500, "a"),
                (3_000, "b")
            ]
        );
        assert!(intervals.iter().all(|i| i.length == length));
    }

    #[test]
    fn an_empty_log_is_valid_and_has_no_intervals() {
        let empty = IntervalHistograms::new(Duration::from_secs(1));
        assert_eq!(empty.count(), 0);
        let text = write(&["nothing happened"], &[("processing", &empty)]);
        assert!(text.contains(LEGEND), "{text}");
        let entries: Vec<_> = IntervalLogIterator::new(text.as_bytes()).collect();
        assert_eq!(entries.len(), 2, "StartTime and BaseTime only: {entries:?}");
        assert!(entries.iter().all(Result::is_ok), "{entries:?}");
        assert!(read_interval_log(text.as_bytes())
            .expect("read back")
            .is_empty());
    }

    /// The header is Java's: comments, format version, StartTime, BaseTime, then the legend,
    /// and the crate's parser sees both times as the base time.
    #[test]
    fn the_header_has_the_times_and_the_legend() {
        let mut log = IntervalHistograms::new(Duration::from_secs(1));
        // 1 ms is exact in the histogram, so the max column reads exactly 1 ms.
        log.record(Duration::ZERO, Duration::from_millis(1));
        let text = write(&["first\nsecond"], &[("p", &log)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[..7],
            [
                "#first",
                "#second",
                "#[Histogram log format version 1.3]",
                "#[StartTime: 1700000000.123 (seconds since epoch)]",
                "#[BaseTime: 1700000000.123 (seconds since epoch)]",
                "#[MaxValueDivisor: 1000.000]",
                LEGEND,
            ]
        );
        assert!(lines[7].starts_with("Tag=p,0.000,1.000,1.000,"), "{text}");
        let times: Vec<LogEntry> = IntervalLogIterator::new(text.as_bytes())
            .take(2)
            .collect::<Result<_, _>>()
            .expect("parses");
        let at = Duration::from_millis(1_700_000_000_123);
        assert_eq!(times, [LogEntry::StartTime(at), LogEntry::BaseTime(at)]);
    }

    /// An interval line is byte for byte what the hdrhistogram crate's own writer (a port of
    /// Java's) writes for the same histogram with the same divisor.
    #[test]
    fn interval_lines_match_the_reference_writer() {
        let mut log = IntervalHistograms::new(Duration::from_secs(1));
        for us in [1u64, 17, 250, 3_000, 45_678, 1_000_000] {
            log.record(Duration::from_millis(1_500), Duration::from_micros(us));
        }
        let (start, length, histogram) = log.intervals().next().expect("one interval");
        let mut reference = Vec::new();
        let mut serializer = V2DeflateSerializer::new();
        IntervalLogWriterBuilder::new()
            .with_max_value_divisor(MAX_VALUE_DIVISOR)
            .begin_log_with(&mut reference, &mut serializer)
            .expect("header")
            .write_histogram(histogram, start, length, Tag::new("t"))
            .expect("interval");
        let reference = String::from_utf8(reference).expect("UTF-8");
        let ours = write(&[], &[("t", &log)]);
        let line = |text: &str| {
            text.lines()
                .find(|l| l.starts_with("Tag="))
                .map(str::to_owned)
        };
        assert_eq!(line(&ours), line(&reference));
        assert!(line(&ours).is_some());
    }

    #[test]
    fn untagged_lines_and_bad_tags() {
        let mut log = IntervalHistograms::new(Duration::from_secs(1));
        log.record(Duration::ZERO, Duration::from_millis(1));
        let intervals = read_interval_log(write(&[], &[("", &log)]).as_bytes()).expect("read");
        assert_eq!(intervals.len(), 1);
        assert_eq!(intervals[0].tag, None);
        for bad in ["a,b", "a b", "a\nb"] {
            let err =
                write_interval_log(Vec::new(), base(), &[], &[(bad, &log)]).expect_err("rejected");
            assert!(
                matches!(&err, HlogError::BadTag(tag) if tag == bad),
                "{err}"
            );
        }
    }

    /// A Java log without BaseTime: absolute timestamps are made relative to StartTime, and
    /// timestamps far below StartTime are taken as already relative.
    #[test]
    fn java_logs_without_base_time() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 1_000_000, 3).expect("bounds");
        h.record(42).expect("in range");
        let mut compressed = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&h, &mut compressed)
            .expect("serialize");
        let mut encoded = String::new();
        BASE64.encode_string(&compressed, &mut encoded);
        let text = format!(
            "#[Logged with jHiccup]\n\
             #[Histogram log format version 1.3]\n\
             #[StartTime: 1700000000.000 (seconds since epoch), Tue Nov 14 22:13:20 UTC 2023]\n\
             {LEGEND}\n\
             1700000002.500,1.000,0.042,{encoded}\n\
             3.000,1.000,0.042,{encoded}\n"
        );
        let intervals = read_interval_log(text.as_bytes()).expect("read");
        let starts: Vec<Duration> = intervals.iter().map(|i| i.start).collect();
        assert_eq!(
            starts,
            [Duration::from_millis(2_500), Duration::from_secs(3)]
        );
        assert!(intervals
            .iter()
            .all(|i| i.histogram == h && i.tag.is_none()));
    }

    #[test]
    fn garbage_is_an_error_of_its_kind() {
        let read = |text: &str| read_interval_log(text.as_bytes()).expect_err(text);
        let err = read("#comment\nnot a log line\n");
        assert!(matches!(err, HlogError::Parse { offset: 9 }), "{err}");
        let err = read("0.000,1.000,1.000,!!!notbase64\n");
        assert!(matches!(err, HlogError::Base64 { .. }), "{err}");
        let err = read("2.000,1.000,1.000,AAAA\n");
        assert!(
            matches!(err, HlogError::Decode { at, .. } if at == Duration::from_secs(2)),
            "{err}"
        );
    }

    /// Callers box it into `anyhow::Error`, which needs these bounds.
    #[test]
    fn the_error_is_send_sync_and_static() {
        fn bounds<E: std::error::Error + Send + Sync + 'static>() {}
        bounds::<HlogError>();
    }

    /// The written form is Java's (padded); reading also takes it unpadded.
    #[test]
    fn base64_is_padded_when_written_and_optional_when_read() {
        let mut text = String::new();
        BASE64.encode_string(b"Ma", &mut text);
        assert_eq!(text, "TWE=");
        assert_eq!(BASE64.decode("TWE").ok(), Some(b"Ma".to_vec()));
        assert!(BASE64.decode("T").is_err());
    }

    #[test]
    fn lengths_round_up_to_whole_milliseconds() {
        let mut log = IntervalHistograms::new(Duration::from_micros(1_500));
        log.record(Duration::from_millis(3), Duration::from_millis(1));
        let starts: Vec<(Duration, Duration)> = log.intervals().map(|(s, l, _)| (s, l)).collect();
        assert_eq!(
            starts,
            [(Duration::from_millis(2), Duration::from_millis(2))]
        );
        let zero = IntervalHistograms::new(Duration::ZERO);
        assert_eq!(zero.intervals().count(), 0);
    }
}
