//! Embedded TURN server (RFC 8656) for Switchyard.
//!
//! Clients that cannot reach the SFU's UDP port directly (UDP blocked, symmetric NAT on both
//! sides) relay through this server: TURN over UDP, TCP or TLS on the client side, UDP relays
//! towards peers. Authentication is the long-term credential mechanism with REST-style
//! credentials (`<expiry>:<id>` / `base64(HMAC-SHA1(secret, username))`, see
//! [`rest_credentials`]) or static users.
//!
//! Structure: one task per client-facing listener (the UDP socket, each TCP/TLS connection)
//! routes packets by 5-tuple to one task per allocation, which owns its relay socket,
//! permissions and channels. The only shared mutable state is a registry (quota, relay ports)
//! touched on allocate and expiry, and atomic counters. STUN/TURN encoding comes from
//! `rtc-stun` / `rtc-turn`.
//!
//! ```no_run
//! # async fn run() -> Result<(), turn_server::TurnError> {
//! let config = turn_server::TurnConfig {
//!     enabled: true,
//!     relay_ip: "192.0.2.10".parse().unwrap(),
//!     auth_secret: Some("shared-secret".into()),
//!     ..Default::default()
//! };
//! let server = turn_server::start(config).await?;
//! println!("{:?} {}", server.local_addrs(), server.stats());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

mod allocate;
mod allocation;
mod auth;
mod bindings;
mod channel_data;
mod config;
mod credentials;
mod dispatcher;
mod error;
mod framing;
mod nonce;
mod peer_policy;
mod port_pool;
mod registry;
mod server;
mod shared;
mod sink;
mod stats;
mod stream_listener;
mod tls;
mod udp_listener;
mod wire;

pub use config::{
    DEFAULT_NONCE_LIFETIME, DEFAULT_PER_USER_ALLOCATION_LIMIT, DEFAULT_PORT, DEFAULT_REALM,
    DEFAULT_RELAY_RANGE_END, DEFAULT_RELAY_RANGE_START, DEFAULT_TLS_PORT, DEFAULT_TTL_SECONDS,
    TurnConfig,
};
pub use credentials::rest_credentials;
pub use error::TurnError;
pub use peer_policy::default_deny_peer_cidrs;
pub use server::{ClientTransport, ListenerAddr, TurnServer, start};
pub use stats::{DropCounts, TurnStats};
