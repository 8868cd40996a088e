//! LiveKit-compatible signalling for Switchyard.
//!
//! This crate speaks to clients (HTTP, WebSocket, tokens) and to the media plane through
//! typed requests ([`media::ShardRequest`]); it never touches RTP. See `docs/architecture.md`.

pub mod connect;
pub mod http;
pub mod ice;
pub mod media;
pub mod session;
pub mod token;
pub mod twirp;
pub mod whip;

pub use http::{AppState, SignalingConfig, router};
pub use media::{HttpSessionKind, MediaPlane, SessionEvent, SessionSink, ShardRequest};
