//! Captured publisher datagrams fed straight into the shard are forwarded like live ones
//! (the benchmark relies on this).

use std::time::Duration;

use sfu_core::Output;
use sfu_testkit::Harness;

#[test]
fn captured_packets_are_forwarded() {
    let mut h = Harness::new();
    let publisher = h.join("r", "p");
    let sub = h.join("r", "s");
    let cam = h.publish(publisher, "cam", true, &[]);
    h.send(publisher, cam, 0, true, 0);
    h.advance(Duration::from_millis(500));
    h.send(publisher, cam, 0, true, 1);
    h.advance(Duration::from_millis(100));
    assert!(!h.clients[sub].received.is_empty());
    let from = h.publisher_addr(publisher);
    for round in 0..8 {
        let n = if round < 4 { 200 } else { 20_000 };
        let pkts = h.capture_media(publisher, cam, n);
        let mut sent = 0;
        for d in &pkts {
            h.shard.handle_datagram(h.now, from, d);
            while let Some(o) = h.shard.poll_output() {
                if matches!(o, Output::Transmit(_)) {
                    sent += 1;
                }
            }
        }
        assert!(
            sent >= pkts.len(),
            "round {round}: {sent} transmits for {} packets ({:?})",
            pkts.len(),
            h.shard.counters
        );
    }
}
