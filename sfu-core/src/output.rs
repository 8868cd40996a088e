//! What the media plane asks its driver to do: send a datagram, send a signal message to a
//! participant, close a participant's signalling connection, or note a room event.
//!
//! Outputs are returned from [`crate::Shard::poll_output`], never called back, so the
//! shard stays `&mut self` and testable without IO.

use std::net::SocketAddr;

use livekit_protocol as proto;

use crate::ParticipantId;

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Local (advertised) address it leaves from.
    pub local: SocketAddr,
    /// Destination.
    pub remote: SocketAddr,
    /// Bytes on the wire.
    pub data: Vec<u8>,
}

/// A lifecycle event (logged now; webhooks are built from these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent {
    /// A room was created.
    RoomStarted {
        /// Room name.
        room: String,
        /// Room sid.
        sid: String,
    },
    /// A room closed.
    RoomFinished {
        /// Room name.
        room: String,
        /// Room sid.
        sid: String,
    },
    /// A participant's primary connection came up (LiveKit `participant_joined`).
    ParticipantJoined {
        /// Room name.
        room: String,
        /// Identity.
        identity: String,
    },
    /// A participant left.
    ParticipantLeft {
        /// Room name.
        room: String,
        /// Identity.
        identity: String,
    },
    /// A track was unpublished (by the client, or because it left).
    TrackUnpublished {
        /// Room name.
        room: String,
        /// Publisher identity.
        identity: String,
        /// Track sid.
        track_sid: String,
    },
    /// A track started receiving media.
    TrackPublished {
        /// Room name.
        room: String,
        /// Publisher identity.
        identity: String,
        /// Track sid.
        track_sid: String,
    },
}

/// One output of the shard.
#[derive(Debug)]
pub enum Output {
    /// Send a datagram.
    Transmit(Transmit),
    /// Send a signal message to a participant.
    Signal(ParticipantId, Box<proto::SignalResponse>),
    /// Close the participant's signalling connection (after its last message).
    CloseSignal(ParticipantId),
    /// The participant's permissions changed (signalling re-issues its token).
    PermissionChanged(ParticipantId, proto::ParticipantPermission),
    /// A lifecycle event.
    Event(RoomEvent),
}
