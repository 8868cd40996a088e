//! When to retry a failed delivery, and when to stop.
//!
//! LiveKit itself retries a few times within seconds and then drops the event. We keep events
//! in a durable outbox instead, so a receiver that is down for an hour still gets every event,
//! in order: exponential backoff (1 s, 2 s, 4 s, ... capped at 5 min) until the event is older
//! than `max_age` (24 h by default), then it is dropped with a warning.

use std::time::Duration;

/// Backoff and give-up policy of the notifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait after the first failed attempt.
    pub initial_backoff: Duration,
    /// Each further failure multiplies the wait by this.
    pub factor: u32,
    /// The wait never exceeds this.
    pub max_backoff: Duration,
    /// A delivery that fails when its event is at least this old is dropped.
    pub max_age: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_secs(1),
            factor: 2,
            max_backoff: Duration::from_secs(5 * 60),
            max_age: Duration::from_secs(24 * 60 * 60),
        }
    }
}

impl RetryPolicy {
    /// The wait before the next attempt after `failed_attempts` (>= 1) failures:
    /// `initial_backoff * factor^(failed_attempts - 1)`, at most `max_backoff`.
    pub fn backoff(&self, failed_attempts: u32) -> Duration {
        let mut wait = self.initial_backoff;
        for _ in 1..failed_attempts {
            if wait >= self.max_backoff {
                break;
            }
            wait = wait.saturating_mul(self.factor);
        }
        wait.min(self.max_backoff)
    }

    /// Whether an event created `age` ago is past retrying.
    pub fn expired(&self, age: Duration) -> bool {
        age >= self.max_age
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_one_second_up_to_five_minutes() {
        let p = RetryPolicy::default();
        let secs: Vec<u64> = (1..=12).map(|n| p.backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(p.backoff(0), Duration::from_secs(1));
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn gives_up_after_a_day() {
        let p = RetryPolicy::default();
        assert!(!p.expired(Duration::from_secs(24 * 3600 - 1)));
        assert!(p.expired(Duration::from_secs(24 * 3600)));
    }
}
