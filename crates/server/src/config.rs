//! Server configuration with LiveKit's `config.yaml` key names, so an existing LiveKit
//! config file works unchanged for the keys we implement.
//!
//! Precedence: built-in defaults < `--config` file < `LIVEKIT_CONFIG` env body <
//! `--config-body` < env overrides (`LIVEKIT_KEYS`, `NODE_IP`, `UDP_PORT`) < flags.
//! Unknown LiveKit keys are accepted (and listed in a warning) so a full LiveKit config
//! still starts; a bad value of a known key is one error line naming the key.

use std::{collections::HashMap, fmt, net::IpAddr, path::PathBuf};

use serde::{Deserialize, Deserializer};
use serde_yaml::Value;

/// Command-line flags (LiveKit names).
#[derive(Debug, Default, clap::Parser)]
#[command(
    name = "switchyard",
    version,
    about = "A LiveKit-compatible WebRTC SFU"
)]
pub struct Cli {
    /// Path to a LiveKit-style YAML config file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// YAML config as a string (overrides --config).
    #[arg(long = "config-body")]
    pub config_body: Option<String>,
    /// Development mode: keys devkey/secret, bind to loopback, UDP 7882, debug logging.
    #[arg(long)]
    pub dev: bool,
    /// IP addresses to bind the HTTP server to (repeatable).
    #[arg(long)]
    pub bind: Vec<String>,
    /// IP address advertised to clients in ICE candidates.
    #[arg(long = "node-ip")]
    pub node_ip: Option<String>,
    /// UDP port (or range "7882-7883", one shard per port) for all WebRTC traffic.
    #[arg(long = "udp-port")]
    pub udp_port: Option<String>,
    /// API keys, "key1: secret1, key2: secret2".
    #[arg(long)]
    pub keys: Option<String>,
    /// TURN/TLS certificate (PEM), as `turn.cert_file`.
    #[arg(long = "turn-cert")]
    pub turn_cert: Option<PathBuf>,
    /// TURN/TLS private key (PEM), as `turn.key_file`.
    #[arg(long = "turn-key")]
    pub turn_key: Option<PathBuf>,
}

/// A port or inclusive range, LiveKit's `rtc.udp_port` ("7882" or "7882-7892").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    /// First port.
    pub start: u16,
    /// Last port (inclusive).
    pub end: u16,
}

impl PortRange {
    /// Parses "7882" or "7882-7892".
    pub fn parse(s: &str) -> Result<Self, String> {
        let p = |x: &str| {
            x.trim()
                .parse::<u16>()
                .map_err(|_| format!("{s:?} is not a port or port range"))
        };
        let (start, end) = match s.split_once('-') {
            Some((a, b)) => (p(a)?, p(b)?),
            None => (p(s)?, p(s)?),
        };
        if start == 0 || end < start {
            return Err(format!("{s:?} is not a valid port range"));
        }
        Ok(Self { start, end })
    }

    /// The ports, in order.
    pub fn ports(&self) -> impl Iterator<Item = u16> {
        self.start..=self.end
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = PortRange;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port or \"start-end\" range")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<PortRange, E> {
                PortRange::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<PortRange, E> {
                PortRange::parse(&v.to_string()).map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PortRange, E> {
                PortRange::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// `rtc:` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct RtcConfig {
    /// Single UDP port (or range) shared by all peers.
    pub udp_port: PortRange,
    /// ICE-TCP port (accepted; ICE-TCP is not served yet).
    pub tcp_port: u16,
    /// Advertised IP.
    pub node_ip: Option<String>,
    /// Discover the public IP with STUN (not supported: set node_ip).
    pub use_external_ip: bool,
    /// STUN servers (`host:port`) handed to clients in JoinResponse and WHIP/WHEP `Link`s.
    pub stun_servers: Vec<String>,
    /// External TURN servers handed to clients.
    pub turn_servers: Vec<crate::turn_config::TurnServerEntry>,
    /// Tell clients to use relay candidates only (`client_configuration.force_relay`).
    pub force_relay: bool,
}

impl Default for RtcConfig {
    fn default() -> Self {
        Self {
            udp_port: PortRange {
                start: 7882,
                end: 7882,
            },
            tcp_port: 7881,
            node_ip: None,
            use_external_ip: false,
            stun_servers: Vec::new(),
            turn_servers: Vec::new(),
            force_relay: false,
        }
    }
}

/// `room:` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct RoomConfig {
    /// Create rooms on first join.
    pub auto_create: bool,
    /// Seconds an unused new room stays open.
    pub empty_timeout: u32,
    /// Seconds a room stays open after the last participant left.
    pub departure_timeout: u32,
    /// 0 = unlimited.
    pub max_participants: u32,
    /// The server API may unmute a publisher's track.
    pub enable_remote_unmute: bool,
}

impl Default for RoomConfig {
    fn default() -> Self {
        Self {
            auto_create: true,
            empty_timeout: 300,
            departure_timeout: 20,
            max_participants: 0,
            enable_remote_unmute: false,
        }
    }
}

/// `webhook:` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WebhookConfig {
    /// API key whose secret signs the webhooks (must be one of `keys`).
    pub api_key: String,
    /// Receivers.
    pub urls: Vec<String>,
}

/// `database:` section (Switchyard's own; LiveKit has none).
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct DatabaseConfig {
    /// `sqlite://...` or `postgres://...`; env `DATABASE_URL` overrides.
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// Seconds to wait for a connection.
    pub connect_timeout: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://./switchyard.db?mode=rwc".into(),
            max_connections: 10,
            connect_timeout: 30,
        }
    }
}

/// `logging:` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct LoggingConfig {
    /// debug | info | warn | error.
    pub level: String,
    /// Level for the WebRTC library (LiveKit's `pion_level`).
    pub pion_level: String,
    /// JSON log lines.
    pub json: bool,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            pion_level: "error".into(),
            json: false,
        }
    }
}

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Config {
    /// HTTP / WebSocket port.
    pub port: u16,
    /// Addresses to bind HTTP to; empty = all.
    pub bind_addresses: Vec<String>,
    /// WebRTC transport.
    pub rtc: RtcConfig,
    /// API key -> secret.
    pub keys: HashMap<String, String>,
    /// File with `key: secret` lines.
    pub key_file: Option<PathBuf>,
    /// Room defaults.
    pub room: RoomConfig,
    /// Webhooks.
    pub webhook: WebhookConfig,
    /// Persistence.
    pub database: DatabaseConfig,
    /// Embedded TURN server.
    pub turn: crate::turn_config::TurnSection,
    /// Logging.
    pub logging: LoggingConfig,
    /// Development mode (as `--dev`).
    pub development: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: 7880,
            bind_addresses: Vec::new(),
            rtc: RtcConfig::default(),
            keys: HashMap::new(),
            key_file: None,
            room: RoomConfig::default(),
            webhook: WebhookConfig::default(),
            database: DatabaseConfig::default(),
            turn: Default::default(),
            logging: LoggingConfig::default(),
            development: false,
        }
    }
}

/// A configuration error: one line naming the key.
#[derive(Debug, thiserror::Error)]
#[error("config error: {0}")]
pub struct ConfigError(pub String);

fn err(s: impl Into<String>) -> ConfigError {
    ConfigError(s.into())
}

/// Accepted log levels.
const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error"];

/// Keys of LiveKit's config that we know of (top level); others only get a warning.
const KNOWN_TOP: &[&str] = &[
    "port",
    "bind_addresses",
    "rtc",
    "keys",
    "key_file",
    "room",
    "logging",
    "development",
    "webhook",
    "database",
    "turn",
];

/// Keys known inside each section.
const KNOWN_NESTED: &[(&str, &[&str])] = &[
    (
        "rtc",
        &[
            "udp_port",
            "tcp_port",
            "node_ip",
            "use_external_ip",
            "stun_servers",
            "turn_servers",
            "force_relay",
        ],
    ),
    (
        "room",
        &[
            "auto_create",
            "empty_timeout",
            "departure_timeout",
            "max_participants",
            "enable_remote_unmute",
        ],
    ),
    ("logging", &["level", "pion_level", "json"]),
    ("turn", crate::turn_config::KNOWN_TURN_KEYS),
    ("webhook", &["api_key", "urls"]),
    ("database", &["url", "max_connections", "connect_timeout"]),
];

/// Dotted paths of keys we accept but do not implement (LiveKit keys, or typos).
fn unknown_keys(doc: &Value) -> Result<Vec<String>, ConfigError> {
    let Value::Mapping(m) = doc else {
        return Err(err("the configuration must be a YAML mapping"));
    };
    let mut out = Vec::new();
    for (k, v) in m {
        let Some(k) = k.as_str() else { continue };
        if !KNOWN_TOP.contains(&k) {
            out.push(k.to_owned());
            continue;
        }
        if let (Some((_, known)), Value::Mapping(inner)) =
            (KNOWN_NESTED.iter().find(|(s, _)| *s == k), v)
        {
            for ik in inner.keys().filter_map(|x| x.as_str()) {
                if !known.contains(&ik) {
                    out.push(format!("{k}.{ik}"));
                }
            }
        }
    }
    Ok(out)
}

/// Deep-merges `over` into `base` (mappings merge, anything else replaces).
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn parse_yaml(body: &str, what: &str) -> Result<Value, ConfigError> {
    let v: Value = serde_yaml::from_str(body).map_err(|e| err(format!("{what}: {e}")))?;
    Ok(if v.is_null() {
        Value::Mapping(Default::default())
    } else {
        v
    })
}

/// Parses `"k1: s1, k2: s2"` (also newline separated) into key -> secret.
pub fn parse_keys(s: &str) -> Result<HashMap<String, String>, ConfigError> {
    let mut out = HashMap::new();
    for part in s
        .split([',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (k, v) = part
            .split_once(':')
            .ok_or_else(|| err(format!("keys: {part:?} is not \"key: secret\"")))?;
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() || v.is_empty() {
            return Err(err(format!("keys: {part:?} has an empty key or secret")));
        }
        out.insert(k.to_owned(), v.to_owned());
    }
    Ok(out)
}

/// What `load` found besides the config: warnings to log once logging is up.
#[derive(Debug, Default)]
pub struct LoadNotes {
    /// Human-readable warnings.
    pub warnings: Vec<String>,
}

/// Loads the configuration with the documented precedence. `env` is injected for tests.
pub fn load(
    cli: &Cli,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Config, LoadNotes), ConfigError> {
    let mut notes = LoadNotes::default();
    let mut doc = Value::Mapping(Default::default());
    if let Some(path) = &cli.config {
        let body = std::fs::read_to_string(path)
            .map_err(|e| err(format!("--config {}: {e}", path.display())))?;
        merge(&mut doc, parse_yaml(&body, &path.display().to_string())?);
    }
    if let Some(body) = env("LIVEKIT_CONFIG").filter(|b| !b.trim().is_empty()) {
        merge(&mut doc, parse_yaml(&body, "LIVEKIT_CONFIG")?);
    }
    if let Some(body) = &cli.config_body {
        merge(&mut doc, parse_yaml(body, "--config-body")?);
    }
    let unknown = unknown_keys(&doc)?;
    if !unknown.is_empty() {
        notes.warnings.push(format!(
            "ignoring config keys not supported yet: {}",
            unknown.join(", ")
        ));
    }
    // Re-parse from text: serde_yaml reports the key path ("rtc.udp_port: ...") only then.
    let text = serde_yaml::to_string(&doc).map_err(|e| err(e.to_string()))?;
    let mut cfg: Config =
        serde_yaml::from_str(&text).map_err(|e| err(strip_location(&e.to_string())))?;

    let dev = cli.dev || cfg.development;
    cfg.development = dev;
    if dev {
        if cfg.keys.is_empty() && cfg.key_file.is_none() {
            cfg.keys.insert("devkey".into(), "secret".into());
        }
        if cfg.bind_addresses.is_empty() {
            cfg.bind_addresses = vec!["127.0.0.1".into()];
        }
        if cfg.logging.level == "info" {
            cfg.logging.level = "debug".into();
        }
    }
    if let Some(path) = cfg.key_file.clone() {
        let body = std::fs::read_to_string(&path)
            .map_err(|e| err(format!("key_file {}: {e}", path.display())))?;
        let file_keys: HashMap<String, String> = serde_yaml::from_str(&body)
            .map_err(|e| err(format!("key_file {}: {e}", path.display())))?;
        cfg.keys.extend(file_keys);
    }

    // Environment overrides.
    if let Some(k) = env("LIVEKIT_KEYS").filter(|s| !s.trim().is_empty()) {
        cfg.keys = parse_keys(&k).map_err(|e| err(format!("LIVEKIT_KEYS: {}", e.0)))?;
    }
    if let Some(ip) = env("NODE_IP").filter(|s| !s.is_empty()) {
        cfg.rtc.node_ip = Some(ip);
    }
    if let Some(p) = env("UDP_PORT").filter(|s| !s.is_empty()) {
        cfg.rtc.udp_port = PortRange::parse(&p).map_err(|e| err(format!("UDP_PORT: {e}")))?;
    }
    if let Some(url) = env("DATABASE_URL").filter(|s| !s.is_empty()) {
        cfg.database.url = url;
    }
    // Flags.
    if let Some(k) = &cli.keys {
        cfg.keys = parse_keys(k).map_err(|e| err(format!("--keys: {}", e.0)))?;
    }
    if let Some(ip) = &cli.node_ip {
        cfg.rtc.node_ip = Some(ip.clone());
    }
    if let Some(p) = &cli.udp_port {
        cfg.rtc.udp_port = PortRange::parse(p).map_err(|e| err(format!("--udp-port: {e}")))?;
    }
    if !cli.bind.is_empty() {
        cfg.bind_addresses = cli.bind.clone();
    }
    if let Some(p) = &cli.turn_cert {
        cfg.turn.cert_file = Some(p.clone());
    }
    if let Some(p) = &cli.turn_key {
        cfg.turn.key_file = Some(p.clone());
    }
    validate(&cfg, &mut notes)?;
    Ok((cfg, notes))
}

/// Drops serde_yaml's " at line N column M" (it refers to our merged document).
fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

fn validate(cfg: &Config, notes: &mut LoadNotes) -> Result<(), ConfigError> {
    if cfg.port == 0 {
        return Err(err("port: must be 1-65535"));
    }
    crate::turn_config::validate(cfg)?;
    if !cfg.webhook.urls.is_empty() && !cfg.keys.contains_key(&cfg.webhook.api_key) {
        return Err(err(format!(
            "webhook.api_key: unknown api key in webhook config: {:?} is not one of keys",
            cfg.webhook.api_key
        )));
    }
    for u in &cfg.webhook.urls {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(err(format!("webhook.urls: {u:?} is not an http(s) URL")));
        }
    }
    let db = &cfg.database.url;
    if !(db.starts_with("sqlite:")
        || db.starts_with("postgres://")
        || db.starts_with("postgresql://"))
    {
        return Err(err("database.url: must start with sqlite: or postgres://"));
    }
    if cfg.database.max_connections == 0 {
        return Err(err("database.max_connections: must be at least 1"));
    }
    if cfg.keys.is_empty() {
        return Err(err(
            "keys: no API keys configured (use keys:, key_file:, LIVEKIT_KEYS, --keys or --dev)",
        ));
    }
    for (k, s) in &cfg.keys {
        if s.len() < 32 && !cfg.development {
            notes.warnings.push(format!(
                "keys: secret of {k:?} is shorter than 32 characters"
            ));
        }
    }
    for b in &cfg.bind_addresses {
        if !b.is_empty() && b.parse::<IpAddr>().is_err() {
            return Err(err(format!("bind_addresses: {b:?} is not an IP address")));
        }
    }
    if let Some(ip) = &cfg.rtc.node_ip
        && ip.parse::<IpAddr>().is_err()
    {
        return Err(err(format!("rtc.node_ip: {ip:?} is not an IP address")));
    }
    if cfg.rtc.use_external_ip && cfg.rtc.node_ip.is_none() {
        notes.warnings.push(
            "rtc.use_external_ip needs STUN, which Switchyard does not do: set rtc.node_ip".into(),
        );
    }
    for (key, v) in [
        ("logging.level", &cfg.logging.level),
        ("logging.pion_level", &cfg.logging.pion_level),
    ] {
        if !LEVELS.contains(&v.as_str()) {
            return Err(err(format!(
                "{key}: {v:?} is not one of {}",
                LEVELS.join(", ")
            )));
        }
    }
    Ok(())
}

impl Config {
    /// The IP advertised in ICE candidates: `rtc.node_ip`, else a specific bind address,
    /// else the first non-loopback IPv4 interface, else loopback.
    pub fn advertised_ip(&self) -> IpAddr {
        if let Some(ip) = self.rtc.node_ip.as_ref().and_then(|s| s.parse().ok()) {
            return ip;
        }
        if let Some(ip) = self
            .bind_addresses
            .iter()
            .filter_map(|b| b.parse::<IpAddr>().ok())
            .find(|ip| !ip.is_unspecified())
        {
            return ip;
        }
        if_addrs::get_if_addrs()
            .ok()
            .and_then(|ifs| {
                ifs.into_iter()
                    .map(|i| i.ip())
                    .find(|ip| ip.is_ipv4() && !ip.is_loopback())
            })
            .unwrap_or(IpAddr::from([127, 0, 0, 1]))
    }

    /// Addresses the HTTP server listens on.
    pub fn http_binds(&self) -> Vec<IpAddr> {
        let ips: Vec<IpAddr> = self
            .bind_addresses
            .iter()
            .filter_map(|b| b.parse().ok())
            .collect();
        if ips.is_empty() {
            vec![IpAddr::from([0, 0, 0, 0])]
        } else {
            ips
        }
    }

    /// Address the UDP media sockets bind to: a single specific bind address, else all.
    pub fn udp_bind_ip(&self) -> IpAddr {
        let ips = self.http_binds();
        match ips.as_slice() {
            [ip] if !ip.is_unspecified() && *ip == self.advertised_ip() => *ip,
            _ => IpAddr::from([0, 0, 0, 0]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_match_livekit() {
        let cli = Cli {
            keys: Some("k: s".into()),
            ..Default::default()
        };
        let (c, _) = load(&cli, &no_env).unwrap();
        assert_eq!(c.port, 7880);
        assert_eq!(
            c.rtc.udp_port,
            PortRange {
                start: 7882,
                end: 7882
            }
        );
        assert_eq!(c.rtc.tcp_port, 7881);
        assert!(c.room.auto_create);
        assert_eq!((c.room.empty_timeout, c.room.departure_timeout), (300, 20));
    }

    #[test]
    fn dev_mode_defaults() {
        let (c, _) = load(
            &Cli {
                dev: true,
                ..Default::default()
            },
            &no_env,
        )
        .unwrap();
        assert_eq!(c.keys.get("devkey").map(String::as_str), Some("secret"));
        assert_eq!(c.bind_addresses, vec!["127.0.0.1"]);
        assert_eq!(c.logging.level, "debug");
    }

    #[test]
    fn precedence_file_env_flags() {
        let body = "port: 9000\nrtc:\n  udp_port: 9001\n  node_ip: 10.0.0.1\nroom:\n  departure_timeout: 5\nkeys:\n  a: b\nsome_livekit_key: 1\n";
        let env = |k: &str| match k {
            "LIVEKIT_CONFIG" => Some(body.to_owned()),
            "NODE_IP" => Some("10.0.0.2".to_owned()),
            _ => None,
        };
        let cli = Cli {
            node_ip: Some("10.0.0.3".into()),
            config_body: Some("room: {empty_timeout: 7}".into()),
            ..Default::default()
        };
        let (c, notes) = load(&cli, &env).unwrap();
        assert_eq!(c.port, 9000);
        assert_eq!(c.rtc.udp_port.start, 9001);
        assert_eq!(c.rtc.node_ip.as_deref(), Some("10.0.0.3"));
        assert_eq!((c.room.departure_timeout, c.room.empty_timeout), (5, 7));
        assert!(
            notes
                .warnings
                .iter()
                .any(|w| w.contains("some_livekit_key"))
        );
        let (c, _) = load(&Cli::default(), &env).unwrap();
        assert_eq!(c.rtc.node_ip.as_deref(), Some("10.0.0.2"));
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = |body: &str| {
            load(
                &Cli {
                    config_body: Some(body.into()),
                    keys: Some("k: s".into()),
                    ..Default::default()
                },
                &no_env,
            )
            .unwrap_err()
            .to_string()
        };
        assert!(
            e("rtc:\n  udp_port: abc").contains("rtc.udp_port"),
            "{}",
            e("rtc:\n  udp_port: abc")
        );
        assert!(e("port: -1").contains("port"));
        assert!(e("rtc:\n  node_ip: nope").contains("rtc.node_ip"));
        assert!(e("room:\n  empty_timeout: x").contains("room.empty_timeout"));
        assert!(e("logging:\n  level: loud").contains("logging.level"));
        let no_keys = load(&Cli::default(), &no_env).unwrap_err().to_string();
        assert!(no_keys.contains("keys"));
    }

    #[test]
    fn webhook_key_must_be_configured() {
        let cli = |body: &str| Cli {
            config_body: Some(body.into()),
            keys: Some("k: s".into()),
            ..Default::default()
        };
        let e = load(
            &cli("webhook: {api_key: nope, urls: [\"http://x/hook\"]}"),
            &no_env,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("webhook.api_key"), "{e}");
        let (c, _) = load(
            &cli("webhook: {api_key: k, urls: [\"http://x/hook\"]}"),
            &no_env,
        )
        .unwrap();
        assert_eq!(c.webhook.urls.len(), 1);
        let env = |k: &str| (k == "DATABASE_URL").then(|| "postgres://u:p@h/db".to_owned());
        let (c, _) = load(&cli("{}"), &env).unwrap();
        assert_eq!(c.database.url, "postgres://u:p@h/db");
        let e = load(&cli("database: {url: mysql://x}"), &no_env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("database.url"), "{e}");
    }

    #[test]
    fn port_ranges() {
        assert_eq!(PortRange::parse("7882-7884").unwrap().ports().count(), 3);
        assert!(PortRange::parse("7884-7882").is_err());
        assert!(PortRange::parse("0").is_err());
        assert_eq!(parse_keys("a: b, c:d").unwrap().len(), 2);
        assert!(parse_keys("nocolon").is_err());
    }
}
