//! Recently received packets of one publisher layer, so subscriber NACKs are answered by
//! the SFU (one cache per published layer, shared by every subscriber) instead of going
//! back to the publisher.

use rtc::rtp;

/// A fixed-size ring of packets indexed by sequence number.
#[derive(Debug)]
pub struct RtxCache {
    slots: Vec<Option<rtp::Packet>>,
}

impl RtxCache {
    /// A cache holding the last `size` sequence numbers (power of two).
    pub fn new(size: usize) -> Self {
        assert!(size.is_power_of_two(), "cache size must be a power of two");
        Self {
            slots: vec![None; size],
        }
    }

    fn index(&self, seq: u16) -> usize {
        seq as usize & (self.slots.len() - 1)
    }

    /// Stores a packet (the payload is a refcounted `Bytes`, so this is cheap).
    pub fn insert(&mut self, pkt: &rtp::Packet) {
        let i = self.index(pkt.header.sequence_number);
        self.slots[i] = Some(pkt.clone());
    }

    /// The packet with `seq`, if still cached.
    pub fn get(&self, seq: u16) -> Option<&rtp::Packet> {
        self.slots[self.index(seq)]
            .as_ref()
            .filter(|p| p.header.sequence_number == seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(seq: u16) -> rtp::Packet {
        let mut p = rtp::Packet::default();
        p.header.sequence_number = seq;
        p
    }

    #[test]
    fn keeps_recent_and_forgets_overwritten() {
        let mut c = RtxCache::new(4);
        for s in 0..6 {
            c.insert(&pkt(s));
        }
        assert!(c.get(1).is_none(), "overwritten by 5");
        assert_eq!(c.get(5).unwrap().header.sequence_number, 5);
        assert!(c.get(9).is_none());
    }
}
