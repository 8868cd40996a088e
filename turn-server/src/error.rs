//! Errors of starting the TURN server.
//!
//! Only startup can fail from the caller's point of view: once listening, bad input from the
//! network is answered (STUN error responses) or dropped and counted, never returned.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why [`crate::start`] could not bring the server up.
#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    /// `enabled` is false.
    #[error("the TURN server is disabled (turn.enabled is false)")]
    Disabled,
    /// The configuration is inconsistent.
    #[error("invalid TURN configuration: {0}")]
    Config(String),
    /// A listener could not bind its address.
    #[error("cannot bind the TURN {transport} listener on {addr}: {source}")]
    Bind {
        /// `"udp"`, `"tcp"` or `"tls"`.
        transport: &'static str,
        /// The address that failed.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The TLS certificate or key could not be loaded.
    #[error("cannot load the TURN TLS {what} from {path}: {reason}")]
    Tls {
        /// `"certificate"`, `"private key"` or `"configuration"`.
        what: &'static str,
        /// The file involved.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The crypto provider (MD5/HMAC for MESSAGE-INTEGRITY, randomness) is unavailable.
    #[error("TURN crypto unavailable: {0}")]
    Crypto(String),
}
