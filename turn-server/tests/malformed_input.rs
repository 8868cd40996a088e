//! Bytes from the network never panic the server: a seeded fuzz loop of random and mutated
//! STUN / ChannelData over UDP (from a client with an allocation, so the allocation task sees
//! them too, and from one without) and over TCP. Afterwards the server must still answer and
//! relay, drops must be counted, and no task may have panicked (tokio would swallow a task
//! panic, so a panic hook counts them; this file is its own test binary for that reason).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use rtc_stun::message::{
    BINDING_REQUEST, CLASS_SUCCESS_RESPONSE, METHOD_ALLOCATE, METHOD_CHANNEL_BIND,
    METHOD_CREATE_PERMISSION, METHOD_REFRESH,
};
use rtc_turn::proto::channum::ChannelNumber;
use rtc_turn::proto::lifetime::Lifetime;
use turn_server::ClientTransport;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

fn mutate(rng: &mut Rng, template: &[u8]) -> Vec<u8> {
    let mut p = template.to_vec();
    match rng.below(6) {
        0 => {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(p.len());
                p[i] ^= 1 + rng.byte() % 255;
            }
        }
        1 => p.truncate(rng.below(p.len() + 1)),
        2 => {
            // Lie about the length (STUN header or ChannelData header).
            let v = rng.next() as u16 & 0xFFFC;
            p[2..4].copy_from_slice(&v.to_be_bytes());
        }
        3 => {
            // Corrupt an attribute length inside the body.
            if p.len() > 24 {
                let i = 20 + 4 * rng.below((p.len() - 20) / 4);
                if i + 4 <= p.len() {
                    p[i + 2] = rng.byte();
                    p[i + 3] = rng.byte();
                }
            }
        }
        4 => {
            let extra = rng.below(64);
            p.extend((0..extra).map(|_| rng.byte()));
        }
        _ => {
            for b in p.iter_mut().skip(20) {
                if rng.below(8) == 0 {
                    *b = rng.byte();
                }
            }
        }
    }
    p
}

fn random_packet(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(160);
    let mut p: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
    if len >= 8 && rng.below(2) == 0 {
        // Looks like STUN: top bits 00 and the magic cookie.
        p[0] &= 0x3F;
        p[4..8].copy_from_slice(&0x2112_A442u32.to_be_bytes());
    } else if len >= 4 && rng.below(2) == 0 {
        p[0] = 0x40 | (p[0] & 0x3F);
    }
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_datagrams_and_streams_are_dropped_without_panic() {
    let panics = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&panics);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));

    let mut config = test_config();
    config.allow_peer_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
    let server = turn_server::start(config).await.unwrap();
    let udp = server.local_addr(ClientTransport::Udp).unwrap();
    let tcp = server.local_addr(ClientTransport::Tcp).unwrap();
    let peer = echo_peer("127.0.0.1").await;

    let (user, pass) = creds("PA_fuzz");
    let mut c = TurnClient::udp(udp).await;
    c.allocate(&user, &pass).await.unwrap();
    c.create_permission(peer).await.unwrap();
    c.channel_bind(0x4444, peer).await.unwrap();

    // Valid messages to mutate (no Refresh with lifetime 0: a no-op mutation of it would
    // legitimately delete the allocation).
    let templates: Vec<Vec<u8>> = vec![
        c.message(BINDING_REQUEST, vec![], false).raw,
        c.request(METHOD_ALLOCATE, udp_transport(), true).raw,
        c.request(
            METHOD_REFRESH,
            vec![Box::new(Lifetime(Duration::from_secs(600)))],
            true,
        )
        .raw,
        c.request(METHOD_CREATE_PERMISSION, vec![peer_attr(peer)], true)
            .raw,
        c.request(
            METHOD_CHANNEL_BIND,
            vec![Box::new(ChannelNumber(0x4445)), peer_attr(peer)],
            true,
        )
        .raw,
        {
            let m = c.message(
                rtc_stun::message::MessageType::new(
                    rtc_stun::message::METHOD_SEND,
                    rtc_stun::message::CLASS_INDICATION,
                ),
                vec![
                    peer_attr(peer),
                    Box::new(rtc_turn::proto::data::Data(b"payload".to_vec())),
                ],
                false,
            );
            m.raw
        },
        vec![
            0x44, 0x44, 0x00, 0x05, b'h', b'e', b'l', b'l', b'o', 0, 0, 0,
        ],
    ];

    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let stranger = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..4000 {
        let p = if rng.below(3) == 0 {
            random_packet(&mut rng)
        } else {
            let t = &templates[rng.below(templates.len())];
            mutate(&mut rng, t)
        };
        if i % 2 == 0 {
            c.send_bytes(&p).await;
        } else {
            stranger.send_to(&p, udp).await.unwrap();
        }
        if i % 200 == 0 {
            // Let the server keep up instead of overflowing socket buffers.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    // The same over TCP; the server closes a connection that stops being TURN, so reconnect.
    let mut t = TurnClient::tcp(tcp).await;
    for i in 0..1500 {
        let p = if rng.below(3) == 0 {
            random_packet(&mut rng)
        } else {
            let tpl = &templates[rng.below(templates.len())];
            mutate(&mut rng, tpl)
        };
        t.send_bytes(&p).await;
        if i % 50 == 49 {
            t = TurnClient::tcp(tcp).await;
        }
    }
    drop(t);

    // Still serving: Binding on both transports, and the allocation still relays.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut probe = TurnClient::udp(udp).await;
    let b = probe.message(BINDING_REQUEST, vec![], false);
    assert_eq!(probe.transact(&b).await.typ.class, CLASS_SUCCESS_RESPONSE);
    let mut probe = TurnClient::tcp(tcp).await;
    let b = probe.message(BINDING_REQUEST, vec![], false);
    assert_eq!(probe.transact(&b).await.typ.class, CLASS_SUCCESS_RESPONSE);

    // Drain what the fuzzing produced (echoes, responses), then relay once more.
    while c.recv_frame(Duration::from_millis(100)).await.is_some() {}
    c.send_channel_data(0x4444, b"still alive").await;
    let mut got = None;
    while let Some(r) = c.recv_data(WAIT).await {
        if r == Received::Channel(0x4444, b"still alive".to_vec()) {
            got = Some(r);
            break;
        }
    }
    assert!(got.is_some(), "allocation still relays after the fuzzing");

    let stats = server.stats();
    println!("after fuzzing: {stats}");
    assert!(stats.dropped.malformed > 100, "{stats}");
    assert!(stats.dropped.total() > 1000, "{stats}");
    server.shutdown().await;
    let _ = std::panic::take_hook();
    assert_eq!(panics.load(Ordering::SeqCst), 0, "a server task panicked");
}
