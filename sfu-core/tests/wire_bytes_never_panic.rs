//! Bytes from the network never panic the shard: random and bit-flipped datagrams from
//! connected peers, and random input to every parser that sees untrusted bytes. Afterwards
//! media still flows. (A seeded fuzz smoke test; it runs in every `cargo test`.)

use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::StdRng};
use sfu_core::{codec, demux, sdp_tracks};
use sfu_testkit::Harness;

fn random_bytes(rng: &mut StdRng, max: usize) -> Vec<u8> {
    let n = rng.random_range(0..max);
    (0..n).map(|_| rng.random()).collect()
}

#[test]
fn parsers_accept_any_input() {
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..50_000 {
        let b = random_bytes(&mut rng, 64);
        let _ = demux::stun_username(&b);
        let _ = codec::is_keyframe(codec::VideoCodec::Vp8, &b);
        let _ = codec::is_keyframe(codec::VideoCodec::H264, &b);
        // A STUN-looking header with random attributes.
        let mut stun = vec![
            0x00,
            0x01,
            0x00,
            (b.len() as u8) & 0xfc,
            0x21,
            0x12,
            0xA4,
            0x42,
        ];
        stun.extend_from_slice(&[0; 12]);
        stun.extend_from_slice(&b);
        let _ = demux::stun_username(&stun);
        let text = String::from_utf8_lossy(&b).replace('\u{fffd}', "\n");
        let _ =
            sdp_tracks::sending_track_ids(&format!("v=0\nm={text}\nm=video 9 x\na=msid:{text}"));
    }
}

#[test]
fn garbage_datagrams_do_not_break_forwarding() {
    let mut rng = StdRng::seed_from_u64(42);
    let mut h = Harness::new();
    let alice = h.join("r", "alice");
    let bob = h.join("r", "bob");
    let cam = h.publish(alice, "cam", true, &[]);
    h.send(alice, cam, 0, true, 0);
    h.advance(Duration::from_millis(300));
    h.send(alice, cam, 0, true, 1);
    let real = h.capture_media(alice, cam, 50);
    let from = h.publisher_addr(alice);
    for i in 0..20_000 {
        let d = if i % 2 == 0 {
            random_bytes(&mut rng, 1500)
        } else {
            // A real SRTP datagram with a few bits flipped (valid-looking headers).
            let mut d = real[rng.random_range(0..real.len())].clone();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..d.len());
                d[at] ^= 1 << rng.random_range(0..8);
            }
            d
        };
        // First byte chosen to hit every demux class: STUN, DTLS, RTP/RTCP.
        let mut d = d;
        if let Some(b) = d.first_mut()
            && i % 3 == 0
        {
            *b = [0x00, 0x16, 0x80, 0x90][i % 4];
        }
        h.shard.handle_datagram(h.now, from, &d);
        while h.shard.poll_output().is_some() {}
    }
    let before = h.clients[bob].received.len();
    for i in 2..12 {
        h.advance(Duration::from_millis(33));
        h.send(alice, cam, 0, i == 2, i);
    }
    assert!(
        h.clients[bob].received.len() >= before + 10,
        "media still flows after the garbage"
    );
}
