//! Webhook event ids: `EV_` + 12 base62 characters, like LiveKit's other resource ids.
//!
//! Receivers de-duplicate by this id, so a redelivered event must keep it: it is assigned
//! once, before the event is written to the outbox.

use rand::Rng;

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A fresh random event id.
pub fn new_event_id() -> String {
    let mut rng = rand::rng();
    let mut id = String::with_capacity(15);
    id.push_str("EV_");
    for _ in 0..12 {
        id.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::new_event_id;

    #[test]
    fn shape_and_uniqueness() {
        let a = new_event_id();
        assert_eq!(a.len(), 15);
        assert!(a.starts_with("EV_"));
        assert!(a[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, new_event_id());
    }
}
