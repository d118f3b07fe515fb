//! Parsing and validation of one JSON Lines line into an [`Event`] (SPEC §1).
//!
//! A line either becomes an event or a [`Rejection`] whose [`reason`](Rejection::reason) is one
//! of the stable codes below. Nothing a line contains can make this code panic.
//!
//! | reason | when |
//! |---|---|
//! | `not_json` | the line is not one valid JSON value (includes invalid UTF-8, `NaN`, numbers out of range) |
//! | `not_object` | valid JSON, but not an object |
//! | `missing_field:type` | no `type` field |
//! | `unknown_type` | `type` is not one of the strings `order`, `delivery`, `sensor` |
//! | `missing_field:<f>` | a required field is absent |
//! | `bad_value:<f>` | a required field is present with the wrong JSON type or out of range (`null` included) |
//!
//! Fields are checked in the order SPEC §1 lists them; the first failure is reported.
//! Repeated keys follow the common JSON convention: the last occurrence wins.
//!
//! Parsing is the floor under throughput, so the line is deserialized straight into a flat
//! record of borrowed field values (no `serde_json::Value` tree, no buffering of the object).

use crate::event::{
    Delivery, DeliveryStatus, Event, FiniteF64, Millis, Order, Sensor, Text, MAX_TS,
};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// Why a line was rejected: a stable, machine-readable code (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rejection {
    /// Not one valid JSON value.
    NotJson,
    /// Valid JSON, not an object.
    NotObject,
    /// `type` is not a known event type.
    UnknownType,
    /// A required field is missing.
    MissingField(&'static str),
    /// A required field has the wrong type or is out of range.
    BadValue(&'static str),
    /// The event time is below the source's watermark (assigned by sources, not by parsing).
    Late,
}

impl Rejection {
    /// The reason code written to the dead-letter output, e.g. `missing_field:ts`.
    pub fn reason(&self) -> String {
        match self {
            Rejection::NotJson => "not_json".to_string(),
            Rejection::NotObject => "not_object".to_string(),
            Rejection::UnknownType => "unknown_type".to_string(),
            Rejection::MissingField(field) => format!("missing_field:{field}"),
            Rejection::BadValue(field) => format!("bad_value:{field}"),
            Rejection::Late => "late".to_string(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason())
    }
}

/// Parses and validates one line (without its newline).
///
/// # Examples
/// ```
/// use tidewatch_operators::validate::{parse_line, Rejection};
/// use tidewatch_operators::event::Event;
///
/// let line = br#"{"type":"sensor","sensor_id":"s-1","warehouse":"wh-1","metric":"temperature","value":21.5,"ts":60000}"#;
/// match parse_line(line) {
///     Ok(Event::Sensor(s)) => assert_eq!(s.value.get(), 21.5),
///     other => panic!("unexpected {other:?}"),
/// }
/// assert_eq!(parse_line(b"{\"type\":\"order\"}"), Err(Rejection::MissingField("order_id")));
/// assert_eq!(parse_line(b"not json"), Err(Rejection::NotJson));
/// ```
pub fn parse_line(line: &[u8]) -> Result<Event, Rejection> {
    let raw: RawLine<'_> = match serde_json::from_slice(line) {
        Ok(raw) => raw,
        Err(_) => return Err(Rejection::NotJson),
    };
    let RawLine::Object(fields) = raw else {
        return Err(Rejection::NotObject);
    };
    fields.validate()
}

/// A JSON value reduced to what validation needs; strings borrow from the line when unescaped.
#[derive(Debug)]
enum FieldValue<'a> {
    Str(Cow<'a, str>),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for FieldValue<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl<'de> Visitor<'de> for FieldVisitor {
            type Value = FieldValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(FieldValue::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(FieldValue::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(FieldValue::Str(Cow::Owned(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
                Ok(FieldValue::Unsigned(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(FieldValue::Signed(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(FieldValue::Float(v))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(FieldValue::Other)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(FieldValue::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FieldValue::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(FieldValue::Other)
            }
        }
        deserializer.deserialize_any(FieldVisitor)
    }
}

/// The fields of an event line that SPEC §1 names; anything else is skipped.
#[derive(Debug, Default)]
struct RawFields<'a> {
    kind: Option<FieldValue<'a>>,
    order_id: Option<FieldValue<'a>>,
    warehouse: Option<FieldValue<'a>>,
    sku: Option<FieldValue<'a>>,
    qty: Option<FieldValue<'a>>,
    amount: Option<FieldValue<'a>>,
    carrier: Option<FieldValue<'a>>,
    status: Option<FieldValue<'a>>,
    sensor_id: Option<FieldValue<'a>>,
    metric: Option<FieldValue<'a>>,
    value: Option<FieldValue<'a>>,
    ts: Option<FieldValue<'a>>,
}

/// A whole line: an object's fields, or "some other JSON value".
enum RawLine<'a> {
    Object(Box<RawFields<'a>>),
    NotObject,
}

impl<'de: 'a, 'a> Deserialize<'de> for RawLine<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LineVisitor;
        impl<'de> Visitor<'de> for LineVisitor {
            type Value = RawLine<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Box::<RawFields<'de>>::default();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let slot = match key.as_ref() {
                        "type" => &mut fields.kind,
                        "order_id" => &mut fields.order_id,
                        "warehouse" => &mut fields.warehouse,
                        "sku" => &mut fields.sku,
                        "qty" => &mut fields.qty,
                        "amount" => &mut fields.amount,
                        "carrier" => &mut fields.carrier,
                        "status" => &mut fields.status,
                        "sensor_id" => &mut fields.sensor_id,
                        "metric" => &mut fields.metric,
                        "value" => &mut fields.value,
                        "ts" => &mut fields.ts,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = Some(map.next_value::<FieldValue<'de>>()?);
                }
                Ok(RawLine::Object(fields))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(RawLine::NotObject)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(RawLine::NotObject)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(RawLine::NotObject)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(RawLine::NotObject)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(RawLine::NotObject)
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(RawLine::NotObject)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(RawLine::NotObject)
            }
        }
        deserializer.deserialize_any(LineVisitor)
    }
}

fn required<'f, 'a>(
    slot: &'f Option<FieldValue<'a>>,
    name: &'static str,
) -> Result<&'f FieldValue<'a>, Rejection> {
    slot.as_ref().ok_or(Rejection::MissingField(name))
}

fn string(slot: &Option<FieldValue<'_>>, name: &'static str) -> Result<Text, Rejection> {
    match required(slot, name)? {
        FieldValue::Str(text) => Ok(Text::from(text.as_ref())),
        _ => Err(Rejection::BadValue(name)),
    }
}

fn non_empty_string(slot: &Option<FieldValue<'_>>, name: &'static str) -> Result<Text, Rejection> {
    let text = string(slot, name)?;
    if text.is_empty() {
        Err(Rejection::BadValue(name))
    } else {
        Ok(text)
    }
}

fn finite_number(
    slot: &Option<FieldValue<'_>>,
    name: &'static str,
) -> Result<FiniteF64, Rejection> {
    let number = match required(slot, name)? {
        FieldValue::Unsigned(n) => *n as f64,
        FieldValue::Signed(n) => *n as f64,
        FieldValue::Float(x) => *x,
        _ => return Err(Rejection::BadValue(name)),
    };
    FiniteF64::new(number).ok_or(Rejection::BadValue(name))
}

fn timestamp(slot: &Option<FieldValue<'_>>) -> Result<Millis, Rejection> {
    match required(slot, "ts")? {
        FieldValue::Unsigned(n) if *n <= MAX_TS => Ok(*n),
        _ => Err(Rejection::BadValue("ts")),
    }
}

impl RawFields<'_> {
    fn validate(&self) -> Result<Event, Rejection> {
        let kind = match required(&self.kind, "type") {
            Ok(FieldValue::Str(kind)) => kind,
            Ok(_) => return Err(Rejection::UnknownType),
            Err(missing) => return Err(missing),
        };
        match kind.as_ref() {
            "order" => {
                let order_id = non_empty_string(&self.order_id, "order_id")?;
                let warehouse = string(&self.warehouse, "warehouse")?;
                let sku = string(&self.sku, "sku")?;
                let qty = match required(&self.qty, "qty")? {
                    FieldValue::Unsigned(n) if *n >= 1 => *n,
                    _ => return Err(Rejection::BadValue("qty")),
                };
                let amount = finite_number(&self.amount, "amount")?;
                if amount.get() < 0.0 {
                    return Err(Rejection::BadValue("amount"));
                }
                let ts = timestamp(&self.ts)?;
                Ok(Event::Order(Order {
                    order_id,
                    warehouse,
                    sku,
                    qty,
                    amount,
                    ts,
                }))
            }
            "delivery" => {
                let order_id = non_empty_string(&self.order_id, "order_id")?;
                let warehouse = string(&self.warehouse, "warehouse")?;
                let carrier = string(&self.carrier, "carrier")?;
                let status = match required(&self.status, "status")? {
                    FieldValue::Str(text) => {
                        DeliveryStatus::parse(text).ok_or(Rejection::BadValue("status"))?
                    }
                    _ => return Err(Rejection::BadValue("status")),
                };
                let ts = timestamp(&self.ts)?;
                Ok(Event::Delivery(Delivery {
                    order_id,
                    warehouse,
                    carrier,
                    status,
                    ts,
                }))
            }
            "sensor" => {
                let sensor_id = string(&self.sensor_id, "sensor_id")?;
                let warehouse = string(&self.warehouse, "warehouse")?;
                let metric = string(&self.metric, "metric")?;
                let value = finite_number(&self.value, "value")?;
                let ts = timestamp(&self.ts)?;
                Ok(Event::Sensor(Sensor {
                    sensor_id,
                    warehouse,
                    metric,
                    value,
                    ts,
                }))
            }
            _ => Err(Rejection::UnknownType),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str = r#"{"type":"order","order_id":"o-1","warehouse":"wh-03","sku":"sku-1","qty":2,"amount":59.9,"ts":1764288000000}"#;

    fn reason(line: &str) -> String {
        match parse_line(line.as_bytes()) {
            Ok(event) => format!("ok:{}", event.type_name()),
            Err(rejection) => rejection.reason(),
        }
    }

    #[test]
    fn valid_events_parse() {
        let Ok(Event::Order(order)) = parse_line(ORDER.as_bytes()) else {
            panic!("order did not parse");
        };
        assert_eq!(order.order_id, "o-1");
        assert_eq!(order.qty, 2);
        assert_eq!(order.amount.get(), 59.9);
        assert_eq!(order.ts, 1_764_288_000_000);
        assert_eq!(
            reason(
                r#"{"type":"delivery","order_id":"o-1","warehouse":"wh-03","carrier":"c-1","status":"delivered","ts":5,"extra":[1,{"a":2}]}"#
            ),
            "ok:delivery"
        );
        assert_eq!(
            reason(
                r#"{"ts":0,"value":-3,"metric":"humidity","warehouse":"Zürich 倉庫","sensor_id":"s","type":"sensor"}"#
            ),
            "ok:sensor"
        );
    }

    #[test]
    fn every_kind_of_bad_line_has_its_reason() {
        let cases = [
            ("", "not_json"),
            ("{", "not_json"),
            ("{\"type\":\"order\"} trailing", "not_json"),
            ("[1,2]", "not_object"),
            ("42", "not_object"),
            ("\"order\"", "not_object"),
            ("null", "not_object"),
            ("{}", "missing_field:type"),
            (r#"{"type":"refund"}"#, "unknown_type"),
            (r#"{"type":7}"#, "unknown_type"),
            (
                r#"{"type":"order","warehouse":"w"}"#,
                "missing_field:order_id",
            ),
            (
                r#"{"type":"order","order_id":"","warehouse":"w"}"#,
                "bad_value:order_id",
            ),
            (r#"{"type":"order","order_id":5}"#, "bad_value:order_id"),
            (
                r#"{"type":"order","order_id":"o","warehouse":null}"#,
                "bad_value:warehouse",
            ),
            (
                r#"{"type":"order","order_id":"o","warehouse":"w","sku":"s","qty":0,"amount":1,"ts":1}"#,
                "bad_value:qty",
            ),
            (
                r#"{"type":"order","order_id":"o","warehouse":"w","sku":"s","qty":1.5,"amount":1,"ts":1}"#,
                "bad_value:qty",
            ),
            (
                r#"{"type":"order","order_id":"o","warehouse":"w","sku":"s","qty":true,"amount":1,"ts":1}"#,
                "bad_value:qty",
            ),
            (
                r#"{"type":"order","order_id":"o","warehouse":"w","sku":"s","qty":1,"amount":-0.5,"ts":1}"#,
                "bad_value:amount",
            ),
            (
                r#"{"type":"order","order_id":"o","warehouse":"w","sku":"s","qty":1,"amount":"3","ts":1}"#,
                "bad_value:amount",
            ),
            (
                r#"{"type":"order","order_id":"o","warehouse":"w","sku":"s","qty":1,"amount":1}"#,
                "missing_field:ts",
            ),
            (
                r#"{"type":"order","order_id":"o","warehouse":"w","sku":"s","qty":1,"amount":1,"ts":-1}"#,
                "bad_value:ts",
            ),
            (
                r#"{"type":"order","order_id":"o","warehouse":"w","sku":"s","qty":1,"amount":1,"ts":1.0}"#,
                "bad_value:ts",
            ),
            (
                r#"{"type":"order","order_id":"o","warehouse":"w","sku":"s","qty":1,"amount":1,"ts":"1"}"#,
                "bad_value:ts",
            ),
            (
                r#"{"type":"order","order_id":"o","warehouse":"w","sku":"s","qty":1,"amount":1,"ts":18446744073709551615}"#,
                "bad_value:ts",
            ),
            (
                r#"{"type":"delivery","order_id":"o","warehouse":"w","carrier":"c","status":"lost","ts":1}"#,
                "bad_value:status",
            ),
            (
                r#"{"type":"delivery","order_id":"o","warehouse":"w","status":"picked","ts":1}"#,
                "missing_field:carrier",
            ),
            (
                r#"{"type":"sensor","sensor_id":"s","warehouse":"w","metric":"temperature","value":1e400,"ts":1}"#,
                "not_json",
            ),
            (
                r#"{"type":"sensor","sensor_id":"s","warehouse":"w","metric":"temperature","value":NaN,"ts":1}"#,
                "not_json",
            ),
            (
                r#"{"type":"sensor","sensor_id":"s","warehouse":"w","metric":"temperature","value":null,"ts":1}"#,
                "bad_value:value",
            ),
            (
                r#"{"type":"sensor","sensor_id":"s","warehouse":"w","metric":"temperature","ts":1}"#,
                "missing_field:value",
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(reason(line), expected, "line {line}");
        }
    }

    #[test]
    fn invalid_utf8_is_not_json() {
        let mut line = br#"{"type":"order","order_id":""#.to_vec();
        line.extend_from_slice(&[0xff, 0xfe]);
        line.extend_from_slice(br#""}"#);
        assert_eq!(parse_line(&line), Err(Rejection::NotJson));
    }

    #[test]
    fn last_repeated_key_wins_and_escaped_keys_match() {
        let line = r#"{"type":"refund","t\u0079pe":"sensor","sensor_id":"s","warehouse":"w","metric":"m","value":1,"ts":2}"#;
        assert_eq!(reason(line), "ok:sensor");
    }

    #[test]
    fn equal_numbers_are_equal_values() {
        let a = parse_line(br#"{"type":"sensor","sensor_id":"s","warehouse":"w","metric":"m","value":-0.0,"ts":2}"#);
        let b = parse_line(
            br#"{"type":"sensor","sensor_id":"s","warehouse":"w","metric":"m","value":0,"ts":2}"#,
        );
        assert_eq!(a, b);
    }

    /// Seeded random mutations of valid lines (byte flips, truncations, splices, junk) never
    /// panic, and every result is either an event that re-serializes to a line parsing to the
    /// same event, or a rejection with a known reason.
    #[test]
    fn mutated_lines_never_panic() {
        use rand::{Rng, SeedableRng};
        let seeds = [
            ORDER,
            r#"{"type":"delivery","order_id":"o-1","warehouse":"wh-03","carrier":"c-1","status":"delivered","ts":1764290000000}"#,
            r#"{"type":"sensor","sensor_id":"s-07","warehouse":"wh-03","metric":"temperature","value":21.5,"ts":1764288000500}"#,
        ];
        let junk: &[&[u8]] = &[
            b"\"",
            b"\\u0000",
            b"\\ud800",
            b"{",
            b"}",
            b"[",
            b"]",
            b",",
            b":",
            b"null",
            b"1e999",
            b"-",
            b"\xff",
            "é".as_bytes(),
            b"\n",
        ];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let (mut accepted, mut rejected) = (0, 0);
        for _ in 0..50_000 {
            let mut line = seeds[rng.random_range(0..seeds.len())].as_bytes().to_vec();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..=line.len());
                match rng.random_range(0..4) {
                    0 if !line.is_empty() => {
                        let i = rng.random_range(0..line.len());
                        line[i] = rng.random();
                    }
                    1 => line.truncate(at),
                    2 => {
                        let piece = junk[rng.random_range(0..junk.len())];
                        line.splice(at..at, piece.iter().copied());
                    }
                    _ => {
                        let end = rng.random_range(at..=line.len());
                        line.drain(at..end);
                    }
                }
            }
            match parse_line(&line) {
                Ok(event) => {
                    accepted += 1;
                    assert_eq!(parse_line(event.to_json_line().as_bytes()), Ok(event));
                }
                Err(rejection) => {
                    rejected += 1;
                    let reason = rejection.reason();
                    assert!(
                        [
                            "not_json",
                            "not_object",
                            "unknown_type",
                            "missing_field:",
                            "bad_value:"
                        ]
                        .iter()
                        .any(|known| reason.starts_with(known)),
                        "{reason}"
                    );
                }
            }
        }
        assert!(
            accepted > 100 && rejected > 10_000,
            "accepted {accepted}, rejected {rejected}"
        );
    }

    #[test]
    fn json_round_trip() {
        let Ok(event) = parse_line(ORDER.as_bytes()) else {
            panic!("order did not parse");
        };
        assert_eq!(parse_line(event.to_json_line().as_bytes()), Ok(event));
    }
}
