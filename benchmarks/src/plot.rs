//! The SVG plot of a rate sweep: latency percentiles (log scale) against achieved throughput,
//! with the latency SLO as a dashed line. The SVG is self-contained (no fonts, scripts or CSS
//! to fetch), so it opens in any browser and embeds in reports as it is.
//!
//! # Examples
//! ```
//! use std::time::Duration;
//! use tidewatch_benchmarks::latency::Report;
//! use tidewatch_benchmarks::plot::{sweep_svg, SweepPoint};
//!
//! let point = |rate: f64, p99_us: u64| SweepPoint {
//!     rate_offered: rate,
//!     rate_achieved: rate * 0.99,
//!     processing: Report {
//!         p50_us: 200,
//!         p90_us: 400,
//!         p99_us,
//!         p999_us: p99_us * 2,
//!         p9999_us: p99_us * 3,
//!         max_us: p99_us * 4,
//!         count: 1_000_000,
//!     },
//! };
//! let svg = sweep_svg(
//!     "LOGI-1 & friends",
//!     &[point(100_000.0, 900), point(200_000.0, 2_500)],
//!     Some(Duration::from_millis(5)),
//! );
//! assert!(svg.starts_with("<svg"));
//! assert!(svg.contains("LOGI-1 &amp; friends"));
//! assert!(svg.contains("SLO p99 ≤ 5 ms"));
//! ```

use std::fmt::Write;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::latency::Report;

/// One rate of a sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// Events per second the load offered.
    pub rate_offered: f64,
    /// Events per second the system processed.
    pub rate_achieved: f64,
    /// Processing latency percentiles at this rate.
    pub processing: Report,
}

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 560.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 760.0;
const TOP: f64 = 60.0;
const BOTTOM: f64 = 490.0;

/// A plotted percentile: legend name, colour, and where it is in a [`Report`].
type Series = (&'static str, &'static str, fn(&Report) -> u64);

/// The percentiles plotted, with their colours (the Tableau 10 palette, distinguishable by
/// most colour-blind readers).
const SERIES: [Series; 6] = [
    ("p50", "#1f77b4", |r| r.p50_us),
    ("p90", "#2ca02c", |r| r.p90_us),
    ("p99", "#ff7f0e", |r| r.p99_us),
    ("p99.9", "#d62728", |r| r.p999_us),
    ("p99.99", "#9467bd", |r| r.p9999_us),
    ("max", "#7f7f7f", |r| r.max_us),
];

/// A self-contained SVG: x = achieved events/s (linear from 0, ticks at 1, 2 or 5 × 10ⁿ), y =
/// latency in ms on a log10 axis (decade ticks from 0.01 ms, or lower if the data is, to
/// whatever covers the data and the SLO; 0 µs is drawn as 1 µs), one polyline with point
/// markers per percentile (p50, p90, p99, p99.9, p99.99, max) in distinct colours with a
/// legend, a dashed horizontal line labelled `SLO p99 ≤ X ms` when `slo` is given, the title
/// and the axis labels.
///
/// Points are joined in order of `rate_offered`. A non-finite or negative `rate_achieved` is
/// drawn at 0.
pub fn sweep_svg(title: &str, points: &[SweepPoint], slo: Option<Duration>) -> String {
    let mut sorted: Vec<&SweepPoint> = points.iter().collect();
    sorted.sort_by(|a, b| a.rate_offered.total_cmp(&b.rate_offered));
    let rate = |p: &SweepPoint| {
        if p.rate_achieved.is_finite() && p.rate_achieved > 0.0 {
            p.rate_achieved
        } else {
            0.0
        }
    };

    let max_rate = sorted.iter().map(|p| rate(p)).fold(0.0, f64::max);
    let x_step = nice_step(if max_rate > 0.0 { max_rate / 5.0 } else { 0.2 });
    let x_ticks = (max_rate / x_step).ceil().max(1.0) as u64;
    let x_max = x_step * x_ticks as f64;
    let x = |events_per_s: f64| LEFT + events_per_s / x_max * (RIGHT - LEFT);

    let slo_ms = slo.map(|d| micros_to_ms(d.as_micros().min(u64::MAX as u128) as u64));
    let values_ms = sorted
        .iter()
        .flat_map(|p| {
            SERIES
                .iter()
                .map(|(_, _, get)| micros_to_ms(get(&p.processing)))
        })
        .chain(slo_ms);
    let (min_ms, max_ms) = values_ms.fold((f64::INFINITY, 0.0_f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    // The small epsilon keeps an exact decade (1 ms) from being pushed up or down one decade
    // by log10's rounding.
    let lo_decade = (min_ms.log10() + 1e-9).floor().min(-2.0) as i32;
    let hi_decade = ((max_ms.log10() - 1e-9).ceil() as i32).max(lo_decade + 1);
    let y = |ms: f64| {
        let fraction = (ms.log10() - f64::from(lo_decade)) / f64::from(hi_decade - lo_decade);
        BOTTOM - fraction * (BOTTOM - TOP)
    };

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="32" text-anchor="middle" font-size="16" font-weight="bold">{}</text>"#,
        (LEFT + RIGHT) / 2.0,
        escape(title)
    );

    // Grid and ticks first, so the data is drawn over them.
    for i in 0..=x_ticks {
        let value = x_step * i as f64;
        let px = x(value);
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{BOTTOM}" stroke="#e0e0e0"/>"##
        );
        let _ = writeln!(
            svg,
            r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            BOTTOM + 18.0,
            rate_label(value)
        );
    }
    for decade in lo_decade..=hi_decade {
        let py = y(10f64.powi(decade));
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{RIGHT}" y2="{py:.1}" stroke="#e0e0e0"/>"##
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 8.0,
            py + 4.0,
            decade_label(decade)
        );
    }
    let _ = writeln!(
        svg,
        r#"<rect x="{LEFT}" y="{TOP}" width="{}" height="{}" fill="none" stroke="black"/>"#,
        RIGHT - LEFT,
        BOTTOM - TOP
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="14">throughput (events/s)</text>"#,
        (LEFT + RIGHT) / 2.0,
        BOTTOM + 45.0
    );
    let label_y = (TOP + BOTTOM) / 2.0;
    let _ = writeln!(
        svg,
        r#"<text x="28" y="{label_y:.1}" text-anchor="middle" font-size="14" transform="rotate(-90 28 {label_y:.1})">latency (ms, log scale)</text>"#
    );

    if let Some(ms) = slo_ms {
        let py = y(ms);
        let _ = writeln!(
            svg,
            r##"<line class="slo" x1="{LEFT}" y1="{py:.1}" x2="{RIGHT}" y2="{py:.1}" stroke="#d62728" stroke-width="1.5" stroke-dasharray="6 4"/>"##
        );
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#d62728">SLO p99 ≤ {} ms</text>"##,
            RIGHT - 6.0,
            py - 6.0,
            number(ms)
        );
    }

    for (name, colour, get) in SERIES {
        let coordinates: Vec<(f64, f64)> = sorted
            .iter()
            .map(|p| (x(rate(p)), y(micros_to_ms(get(&p.processing)))))
            .collect();
        let _ = write!(svg, r#"<g class="{name}"><polyline points=""#);
        for (i, (px, py)) in coordinates.iter().enumerate() {
            let separator = if i == 0 { "" } else { " " };
            let _ = write!(svg, "{separator}{px:.1},{py:.1}");
        }
        let _ = writeln!(svg, r#"" fill="none" stroke="{colour}" stroke-width="2"/>"#);
        for (px, py) in coordinates {
            let _ = writeln!(
                svg,
                r#"<circle cx="{px:.1}" cy="{py:.1}" r="3.5" fill="{colour}"/>"#
            );
        }
        let _ = writeln!(svg, "</g>");
    }

    let legend_x = RIGHT + 24.0;
    for (i, (name, colour, _)) in SERIES.iter().enumerate() {
        let py = TOP + 12.0 + 22.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{legend_x:.1}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="{colour}" stroke-width="2"/>"#,
            legend_x + 28.0
        );
        let _ = writeln!(
            svg,
            r#"<circle cx="{:.1}" cy="{py:.1}" r="3.5" fill="{colour}"/>"#,
            legend_x + 14.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}">{name}</text>"#,
            legend_x + 36.0,
            py + 4.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Latencies of 0 µs are drawn at 1 µs: a log axis has no 0.
fn micros_to_ms(micros: u64) -> f64 {
    micros.max(1) as f64 / 1_000.0
}

/// The smallest of 1, 2 or 5 × 10ⁿ at least `raw` (which must be positive and finite).
fn nice_step(raw: f64) -> f64 {
    let magnitude = 10f64.powf(raw.log10().floor());
    let fraction = raw / magnitude;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// `value` with at most 3 decimals and no trailing zeros.
fn number(value: f64) -> String {
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

/// Events per second as tick labels: `0`, `250k`, `1.5M`.
fn rate_label(value: f64) -> String {
    if value >= 1e6 {
        format!("{}M", number(value / 1e6))
    } else if value >= 1e3 {
        format!("{}k", number(value / 1e3))
    } else {
        number(value)
    }
}

/// 10^`decade` ms, written without exponent: `0.001`, `0.01`, `1`, `1000`.
fn decade_label(decade: i32) -> String {
    if decade < 0 {
        format!("{:.*}", decade.unsigned_abs() as usize, 10f64.powi(decade))
    } else {
        format!("{}", 10u128.pow(decade.unsigned_abs()))
    }
}

/// `text` as XML character data or attribute value.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(scale: u64) -> Report {
        Report {
            p50_us: 100 * scale,
            p90_us: 200 * scale,
            p99_us: 500 * scale,
            p999_us: 1_000 * scale,
            p9999_us: 2_000 * scale,
            max_us: 5_000 * scale,
            count: 1_000,
        }
    }

    fn point(offered: f64, achieved: f64, scale: u64) -> SweepPoint {
        SweepPoint {
            rate_offered: offered,
            rate_achieved: achieved,
            processing: report(scale),
        }
    }

    /// Checks that every start tag is closed in order; returns the element names seen.
    fn balanced(svg: &str) -> Result<Vec<String>, String> {
        let mut open: Vec<String> = Vec::new();
        let mut seen = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let end = rest[start..]
                .find('>')
                .ok_or_else(|| format!("unclosed tag at {start}"))?;
            let tag = &rest[start + 1..start + end];
            rest = &rest[start + end + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                match open.pop() {
                    Some(top) if top == name.trim() => {}
                    top => return Err(format!("</{name}> closes {top:?}")),
                }
            } else {
                let name: String = tag
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '/')
                    .collect();
                if name.is_empty() || tag.contains('<') {
                    return Err(format!("bad tag <{tag}>"));
                }
                seen.push(name.clone());
                if !tag.ends_with('/') {
                    open.push(name);
                }
            }
        }
        if open.is_empty() {
            Ok(seen)
        } else {
            Err(format!("unclosed elements {open:?}"))
        }
    }

    /// Each polyline's points as (x, y), in document order.
    fn polylines(svg: &str) -> Vec<Vec<(f64, f64)>> {
        svg.split("<polyline points=\"")
            .skip(1)
            .map(|rest| {
                let points = &rest[..rest.find('"').expect("closing quote")];
                points
                    .split_whitespace()
                    .map(|pair| {
                        let (x, y) = pair.split_once(',').expect("x,y");
                        (
                            x.parse().expect("x is a number"),
                            y.parse().expect("y is a number"),
                        )
                    })
                    .collect()
            })
            .collect()
    }

    fn no_nan_or_inf(svg: &str) {
        for bad in ["NaN", "inf"] {
            assert!(!svg.contains(bad), "{bad} in\n{svg}");
        }
    }

    #[test]
    fn a_sweep_draws_one_balanced_polyline_per_percentile() {
        let points = [
            point(300_000.0, 290_000.0, 8),
            point(100_000.0, 100_000.0, 1),
            point(200_000.0, 199_000.0, 2),
        ];
        let svg = sweep_svg("sweep", &points, Some(Duration::from_millis(10)));
        assert!(svg.starts_with("<svg"), "{svg}");
        let elements = balanced(&svg).expect("balanced tags");
        assert_eq!(elements.first().map(String::as_str), Some("svg"));
        let lines = polylines(&svg);
        assert_eq!(lines.len(), 6);
        for line in &lines {
            assert_eq!(line.len(), points.len());
            // Joined by offered rate: x grows along the line here as achieved rate does.
            assert!(line.windows(2).all(|w| w[0].0 < w[1].0), "{line:?}");
            // Latency grows with the rate, so y shrinks (SVG y points down).
            assert!(line.windows(2).all(|w| w[0].1 > w[1].1), "{line:?}");
        }
        // At each rate, each percentile is drawn above (smaller y) the one before it.
        for pair in lines.windows(2) {
            for (lower, higher) in pair[0].iter().zip(&pair[1]) {
                assert!(higher.1 < lower.1, "{pair:?}");
            }
        }
        for text in [
            "throughput (events/s)",
            "latency (ms, log scale)",
            ">100k<",
            ">300k<",
            ">0.01<",
            "p99.99",
        ] {
            assert!(svg.contains(text), "{text} missing");
        }
        no_nan_or_inf(&svg);
    }

    #[test]
    fn the_slo_line_is_drawn_only_when_given() {
        let points = [point(1_000.0, 1_000.0, 1)];
        let with = sweep_svg("t", &points, Some(Duration::from_micros(2_500)));
        assert_eq!(with.matches(r#"class="slo""#).count(), 1);
        assert!(with.contains("SLO p99 ≤ 2.5 ms"), "{with}");
        let without = sweep_svg("t", &points, None);
        assert!(!without.contains("slo") && !without.contains("SLO"));
        assert!(!without.contains("stroke-dasharray"));
        balanced(&with).expect("balanced");
    }

    /// The SLO is on the y axis even when every latency is far below it.
    #[test]
    fn the_axis_covers_the_slo() {
        let svg = sweep_svg("t", &[point(1.0, 1.0, 1)], Some(Duration::from_secs(2)));
        assert!(svg.contains(">10000<"), "{svg}");
        let line = svg
            .lines()
            .find(|l| l.contains(r#"class="slo""#))
            .expect("SLO line");
        let y: f64 = line
            .split("y1=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|y| y.parse().ok())
            .expect("y1");
        assert!((TOP..=BOTTOM).contains(&y), "{y}");
    }

    #[test]
    fn degenerate_sweeps_do_not_produce_nan() {
        let zero = SweepPoint {
            rate_offered: 0.0,
            rate_achieved: 0.0,
            processing: Report::default(),
        };
        let weird = SweepPoint {
            rate_offered: f64::NAN,
            rate_achieved: f64::INFINITY,
            processing: Report::default(),
        };
        for points in [
            vec![],
            vec![zero.clone()],
            vec![point(5_000.0, 4_000.0, 3)],
            vec![zero, weird],
        ] {
            for slo in [None, Some(Duration::ZERO), Some(Duration::from_millis(1))] {
                let svg = sweep_svg("t", &points, slo);
                no_nan_or_inf(&svg);
                balanced(&svg).expect("balanced");
                let lines = polylines(&svg);
                assert_eq!(lines.len(), 6);
                assert!(lines.iter().all(|l| l.len() == points.len()));
                for (x, y) in lines.into_iter().flatten() {
                    assert!((LEFT..=RIGHT).contains(&x), "x {x}");
                    assert!((TOP..=BOTTOM).contains(&y), "y {y}");
                }
            }
        }
    }

    #[test]
    fn the_title_is_escaped() {
        let svg = sweep_svg(r#"<b>"A & B"</b>"#, &[point(1.0, 1.0, 1)], None);
        assert!(
            svg.contains("&lt;b&gt;&quot;A &amp; B&quot;&lt;/b&gt;"),
            "{svg}"
        );
        assert!(!svg.contains("<b>"));
        balanced(&svg).expect("balanced");
    }

    #[test]
    fn ticks_are_nice() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.5), 2.0);
        assert_eq!(nice_step(31_000.0), 50_000.0);
        assert_eq!(nice_step(100_000.0), 100_000.0);
        assert_eq!(rate_label(0.0), "0");
        assert_eq!(rate_label(250_000.0), "250k");
        assert_eq!(rate_label(1_500_000.0), "1.5M");
        assert_eq!(rate_label(0.30000000000000004), "0.3");
        assert_eq!(decade_label(-3), "0.001");
        assert_eq!(decade_label(0), "1");
        assert_eq!(decade_label(4), "10000");
    }

    #[test]
    fn sweep_points_serialize_with_their_field_names() {
        let p = point(1.0, 2.0, 1);
        let json = serde_json::to_value(&p).expect("serialize");
        assert_eq!(json["rate_offered"], 1.0);
        assert_eq!(json["processing"]["p99_us"], 500);
        let back: SweepPoint = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, p);
    }
}
