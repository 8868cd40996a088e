//! Builders for the `SignalResponse`s the shard sends, so the LiveKit wire details
//! (oneof arms, required fields) live in one place.

use livekit_protocol as proto;
use proto::signal_response::Message as Resp;

/// Wraps a message.
pub fn resp(m: Resp) -> Box<proto::SignalResponse> {
    Box::new(proto::SignalResponse { message: Some(m) })
}

/// `ParticipantUpdate` with the given participants.
pub fn participant_update(participants: Vec<proto::ParticipantInfo>) -> Box<proto::SignalResponse> {
    resp(Resp::Update(proto::ParticipantUpdate { participants }))
}

/// Server-initiated leave.
pub fn leave(
    reason: proto::DisconnectReason,
    action: proto::leave_request::Action,
) -> Box<proto::SignalResponse> {
    resp(Resp::Leave(proto::LeaveRequest {
        can_reconnect: action != proto::leave_request::Action::Disconnect,
        reason: reason as i32,
        action: action as i32,
        regions: None,
    }))
}

/// A session description message.
pub fn sdp(
    kind: &str,
    sdp: String,
    id: u32,
    mid_to_track_id: std::collections::HashMap<String, String>,
) -> proto::SessionDescription {
    proto::SessionDescription {
        r#type: kind.to_owned(),
        sdp,
        id,
        mid_to_track_id,
    }
}

/// `RequestResponse` for a request id.
pub fn request_response(
    request_id: u32,
    reason: proto::request_response::Reason,
    message: &str,
) -> Box<proto::SignalResponse> {
    resp(Resp::RequestResponse(proto::RequestResponse {
        request_id,
        reason: reason as i32,
        message: message.to_owned(),
        request: None,
    }))
}

/// A trickled ICE candidate for one of the participant's connections.
pub fn trickle(candidate_init: String, target: proto::SignalTarget) -> Box<proto::SignalResponse> {
    resp(Resp::Trickle(proto::TrickleRequest {
        candidate_init,
        target: target as i32,
        r#final: false,
    }))
}
