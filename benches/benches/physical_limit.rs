//! The machine's floor for forwarding: what every SFU must pay per forwarded packet, with
//! nothing else around it. Two parts, measured apart so each can be read on its own:
//!
//! - `srtp_encrypt`: SRTP-protecting one 1144-byte RTP packet (the load generator's video
//!   packet: 12-byte header, 1100-byte payload, 32-byte probe) with the cipher suites
//!   WebRTC negotiates (AES-128-GCM between webrtc-rs peers, AES-128-CM + HMAC-SHA1-80
//!   with most browsers), through the same `rtc` SRTP crate the server uses.
//! - `udp_send_loopback`: handing 64 such datagrams to the kernel for 64 different
//!   receivers on loopback, one `sendto` each versus one `sendmmsg` (our `SendBatch`).
//!   On loopback the receivers' side of the kernel work runs in the sender's context too,
//!   as it does in the load benchmark, so the figures are comparable.
//!
//! Encrypt + send per packet is the practical physical limit the load benchmark's server
//! CPU per forwarded packet is compared with (benches/README.md).

use std::{net::UdpSocket, time::Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rtc::srtp::{context::Context, protection_profile::ProtectionProfile};
use switchyard_netio::SendBatch;

const PACKET: usize = 12 + 1100 + 32;
const FANOUT: usize = 64;

fn rtp_packet(seq: u16) -> Vec<u8> {
    let mut p = vec![0u8; PACKET];
    p[0] = 0x80;
    p[1] = 96;
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 3000).to_be_bytes());
    p[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    p
}

fn srtp_encrypt(c: &mut Criterion) {
    let provider = rtc::crypto::default_provider().expect("a crypto provider is built in");
    let mut group = c.benchmark_group("srtp_encrypt");
    group.throughput(Throughput::Elements(1));
    for (name, profile) in [
        ("aes128gcm", ProtectionProfile::AeadAes128Gcm),
        ("aes128cm_sha1_80", ProtectionProfile::Aes128CmHmacSha1_80),
    ] {
        let key = vec![7u8; profile.key_len()];
        let salt = vec![9u8; profile.salt_len()];
        let mut ctx = Context::new(&key, &salt, profile, None, None, provider.crypto())
            .expect("SRTP context");
        let mut seq = 0u16;
        let mut packet = rtp_packet(0);
        group.bench_function(name, |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                packet[2..4].copy_from_slice(&seq.to_be_bytes());
                ctx.encrypt_rtp(&packet).expect("encrypts")
            })
        });
    }
    group.finish();
}

struct Loopback {
    sender: UdpSocket,
    tokio_sender: tokio::net::UdpSocket,
    receivers: Vec<UdpSocket>,
    rt: tokio::runtime::Runtime,
}

impl Loopback {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let sender = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let batch_sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        batch_sock.set_nonblocking(true).expect("nonblocking");
        let tokio_sender = {
            let _g = rt.enter();
            tokio::net::UdpSocket::from_std(batch_sock).expect("tokio socket")
        };
        let receivers = (0..FANOUT)
            .map(|_| {
                let r = UdpSocket::bind("127.0.0.1:0").expect("bind");
                r.set_nonblocking(true).expect("nonblocking");
                r
            })
            .collect();
        Self {
            sender,
            tokio_sender,
            receivers,
            rt,
        }
    }

    /// Reads everything the receivers hold (not timed); how many datagrams.
    fn drain(&self) -> usize {
        let mut buf = [0u8; 2048];
        let mut n = 0;
        for r in &self.receivers {
            while r.recv_from(&mut buf).is_ok() {
                n += 1;
            }
        }
        n
    }
}

fn udp_send(c: &mut Criterion) {
    let lo = Loopback::new();
    let to: Vec<_> = lo
        .receivers
        .iter()
        .map(|r| r.local_addr().expect("addr"))
        .collect();
    let datagram = rtp_packet(1);
    let mut group = c.benchmark_group("udp_send_loopback");
    group.throughput(Throughput::Elements(FANOUT as u64));
    group.bench_function("sendto_x64", |b| {
        b.iter_custom(|iters| {
            let mut spent = std::time::Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                for a in &to {
                    lo.sender.send_to(&datagram, a).expect("send");
                }
                spent += t.elapsed();
                assert_eq!(lo.drain(), FANOUT, "every datagram arrives");
            }
            spent
        })
    });
    group.bench_function("sendmmsg_x64", |b| {
        let mut batch = SendBatch::new();
        b.iter_custom(|iters| {
            let mut spent = std::time::Duration::ZERO;
            for _ in 0..iters {
                for a in &to {
                    batch.push(*a, datagram.clone());
                }
                let t = Instant::now();
                lo.rt.block_on(batch.flush(&lo.tokio_sender));
                spent += t.elapsed();
                assert_eq!(lo.drain(), FANOUT, "every datagram arrives");
            }
            spent
        })
    });
    group.finish();
}

criterion_group!(benches, srtp_encrypt, udp_send);
criterion_main!(benches);
