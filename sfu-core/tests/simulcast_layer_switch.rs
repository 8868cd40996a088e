//! A subscriber gets the highest simulcast layer that is flowing; when that layer stops,
//! it moves to a lower one only at a keyframe of that layer, and the rewritten stream
//! continues without a gap in sequence numbers and with timestamps moving forward.

use std::time::Duration;

use sfu_testkit::Harness;

fn layer_of(payload: &[u8]) -> u32 {
    u32::from_be_bytes(payload[5..9].try_into().unwrap()) / 10_000
}

#[test]
fn switches_down_on_a_keyframe_and_keeps_the_stream_continuous() {
    let mut h = Harness::new();
    let alice = h.join("r", "alice");
    let bob = h.join("r", "bob");
    let cam = h.publish(alice, "cam", true, &["q", "f"]);
    // Tags: layer * 10000 + frame number.
    let mut frame = 0u32;
    let send_both = |h: &mut Harness, key: bool, frame: u32| {
        h.send(alice, cam, 0, key, frame);
        h.send(alice, cam, 1, key, 10_000 + frame);
    };
    send_both(&mut h, false, frame);
    h.advance(Duration::from_millis(200));
    for _ in 0..30 {
        frame += 1;
        send_both(&mut h, frame % 10 == 1, frame);
        h.advance(Duration::from_millis(33));
    }
    let before = h.clients[bob].received.len();
    assert!(before > 20, "bob received {before}");
    assert!(
        h.clients[bob]
            .received
            .iter()
            .all(|r| layer_of(&r.payload) == 1),
        "highest layer (f) selected"
    );

    // The high layer stops. Low-layer deltas keep coming; the switch waits for a keyframe.
    let q_ssrc = h.clients[alice].publications[cam].layers[0].1;
    let plis_before = h.clients[alice]
        .plis
        .iter()
        .filter(|(_, s)| *s == q_ssrc)
        .count();
    for _ in 0..60 {
        frame += 1;
        h.send(alice, cam, 0, false, frame);
        h.advance(Duration::from_millis(33));
    }
    let plis_after = h.clients[alice]
        .plis
        .iter()
        .filter(|(_, s)| *s == q_ssrc)
        .count();
    assert!(
        plis_after > plis_before,
        "the SFU asked the low layer for a keyframe"
    );
    assert_eq!(
        h.clients[bob].received.len(),
        before,
        "no low-layer delta before its keyframe"
    );
    frame += 1;
    h.send(alice, cam, 0, true, frame);
    for _ in 0..10 {
        h.advance(Duration::from_millis(33));
        frame += 1;
        h.send(alice, cam, 0, false, frame);
    }
    let got = &h.clients[bob].received;
    assert_eq!(got.len(), before + 11);
    let (last_f, first_q) = (&got[before - 1], &got[before]);
    assert_eq!(layer_of(&first_q.payload), 0);
    assert_eq!(first_q.payload[1] & 1, 0, "switch happens on a keyframe");
    assert_eq!(
        first_q.ssrc, last_f.ssrc,
        "same outgoing SSRC across the switch"
    );
    assert_eq!(
        first_q.seq,
        last_f.seq.wrapping_add(1),
        "no sequence gap across the switch"
    );
    let dt = first_q.ts.wrapping_sub(last_f.ts);
    assert!(
        dt > 0 && dt < 90_000 * 5,
        "timestamp moves forward by about the elapsed time: {dt}"
    );
    for w in got[before..].windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1));
    }
}
