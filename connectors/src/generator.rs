//! The built-in, seeded traffic generator: realistic order, delivery and sensor events (SPEC §1)
//! with bounded disorder, rare exact duplicates and injected incidents.
//!
//! # Traffic model
//!
//! Per warehouse (`wh-01`, `wh-02`, ...):
//!
//! * **Orders** arrive as a Poisson process whose rate follows a daily rhythm by hour of day
//!   (UTC) of event time: quiet at night (about 0.2 × the mean around 03:00), peaks late morning
//!   (about 1.9 × at 11:00) and evening (about 1.6 × at 19:30). The daily mean is
//!   [`GeneratorConfig::orders_per_minute`]. SKU popularity is skewed (a few SKUs sell most),
//!   each SKU has a fixed price, `qty` is mostly 1 or 2, `amount` = price × qty.
//! * **Deliveries**: every order goes through `picked` (2 to 12 minutes after the order),
//!   `in_transit` (5 to 25 minutes later) and `delivered`. The order-to-delivered duration is
//!   log-normal (median [`GeneratorConfig::delivery_median_ms`], 90 minutes by default) times the
//!   carrier's duration factor (`c-1` is the fastest, `c-4` the slowest), and never more than
//!   7 days ([`MAX_DELIVERY_MS`]), so every `delivered` event joins its order (SPEC §3.1).
//! * **Sensors**: two temperature sensors (about 18–24 °C, slow drift plus a daily swing) and one
//!   humidity sensor (about 40–60 %) per warehouse, one reading each every
//!   [`GeneratorConfig::sensor_interval_ms`] (10 s) of event time.
//!
//! With the defaults, one warehouse produces per simulated minute, averaged over a day: 60
//! orders, 180 delivery events (60 of each status, once deliveries have ramped up, about 3 hours
//! after the start), 12 temperature and 6 humidity readings, plus 0.2 % duplicates; that is about
//! 258 events per warehouse-minute and 2,070 per minute for the default 8 warehouses.
//!
//! # Time and disorder
//!
//! Each event is emitted at `emit_ms = ts + uniform[0, jitter_ms)` and the streams yield events in
//! non-decreasing `emit_ms` order. Since [`GeneratorConfig::jitter_ms`] must be below
//! [`MAX_JITTER_MS`] (the engine's default disorder bound, SPEC §2), no generated event is ever
//! late. With probability [`GeneratorConfig::duplicate_rate`] an event is emitted a second time,
//! field for field equal, later but still before `ts + jitter_ms`.
//!
//! # Incidents
//!
//! An [`Incident`] makes one warehouse misbehave during `[start_ms, end_ms)` of event time:
//!
//! * [`IncidentKind::SlowDeliveries`]: for an order of that warehouse with normal duration `d0`,
//!   if `ts + factor × d0` falls inside the incident the delivery takes `factor × d0`; otherwise,
//!   if `ts + d0` falls inside it, the parcel is stuck until the incident clears and is delivered
//!   within 10 minutes after `end_ms`. So every delivery observed during the incident is a slow
//!   one, the windowed mean duration jumps by about `factor`, and the SPEC §3
//!   `delivery_duration_z` alert fires: with factor 3, z is about 8 to 35 in the first window
//!   (night to evening traffic), and the first two or three windows alert; later windows of the
//!   incident are compared with a history that already holds slow windows, and stay below 3.
//! * [`IncidentKind::TemperatureExcursion`]: `delta_c` is added to that warehouse's temperature
//!   readings.
//! * [`IncidentKind::DemandSurge`]: the warehouse's order rate is multiplied by `factor` (a flash
//!   sale, or a drop below 1: a shop outage). Its deliveries follow the usual durations, so it
//!   moves order counts only; LOGI-2's `demand_forecast_deviation` alert is there to catch it.
//!
//! [`default_incidents`] builds the schedule that [`GeneratorConfig::default`] uses.
//!
//! # Determinism and scale-out
//!
//! Each warehouse draws from its own random stream (ChaCha8 seeded with
//! [`GeneratorConfig::seed`], stream number = warehouse index), so the events of a warehouse do
//! not depend on which other warehouses are generated alongside it: the union of
//! [`Generator::for_worker`] over all workers is exactly the output of all warehouses together.
//! Order ids carry the warehouse number (`o-03-00000123`), so they are unique across warehouses.
//!
//! Events are generated lazily as simulated time advances. A stream keeps only the future steps
//! of orders in flight (a few compact records per order), so memory stays bounded on an endless
//! run: at most about 15,000 scheduled records per warehouse at the default rate.
//!
//! # Examples
//!
//! ```
//! use tidewatch_connectors::generator::{write_jsonl, Generator, GeneratorConfig};
//! use tidewatch_operators::event::Event;
//!
//! let config = GeneratorConfig { seed: 7, ..GeneratorConfig::default() };
//!
//! // All warehouses merged, in emit order; the stream is endless, so take what you need.
//! let mut generator = Generator::new(config.clone(), |_warehouse| true).unwrap();
//! let first_emit = generator.peek_emit_ms().unwrap();
//! let events: Vec<(u64, Event)> = generator.by_ref().take(1000).collect();
//! assert_eq!(events[0].0, first_emit);
//! assert!(events.windows(2).all(|pair| pair[0].0 <= pair[1].0));
//! assert!(events.iter().all(|(emit_ms, event)| event.ts() <= *emit_ms));
//!
//! // Worker 1 of 3 generates warehouses 1, 4 and 7 (wh-02, wh-05, wh-08).
//! let worker = Generator::for_worker(config.clone(), 1, 3).unwrap();
//! assert_eq!(worker.warehouse_indices(), &[1, 4, 7]);
//!
//! // The same traffic as JSON Lines, e.g. to make a benchmark input file.
//! let mut file = Vec::new();
//! write_jsonl(&config, 1000, &mut file).unwrap();
//! assert_eq!(file.iter().filter(|&&byte| byte == b'\n').count(), 1000);
//! ```

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use tidewatch_operators::event::{Delivery, DeliveryStatus, Event, Millis, Order, Sensor};
use tidewatch_operators::event::{FiniteF64, MAX_TS};

/// Default event time of the first event: 1764288000000 = 2025-11-28T00:00:00Z (the timestamp
/// of the SPEC §1 examples).
pub const DEFAULT_START_MS: Millis = 1_764_288_000_000;

/// Exclusive upper bound of [`GeneratorConfig::jitter_ms`]: the engine's default disorder bound
/// (SPEC §2), so that no generated event is late.
pub const MAX_JITTER_MS: Millis = 5_000;

/// Longest order-to-delivered duration the generator produces: 7 days, the SPEC §3.1 join bound.
pub const MAX_DELIVERY_MS: Millis = 604_800_000;

const MINUTE_MS: Millis = 60_000;
const HOUR_MS: Millis = 60 * MINUTE_MS;
const DAY_MS: Millis = 24 * HOUR_MS;
const MINUTES_PER_DAY: usize = 1440;
/// Shortest normal order-to-delivered duration; keeps the lifecycle steps strictly ordered.
const MIN_DELIVERY_MS: Millis = 10 * MINUTE_MS;
/// A parcel stuck by a slow-deliveries incident is delivered within this long after it ends.
const BACKLOG_RELEASE_MS: Millis = 10 * MINUTE_MS;
/// Width of a calendar bucket of future events (by `ts`).
const BUCKET_MS: Millis = 10_000;
/// Number of buckets in the calendar ring (about 5.7 hours, 48 KiB of empty vectors per
/// warehouse); later events (about 1 % of the default traffic) wait in an overflow map.
const RING_BUCKETS: Millis = 2048;

/// Name of the warehouse with index `index` (0-based): `wh-01`, `wh-02`, ...
pub fn warehouse_name(index: usize) -> String {
    format!("wh-{:02}", index + 1)
}

/// Settings of the generator. [`Default`] gives the embedded default traffic of `tidewatch run`.
///
/// Deserializes from a partial object (missing fields take their defaults; unknown fields are
/// rejected). Check a hand-made config with [`GeneratorConfig::validate`]; the constructors of
/// [`WarehouseStream`] and [`Generator`] do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeneratorConfig {
    /// Seed of every random choice. Same seed, same events.
    pub seed: u64,
    /// Number of warehouses, named `wh-01`, `wh-02`, ... (at least 1).
    pub warehouses: usize,
    /// Event time at which the simulation starts (no event has a smaller `ts`).
    pub start_ms: Millis,
    /// Mean number of orders per minute per warehouse, over a day (≥ 0).
    pub orders_per_minute: f64,
    /// Strength of the daily rhythm of orders in `[0, 1]`: 0 is a constant rate, 1 the full
    /// night-quiet, late-morning and evening-peak profile.
    pub daily_rhythm: f64,
    /// Carriers, chosen per order in proportion to their share (at least one).
    pub carriers: Vec<CarrierProfile>,
    /// Number of distinct SKUs, named `sku-00001`, ... (at least 1).
    pub skus: u32,
    /// Median order-to-delivered duration before the carrier factor.
    pub delivery_median_ms: Millis,
    /// Shape of the log-normal delivery duration: standard deviation of its logarithm.
    pub delivery_sigma: f64,
    /// Sensor reading period, per sensor.
    pub sensor_interval_ms: Millis,
    /// Bounded disorder: each event is emitted at `ts + uniform[0, jitter_ms)`. Must be below
    /// [`MAX_JITTER_MS`]; 0 emits every event at its `ts`.
    pub jitter_ms: Millis,
    /// Probability that an event is emitted a second time (an exact duplicate), in `[0, 1)`.
    pub duplicate_rate: f64,
    /// Injected incidents.
    pub incidents: Vec<Incident>,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            seed: 42,
            warehouses: 8,
            start_ms: DEFAULT_START_MS,
            orders_per_minute: 60.0,
            daily_rhythm: 1.0,
            carriers: CarrierProfile::defaults(),
            skus: 5_000,
            delivery_median_ms: 90 * MINUTE_MS,
            delivery_sigma: 0.5,
            sensor_interval_ms: 10_000,
            jitter_ms: 2_000,
            duplicate_rate: 0.002,
            incidents: default_incidents(DEFAULT_START_MS, 8, 7 * DAY_MS),
        }
    }
}

impl GeneratorConfig {
    /// The default config moved to start at `start_ms`, with the default incident schedule
    /// (see [`default_incidents`]) moved along.
    pub fn starting_at(start_ms: Millis) -> Self {
        GeneratorConfig {
            start_ms,
            ..GeneratorConfig::default()
        }
        .with_default_incidents()
    }

    /// Replaces [`GeneratorConfig::incidents`] by the default schedule for this config's
    /// `start_ms` and `warehouses` (7 days of incidents). Use it after changing either.
    pub fn with_default_incidents(mut self) -> Self {
        self.incidents = default_incidents(self.start_ms, self.warehouses, 7 * DAY_MS);
        self
    }

    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), GeneratorConfigError> {
        fn invalid(field: &'static str, reason: String) -> Result<(), GeneratorConfigError> {
            Err(GeneratorConfigError::Invalid { field, reason })
        }
        if self.warehouses == 0 {
            return invalid("warehouses", "must be at least 1".into());
        }
        if self.start_ms > MAX_TS / 2 {
            return invalid("start_ms", format!("{} is beyond 2^52 ms", self.start_ms));
        }
        if !(self.orders_per_minute.is_finite() && self.orders_per_minute >= 0.0) {
            let reason = format!("{} is not a finite number >= 0", self.orders_per_minute);
            return invalid("orders_per_minute", reason);
        }
        if !(0.0..=1.0).contains(&self.daily_rhythm) {
            return invalid(
                "daily_rhythm",
                format!("{} is not in [0, 1]", self.daily_rhythm),
            );
        }
        if self.carriers.is_empty() || self.carriers.len() > usize::from(u16::MAX) {
            return invalid("carriers", "between 1 and 65535 carriers are needed".into());
        }
        for carrier in &self.carriers {
            if carrier.name.is_empty() {
                return invalid("carriers", "a carrier has an empty name".into());
            }
            let positive = |x: f64| x.is_finite() && x > 0.0;
            if !positive(carrier.share) || !positive(carrier.duration_factor) {
                let reason = format!(
                    "carrier {:?}: share {} and duration_factor {} must be finite and > 0",
                    carrier.name, carrier.share, carrier.duration_factor
                );
                return invalid("carriers", reason);
            }
        }
        if self.skus == 0 {
            return invalid("skus", "must be at least 1".into());
        }
        if !(MIN_DELIVERY_MS..=DAY_MS).contains(&self.delivery_median_ms) {
            let reason = format!(
                "{} is not between 10 minutes and 1 day",
                self.delivery_median_ms
            );
            return invalid("delivery_median_ms", reason);
        }
        if !(0.0..=2.0).contains(&self.delivery_sigma) {
            let reason = format!("{} is not in [0, 2]", self.delivery_sigma);
            return invalid("delivery_sigma", reason);
        }
        if self.sensor_interval_ms == 0 {
            return invalid("sensor_interval_ms", "must be at least 1".into());
        }
        if self.jitter_ms >= MAX_JITTER_MS {
            return Err(GeneratorConfigError::JitterTooLarge {
                jitter_ms: self.jitter_ms,
                limit: MAX_JITTER_MS,
            });
        }
        if !(0.0..1.0).contains(&self.duplicate_rate) {
            let reason = format!("{} is not in [0, 1)", self.duplicate_rate);
            return invalid("duplicate_rate", reason);
        }
        for (index, incident) in self.incidents.iter().enumerate() {
            let problem = if incident.warehouse >= self.warehouses {
                Some(format!(
                    "warehouse index {} but there are {} warehouses (after changing `warehouses` \
                     or `start_ms`, rebuild the schedule with `with_default_incidents`)",
                    incident.warehouse, self.warehouses
                ))
            } else if incident.start_ms >= incident.end_ms {
                Some(format!(
                    "start_ms {} is not before end_ms {}",
                    incident.start_ms, incident.end_ms
                ))
            } else {
                match incident.kind {
                    IncidentKind::SlowDeliveries { factor } if !(1.0..=100.0).contains(&factor) => {
                        Some(format!(
                            "slow-deliveries factor {factor} is not in [1, 100]"
                        ))
                    }
                    IncidentKind::TemperatureExcursion { delta_c } if !delta_c.is_finite() => {
                        Some(format!("temperature delta {delta_c} is not finite"))
                    }
                    IncidentKind::DemandSurge { factor } if !(0.0..=100.0).contains(&factor) => {
                        Some(format!("demand-surge factor {factor} is not in [0, 100]"))
                    }
                    _ => None,
                }
            };
            if let Some(reason) = problem {
                return Err(GeneratorConfigError::InvalidIncident { index, reason });
            }
        }
        Ok(())
    }
}

/// A carrier: its name on `delivery` events, how often it is chosen, and how fast it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarrierProfile {
    /// Name on `delivery` events, e.g. `c-1`.
    pub name: String,
    /// Relative frequency with which orders go to this carrier (> 0; need not sum to 1).
    pub share: f64,
    /// Multiplier of the delivery duration (> 0): below 1 is faster than the median.
    pub duration_factor: f64,
}

impl CarrierProfile {
    /// The default carriers `c-1` (fast, 35 % of orders) to `c-4` (slow, 15 %); their
    /// share-weighted geometric mean duration factor is 0.99, so the overall median stays at
    /// [`GeneratorConfig::delivery_median_ms`].
    pub fn defaults() -> Vec<CarrierProfile> {
        [(0.35, 0.8), (0.30, 1.0), (0.20, 1.1), (0.15, 1.4)]
            .iter()
            .enumerate()
            .map(|(index, &(share, duration_factor))| CarrierProfile {
                name: format!("c-{}", index + 1),
                share,
                duration_factor,
            })
            .collect()
    }
}

/// A period of misbehaviour of one warehouse, in event time `[start_ms, end_ms)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    /// Index (0-based) of the warehouse: 0 is `wh-01`.
    pub warehouse: usize,
    /// What goes wrong.
    pub kind: IncidentKind,
    /// First event time of the incident.
    pub start_ms: Millis,
    /// End of the incident (exclusive).
    pub end_ms: Millis,
}

impl Incident {
    fn contains(&self, ts: Millis) -> bool {
        self.start_ms <= ts && ts < self.end_ms
    }
}

/// What goes wrong during an [`Incident`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum IncidentKind {
    /// Deliveries observed during the incident take `factor` times their normal duration
    /// (`factor` in `[1, 100]`); parcels that would normally have arrived during it arrive just
    /// after it ends. See the module documentation. Unchecked assumption: the incident is
    /// shorter than 7 days; no parcel is delivered more than 7 days after its order, so a longer
    /// one lets some normal deliveries through.
    SlowDeliveries {
        /// Multiplier of the normal duration.
        factor: f64,
    },
    /// Temperature readings are `delta_c` degrees Celsius off.
    TemperatureExcursion {
        /// Added to every temperature reading of the warehouse during the incident.
        delta_c: f64,
    },
    /// Orders arrive at `factor` times the usual rate (`factor` in `[0, 100]`).
    DemandSurge {
        /// Multiplier of the order rate.
        factor: f64,
    },
}

/// The default incident schedule: from `anchor_ms + 3 h` (when delivery traffic has ramped up)
/// until `anchor_ms + horizon_ms`, one incident every 90 minutes, alternating between
/// slow deliveries (factor 3, 15 minutes) on warehouses 0, 3, 6, 1, 4, 7, 2, 5, ... (stepping by
/// 3 modulo `warehouses`) and temperature excursions (+6 °C, 20 minutes) on warehouses 1, 4, 7,
/// 2, ...; so with 8 warehouses each has one incident of each kind per day. Demand surges
/// (orders × 3, 15 minutes) come every 180 minutes from `anchor_ms + 3 h 45 min`, on warehouses
/// 2, 5, 0, 3, ... (0-based).
pub fn default_incidents(
    anchor_ms: Millis,
    warehouses: usize,
    horizon_ms: Millis,
) -> Vec<Incident> {
    let warehouses = warehouses.max(1);
    let mut incidents = Vec::new();
    let mut start_ms = anchor_ms + 3 * HOUR_MS;
    let mut number = 0usize;
    while start_ms < anchor_ms.saturating_add(horizon_ms) {
        let (kind, length_ms) = if number.is_multiple_of(2) {
            (IncidentKind::SlowDeliveries { factor: 3.0 }, 15 * MINUTE_MS)
        } else {
            (
                IncidentKind::TemperatureExcursion { delta_c: 6.0 },
                20 * MINUTE_MS,
            )
        };
        let offset = number % 2;
        incidents.push(Incident {
            warehouse: ((number / 2) * 3 + offset) % warehouses,
            kind,
            start_ms,
            end_ms: start_ms + length_ms,
        });
        number += 1;
        start_ms += 90 * MINUTE_MS;
    }
    // Demand surges come on a schedule of their own, between the others, so that the slow
    // deliveries and temperature excursions stay where they were before surges existed.
    let mut start_ms = anchor_ms + 3 * HOUR_MS + 45 * MINUTE_MS;
    let mut number = 0usize;
    while start_ms < anchor_ms.saturating_add(horizon_ms) {
        incidents.push(Incident {
            warehouse: (number * 3 + 2) % warehouses,
            kind: IncidentKind::DemandSurge { factor: 3.0 },
            start_ms,
            end_ms: start_ms + 15 * MINUTE_MS,
        });
        number += 1;
        start_ms += 180 * MINUTE_MS;
    }
    incidents
}

/// Why a [`GeneratorConfig`] (or a worker split) cannot be used. A user error: the config is
/// wrong, and retrying will not help.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum GeneratorConfigError {
    /// The jitter would make some generated events late.
    #[error(
        "generator jitter_ms = {jitter_ms} must be below {limit} (the default disorder bound), \
         or some events would be late"
    )]
    JitterTooLarge {
        /// The configured jitter.
        jitter_ms: Millis,
        /// The exclusive limit, [`MAX_JITTER_MS`].
        limit: Millis,
    },
    /// A field is out of range.
    #[error("generator {field} is invalid: {reason}")]
    Invalid {
        /// Name of the field (or argument).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// An incident is out of range.
    #[error("generator incident #{index} is invalid: {reason}")]
    InvalidIncident {
        /// Position of the incident in [`GeneratorConfig::incidents`].
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// Everything derived from the config that the streams of one generator share.
#[derive(Debug)]
struct Shared {
    config: GeneratorConfig,
    /// Order arrival rate per millisecond, by minute of the day (UTC).
    order_rate_per_ms: Vec<f64>,
    /// Cumulative carrier shares, normalized so that the last is 1.
    carrier_cumulative: Vec<f64>,
}

impl Shared {
    fn new(config: GeneratorConfig) -> Result<Arc<Shared>, GeneratorConfigError> {
        config.validate()?;
        let shape: Vec<f64> = (0..MINUTES_PER_DAY)
            .map(|minute| daily_order_shape(minute as f64 / 60.0))
            .collect();
        let mean_shape = shape.iter().sum::<f64>() / MINUTES_PER_DAY as f64;
        let strength = config.daily_rhythm;
        let order_rate_per_ms = shape
            .iter()
            .map(|s| {
                let relative = (1.0 - strength) + strength * s / mean_shape;
                config.orders_per_minute * relative / MINUTE_MS as f64
            })
            .collect();
        let total_share: f64 = config.carriers.iter().map(|c| c.share).sum();
        let mut running = 0.0;
        let mut carrier_cumulative: Vec<f64> = config
            .carriers
            .iter()
            .map(|c| {
                running += c.share;
                running / total_share
            })
            .collect();
        if let Some(last) = carrier_cumulative.last_mut() {
            *last = 1.0;
        }
        Ok(Arc::new(Shared {
            config,
            order_rate_per_ms,
            carrier_cumulative,
        }))
    }

    fn order_rate_per_ms(&self, ts: Millis) -> f64 {
        self.order_rate_per_ms[((ts / MINUTE_MS) % MINUTES_PER_DAY as Millis) as usize]
    }

    /// Price of a SKU in cents: fixed per (seed, SKU), log-uniform between 2 and 200.
    fn price_cents(&self, sku: u32) -> u64 {
        let hash = splitmix64(self.config.seed ^ 0x736b_7570_7269_6365 ^ u64::from(sku));
        let unit = (hash >> 11) as f64 / (1u64 << 53) as f64;
        (200.0 * (100.0f64.ln() * unit).exp()).round() as u64
    }
}

/// Unnormalized order rate by hour of day: a night floor plus late-morning, afternoon and
/// evening bumps.
fn daily_order_shape(hour: f64) -> f64 {
    let bump = |centre: f64, width: f64| {
        let distance = (hour - centre).abs();
        let distance = distance.min(24.0 - distance);
        (-(distance * distance) / (2.0 * width * width)).exp()
    };
    0.12 + bump(11.0, 2.2) + 0.85 * bump(19.5, 2.0) + 0.45 * bump(15.0, 2.5)
}

/// Daily component of a sensor reading: +1 at 15:00 UTC, -1 at 03:00.
fn daily_sensor_cycle(ts: Millis) -> f64 {
    let hour = (ts % DAY_MS) as f64 / HOUR_MS as f64;
    (std::f64::consts::TAU * (hour - 15.0) / 24.0).cos()
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box-Muller; 1 - u is in (0, 1], so the logarithm is finite.
    let u: f64 = rng.random();
    let v: f64 = rng.random();
    (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Appends `value` in decimal, left-padded with zeros to at least `width` digits (what
/// `format!("{value:0width$}")` gives, without the formatting machinery).
fn push_padded(out: &mut String, value: u64, width: usize) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = value;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for _ in (digits.len() - start)..width {
        out.push('0');
    }
    for &digit in &digits[start..] {
        out.push(char::from(digit));
    }
}

fn round_to_hundredths(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// What an event will be, without its strings: these sit in the schedule, sometimes for hours.
#[derive(Clone, Copy, Debug)]
enum Payload {
    Order {
        number: u64,
        sku: u32,
        qty: u32,
        amount_cents: u64,
    },
    Delivery {
        number: u64,
        carrier: u16,
        status: DeliveryStatus,
    },
    Sensor {
        sensor: u8,
        value: f64,
    },
}

/// One event waiting for its emit time. Ordered by (emit time, sequence number); the sequence
/// number is unique within a stream, so the order is total and deterministic.
#[derive(Debug)]
struct Scheduled {
    emit_ms: Millis,
    seq: u64,
    ts: Millis,
    payload: Payload,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.emit_ms, self.seq).cmp(&(other.emit_ms, other.seq))
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Metric {
    Temperature,
    Humidity,
}

/// How one kind of sensor behaves: a per-sensor base level, a daily swing, and an
/// Ornstein-Uhlenbeck drift (mean-reverting random walk), clamped to a plausible range.
#[derive(Debug)]
struct SensorModel {
    metric: Metric,
    /// Mean base level; each sensor's base is drawn uniformly within `base ± base_spread`.
    base: f64,
    base_spread: f64,
    /// Amplitude of the daily swing, at its maximum at 15:00 UTC (negative: minimum then).
    daily_amplitude: f64,
    /// Stationary standard deviation of the drift.
    drift_sd: f64,
    /// Time over which the drift reverts to the base, by a factor e.
    drift_time_constant_ms: f64,
    low: f64,
    high: f64,
}

/// Warehouse air temperature in °C: about 18–24, bases 20–22, ±0.8 daily, drift sd 0.5 over 2 h.
const TEMPERATURE: SensorModel = SensorModel {
    metric: Metric::Temperature,
    base: 21.0,
    base_spread: 1.0,
    daily_amplitude: 0.8,
    drift_sd: 0.5,
    drift_time_constant_ms: 2.0 * HOUR_MS as f64,
    low: 18.0,
    high: 24.0,
};

/// Relative humidity in %: about 40–60, bases 46–54, ∓3 daily (driest in the afternoon), drift
/// sd 2.5 over 3 h.
const HUMIDITY: SensorModel = SensorModel {
    metric: Metric::Humidity,
    base: 50.0,
    base_spread: 4.0,
    daily_amplitude: -3.0,
    drift_sd: 2.5,
    drift_time_constant_ms: 3.0 * HOUR_MS as f64,
    low: 40.0,
    high: 60.0,
};

/// State of one sensor.
#[derive(Debug)]
struct SensorState {
    model: &'static SensorModel,
    id: String,
    next_ts: Millis,
    base: f64,
    deviation: f64,
    /// Per-reading decay of the deviation, `exp(-interval / time constant)`.
    decay: f64,
    /// Standard deviation of the per-reading innovation, so that the deviation's stationary
    /// standard deviation is the model's.
    innovation: f64,
}

impl SensorState {
    fn new(
        rng: &mut ChaCha8Rng,
        model: &'static SensorModel,
        id: String,
        start_ms: Millis,
        interval_ms: Millis,
    ) -> SensorState {
        let decay = (-(interval_ms as f64) / model.drift_time_constant_ms).exp();
        SensorState {
            model,
            id,
            // Sensors are not synchronized: each has its own phase within the interval.
            next_ts: start_ms + rng.random_range(0..interval_ms),
            base: model.base + model.base_spread * (2.0 * rng.random::<f64>() - 1.0),
            deviation: model.drift_sd * standard_normal(rng),
            decay,
            innovation: model.drift_sd * (1.0 - decay * decay).sqrt(),
        }
    }

    /// The next reading's value (before incidents) and its `ts`; advances the sensor.
    fn read(&mut self, innovation: f64, interval_ms: Millis) -> (Millis, f64) {
        let ts = self.next_ts;
        self.next_ts += interval_ms;
        self.deviation = self.deviation * self.decay + self.innovation * innovation;
        let level =
            self.base + self.model.daily_amplitude * daily_sensor_cycle(ts) + self.deviation;
        (ts, level.clamp(self.model.low, self.model.high))
    }
}

/// The endless event stream of one warehouse, as `(emit_ms, event)` in non-decreasing `emit_ms`
/// order.
///
/// Orders and sensor readings are generated in event-time order as the stream advances; the
/// later lifecycle steps of an order wait as compact records in a calendar of 10 s buckets (by
/// `ts`) until simulated time reaches their bucket, then move to a small priority queue by emit
/// time. An event is released once no event still to be generated, and none in the calendar, can
/// have a smaller emit time.
#[derive(Debug)]
pub struct WarehouseStream {
    shared: Arc<Shared>,
    index: usize,
    name: String,
    rng: ChaCha8Rng,
    /// Exact (fractional) time of the next order; `f64::INFINITY` when orders are disabled.
    next_order_time: f64,
    /// `next_order_time` rounded down: the `ts` of the next order.
    next_order_ts: Millis,
    orders: u64,
    sensors: Vec<SensorState>,
    /// Events whose calendar bucket has been reached, least (emit time, sequence number) first.
    ready: BinaryHeap<Reverse<Scheduled>>,
    /// Future events of bucket `b = ts / BUCKET_MS` for `next_bucket <= b < next_bucket +
    /// RING_BUCKETS`, at position `b % RING_BUCKETS`.
    ring: Vec<Vec<Scheduled>>,
    /// Future events of later buckets, by bucket.
    overflow: BTreeMap<Millis, Vec<Scheduled>>,
    /// Number of events in `ring` and `overflow`.
    calendar_len: usize,
    /// First bucket not yet moved to `ready`: every calendar event has `ts >= next_bucket *
    /// BUCKET_MS`.
    next_bucket: Millis,
    seq: u64,
    /// Slow-deliveries incidents of this warehouse, by start.
    slow_incidents: Vec<Incident>,
    slow_cursor: usize,
    /// Temperature incidents of this warehouse, by start.
    heat_incidents: Vec<Incident>,
    heat_cursor: usize,
    /// This warehouse's demand surges, by start.
    surge_incidents: Vec<Incident>,
}

impl WarehouseStream {
    /// The stream of warehouse `warehouse` (0-based index) under `config`.
    pub fn new(config: &GeneratorConfig, warehouse: usize) -> Result<Self, GeneratorConfigError> {
        let shared = Shared::new(config.clone())?;
        WarehouseStream::with_shared(shared, warehouse)
    }

    fn with_shared(shared: Arc<Shared>, index: usize) -> Result<Self, GeneratorConfigError> {
        let config = &shared.config;
        if index >= config.warehouses {
            return Err(GeneratorConfigError::Invalid {
                field: "warehouse",
                reason: format!(
                    "index {index} but there are {} warehouses",
                    config.warehouses
                ),
            });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(index as u64);
        let number = index + 1;
        let start = config.start_ms;
        let interval = config.sensor_interval_ms;
        let sensors = vec![
            SensorState::new(
                &mut rng,
                &TEMPERATURE,
                format!("s-{number:02}-t1"),
                start,
                interval,
            ),
            SensorState::new(
                &mut rng,
                &TEMPERATURE,
                format!("s-{number:02}-t2"),
                start,
                interval,
            ),
            SensorState::new(
                &mut rng,
                &HUMIDITY,
                format!("s-{number:02}-h1"),
                start,
                interval,
            ),
        ];
        let of_kind = |wanted: fn(&IncidentKind) -> bool| {
            let mut incidents: Vec<Incident> = config
                .incidents
                .iter()
                .filter(|i| i.warehouse == index && wanted(&i.kind))
                .copied()
                .collect();
            incidents.sort_by_key(|i| (i.start_ms, i.end_ms));
            incidents
        };
        let slow_incidents = of_kind(|k| matches!(k, IncidentKind::SlowDeliveries { .. }));
        let heat_incidents = of_kind(|k| matches!(k, IncidentKind::TemperatureExcursion { .. }));
        let surge_incidents = of_kind(|k| matches!(k, IncidentKind::DemandSurge { .. }));
        let mut stream = WarehouseStream {
            name: warehouse_name(index),
            index,
            rng,
            next_order_time: start as f64,
            next_order_ts: start,
            orders: 0,
            sensors,
            ready: BinaryHeap::new(),
            ring: (0..RING_BUCKETS).map(|_| Vec::new()).collect(),
            overflow: BTreeMap::new(),
            calendar_len: 0,
            next_bucket: start / BUCKET_MS,
            seq: 0,
            slow_incidents,
            slow_cursor: 0,
            heat_incidents,
            heat_cursor: 0,
            surge_incidents,
            shared,
        };
        // The first order comes one inter-arrival time after the start, like every other.
        stream.advance_order_time();
        tracing::debug!(warehouse = %stream.name, seed = stream.shared.config.seed, "generator stream created");
        Ok(stream)
    }

    /// Index (0-based) of the warehouse.
    pub fn warehouse(&self) -> usize {
        self.index
    }

    /// Emit time of the next event (generating as far as needed to know it).
    pub fn peek_emit_ms(&mut self) -> Millis {
        self.fill();
        self.ready.peek().map_or(Millis::MAX, |top| top.0.emit_ms)
    }

    /// Number of events generated but not yet yielded (mostly future delivery steps): the
    /// stream's memory is proportional to it.
    pub fn scheduled(&self) -> usize {
        self.ready.len() + self.calendar_len
    }

    /// The smallest `ts` (hence emit time) that an event not generated yet can have.
    fn horizon(&self) -> Millis {
        self.sensors
            .iter()
            .map(|s| s.next_ts)
            .fold(self.next_order_ts, Millis::min)
    }

    /// Generates until the earliest ready event can no longer be preceded by another one.
    fn fill(&mut self) {
        loop {
            let horizon = self.horizon();
            self.drain_calendar(horizon);
            // Events still in the calendar have `ts` (hence emit time) after `horizon`.
            if self
                .ready
                .peek()
                .is_some_and(|top| top.0.emit_ms <= horizon)
            {
                return;
            }
            if self.next_order_ts == horizon {
                self.generate_order();
            } else {
                let slot = (0..self.sensors.len())
                    .find(|&slot| self.sensors[slot].next_ts == horizon)
                    .expect("the horizon is the time of the next order or of a sensor reading");
                self.generate_reading(slot);
            }
        }
    }

    /// Moves every calendar bucket that starts at or before `until_ms` to the ready queue.
    fn drain_calendar(&mut self, until_ms: Millis) {
        while self.next_bucket * BUCKET_MS <= until_ms {
            let bucket = self.next_bucket;
            // Taking the vector (not draining it) frees its capacity: a slot is reused only
            // 5.7 hours later, and keeping every slot at full size would hold that much traffic.
            let due = std::mem::take(&mut self.ring[(bucket % RING_BUCKETS) as usize]);
            self.calendar_len -= due.len();
            self.ready.extend(due.into_iter().map(Reverse));
            if let Some(entry) = self.overflow.first_entry() {
                if *entry.key() == bucket {
                    let late = entry.remove();
                    self.calendar_len -= late.len();
                    self.ready.extend(late.into_iter().map(Reverse));
                }
            }
            self.next_bucket += 1;
        }
    }

    fn advance_order_time(&mut self) {
        let rate = self.shared.order_rate_per_ms(self.next_order_ts)
            * self.demand_factor(self.next_order_ts);
        if rate > 0.0 {
            let unit: f64 = self.rng.random();
            self.next_order_time += -(1.0 - unit).ln() / rate;
        } else {
            // Orders are disabled (orders_per_minute = 0): the stream carries sensors only.
            self.next_order_time = f64::INFINITY;
        }
        self.next_order_ts = if self.next_order_time.is_finite() {
            (self.next_order_time as Millis).max(self.next_order_ts)
        } else {
            Millis::MAX
        };
    }

    /// Puts an event into the schedule at a jittered emit time, and maybe a duplicate after it.
    fn schedule(&mut self, ts: Millis, payload: Payload) {
        let jitter = self.shared.config.jitter_ms;
        let emit_ms = if jitter > 0 {
            ts + self.rng.random_range(0..jitter)
        } else {
            ts
        };
        self.push(emit_ms, ts, payload);
        if self.rng.random::<f64>() < self.shared.config.duplicate_rate {
            let latest = (ts + jitter).saturating_sub(1).max(emit_ms);
            let again = self.rng.random_range(emit_ms..=latest);
            self.push(again, ts, payload);
        }
    }

    fn push(&mut self, emit_ms: Millis, ts: Millis, payload: Payload) {
        self.seq += 1;
        let scheduled = Scheduled {
            emit_ms,
            seq: self.seq,
            ts,
            payload,
        };
        let bucket = ts / BUCKET_MS;
        if bucket < self.next_bucket {
            self.ready.push(Reverse(scheduled));
            return;
        }
        if bucket < self.next_bucket + RING_BUCKETS {
            self.ring[(bucket % RING_BUCKETS) as usize].push(scheduled);
        } else {
            self.overflow.entry(bucket).or_default().push(scheduled);
        }
        self.calendar_len += 1;
    }

    fn generate_order(&mut self) {
        let ts = self.next_order_ts;
        let number = self.orders;
        self.orders += 1;
        let shared = Arc::clone(&self.shared);
        let config = &shared.config;

        // Popularity is skewed: the SKU index is uniform squared.
        let popularity: f64 = self.rng.random();
        let sku =
            ((popularity * popularity * f64::from(config.skus)) as u32).min(config.skus - 1) + 1;
        let qty = match self.rng.random_range(0..100u32) {
            0..62 => 1,
            62..84 => 2,
            84..93 => 3,
            93..97 => 4,
            _ => self.rng.random_range(5..=10),
        };
        let amount_cents = shared.price_cents(sku) * u64::from(qty);
        self.schedule(
            ts,
            Payload::Order {
                number,
                sku,
                qty,
                amount_cents,
            },
        );

        let pick: f64 = self.rng.random();
        let carrier = shared
            .carrier_cumulative
            .iter()
            .position(|&cumulative| pick < cumulative)
            .unwrap_or(config.carriers.len() - 1);
        let factor = config.carriers[carrier].duration_factor;
        let normal = config.delivery_median_ms as f64
            * factor
            * (config.delivery_sigma * standard_normal(&mut self.rng)).exp();
        let normal_ms = (normal as Millis).clamp(MIN_DELIVERY_MS, MAX_DELIVERY_MS - HOUR_MS);
        let duration_ms = self.incident_duration(ts, normal_ms).min(MAX_DELIVERY_MS);

        // Picking and hand-over take minutes, but at most half of the normal duration, so the
        // steps are strictly ordered.
        let picked_after = self
            .rng
            .random_range(2 * MINUTE_MS..12 * MINUTE_MS)
            .min(normal_ms / 5);
        let handed_over_after = picked_after
            + self
                .rng
                .random_range(5 * MINUTE_MS..25 * MINUTE_MS)
                .min(normal_ms * 3 / 10);
        let carrier = carrier as u16;
        for (after, status) in [
            (picked_after, DeliveryStatus::Picked),
            (handed_over_after, DeliveryStatus::InTransit),
            (duration_ms, DeliveryStatus::Delivered),
        ] {
            let payload = Payload::Delivery {
                number,
                carrier,
                status,
            };
            self.schedule(ts + after, payload);
        }

        self.advance_order_time();
    }

    /// The order-to-delivered duration of an order placed at `ts` whose normal duration is
    /// `normal_ms`, after slow-deliveries incidents (module documentation, "Incidents").
    fn incident_duration(&mut self, ts: Millis, normal_ms: Millis) -> Millis {
        // Order times only grow, and every delivery lands after its order: an incident that has
        // ended by `ts` can no longer matter.
        while self
            .slow_incidents
            .get(self.slow_cursor)
            .is_some_and(|i| i.end_ms <= ts)
        {
            self.slow_cursor += 1;
        }
        for position in self.slow_cursor..self.slow_incidents.len() {
            let incident = self.slow_incidents[position];
            if incident.start_ms > ts + MAX_DELIVERY_MS {
                break;
            }
            let IncidentKind::SlowDeliveries { factor } = incident.kind else {
                continue;
            };
            let slow_ms = (normal_ms as f64 * factor) as Millis;
            if incident.contains(ts + slow_ms) {
                return slow_ms;
            }
            if incident.contains(ts + normal_ms) {
                // Stuck until the incident clears.
                let release = self.rng.random_range(0..BACKLOG_RELEASE_MS);
                return incident.end_ms + release - ts;
            }
        }
        normal_ms
    }

    fn generate_reading(&mut self, slot: usize) {
        let innovation = standard_normal(&mut self.rng);
        let interval_ms = self.shared.config.sensor_interval_ms;
        let (ts, mut value) = self.sensors[slot].read(innovation, interval_ms);
        if self.sensors[slot].model.metric == Metric::Temperature {
            value += self.temperature_excursion(ts);
        }
        let payload = Payload::Sensor {
            sensor: slot as u8,
            value: round_to_hundredths(value),
        };
        self.schedule(ts, payload);
    }

    fn temperature_excursion(&mut self, ts: Millis) -> f64 {
        while self
            .heat_incidents
            .get(self.heat_cursor)
            .is_some_and(|i| i.end_ms <= ts)
        {
            self.heat_cursor += 1;
        }
        self.heat_incidents[self.heat_cursor..]
            .iter()
            .take_while(|i| i.start_ms <= ts)
            .find(|i| i.contains(ts))
            .map_or(0.0, |i| match i.kind {
                IncidentKind::TemperatureExcursion { delta_c } => delta_c,
                _ => 0.0,
            })
    }

    /// Multiplier of the order rate at `ts` (1 outside demand surges). Surges are few (a
    /// handful per warehouse and day), so a scan is cheaper than keeping a cursor.
    fn demand_factor(&self, ts: Millis) -> f64 {
        self.surge_incidents
            .iter()
            .find(|i| i.contains(ts))
            .map_or(1.0, |i| match i.kind {
                IncidentKind::DemandSurge { factor } => factor,
                _ => 1.0,
            })
    }

    fn order_id(&self, number: u64) -> String {
        let mut id = String::with_capacity(14);
        id.push_str("o-");
        push_padded(&mut id, (self.index + 1) as u64, 2);
        id.push('-');
        push_padded(&mut id, number, 8);
        id
    }

    fn materialize(&self, ts: Millis, payload: Payload) -> Event {
        match payload {
            Payload::Order {
                number,
                sku,
                qty,
                amount_cents,
            } => Event::Order(Order {
                order_id: self.order_id(number).into(),
                warehouse: self.name.as_str().into(),
                sku: {
                    let mut name = String::with_capacity(9);
                    name.push_str("sku-");
                    push_padded(&mut name, u64::from(sku), 5);
                    name.into()
                },
                qty: u64::from(qty),
                amount: FiniteF64::new(amount_cents as f64 / 100.0)
                    .expect("an amount in cents divided by 100 is finite"),
                ts,
            }),
            Payload::Delivery {
                number,
                carrier,
                status,
            } => Event::Delivery(Delivery {
                order_id: self.order_id(number).into(),
                warehouse: self.name.as_str().into(),
                carrier: self.shared.config.carriers[usize::from(carrier)]
                    .name
                    .as_str()
                    .into(),
                status,
                ts,
            }),
            Payload::Sensor { sensor, value } => {
                let sensor = &self.sensors[usize::from(sensor)];
                Event::Sensor(Sensor {
                    sensor_id: sensor.id.as_str().into(),
                    warehouse: self.name.as_str().into(),
                    metric: match sensor.model.metric {
                        Metric::Temperature => "temperature",
                        Metric::Humidity => "humidity",
                    }
                    .into(),
                    value: FiniteF64::new(value)
                        .expect("a clamped reading plus a finite delta is finite"),
                    ts,
                })
            }
        }
    }
}

impl Iterator for WarehouseStream {
    type Item = (Millis, Event);

    /// Never `None`: the stream is endless.
    fn next(&mut self) -> Option<(Millis, Event)> {
        self.fill();
        let Reverse(next) = self.ready.pop()?;
        Some((next.emit_ms, self.materialize(next.ts, next.payload)))
    }
}

/// The streams of a chosen set of warehouses merged into one endless `(emit_ms, event)` stream
/// in non-decreasing `emit_ms` order (ties go to the lower warehouse index).
///
/// Empty (yields nothing) only when no warehouse was chosen, e.g. for a worker whose index is
/// at least the number of warehouses.
#[derive(Debug)]
pub struct Generator {
    streams: Vec<WarehouseStream>,
    indices: Vec<usize>,
    /// The next event of each stream, taken out so that the merge can compare emit times.
    heads: Vec<Option<Event>>,
    /// (emit time of the head, position in `streams`), least first.
    merge: BinaryHeap<Reverse<(Millis, usize)>>,
}

impl Generator {
    /// The generator of the warehouses whose index (0-based) satisfies `select`.
    pub fn new(
        config: GeneratorConfig,
        mut select: impl FnMut(usize) -> bool,
    ) -> Result<Self, GeneratorConfigError> {
        let shared = Shared::new(config)?;
        let indices: Vec<usize> = (0..shared.config.warehouses)
            .filter(|&index| select(index))
            .collect();
        let mut streams = Vec::with_capacity(indices.len());
        for &index in &indices {
            streams.push(WarehouseStream::with_shared(Arc::clone(&shared), index)?);
        }
        let mut heads = Vec::with_capacity(streams.len());
        let mut merge = BinaryHeap::with_capacity(streams.len());
        for (position, stream) in streams.iter_mut().enumerate() {
            match stream.next() {
                Some((emit_ms, event)) => {
                    merge.push(Reverse((emit_ms, position)));
                    heads.push(Some(event));
                }
                None => heads.push(None),
            }
        }
        Ok(Generator {
            streams,
            indices,
            heads,
            merge,
        })
    }

    /// The share of worker `worker_index` of `peers`: the warehouses with
    /// `index % peers == worker_index`.
    pub fn for_worker(
        config: GeneratorConfig,
        worker_index: usize,
        peers: usize,
    ) -> Result<Self, GeneratorConfigError> {
        if worker_index >= peers {
            return Err(GeneratorConfigError::Invalid {
                field: "worker_index",
                reason: format!("worker {worker_index} of {peers} peers"),
            });
        }
        Generator::new(config, |index| index % peers == worker_index)
    }

    /// Indices (0-based) of the warehouses this generator produces, ascending.
    pub fn warehouse_indices(&self) -> &[usize] {
        &self.indices
    }

    /// Emit time of the next event, or `None` when no warehouse was chosen.
    pub fn peek_emit_ms(&self) -> Option<Millis> {
        self.merge.peek().map(|top| top.0 .0)
    }
}

impl Iterator for Generator {
    type Item = (Millis, Event);

    fn next(&mut self) -> Option<(Millis, Event)> {
        let Reverse((emit_ms, position)) = self.merge.pop()?;
        let event = self.heads[position]
            .take()
            .expect("every stream in the merge heap has a head event");
        if let Some((next_emit_ms, next_event)) = self.streams[position].next() {
            self.heads[position] = Some(next_event);
            self.merge.push(Reverse((next_emit_ms, position)));
        }
        Some((emit_ms, event))
    }
}

/// Appends `event` to `out` as one JSON object, byte for byte what [`Event::write_json`] writes
/// (a test checks it), but serialized straight from borrowed fields: `write_json` first builds a
/// `serde_json::Value` map, which costs about 15 allocations and most of the time of
/// [`write_jsonl`]. Keys are in the order `write_json` produces (sorted, as serde_json's default
/// map is).
fn write_event_json(event: &Event, out: &mut Vec<u8>) {
    #[derive(Serialize)]
    struct OrderLine<'a> {
        amount: f64,
        order_id: &'a str,
        qty: u64,
        sku: &'a str,
        ts: Millis,
        #[serde(rename = "type")]
        kind: &'static str,
        warehouse: &'a str,
    }
    #[derive(Serialize)]
    struct DeliveryLine<'a> {
        carrier: &'a str,
        order_id: &'a str,
        status: &'static str,
        ts: Millis,
        #[serde(rename = "type")]
        kind: &'static str,
        warehouse: &'a str,
    }
    #[derive(Serialize)]
    struct SensorLine<'a> {
        metric: &'a str,
        sensor_id: &'a str,
        ts: Millis,
        #[serde(rename = "type")]
        kind: &'static str,
        value: f64,
        warehouse: &'a str,
    }
    let written = match event {
        Event::Order(o) => serde_json::to_writer(
            &mut *out,
            &OrderLine {
                amount: o.amount.get(),
                order_id: &o.order_id,
                qty: o.qty,
                sku: &o.sku,
                ts: o.ts,
                kind: "order",
                warehouse: &o.warehouse,
            },
        ),
        Event::Delivery(d) => serde_json::to_writer(
            &mut *out,
            &DeliveryLine {
                carrier: &d.carrier,
                order_id: &d.order_id,
                status: d.status.as_str(),
                ts: d.ts,
                kind: "delivery",
                warehouse: &d.warehouse,
            },
        ),
        Event::Sensor(s) => serde_json::to_writer(
            &mut *out,
            &SensorLine {
                metric: &s.metric,
                sensor_id: &s.sensor_id,
                ts: s.ts,
                kind: "sensor",
                value: s.value.get(),
                warehouse: &s.warehouse,
            },
        ),
    };
    if let Err(error) = written {
        // Unreachable: writing plain strings and finite numbers into a Vec cannot fail.
        tracing::error!(%error, "could not serialize generated event");
    }
}

/// Writes the first `events` events of all warehouses of `config`, merged in emit order, as JSON
/// Lines (one object per line, exactly as [`Event::write_json`] writes it) to `out`. Returns the
/// number of bytes written. An invalid config is an [`std::io::ErrorKind::InvalidInput`] error.
///
/// Output is buffered here in 1 MiB blocks, so `out` need not be buffered.
pub fn write_jsonl(
    config: &GeneratorConfig,
    events: usize,
    out: &mut impl std::io::Write,
) -> std::io::Result<u64> {
    const BLOCK: usize = 1 << 20;
    let generator = Generator::new(config.clone(), |_| true)
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))?;
    let mut buffer = Vec::with_capacity(BLOCK + 4096);
    let mut written = 0u64;
    for (_emit_ms, event) in generator.take(events) {
        write_event_json(&event, &mut buffer);
        buffer.push(b'\n');
        if buffer.len() >= BLOCK {
            out.write_all(&buffer)?;
            written += buffer.len() as u64;
            buffer.clear();
        }
    }
    out.write_all(&buffer)?;
    written += buffer.len() as u64;
    out.flush()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap, HashSet};

    fn small_config(seed: u64) -> GeneratorConfig {
        GeneratorConfig {
            seed,
            ..GeneratorConfig::default()
        }
    }

    fn events(config: &GeneratorConfig, count: usize) -> Vec<(Millis, Event)> {
        Generator::new(config.clone(), |_| true)
            .unwrap()
            .take(count)
            .collect()
    }

    /// All events with emit time below `until_ms`.
    fn events_until(mut generator: Generator, until_ms: Millis) -> Vec<(Millis, Event)> {
        let mut out = Vec::new();
        while generator.peek_emit_ms().is_some_and(|emit| emit < until_ms) {
            out.push(generator.next().unwrap());
        }
        out
    }

    /// A demand surge multiplies the warehouse's orders during the incident, and only there.
    #[test]
    fn generator_demand_surge_multiplies_orders_in_its_interval() {
        let start = DEFAULT_START_MS + 10 * HOUR_MS;
        let end = start + 30 * MINUTE_MS;
        let base = GeneratorConfig {
            seed: 3,
            warehouses: 2,
            start_ms: DEFAULT_START_MS,
            incidents: Vec::new(),
            ..GeneratorConfig::default()
        };
        let surge = GeneratorConfig {
            incidents: vec![Incident {
                warehouse: 0,
                kind: IncidentKind::DemandSurge { factor: 4.0 },
                start_ms: start,
                end_ms: end,
            }],
            ..base.clone()
        };
        let count = |config: &GeneratorConfig, warehouse: &str, from: Millis, to: Millis| {
            let generator = Generator::new(config.clone(), |_| true).unwrap();
            events_until(generator, end + HOUR_MS)
                .iter()
                .filter(|(_, event)| match event {
                    Event::Order(o) => o.warehouse == warehouse && (from..to).contains(&o.ts),
                    _ => false,
                })
                .count()
        };
        let normal = count(&base, "wh-01", start, end);
        let surged = count(&surge, "wh-01", start, end);
        assert!(
            surged as f64 > 3.0 * normal as f64 && (surged as f64) < 5.0 * normal as f64,
            "orders during the surge: {surged}, normally {normal}"
        );
        // Before the surge, and at the other warehouse, nothing changes.
        assert_eq!(
            count(&base, "wh-01", DEFAULT_START_MS, start),
            count(&surge, "wh-01", DEFAULT_START_MS, start)
        );
        assert_eq!(
            count(&base, "wh-02", start, end),
            count(&surge, "wh-02", start, end)
        );
        let bad = GeneratorConfig {
            incidents: vec![Incident {
                kind: IncidentKind::DemandSurge { factor: -1.0 },
                ..surge.incidents[0]
            }],
            ..base
        };
        assert!(matches!(
            bad.validate(),
            Err(GeneratorConfigError::InvalidIncident { index: 0, .. })
        ));
    }

    #[test]
    fn generator_same_seed_same_output() {
        let config = small_config(7);
        let (mut first, mut second) = (Vec::new(), Vec::new());
        write_jsonl(&config, 30_000, &mut first).unwrap();
        write_jsonl(&config, 30_000, &mut second).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.iter().filter(|&&b| b == b'\n').count(), 30_000);
    }

    #[test]
    fn generator_json_lines_match_event_write_json() {
        let config = GeneratorConfig {
            duplicate_rate: 0.0,
            ..small_config(31)
        };
        let (mut fast, mut reference) = (Vec::new(), Vec::new());
        let mut kinds = HashSet::new();
        for (_, event) in events(&config, 100_000) {
            kinds.insert(event.type_name());
            fast.clear();
            reference.clear();
            write_event_json(&event, &mut fast);
            event.write_json(&mut reference);
            assert_eq!(
                String::from_utf8_lossy(&fast),
                String::from_utf8_lossy(&reference)
            );
        }
        assert_eq!(kinds.len(), 3);
        assert_eq!(push_padded_string(7, 2), "07");
        assert_eq!(push_padded_string(123, 2), "123");
        assert_eq!(push_padded_string(0, 8), "00000000");
        assert_eq!(push_padded_string(u64::MAX, 5), u64::MAX.to_string());
    }

    fn push_padded_string(value: u64, width: usize) -> String {
        let mut out = String::new();
        push_padded(&mut out, value, width);
        out
    }

    #[test]
    fn generator_different_seed_different_output() {
        let (mut first, mut second) = (Vec::new(), Vec::new());
        write_jsonl(&small_config(7), 10_000, &mut first).unwrap();
        write_jsonl(&small_config(8), 10_000, &mut second).unwrap();
        assert_ne!(first, second);
    }

    #[test]
    fn generator_emit_times_are_sorted_and_within_jitter() {
        let config = small_config(3);
        let all = events(&config, 200_000);
        assert!(all.windows(2).all(|pair| pair[0].0 <= pair[1].0));
        for (emit_ms, event) in &all {
            assert!(
                event.ts() <= *emit_ms && *emit_ms < event.ts() + config.jitter_ms,
                "emit {emit_ms} of {event:?}"
            );
            assert!(event.ts() >= config.start_ms);
        }
        // No event is late under the SPEC §2 watermark with the default disorder bound.
        let mut max_ts = 0;
        for (_, event) in &all {
            assert!(event.ts() + MAX_JITTER_MS >= max_ts, "late: {event:?}");
            max_ts = max_ts.max(event.ts());
        }
    }

    #[test]
    fn generator_zero_jitter_emits_at_ts() {
        let config = GeneratorConfig {
            jitter_ms: 0,
            duplicate_rate: 0.1,
            ..small_config(5)
        };
        let all = events(&config, 20_000);
        assert!(all.iter().all(|(emit_ms, event)| *emit_ms == event.ts()));
        assert!(all.windows(2).all(|pair| pair[0].0 <= pair[1].0));
    }

    #[test]
    fn generator_worker_split_does_not_change_events() {
        let config = small_config(11);
        let until_ms = config.start_ms + 4 * HOUR_MS;
        let mut whole = events_until(Generator::new(config.clone(), |_| true).unwrap(), until_ms);
        let mut union = Vec::new();
        for worker in 0..3 {
            let generator = Generator::for_worker(config.clone(), worker, 3).unwrap();
            let expected: Vec<usize> = (0..8).filter(|i| i % 3 == worker).collect();
            assert_eq!(generator.warehouse_indices(), expected.as_slice());
            union.extend(events_until(generator, until_ms));
        }
        assert!(whole.len() > 100_000, "{} events", whole.len());
        whole.sort();
        union.sort();
        assert!(
            whole == union,
            "the union of the worker streams differs from the whole"
        );
        // A single warehouse's stream is the same whether it runs alone or merged.
        let alone: Vec<_> = {
            let mut stream = WarehouseStream::new(&config, 4).unwrap();
            std::iter::from_fn(|| {
                (stream.peek_emit_ms() < until_ms).then(|| stream.next().unwrap())
            })
            .collect()
        };
        let merged: Vec<_> = events_until(Generator::new(config, |_| true).unwrap(), until_ms)
            .into_iter()
            .filter(|(_, event)| event.warehouse() == "wh-05")
            .collect();
        assert!(alone == merged);
    }

    #[test]
    fn generator_for_worker_beyond_warehouses_is_empty() {
        let mut generator = Generator::for_worker(small_config(1), 9, 12).unwrap();
        assert!(generator.warehouse_indices().is_empty());
        assert_eq!(generator.peek_emit_ms(), None);
        assert!(generator.next().is_none());
        assert!(Generator::for_worker(small_config(1), 3, 3).is_err());
    }

    #[test]
    fn generator_duplicates_at_configured_rate() {
        let config = small_config(13);
        let count = 300_000;
        let all = events(&config, count);
        let mut seen = HashSet::with_capacity(count);
        let duplicates = all.iter().filter(|(_, event)| !seen.insert(event)).count();
        let expected = count as f64 * config.duplicate_rate;
        assert!(
            (0.7 * expected..1.3 * expected).contains(&(duplicates as f64)),
            "{duplicates} duplicates, expected about {expected}"
        );
        let none = GeneratorConfig {
            duplicate_rate: 0.0,
            ..config
        };
        let mut seen = HashSet::new();
        assert!(events(&none, 50_000)
            .iter()
            .all(|(_, event)| seen.insert(event.clone())));
    }

    #[test]
    fn generator_deliveries_follow_their_orders() {
        let config = small_config(17);
        let mut orders: HashMap<tidewatch_operators::event::Text, Order> = HashMap::new();
        let mut steps: HashMap<tidewatch_operators::event::Text, Vec<(DeliveryStatus, Millis)>> =
            HashMap::new();
        let mut delivered = 0;
        for (_, event) in events(&config, 300_000) {
            match event {
                Event::Order(order) => {
                    assert!(order.qty >= 1 && order.amount.get() > 0.0);
                    if let Some(previous) = orders.insert(order.order_id.clone(), order.clone()) {
                        assert_eq!(previous, order, "order ids are unique");
                    }
                }
                Event::Delivery(delivery) => {
                    let order = orders
                        .get(&delivery.order_id)
                        .unwrap_or_else(|| panic!("no earlier order for {delivery:?}"));
                    assert_eq!(order.warehouse, delivery.warehouse);
                    assert!(order.ts < delivery.ts && delivery.ts <= order.ts + MAX_DELIVERY_MS);
                    let history = steps.entry(delivery.order_id.clone()).or_default();
                    if history.last() != Some(&(delivery.status, delivery.ts)) {
                        if let Some(&(status, ts)) = history.last() {
                            assert!(
                                status < delivery.status && ts < delivery.ts,
                                "{history:?} then {delivery:?}"
                            );
                        }
                        history.push((delivery.status, delivery.ts));
                    }
                    if delivery.status == DeliveryStatus::Delivered {
                        delivered += 1;
                    }
                }
                Event::Sensor(sensor) => {
                    let value = sensor.value.get();
                    match sensor.metric.as_str() {
                        "temperature" => assert!((18.0..=30.0).contains(&value), "{sensor:?}"),
                        "humidity" => assert!((40.0..=60.0).contains(&value), "{sensor:?}"),
                        other => panic!("unexpected metric {other}"),
                    }
                }
            }
        }
        assert!(delivered > 10_000, "{delivered} delivered");
    }

    #[test]
    fn generator_daily_rhythm() {
        let config = GeneratorConfig {
            warehouses: 1,
            incidents: Vec::new(),
            ..small_config(19)
        };
        let mut stream = WarehouseStream::new(&config, 0).unwrap();
        let mut by_hour = [0u64; 24];
        let mut by_status: HashMap<DeliveryStatus, u64> = HashMap::new();
        let (mut temperature, mut humidity, mut largest_schedule) = (0u64, 0u64, 0);
        while stream.peek_emit_ms() < config.start_ms + DAY_MS {
            let (_, event) = stream.next().unwrap();
            largest_schedule = largest_schedule.max(stream.scheduled());
            match event {
                Event::Order(order) => by_hour[((order.ts % DAY_MS) / HOUR_MS) as usize] += 1,
                Event::Sensor(sensor) if sensor.metric == "temperature" => temperature += 1,
                Event::Sensor(_) => humidity += 1,
                Event::Delivery(delivery) => *by_status.entry(delivery.status).or_default() += 1,
            }
        }
        let total: u64 = by_hour.iter().sum();
        let per_minute = |count: u64| count as f64 / MINUTES_PER_DAY as f64;
        println!(
            "one warehouse, first simulated day, per minute: {:.1} orders, {:.1} picked, \
             {:.1} in_transit, {:.1} delivered, {:.1} temperature, {:.1} humidity; \
             orders by hour {by_hour:?}; largest schedule {largest_schedule}",
            per_minute(total),
            per_minute(by_status[&DeliveryStatus::Picked]),
            per_minute(by_status[&DeliveryStatus::InTransit]),
            per_minute(by_status[&DeliveryStatus::Delivered]),
            per_minute(temperature),
            per_minute(humidity),
        );
        assert!(by_hour[11] > 3 * by_hour[3], "{by_hour:?}");
        assert!(by_hour[20] > 3 * by_hour[3], "{by_hour:?}");
        let mean_per_minute = per_minute(total);
        assert!(
            (55.0..65.0).contains(&mean_per_minute),
            "{mean_per_minute} orders/min"
        );
        // All but the orders still in flight at the end of the day are delivered.
        let delivered = by_status[&DeliveryStatus::Delivered] as f64;
        assert!(
            (0.9 * total as f64..total as f64).contains(&delivered),
            "{delivered} of {total}"
        );
        // 3 sensors, one reading every 10 s each (plus the odd duplicate).
        assert!(
            (17_280..17_350).contains(&temperature),
            "{temperature} temperature readings"
        );
        assert!(
            (8_640..8_680).contains(&humidity),
            "{humidity} humidity readings"
        );
    }

    #[test]
    fn generator_memory_stays_bounded() {
        let config = GeneratorConfig {
            warehouses: 1,
            ..small_config(23)
        }
        .with_default_incidents();
        let mut stream = WarehouseStream::new(&config, 0).unwrap();
        let mut largest = 0;
        while stream.peek_emit_ms() < config.start_ms + 2 * DAY_MS {
            stream.next();
            largest = largest.max(stream.scheduled());
        }
        // In flight: about rate x mean duration orders, three steps each at most.
        assert!(largest < 40_000, "{largest} scheduled events");
    }

    #[test]
    fn generator_rejects_bad_configs() {
        let late = GeneratorConfig {
            jitter_ms: MAX_JITTER_MS,
            ..GeneratorConfig::default()
        };
        assert!(matches!(
            late.validate(),
            Err(GeneratorConfigError::JitterTooLarge { .. })
        ));
        let error = write_jsonl(&late, 10, &mut Vec::new()).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
        let bad_incident = GeneratorConfig {
            incidents: vec![Incident {
                warehouse: 8,
                kind: IncidentKind::SlowDeliveries { factor: 3.0 },
                start_ms: 0,
                end_ms: 1,
            }],
            ..GeneratorConfig::default()
        };
        assert!(matches!(
            bad_incident.validate(),
            Err(GeneratorConfigError::InvalidIncident { index: 0, .. })
        ));
        assert!(WarehouseStream::new(&GeneratorConfig::default(), 8).is_err());
        assert_eq!(GeneratorConfig::default().validate(), Ok(()));
    }

    #[test]
    fn generator_config_from_partial_json() {
        let config: GeneratorConfig =
            serde_json::from_str(r#"{"seed": 5, "warehouses": 2, "incidents": []}"#).unwrap();
        assert_eq!(config.seed, 5);
        assert_eq!(config.jitter_ms, GeneratorConfig::default().jitter_ms);
        assert!(serde_json::from_str::<GeneratorConfig>(r#"{"sede": 5}"#).is_err());
        let moved = GeneratorConfig::starting_at(DEFAULT_START_MS + DAY_MS);
        assert_eq!(
            moved.incidents[0].start_ms,
            DEFAULT_START_MS + DAY_MS + 3 * HOUR_MS
        );
        assert_eq!(moved.validate(), Ok(()));
    }

    #[test]
    fn generator_temperature_excursion() {
        let start_ms = DEFAULT_START_MS + 5 * HOUR_MS;
        let config = GeneratorConfig {
            warehouses: 1,
            incidents: vec![Incident {
                warehouse: 0,
                kind: IncidentKind::TemperatureExcursion { delta_c: 6.0 },
                start_ms,
                end_ms: start_ms + 10 * MINUTE_MS,
            }],
            ..small_config(29)
        };
        let mut stream = WarehouseStream::new(&config, 0).unwrap();
        let (mut inside, mut before) = (Vec::new(), Vec::new());
        while stream.peek_emit_ms() < start_ms + 10 * MINUTE_MS {
            if let (_, Event::Sensor(sensor)) = stream.next().unwrap() {
                if sensor.metric != "temperature" || sensor.ts + 10 * MINUTE_MS < start_ms {
                    continue;
                }
                let target = if sensor.ts >= start_ms {
                    &mut inside
                } else {
                    &mut before
                };
                target.push(sensor.value.get());
            }
        }
        let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
        assert!(
            mean(&inside) > mean(&before) + 5.0,
            "{} vs {}",
            mean(&inside),
            mean(&before)
        );
    }

    /// Per 60 s window of one warehouse: (delivered count, sum of durations in ms), joining
    /// deduplicated `delivered` events to their orders naively (SPEC §3.1-2).
    fn delivery_windows(
        events: &[(Millis, Event)],
        warehouse: &str,
    ) -> BTreeMap<Millis, (u64, u64)> {
        let unique: HashSet<&Event> = events.iter().map(|(_, event)| event).collect();
        let mut order_ts: HashMap<&str, Vec<Millis>> = HashMap::new();
        for event in &unique {
            if let Event::Order(order) = event {
                if order.warehouse == warehouse {
                    order_ts.entry(&order.order_id).or_default().push(order.ts);
                }
            }
        }
        let mut windows = BTreeMap::new();
        for event in &unique {
            let Event::Delivery(delivery) = event else {
                continue;
            };
            if delivery.status != DeliveryStatus::Delivered {
                continue;
            }
            for &ts in order_ts
                .get(delivery.order_id.as_str())
                .into_iter()
                .flatten()
            {
                if ts <= delivery.ts && delivery.ts <= ts + MAX_DELIVERY_MS {
                    let window = windows
                        .entry(delivery.ts - delivery.ts % MINUTE_MS)
                        .or_insert((0, 0));
                    window.0 += 1;
                    window.1 += delivery.ts - ts;
                }
            }
        }
        windows
    }

    /// SPEC §3.3 statistics of the window means with `window_start` in `[from, to)`:
    /// (n, mu, population sigma).
    fn history(
        windows: &BTreeMap<Millis, (u64, u64)>,
        from: Millis,
        to: Millis,
    ) -> (usize, f64, f64) {
        let means: Vec<f64> = windows
            .range(from..to)
            .filter(|(_, (count, _))| *count > 0)
            .map(|(_, (count, sum))| *sum as f64 / *count as f64)
            .collect();
        let n = means.len();
        let mu = means.iter().sum::<f64>() / n as f64;
        let variance = means.iter().map(|m| (m - mu) * (m - mu)).sum::<f64>() / n as f64;
        (n, mu, variance.sqrt())
    }

    /// Runs a 10-minute factor-3 slow-deliveries incident on wh-02 starting at `hour` o'clock,
    /// 8 hours after the start of the simulation (delivery traffic has long ramped up), and
    /// returns, per incident window, (z against the 30 minutes before the
    /// incident, z under the SPEC §3.3 rolling history).
    fn incident_z_values(seed: u64, hour: u64) -> Vec<(f64, Option<f64>)> {
        let start_ms = DEFAULT_START_MS + hour * HOUR_MS;
        let end_ms = start_ms + 10 * MINUTE_MS;
        let config = GeneratorConfig {
            warehouses: 2,
            incidents: vec![Incident {
                warehouse: 1,
                kind: IncidentKind::SlowDeliveries { factor: 3.0 },
                start_ms,
                end_ms,
            }],
            start_ms: start_ms - 8 * HOUR_MS,
            ..small_config(seed)
        };
        let generator = Generator::new(config, |_| true).unwrap();
        let all = events_until(generator, end_ms + MINUTE_MS);
        let windows = delivery_windows(&all, "wh-02");
        let (n, mu, sigma) = history(&windows, start_ms - 30 * MINUTE_MS, start_ms);
        assert!(
            n >= 10 && sigma > 0.0,
            "seed {seed} hour {hour}: n {n} sigma {sigma}"
        );
        // The other warehouse is untouched.
        let calm = delivery_windows(&all, "wh-01");
        let (_, calm_mu, calm_sigma) = history(&calm, start_ms - 30 * MINUTE_MS, start_ms);
        let (_, calm_incident_mu, _) = history(&calm, start_ms, end_ms);
        assert!((calm_incident_mu - calm_mu).abs() < 6.0 * calm_sigma);

        (start_ms..end_ms)
            .step_by(MINUTE_MS as usize)
            .map(|window_start| {
                let (count, sum) = windows.get(&window_start).copied().unwrap_or((0, 0));
                assert!(
                    count > 0,
                    "seed {seed} hour {hour}: no delivery in window {window_start}"
                );
                let mean = sum as f64 / count as f64;
                let z_fixed = (mean - mu) / sigma;
                let (n, rolling_mu, rolling_sigma) =
                    history(&windows, window_start - 30 * MINUTE_MS, window_start);
                let z_rolling =
                    (n >= 10 && rolling_sigma > 0.0).then(|| (mean - rolling_mu) / rolling_sigma);
                (z_fixed, z_rolling)
            })
            .collect()
    }

    #[test]
    fn generator_slow_delivery_incident_fires_the_z_alert() {
        for (seed, hour) in [(1, 6), (2, 3), (3, 11), (4, 20)] {
            let z = incident_z_values(seed, hour);
            let shown: Vec<String> = z
                .iter()
                .map(|(fixed, rolling)| format!("{fixed:.1}/{:.1}", rolling.unwrap_or(f64::NAN)))
                .collect();
            println!(
                "seed {seed} {hour:02}:00 z (vs pre-incident / SPEC rolling): {}",
                shown.join(" ")
            );
            // Against the 30 minutes before the incident, every incident window is an outlier.
            for &(fixed, _) in &z {
                assert!(fixed > 3.0, "seed {seed} hour {hour}: z {fixed}");
            }
            // Under the SPEC's rolling history the first windows of the incident alert; later
            // ones are diluted by the incident windows already in the history.
            let firing = z
                .iter()
                .take_while(|(_, r)| r.is_some_and(|r| r > 3.0))
                .count();
            assert!(firing >= 2, "seed {seed} hour {hour}: {shown:?}");
        }
    }

    /// Throughput of `write_jsonl` (1 M events, or `GENERATOR_EVENTS`); run with
    /// `cargo test --release -p tidewatch-connectors generator_write_jsonl_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn generator_write_jsonl_speed() {
        let config = GeneratorConfig::default();
        let count = std::env::var("GENERATOR_EVENTS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1_000_000);
        let started = std::time::Instant::now();
        let bytes = write_jsonl(&config, count, &mut std::io::sink()).unwrap();
        let elapsed = started.elapsed().as_secs_f64();
        let file = tempfile::NamedTempFile::new().unwrap();
        let file_started = std::time::Instant::now();
        write_jsonl(&config, count, &mut file.as_file()).unwrap();
        let file_elapsed = file_started.elapsed().as_secs_f64();
        let generate_started = std::time::Instant::now();
        let generated = Generator::new(config, |_| true)
            .unwrap()
            .take(count)
            .count();
        let generate_elapsed = generate_started.elapsed().as_secs_f64();
        println!(
            "write_jsonl: {count} events, {bytes} bytes in {elapsed:.3} s = {:.2} M events/s \
             ({:.0} MB/s); to a file: {:.2} M events/s; generating alone: {:.2} M events/s",
            count as f64 / elapsed / 1e6,
            bytes as f64 / elapsed / 1e6,
            count as f64 / file_elapsed / 1e6,
            generated as f64 / generate_elapsed / 1e6,
        );
    }
}
