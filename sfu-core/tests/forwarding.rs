//! A publisher's packets reach a subscriber through the shard: rewritten to the
//! subscriber leg's SSRC, in order, with consecutive sequence numbers and the payload
//! untouched; a video subscriber starts on a keyframe.

use std::time::Duration;

use sfu_testkit::Harness;

fn tag(payload: &[u8], offset: usize) -> u32 {
    u32::from_be_bytes(payload[offset..offset + 4].try_into().unwrap())
}

#[test]
fn video_is_forwarded_from_the_first_keyframe_with_rewritten_headers() {
    let mut h = Harness::new();
    let alice = h.join("r", "alice");
    let bob = h.join("r", "bob");
    let cam = h.publish(alice, "cam", true, &[]);
    let publisher_ssrc = h.clients[alice].publications[cam].layers[0].1;
    // The first packet publishes the track; bob gets a down-track and an offer.
    h.send(alice, cam, 0, false, 0);
    h.advance(Duration::from_millis(200));
    // Deltas before any keyframe are held back: a decoder could not start on them.
    for i in 1..5 {
        h.send(alice, cam, 0, false, i);
        h.advance(Duration::from_millis(33));
    }
    assert!(
        h.clients[bob].received.is_empty(),
        "nothing before a keyframe"
    );
    h.send(alice, cam, 0, true, 100);
    for i in 101..130 {
        h.advance(Duration::from_millis(33));
        h.send(alice, cam, 0, false, i);
    }
    let got = &h.clients[bob].received;
    assert_eq!(got.len(), 30, "keyframe + 29 deltas");
    assert!(got.iter().all(|r| r.ssrc == got[0].ssrc));
    assert_ne!(
        got[0].ssrc, publisher_ssrc,
        "SSRC is rewritten per subscriber leg"
    );
    assert_eq!(tag(&got[0].payload, 5), 100, "starts at the keyframe");
    assert_eq!(got[0].payload[1] & 1, 0, "first packet is a VP8 keyframe");
    for w in got.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1));
        assert_eq!(tag(&w[1].payload, 5), tag(&w[0].payload, 5) + 1);
    }
    assert_eq!(h.shard.counters.forwarded_packets, 30);
}

#[test]
fn audio_flows_both_ways_without_keyframe_gating() {
    let mut h = Harness::new();
    let alice = h.join("r", "alice");
    let bob = h.join("r", "bob");
    let mic_a = h.publish(alice, "mic-a", false, &[]);
    let mic_b = h.publish(bob, "mic-b", false, &[]);
    h.send(alice, mic_a, 0, false, 0);
    h.send(bob, mic_b, 0, false, 0);
    h.advance(Duration::from_millis(300));
    for i in 1..=50 {
        h.send(alice, mic_a, 0, false, i);
        h.send(bob, mic_b, 0, false, i);
        h.advance(Duration::from_millis(20));
    }
    let a = h.clients[alice].received.len();
    let b = h.clients[bob].received.len();
    assert!(a >= 50 && b >= 50, "alice got {a}, bob got {b}");
    assert_eq!(tag(&h.clients[bob].received.last().unwrap().payload, 1), 50);
}
