//! WHIP publishers and WHEP viewers are participants of the same rooms LiveKit clients use:
//! a WHIP track reaches a LiveKit subscriber, a LiveKit track reaches a WHEP viewer, a
//! viewer that came early starts when something is published and keeps one continuous
//! stream when the publisher changes, and ending a session removes its participant.

use std::time::Duration;

use livekit_protocol as proto;
use sfu_core::{HttpSessionError, JoinParams, PlaySelection, RoomEvent};
use sfu_testkit::Harness;

fn tag(payload: &[u8], offset: usize) -> u32 {
    u32::from_be_bytes(payload[offset..offset + 4].try_into().unwrap())
}

/// Sends a keyframe then `n - 1` deltas of publication `p`, 33 ms apart.
fn stream(h: &mut Harness, c: usize, p: usize, first_tag: u32, n: u32) {
    h.send(c, p, 0, true, first_tag);
    for i in 1..n {
        h.advance(Duration::from_millis(33));
        h.send(c, p, 0, false, first_tag + i);
    }
}

#[test]
fn whip_tracks_reach_livekit_subscribers_as_an_ingress_participant() {
    let mut h = Harness::new();
    let viewer = h.join("r", "viewer");
    let cam = h.whip("r", "obs", true);
    // First packets publish both tracks; the LiveKit viewer is offered them.
    h.send(cam, 0, 0, true, 0);
    h.send(cam, 1, 0, false, 0);
    h.advance(Duration::from_millis(300));
    stream(&mut h, cam, 0, 100, 20);
    for i in 1..=20 {
        h.send(cam, 1, 0, false, i);
    }
    let published: Vec<&RoomEvent> = h
        .events
        .iter()
        .filter(|e| matches!(e, RoomEvent::TrackPublished { .. }))
        .collect();
    assert_eq!(published.len(), 2, "audio and video published");
    for e in published {
        let RoomEvent::TrackPublished {
            participant, track, ..
        } = e
        else {
            unreachable!()
        };
        assert_eq!(participant.identity, "obs");
        assert_eq!(
            participant.kind,
            proto::participant_info::Kind::Ingress as i32
        );
        let want = if track.r#type == proto::TrackType::Video as i32 {
            proto::TrackSource::Camera
        } else {
            proto::TrackSource::Microphone
        };
        assert_eq!(track.source, want as i32);
    }
    let got = &h.clients[viewer].received;
    let video: Vec<_> = got
        .iter()
        .filter(|r| r.payload.len() == 160 && r.payload[0] == 0x10)
        .collect();
    assert!(
        video.len() >= 20,
        "viewer got {} video packets",
        video.len()
    );
    assert!(got.len() >= 40, "viewer got {} packets in all", got.len());
}

#[test]
fn whep_viewer_plays_a_livekit_publisher_starting_on_a_keyframe() {
    let mut h = Harness::new();
    let alice = h.join("r", "alice");
    let cam = h.publish(alice, "cam", true, &[]);
    h.send(alice, cam, 0, false, 0);
    h.advance(Duration::from_millis(200));
    let plis_before = h.clients[alice].plis.len();
    let viewer = h.whep("r", "viewer", PlaySelection::default());
    h.advance(Duration::from_millis(50));
    assert!(
        h.clients[alice].plis.len() > plis_before,
        "binding the viewer asks the publisher for a keyframe"
    );
    for i in 1..5 {
        h.send(alice, cam, 0, false, i);
    }
    assert!(
        h.clients[viewer].received.is_empty(),
        "nothing before a keyframe"
    );
    stream(&mut h, alice, cam, 100, 30);
    let got = &h.clients[viewer].received;
    assert_eq!(got.len(), 30);
    assert_eq!(tag(&got[0].payload, 5), 100);
    for w in got.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1));
    }
}

#[test]
fn early_whep_viewer_starts_when_published_and_continues_across_publishers() {
    let mut h = Harness::new();
    let viewer = h.whep("r", "viewer", PlaySelection::default());
    let alice = h.join("r", "alice");
    let cam = h.publish(alice, "cam", true, &[]);
    h.send(alice, cam, 0, false, 0);
    h.advance(Duration::from_millis(200));
    stream(&mut h, alice, cam, 100, 10);
    let first = h.clients[viewer].received.len();
    assert_eq!(first, 10, "the viewer plays alice once she publishes");
    let last = h.clients[viewer].received.last().unwrap().clone();

    // Alice leaves; bob publishes: the viewer's one stream continues with bob.
    let alice_id = h.clients[alice].id;
    h.shard.handle_signal(
        h.now,
        alice_id,
        proto::SignalRequest {
            message: Some(proto::signal_request::Message::Leave(
                proto::LeaveRequest::default(),
            )),
        },
    );
    h.advance(Duration::from_millis(100));
    let bob = h.join("r", "bob");
    let bcam = h.publish(bob, "bcam", true, &[]);
    h.send(bob, bcam, 0, false, 0);
    h.advance(Duration::from_millis(200));
    stream(&mut h, bob, bcam, 500, 10);
    let got = &h.clients[viewer].received[first..];
    assert_eq!(got.len(), 10, "the viewer plays bob");
    assert_eq!(got[0].ssrc, last.ssrc, "same outgoing SSRC");
    assert_eq!(got[0].seq, last.seq.wrapping_add(1), "sequence continues");
    assert_eq!(tag(&got[0].payload, 5), 500);
}

#[test]
fn whep_selection_by_participant_and_ending_a_session() {
    let mut h = Harness::new();
    let alice = h.join("r", "alice");
    let bob = h.join("r", "bob");
    let acam = h.publish(alice, "acam", true, &[]);
    let bcam = h.publish(bob, "bcam", true, &[]);
    h.send(alice, acam, 0, false, 0);
    h.send(bob, bcam, 0, false, 0);
    h.advance(Duration::from_millis(200));
    let viewer = h.whep(
        "r",
        "viewer",
        PlaySelection {
            participant: Some("bob".into()),
            track_sids: Vec::new(),
        },
    );
    stream(&mut h, alice, acam, 100, 5);
    stream(&mut h, bob, bcam, 200, 5);
    let got = &h.clients[viewer].received;
    assert_eq!(got.len(), 5);
    assert!(got.iter().all(|r| (200..205).contains(&tag(&r.payload, 5))));

    let id = h.clients[viewer].id;
    let n = h.shard.participant_count();
    h.shard.http_session_end(h.now, id).unwrap();
    h.pump();
    assert_eq!(h.shard.participant_count(), n - 1);
    assert!(h.events.iter().any(|e| matches!(
        e,
        RoomEvent::ParticipantLeft { participant, .. } if participant.identity == "viewer"
    )));
    stream(&mut h, bob, bcam, 300, 5);
    assert_eq!(h.clients[viewer].received.len(), 5, "nothing after DELETE");
    assert_eq!(
        h.shard.http_session_end(h.now, id),
        Err(HttpSessionError::NotFound)
    );
    assert_eq!(
        h.shard
            .http_session_patch(h.now, id, "a=end-of-candidates", None),
        Err(HttpSessionError::NotFound)
    );
    // A LiveKit participant is not an HTTP session.
    let alice_id = h.clients[alice].id;
    assert_eq!(
        h.shard.http_session_end(h.now, alice_id),
        Err(HttpSessionError::NotFound)
    );
}

#[test]
fn whep_ice_restart_by_patch_keeps_media_flowing() {
    let mut h = Harness::new();
    let alice = h.join("r", "alice");
    let cam = h.publish(alice, "cam", true, &[]);
    h.send(alice, cam, 0, false, 0);
    h.advance(Duration::from_millis(200));
    let viewer = h.whep("r", "viewer", PlaySelection::default());
    stream(&mut h, alice, cam, 100, 5);
    assert_eq!(h.clients[viewer].received.len(), 5);
    let id = h.clients[viewer].id;
    let stale = h.shard.http_session_patch(
        h.now,
        id,
        "a=ice-ufrag:x\r\na=ice-pwd:y\r\n",
        Some("\"nope\""),
    );
    assert_eq!(stale, Err(HttpSessionError::PreconditionFailed));
    match h.whep_ice_restart(viewer).unwrap() {
        sfu_core::PatchOutcome::Restarted { sdpfrag, etag } => {
            assert!(
                sdpfrag.contains("a=ice-ufrag:") && sdpfrag.contains("a=candidate:"),
                "{sdpfrag}"
            );
            assert!(etag.len() > 2);
        }
        other => panic!("expected a restart, got {other:?}"),
    }
    // Long enough for ICE consent to fail if the new credentials were not in use.
    for _ in 0..40 {
        h.advance(Duration::from_secs(1));
        assert!(
            h.clients[viewer].subscriber_connected(),
            "viewer disconnected after the restart"
        );
    }
    stream(&mut h, alice, cam, 200, 5);
    let got = &h.clients[viewer].received;
    assert!(
        got.len() >= 10,
        "media after the restart: {} packets",
        got.len()
    );
    assert_eq!(tag(&got.last().unwrap().payload, 5), 204);
    // Trickle without new credentials is just accepted.
    assert_eq!(
        h.shard.http_session_patch(
            h.now,
            id,
            "a=candidate:1 1 udp 1 10.0.1.9 5001 typ host\r\n",
            None
        ),
        Ok(sfu_core::PatchOutcome::Trickled)
    );
}

#[test]
fn refused_offers_leave_nothing_behind() {
    let mut h = Harness::new();
    h.join("r", "alice");
    let n = h.shard.participant_count();
    let now = h.now;
    let e = h
        .shard
        .whip_publish(now, JoinParams::new("r", "bad"), "not sdp")
        .unwrap_err();
    assert!(matches!(e, HttpSessionError::BadSdp(_)), "{e:?}");
    let pcmu_only = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n\
        a=rtpmap:0 PCMU/8000\r\n";
    assert_eq!(
        h.shard
            .whip_publish(now, JoinParams::new("r", "bad"), pcmu_only)
            .unwrap_err(),
        HttpSessionError::NoCommonCodec
    );
    assert!(matches!(
        h.shard
            .whep_play(
                now,
                JoinParams::new("r", "bad"),
                PlaySelection::default(),
                pcmu_only
            )
            .unwrap_err(),
        HttpSessionError::NoMedia(_)
    ));
    let mut p = JoinParams::new("nope", "bad");
    p.may_create_room = false;
    let opus = pcmu_only.replace("PCMU/8000", "opus/48000/2");
    assert!(matches!(
        h.shard.whip_publish(now, p, &opus).unwrap_err(),
        HttpSessionError::Join(_)
    ));
    assert_eq!(h.shard.participant_count(), n);
    assert_eq!(h.shard.room_count(), 1);
}
