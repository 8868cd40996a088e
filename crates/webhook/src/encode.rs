//! The webhook body and its ordering key, exactly as LiveKit produces them.
//!
//! LiveKit sends `protojson.Marshal(WebhookEvent)` with default options: lowerCamelCase names,
//! zero values left out, 64-bit integers as strings, enums by name. The pbjson `Serialize`
//! impls of `livekit-protocol` follow the same proto3 JSON mapping, so `serde_json` of the
//! message is already that body (pinned by the tests below); we add nothing on top.

use livekit_protocol::WebhookEvent;

use crate::WebhookError;

/// The JSON body LiveKit would send for `ev`.
///
/// Fails only when an enum field holds a number this protocol version does not define
/// (protojson would write the number; pbjson refuses).
pub fn encode_event(ev: &WebhookEvent) -> Result<String, WebhookError> {
    Ok(serde_json::to_string(ev)?)
}

/// The ordering domain of `ev`, as in LiveKit's webhook notifier: the egress id, else the
/// ingress id, else the room name, else the participant identity, else the track sid.
/// Events with the same key are delivered to a URL one at a time, in order.
pub fn queue_key(ev: &WebhookEvent) -> String {
    let candidates = [
        ev.egress_info.as_ref().map(|e| e.egress_id.as_str()),
        ev.ingress_info.as_ref().map(|i| i.ingress_id.as_str()),
        ev.room.as_ref().map(|r| r.name.as_str()),
        ev.participant.as_ref().map(|p| p.identity.as_str()),
        ev.track.as_ref().map(|t| t.sid.as_str()),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|k| !k.is_empty())
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use livekit_protocol as proto;

    use super::*;

    fn sample() -> WebhookEvent {
        WebhookEvent {
            event: "track_published".into(),
            room: Some(proto::Room {
                sid: "RM_abc".into(),
                name: "standup".into(),
                empty_timeout: 300,
                creation_time: 1_700_000_000,
                num_participants: 2,
                ..Default::default()
            }),
            participant: Some(proto::ParticipantInfo {
                sid: "PA_abc".into(),
                identity: "alice".into(),
                state: proto::participant_info::State::Active as i32,
                joined_at: 1_700_000_001,
                is_publisher: true,
                ..Default::default()
            }),
            track: Some(proto::TrackInfo {
                sid: "TR_abc".into(),
                r#type: proto::TrackType::Video as i32,
                source: proto::TrackSource::Camera as i32,
                width: 1280,
                height: 720,
                muted: false,
                ..Default::default()
            }),
            id: "EV_0123456789ab".into(),
            created_at: 1_700_000_002,
            ..Default::default()
        }
    }

    #[test]
    fn body_follows_protojson_defaults() {
        let body = encode_event(&sample()).unwrap();
        // Go's protojson.Marshal of the same message (modulo its randomised whitespace):
        // camelCase, no zero values (muted, numDropped, ...), int64 as strings (creationTime,
        // joinedAt, createdAt), uint32/int32 as numbers, enums by name.
        let expected = concat!(
            r#"{"event":"track_published","#,
            r#""room":{"sid":"RM_abc","name":"standup","emptyTimeout":300,"creationTime":"1700000000","numParticipants":2},"#,
            r#""participant":{"sid":"PA_abc","identity":"alice","state":"ACTIVE","joinedAt":"1700000001","isPublisher":true},"#,
            r#""track":{"sid":"TR_abc","type":"VIDEO","width":1280,"height":720,"source":"CAMERA"},"#,
            r#""id":"EV_0123456789ab","createdAt":"1700000002"}"#
        );
        assert_eq!(body, expected);
        // And it reads back as the same message.
        let back: WebhookEvent = serde_json::from_str(&body).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn empty_event_is_an_empty_object() {
        assert_eq!(encode_event(&WebhookEvent::default()).unwrap(), "{}");
    }

    #[test]
    fn undefined_enum_number_is_an_error() {
        let ev = WebhookEvent {
            room_end_reason: 9_999,
            ..Default::default()
        };
        assert!(matches!(encode_event(&ev), Err(WebhookError::Encode(_))));
    }

    #[test]
    fn queue_key_prefers_egress_then_ingress_then_room() {
        let mut ev = sample();
        assert_eq!(queue_key(&ev), "standup");
        ev.egress_info = Some(proto::EgressInfo {
            egress_id: "EG_1".into(),
            ..Default::default()
        });
        assert_eq!(queue_key(&ev), "EG_1");
        ev.egress_info = None;
        ev.ingress_info = Some(proto::IngressInfo {
            ingress_id: "IN_1".into(),
            ..Default::default()
        });
        assert_eq!(queue_key(&ev), "IN_1");
        ev.ingress_info = None;
        ev.room = None;
        assert_eq!(queue_key(&ev), "alice");
        ev.participant = None;
        assert_eq!(queue_key(&ev), "TR_abc");
        ev.track = None;
        assert_eq!(queue_key(&ev), "");
    }
}
