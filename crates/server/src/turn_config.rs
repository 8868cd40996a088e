//! The `turn:` section and `rtc.turn_servers` (LiveKit key names), and how they become the
//! embedded TURN server's settings and the ICE servers clients are handed.
//!
//! Unlike LiveKit, the `turns:` URL uses the configured `tls_port` (not a hard-coded 443),
//! TURN over TCP is served and advertised, and the REST credential secret is derived from
//! the API keys unless `turn.auth_secret` is set, so every node with the same keys agrees.

use std::{collections::HashMap, net::IpAddr, path::PathBuf, time::Duration};

use ipnet::IpNet;
use serde::Deserialize;
use signaling::ice::{EmbeddedTurn, ExternalTurn, IceConfig, TurnProtocol};

use crate::config::{Config, ConfigError};

/// Keys known in the `turn:` section.
pub const KNOWN_TURN_KEYS: &[&str] = &[
    "enabled",
    "domain",
    "udp_port",
    "tcp_port",
    "tls_port",
    "cert_file",
    "key_file",
    "relay_range_start",
    "relay_range_end",
    "ttl_seconds",
    "per_user_relay_allocation_limit",
    "deny_peer_cidrs",
    "allow_peer_cidrs",
    "auth_secret",
    "users",
];

/// `turn:` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct TurnSection {
    /// Run the embedded TURN server.
    pub enabled: bool,
    /// Name in `turns:` URLs (must match the certificate); also used in `turn:` URLs.
    pub domain: String,
    /// TURN over UDP (0 = off).
    pub udp_port: u16,
    /// TURN over TCP (0 = off).
    pub tcp_port: u16,
    /// TURN over TLS, when `cert_file` and `key_file` are set.
    pub tls_port: u16,
    /// PEM certificate chain.
    pub cert_file: Option<PathBuf>,
    /// PEM private key.
    pub key_file: Option<PathBuf>,
    /// First relay port.
    pub relay_range_start: u16,
    /// Last relay port.
    pub relay_range_end: u16,
    /// Lifetime of the credentials handed to clients (s).
    pub ttl_seconds: u64,
    /// Allocations per username (0 = unlimited).
    pub per_user_relay_allocation_limit: usize,
    /// Peers the relay may not reach (CIDRs); default: loopback, private, link-local, ...
    pub deny_peer_cidrs: Option<Vec<String>>,
    /// Peers allowed even if denied (CIDRs).
    pub allow_peer_cidrs: Vec<String>,
    /// Shared secret of the REST credentials (also for an external coturn's
    /// `--use-auth-secret --static-auth-secret`). Default: derived from the API keys.
    pub auth_secret: Option<String>,
    /// Static long-term users (username -> password), for tests and LANs.
    pub users: HashMap<String, String>,
}

impl Default for TurnSection {
    fn default() -> Self {
        Self {
            enabled: false,
            domain: String::new(),
            udp_port: turn_server::DEFAULT_PORT,
            tcp_port: turn_server::DEFAULT_PORT,
            tls_port: turn_server::DEFAULT_TLS_PORT,
            cert_file: None,
            key_file: None,
            relay_range_start: turn_server::DEFAULT_RELAY_RANGE_START,
            relay_range_end: turn_server::DEFAULT_RELAY_RANGE_END,
            ttl_seconds: turn_server::DEFAULT_TTL_SECONDS,
            per_user_relay_allocation_limit: turn_server::DEFAULT_PER_USER_ALLOCATION_LIMIT,
            deny_peer_cidrs: None,
            allow_peer_cidrs: Vec::new(),
            auth_secret: None,
            users: HashMap::new(),
        }
    }
}

/// One `rtc.turn_servers` entry (LiveKit's shape).
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct TurnServerEntry {
    /// Host name or IP.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `udp`, `tcp` or `tls`.
    pub protocol: String,
    /// Static username.
    pub username: String,
    /// Static password.
    pub credential: String,
    /// Shared secret (REST credentials per participant).
    pub secret: Option<String>,
    /// Lifetime of REST credentials (s).
    pub ttl: u64,
}

impl Default for TurnServerEntry {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 3478,
            protocol: "udp".into(),
            username: String::new(),
            credential: String::new(),
            secret: None,
            ttl: turn_server::DEFAULT_TTL_SECONDS,
        }
    }
}

fn err(s: String) -> ConfigError {
    ConfigError(s)
}

fn cidrs(list: &[String], key: &str) -> Result<Vec<IpNet>, ConfigError> {
    list.iter()
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| err(format!("turn.{key}: {s:?} is not a CIDR or IP address")))
        })
        .collect()
}

fn protocol(p: &str, i: usize) -> Result<TurnProtocol, ConfigError> {
    match p.to_ascii_lowercase().as_str() {
        "udp" | "" => Ok(TurnProtocol::Udp),
        "tcp" => Ok(TurnProtocol::Tcp),
        "tls" => Ok(TurnProtocol::Tls),
        other => Err(err(format!(
            "rtc.turn_servers[{i}].protocol: {other:?} is not udp, tcp or tls"
        ))),
    }
}

/// The REST secret: `turn.auth_secret`, else one derived from the API keys.
fn auth_secret(cfg: &Config) -> String {
    if let Some(s) = &cfg.turn.auth_secret {
        return s.clone();
    }
    let mut keys: Vec<(&String, &String)> = cfg.keys.iter().collect();
    keys.sort();
    let material: String = keys.iter().map(|(k, v)| format!("{k}:{v};")).collect();
    // HMAC-SHA1 of a fixed label keyed by the API keys: stable across restarts and nodes,
    // and not one of the API secrets themselves.
    turn_server::rest_credentials(&material, "switchyard-turn", Duration::ZERO, 0).1
}

/// Checks the `turn:` section and `rtc.turn_servers` (one error line naming the key).
pub fn validate(cfg: &Config) -> Result<(), ConfigError> {
    let t = &cfg.turn;
    for (i, e) in cfg.rtc.turn_servers.iter().enumerate() {
        if e.host.is_empty() {
            return Err(err(format!("rtc.turn_servers[{i}].host: must be set")));
        }
        protocol(&e.protocol, i)?;
    }
    if !t.enabled {
        return Ok(());
    }
    cidrs(&t.allow_peer_cidrs, "allow_peer_cidrs")?;
    if let Some(d) = &t.deny_peer_cidrs {
        cidrs(d, "deny_peer_cidrs")?;
    }
    if t.relay_range_start == 0 || t.relay_range_start > t.relay_range_end {
        return Err(err(format!(
            "turn.relay_range_start: {}-{} is not a port range",
            t.relay_range_start, t.relay_range_end
        )));
    }
    match (&t.cert_file, &t.key_file) {
        (Some(_), None) => return Err(err("turn.key_file: needed with turn.cert_file".into())),
        (None, Some(_)) => return Err(err("turn.cert_file: needed with turn.key_file".into())),
        (Some(_), Some(_)) if t.domain.is_empty() => {
            return Err(err(
                "turn.domain: needed for TURN/TLS (the name in the certificate)".into(),
            ));
        }
        _ => {}
    }
    if t.udp_port == 0 && t.tcp_port == 0 && t.cert_file.is_none() {
        return Err(err(
            "turn.udp_port: every TURN listener is off (udp_port, tcp_port 0, no TLS)".into(),
        ));
    }
    if cfg.keys.is_empty() && t.auth_secret.is_none() && t.users.is_empty() {
        return Err(err(
            "turn.auth_secret: needed when no API keys are set".into()
        ));
    }
    Ok(())
}

/// Settings of the embedded TURN server, if enabled (after [`validate`]).
pub fn server_config(cfg: &Config) -> Option<turn_server::TurnConfig> {
    let t = &cfg.turn;
    if !t.enabled {
        return None;
    }
    let advertised = cfg.advertised_ip();
    let bind = cfg.udp_bind_ip();
    let relay_ip = if bind.is_unspecified() {
        advertised
    } else {
        bind
    };
    let tls = t.cert_file.is_some() && t.key_file.is_some();
    let mut c = turn_server::TurnConfig {
        enabled: true,
        bind_ip: bind,
        udp_port: (t.udp_port != 0).then_some(t.udp_port),
        tcp_port: (t.tcp_port != 0).then_some(t.tcp_port),
        tls_port: tls.then_some(t.tls_port),
        domain: t.domain.clone(),
        cert_file: t.cert_file.clone(),
        key_file: t.key_file.clone(),
        relay_ip,
        relay_advertised_ip: (relay_ip != advertised).then_some(advertised),
        relay_range_start: t.relay_range_start,
        relay_range_end: t.relay_range_end,
        ttl_seconds: t.ttl_seconds,
        per_user_relay_allocation_limit: t.per_user_relay_allocation_limit,
        allow_peer_cidrs: cidrs(&t.allow_peer_cidrs, "allow_peer_cidrs").unwrap_or_default(),
        always_allowed_peers: vec![advertised, relay_ip],
        auth_secret: Some(auth_secret(cfg)),
        static_users: t.users.clone(),
        ..Default::default()
    };
    if let Some(d) = &t.deny_peer_cidrs {
        c.deny_peer_cidrs = cidrs(d, "deny_peer_cidrs").unwrap_or_default();
    }
    Some(c)
}

/// The ICE servers clients are handed (after [`validate`]).
pub fn ice_config(cfg: &Config) -> IceConfig {
    let t = &cfg.turn;
    let embedded = t.enabled.then(|| {
        let host = if t.domain.is_empty() {
            cfg.advertised_ip().to_string()
        } else {
            t.domain.clone()
        };
        let tls = t.cert_file.is_some() && t.key_file.is_some();
        EmbeddedTurn {
            host,
            udp_port: (t.udp_port != 0).then_some(t.udp_port),
            tcp_port: (t.tcp_port != 0).then_some(t.tcp_port),
            tls: tls.then(|| (t.domain.clone(), t.tls_port)),
            secret: auth_secret(cfg),
            ttl: Duration::from_secs(t.ttl_seconds),
        }
    });
    let turn_servers = cfg
        .rtc
        .turn_servers
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            Some(ExternalTurn {
                host: e.host.clone(),
                port: e.port,
                protocol: protocol(&e.protocol, i).ok()?,
                username: e.username.clone(),
                credential: e.credential.clone(),
                secret: e.secret.clone(),
                ttl: Duration::from_secs(e.ttl),
            })
        })
        .collect();
    IceConfig {
        embedded,
        stun_servers: cfg.rtc.stun_servers.clone(),
        turn_servers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Cli, load};

    fn cfg(body: &str) -> Result<Config, ConfigError> {
        let cli = Cli {
            keys: Some("k: secret-secret-secret".into()),
            node_ip: Some("10.0.0.1".into()),
            config_body: Some(body.into()),
            ..Default::default()
        };
        load(&cli, &|_| None).map(|(c, _)| c)
    }

    #[test]
    fn embedded_turn_urls_use_the_configured_ports() {
        let c = cfg("turn:\n  enabled: true\n  udp_port: 3479\n  tcp_port: 3480\n").unwrap();
        let s = ice_config(&c).servers_at("alice", 100);
        assert_eq!(
            s[0].urls,
            vec![
                "turn:10.0.0.1:3479?transport=udp",
                "turn:10.0.0.1:3480?transport=tcp"
            ]
        );
        let t = server_config(&c).unwrap();
        assert_eq!(t.udp_port, Some(3479));
        assert_eq!(t.tls_port, None, "no TLS without a certificate");
        assert!(
            t.always_allowed_peers
                .contains(&"10.0.0.1".parse().unwrap())
        );
        // The secret the server checks is the one the credentials were made with.
        assert_eq!(t.auth_secret.as_deref(), Some(auth_secret(&c).as_str()));
    }

    #[test]
    fn errors_name_the_key() {
        let e = |b: &str| cfg(b).unwrap_err().0;
        assert!(
            e("turn:\n  enabled: true\n  allow_peer_cidrs: [nope]")
                .contains("turn.allow_peer_cidrs")
        );
        assert!(e("turn:\n  enabled: true\n  cert_file: /x.pem").contains("turn.key_file"));
        assert!(
            e("turn:\n  enabled: true\n  cert_file: /x\n  key_file: /y").contains("turn.domain")
        );
        assert!(
            e("rtc:\n  turn_servers:\n    - host: h\n      protocol: sctp")
                .contains("rtc.turn_servers[0].protocol")
        );
    }

    #[test]
    fn external_turn_with_secret() {
        let c = cfg("rtc:\n  turn_servers:\n    - host: coturn.example\n      port: 5349\n      protocol: tls\n      secret: xyz\n      ttl: 60\n").unwrap();
        let s = ice_config(&c).servers_at("bob", 1000);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].urls, vec!["turns:coturn.example:5349?transport=tcp"]);
        assert_eq!(s[0].username, "1060:bob");
    }
}
