//! Server-wide allocation bookkeeping: per-username quota, the relay port pool and the count
//! of live allocations.
//!
//! This is the only state shared between listeners that changes at runtime, and it is only
//! touched when an allocation is created or ends, never per packet; a plain mutex is enough.
//! An allocation holds a [`Lease`]; dropping it (the allocation task ending for any reason)
//! gives the quota slot and the relay port back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::port_pool::{PortPool, RelayGrant, RelayWant};

#[derive(Debug)]
struct Inner {
    per_user: HashMap<String, usize>,
    active: u64,
    ports: PortPool,
}

/// Allocation bookkeeping.
#[derive(Debug)]
pub(crate) struct Registry {
    inner: Mutex<Inner>,
}

impl Registry {
    pub(crate) fn new(ports: PortPool) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner {
                per_user: HashMap::new(),
                active: 0,
                ports,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere must not take allocation bookkeeping down with it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one of `username`'s allocation slots (`limit` 0 = unlimited); `None` when the
    /// quota is used up.
    pub(crate) fn admit(self: &Arc<Self>, username: &str, limit: usize) -> Option<Lease> {
        let mut inner = self.lock();
        let count = inner.per_user.entry(username.to_owned()).or_insert(0);
        if limit != 0 && *count >= limit {
            return None;
        }
        *count += 1;
        inner.active += 1;
        Some(Lease {
            registry: Arc::clone(self),
            username: username.to_owned(),
            port: None,
        })
    }

    /// Binds the relay socket of `lease`.
    pub(crate) fn bind_relay(&self, lease: &mut Lease, want: RelayWant) -> Option<RelayGrant> {
        let grant = self.lock().ports.grant(want, Instant::now())?;
        lease.port = Some(grant.port);
        Some(grant)
    }

    /// Allocations alive now.
    pub(crate) fn active(&self) -> u64 {
        self.lock().active
    }

    /// Waits (at most `limit`) until no allocation is alive.
    pub(crate) async fn wait_idle(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.active() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// One allocation's claim on a quota slot and a relay port.
#[derive(Debug)]
pub(crate) struct Lease {
    registry: Arc<Registry>,
    username: String,
    port: Option<u16>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        if let Some(c) = inner.per_user.get_mut(&self.username) {
            *c = c.saturating_sub(1);
            if *c == 0 {
                inner.per_user.remove(&self.username);
            }
        }
        inner.active = inner.active.saturating_sub(1);
        if let Some(port) = self.port {
            inner.ports.release(port);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn quota_per_user() {
        let r = Registry::new(PortPool::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 47300, 47310));
        let a = r.admit("u", 2).unwrap();
        let b = r.admit("u", 2).unwrap();
        assert!(r.admit("u", 2).is_none());
        assert!(r.admit("v", 2).is_some());
        assert_eq!(r.active(), 2);
        drop(a);
        let c = r.admit("u", 2).unwrap();
        drop((b, c));
        assert_eq!(r.active(), 0);
        let many: Vec<_> = (0..50).map(|_| r.admit("w", 0).unwrap()).collect();
        assert_eq!(many.len(), 50);
    }
}
