//! A packet lost between the SFU and a subscriber is retransmitted by the SFU from its
//! per-layer cache when the subscriber NACKs it; the publisher is not asked again.

use std::{cell::Cell, rc::Rc, time::Duration};

use sfu_testkit::{Harness, rtp_seq};

#[test]
fn lost_packet_is_resent_from_the_cache() {
    let mut h = Harness::new();
    let alice = h.join("r", "alice");
    let bob = h.join("r", "bob");
    let cam = h.publish(alice, "cam", true, &[]);
    h.send(alice, cam, 0, true, 0);
    h.advance(Duration::from_millis(300));
    h.send(alice, cam, 0, true, 1);
    h.advance(Duration::from_millis(33));
    let first = h.clients[bob]
        .received
        .last()
        .expect("bob receives video")
        .seq;
    // Drop the 5th packet after `first` on its way to bob, once.
    let victim = first.wrapping_add(5);
    let bob_addr: std::net::SocketAddr = "10.0.1.11:5001".parse().unwrap();
    let dropped = Rc::new(Cell::new(0));
    let d = dropped.clone();
    h.filter = Some(Box::new(move |dg| {
        if dg.to == bob_addr && rtp_seq(&dg.data) == Some(victim) && d.get() == 0 {
            d.set(1);
            return false;
        }
        true
    }));
    for i in 2..20 {
        h.send(alice, cam, 0, false, i);
        h.advance(Duration::from_millis(33));
    }
    h.advance(Duration::from_millis(500));
    assert_eq!(dropped.get(), 1, "the link dropped the packet");
    let seqs: Vec<u16> = h.clients[bob].received.iter().map(|r| r.seq).collect();
    assert!(seqs.contains(&victim), "retransmission arrived: {seqs:?}");
    assert!(h.shard.counters.retransmitted_packets >= 1);
    let idx = seqs.iter().position(|s| *s == victim).unwrap();
    assert!(
        idx > 0 && seqs[idx - 1] != victim.wrapping_sub(1),
        "it arrived late, i.e. was resent"
    );
}
