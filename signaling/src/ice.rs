//! The ICE servers each client is handed: the embedded TURN server with credentials made for
//! that participant, configured STUN servers, and external TURN servers (static credentials,
//! or REST credentials from a shared secret, as coturn's `use-auth-secret` expects).
//!
//! One list feeds JoinResponse `ice_servers` and the `Link` headers of WHIP/WHEP answers, so
//! every kind of client gets the same way through a restrictive network.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use livekit_protocol as proto;

/// The embedded TURN server as clients should reach it.
#[derive(Clone, Debug)]
pub struct EmbeddedTurn {
    /// Host in `turn:` URLs (the node IP, or `turn.domain`).
    pub host: String,
    /// TURN over UDP port, if that listener runs.
    pub udp_port: Option<u16>,
    /// TURN over TCP port, if that listener runs.
    pub tcp_port: Option<u16>,
    /// `(domain, port)` for `turns:` when the TLS listener runs.
    pub tls: Option<(String, u16)>,
    /// Shared secret of the REST credentials.
    pub secret: String,
    /// Lifetime of the credentials handed out.
    pub ttl: Duration,
}

/// Client-side transport of an external TURN server (`rtc.turn_servers[].protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TurnProtocol {
    /// `turn:...?transport=udp`
    Udp,
    /// `turn:...?transport=tcp`
    Tcp,
    /// `turns:...?transport=tcp`
    Tls,
}

/// One entry of `rtc.turn_servers`.
#[derive(Clone, Debug)]
pub struct ExternalTurn {
    /// Host name or IP.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Transport.
    pub protocol: TurnProtocol,
    /// Static username (ignored when `secret` is set).
    pub username: String,
    /// Static password.
    pub credential: String,
    /// Shared secret: REST credentials are made per participant.
    pub secret: Option<String>,
    /// Lifetime of REST credentials.
    pub ttl: Duration,
}

/// Everything that decides a client's ICE servers.
#[derive(Clone, Debug, Default)]
pub struct IceConfig {
    /// The embedded TURN server, when enabled.
    pub embedded: Option<EmbeddedTurn>,
    /// `rtc.stun_servers` (`host:port`).
    pub stun_servers: Vec<String>,
    /// `rtc.turn_servers`.
    pub turn_servers: Vec<ExternalTurn>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl IceConfig {
    /// The ICE servers for participant `id` (its identity), with credentials valid from now.
    pub fn servers_for(&self, id: &str) -> Vec<proto::IceServer> {
        self.servers_at(id, unix_now())
    }

    /// [`servers_for`](Self::servers_for) at a given Unix time.
    pub fn servers_at(&self, id: &str, now_unix: u64) -> Vec<proto::IceServer> {
        let mut out = Vec::new();
        if let Some(e) = &self.embedded {
            let (username, credential) =
                turn_server::rest_credentials(&e.secret, id, e.ttl, now_unix);
            let mut urls = Vec::new();
            if let Some(p) = e.udp_port {
                urls.push(format!("turn:{}:{p}?transport=udp", e.host));
            }
            if let Some(p) = e.tcp_port {
                urls.push(format!("turn:{}:{p}?transport=tcp", e.host));
            }
            if let Some((domain, p)) = &e.tls {
                urls.push(format!("turns:{domain}:{p}?transport=tcp"));
            }
            if !urls.is_empty() {
                out.push(proto::IceServer {
                    urls,
                    username,
                    credential,
                });
            }
        }
        for t in &self.turn_servers {
            let url = match t.protocol {
                TurnProtocol::Udp => format!("turn:{}:{}?transport=udp", t.host, t.port),
                TurnProtocol::Tcp => format!("turn:{}:{}?transport=tcp", t.host, t.port),
                TurnProtocol::Tls => format!("turns:{}:{}?transport=tcp", t.host, t.port),
            };
            let (username, credential) = match &t.secret {
                Some(s) => turn_server::rest_credentials(s, id, t.ttl, now_unix),
                None => (t.username.clone(), t.credential.clone()),
            };
            out.push(proto::IceServer {
                urls: vec![url],
                username,
                credential,
            });
        }
        if !self.stun_servers.is_empty() {
            out.push(proto::IceServer {
                urls: self
                    .stun_servers
                    .iter()
                    .map(|s| {
                        if s.starts_with("stun:") {
                            s.clone()
                        } else {
                            format!("stun:{s}")
                        }
                    })
                    .collect(),
                ..Default::default()
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_external_and_stun() {
        let ice = IceConfig {
            embedded: Some(EmbeddedTurn {
                host: "10.0.0.1".into(),
                udp_port: Some(3478),
                tcp_port: Some(3478),
                tls: Some(("turn.example.com".into(), 5349)),
                secret: "s3cret".into(),
                ttl: Duration::from_secs(600),
            }),
            stun_servers: vec!["stun.example.com:3478".into()],
            turn_servers: vec![
                ExternalTurn {
                    host: "coturn".into(),
                    port: 443,
                    protocol: TurnProtocol::Tls,
                    username: String::new(),
                    credential: String::new(),
                    secret: Some("x".into()),
                    ttl: Duration::from_secs(60),
                },
                ExternalTurn {
                    host: "static".into(),
                    port: 3478,
                    protocol: TurnProtocol::Udp,
                    username: "u".into(),
                    credential: "p".into(),
                    secret: None,
                    ttl: Duration::ZERO,
                },
            ],
        };
        let s = ice.servers_at("alice", 1000);
        assert_eq!(s.len(), 4);
        assert_eq!(
            s[0].urls,
            vec![
                "turn:10.0.0.1:3478?transport=udp",
                "turn:10.0.0.1:3478?transport=tcp",
                "turns:turn.example.com:5349?transport=tcp"
            ]
        );
        assert_eq!(s[0].username, "1600:alice");
        assert_eq!(
            (s[0].username.clone(), s[0].credential.clone()),
            turn_server::rest_credentials("s3cret", "alice", Duration::from_secs(600), 1000)
        );
        assert_eq!(s[1].urls, vec!["turns:coturn:443?transport=tcp"]);
        assert_eq!(s[1].username, "1060:alice");
        assert_eq!(
            (s[2].username.as_str(), s[2].credential.as_str()),
            ("u", "p")
        );
        assert_eq!(s[3].urls, vec!["stun:stun.example.com:3478"]);
        assert!(IceConfig::default().servers_for("a").is_empty());
    }
}
