//! Throttles keyframe requests (PLI) towards one publisher layer.
//!
//! Every new subscriber, layer switch and subscriber PLI wants a keyframe, but a burst of
//! requests only makes the publisher send several expensive keyframes in a row. LiveKit's
//! default `pli_throttle` is 500 ms for the low layer and 1 s for the others; we use the same.

use std::time::{Duration, Instant};

/// Throttle state of one layer.
#[derive(Debug, Clone)]
pub struct KeyframeRequester {
    interval: Duration,
    last_sent: Option<Instant>,
    wanted: bool,
}

impl KeyframeRequester {
    /// A requester with the given minimum interval between PLIs.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last_sent: None,
            wanted: false,
        }
    }

    /// Interval for a simulcast quality (0 = low).
    pub fn interval_for_quality(quality: i32) -> Duration {
        if quality <= 0 {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(1)
        }
    }

    /// Asks for a keyframe; returns true if a PLI should be sent now.
    pub fn request(&mut self, now: Instant) -> bool {
        self.wanted = true;
        self.poll(now)
    }

    /// True if a wanted request may be sent now (call on timer ticks).
    pub fn poll(&mut self, now: Instant) -> bool {
        if !self.wanted {
            return false;
        }
        if self
            .last_sent
            .is_some_and(|t| now.saturating_duration_since(t) < self.interval)
        {
            return false;
        }
        self.last_sent = Some(now);
        self.wanted = false;
        true
    }

    /// A keyframe arrived: nothing is wanted any more.
    pub fn keyframe_received(&mut self) {
        self.wanted = false;
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests pick the virtual clock's starting instant
mod tests {
    use super::*;

    #[test]
    fn throttles_and_retries_later() {
        let t0 = Instant::now();
        let mut k = KeyframeRequester::new(Duration::from_millis(500));
        assert!(k.request(t0));
        assert!(!k.request(t0 + Duration::from_millis(100)), "throttled");
        assert!(!k.poll(t0 + Duration::from_millis(400)));
        assert!(
            k.poll(t0 + Duration::from_millis(500)),
            "the wanted request goes out when allowed"
        );
        assert!(!k.poll(t0 + Duration::from_millis(2000)), "nothing wanted");
        k.request(t0 + Duration::from_millis(600));
        k.keyframe_received();
        assert!(!k.poll(t0 + Duration::from_secs(5)));
    }
}
