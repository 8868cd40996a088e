//! Which peer addresses a client may reach through a relay.
//!
//! An open relay is a way into the operator's network: without a filter any authenticated
//! client could send UDP to the host's loopback services, the cloud metadata endpoint or
//! private subnets. CreatePermission and ChannelBind therefore check the peer address here
//! (403 Forbidden when refused). The SFU's own advertised addresses are always allowed,
//! because relaying to the SFU is the point of the embedded server; `allow_peer_cidrs`
//! punches holes in the deny list for deployments where media lives on private addresses.

use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;

/// The default deny list: loopback, RFC 1918 private, link-local, multicast, unspecified and
/// reserved, CGNAT 100.64/10, and IPv6 loopback, unspecified, ULA, link-local, multicast and
/// IPv4-mapped addresses.
pub fn default_deny_peer_cidrs() -> Vec<IpNet> {
    [
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "::ffff:0:0/96",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    ]
    .iter()
    .filter_map(|s| s.parse().ok())
    .collect()
}

/// The compiled peer filter.
#[derive(Debug, Clone)]
pub(crate) struct PeerPolicy {
    deny: Vec<IpNet>,
    allow: Vec<IpNet>,
    always: HashSet<IpAddr>,
}

impl PeerPolicy {
    pub(crate) fn new(deny: Vec<IpNet>, allow: Vec<IpNet>, always: &[IpAddr]) -> Self {
        let always = always.iter().map(|ip| canonical(*ip)).collect();
        Self {
            deny,
            allow,
            always,
        }
    }

    /// Whether a client may relay to `ip`. IPv4-mapped IPv6 addresses are judged as the IPv4
    /// address they carry, so `::ffff:127.0.0.1` cannot sneak past a `127.0.0.0/8` rule.
    pub(crate) fn is_allowed(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if self.always.contains(&ip) || self.allow.iter().any(|n| n.contains(&ip)) {
            return true;
        }
        !self.deny.iter().any(|n| n.contains(&ip))
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn defaults() {
        let p = PeerPolicy::new(default_deny_peer_cidrs(), vec![], &[]);
        for denied in [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "ff02::1",
        ] {
            assert!(!p.is_allowed(ip(denied)), "{denied}");
        }
        for allowed in ["8.8.8.8", "172.32.0.1", "100.128.0.1", "2001:db8::1"] {
            assert!(p.is_allowed(ip(allowed)), "{allowed}");
        }
        assert_eq!(default_deny_peer_cidrs().len(), 15);
    }

    #[test]
    fn allow_and_always_override() {
        let p = PeerPolicy::new(
            default_deny_peer_cidrs(),
            vec!["127.0.0.0/8".parse().unwrap()],
            &[ip("10.0.0.5")],
        );
        assert!(p.is_allowed(ip("127.0.0.1")));
        assert!(p.is_allowed(ip("::ffff:127.0.0.1")));
        assert!(p.is_allowed(ip("10.0.0.5")));
        assert!(!p.is_allowed(ip("10.0.0.6")));
    }
}
