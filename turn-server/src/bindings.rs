//! Permissions and channel bindings of one allocation (RFC 8656 sections 9 and 12).
//!
//! Owned by the allocation task, so plain maps. Entries carry their expiry and are judged
//! against the current time on every lookup; a periodic sweep only reclaims memory.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use tokio::time::Instant;

use crate::shared::{CHANNEL_LIFETIME, PERMISSION_LIFETIME};

/// Installed permissions: peer IP to expiry (ports do not matter, RFC 8656 section 9).
#[derive(Debug, Default)]
pub(crate) struct Permissions {
    expiry: HashMap<IpAddr, Instant>,
}

impl Permissions {
    /// Installs or refreshes the permission for `ip`.
    pub(crate) fn install(&mut self, ip: IpAddr, now: Instant) {
        self.expiry.insert(ip, now + PERMISSION_LIFETIME);
    }

    /// Whether traffic with `ip` is permitted.
    pub(crate) fn allows(&self, ip: IpAddr, now: Instant) -> bool {
        self.expiry.get(&ip).is_some_and(|e| *e > now)
    }

    pub(crate) fn sweep(&mut self, now: Instant) {
        self.expiry.retain(|_, e| *e > now);
    }
}

/// A ChannelBind that contradicts an existing binding (400 Bad Request).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BindConflict;

#[derive(Debug)]
struct Channel {
    peer: SocketAddr,
    expires: Instant,
}

/// Channel bindings, both ways.
#[derive(Debug, Default)]
pub(crate) struct Channels {
    by_number: HashMap<u16, Channel>,
    by_peer: HashMap<SocketAddr, u16>,
}

impl Channels {
    /// Binds `number` to `peer` or refreshes that binding. A number bound to another peer, or
    /// a peer bound to another number, is a conflict while the binding lives.
    pub(crate) fn bind(
        &mut self,
        number: u16,
        peer: SocketAddr,
        now: Instant,
    ) -> Result<(), BindConflict> {
        if let Some(c) = self.by_number.get(&number)
            && c.expires > now
            && c.peer != peer
        {
            return Err(BindConflict);
        }
        if let Some(n) = self.by_peer.get(&peer)
            && *n != number
            && self.by_number.get(n).is_some_and(|c| c.expires > now)
        {
            return Err(BindConflict);
        }
        if let Some(old) = self.by_number.get(&number)
            && old.peer != peer
        {
            self.by_peer.remove(&old.peer);
        }
        if let Some(old) = self.by_peer.get(&peer)
            && *old != number
        {
            self.by_number.remove(old);
        }
        self.by_number.insert(
            number,
            Channel {
                peer,
                expires: now + CHANNEL_LIFETIME,
            },
        );
        self.by_peer.insert(peer, number);
        Ok(())
    }

    /// The peer of a live channel.
    pub(crate) fn peer(&self, number: u16, now: Instant) -> Option<SocketAddr> {
        self.by_number
            .get(&number)
            .filter(|c| c.expires > now)
            .map(|c| c.peer)
    }

    /// The live channel bound to `peer`.
    pub(crate) fn number(&self, peer: SocketAddr, now: Instant) -> Option<u16> {
        let n = *self.by_peer.get(&peer)?;
        self.peer(n, now).map(|_| n)
    }

    pub(crate) fn sweep(&mut self, now: Instant) {
        self.by_number.retain(|_, c| c.expires > now);
        let by_number = &self.by_number;
        self.by_peer.retain(|_, n| by_number.contains_key(n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn permission_expiry() {
        let now = Instant::now();
        let mut p = Permissions::default();
        let ip = addr("1.2.3.4:5").ip();
        assert!(!p.allows(ip, now));
        p.install(ip, now);
        assert!(p.allows(ip, now + Duration::from_secs(299)));
        assert!(!p.allows(ip, now + Duration::from_secs(300)));
        p.sweep(now + Duration::from_secs(301));
        assert!(p.expiry.is_empty());
    }

    #[test]
    fn channel_rules() {
        let now = Instant::now();
        let mut c = Channels::default();
        let a = addr("1.2.3.4:5");
        let b = addr("1.2.3.4:6");
        c.bind(0x4000, a, now).unwrap();
        c.bind(0x4000, a, now).unwrap();
        assert_eq!(c.bind(0x4000, b, now), Err(BindConflict));
        assert_eq!(c.bind(0x4001, a, now), Err(BindConflict));
        assert_eq!(c.peer(0x4000, now), Some(a));
        assert_eq!(c.number(a, now), Some(0x4000));
        let later = now + Duration::from_secs(600);
        assert_eq!(c.peer(0x4000, later), None);
        c.bind(0x4000, b, later).unwrap();
        assert_eq!(c.number(a, later), None);
        assert_eq!(c.number(b, later), Some(0x4000));
        c.sweep(later + Duration::from_secs(600));
        assert!(c.by_peer.is_empty() && c.by_number.is_empty());
    }
}
