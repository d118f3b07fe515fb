//! Seeded random JSON Lines traffic designed to exercise every part of LOGI-1:
//! joins at the 0 ms / 7 day / 7 day + 1 ms boundaries, windows with and
//! without deliveries, z-score history with planted duration jumps, duplicates,
//! bounded disorder (no event is late with a disorder bound of 5000 ms) and
//! malformed lines of every dead-letter reason.

use rand::prelude::*;
use rand_chacha::ChaCha8Rng;
use std::io::Write;
use std::path::Path;

/// Start of the main traffic; a multiple of 60000 (a window start).
pub const BASE_TS: u64 = 1_764_288_000_000;
/// Length of the main traffic in minutes (= windows per warehouse).
pub const MINUTES: u64 = 45;
/// Every valid event's ts is >= (largest earlier valid ts) - SLACK_MS.
pub const SLACK_MS: u64 = 4_999;
/// 7 days, the join bound.
const WEEK_MS: u64 = 604_800_000;

/// Warehouses with regular traffic and their typical delivery durations (ms).
const WAREHOUSES: [(&str, u64); 5] = [
    ("wh-01", 95_000),
    ("wh-02", 600_000),
    ("Zürich-倉庫", 7_200_000),
    ("🚚 depot-α", 86_400_000),
    ("wh-\"q\"\\/5", 3_600_000),
];
/// The warehouse that receives the hand-placed join edge cases.
const EDGE_WAREHOUSE: &str = "wh-edge-é";
const CARRIERS: [&str; 4] = ["c-1", "c-2", "DHL Express", "ヤマト"];

/// A generated input plus the dead-letter reason the generator intended for
/// each line (`None` for valid events).
#[derive(Debug, Clone)]
pub struct Generated {
    pub lines: Vec<Vec<u8>>,
    pub labels: Vec<Option<String>>,
}

/// The lines of the random input for `seed` (see [`random_input_labeled`]).
pub fn random_input(seed: u64) -> Vec<Vec<u8>> {
    random_input_labeled(seed).lines
}

/// Builds the random input for `seed` together with the intended dead-letter reasons.
pub fn random_input_labeled(seed: u64) -> Generated {
    let mut gen = Gen::new(seed);
    gen.regular_traffic();
    gen.join_edge_cases();
    gen.unmatched_deliveries();
    gen.finish()
}

/// Writes `lines` to `path`, each followed by '\n'.
pub fn write_lines(path: &Path, lines: &[Vec<u8>]) {
    let file = std::fs::File::create(path)
        .unwrap_or_else(|e| panic!("create input file {}: {e}", path.display()));
    let mut out = std::io::BufWriter::new(file);
    for line in lines {
        out.write_all(line)
            .and_then(|_| out.write_all(b"\n"))
            .unwrap_or_else(|e| panic!("write input file {}: {e}", path.display()));
    }
    out.flush()
        .unwrap_or_else(|e| panic!("flush input file {}: {e}", path.display()));
}

/// A valid event as the generator knows it.
#[derive(Debug, Clone)]
enum GenEvent {
    Order {
        id: String,
        wh: String,
        sku: String,
        qty: u64,
        amount: f64,
        ts: u64,
    },
    Delivery {
        id: String,
        wh: String,
        carrier: String,
        status: &'static str,
        ts: u64,
    },
    Sensor {
        sid: String,
        wh: String,
        metric: &'static str,
        value: f64,
        ts: u64,
    },
}

impl GenEvent {
    fn ts(&self) -> u64 {
        match self {
            GenEvent::Order { ts, .. }
            | GenEvent::Delivery { ts, .. }
            | GenEvent::Sensor { ts, .. } => *ts,
        }
    }
}

/// How to spell an event; every style yields an equal event.
#[derive(Debug, Clone, Copy, Default)]
struct Style {
    /// Shuffle the key order.
    shuffle: bool,
    /// Write non-ASCII characters as \uXXXX escapes (surrogate pairs for emoji).
    ascii_escape: bool,
    /// Add unknown fields, which must be ignored.
    extra: bool,
    /// Write integral floats as integers (`12` instead of `12.0`).
    int_floats: bool,
    /// Add an earlier occurrence of a required key with a bad value (last one wins).
    repeated_key: bool,
    /// Surround the object with blanks.
    pad: bool,
}

/// Field list of a JSON object: (key, already encoded JSON value).
type Fields = Vec<(String, Vec<u8>)>;

/// One valid line with its arrival key (ts + jitter) for the local shuffle.
#[derive(Debug, Clone)]
struct Item {
    key: u64,
    seq: usize,
    ts: u64,
    line: Vec<u8>,
    adjacent_dup: bool,
}

struct Gen {
    rng: ChaCha8Rng,
    items: Vec<Item>,
    next_id: u64,
    jump_warehouses: Vec<usize>,
    jump_minute: u64,
}

impl Gen {
    fn new(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut idx: Vec<usize> = (0..WAREHOUSES.len()).collect();
        idx.shuffle(&mut rng);
        let jump_warehouses = idx[..2].to_vec();
        let jump_minute = rng.random_range(30..40);
        Gen {
            rng,
            items: Vec::new(),
            next_id: seed * 1_000_000,
            jump_warehouses,
            jump_minute,
        }
    }

    fn new_order_id(&mut self) -> String {
        self.next_id += 1;
        format!("o-{:09}", self.next_id)
    }

    /// A random offset inside a minute, often exactly on the window edges.
    fn offset_in_window(&mut self) -> u64 {
        match self.rng.random_range(0..20) {
            0 => 0,
            1 => 59_999,
            _ => self.rng.random_range(0..60_000),
        }
    }

    /// Delivery duration for warehouse `wh` at minute `m`, jumped when planted.
    fn duration(&mut self, wh: usize, m: u64) -> u64 {
        let base = WAREHOUSES[wh].1 as f64;
        let noise: f64 = (0..3).map(|_| self.rng.random::<f64>()).sum::<f64>() - 1.5;
        let mut d = base * (1.0 + 0.15 * noise);
        let jumped = m >= self.jump_minute && m < self.jump_minute + 3;
        if jumped && self.jump_warehouses.contains(&wh) {
            d *= self.rng.random_range(1.6..2.5);
        }
        (d as u64).min(WEEK_MS)
    }

    fn random_order(&mut self, id: String, wh: &str, ts: u64) -> GenEvent {
        let cents = match self.rng.random_range(0..5) {
            0 => self.rng.random_range(0..50) * 100,
            _ => self.rng.random_range(0..20_000),
        };
        GenEvent::Order {
            id,
            wh: wh.to_string(),
            sku: format!("sku-{:05}", self.rng.random_range(0..300)),
            qty: self.rng.random_range(1..6),
            amount: cents as f64 / 100.0,
            ts,
        }
    }

    fn delivery(&mut self, id: &str, wh: &str, status: &'static str, ts: u64) -> GenEvent {
        GenEvent::Delivery {
            id: id.to_string(),
            wh: wh.to_string(),
            carrier: CARRIERS
                .choose(&mut self.rng)
                .expect("carriers")
                .to_string(),
            status,
            ts,
        }
    }

    fn random_sensor(&mut self, wh: &str, ts: u64) -> GenEvent {
        let (metric, value) = if self.rng.random_bool(0.7) {
            let v = match self.rng.random_range(0..10) {
                0 => -(self.rng.random_range(0..600) as f64) / 100.0,
                1 => self.rng.random_range(15..25) as f64,
                _ => (self.rng.random_range(1_800..2_600) as f64) / 100.0,
            };
            ("temperature", v)
        } else {
            ("humidity", self.rng.random_range(300..700) as f64 / 10.0)
        };
        GenEvent::Sensor {
            sid: format!("s-{:02}", self.rng.random_range(0..12)),
            wh: wh.to_string(),
            metric,
            value,
            ts,
        }
    }

    /// Orders, deliveries (all statuses) and sensor readings for every
    /// warehouse and minute of the main traffic.
    fn regular_traffic(&mut self) {
        for m in 0..MINUTES {
            let ws = BASE_TS + m * 60_000;
            for (wh, (name, _)) in WAREHOUSES.iter().enumerate() {
                self.deliveries_in_minute(wh, m, ws);
                self.fresh_orders_in_minute(wh, ws);
                self.sensors_in_minute(name, ws);
            }
            if self.rng.random_bool(0.3) {
                self.sensors_in_minute(EDGE_WAREHOUSE, ws);
            }
        }
    }

    /// 5..=9 delivered orders (sometimes none) whose delivery falls in minute `m`.
    fn deliveries_in_minute(&mut self, wh: usize, m: u64, ws: u64) {
        let name = WAREHOUSES[wh].0;
        if self.rng.random_bool(0.08) {
            return;
        }
        for _ in 0..self.rng.random_range(5..=9) {
            let d_ts = ws + self.offset_in_window();
            let dur = self.duration(wh, m);
            let o_ts = d_ts - dur;
            let id = self.new_order_id();
            let order = self.random_order(id.clone(), name, o_ts);
            self.push(order);
            if self.rng.random_bool(0.3) {
                let picked = self.delivery(&id, name, "picked", o_ts + dur / 3);
                self.push(picked);
                let transit = self.delivery(&id, name, "in_transit", o_ts + 2 * dur / 3);
                self.push(transit);
            }
            // The delivery's own warehouse does not matter: the pair is the order's.
            let d_wh = if self.rng.random_bool(0.1) {
                WAREHOUSES[(wh + 1) % WAREHOUSES.len()].0
            } else {
                name
            };
            let delivered = self.delivery(&id, d_wh, "delivered", d_ts);
            self.push(delivered);
        }
    }

    /// Orders placed in the minute; some are delivered quickly (0..=5 min later).
    fn fresh_orders_in_minute(&mut self, wh: usize, ws: u64) {
        let name = WAREHOUSES[wh].0;
        for _ in 0..self.rng.random_range(0..=3) {
            let o_ts = ws + self.offset_in_window();
            let id = self.new_order_id();
            let order = self.random_order(id.clone(), name, o_ts);
            self.push(order);
            // Quick deliveries are outliers for slow warehouses: keep them rare there.
            let p_quick = if wh == 0 { 0.3 } else { 0.03 };
            if self.rng.random_bool(p_quick) {
                let d_ts = o_ts + self.rng.random_range(0..=300_000);
                let delivered = self.delivery(&id, name, "delivered", d_ts);
                self.push(delivered);
            }
        }
    }

    fn sensors_in_minute(&mut self, wh: &str, ws: u64) {
        for _ in 0..self.rng.random_range(2..=5) {
            let ts = ws + self.offset_in_window();
            let sensor = self.random_sensor(wh, ts);
            self.push(sensor);
        }
    }

    /// Hand-placed joins at the boundaries, mostly in EDGE_WAREHOUSE.
    fn join_edge_cases(&mut self) {
        for _ in 0..6 {
            let d_ts =
                BASE_TS + self.rng.random_range(0..MINUTES) * 60_000 + self.offset_in_window();
            let edge = EDGE_WAREHOUSE;
            // 0 ms, exactly 7 days (joins), 7 days + 1 ms and -1 ms (do not join).
            for o_ts in [d_ts, d_ts - WEEK_MS, d_ts - WEEK_MS - 1, d_ts + 1] {
                let id = self.new_order_id();
                let order = self.random_order(id.clone(), edge, o_ts);
                self.push(order);
                let delivered = self.delivery(&id, edge, "delivered", d_ts);
                self.push(delivered);
            }
            self.same_id_two_orders(d_ts);
            self.not_delivered_and_double_delivered(d_ts);
        }
    }

    /// One id, two different orders (different warehouses), one delivery: two
    /// pairs; then one id whose second order is 7 days + 5 ms too old: one pair.
    fn same_id_two_orders(&mut self, d_ts: u64) {
        let id = self.new_order_id();
        let a = self.random_order(id.clone(), EDGE_WAREHOUSE, d_ts - 1_000);
        let b = self.random_order(id.clone(), WAREHOUSES[2].0, d_ts - 120_000);
        self.push(a);
        self.push(b);
        let delivered = self.delivery(&id, EDGE_WAREHOUSE, "delivered", d_ts);
        self.push(delivered);

        let id = self.new_order_id();
        let a = self.random_order(id.clone(), EDGE_WAREHOUSE, d_ts - 30_000);
        let b = self.random_order(id.clone(), EDGE_WAREHOUSE, d_ts - WEEK_MS - 5);
        self.push(a);
        self.push(b);
        let delivered = self.delivery(&id, EDGE_WAREHOUSE, "delivered", d_ts);
        self.push(delivered);
    }

    /// An order only picked / in transit (no pair) and one delivered twice by
    /// different carriers at different times (two pairs).
    fn not_delivered_and_double_delivered(&mut self, d_ts: u64) {
        let id = self.new_order_id();
        let order = self.random_order(id.clone(), EDGE_WAREHOUSE, d_ts - 50_000);
        self.push(order);
        for status in ["picked", "in_transit"] {
            let d = self.delivery(&id, EDGE_WAREHOUSE, status, d_ts);
            self.push(d);
        }
        let id = self.new_order_id();
        let order = self.random_order(id.clone(), EDGE_WAREHOUSE, d_ts - 70_000);
        self.push(order);
        for (carrier, dt) in [("c-1", 0), ("c-2", 1)] {
            let d = GenEvent::Delivery {
                id: id.clone(),
                wh: EDGE_WAREHOUSE.into(),
                carrier: carrier.into(),
                status: "delivered",
                ts: d_ts + dt,
            };
            self.push(d);
        }
    }

    /// Delivered deliveries for ids no order carries.
    fn unmatched_deliveries(&mut self) {
        for i in 0..30 {
            let ts = BASE_TS + self.rng.random_range(0..MINUTES * 60_000);
            let wh = WAREHOUSES[i % WAREHOUSES.len()].0;
            let d = self.delivery(&format!("o-unmatched-{i}"), wh, "delivered", ts);
            self.push(d);
        }
    }

    /// A mostly plain, sometimes unusual, spelling.
    fn random_style(&mut self) -> Style {
        if self.rng.random_bool(0.85) {
            return Style::default();
        }
        Style {
            shuffle: self.rng.random_bool(0.5),
            ascii_escape: self.rng.random_bool(0.4),
            extra: self.rng.random_bool(0.4),
            int_floats: self.rng.random_bool(0.5),
            repeated_key: self.rng.random_bool(0.2),
            pad: self.rng.random_bool(0.1),
        }
    }

    /// Adds a valid event with a random spelling and arrival jitter; sometimes
    /// also exact or semantic duplicates of it.
    fn push(&mut self, ev: GenEvent) {
        let style = self.random_style();
        let line = self.render(&ev, style);
        self.push_line(ev.ts(), line.clone(), false);
        let roll = self.rng.random_range(0..100);
        if roll < 2 {
            self.push_line(ev.ts(), line, false); // exact, usually not adjacent
        } else if roll < 3 {
            self.push_line(ev.ts(), line, true); // exact, adjacent
        } else if roll < 4 {
            let other = Style {
                shuffle: true,
                ascii_escape: true,
                extra: true,
                int_floats: true,
                ..Style::default()
            };
            let line = self.render(&ev, other);
            self.push_line(ev.ts(), line, false); // equal field by field
        }
    }

    fn push_line(&mut self, ts: u64, line: Vec<u8>, adjacent_dup: bool) {
        let key = ts + self.rng.random_range(0..=SLACK_MS);
        let seq = self.items.len();
        self.items.push(Item {
            key,
            seq,
            ts,
            line,
            adjacent_dup,
        });
    }

    /// The JSON fields of `ev` in SPEC order (type first).
    fn fields(&self, ev: &GenEvent, style: Style) -> Fields {
        let s = |v: &str| encode_str(v, style.ascii_escape);
        let f = |v: f64| encode_f64(v, style.int_floats);
        let n = |v: u64| v.to_string().into_bytes();
        let pairs: Vec<(&str, Vec<u8>)> = match ev {
            GenEvent::Order {
                id,
                wh,
                sku,
                qty,
                amount,
                ts,
            } => vec![
                ("type", s("order")),
                ("order_id", s(id)),
                ("warehouse", s(wh)),
                ("sku", s(sku)),
                ("qty", n(*qty)),
                ("amount", f(*amount)),
                ("ts", n(*ts)),
            ],
            GenEvent::Delivery {
                id,
                wh,
                carrier,
                status,
                ts,
            } => vec![
                ("type", s("delivery")),
                ("order_id", s(id)),
                ("warehouse", s(wh)),
                ("carrier", s(carrier)),
                ("status", s(status)),
                ("ts", n(*ts)),
            ],
            GenEvent::Sensor {
                sid,
                wh,
                metric,
                value,
                ts,
            } => vec![
                ("type", s("sensor")),
                ("sensor_id", s(sid)),
                ("warehouse", s(wh)),
                ("metric", s(metric)),
                ("value", f(*value)),
                ("ts", n(*ts)),
            ],
        };
        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    fn render(&mut self, ev: &GenEvent, style: Style) -> Vec<u8> {
        let mut fields = self.fields(ev, style);
        if style.extra {
            fields.push(("note".into(), encode_str("ignored ✓", style.ascii_escape)));
            fields.push((
                "meta".into(),
                br#"{"src":"gen","v":[1,2.5,null,true],"ts":"soon"}"#.to_vec(),
            ));
            fields.push(("Type".into(), b"\"refund\"".to_vec()));
        }
        if style.shuffle {
            fields.shuffle(&mut self.rng);
        }
        if style.repeated_key {
            // An earlier bad occurrence of `ts`; the later, valid one wins.
            fields.insert(0, ("ts".into(), b"\"not a number\"".to_vec()));
        }
        let mut line = render_object(&fields);
        if style.pad {
            line.splice(0..0, b"  \t".iter().copied());
            line.extend_from_slice(b" \t ");
        }
        line
    }

    /// Shuffles locally (sort by arrival key), inserts adjacent duplicates,
    /// boundary-late-but-not-late events and malformed lines.
    fn finish(mut self) -> Generated {
        let mut items = std::mem::take(&mut self.items);
        items.sort_by_key(|it| (it.key, it.seq));
        let mut valid: Vec<(u64, Vec<u8>)> = Vec::with_capacity(items.len() + 64);
        let mut max_ts = 0;
        for it in items {
            let original_index = valid.len();
            if it.adjacent_dup && original_index > 0 && self.rng.random_bool(0.5) {
                // Place right after its twin if the twin already came.
                let twin = valid.iter().rposition(|(_, l)| *l == it.line);
                if let Some(i) = twin {
                    valid.insert(i + 1, (it.ts, it.line));
                    continue;
                }
            }
            if max_ts > 0 && self.rng.random_range(0..400) == 0 {
                // An event exactly at the edge of the disorder bound.
                let edge = GenEvent::Sensor {
                    sid: "s-edge".into(),
                    wh: EDGE_WAREHOUSE.into(),
                    metric: "temperature",
                    value: 4.25,
                    ts: max_ts - SLACK_MS,
                };
                valid.push((max_ts - SLACK_MS, self.render(&edge, Style::default())));
            }
            max_ts = max_ts.max(it.ts);
            valid.push((it.ts, it.line));
        }
        assert_bounded_disorder(&valid);
        let mut lines: Vec<(Vec<u8>, Option<String>)> =
            valid.into_iter().map(|(_, l)| (l, None)).collect();
        let mut bad = self.malformed_catalogue();
        bad.extend(self.malformed_catalogue());
        for (reason, line) in bad {
            let at = self.rng.random_range(0..=lines.len());
            lines.insert(at, (line, Some(reason)));
        }
        let (lines, labels) = lines.into_iter().unzip();
        Generated { lines, labels }
    }

    /// A realistic valid event of kind `kind` (0 order, 1 delivery, 2 sensor)
    /// as a field list; its ts is sometimes far in the future, which must not
    /// move the watermark since the line will be made invalid.
    fn template(&mut self, kind: usize) -> Fields {
        let mut ts = BASE_TS + self.rng.random_range(0..MINUTES * 60_000);
        if self.rng.random_bool(0.2) {
            ts += 3_600_000;
        }
        let wh = WAREHOUSES.choose(&mut self.rng).expect("warehouses").0;
        let ev = match kind {
            0 => {
                let id = self.new_order_id();
                self.random_order(id, wh, ts)
            }
            1 => self.delivery("o-template", wh, "delivered", ts),
            _ => self.random_sensor(wh, ts),
        };
        self.fields(&ev, Style::default())
    }

    /// One malformed line of every kind, labeled with the intended reason.
    fn malformed_catalogue(&mut self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        self.not_json_lines(&mut out);
        self.not_object_lines(&mut out);
        self.type_lines(&mut out);
        self.missing_field_lines(&mut out);
        self.bad_value_lines(&mut out);
        self.first_error_wins_lines(&mut out);
        out
    }

    fn not_json_lines(&mut self, out: &mut Vec<(String, Vec<u8>)>) {
        let r = |l: &[u8]| ("not_json".to_string(), l.to_vec());
        for l in [
            &b""[..],
            b"   ",
            b"garbage",
            b"{",
            b"{\"type\":\"order\",}",
            b"{'type':'sensor'}",
            b"{type:\"sensor\"}",
            b"{\"type\":\"sensor\"} {\"type\":\"sensor\"}",
            b"\xff\xfe{}",
        ] {
            out.push(r(l));
        }
        let kind = self.rng.random_range(0..3);
        let line = render_object(&self.template(kind));
        let cut = self.rng.random_range(1..line.len() - 1);
        out.push(r(&line[..cut]));
        let mut extra_brace = line.clone();
        extra_brace.push(b'}');
        out.push(r(&extra_brace));
        let bad_strings: [&[u8]; 5] = [
            b"\"\xff\xfe\"",
            b"\"\xc0\xaf\"",
            b"\"Z\xc3\"",
            b"\"\xed\xa0\x80\"",
            b"\"\\ud800\"",
        ];
        for bytes in bad_strings {
            let kind = self.rng.random_range(0..3);
            let mut f = self.template(kind);
            set(&mut f, "warehouse", bytes);
            out.push(r(&render_object(&f)));
        }
        let numbers: [(usize, &str, &[u8]); 7] = [
            (2, "value", b"NaN"),
            (2, "value", b"Infinity"),
            (2, "value", b"-Infinity"),
            (2, "value", b"1e400"),
            (0, "amount", b"1e999"),
            (0, "ts", b"1e400"),
            (1, "note", b"NaN"),
        ];
        for (kind, key, bytes) in numbers {
            let mut f = self.template(kind);
            set(&mut f, key, bytes);
            out.push(r(&render_object(&f)));
        }
    }

    fn not_object_lines(&mut self, out: &mut Vec<(String, Vec<u8>)>) {
        for l in [
            &b"[1,2,3]"[..],
            b"\"order\"",
            b"42",
            b"null",
            b"true",
            b"[]",
        ] {
            out.push(("not_object".into(), l.to_vec()));
        }
        let line = render_object(&self.template(0));
        let mut wrapped = b"[".to_vec();
        wrapped.extend_from_slice(&line);
        wrapped.push(b']');
        out.push(("not_object".into(), wrapped));
    }

    fn type_lines(&mut self, out: &mut Vec<(String, Vec<u8>)>) {
        out.push(("missing_field:type".into(), b"{}".to_vec()));
        for kind in 0..3 {
            let mut f = self.template(kind);
            remove(&mut f, "type");
            out.push(("missing_field:type".into(), render_object(&f)));
        }
        let types: [&[u8]; 7] = [
            b"\"refund\"",
            b"\"Order\"",
            b"\"DELIVERY\"",
            b"\"\"",
            b"7",
            b"[\"order\"]",
            b"{\"t\":\"sensor\"}",
        ];
        for t in types {
            let kind = self.rng.random_range(0..3);
            let mut f = self.template(kind);
            set(&mut f, "type", t);
            out.push(("unknown_type".into(), render_object(&f)));
        }
    }

    fn missing_field_lines(&mut self, out: &mut Vec<(String, Vec<u8>)>) {
        for kind in 0..3 {
            let keys: Vec<String> = self.template(kind)[1..]
                .iter()
                .map(|(k, _)| k.clone())
                .collect();
            for key in keys {
                let mut f = self.template(kind);
                remove(&mut f, &key);
                out.push((format!("missing_field:{key}"), render_object(&f)));
            }
        }
    }

    fn bad_value_lines(&mut self, out: &mut Vec<(String, Vec<u8>)>) {
        let cases: Vec<(usize, &str, Vec<&[u8]>)> = vec![
            (
                0,
                "order_id",
                vec![b"123", b"\"\"", b"null", b"[\"o-1\"]", b"true"],
            ),
            (1, "order_id", vec![b"\"\"", b"7"]),
            (0, "warehouse", vec![b"5", b"null", b"{\"name\":\"wh-01\"}"]),
            (1, "warehouse", vec![b"false"]),
            (2, "warehouse", vec![b"[]"]),
            (0, "sku", vec![b"42", b"null"]),
            (
                0,
                "qty",
                vec![
                    b"0",
                    b"-1",
                    b"1.0",
                    b"2.5",
                    b"true",
                    b"\"2\"",
                    b"null",
                    b"1e2",
                    b"18446744073709551616",
                ],
            ),
            (
                0,
                "amount",
                vec![b"-0.01", b"-1", b"\"5\"", b"null", b"false"],
            ),
            (
                0,
                "ts",
                vec![
                    b"1.0",
                    b"-1",
                    b"\"1764288000000\"",
                    b"null",
                    b"9007199254740993",
                    b"1.764288e12",
                    b"true",
                ],
            ),
            (1, "ts", vec![b"1764288000000.5", b"-5"]),
            (2, "ts", vec![b"{}"]),
            (1, "carrier", vec![b"3", b"null"]),
            (
                1,
                "status",
                vec![b"\"lost\"", b"\"Delivered\"", b"null", b"1", b"\"\""],
            ),
            (2, "sensor_id", vec![b"false", b"9"]),
            (2, "metric", vec![b"1", b"null"]),
            (2, "value", vec![b"\"21.5\"", b"null", b"true", b"[21.5]"]),
        ];
        for (kind, key, values) in cases {
            for v in values {
                let mut f = self.template(kind);
                set(&mut f, key, v);
                out.push((format!("bad_value:{key}"), render_object(&f)));
            }
        }
    }

    /// Lines with several problems: the first in SPEC order decides the reason.
    fn first_error_wins_lines(&mut self, out: &mut Vec<(String, Vec<u8>)>) {
        let mut f = self.template(0);
        set(&mut f, "qty", b"0");
        remove(&mut f, "ts");
        out.push(("bad_value:qty".into(), render_object(&f)));

        let mut f = self.template(0);
        remove(&mut f, "order_id");
        set(&mut f, "ts", b"\"x\"");
        out.push(("missing_field:order_id".into(), render_object(&f)));

        let mut f = self.template(1);
        set(&mut f, "status", b"\"lost\"");
        set(&mut f, "carrier", b"5");
        out.push(("bad_value:carrier".into(), render_object(&f)));

        let mut f = self.template(2);
        set(&mut f, "value", b"null");
        remove(&mut f, "metric");
        out.push(("missing_field:metric".into(), render_object(&f)));

        let mut f = self.template(2);
        set(&mut f, "type", b"\"weather\"");
        remove(&mut f, "ts");
        out.push(("unknown_type".into(), render_object(&f)));

        // Repeated key: a valid first value, a bad last one (last one wins).
        let mut f = self.template(0);
        f.push(("qty".into(), b"0".to_vec()));
        out.push(("bad_value:qty".into(), render_object(&f)));
    }
}

/// Sets (or appends) `key` to the raw JSON `value`.
fn set(fields: &mut Fields, key: &str, value: &[u8]) {
    match fields.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value.to_vec(),
        None => fields.push((key.to_string(), value.to_vec())),
    }
}

fn remove(fields: &mut Fields, key: &str) {
    fields.retain(|(k, _)| k != key);
}

/// `{"k":v,...}` from encoded fields.
fn render_object(fields: &Fields) -> Vec<u8> {
    let mut out = b"{".to_vec();
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&encode_str(k, false));
        out.push(b':');
        out.extend_from_slice(v);
    }
    out.push(b'}');
    out
}

/// A JSON string literal; with `ascii`, non-ASCII characters become \uXXXX escapes.
fn encode_str(s: &str, ascii: bool) -> Vec<u8> {
    let plain = serde_json::to_string(s).expect("strings serialize");
    if !ascii {
        return plain.into_bytes();
    }
    let mut out = String::new();
    for c in plain.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out.into_bytes()
}

/// A JSON number for a finite float; integral values as integers if `int_form`.
fn encode_f64(v: f64, int_form: bool) -> Vec<u8> {
    if int_form && v.fract() == 0.0 && v.abs() < 1e15 && v != 0.0 {
        return format!("{}", v as i64).into_bytes();
    }
    serde_json::to_string(&v)
        .expect("finite floats serialize")
        .into_bytes()
}

/// Panics unless every event's ts >= (max earlier ts) - SLACK_MS.
fn assert_bounded_disorder(valid: &[(u64, Vec<u8>)]) {
    let mut max_ts: Option<u64> = None;
    for (i, (ts, _)) in valid.iter().enumerate() {
        if let Some(m) = max_ts {
            assert!(
                *ts + SLACK_MS >= m,
                "generator bug: valid line {i} has ts {ts} < {m} - {SLACK_MS}"
            );
        }
        max_ts = Some(max_ts.map_or(*ts, |m| m.max(*ts)));
    }
}
