//! Typed events (SPEC §1) and their JSON Lines form.
//!
//! Every type here crosses timely exchanges (bincode) and may sit in differential arrangements,
//! so each derives the nine traits named in DESIGN.md. Floating-point fields are wrapped in
//! [`FiniteF64`], which is finite by construction and therefore totally ordered and hashable.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

/// Event time: milliseconds since the Unix epoch.
pub type Millis = u64;

/// A short string stored inline (no heap allocation up to 24 bytes): identifiers and names.
/// Events carry several such strings each, so keeping them off the heap matters for throughput.
pub type Text = compact_str::CompactString;

/// Largest accepted `ts` (2^53 ms, about 285,000 years after 1970): every JSON parser reads it
/// exactly, and `ts + 7 days + one window` cannot overflow a `u64`.
pub const MAX_TS: Millis = 1 << 53;

/// A finite `f64` with a total order, equality and hash (negative zero is stored as zero).
///
/// Construct with [`FiniteF64::new`], which refuses NaN and infinities.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FiniteF64(f64);

impl FiniteF64 {
    /// Zero.
    pub const ZERO: FiniteF64 = FiniteF64(0.0);

    /// Wraps `value` if it is finite; `-0.0` becomes `0.0` so that equal numbers are equal values.
    pub fn new(value: f64) -> Option<Self> {
        if value.is_finite() {
            Some(FiniteF64(if value == 0.0 { 0.0 } else { value }))
        } else {
            None
        }
    }

    /// The wrapped number.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl PartialEq for FiniteF64 {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}
impl Eq for FiniteF64 {}
impl PartialOrd for FiniteF64 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for FiniteF64 {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}
impl Hash for FiniteF64 {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state)
    }
}

/// An `order` event.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Order {
    /// Order identifier (non-empty).
    pub order_id: Text,
    /// Warehouse the order is fulfilled from; joined deliveries belong to it.
    pub warehouse: Text,
    /// Stock-keeping unit.
    pub sku: Text,
    /// Quantity, at least 1.
    pub qty: u64,
    /// Amount, at least 0.
    pub amount: FiniteF64,
    /// Event time.
    pub ts: Millis,
}

/// Status of a `delivery` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DeliveryStatus {
    /// Picked in the warehouse.
    Picked,
    /// Handed to the carrier.
    InTransit,
    /// Delivered to the customer: the only status the LOGI-1 join uses.
    Delivered,
}

impl DeliveryStatus {
    /// Parses the SPEC spelling (`picked`, `in_transit`, `delivered`).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "picked" => Some(DeliveryStatus::Picked),
            "in_transit" => Some(DeliveryStatus::InTransit),
            "delivered" => Some(DeliveryStatus::Delivered),
            _ => None,
        }
    }

    /// The SPEC spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Picked => "picked",
            DeliveryStatus::InTransit => "in_transit",
            DeliveryStatus::Delivered => "delivered",
        }
    }
}

/// A `delivery` event.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Delivery {
    /// The order this delivery step belongs to.
    pub order_id: Text,
    /// Warehouse named on the delivery (the join uses the order's warehouse instead).
    pub warehouse: Text,
    /// Carrier.
    pub carrier: Text,
    /// Step of the delivery.
    pub status: DeliveryStatus,
    /// Event time.
    pub ts: Millis,
}

/// A `sensor` event.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Sensor {
    /// Sensor identifier.
    pub sensor_id: Text,
    /// Warehouse the sensor is in.
    pub warehouse: Text,
    /// Metric name, e.g. `temperature` or `humidity`.
    pub metric: Text,
    /// Reading.
    pub value: FiniteF64,
    /// Event time.
    pub ts: Millis,
}

/// One validated event.
///
/// Serde derives here use the default (externally tagged) layout, which bincode can carry across
/// exchanges; the JSON Lines layout with a `type` field is written by [`Event::write_json`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Event {
    /// An order.
    Order(Order),
    /// A delivery step.
    Delivery(Delivery),
    /// A sensor reading.
    Sensor(Sensor),
}

impl Event {
    /// Event time of the event.
    pub fn ts(&self) -> Millis {
        match self {
            Event::Order(o) => o.ts,
            Event::Delivery(d) => d.ts,
            Event::Sensor(s) => s.ts,
        }
    }

    /// Warehouse named on the event.
    pub fn warehouse(&self) -> &str {
        match self {
            Event::Order(o) => &o.warehouse,
            Event::Delivery(d) => &d.warehouse,
            Event::Sensor(s) => &s.warehouse,
        }
    }

    /// The SPEC `type` of the event.
    pub fn type_name(&self) -> &'static str {
        match self {
            Event::Order(_) => "order",
            Event::Delivery(_) => "delivery",
            Event::Sensor(_) => "sensor",
        }
    }

    /// Appends the event as one JSON object (SPEC §1 layout, no trailing newline) to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail, and every field is a plain string or number.
        let value = match self {
            Event::Order(o) => serde_json::json!({
                "type": "order", "order_id": o.order_id, "warehouse": o.warehouse, "sku": o.sku,
                "qty": o.qty, "amount": o.amount.get(), "ts": o.ts,
            }),
            Event::Delivery(d) => serde_json::json!({
                "type": "delivery", "order_id": d.order_id, "warehouse": d.warehouse,
                "carrier": d.carrier, "status": d.status.as_str(), "ts": d.ts,
            }),
            Event::Sensor(s) => serde_json::json!({
                "type": "sensor", "sensor_id": s.sensor_id, "warehouse": s.warehouse,
                "metric": s.metric, "value": s.value.get(), "ts": s.ts,
            }),
        };
        if let Err(error) = serde_json::to_writer(&mut *out, &value) {
            // Unreachable for an in-memory Vec; keep the output well-formed regardless.
            tracing::error!(%error, "could not serialize event");
        }
    }

    /// The event as one JSON Lines line (without the newline).
    pub fn to_json_line(&self) -> String {
        let mut out = Vec::with_capacity(160);
        self.write_json(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}
