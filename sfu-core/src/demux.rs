//! Finds the peer connection a datagram on the shared UDP port belongs to.
//!
//! All peers share one socket (LiveKit's `rtc.udp_port`). A STUN binding request names its
//! target in USERNAME (`<our ufrag>:<their ufrag>`); everything else (DTLS, SRTP, STUN
//! responses) is routed by the remote address, which we learn only once the peer
//! connection itself has answered that address (so only authenticated peers get a route).

use std::{collections::HashMap, net::SocketAddr};

/// Which of a participant's two connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PcRole {
    /// Client offers, client sends media to us.
    Publisher,
    /// We offer, we send media to the client.
    Subscriber,
}

/// Identifies one peer connection on the shard.
pub type PcKey = (crate::ParticipantId, PcRole);

/// Routing tables.
#[derive(Debug, Default)]
pub struct Demux {
    by_ufrag: HashMap<String, PcKey>,
    by_addr: HashMap<SocketAddr, PcKey>,
}

impl Demux {
    /// Routes a datagram.
    pub fn route(&self, remote: SocketAddr, data: &[u8]) -> Option<PcKey> {
        if let Some(user) = stun_username(data)
            && let Some(ours) = user.split(':').next()
            && let Some(k) = self.by_ufrag.get(ours)
        {
            return Some(*k);
        }
        self.by_addr.get(&remote).copied()
    }

    /// Registers the local ufrag of a connection (after each local description).
    pub fn set_ufrag(&mut self, ufrag: String, key: PcKey) {
        self.by_ufrag.retain(|_, k| *k != key);
        self.by_ufrag.insert(ufrag, key);
    }

    /// Learns that `key` talks to `remote` (called when it sends there).
    pub fn learn(&mut self, remote: SocketAddr, key: PcKey) {
        self.by_addr.insert(remote, key);
    }

    /// Forgets a connection.
    pub fn remove(&mut self, key: PcKey) {
        self.by_ufrag.retain(|_, k| *k != key);
        self.by_addr.retain(|_, k| *k != key);
    }

    /// Number of learned addresses (for tests and metrics).
    pub fn addresses(&self) -> usize {
        self.by_addr.len()
    }
}

const STUN_MAGIC: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const ATTR_USERNAME: u16 = 0x0006;

/// USERNAME of a STUN binding request, if `data` is one. Never panics on any input.
pub fn stun_username(data: &[u8]) -> Option<&str> {
    if data.len() < 20 || data[0] & 0xC0 != 0 || data[4..8] != STUN_MAGIC {
        return None;
    }
    let msg_type = u16::from_be_bytes([data[0], data[1]]);
    if msg_type != 0x0001 {
        return None; // only binding requests carry the USERNAME we route by
    }
    let len = u16::from_be_bytes([data[2], data[3]]) as usize;
    let body = data.get(20..20 + len)?;
    let mut i = 0;
    while i + 4 <= body.len() {
        let t = u16::from_be_bytes([body[i], body[i + 1]]);
        let l = u16::from_be_bytes([body[i + 2], body[i + 3]]) as usize;
        let v = body.get(i + 4..i + 4 + l)?;
        if t == ATTR_USERNAME {
            return std::str::from_utf8(v).ok();
        }
        i += 4 + l.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParticipantId;

    fn binding_request(user: &str) -> Vec<u8> {
        let mut attrs = vec![];
        attrs.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attrs.extend_from_slice(&(user.len() as u16).to_be_bytes());
        attrs.extend_from_slice(user.as_bytes());
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        m.extend_from_slice(&STUN_MAGIC);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attrs);
        m
    }

    #[test]
    fn routes_stun_by_ufrag_then_learned_address() {
        let mut d = Demux::default();
        let key = (ParticipantId(1), PcRole::Subscriber);
        d.set_ufrag("abcd".into(), key);
        let a: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        assert_eq!(d.route(a, &binding_request("abcd:xyz")), Some(key));
        assert_eq!(
            d.route(a, &[0x16, 0xfe, 0xfd]),
            None,
            "DTLS before learning"
        );
        d.learn(a, key);
        assert_eq!(d.route(a, &[0x16, 0xfe, 0xfd]), Some(key));
        assert_eq!(
            d.route(a, &binding_request("other:xyz")),
            Some(key),
            "falls back to address"
        );
        d.remove(key);
        assert_eq!(d.route(a, &[0x80]), None);
    }

    #[test]
    fn stun_parser_survives_garbage() {
        let good = binding_request("u:v");
        for cut in 0..good.len() {
            let _ = stun_username(&good[..cut]);
        }
        let mut bad = good.clone();
        bad[22] = 0xff; // huge attribute length
        bad[23] = 0xff;
        assert_eq!(stun_username(&bad), None);
        assert_eq!(stun_username(&good), Some("u:v"));
    }
}
