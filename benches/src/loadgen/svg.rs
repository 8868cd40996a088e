//! A self-contained SVG chart of a sweep: server CPU µs per forwarded packet (left axis)
//! and loss % (right axis) against subscriber count, drawn from the run's own reports so
//! the picture can never disagree with the JSON next to it. Hand-written: two polylines,
//! labelled axes, a `<title>` per point for exact values on hover.

use std::fmt::Write as _;

use super::report::RunReport;

const W: f64 = 720.0;
const H: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 70.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;
const CPU_COLOUR: &str = "#1f6feb";
const LOSS_COLOUR: &str = "#d1242f";

/// A "nice" upper bound for an axis (1, 2, 2.5 or 5 x 10^k at or above `v`).
pub fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * mag >= v * (1.0 - 1e-9) {
            return m * mag;
        }
    }
    10.0 * mag
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn fmt_tick(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e9 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// The chart of `runs` (in the order given; x is each run's subscriber count). `title`
/// goes on top.
pub fn chart(runs: &[RunReport], title: &str) -> String {
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let x_max = nice_max(
        runs.iter()
            .map(|r| r.subscribers as f64)
            .fold(0.0, f64::max),
    );
    let cpu_max = nice_max(
        runs.iter()
            .filter_map(|r| r.server_cpu_us_per_packet)
            .fold(0.0, f64::max),
    );
    let loss_max = nice_max(runs.iter().map(|r| r.loss_pct).fold(0.0, f64::max).max(1.0));
    let x = |v: f64| LEFT + pw * v / x_max;
    let y_cpu = |v: f64| TOP + ph * (1.0 - v / cpu_max);
    let y_loss = |v: f64| TOP + ph * (1.0 - v / loss_max);

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="14" font-weight="bold">{}</text>"#,
        W / 2.0,
        esc(title)
    );
    // Grid and ticks: 5 divisions on every axis.
    for i in 0..=5 {
        let f = f64::from(i) / 5.0;
        let gy = TOP + ph * (1.0 - f);
        let gx = LEFT + pw * f;
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{gy:.1}" x2="{:.1}" y2="{gy:.1}" stroke="#ddd"/>"##,
            LEFT + pw
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="{CPU_COLOUR}">{}</text>"#,
            LEFT - 6.0,
            gy + 4.0,
            fmt_tick(cpu_max * f)
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="start" fill="{LOSS_COLOUR}">{}</text>"#,
            LEFT + pw + 6.0,
            gy + 4.0,
            fmt_tick(loss_max * f)
        );
        let _ = writeln!(
            s,
            r#"<text x="{gx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP + ph + 18.0,
            fmt_tick(x_max * f)
        );
    }
    // Axes and their labels.
    let _ = writeln!(
        s,
        r#"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">subscribers</text>"#,
        LEFT + pw / 2.0,
        H - 16.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle" fill="{CPU_COLOUR}">server CPU µs per forwarded packet</text>"#,
        TOP + ph / 2.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate({:.1} {:.1}) rotate(90)" text-anchor="middle" fill="{LOSS_COLOUR}">loss %</text>"#,
        W - 18.0,
        TOP + ph / 2.0
    );
    // Series.
    let cpu: Vec<(f64, f64, &RunReport)> = runs
        .iter()
        .filter_map(|r| {
            r.server_cpu_us_per_packet
                .map(|v| (x(r.subscribers as f64), y_cpu(v), r))
        })
        .collect();
    let loss: Vec<(f64, f64, &RunReport)> = runs
        .iter()
        .map(|r| (x(r.subscribers as f64), y_loss(r.loss_pct), r))
        .collect();
    for (pts, colour, dash) in [
        (&cpu, CPU_COLOUR, ""),
        (&loss, LOSS_COLOUR, r#" stroke-dasharray="6 4""#),
    ] {
        if pts.len() > 1 {
            let p: Vec<String> = pts
                .iter()
                .map(|(px, py, _)| format!("{px:.1},{py:.1}"))
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>"#,
                p.join(" ")
            );
        }
    }
    for (px, py, r) in &cpu {
        let _ = writeln!(
            s,
            r#"<circle cx="{px:.1}" cy="{py:.1}" r="4" fill="{CPU_COLOUR}" data-subscribers="{}" data-cpu-us-per-packet="{}"><title>{} subscribers: {} µs per packet</title></circle>"#,
            r.subscribers,
            r.server_cpu_us_per_packet.unwrap_or_default(),
            r.subscribers,
            r.server_cpu_us_per_packet.unwrap_or_default()
        );
    }
    for (px, py, r) in &loss {
        let _ = writeln!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="7" height="7" fill="{LOSS_COLOUR}" data-subscribers="{}" data-loss-pct="{}"><title>{} subscribers: {} % loss</title></rect>"#,
            px - 3.5,
            py - 3.5,
            r.subscribers,
            r.loss_pct,
            r.subscribers,
            r.loss_pct
        );
    }
    // Legend.
    let lx = LEFT + 10.0;
    let _ = writeln!(
        s,
        r#"<circle cx="{lx}" cy="{}" r="4" fill="{CPU_COLOUR}"/><text x="{}" y="{}">server CPU µs / forwarded packet</text>"#,
        TOP + 14.0,
        lx + 10.0,
        TOP + 18.0
    );
    let _ = writeln!(
        s,
        r#"<rect x="{}" y="{}" width="7" height="7" fill="{LOSS_COLOUR}"/><text x="{}" y="{}">loss %</text>"#,
        lx - 3.5,
        TOP + 28.5,
        lx + 10.0,
        TOP + 36.0
    );
    if cpu.is_empty() {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="gray">no server PID: CPU not measured</text>"#,
            LEFT + pw / 2.0,
            TOP + ph / 2.0
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::{super::report::RawCounts, *};

    fn run(subs: usize, cpu: Option<f64>, loss_delivered: u64) -> RunReport {
        RunReport::from_counts(RawCounts {
            publishers: 1,
            subscribers: subs,
            subscribers_ready: subs,
            offered: 100,
            expected: 100 * subs as u64,
            delivered: 100 * subs as u64 - loss_delivered,
            server: cpu.map(|c| {
                (
                    c * 1e-6 * (100 * subs as u64 - loss_delivered) as f64,
                    40_000,
                )
            }),
            window_s: 1.0,
            ..Default::default()
        })
    }

    #[test]
    fn nice_bounds() {
        assert_eq!(nice_max(3.2), 5.0);
        assert_eq!(nice_max(0.7), 1.0);
        assert_eq!(nice_max(200.0), 200.0);
        assert_eq!(nice_max(201.0), 250.0);
        assert_eq!(nice_max(0.0), 1.0);
    }

    #[test]
    fn chart_holds_every_point_and_labelled_axes() {
        let runs = [
            run(10, Some(3.0), 0),
            run(50, Some(2.0), 25),
            run(100, Some(1.5), 500),
        ];
        let svg = chart(&runs, "1 publisher, 2.5 Mbit/s <test>");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        for r in &runs {
            let cpu = r.server_cpu_us_per_packet.expect("measured");
            assert!(
                svg.contains(&format!(
                    r#"data-subscribers="{}" data-cpu-us-per-packet="{cpu}""#,
                    r.subscribers
                )),
                "{svg}"
            );
            assert!(svg.contains(&format!(
                r#"data-subscribers="{}" data-loss-pct="{}""#,
                r.subscribers, r.loss_pct
            )));
        }
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains(">subscribers</text>"));
        assert!(svg.contains("server CPU µs per forwarded packet</text>"));
        assert!(svg.contains(">loss %</text>"));
        assert!(svg.contains("&lt;test&gt;"), "title is escaped");
        // Higher CPU per packet is drawn higher (smaller y).
        let cy = |subs: usize| -> f64 {
            let key = format!(r#"data-subscribers="{subs}" data-cpu"#);
            let at = svg.find(&key).expect("point");
            let before = &svg[..at];
            let c = before.rfind("cy=\"").expect("cy") + 4;
            before[c..]
                .split('"')
                .next()
                .expect("value")
                .parse()
                .expect("number")
        };
        assert!(cy(10) < cy(50) && cy(50) < cy(100));
    }

    #[test]
    fn without_cpu_the_chart_says_so() {
        let svg = chart(&[run(10, None, 0)], "t");
        assert!(svg.contains("CPU not measured"));
        assert!(!svg.contains("data-cpu-us-per-packet"));
    }
}
