//! Shard behaviour driven directly, without sockets or clients.

use super::*;

fn shard(now: Instant) -> Shard {
    let f = PcFactory::new("127.0.0.1:7882".parse().unwrap()).unwrap();
    Shard::new(ShardConfig::default(), f, now, 1_700_000_000_000)
}

fn params(room: &str, identity: &str) -> JoinParams {
    JoinParams::new(room, identity)
}

/// Sends an AddTrackRequest and returns what the shard answered.
fn add_track(
    s: &mut Shard,
    now: Instant,
    who: ParticipantId,
    kind: proto::TrackType,
) -> Vec<(ParticipantId, proto::SignalResponse)> {
    let req = proto::AddTrackRequest {
        cid: "c1".into(),
        r#type: kind as i32,
        ..Default::default()
    };
    s.handle_signal(
        now,
        who,
        proto::SignalRequest {
            message: Some(Req::AddTrack(req)),
        },
    );
    signals(s)
}

fn signals(s: &mut Shard) -> Vec<(ParticipantId, proto::SignalResponse)> {
    let mut v = vec![];
    while let Some(o) = s.poll_output() {
        if let Output::Signal(p, m) = o {
            v.push((p, *m));
        }
    }
    v
}

#[test]
fn join_response_comes_first_with_livekit_essentials_then_an_offer() {
    let now = Instant::now();
    let mut s = shard(now);
    let a = s.join(now, params("r", "alice")).unwrap();
    let out = signals(&mut s);
    let Some(Resp::Join(j)) = &out[0].1.message else {
        panic!("first message must be join: {out:?}")
    };
    assert_eq!(out[0].0, a);
    assert!(!j.server_info.as_ref().unwrap().version.is_empty());
    assert_eq!((j.ping_interval, j.ping_timeout), (5, 15));
    assert!(j.subscriber_primary);
    assert!(
        j.participant
            .as_ref()
            .unwrap()
            .permission
            .as_ref()
            .unwrap()
            .can_publish
    );
    assert!(j.participant.as_ref().unwrap().sid.starts_with("PA_"));
    assert!(j.room.as_ref().unwrap().sid.starts_with("RM_"));
    assert!(out.iter().any(|(_, m)| matches!(&m.message, Some(Resp::Offer(o)) if o.id == 1 && o.sdp.contains("webrtc-datachannel"))));
    let trickle = out.iter().find_map(|(_, m)| match &m.message {
        Some(Resp::Trickle(t)) => Some(t.clone()),
        _ => None,
    });
    let t = trickle.expect("server trickles its candidate");
    assert_eq!(t.target, proto::SignalTarget::Subscriber as i32);
    let v: serde_json::Value = serde_json::from_str(&t.candidate_init).unwrap();
    assert!(v["candidate"].as_str().unwrap().starts_with("candidate:"));
    assert!(
        v["sdpMid"].is_string() && v["sdpMLineIndex"].is_number(),
        "{v}"
    );
}
#[test]
fn second_participant_sees_first_and_first_gets_update() {
    let now = Instant::now();
    let mut s = shard(now);
    let a = s.join(now, params("r", "alice")).unwrap();
    signals(&mut s);
    let b = s.join(now, params("r", "bob")).unwrap();
    let out = signals(&mut s);
    let Some(Resp::Join(j)) = &out.iter().find(|(p, _)| *p == b).unwrap().1.message else {
        panic!()
    };
    assert_eq!(j.other_participants.len(), 1);
    assert_eq!(j.other_participants[0].identity, "alice");
    assert!(out.iter().any(|(p, m)| *p == a
        && matches!(&m.message, Some(Resp::Update(u)) if u.participants[0].identity == "bob")));
}

#[test]
fn duplicate_identity_evicts_the_old_session() {
    let now = Instant::now();
    let mut s = shard(now);
    let a1 = s.join(now, params("r", "alice")).unwrap();
    signals(&mut s);
    let _a2 = s.join(now, params("r", "alice")).unwrap();
    let mut saw_leave = false;
    let mut saw_close = false;
    while let Some(o) = s.poll_output() {
        match o {
            Output::Signal(p, m) if p == a1 => {
                if let Some(Resp::Leave(l)) = m.message {
                    saw_leave = l.reason == proto::DisconnectReason::DuplicateIdentity as i32;
                }
            }
            Output::CloseSignal(p) if p == a1 => saw_close = true,
            _ => {}
        }
    }
    assert!(saw_leave && saw_close);
    assert_eq!(s.participant_count(), 1);
}

#[test]
fn room_closes_after_departure_timeout_and_not_before() {
    let now = Instant::now();
    let mut s = shard(now);
    let mut p = params("r", "alice");
    p.room_settings.departure_timeout = Some(2);
    let a = s.join(now, p).unwrap();
    s.handle_signal(
        now,
        a,
        proto::SignalRequest {
            message: Some(Req::Leave(Default::default())),
        },
    );
    assert!(s.room_exists("r"));
    s.handle_timeout(now + Duration::from_millis(1900));
    assert!(s.room_exists("r"));
    s.handle_timeout(now + Duration::from_millis(2100));
    assert!(!s.room_exists("r"));
}

#[test]
fn shutdown_tells_everyone_and_closes_rooms() {
    let now = Instant::now();
    let mut s = shard(now);
    let a = s.join(now, params("r", "alice")).unwrap();
    signals(&mut s);
    s.shutdown(now);
    let mut leave = None;
    let mut closed = false;
    while let Some(o) = s.poll_output() {
        match o {
            Output::Signal(p, m) if p == a => {
                if let Some(Resp::Leave(l)) = m.message {
                    leave = Some(l);
                }
            }
            Output::CloseSignal(p) => closed |= p == a,
            _ => {}
        }
    }
    assert_eq!(
        leave.unwrap().reason,
        proto::DisconnectReason::ServerShutdown as i32
    );
    assert!(closed);
    assert_eq!((s.room_count(), s.participant_count()), (0, 0));
}

#[test]
fn no_auto_create_refuses_unknown_rooms() {
    let now = Instant::now();
    let mut s = shard(now);
    let mut p = params("r", "alice");
    p.may_create_room = false;
    assert_eq!(s.join(now, p).unwrap_err(), JoinError::RoomNotFound);
}

#[test]
fn add_track_needs_permission() {
    let now = Instant::now();
    let mut s = shard(now);
    let mut p = params("r", "alice");
    p.permission.can_publish = false;
    let a = s.join(now, p).unwrap();
    signals(&mut s);
    let out = add_track(&mut s, now, a, proto::TrackType::Video);
    assert!(
        matches!(&out[0].1.message, Some(Resp::RequestResponse(r)) if r.reason == proto::request_response::Reason::NotAllowed as i32)
    );
}

#[test]
fn add_track_answers_with_a_track_sid() {
    let now = Instant::now();
    let mut s = shard(now);
    let a = s.join(now, params("r", "alice")).unwrap();
    signals(&mut s);
    let out = add_track(&mut s, now, a, proto::TrackType::Audio);
    let Some(Resp::TrackPublished(t)) = &out[0].1.message else {
        panic!("{out:?}")
    };
    assert_eq!(t.cid, "c1");
    assert!(t.track.as_ref().unwrap().sid.starts_with("TR_"));
}

#[test]
fn max_participants_refuses_one_more_but_a_rejoin_replaces() {
    let now = Instant::now();
    let mut s = shard(now);
    let mut p = params("r", "alice");
    p.room_settings.max_participants = Some(1);
    s.join(now, p).unwrap();
    assert_eq!(
        s.join(now, params("r", "bob")).unwrap_err(),
        JoinError::RoomFull
    );
    // The same identity takes its own place back (duplicate eviction), even when full.
    assert!(s.join(now, params("r", "alice")).is_ok());
    assert_eq!(s.participant_count(), 1);
}

#[test]
fn hidden_participants_are_never_announced() {
    let now = Instant::now();
    let mut s = shard(now);
    let a = s.join(now, params("r", "alice")).unwrap();
    signals(&mut s);
    let mut p = params("r", "recorder");
    p.permission.hidden = true;
    s.join(now, p).unwrap();
    let out = signals(&mut s);
    assert!(
        !out.iter()
            .any(|(to, m)| *to == a && matches!(&m.message, Some(Resp::Update(_)))),
        "alice hears nothing about a hidden participant"
    );
    let b = s.join(now, params("r", "bob")).unwrap();
    let out = signals(&mut s);
    let Some(Resp::Join(j)) = &out.iter().find(|(p, _)| *p == b).unwrap().1.message else {
        panic!()
    };
    let names: Vec<&str> = j
        .other_participants
        .iter()
        .map(|p| p.identity.as_str())
        .collect();
    assert_eq!(names, vec!["alice"]);
}

#[test]
fn participant_versions_only_increase() {
    let now = Instant::now();
    let mut s = shard(now);
    let a = s.join(now, params("r", "alice")).unwrap();
    let b = s.join(now, params("r", "bob")).unwrap();
    s.handle_signal(
        now,
        b,
        proto::SignalRequest {
            message: Some(Req::Leave(Default::default())),
        },
    );
    let mut last = 0;
    for (to, m) in signals(&mut s) {
        if to != a {
            continue;
        }
        if let Some(Resp::Update(u)) = m.message {
            for p in u.participants.iter().filter(|p| p.identity == "bob") {
                assert!(p.version > last, "version {} after {last}", p.version);
                last = p.version;
            }
        }
    }
    assert!(last > 0);
}

#[test]
fn self_metadata_needs_permission_and_respects_limits() {
    let now = Instant::now();
    let mut s = shard(now);
    let mut p = params("r", "alice");
    p.permission.can_update_metadata = true;
    let a = s.join(now, p).unwrap();
    signals(&mut s);
    let update = |metadata: String, id: u32| proto::SignalRequest {
        message: Some(Req::UpdateMetadata(proto::UpdateParticipantMetadata {
            metadata,
            request_id: id,
            ..Default::default()
        })),
    };
    s.handle_signal(now, a, update("x".repeat(600 * 1024), 1));
    let out = signals(&mut s);
    assert!(out.iter().any(|(_, m)| matches!(&m.message,
        Some(Resp::RequestResponse(r)) if r.request_id == 1
            && r.reason == proto::request_response::Reason::LimitExceeded as i32)));
    s.handle_signal(now, a, update("hello".into(), 2));
    let out = signals(&mut s);
    assert!(out.iter().any(|(_, m)| matches!(&m.message,
        Some(Resp::Update(u)) if u.participants[0].metadata == "hello")));
    assert!(out.iter().any(|(_, m)| matches!(&m.message,
        Some(Resp::RequestResponse(r)) if r.request_id == 2
            && r.reason == proto::request_response::Reason::Ok as i32)));
}
