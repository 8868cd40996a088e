//! LiveKit-style identifiers (`RM_`, `PA_`, `TR_` + 12 base62 characters).
//!
//! Clients rely on the prefixes (the JS SDK tells tracks from streams by `TR`), so the
//! format matters, not just uniqueness.

use rand::Rng;

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new random id with `prefix` (e.g. `"PA_"`).
pub fn new_sid(prefix: &str) -> String {
    let mut rng = rand::rng();
    let mut s = String::with_capacity(prefix.len() + 12);
    s.push_str(prefix);
    for _ in 0..12 {
        s.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
    }
    s
}

/// Room id prefix.
pub const ROOM_PREFIX: &str = "RM_";
/// Participant id prefix.
pub const PARTICIPANT_PREFIX: &str = "PA_";
/// Track id prefix.
pub const TRACK_PREFIX: &str = "TR_";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_have_prefix_and_differ() {
        let a = new_sid(TRACK_PREFIX);
        assert!(a.starts_with("TR_") && a.len() == 15);
        assert_ne!(a, new_sid(TRACK_PREFIX));
    }
}
