//! Subscriber keyframe requests reach the publisher at most once per throttle interval
//! (1 s for a non-simulcast/high layer), however many subscribers ask; a request that
//! arrives inside the interval is remembered and sent when the interval ends, unless a
//! keyframe arrived meanwhile.

use std::time::Duration;

use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use sfu_testkit::Harness;

fn pli(ssrc: u32) -> Vec<Box<dyn rtc::rtcp::Packet>> {
    vec![Box::new(PictureLossIndication {
        sender_ssrc: 1,
        media_ssrc: ssrc,
    })]
}

#[test]
fn plis_are_throttled_per_layer() {
    let mut h = Harness::new();
    let alice = h.join("r", "alice");
    let bob = h.join("r", "bob");
    let carol = h.join("r", "carol");
    let cam = h.publish(alice, "cam", true, &[]);
    let mut tag = 0;
    let mut frame = |h: &mut Harness, key: bool| {
        tag += 1;
        h.send(alice, cam, 0, key, tag);
        h.advance(Duration::from_millis(33));
    };
    frame(&mut h, true);
    h.advance(Duration::from_millis(300));
    for i in 0..70 {
        frame(&mut h, i % 30 == 29);
    }
    assert!(!h.clients[bob].received.is_empty() && !h.clients[carol].received.is_empty());
    let dt_bob = h.clients[bob].received[0].ssrc;
    let dt_carol = h.clients[carol].received[0].ssrc;
    let start = h.clients[alice].plis.len();
    let in_before = h.shard.counters.keyframe_requests_in;
    // 20 PLIs from two subscribers within 200 ms.
    for _ in 0..10 {
        h.send_feedback(bob, dt_bob, pli(dt_bob));
        h.send_feedback(carol, dt_carol, pli(dt_carol));
        frame(&mut h, false);
    }
    assert_eq!(
        h.shard.counters.keyframe_requests_in - in_before,
        20,
        "the SFU saw every request"
    );
    assert_eq!(
        h.clients[alice].plis.len() - start,
        1,
        "one PLI for the whole burst"
    );
    // The publisher answers with a keyframe: nothing is pending any more.
    frame(&mut h, true);
    for _ in 0..40 {
        frame(&mut h, false);
    }
    assert_eq!(
        h.clients[alice].plis.len() - start,
        1,
        "no deferred PLI after a keyframe"
    );
    // After the interval a new request goes through at once.
    h.send_feedback(bob, dt_bob, pli(dt_bob));
    assert_eq!(
        h.clients[alice].plis.len() - start,
        2,
        "next PLI after the throttle interval"
    );
}

#[test]
fn a_request_inside_the_interval_is_sent_when_it_ends() {
    let mut h = Harness::new();
    let alice = h.join("r", "alice");
    let bob = h.join("r", "bob");
    let cam = h.publish(alice, "cam", true, &[]);
    h.send(alice, cam, 0, true, 0);
    h.advance(Duration::from_millis(300));
    for i in 1..60 {
        h.send(alice, cam, 0, i % 30 == 0, i);
        h.advance(Duration::from_millis(33));
    }
    let dt = h.clients[bob].received[0].ssrc;
    let start = h.clients[alice].plis.len();
    h.send_feedback(bob, dt, pli(dt));
    h.advance(Duration::from_millis(100));
    h.send_feedback(bob, dt, pli(dt));
    h.advance(Duration::from_millis(100));
    assert_eq!(h.clients[alice].plis.len() - start, 1);
    h.advance(Duration::from_millis(1000));
    assert_eq!(
        h.clients[alice].plis.len() - start,
        2,
        "the deferred request went out"
    );
}
