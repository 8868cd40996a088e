//! The boundary between signalling (tokio tasks, one per WebSocket) and the media plane
//! (shard threads that own rooms).
//!
//! Signalling never touches RTP: it sends typed [`ShardRequest`]s to the shard that owns
//! the room and relays the [`SessionEvent`]s that shard emits for its participant. The
//! binary implements [`MediaPlane`] to pick the shard.

use livekit_protocol as proto;
use sfu_core::{JoinError, JoinParams, ParticipantId};
use tokio::sync::{mpsc, oneshot};

/// What a shard sends to one participant's signalling connection.
#[derive(Debug)]
pub enum SessionEvent {
    /// A signal message to write to the WebSocket.
    Signal(Box<proto::SignalResponse>),
    /// The media plane is done with this participant: close the WebSocket.
    Close,
    /// The participant's permissions changed: re-issue its token with the new grants now.
    PermissionChanged(proto::ParticipantPermission),
}

/// Sender half of a participant's signalling connection.
pub type SessionSink = mpsc::UnboundedSender<SessionEvent>;

/// A request from signalling to the shard owning a room.
#[derive(Debug)]
pub enum ShardRequest {
    /// Admit a participant; the shard answers with its id (its JoinResponse goes to `sink`).
    Join {
        /// Verified join parameters.
        params: Box<JoinParams>,
        /// Where the participant's signal messages go.
        sink: SessionSink,
        /// The outcome.
        reply: oneshot::Sender<Result<ParticipantId, JoinError>>,
    },
    /// A signal message from the participant.
    Signal {
        /// Who sent it.
        participant: ParticipantId,
        /// The message.
        request: Box<proto::SignalRequest>,
    },
    /// The participant's WebSocket closed.
    SignalClosed {
        /// Whose.
        participant: ParticipantId,
    },
    /// The server is stopping: send every participant `Leave{SERVER_SHUTDOWN}`, close their
    /// sessions, then answer and stop the shard.
    Shutdown {
        /// Answered when the shard has said goodbye to everyone.
        reply: oneshot::Sender<()>,
    },
    /// A RoomService call (Twirp), already authorised.
    Api {
        /// The operation.
        request: Box<sfu_core::RoomApi>,
        /// The outcome.
        reply: oneshot::Sender<Result<sfu_core::RoomApiResponse, sfu_core::RoomApiError>>,
    },
    /// Start a WHIP or WHEP session (one HTTP-negotiated connection).
    HttpSession {
        /// Publish (WHIP) or play (WHEP, with what to play).
        kind: HttpSessionKind,
        /// Verified join parameters.
        params: Box<JoinParams>,
        /// The client's SDP offer.
        offer: String,
        /// Gets `Close` when the session's participant leaves, however that happens.
        sink: SessionSink,
        /// The outcome.
        reply: oneshot::Sender<Result<sfu_core::SessionAnswer, sfu_core::HttpSessionError>>,
    },
    /// PATCH on a WHIP/WHEP session resource.
    HttpSessionPatch {
        /// The session's participant.
        participant: ParticipantId,
        /// `application/trickle-ice-sdpfrag` body.
        sdpfrag: String,
        /// `If-Match` header, if any.
        if_match: Option<String>,
        /// The outcome.
        reply: oneshot::Sender<Result<sfu_core::PatchOutcome, sfu_core::HttpSessionError>>,
    },
    /// DELETE on a WHIP/WHEP session resource.
    HttpSessionEnd {
        /// The session's participant.
        participant: ParticipantId,
        /// The outcome.
        reply: oneshot::Sender<Result<(), sfu_core::HttpSessionError>>,
    },
    /// Does this room exist (for `/rtc/validate` when auto-create is off)?
    RoomExists {
        /// Room name.
        room: String,
        /// The answer.
        reply: oneshot::Sender<bool>,
    },
}

/// Which kind of HTTP-negotiated session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpSessionKind {
    /// WHIP: publish.
    Whip,
    /// WHEP: play what the selection picks.
    Whep(sfu_core::PlaySelection),
}

/// Routes requests to the shard that owns a room.
pub trait MediaPlane: Send + Sync + 'static {
    /// The request queue of the shard owning `room`.
    fn shard_for(&self, room: &str) -> mpsc::UnboundedSender<ShardRequest>;
    /// Every shard's queue (for requests about all rooms, such as ListRooms).
    fn all_shards(&self) -> Vec<mpsc::UnboundedSender<ShardRequest>>;
}
