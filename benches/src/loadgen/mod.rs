//! `loadgen`: publishes VP8/Opus-shaped RTP over WHIP, plays it back over WHEP with many
//! subscribers, and measures what the server costs per forwarded packet.
//!
//! Peers are webrtc-rs `rtc` (sans-IO) connections, one UDP socket each, all driven from one
//! current-thread tokio runtime, so the generator stays small next to the server it loads
//! and every timestamp comes from one clock (one-way latency is exact). There is no media
//! encoder or decoder: payloads only look like VP8/Opus, enough for an SFU's keyframe
//! detection, and carry a probe (publisher, counter, send time) that subscribers read back.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod command;
pub mod http;
pub mod payload;
pub mod peer;
pub mod percentile;
pub mod procstat;
pub mod publisher;
pub mod report;
pub mod run;
pub mod server;
pub mod subscriber;
pub mod svg;
pub mod units;
