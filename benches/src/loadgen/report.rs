//! The figures of one run, computed from the raw counts, as a terminal table and as JSON.
//!
//! The headline is **server CPU microseconds per forwarded packet**: the server's own
//! CPU time (every thread, user + system, from `/proc`) over the measured window divided
//! by the packets subscribers received in it. It counts everything the server does for
//! the load (ICE, RTCP, timers, syscalls), so it is comparable across servers.

use serde::{Deserialize, Serialize};

/// One fanout run. Server-side fields are `None` without a server PID.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Command name of the measured server process.
    pub server: Option<String>,
    /// Publishers.
    pub publishers: usize,
    /// Subscribers asked for.
    pub subscribers: usize,
    /// Subscribers that received media before the window started.
    pub subscribers_ready: usize,
    /// Video payload bit rate per publisher.
    pub bitrate_bps: u64,
    /// Video payload bytes per packet.
    pub packet_size: usize,
    /// Publishers also sent Opus-shaped audio.
    pub audio: bool,
    /// Video packets were paced over each frame interval (false: one burst per frame).
    pub paced: bool,
    /// Length of the measured window, seconds.
    pub window_s: f64,
    /// Packets publishers sent in the window.
    pub packets_offered: u64,
    /// Measured packets subscribers received (each once).
    pub packets_delivered: u64,
    /// Deliveries a lossless server makes: offered x subscribers per publisher.
    pub deliveries_expected: u64,
    /// 100 x (1 - delivered / expected).
    pub loss_pct: f64,
    /// Measured packets received more than once.
    pub duplicates: u64,
    /// One-way latency, median, microseconds.
    pub latency_p50_us: Option<u32>,
    /// One-way latency, 99th percentile, microseconds.
    pub latency_p99_us: Option<u32>,
    /// Server CPU time in the window, seconds.
    pub server_cpu_s: Option<f64>,
    /// Server CPU microseconds per delivered packet.
    pub server_cpu_us_per_packet: Option<f64>,
    /// Delivered packets per server CPU-second.
    pub forwarded_per_cpu_s: Option<f64>,
    /// Server resident memory at the end of the window, MiB.
    pub server_rss_mib: Option<f64>,
    /// The generator's own CPU time in the window, seconds.
    pub generator_cpu_s: f64,
    /// Errors the generator's peers counted (socket, WebRTC core), all phases.
    pub peer_errors: u64,
}

/// Raw counts a report is computed from.
#[derive(Debug, Clone, Default)]
pub struct RawCounts {
    /// Command name of the measured server.
    pub server_name: Option<String>,
    /// Publishers.
    pub publishers: usize,
    /// Subscribers asked for.
    pub subscribers: usize,
    /// Subscribers that received media before the window.
    pub subscribers_ready: usize,
    /// Bit rate.
    pub bitrate_bps: u64,
    /// Packet size.
    pub packet_size: usize,
    /// Audio on.
    pub audio: bool,
    /// Paced video.
    pub paced: bool,
    /// Window length, seconds.
    pub window_s: f64,
    /// Offered packets in the window.
    pub offered: u64,
    /// Delivered packets.
    pub delivered: u64,
    /// Expected deliveries.
    pub expected: u64,
    /// Duplicates.
    pub duplicates: u64,
    /// Every delivered packet's latency, µs (sorted or not).
    pub latencies_us: Vec<u32>,
    /// Server CPU seconds in the window and RSS at its end, KiB.
    pub server: Option<(f64, u64)>,
    /// Generator CPU seconds.
    pub generator_cpu_s: f64,
    /// Peer errors.
    pub peer_errors: u64,
}

fn round(v: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (v * m).round() / m
}

impl RunReport {
    /// Computes the figures.
    pub fn from_counts(mut c: RawCounts) -> Self {
        let (p50, p99) = super::percentile::p50_p99(&mut c.latencies_us);
        let loss_pct = if c.expected == 0 {
            0.0
        } else {
            (100.0 * (1.0 - c.delivered as f64 / c.expected as f64)).max(0.0)
        };
        let cpu = c.server.map(|(s, _)| s);
        Self {
            server: c.server_name,
            publishers: c.publishers,
            subscribers: c.subscribers,
            subscribers_ready: c.subscribers_ready,
            bitrate_bps: c.bitrate_bps,
            packet_size: c.packet_size,
            audio: c.audio,
            paced: c.paced,
            window_s: round(c.window_s, 3),
            packets_offered: c.offered,
            packets_delivered: c.delivered,
            deliveries_expected: c.expected,
            loss_pct: round(loss_pct, 3),
            duplicates: c.duplicates,
            latency_p50_us: p50,
            latency_p99_us: p99,
            server_cpu_s: cpu.map(|s| round(s, 3)),
            server_cpu_us_per_packet: cpu
                .filter(|_| c.delivered > 0)
                .map(|s| round(s * 1e6 / c.delivered as f64, 3)),
            forwarded_per_cpu_s: cpu
                .filter(|s| *s > 0.0)
                .map(|s| (c.delivered as f64 / s).round()),
            server_rss_mib: c.server.map(|(_, kib)| round(kib as f64 / 1024.0, 1)),
            generator_cpu_s: round(c.generator_cpu_s, 3),
            peer_errors: c.peer_errors,
        }
    }
}

const COLUMNS: [&str; 14] = [
    "pubs",
    "subs",
    "ready",
    "bitrate",
    "offered",
    "delivered",
    "expected",
    "loss %",
    "p50 µs",
    "p99 µs",
    "srv CPU s",
    "srv µs/pkt",
    "pkts/CPU-s",
    "srv RSS MiB",
];

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(String::new, |v| v.to_string())
}

fn row(r: &RunReport) -> Vec<String> {
    vec![
        r.publishers.to_string(),
        r.subscribers.to_string(),
        r.subscribers_ready.to_string(),
        super::units::format_bitrate(r.bitrate_bps),
        r.packets_offered.to_string(),
        r.packets_delivered.to_string(),
        r.deliveries_expected.to_string(),
        format!("{:.3}", r.loss_pct),
        opt(r.latency_p50_us),
        opt(r.latency_p99_us),
        opt(r.server_cpu_s.map(|v| format!("{v:.2}"))),
        opt(r.server_cpu_us_per_packet.map(|v| format!("{v:.2}"))),
        opt(r.forwarded_per_cpu_s.map(|v| format!("{v:.0}"))),
        opt(r.server_rss_mib.map(|v| format!("{v:.1}"))),
    ]
}

/// The runs as an aligned text table (a header line, one line per run), plus the
/// generator's CPU on a footer line so it is not mistaken for the server's.
pub fn table(runs: &[RunReport]) -> String {
    let mut cells: Vec<Vec<String>> = vec![COLUMNS.iter().map(|s| s.to_string()).collect()];
    cells.extend(runs.iter().map(row));
    let widths: Vec<usize> = (0..COLUMNS.len())
        .map(|i| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in &cells {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:>w$}", w = *w))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    for r in runs {
        out.push_str(&format!(
            "subs {}: server {}, {} video{}, window {:.1} s, generator CPU {:.2} s, duplicates {}, peer errors {}\n",
            r.subscribers,
            r.server.as_deref().unwrap_or("not measured"),
            if r.paced { "paced" } else { "burst" },
            if r.audio { " + audio" } else { "" },
            r.window_s,
            r.generator_cpu_s,
            r.duplicates,
            r.peer_errors
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts() -> RawCounts {
        RawCounts {
            publishers: 1,
            subscribers: 10,
            subscribers_ready: 10,
            bitrate_bps: 2_500_000,
            packet_size: 1100,
            window_s: 10.0,
            offered: 2841,
            delivered: 28_000,
            expected: 28_410,
            latencies_us: vec![300, 100, 200, 900],
            server: Some((0.07, 51_200)),
            generator_cpu_s: 0.5,
            ..Default::default()
        }
    }

    #[test]
    fn figures() {
        let r = RunReport::from_counts(counts());
        assert_eq!(r.loss_pct, 1.443);
        assert_eq!(r.latency_p50_us, Some(200));
        assert_eq!(r.latency_p99_us, Some(900));
        assert_eq!(r.server_cpu_us_per_packet, Some(2.5));
        assert_eq!(r.forwarded_per_cpu_s, Some(400_000.0));
        assert_eq!(r.server_rss_mib, Some(50.0));
        let json = serde_json::to_string(&r).expect("json");
        let back: RunReport = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, r);
    }

    #[test]
    fn without_a_server_pid_the_server_columns_are_blank() {
        let r = RunReport::from_counts(RawCounts {
            server: None,
            ..counts()
        });
        assert_eq!(r.server_cpu_us_per_packet, None);
        let t = table(&[r]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].contains("srv µs/pkt"));
        assert!(lines[1].trim_end().ends_with("900"), "{t}");
    }

    #[test]
    fn no_expected_deliveries_is_no_loss() {
        let r = RunReport::from_counts(RawCounts::default());
        assert_eq!(r.loss_pct, 0.0);
        assert_eq!(r.latency_p50_us, None);
    }
}
