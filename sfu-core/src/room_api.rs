//! The server API (LiveKit RoomService) as the shard sees it: typed requests in, typed
//! results or errors out. Twirp framing, authentication and grants live in signalling; the
//! shard applies the operation to its rooms and participants, so every call has the same
//! effect a LiveKit server would have on connected clients.

use livekit_protocol as proto;

/// Largest metadata LiveKit accepts (`limit.max_metadata_size`, 512 kB).
pub const MAX_METADATA_BYTES: usize = 512 * 1024;
/// Largest total attributes size (`limit.max_attributes_size`, 64 kB).
pub const MAX_ATTRIBUTES_BYTES: usize = 64 * 1024;
/// Longest room name / identity.
pub const MAX_NAME_LEN: usize = 256;

/// A RoomService request routed to the shard that owns the room.
#[derive(Debug, Clone)]
pub enum RoomApi {
    /// CreateRoom (idempotent).
    CreateRoom(Box<proto::CreateRoomRequest>),
    /// ListRooms (answered per shard and merged by the caller).
    ListRooms(proto::ListRoomsRequest),
    /// DeleteRoom.
    DeleteRoom(proto::DeleteRoomRequest),
    /// ListParticipants.
    ListParticipants(proto::ListParticipantsRequest),
    /// GetParticipant.
    GetParticipant(proto::RoomParticipantIdentity),
    /// RemoveParticipant.
    RemoveParticipant(proto::RoomParticipantIdentity),
    /// MutePublishedTrack.
    MutePublishedTrack(proto::MuteRoomTrackRequest),
    /// UpdateParticipant.
    UpdateParticipant(proto::UpdateParticipantRequest),
    /// UpdateSubscriptions.
    UpdateSubscriptions(proto::UpdateSubscriptionsRequest),
    /// SendData.
    SendData(proto::SendDataRequest),
    /// UpdateRoomMetadata.
    UpdateRoomMetadata(proto::UpdateRoomMetadataRequest),
}

impl RoomApi {
    /// The room the request is about (empty for ListRooms).
    pub fn room(&self) -> &str {
        match self {
            RoomApi::CreateRoom(r) => &r.name,
            RoomApi::ListRooms(_) => "",
            RoomApi::DeleteRoom(r) => &r.room,
            RoomApi::ListParticipants(r) => &r.room,
            RoomApi::GetParticipant(r) | RoomApi::RemoveParticipant(r) => &r.room,
            RoomApi::MutePublishedTrack(r) => &r.room,
            RoomApi::UpdateParticipant(r) => &r.room,
            RoomApi::UpdateSubscriptions(r) => &r.room,
            RoomApi::SendData(r) => &r.room,
            RoomApi::UpdateRoomMetadata(r) => &r.room,
        }
    }
}

/// A successful result.
#[derive(Debug, Clone, PartialEq)]
pub enum RoomApiResponse {
    /// A room (CreateRoom, UpdateRoomMetadata).
    Room(proto::Room),
    /// Rooms (ListRooms).
    Rooms(Vec<proto::Room>),
    /// Participants (ListParticipants).
    Participants(Vec<proto::ParticipantInfo>),
    /// One participant (GetParticipant, UpdateParticipant).
    Participant(proto::ParticipantInfo),
    /// The muted track (MutePublishedTrack).
    Track(proto::TrackInfo),
    /// Nothing to return (DeleteRoom, RemoveParticipant, UpdateSubscriptions, SendData).
    Empty,
}

/// Why a request failed; signalling maps these to Twirp codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomApiError {
    /// Twirp `not_found`.
    #[error("{0}")]
    NotFound(String),
    /// Twirp `invalid_argument`.
    #[error("{0}")]
    InvalidArgument(String),
    /// Twirp `failed_precondition`.
    #[error("{0}")]
    FailedPrecondition(String),
}
