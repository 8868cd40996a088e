//! Drives an `sfu_core::Shard` with in-memory LiveKit-style clients on a virtual clock.
//!
//! Each [`Client`] is what an SDK does on the wire, reduced to what the tests need: a
//! publisher connection it offers (webrtc-rs `rtc`, full ICE), a subscriber connection
//! the server offers, and the LiveKit signal messages that glue them. Datagrams move
//! through an in-memory link that can drop chosen packets; time only moves when a test
//! calls [`Harness::advance`]. No sockets, no sleeping: a 10 s scenario runs in
//! milliseconds and always the same way.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    time::{Duration, Instant},
};

use bytes::{Bytes, BytesMut};
use livekit_protocol as proto;
use proto::{signal_request::Message as Req, signal_response::Message as Resp};
use rtc::{
    interceptor::{Registry, Slot},
    media_stream::MediaStreamTrack,
    peer_connection::{
        RTCPeerConnection, RTCPeerConnectionBuilder,
        configuration::{
            RTCConfigurationBuilder, interceptor_registry::register_default_interceptors,
            media_engine::MediaEngine,
        },
        event::{RTCPeerConnectionEvent, RTCTrackEvent},
        message::{RTCMessage, TaggedRTCMessage},
        sdp::RTCSessionDescription,
        state::RTCPeerConnectionState,
        transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate},
    },
    rtcp, rtp,
    rtp_transceiver::{
        RTCRtpReceiverId, RTCRtpSenderId,
        rtp_sender::{RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind},
    },
    sansio::Protocol,
    shared::{TaggedBytesMut, TransportContext, TransportProtocol},
};
use sfu_core::{
    JoinParams, Output, ParticipantId, PcFactory, PlaySelection, Shard, ShardConfig,
    http_session::{SdpFrag, with_credentials},
    peer_connection::RtcpToApp,
};

/// The server's advertised address in tests.
pub const SERVER: &str = "10.0.0.1:7882";

/// An RTP packet a client received.
#[derive(Debug, Clone)]
pub struct Received {
    /// SSRC on the subscriber leg.
    pub ssrc: u32,
    /// Sequence number.
    pub seq: u16,
    /// Timestamp.
    pub ts: u32,
    /// Payload.
    pub payload: Bytes,
    /// Virtual arrival time.
    pub at: Instant,
}

struct ClientPc {
    pc: RTCPeerConnection,
    addr: SocketAddr,
    connected: bool,
}

fn client_pc(addr: SocketAddr, now: Instant) -> ClientPc {
    let mut me = MediaEngine::default();
    me.register_default_codecs().expect("default codecs");
    let registry = register_default_interceptors(Registry::new(), &mut me)
        .expect("default interceptors")
        .with(Slot::from(14_000usize), RtcpToApp::default());
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(me)
        .with_interceptor_registry(registry)
        .build(now)
        .expect("client peer connection");
    let cand = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".into(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()
    .expect("candidate");
    pc.add_local_candidate(RTCIceCandidate::from(&cand).to_json().expect("json"))
        .expect("local candidate");
    ClientPc {
        pc,
        addr,
        connected: false,
    }
}

/// A track the client publishes.
#[derive(Debug, Clone)]
pub struct Publication {
    /// Sender on the publisher connection.
    pub sender: RTCRtpSenderId,
    /// Client track id.
    pub cid: String,
    /// (rid, ssrc) of each encoding; rid is empty without simulcast.
    pub layers: Vec<(String, u32)>,
    /// Next sequence number per layer.
    pub seq: Vec<u16>,
    /// Audio or video.
    pub video: bool,
}

/// A simulated LiveKit participant.
pub struct Client {
    /// Shard handle.
    pub id: ParticipantId,
    /// Identity.
    pub identity: String,
    /// Sid from the JoinResponse.
    pub sid: String,
    publisher: ClientPc,
    subscriber: Option<ClientPc>,
    sub_addr: SocketAddr,
    offer_id: u32,
    /// Every signal message received, in order.
    pub signals: Vec<proto::SignalResponse>,
    /// RTP received on the subscriber connection.
    pub received: Vec<Received>,
    /// Receivers of down-tracks by SSRC (to send PLI/NACK).
    pub receivers: HashMap<u32, RTCRtpReceiverId>,
    /// PLIs that reached this client as a publisher, by media SSRC.
    pub plis: Vec<(Instant, u32)>,
    /// Data channel messages received (label unknown at this level: raw bytes).
    pub data: Vec<BytesMut>,
    /// The server closed our signalling connection.
    pub closed: bool,
    /// Publications.
    pub publications: Vec<Publication>,
}

impl Client {
    /// True once both directions this client uses are up.
    pub fn subscriber_connected(&self) -> bool {
        self.subscriber.as_ref().is_some_and(|s| s.connected)
    }

    /// True once the publisher connection is up.
    pub fn publisher_connected(&self) -> bool {
        self.publisher.connected
    }

    /// Received packets on one SSRC.
    pub fn received_on(&self, ssrc: u32) -> Vec<&Received> {
        self.received.iter().filter(|r| r.ssrc == ssrc).collect()
    }
}

/// A datagram on the in-memory link.
#[derive(Debug, Clone)]
pub struct Datagram {
    /// Sender.
    pub from: SocketAddr,
    /// Receiver.
    pub to: SocketAddr,
    /// Bytes.
    pub data: Vec<u8>,
}

/// Reads the RTP sequence number of an (S)RTP datagram (the header is not encrypted).
pub fn rtp_seq(data: &[u8]) -> Option<u16> {
    let pt = *data.get(1)? & 0x7f;
    let is_rtp = data.first().is_some_and(|b| b >> 6 == 2) && !(64..96).contains(&pt);
    is_rtp.then(|| u16::from_be_bytes([data[2], data[3]]))
}

/// Link filter: return false to drop a datagram.
pub type LinkFilter = Box<dyn FnMut(&Datagram) -> bool>;

/// The SFU plus clients on a virtual clock.
pub struct Harness {
    /// Virtual now.
    pub now: Instant,
    /// The shard under test.
    pub shard: Shard,
    /// Server address.
    pub server: SocketAddr,
    /// Clients in creation order.
    pub clients: Vec<Client>,
    link: VecDeque<Datagram>,
    /// Drops datagrams it returns false for.
    pub filter: Option<LinkFilter>,
    /// Lifecycle events the shard reported, in order.
    pub events: Vec<sfu_core::RoomEvent>,
    next_host: u8,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// A shard with default settings at a fixed virtual start.
    pub fn new() -> Self {
        let now = Instant::now();
        let server: SocketAddr = SERVER.parse().expect("valid address");
        let factory = PcFactory::new(server).expect("certificate");
        let shard = Shard::new(ShardConfig::default(), factory, now, 1_700_000_000_000);
        Self {
            now,
            shard,
            server,
            clients: Vec::new(),
            link: VecDeque::new(),
            filter: None,
            events: Vec::new(),
            next_host: 10,
        }
    }

    /// Joins a participant with full permissions and waits until its subscriber
    /// connection is up.
    pub fn join(&mut self, room: &str, identity: &str) -> usize {
        let params = JoinParams::new(room, identity);
        let id = self.shard.join(self.now, params).expect("join accepted");
        let idx = self.push_client(id, identity);
        self.run_until(Duration::from_secs(10), |h| {
            h.clients[idx].subscriber_connected()
        });
        assert!(
            self.clients[idx].subscriber_connected(),
            "{identity}: subscriber connection did not come up"
        );
        idx
    }

    /// Publishes over WHIP: a client whose one connection sends a VP8 track (and an Opus
    /// track if `audio`), offered to `Shard::whip_publish`. Returns the client; its
    /// publications are 0 (video) and 1 (audio).
    pub fn whip(&mut self, room: &str, identity: &str, audio: bool) -> usize {
        let c = self.push_client(ParticipantId(u64::MAX), identity);
        let (vs, vl) = self.add_local_track(c, "whip-video", true, &[]);
        let mut pubs = vec![(vs, "whip-video", vl, true)];
        if audio {
            let (a, al) = self.add_local_track(c, "whip-audio", false, &[]);
            pubs.push((a, "whip-audio", al, false));
        }
        let now = self.now;
        let client = &mut self.clients[c];
        let offer = client.publisher.pc.create_offer(None).expect("offer");
        let sdp = offer.sdp.clone();
        client
            .publisher
            .pc
            .set_local_description(now, offer)
            .expect("set local offer");
        let answer = self
            .shard
            .whip_publish(now, JoinParams::new(room, identity), &sdp)
            .expect("WHIP accepted");
        let client = &mut self.clients[c];
        client.id = answer.participant;
        client.sid = answer.participant_sid;
        client
            .publisher
            .pc
            .set_remote_description(now, RTCSessionDescription::answer(answer.sdp).expect("sdp"))
            .expect("client applies WHIP answer");
        for (sender, cid, layers, video) in pubs {
            let seq = vec![1000; layers.len()];
            client.publications.push(Publication {
                sender,
                cid: cid.into(),
                layers,
                seq,
                video,
            });
        }
        self.run_until(Duration::from_secs(10), |h| {
            h.clients[c].publisher_connected()
        });
        assert!(
            self.clients[c].publisher_connected(),
            "WHIP connection did not come up"
        );
        c
    }

    /// Plays over WHEP: a client whose one connection offers to receive video and audio,
    /// answered by `Shard::whep_play`. What it receives lands in its `received`.
    pub fn whep(&mut self, room: &str, identity: &str, selection: PlaySelection) -> usize {
        use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
        let c = self.push_client(ParticipantId(u64::MAX), identity);
        let now = self.now;
        let client = &mut self.clients[c];
        let sub_addr = client.sub_addr;
        let sub = client.subscriber.insert(client_pc(sub_addr, now));
        for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
            sub.pc
                .add_transceiver_from_kind(
                    kind,
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Recvonly,
                        ..Default::default()
                    }),
                )
                .expect("recvonly transceiver");
        }
        let offer = sub.pc.create_offer(None).expect("offer");
        let sdp = offer.sdp.clone();
        sub.pc
            .set_local_description(now, offer)
            .expect("set local offer");
        let answer = self
            .shard
            .whep_play(now, JoinParams::new(room, identity), selection, &sdp)
            .expect("WHEP accepted");
        let client = &mut self.clients[c];
        client.id = answer.participant;
        client.sid = answer.participant_sid;
        client
            .subscriber
            .as_mut()
            .expect("inserted above")
            .pc
            .set_remote_description(now, RTCSessionDescription::answer(answer.sdp).expect("sdp"))
            .expect("client applies WHEP answer");
        self.run_until(Duration::from_secs(10), |h| {
            h.clients[c].subscriber_connected()
        });
        assert!(
            self.clients[c].subscriber_connected(),
            "WHEP connection did not come up"
        );
        c
    }

    /// Restarts ICE on WHEP client `c` the way RFC 9725 says: a new offer's credentials go
    /// to the server in a PATCH (`If-Match: *`), and the credentials the server answers
    /// with are patched into the client's remote description. Returns the server's answer.
    pub fn whep_ice_restart(
        &mut self,
        c: usize,
    ) -> Result<sfu_core::PatchOutcome, sfu_core::HttpSessionError> {
        let now = self.now;
        let client = &mut self.clients[c];
        let id = client.id;
        let sub = client.subscriber.as_mut().expect("a WHEP client");
        sub.pc.restart_ice();
        let offer = sub.pc.create_offer(None).expect("restart offer");
        // Both sides' credentials are read and swapped by the same code the shard uses.
        let ours = SdpFrag::parse(&offer.sdp);
        let frag = format!(
            "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n",
            ours.ufrag.expect("ICE ufrag in the offer"),
            ours.pwd.expect("ICE pwd in the offer")
        );
        sub.pc
            .set_local_description(now, offer)
            .expect("set restart offer");
        let out = self.shard.http_session_patch(now, id, &frag, Some("*"))?;
        if let sfu_core::PatchOutcome::Restarted { sdpfrag, .. } = &out {
            let sub = self.clients[c].subscriber.as_mut().expect("a WHEP client");
            let old = sub.pc.remote_description().expect("answered").sdp.clone();
            let theirs = SdpFrag::parse(sdpfrag);
            let answer = with_credentials(
                &old,
                theirs.ufrag.as_deref().expect("ufrag in the PATCH answer"),
                theirs.pwd.as_deref().expect("pwd in the PATCH answer"),
            );
            sub.pc
                .set_remote_description(now, RTCSessionDescription::answer(answer).expect("sdp"))
                .expect("client applies restarted answer");
        }
        self.pump();
        Ok(out)
    }

    /// Registers a client (no connection started yet).
    fn push_client(&mut self, id: ParticipantId, identity: &str) -> usize {
        let host = self.next_host;
        self.next_host += 1;
        let pub_addr: SocketAddr = format!("10.0.1.{host}:5000").parse().expect("addr");
        let sub_addr: SocketAddr = format!("10.0.1.{host}:5001").parse().expect("addr");
        self.clients.push(Client {
            id,
            identity: identity.into(),
            sid: String::new(),
            publisher: client_pc(pub_addr, self.now),
            subscriber: None,
            sub_addr,
            offer_id: 0,
            signals: Vec::new(),
            received: Vec::new(),
            receivers: HashMap::new(),
            plis: Vec::new(),
            data: Vec::new(),
            closed: false,
            publications: Vec::new(),
        });
        self.clients.len() - 1
    }

    /// Adds a VP8 (with the given simulcast rids, or none) or Opus track to client `c`'s
    /// publisher connection; returns its sender and (rid, ssrc) layers.
    fn add_local_track(
        &mut self,
        c: usize,
        cid: &str,
        video: bool,
        rids: &[&str],
    ) -> (RTCRtpSenderId, Vec<(String, u32)>) {
        let (kind, codec) = if video {
            (
                RtpCodecKind::Video,
                RTCRtpCodec {
                    mime_type: "video/VP8".into(),
                    clock_rate: 90000,
                    ..Default::default()
                },
            )
        } else {
            (
                RtpCodecKind::Audio,
                RTCRtpCodec {
                    mime_type: "audio/opus".into(),
                    clock_rate: 48000,
                    channels: 2,
                    sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
                    ..Default::default()
                },
            )
        };
        let rid_list: Vec<String> = if rids.is_empty() {
            vec![String::new()]
        } else {
            rids.iter().map(|r| r.to_string()).collect()
        };
        let layers: Vec<(String, u32)> = rid_list.iter().map(|r| (r.clone(), rtc_ssrc())).collect();
        let codings = layers
            .iter()
            .map(|(rid, ssrc)| RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    rid: rid.clone(),
                    ssrc: Some(*ssrc),
                    ..Default::default()
                },
                codec: codec.clone(),
                ..Default::default()
            })
            .collect();
        let track = MediaStreamTrack::new("stream".into(), cid.into(), cid.into(), kind, codings);
        let client = &mut self.clients[c];
        let sender = client.publisher.pc.add_track(track).expect("add track");
        (sender, layers)
    }

    /// Publishes a VP8 video track (with the given simulcast rids, or none) or an Opus
    /// track, negotiates, and waits for the publisher connection.
    pub fn publish(&mut self, c: usize, cid: &str, video: bool, rids: &[&str]) -> usize {
        let (sender, layers) = self.add_local_track(c, cid, video, rids);
        let client = &mut self.clients[c];
        let vlayers = if rids.is_empty() {
            Vec::new()
        } else {
            rids.iter()
                .map(|r| proto::VideoLayer {
                    quality: sfu_core::published_track::quality_of_rid(Some(r)),
                    rid: r.to_string(),
                    ..Default::default()
                })
                .collect()
        };
        let add = proto::AddTrackRequest {
            cid: cid.into(),
            name: cid.into(),
            r#type: if video {
                proto::TrackType::Video
            } else {
                proto::TrackType::Audio
            } as i32,
            source: if video {
                proto::TrackSource::Camera
            } else {
                proto::TrackSource::Microphone
            } as i32,
            layers: vlayers,
            ..Default::default()
        };
        let id = client.id;
        self.shard.handle_signal(
            self.now,
            id,
            proto::SignalRequest {
                message: Some(Req::AddTrack(add)),
            },
        );
        self.pump();
        let client = &mut self.clients[c];
        let offer = client.publisher.pc.create_offer(None).expect("offer");
        let sdp = offer.sdp.clone();
        client
            .publisher
            .pc
            .set_local_description(self.now, offer)
            .expect("set local offer");
        client.offer_id += 1;
        let sd = proto::SessionDescription {
            r#type: "offer".into(),
            sdp,
            id: client.offer_id,
            ..Default::default()
        };
        self.shard.handle_signal(
            self.now,
            id,
            proto::SignalRequest {
                message: Some(Req::Offer(sd)),
            },
        );
        self.run_until(Duration::from_secs(10), |h| {
            h.clients[c].publisher_connected()
        });
        assert!(
            self.clients[c].publisher_connected(),
            "publisher connection did not come up"
        );
        let seq = vec![1000; layers.len()];
        self.clients[c].publications.push(Publication {
            sender,
            cid: cid.into(),
            layers,
            seq,
            video,
        });
        self.clients[c].publications.len() - 1
    }

    /// Sends one media packet of publication `p` on layer `layer` (VP8: keyframe or delta;
    /// the payload carries `tag` so receivers can tell packets apart).
    pub fn send(&mut self, c: usize, p: usize, layer: usize, keyframe: bool, tag: u32) {
        self.write_media(c, p, layer, keyframe, tag);
        self.pump();
    }

    fn write_media(&mut self, c: usize, p: usize, layer: usize, keyframe: bool, tag: u32) {
        let now = self.now;
        let client = &mut self.clients[c];
        let publ = &mut client.publications[p];
        let (rid, ssrc) = publ.layers[layer].clone();
        let seq = publ.seq[layer];
        publ.seq[layer] = seq.wrapping_add(1);
        let video = publ.video;
        let mut s = client.publisher.pc.rtp_sender(publ.sender).expect("sender");
        let params = s.get_parameters().clone();
        let pt = params
            .rtp_parameters
            .codecs
            .first()
            .map(|c| c.payload_type)
            .expect("negotiated codec");
        let mut header = rtp::header::Header {
            version: 2,
            payload_type: pt,
            sequence_number: seq,
            timestamp: tag.wrapping_mul(3000),
            ssrc,
            marker: true,
            ..Default::default()
        };
        if !rid.is_empty() {
            let mid = client
                .publisher
                .pc
                .rtp_transceiver(publ.sender.into())
                .and_then(|t| t.mid().clone())
                .expect("mid");
            for ext in &params.rtp_parameters.header_extensions {
                if ext.uri == "urn:ietf:params:rtp-hdrext:sdes:mid" {
                    header
                        .set_extension(ext.id as u8, Bytes::from(mid.clone().into_bytes()))
                        .expect("mid ext");
                } else if ext.uri == "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id" {
                    header
                        .set_extension(ext.id as u8, Bytes::from(rid.clone().into_bytes()))
                        .expect("rid ext");
                }
            }
        }
        let mut payload = if video {
            vec![0x10, if keyframe { 0x00 } else { 0x01 }, 0x9d, 0x01, 0x2a]
        } else {
            vec![0xfc]
        };
        payload.extend_from_slice(&tag.to_be_bytes());
        payload.resize(160, 0xab);
        let mut s = client.publisher.pc.rtp_sender(publ.sender).expect("sender");
        s.write_rtp(
            now,
            rtp::Packet {
                header,
                payload: Bytes::from(payload),
            },
        )
        .expect("write rtp");
    }

    /// Writes `n` delta packets of publication `p` (layer 0) on client `c` and returns the
    /// encrypted datagrams instead of delivering them, for benchmarks that feed the shard
    /// directly.
    pub fn capture_media(&mut self, c: usize, p: usize, n: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            self.write_media(c, p, 0, false, i as u32);
            let cp = &mut self.clients[c].publisher;
            while let Some(t) = cp.pc.poll_write() {
                out.push(t.message.to_vec());
            }
        }
        out
    }

    /// Address of client `c`'s publisher connection.
    pub fn publisher_addr(&self, c: usize) -> SocketAddr {
        self.clients[c].publisher.addr
    }

    /// Sends a signal request from client `c`.
    pub fn signal(&mut self, c: usize, m: Req) {
        let id = self.clients[c].id;
        self.shard
            .handle_signal(self.now, id, proto::SignalRequest { message: Some(m) });
        self.pump();
    }

    /// Sends RTCP from client `c`'s subscriber connection about down-track `ssrc`.
    pub fn send_feedback(&mut self, c: usize, ssrc: u32, pkts: Vec<Box<dyn rtcp::Packet>>) {
        let now = self.now;
        let client = &mut self.clients[c];
        let rx = *client.receivers.get(&ssrc).expect("down-track receiver");
        let sub = client.subscriber.as_mut().expect("subscriber");
        sub.pc
            .rtp_receiver(rx)
            .expect("receiver")
            .write_rtcp(now, pkts)
            .expect("write rtcp");
        self.pump();
    }

    /// Moves every queued datagram and signal until nothing moves.
    pub fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            while let Some(o) = self.shard.poll_output() {
                moved = true;
                match o {
                    Output::Transmit(t) => self.link.push_back(Datagram {
                        from: self.server,
                        to: t.remote,
                        data: t.data,
                    }),
                    Output::Signal(pid, msg) => self.on_signal(pid, *msg),
                    Output::CloseSignal(pid) => {
                        if let Some(c) = self.clients.iter_mut().find(|c| c.id == pid) {
                            c.closed = true;
                        }
                    }
                    Output::Event(e) => self.events.push(*e),
                    Output::PermissionChanged(..) => {}
                }
            }
            for ci in 0..self.clients.len() {
                moved |= self.drain_client(ci);
            }
            while let Some(d) = self.link.pop_front() {
                moved = true;
                if let Some(f) = self.filter.as_mut()
                    && !f(&d)
                {
                    continue;
                }
                if d.to == self.server {
                    self.shard.handle_datagram(self.now, d.from, &d.data);
                } else if let Some(pc) = self.clients.iter_mut().find_map(|c| {
                    if c.publisher.addr == d.to {
                        Some(&mut c.publisher)
                    } else {
                        c.subscriber.as_mut().filter(|s| s.addr == d.to)
                    }
                }) {
                    let _ = pc.pc.handle_read(TaggedBytesMut {
                        now: self.now,
                        transport: TransportContext {
                            local_addr: d.to,
                            peer_addr: d.from,
                            ecn: None,
                            transport_protocol: TransportProtocol::UDP,
                        },
                        message: BytesMut::from(&d.data[..]),
                    });
                }
            }
            if !moved {
                return;
            }
        }
        panic!("harness did not settle");
    }

    fn drain_client(&mut self, ci: usize) -> bool {
        let now = self.now;
        let mut moved = false;
        let client = &mut self.clients[ci];
        for is_sub in [false, true] {
            let Some(cp) = (if is_sub {
                client.subscriber.as_mut()
            } else {
                Some(&mut client.publisher)
            }) else {
                continue;
            };
            loop {
                let mut any = false;
                while let Some(t) = cp.pc.poll_write() {
                    any = true;
                    self.link.push_back(Datagram {
                        from: cp.addr,
                        to: t.transport.peer_addr,
                        data: t.message.to_vec(),
                    });
                }
                while let Some(e) = cp.pc.poll_event() {
                    any = true;
                    match e {
                        RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                            RTCPeerConnectionState::Connected,
                        ) => cp.connected = true,
                        RTCPeerConnectionEvent::OnConnectionStateChangeEvent(
                            RTCPeerConnectionState::Disconnected
                            | RTCPeerConnectionState::Failed
                            | RTCPeerConnectionState::Closed,
                        ) => cp.connected = false,
                        RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                            client.receivers.insert(init.ssrc, init.receiver_id);
                        }
                        _ => {}
                    }
                }
                while let Some(TaggedRTCMessage { message, .. }) = cp.pc.poll_read() {
                    any = true;
                    match message {
                        RTCMessage::RtpPacket(_, p) => client.received.push(Received {
                            ssrc: p.header.ssrc,
                            seq: p.header.sequence_number,
                            ts: p.header.timestamp,
                            payload: p.payload,
                            at: now,
                        }),
                        RTCMessage::RtcpPacket(_, pkts) => {
                            use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
                            for p in pkts {
                                if let Some(pli) =
                                    p.as_any().downcast_ref::<PictureLossIndication>()
                                {
                                    client.plis.push((now, pli.media_ssrc));
                                }
                            }
                        }
                        RTCMessage::DataChannelMessage(_, m) => client.data.push(m.data),
                        _ => {}
                    }
                }
                if !any {
                    break;
                }
                moved = true;
            }
        }
        moved
    }

    fn on_signal(&mut self, pid: ParticipantId, msg: proto::SignalResponse) {
        let now = self.now;
        // Join outputs stay queued in the shard until the client is registered and pumped.
        let Some(ci) = self.clients.iter().position(|c| c.id == pid) else {
            return;
        };
        let client = &mut self.clients[ci];
        match &msg.message {
            Some(Resp::Join(j)) => {
                client.sid = j
                    .participant
                    .as_ref()
                    .map(|p| p.sid.clone())
                    .unwrap_or_default()
            }
            Some(Resp::Offer(sd)) => {
                let sub_addr = client.sub_addr;
                let sub = client
                    .subscriber
                    .get_or_insert_with(|| client_pc(sub_addr, now));
                sub.pc
                    .set_remote_description(
                        now,
                        RTCSessionDescription::offer(sd.sdp.clone()).expect("offer sdp"),
                    )
                    .expect("client applies server offer");
                let answer = sub.pc.create_answer(None).expect("answer");
                let sdp = answer.sdp.clone();
                sub.pc
                    .set_local_description(now, answer)
                    .expect("set answer");
                let reply = proto::SessionDescription {
                    r#type: "answer".into(),
                    sdp,
                    id: sd.id,
                    ..Default::default()
                };
                self.shard.handle_signal(
                    now,
                    pid,
                    proto::SignalRequest {
                        message: Some(Req::Answer(reply)),
                    },
                );
            }
            Some(Resp::Answer(sd)) => {
                client
                    .publisher
                    .pc
                    .set_remote_description(
                        now,
                        RTCSessionDescription::answer(sd.sdp.clone()).expect("answer sdp"),
                    )
                    .expect("client applies server answer");
            }
            _ => {}
        }
        client.signals.push(msg);
    }

    /// Runs the virtual clock until `cond` holds or `limit` passes. Returns `cond`.
    pub fn run_until(&mut self, limit: Duration, mut cond: impl FnMut(&Harness) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.pump();
            if cond(self) {
                return true;
            }
            if self.now >= end {
                return false;
            }
            let next = self
                .next_deadline()
                .min(end)
                .max(self.now + Duration::from_millis(1));
            self.set_time(next);
        }
    }

    /// Advances the virtual clock by `d`, firing every timer on the way.
    pub fn advance(&mut self, d: Duration) {
        self.run_until(d, |_| false);
    }

    fn next_deadline(&mut self) -> Instant {
        let mut t = self
            .shard
            .poll_timeout()
            .unwrap_or(self.now + Duration::from_secs(1));
        for c in &mut self.clients {
            for pc in std::iter::once(&mut c.publisher).chain(c.subscriber.as_mut()) {
                if let Some(d) = pc.pc.poll_timeout() {
                    t = t.min(d);
                }
            }
        }
        t
    }

    fn set_time(&mut self, now: Instant) {
        self.now = now;
        self.shard.handle_timeout(now);
        for c in &mut self.clients {
            for pc in std::iter::once(&mut c.publisher).chain(c.subscriber.as_mut()) {
                if pc.pc.poll_timeout().is_some_and(|d| d <= now) {
                    let _ = pc.pc.handle_timeout(now);
                }
            }
        }
    }
}

fn rtc_ssrc() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0x1000_0000);
    NEXT.fetch_add(0x101, Ordering::Relaxed)
}
