//! Forwarding cost of the sans-IO core: one publisher packet fanned out to N subscribers.
//!
//! Real connections (ICE, DTLS, SRTP) are set up with in-memory clients on a virtual clock;
//! the measured loop is exactly what a shard thread does per received datagram:
//! `Shard::handle_datagram` (demux, SRTP decrypt, forwarding decisions, header rewrite,
//! SRTP encrypt per subscriber) plus draining the resulting `Transmit`s. Client-side
//! encryption of the input happens outside the timed section.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sfu_core::Output;
use sfu_testkit::Harness;

fn room_with_subscribers(n: usize) -> (Harness, usize, usize) {
    let mut h = Harness::new();
    let publisher = h.join("bench", "publisher");
    for i in 0..n {
        h.join("bench", &format!("sub-{i}"));
    }
    let cam = h.publish(publisher, "cam", true, &[]);
    h.send(publisher, cam, 0, true, 0);
    h.advance(Duration::from_millis(500));
    h.send(publisher, cam, 0, true, 1);
    h.advance(Duration::from_millis(100));
    let started = h.clients.iter().filter(|c| !c.received.is_empty()).count();
    assert_eq!(
        started, n,
        "every subscriber receives video before measuring"
    );
    (h, publisher, cam)
}

fn fanout(c: &mut Criterion) {
    for subs in [1usize, 10, 100] {
        let (mut h, publisher, cam) = room_with_subscribers(subs);
        let from = h.publisher_addr(publisher);
        let mut group = c.benchmark_group("fanout");
        group.throughput(Throughput::Elements(subs as u64));
        group.sample_size(20);
        group.bench_function(format!("1_publisher_to_{subs}_down_tracks"), |b| {
            b.iter_custom(|iters| {
                let packets = h.capture_media(publisher, cam, iters as usize);
                let now = h.now;
                let mut sent = 0usize;
                let start = Instant::now();
                for d in &packets {
                    h.shard.handle_datagram(now, from, d);
                    while let Some(o) = h.shard.poll_output() {
                        if let Output::Transmit(t) = o {
                            sent += t.data.len();
                        }
                    }
                }
                let elapsed = start.elapsed();
                assert!(sent > 0 || packets.is_empty());
                elapsed
            })
        });
        group.finish();
        let fwd = h.shard.counters.forwarded_packets;
        let rx = h.shard.counters.received_packets;
        eprintln!("fanout {subs}: forwarded {fwd} packets for {rx} received");
    }
}

criterion_group!(benches, fanout);
criterion_main!(benches);
