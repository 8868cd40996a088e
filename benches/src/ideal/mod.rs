//! The ideal forwarder: the smallest WHIP/WHEP server that forwards one publisher's media
//! to many subscribers on the same WebRTC stack as Switchyard (webrtc-rs `rtc`, same SRTP
//! cipher suite negotiation), with no SFU logic at all. Measured by `loadgen` exactly like
//! the real server, its CPU per forwarded packet is the practical floor of this stack on
//! this machine; the ratio of Switchyard's figure to it is what our SFU logic costs.
//!
//! Not done (yet) on purpose: batched sends (`sendmmsg`/GSO) and a shared socket; each
//! connection has its own socket and every packet is one `sendto`, as in Switchyard today.

pub mod forwarder;
pub mod http;
