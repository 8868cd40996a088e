//! Settings of the embedded TURN server.
//!
//! Plain Rust (no serde): the binary owns the LiveKit-style YAML (`turn:` section) and maps it
//! onto this struct, so the server crate does not depend on how settings are spelled on disk.
//! Every field has a default that works on a single host; [`TurnConfig::validate`] rejects
//! combinations that could only fail later (an empty relay range, a relay address nobody can
//! reach, a certificate without a key, no way to authenticate anyone).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use crate::credentials::rest_credentials;
use crate::error::TurnError;
use crate::peer_policy::default_deny_peer_cidrs;

/// Settings of the embedded TURN server (LiveKit's `turn:` section plus what LiveKit derives).
/// `Debug` redacts `auth_secret` and the static users' passwords.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnConfig {
    /// `turn.enabled`. [`crate::start`] refuses to run a disabled server.
    pub enabled: bool,
    /// Address the client-facing listeners bind to. Default `0.0.0.0`.
    pub bind_ip: IpAddr,
    /// TURN over UDP. `None` disables the listener, `Some(0)` picks a free port. Default 3478.
    pub udp_port: Option<u16>,
    /// TURN over TCP. `None` disables the listener, `Some(0)` picks a free port. Default 3478.
    pub tcp_port: Option<u16>,
    /// TURN over TLS. Only started when both `cert_file` and `key_file` are set. Default 5349.
    pub tls_port: Option<u16>,
    /// `turn.domain`: the name in `turns:` URLs (used by the credential issuer, not here).
    pub domain: String,
    /// PEM certificate chain for the TLS listener.
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for the TLS listener.
    pub key_file: Option<PathBuf>,
    /// Address relay sockets bind to. Must be a concrete address (not `0.0.0.0`).
    pub relay_ip: IpAddr,
    /// Address advertised in XOR-RELAYED-ADDRESS when it differs from `relay_ip`
    /// (1:1 NAT, e.g. a cloud VM's public IP). `None` advertises `relay_ip`.
    pub relay_advertised_ip: Option<IpAddr>,
    /// First UDP port for relays (inclusive). Default 30000.
    pub relay_range_start: u16,
    /// Last UDP port for relays (inclusive). Default 40000.
    pub relay_range_end: u16,
    /// Lifetime of REST credentials handed to clients, used by the issuer
    /// ([`TurnConfig::issue_credentials`]). Default 14400 s.
    pub ttl_seconds: u64,
    /// Maximum simultaneous allocations per username; 0 means unlimited. Default 10.
    pub per_user_relay_allocation_limit: usize,
    /// Peer addresses clients may not reach through the relay.
    /// Default: [`default_deny_peer_cidrs`].
    pub deny_peer_cidrs: Vec<IpNet>,
    /// Peer addresses allowed even when `deny_peer_cidrs` matches. Default empty.
    pub allow_peer_cidrs: Vec<IpNet>,
    /// The SFU's own advertised addresses: always reachable, even when private.
    pub always_allowed_peers: Vec<IpAddr>,
    /// REALM of the long-term credential mechanism. Default `"switchyard"`.
    pub realm: String,
    /// Shared secret of TURN REST credentials (`<expiry>:<id>` / base64 HMAC-SHA1).
    pub auth_secret: Option<String>,
    /// Plain long-term users, username to password.
    pub static_users: HashMap<String, String>,
    /// How long a NONCE stays valid before requests get 438 Stale Nonce. Default 600 s.
    pub nonce_lifetime: Duration,
    /// Only accept RFC 8656 channel numbers (0x4000-0x4FFF) in ChannelBind. The default
    /// (`false`) also accepts RFC 5766's 0x5000-0x7FFF, which coturn's clients still pick.
    pub strict_channel_numbers: bool,
}

/// Default UDP and TCP port of TURN.
pub const DEFAULT_PORT: u16 = 3478;
/// Default port of TURN over TLS.
pub const DEFAULT_TLS_PORT: u16 = 5349;
/// Default first relay port.
pub const DEFAULT_RELAY_RANGE_START: u16 = 30000;
/// Default last relay port.
pub const DEFAULT_RELAY_RANGE_END: u16 = 40000;
/// Default lifetime of issued REST credentials, in seconds.
pub const DEFAULT_TTL_SECONDS: u64 = 14400;
/// Default per-username allocation limit.
pub const DEFAULT_PER_USER_ALLOCATION_LIMIT: usize = 10;
/// Default realm.
pub const DEFAULT_REALM: &str = "switchyard";
/// Default nonce lifetime.
pub const DEFAULT_NONCE_LIFETIME: Duration = Duration::from_secs(600);

impl Default for TurnConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            udp_port: Some(DEFAULT_PORT),
            tcp_port: Some(DEFAULT_PORT),
            tls_port: Some(DEFAULT_TLS_PORT),
            domain: String::new(),
            cert_file: None,
            key_file: None,
            relay_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            relay_advertised_ip: None,
            relay_range_start: DEFAULT_RELAY_RANGE_START,
            relay_range_end: DEFAULT_RELAY_RANGE_END,
            ttl_seconds: DEFAULT_TTL_SECONDS,
            per_user_relay_allocation_limit: DEFAULT_PER_USER_ALLOCATION_LIMIT,
            deny_peer_cidrs: default_deny_peer_cidrs(),
            allow_peer_cidrs: Vec::new(),
            always_allowed_peers: Vec::new(),
            realm: DEFAULT_REALM.to_owned(),
            auth_secret: None,
            static_users: HashMap::new(),
            nonce_lifetime: DEFAULT_NONCE_LIFETIME,
            strict_channel_numbers: false,
        }
    }
}

impl fmt::Debug for TurnConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut users: Vec<&str> = self.static_users.keys().map(String::as_str).collect();
        users.sort_unstable();
        f.debug_struct("TurnConfig")
            .field("enabled", &self.enabled)
            .field("bind_ip", &self.bind_ip)
            .field("udp_port", &self.udp_port)
            .field("tcp_port", &self.tcp_port)
            .field("tls_port", &self.tls_port)
            .field("domain", &self.domain)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("relay_ip", &self.relay_ip)
            .field("relay_advertised_ip", &self.relay_advertised_ip)
            .field("relay_range_start", &self.relay_range_start)
            .field("relay_range_end", &self.relay_range_end)
            .field("ttl_seconds", &self.ttl_seconds)
            .field(
                "per_user_relay_allocation_limit",
                &self.per_user_relay_allocation_limit,
            )
            .field("deny_peer_cidrs", &self.deny_peer_cidrs)
            .field("allow_peer_cidrs", &self.allow_peer_cidrs)
            .field("always_allowed_peers", &self.always_allowed_peers)
            .field("realm", &self.realm)
            .field(
                "auth_secret",
                &self.auth_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("static_users", &users)
            .field("nonce_lifetime", &self.nonce_lifetime)
            .field("strict_channel_numbers", &self.strict_channel_numbers)
            .finish()
    }
}

impl TurnConfig {
    /// Lifetime of issued REST credentials (`ttl_seconds`).
    pub fn credential_ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_seconds)
    }

    /// REST credentials for `id` (e.g. a participant sid) valid for `ttl_seconds` from
    /// `now_unix`; `None` when no `auth_secret` is configured.
    pub fn issue_credentials(&self, id: &str, now_unix: u64) -> Option<(String, String)> {
        let secret = self.auth_secret.as_deref()?;
        Some(rest_credentials(
            secret,
            id,
            self.credential_ttl(),
            now_unix,
        ))
    }

    /// The address put in XOR-RELAYED-ADDRESS.
    pub fn advertised_relay_ip(&self) -> IpAddr {
        self.relay_advertised_ip.unwrap_or(self.relay_ip)
    }

    /// Whether the TLS listener will run (a port and both PEM files are configured).
    pub fn tls_enabled(&self) -> bool {
        self.tls_port.is_some() && self.cert_file.is_some() && self.key_file.is_some()
    }

    /// Rejects settings the server cannot run with.
    pub fn validate(&self) -> Result<(), TurnError> {
        let bad = |m: String| Err(TurnError::Config(m));
        if self.relay_ip.is_unspecified() {
            return bad("turn relay_ip must be a concrete address (relays bind to it)".into());
        }
        if self.advertised_relay_ip().is_unspecified() {
            return bad("turn relay_advertised_ip must be a concrete address".into());
        }
        if self.advertised_relay_ip().is_ipv4() != self.relay_ip.is_ipv4() {
            return bad(
                "turn relay_advertised_ip and relay_ip must be of one address family".into(),
            );
        }
        if self.relay_range_start == 0 || self.relay_range_start > self.relay_range_end {
            return bad(format!(
                "turn relay range {}-{} is empty",
                self.relay_range_start, self.relay_range_end
            ));
        }
        if self.realm.is_empty() {
            return bad("turn realm must not be empty".into());
        }
        if self.auth_secret.as_deref().is_none_or(str::is_empty) && self.static_users.is_empty() {
            return bad("turn needs an auth_secret or static_users to authenticate clients".into());
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return bad("turn cert_file and key_file must be set together".into());
        }
        if self.udp_port.is_none() && self.tcp_port.is_none() && !self.tls_enabled() {
            return bad("turn has no listener (udp_port, tcp_port and TLS all disabled)".into());
        }
        if self.nonce_lifetime.is_zero() {
            return bad("turn nonce_lifetime must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let mut c = TurnConfig {
            auth_secret: Some("top-secret".into()),
            ..Default::default()
        };
        c.static_users.insert("alice".into(), "hunter2".into());
        let s = format!("{c:?}");
        assert!(!s.contains("top-secret") && !s.contains("hunter2"), "{s}");
        assert!(s.contains("alice") && s.contains("<redacted>"), "{s}");
    }

    #[test]
    fn validation() {
        let ok = TurnConfig {
            enabled: true,
            relay_ip: "192.0.2.1".parse().unwrap(),
            auth_secret: Some("s".into()),
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
        let bad = [
            TurnConfig {
                relay_ip: "0.0.0.0".parse().unwrap(),
                ..ok.clone()
            },
            TurnConfig {
                relay_advertised_ip: Some("2001:db8::1".parse().unwrap()),
                ..ok.clone()
            },
            TurnConfig {
                relay_range_start: 5,
                relay_range_end: 4,
                ..ok.clone()
            },
            TurnConfig {
                auth_secret: None,
                ..ok.clone()
            },
            TurnConfig {
                cert_file: Some("c.pem".into()),
                ..ok.clone()
            },
            TurnConfig {
                udp_port: None,
                tcp_port: None,
                ..ok.clone()
            },
        ];
        for b in bad {
            assert!(b.validate().is_err(), "{b:?}");
        }
    }
}
