//! Latency percentiles, exact (nearest rank over every sample), because p99 of a few
//! hundred thousand samples is cheap to compute exactly and an approximation would need
//! its own error bars in the report.

/// The `p`-th percentile (0-100) of `sorted` by nearest rank: the smallest value with at
/// least `p` % of the samples at or below it. `None` for no samples.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Sorts `samples` in place and returns (p50, p99).
pub fn p50_p99(samples: &mut [u32]) -> (Option<u32>, Option<u32>) {
    samples.sort_unstable();
    (percentile(samples, 50.0), percentile(samples, 99.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
        let w = [10, 20, 30, 40];
        assert_eq!(percentile(&w, 50.0), Some(20));
        assert_eq!(percentile(&w, 51.0), Some(30));
    }

    #[test]
    fn sorts_before_picking() {
        let mut v = vec![5, 1, 4, 2, 3];
        assert_eq!(p50_p99(&mut v), (Some(3), Some(5)));
        assert_eq!(p50_p99(&mut []), (None, None));
    }
}
