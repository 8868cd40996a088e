//! NONCE values of the long-term credential mechanism, without server-side state.
//!
//! A nonce is `<issue time in unix ms, 16 hex digits><HMAC-SHA256(key, time), 16 hex digits>`
//! under a random key made at startup. Checking one needs no table (nothing to grow, nothing
//! shared between listener tasks): a nonce is valid when its tag matches and it is younger
//! than the configured lifetime; anything else earns a 438 Stale Nonce with a fresh one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::hmac;
use ring::rand::SystemRandom;

use crate::error::TurnError;

const STAMP_HEX: usize = 16;
const TAG_BYTES: usize = 8;

/// Issues and checks nonces.
pub(crate) struct NonceIssuer {
    key: hmac::Key,
    lifetime_ms: u64,
}

impl NonceIssuer {
    pub(crate) fn new(lifetime: Duration) -> Result<Self, TurnError> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .map_err(|_| TurnError::Crypto("no system randomness for the nonce key".into()))?;
        let lifetime_ms = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
        Ok(Self { key, lifetime_ms })
    }

    /// A fresh nonce.
    pub(crate) fn issue(&self) -> String {
        self.issue_at(now_ms())
    }

    fn issue_at(&self, ms: u64) -> String {
        let tag = hmac::sign(&self.key, &ms.to_be_bytes());
        let mut s = format!("{ms:016x}");
        for b in &tag.as_ref()[..TAG_BYTES] {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// Whether `nonce` was issued by us and is still fresh.
    pub(crate) fn is_valid(&self, nonce: &str) -> bool {
        self.is_valid_at(nonce, now_ms())
    }

    fn is_valid_at(&self, nonce: &str, now: u64) -> bool {
        if nonce.len() != STAMP_HEX + 2 * TAG_BYTES || !nonce.is_ascii() {
            return false;
        }
        let Ok(ms) = u64::from_str_radix(&nonce[..STAMP_HEX], 16) else {
            return false;
        };
        let mut tag = [0u8; TAG_BYTES];
        for (i, b) in tag.iter_mut().enumerate() {
            let at = STAMP_HEX + 2 * i;
            match u8::from_str_radix(&nonce[at..at + 2], 16) {
                Ok(v) => *b = v,
                Err(_) => return false,
            }
        }
        let expected = hmac::sign(&self.key, &ms.to_be_bytes());
        if !ring_eq(&expected.as_ref()[..TAG_BYTES], &tag) {
            return false;
        }
        ms <= now && now - ms <= self.lifetime_ms
    }
}

/// Constant-time comparison (the tag is a secret-derived value).
fn ring_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_stale_forged() {
        let n = NonceIssuer::new(Duration::from_secs(10)).unwrap();
        let v = n.issue_at(1_000_000);
        assert!(n.is_valid_at(&v, 1_000_000));
        assert!(n.is_valid_at(&v, 1_010_000));
        assert!(!n.is_valid_at(&v, 1_010_001));
        assert!(!n.is_valid_at(&v, 999_999));
        let mut forged = v.clone().into_bytes();
        forged[20] = if forged[20] == b'0' { b'1' } else { b'0' };
        assert!(!n.is_valid_at(std::str::from_utf8(&forged).unwrap(), 1_000_000));
        assert!(!n.is_valid_at("", 0));
        assert!(!n.is_valid_at("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", 0));
        assert!(!n.is_valid_at("ééééééééééééééééé", 0));
        let other = NonceIssuer::new(Duration::from_secs(10)).unwrap();
        assert!(!other.is_valid_at(&v, 1_000_000));
    }
}
