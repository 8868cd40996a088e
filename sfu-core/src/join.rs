//! What signalling hands the media plane when a participant joins, and why a join fails.
//!
//! Signalling has already verified the token; these are the facts the room needs to admit
//! the participant and build its `JoinResponse`.

use std::collections::HashMap;

use livekit_protocol as proto;

/// Room settings a token's `roomConfig` (or CreateRoom) may set. `None` = node default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomSettings {
    /// Seconds an empty room that nobody joined stays open.
    pub empty_timeout: Option<u32>,
    /// Seconds a room stays open after the last participant left.
    pub departure_timeout: Option<u32>,
    /// Maximum participants, 0 = unlimited.
    pub max_participants: Option<u32>,
    /// Room metadata.
    pub metadata: Option<String>,
}

/// A verified request to join a room.
#[derive(Clone, Debug, Default)]
pub struct JoinParams {
    /// Room name from the token's video grant.
    pub room: String,
    /// Participant identity (`sub`).
    pub identity: String,
    /// Display name (`name` claim).
    pub name: String,
    /// Participant metadata (`metadata` claim).
    pub metadata: String,
    /// Participant attributes (`attributes` claim).
    pub attributes: HashMap<String, String>,
    /// Permissions derived from the video grant.
    pub permission: proto::ParticipantPermission,
    /// Participant kind (`kind` claim).
    pub kind: i32,
    /// Subscribe to every track automatically (`auto_subscribe`, default true).
    pub auto_subscribe: bool,
    /// The client asked for adaptive stream.
    pub adaptive_stream: bool,
    /// Client description (sdk, version, protocol, os...).
    pub client_info: proto::ClientInfo,
    /// Whether this join may create the room when it does not exist.
    pub may_create_room: bool,
    /// Room settings carried by the token.
    pub room_settings: RoomSettings,
    /// ICE servers (with this participant's credentials) for its JoinResponse.
    pub ice_servers: Vec<proto::IceServer>,
}

impl JoinParams {
    /// A join with every publish/subscribe/data permission that may create the room:
    /// what a plain LiveKit token with `roomJoin` grants.
    pub fn new(room: &str, identity: &str) -> Self {
        Self {
            room: room.into(),
            identity: identity.into(),
            permission: proto::ParticipantPermission {
                can_publish: true,
                can_subscribe: true,
                can_publish_data: true,
                ..Default::default()
            },
            auto_subscribe: true,
            may_create_room: true,
            client_info: proto::ClientInfo {
                protocol: 16,
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

/// Why a join was refused; signalling maps these to HTTP statuses before upgrading.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JoinError {
    /// Auto-create is off and the room does not exist (HTTP 404).
    #[error("requested room does not exist")]
    RoomNotFound,
    /// `max_participants` reached (HTTP 403).
    #[error("room is full")]
    RoomFull,
    /// A peer connection could not be created.
    #[error("could not create peer connection: {0}")]
    PeerConnection(String),
}
