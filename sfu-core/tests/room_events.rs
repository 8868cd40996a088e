//! The lifecycle events webhooks are made of come out in LiveKit's order for one room's
//! life: room_started, participant_joined (when the connection is up), track_published,
//! track_unpublished, participant_left, room_finished (after the departure timeout).

use std::time::Duration;

use livekit_protocol as proto;
use proto::signal_request::Message as Req;
use sfu_core::RoomEvent;
use sfu_testkit::Harness;

#[test]
fn one_room_life_in_order() {
    let mut h = Harness::new();
    let alice = h.join("r", "alice");
    let cam = h.publish(alice, "cam", true, &[]);
    h.send(alice, cam, 0, true, 0);
    h.advance(Duration::from_millis(100));
    h.signal(alice, Req::Leave(proto::LeaveRequest::default()));
    h.advance(Duration::from_secs(25)); // default departure_timeout is 20 s
    let names: Vec<&str> = h.events.iter().map(RoomEvent::name).collect();
    assert_eq!(
        names,
        [
            "room_started",
            "participant_joined",
            "track_published",
            "track_unpublished",
            "participant_left",
            "room_finished"
        ]
    );
    let sid = h.events[0].room().sid.clone();
    assert!(
        h.events
            .iter()
            .all(|e| e.room().sid == sid && e.room().name == "r")
    );
    let wh = h.events[2].to_webhook();
    assert_eq!(wh.event, "track_published");
    assert_eq!(wh.participant.unwrap().identity, "alice");
    assert!(wh.track.unwrap().sid.starts_with("TR_"));
    let RoomEvent::ParticipantLeft { participant, .. } = &h.events[4] else {
        panic!()
    };
    assert_eq!(
        participant.state,
        proto::participant_info::State::Disconnected as i32
    );
    assert_eq!(
        participant.disconnect_reason,
        proto::DisconnectReason::ClientInitiated as i32
    );
}
