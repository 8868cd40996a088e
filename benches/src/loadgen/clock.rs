//! The generator's one clock and the measured window on it.
//!
//! Publishers stamp each payload with nanoseconds since the generator started and
//! subscribers (same process, same monotonic clock) subtract, so one-way latency needs no
//! clock sync. A packet belongs to the measurement when its *send* time is inside the
//! window, whenever it arrives: packets in flight at either edge are neither lost nor
//! counted twice.

use std::{
    cell::Cell,
    rc::Rc,
    time::{Duration, Instant},
};

/// Monotonic origin shared by every peer of one generator process.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    /// Starts the clock now.
    pub fn start() -> Self {
        Self {
            origin: Instant::now(),
        }
    }

    /// Nanoseconds from the origin to `t` (0 before the origin).
    pub fn ns(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.origin).as_nanos() as u64
    }

    /// Nanoseconds from the origin to now.
    pub fn now_ns(&self) -> u64 {
        self.ns(Instant::now())
    }
}

/// The measured interval `[start_ns, end_ns)` of send times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First send time that counts.
    pub start_ns: u64,
    /// First send time that no longer counts.
    pub end_ns: u64,
}

impl Window {
    /// Before the measurement starts: nothing counts.
    pub const NOT_STARTED: Window = Window {
        start_ns: u64::MAX,
        end_ns: u64::MAX,
    };

    /// True if a packet sent at `sent_ns` is measured.
    pub fn contains(&self, sent_ns: u64) -> bool {
        sent_ns >= self.start_ns && sent_ns < self.end_ns
    }

    /// Length of a closed window.
    pub fn length(&self) -> Duration {
        Duration::from_nanos(self.end_ns.saturating_sub(self.start_ns))
    }
}

/// The window as every peer of the run sees it (single-threaded: a shared cell).
pub type SharedWindow = Rc<Cell<Window>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_half_open() {
        let w = Window {
            start_ns: 10,
            end_ns: 20,
        };
        assert!(!w.contains(9));
        assert!(w.contains(10));
        assert!(w.contains(19));
        assert!(!w.contains(20));
        assert!(!Window::NOT_STARTED.contains(5));
        assert_eq!(w.length(), Duration::from_nanos(10));
    }
}
