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

/// A lifecycle event, carrying the LiveKit objects a webhook reports.
#[derive(Debug, Clone, PartialEq)]
pub enum RoomEvent {
    /// A room was created (first join or CreateRoom).
    RoomStarted {
        /// The room.
        room: proto::Room,
    },
    /// A room closed (timeouts, DeleteRoom, shutdown).
    RoomFinished {
        /// The room.
        room: proto::Room,
    },
    /// A participant's primary connection came up (LiveKit `participant_joined`).
    ParticipantJoined {
        /// The room.
        room: proto::Room,
        /// The participant.
        participant: proto::ParticipantInfo,
    },
    /// An active participant left.
    ParticipantLeft {
        /// The room.
        room: proto::Room,
        /// The participant (state DISCONNECTED, with its disconnect reason).
        participant: proto::ParticipantInfo,
    },
    /// A participant left without ever becoming active.
    ParticipantConnectionAborted {
        /// The room.
        room: proto::Room,
        /// The participant.
        participant: proto::ParticipantInfo,
    },
    /// A track started receiving media.
    TrackPublished {
        /// The room.
        room: proto::Room,
        /// Its publisher.
        participant: proto::ParticipantInfo,
        /// The track.
        track: proto::TrackInfo,
    },
    /// A track was unpublished (by the client, the server API, or because its publisher left).
    TrackUnpublished {
        /// The room.
        room: proto::Room,
        /// Its publisher.
        participant: proto::ParticipantInfo,
        /// The track.
        track: proto::TrackInfo,
    },
}

impl RoomEvent {
    /// LiveKit's webhook event name.
    pub fn name(&self) -> &'static str {
        match self {
            RoomEvent::RoomStarted { .. } => "room_started",
            RoomEvent::RoomFinished { .. } => "room_finished",
            RoomEvent::ParticipantJoined { .. } => "participant_joined",
            RoomEvent::ParticipantLeft { .. } => "participant_left",
            RoomEvent::ParticipantConnectionAborted { .. } => "participant_connection_aborted",
            RoomEvent::TrackPublished { .. } => "track_published",
            RoomEvent::TrackUnpublished { .. } => "track_unpublished",
        }
    }

    /// The room it concerns.
    pub fn room(&self) -> &proto::Room {
        match self {
            RoomEvent::RoomStarted { room }
            | RoomEvent::RoomFinished { room }
            | RoomEvent::ParticipantJoined { room, .. }
            | RoomEvent::ParticipantLeft { room, .. }
            | RoomEvent::ParticipantConnectionAborted { room, .. }
            | RoomEvent::TrackPublished { room, .. }
            | RoomEvent::TrackUnpublished { room, .. } => room,
        }
    }

    /// The LiveKit `WebhookEvent` (without `id` and `created_at`, which the sender assigns).
    pub fn to_webhook(&self) -> proto::WebhookEvent {
        let (participant, track) = match self {
            RoomEvent::ParticipantJoined { participant, .. }
            | RoomEvent::ParticipantLeft { participant, .. }
            | RoomEvent::ParticipantConnectionAborted { participant, .. } => {
                (Some(participant.clone()), None)
            }
            RoomEvent::TrackPublished {
                participant, track, ..
            }
            | RoomEvent::TrackUnpublished {
                participant, track, ..
            } => (Some(participant.clone()), Some(track.clone())),
            _ => (None, None),
        };
        proto::WebhookEvent {
            event: self.name().to_owned(),
            room: Some(self.room().clone()),
            participant,
            track,
            ..Default::default()
        }
    }
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
    Event(Box<RoomEvent>),
}
