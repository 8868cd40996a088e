//! Sans-IO media plane of Switchyard.
//!
//! Everything one media thread owns lives in a [`Shard`]: rooms, participants, their
//! WebRTC connections (webrtc-rs's sans-IO `rtc`), published tracks and down-tracks. The
//! driver feeds it join requests, signal messages, datagrams and timeouts, each stamped
//! with `now`, and drains [`Output`]s. Time is an input: nothing here reads a clock or
//! touches a socket, so every behaviour can be tested with virtual time.
//!
//! Panic policy: a panic is a bug (a broken invariant, named next to each `expect`);
//! bytes from the wire never panic, they are dropped and counted ([`DropReason`]).

pub mod codec;
pub mod demux;
pub mod down_track;
pub mod drop_reason;
pub mod http_session;
pub mod ids;
mod join;
pub mod keyframe_requester;
pub mod output;
pub mod participant;
pub mod peer_connection;
pub mod published_track;
pub mod room;
pub mod room_api;
pub mod rtp_munger;
pub mod rtx_cache;
pub mod sdp_tracks;
pub mod shard;
pub mod signal;
pub mod simulcast_rr_filter;

pub use drop_reason::{Counters, DropReason};
pub use http_session::{HttpSessionError, PlaySelection, SessionAnswer};
pub use join::{JoinError, JoinParams, RoomSettings};
pub use output::{Output, RoomEvent, Transmit};
pub use peer_connection::PcFactory;
pub use room_api::{RoomApi, RoomApiError, RoomApiResponse};
pub use shard::{PatchOutcome, Shard, ShardConfig};

/// Shard-local handle of a participant (not its `PA_` sid).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(pub u64);
