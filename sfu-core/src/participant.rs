//! A LiveKit participant's state on the shard: identity, permissions, the tracks it
//! announced (`AddTrackRequest`) and published, what it subscribes to, and the
//! negotiation state of its subscriber connection.

use std::collections::{HashMap, HashSet};

use livekit_protocol as proto;
use rtc::{data_channel::RTCDataChannelId, rtp_transceiver::RTCRtpSenderId};

use crate::ParticipantId;

/// A track announced with `AddTrackRequest`, waiting for its media.
#[derive(Debug, Clone)]
pub struct PendingTrack {
    /// Client track id (`cid`), which is also the msid track id in its SDP.
    pub cid: String,
    /// The info sent back in `TrackPublishedResponse`.
    pub info: proto::TrackInfo,
}

/// Server-offered (subscriber) negotiation: one offer in flight at a time.
#[derive(Debug, Default, Clone)]
pub struct Negotiation {
    /// Id of the last offer sent.
    pub offer_id: u32,
    /// An offer is waiting for its answer.
    pub awaiting_answer: bool,
    /// Something changed while waiting: offer again after the answer.
    pub pending: bool,
}

/// Data channels the server created on the subscriber connection.
#[derive(Debug, Default, Clone)]
pub struct SubscriberChannels {
    /// `_reliable`.
    pub reliable: Option<RTCDataChannelId>,
    /// `_lossy`.
    pub lossy: Option<RTCDataChannelId>,
}

/// A participant.
#[derive(Debug)]
pub struct Participant {
    /// Shard handle.
    pub id: ParticipantId,
    /// Room name.
    pub room: String,
    /// `PA_` sid.
    pub sid: String,
    /// Identity.
    pub identity: String,
    /// Display name.
    pub name: String,
    /// Metadata.
    pub metadata: String,
    /// Attributes.
    pub attributes: HashMap<String, String>,
    /// Permissions.
    pub permission: proto::ParticipantPermission,
    /// Kind.
    pub kind: i32,
    /// JOINING / JOINED / ACTIVE / DISCONNECTED.
    pub state: proto::participant_info::State,
    /// Increases on every change (clients ignore older versions).
    pub version: u32,
    /// Join time (unix seconds / ms).
    pub joined_at_ms: i64,
    /// Auto-subscribe to new tracks.
    pub auto_subscribe: bool,
    /// Client info.
    pub client_info: proto::ClientInfo,
    /// Tracks announced but without media yet.
    pub pending_tracks: Vec<PendingTrack>,
    /// Sids of published tracks.
    pub published: Vec<String>,
    /// rtc track id on the publisher connection -> sid of the published track (looked up
    /// for every received RTP packet).
    pub by_rtc_track: HashMap<String, String>,
    /// Track sid -> sender on our subscriber connection.
    pub subscribed: HashMap<String, RTCRtpSenderId>,
    /// Outgoing SSRC -> track sid (to route subscriber RTCP).
    pub by_out_ssrc: HashMap<u32, String>,
    /// Track sids the subscriber disabled.
    pub disabled: HashSet<String>,
    /// Subscriber negotiation.
    pub negotiation: Negotiation,
    /// Server data channels.
    pub channels: SubscriberChannels,
    /// Publisher-side data channels: id -> label.
    pub publisher_channels: HashMap<RTCDataChannelId, String>,
    /// Highest reliable data sequence seen from this participant.
    pub last_reliable_seq: u32,
    /// The client sent a LeaveRequest.
    pub left: bool,
    /// LiveKit signalling, WHIP or WHEP.
    pub transport: crate::http_session::Transport,
}

impl Participant {
    /// LiveKit `ParticipantInfo` with the published tracks.
    pub fn info(&self, tracks: Vec<proto::TrackInfo>) -> proto::ParticipantInfo {
        proto::ParticipantInfo {
            sid: self.sid.clone(),
            identity: self.identity.clone(),
            state: self.state as i32,
            tracks,
            metadata: self.metadata.clone(),
            joined_at: self.joined_at_ms / 1000,
            joined_at_ms: self.joined_at_ms,
            name: self.name.clone(),
            version: self.version,
            permission: Some(self.permission.clone()),
            is_publisher: !self.published.is_empty(),
            kind: self.kind,
            attributes: self.attributes.clone(),
            client_protocol: self.client_info.client_protocol,
            ..Default::default()
        }
    }

    /// Hidden participants are never announced to others.
    pub fn hidden(&self) -> bool {
        self.permission.hidden
    }

    /// Talks LiveKit signalling (not WHIP/WHEP).
    pub fn is_livekit(&self) -> bool {
        matches!(self.transport, crate::http_session::Transport::LiveKit)
    }

    /// Marks a change.
    pub fn bump(&mut self) {
        self.version += 1;
    }
}
