//! The relay port range: which UDP ports relays may bind, and ports reserved for a later
//! allocation (EVEN-PORT with the R bit, RFC 8656 section 14.6, answered with a
//! RESERVATION-TOKEN).
//!
//! Ports are found by binding, starting from a cursor that moves on after every grant, so a
//! freed port is not handed out again at once (a late packet from the previous peer would
//! otherwise land in the next allocation). Ports other processes hold simply fail to bind and
//! are skipped. A reservation keeps its socket bound until it is claimed or expires.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// How long a reserved port waits for the allocation that claims it.
pub(crate) const RESERVATION_LIFETIME: Duration = Duration::from_secs(30);

/// What kind of relay port an Allocate asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RelayWant {
    /// Any port.
    Any,
    /// An even port (EVEN-PORT, R=0).
    Even,
    /// An even port, and the next one reserved (EVEN-PORT, R=1).
    EvenReserveNext,
    /// The port reserved under this RESERVATION-TOKEN.
    Token([u8; 8]),
}

/// A bound relay socket.
#[derive(Debug)]
pub(crate) struct RelayGrant {
    pub socket: UdpSocket,
    pub port: u16,
    /// Set for [`RelayWant::EvenReserveNext`]: the token of the reserved next port.
    pub token: Option<[u8; 8]>,
}

#[derive(Debug)]
struct Reservation {
    socket: UdpSocket,
    port: u16,
    expires: Instant,
}

/// The relay ports of one server.
#[derive(Debug)]
pub(crate) struct PortPool {
    ip: IpAddr,
    start: u16,
    end: u16,
    next: u16,
    in_use: HashSet<u16>,
    reservations: HashMap<[u8; 8], Reservation>,
}

impl PortPool {
    pub(crate) fn new(ip: IpAddr, start: u16, end: u16) -> Self {
        let span = u32::from(end - start) + 1;
        let offset = u16::try_from(rand::random::<u32>() % span).unwrap_or(0);
        Self {
            ip,
            start,
            end,
            next: start + offset,
            in_use: HashSet::new(),
            reservations: HashMap::new(),
        }
    }

    /// Binds a relay socket as `want` asks, or `None` when the range is exhausted or the
    /// token is unknown or expired.
    pub(crate) fn grant(&mut self, want: RelayWant, now: Instant) -> Option<RelayGrant> {
        self.expire_reservations(now);
        match want {
            RelayWant::Token(token) => {
                let r = self.reservations.remove(&token)?;
                Some(RelayGrant {
                    socket: r.socket,
                    port: r.port,
                    token: None,
                })
            }
            RelayWant::Any => self.scan(|pool, port| {
                let socket = pool.bind(port)?;
                Some((socket, port, None))
            }),
            RelayWant::Even => self.scan(|pool, port| {
                if port % 2 != 0 {
                    return None;
                }
                let socket = pool.bind(port)?;
                Some((socket, port, None))
            }),
            RelayWant::EvenReserveNext => self.scan(|pool, port| {
                if port % 2 != 0 || port >= pool.end || pool.in_use.contains(&(port + 1)) {
                    return None;
                }
                let socket = pool.bind(port)?;
                let next = pool.bind(port + 1)?;
                let token: [u8; 8] = rand::random();
                pool.in_use.insert(port + 1);
                pool.reservations.insert(
                    token,
                    Reservation {
                        socket: next,
                        port: port + 1,
                        expires: now + RESERVATION_LIFETIME,
                    },
                );
                Some((socket, port, Some(token)))
            }),
        }
    }

    /// Returns a port to the pool (the allocation holding it ended).
    pub(crate) fn release(&mut self, port: u16) {
        self.in_use.remove(&port);
    }

    fn expire_reservations(&mut self, now: Instant) {
        let expired: Vec<[u8; 8]> = self
            .reservations
            .iter()
            .filter(|(_, r)| r.expires <= now)
            .map(|(t, _)| *t)
            .collect();
        for t in expired {
            if let Some(r) = self.reservations.remove(&t) {
                self.in_use.remove(&r.port);
            }
        }
    }

    /// Visits every port once from the cursor, skipping ports in use, until `try_port`
    /// succeeds; the granted port is marked in use and the cursor moves past it.
    fn scan(
        &mut self,
        mut try_port: impl FnMut(&mut Self, u16) -> Option<(UdpSocket, u16, Option<[u8; 8]>)>,
    ) -> Option<RelayGrant> {
        let span = u32::from(self.end - self.start) + 1;
        let mut port = self.next;
        for _ in 0..span {
            if !self.in_use.contains(&port)
                && let Some((socket, granted, token)) = try_port(self, port)
            {
                self.in_use.insert(granted);
                self.next = if granted >= self.end {
                    self.start
                } else {
                    granted + 1
                };
                return Some(RelayGrant {
                    socket,
                    port: granted,
                    token,
                });
            }
            port = if port >= self.end {
                self.start
            } else {
                port + 1
            };
        }
        None
    }

    fn bind(&self, port: u16) -> Option<UdpSocket> {
        let socket = UdpSocket::bind(SocketAddr::new(self.ip, port)).ok()?;
        socket.set_nonblocking(true).ok()?;
        Some(socket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn pool(start: u16, end: u16) -> PortPool {
        PortPool::new(IpAddr::V4(Ipv4Addr::LOCALHOST), start, end)
    }

    #[test]
    fn exhausts_and_releases() {
        // A range of 4 high ports; some may be taken by other processes, so only check that
        // no port is granted twice and that a release makes room again.
        let mut p = pool(47100, 47103);
        let now = Instant::now();
        let mut got = Vec::new();
        while let Some(g) = p.grant(RelayWant::Any, now) {
            assert!(!got.iter().any(|(port, _)| *port == g.port));
            got.push((g.port, g.socket));
        }
        assert!(got.len() <= 4);
        if let Some((port, socket)) = got.pop() {
            drop(socket);
            p.release(port);
            assert_eq!(p.grant(RelayWant::Any, now).map(|g| g.port), Some(port));
        }
    }

    #[test]
    fn even_and_reservation() {
        let mut p = pool(47200, 47299);
        let now = Instant::now();
        let g = p.grant(RelayWant::EvenReserveNext, now).unwrap();
        assert_eq!(g.port % 2, 0);
        let token = g.token.unwrap();
        let e = p.grant(RelayWant::Even, now).unwrap();
        assert_eq!(e.port % 2, 0);
        assert_ne!(e.port, g.port);
        let r = p.grant(RelayWant::Token(token), now).unwrap();
        assert_eq!(r.port, g.port + 1);
        assert!(p.grant(RelayWant::Token(token), now).is_none(), "used once");
        let g2 = p.grant(RelayWant::EvenReserveNext, now).unwrap();
        let later = now + RESERVATION_LIFETIME + Duration::from_secs(1);
        assert!(
            p.grant(RelayWant::Token(g2.token.unwrap()), later)
                .is_none()
        );
    }
}
