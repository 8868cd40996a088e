//! Command-line quantities written the way people type them (`2500k`, `2.5M`, `20s`,
//! `10,50,100`), parsed strictly so a typo fails loudly instead of measuring the wrong thing.

use std::time::Duration;

/// Parses a bit rate in bits per second: a number with an optional `k`, `M` or `G` suffix
/// (decimal, case-insensitive) and an optional `bps`/`bit/s`, e.g. `2500k`, `2.5M`, `800000`.
pub fn parse_bitrate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let body = lower
        .strip_suffix("bit/s")
        .or_else(|| lower.strip_suffix("bps"))
        .unwrap_or(&lower)
        .trim_end();
    let (num, mult) = match body.chars().last() {
        Some('k') => (&body[..body.len() - 1], 1e3),
        Some('m') => (&body[..body.len() - 1], 1e6),
        Some('g') => (&body[..body.len() - 1], 1e9),
        _ => (body, 1.0),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("bad bit rate {s:?} (e.g. 2500k, 2.5M, 800000)"))?;
    let bps = v * mult;
    if !bps.is_finite() || !(1.0..=100e9).contains(&bps) {
        return Err(format!(
            "bit rate {s:?} out of range (1 bit/s .. 100 Gbit/s)"
        ));
    }
    Ok(bps.round() as u64)
}

/// Parses a duration: a number with `ms`, `s`, `m` or `h` (a bare number means seconds),
/// e.g. `20s`, `500ms`, `1.5m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim().to_ascii_lowercase();
    let (num, unit) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t.as_str(), 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("bad duration {s:?} (e.g. 20s, 500ms, 2m)"))?;
    let secs = v * unit;
    if !secs.is_finite() || !(0.0..=7.0 * 86400.0).contains(&secs) {
        return Err(format!("duration {s:?} out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a positive count (one element of `--subscribers 10,50,100`).
pub fn parse_count(s: &str) -> Result<usize, String> {
    s.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("bad count {s:?} (a positive integer)"))
}

/// Writes a bit rate the short way: `2.5 Mbit/s`, `800 kbit/s`.
pub fn format_bitrate(bps: u64) -> String {
    let b = bps as f64;
    if b >= 1e9 {
        format!("{} Gbit/s", trim_float(b / 1e9))
    } else if b >= 1e6 {
        format!("{} Mbit/s", trim_float(b / 1e6))
    } else if b >= 1e3 {
        format!("{} kbit/s", trim_float(b / 1e3))
    } else {
        format!("{bps} bit/s")
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrates() {
        assert_eq!(parse_bitrate("2500k"), Ok(2_500_000));
        assert_eq!(parse_bitrate("2.5M"), Ok(2_500_000));
        assert_eq!(parse_bitrate("2.5mbps"), Ok(2_500_000));
        assert_eq!(parse_bitrate("800000"), Ok(800_000));
        assert_eq!(parse_bitrate(" 64 kbit/s "), Ok(64_000));
        assert_eq!(parse_bitrate("1G"), Ok(1_000_000_000));
        for bad in ["", "k", "fast", "-1k", "0", "1T", "nan"] {
            assert!(parse_bitrate(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "s", "ten", "-1s", "1d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count(" 100"), Ok(100));
        assert!(parse_count("").is_err());
        assert!(parse_count("0").is_err());
        assert!(parse_count("x").is_err());
    }

    #[test]
    fn formatted_bitrates() {
        assert_eq!(format_bitrate(2_500_000), "2.5 Mbit/s");
        assert_eq!(format_bitrate(64_000), "64 kbit/s");
        assert_eq!(format_bitrate(500), "500 bit/s");
    }
}
