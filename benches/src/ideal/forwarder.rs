//! The forwarding loop of the ideal forwarder: one task owns every connection and one UDP
//! socket they all share (as an SFU's media port). Datagrams are routed to their
//! connection by the STUN USERNAME of the first binding request, then by source address.
//! A publisher's RTP is decrypted once (by its connection) and written to every
//! subscriber's connection with only the SSRC and payload type rewritten, which encrypts
//! it with that subscriber's SRTP context; the datagrams of one round go out in batches of
//! `sendmmsg`. Connections run no interceptors (no NACK, reports, TWCC, keyframe gating,
//! layer selection): exactly the work every SFU must do, and no more.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use bytes::BytesMut;
use rtc::{
    media_stream::MediaStreamTrack,
    peer_connection::{
        RTCPeerConnection, event::RTCPeerConnectionEvent, event::RTCTrackEvent,
        message::RTCMessage, sdp::RTCSessionDescription, state::RTCPeerConnectionState,
    },
    rtp,
    rtp_transceiver::{
        RTCRtpSenderId,
        rtp_sender::{RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind},
    },
    sansio::Protocol,
    shared::{TaggedBytesMut, TransportContext, TransportProtocol},
};
use sfu_core::{demux::stun_username, http_session::ufrag_of};
use switchyard_netio::SendBatch;
use tokio::{
    net::UdpSocket,
    sync::{mpsc, oneshot},
};

use crate::loadgen::peer::{Interceptors, PeerError, build_pc, rtc_err};

/// A created session.
#[derive(Debug)]
pub struct Answer {
    /// SDP answer.
    pub sdp: String,
    /// Session id (the last segment of `Location`).
    pub id: String,
}

/// Requests from the HTTP side.
#[derive(Debug)]
pub enum Control {
    /// A WHIP offer for `stream`.
    Publish {
        /// Stream name.
        stream: String,
        /// SDP offer.
        offer: String,
        /// The answer or why not.
        reply: oneshot::Sender<Result<Answer, String>>,
    },
    /// A WHEP offer to play `stream` (`None`: every publisher).
    Play {
        /// Stream name.
        stream: Option<String>,
        /// SDP offer.
        offer: String,
        /// The answer or why not.
        reply: oneshot::Sender<Result<Answer, String>>,
    },
    /// DELETE of a session.
    Delete {
        /// Session id.
        id: String,
        /// Whether it existed.
        reply: oneshot::Sender<bool>,
    },
}

/// Where one kind of media leaves a subscriber connection.
struct Out {
    sender: RTCRtpSenderId,
    ssrc: u32,
    pt: Option<u8>,
}

enum Role {
    Publisher {
        stream: String,
        /// Media kind of each incoming SSRC (from OnTrack).
        kinds: HashMap<u32, RtpCodecKind>,
    },
    Subscriber {
        stream: Option<String>,
        video: Option<Out>,
        audio: Option<Out>,
    },
}

struct Leg {
    id: String,
    pc: RTCPeerConnection,
    /// Our ICE ufrag (from the answer), which names this leg in STUN requests.
    ufrag: Option<String>,
    role: Role,
    connected: bool,
    deadline: Option<Instant>,
}

/// What the loop did (printed at exit).
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    /// RTP packets read from publishers.
    pub received: u64,
    /// RTP packets written to subscribers.
    pub forwarded: u64,
    /// Writes that failed, and datagrams the kernel refused.
    pub errors: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// `sendmmsg` calls.
    pub send_calls: u64,
    /// Datagrams from addresses no connection knows.
    pub unrouted: u64,
}

/// The forwarder's state; [`Forwarder::run`] drives it.
pub struct Forwarder {
    socket: UdpSocket,
    local: SocketAddr,
    legs: Vec<Option<Leg>>,
    by_ufrag: HashMap<String, usize>,
    by_addr: HashMap<SocketAddr, usize>,
    dirty: Vec<usize>,
    batch: SendBatch,
    next_id: u64,
    /// Counters.
    pub counters: Counters,
}

const MAX_SLEEP: Duration = Duration::from_millis(250);
const MIN_TIMER: Duration = Duration::from_millis(1);

/// Datagrams read per wake-up before the connections are drained.
const RECV_BATCH: usize = 64;

/// The m-section kinds of an SDP, in order.
pub fn media_kinds(sdp: &str) -> Vec<RtpCodecKind> {
    sdp.lines()
        .filter_map(|l| {
            if l.starts_with("m=video") {
                Some(RtpCodecKind::Video)
            } else if l.starts_with("m=audio") {
                Some(RtpCodecKind::Audio)
            } else {
                None
            }
        })
        .collect()
}

impl Forwarder {
    /// A forwarder whose media socket binds to `ip`:`port` (0: any free port). Must be
    /// called inside a tokio runtime.
    pub fn bind(ip: IpAddr, port: u16) -> Result<Self, PeerError> {
        let socket = std::net::UdpSocket::bind((ip, port))
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .and_then(UdpSocket::from_std)
            .map_err(|source| PeerError::Socket { ip, source })?;
        let local = socket
            .local_addr()
            .map_err(|source| PeerError::Socket { ip, source })?;
        Ok(Self {
            socket,
            local,
            legs: Vec::new(),
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            dirty: Vec::new(),
            batch: SendBatch::new(),
            next_id: 0,
            counters: Counters::default(),
        })
    }

    /// The media socket's address.
    pub fn media_addr(&self) -> SocketAddr {
        self.local
    }

    /// Sends what the connections wrote, in `sendmmsg` batches.
    async fn send(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        self.batch.flush(&self.socket).await;
        self.counters.datagrams_out = self.batch.sent;
        self.counters.send_calls = self.batch.calls;
        self.counters.errors += std::mem::take(&mut self.batch.refused);
    }

    /// Serves `control` requests and forwards media until `control` closes.
    pub async fn run(&mut self, mut control: mpsc::UnboundedReceiver<Control>) {
        let mut buf = vec![0u8; 2048];
        loop {
            let now = Instant::now();
            for i in 0..self.legs.len() {
                if let Some(leg) = self.legs[i].as_mut()
                    && leg.deadline.is_some_and(|d| d <= now)
                {
                    if leg.pc.handle_timeout(now).is_err() {
                        self.counters.errors += 1;
                    }
                    self.dirty.push(i);
                }
            }
            self.flush(now);
            self.send().await;
            let deadline = self
                .legs
                .iter()
                .flatten()
                .filter_map(|l| l.deadline)
                .min()
                .map_or(now + MAX_SLEEP, |d| d.max(now + MIN_TIMER))
                .min(now + MAX_SLEEP);
            tokio::select! {
                c = control.recv() => match c {
                    Some(c) => self.control(c),
                    None => return,
                },
                r = self.socket.recv_from(&mut buf) => {
                    if let Ok((n, from)) = r {
                        self.input(Instant::now(), from, &buf[..n]);
                    }
                    for _ in 0..RECV_BATCH {
                        match self.socket.try_recv_from(&mut buf) {
                            Ok((n, from)) => self.input(Instant::now(), from, &buf[..n]),
                            Err(_) => break,
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
        }
    }

    /// Routes a datagram: a STUN request naming a leg's ufrag also teaches its address.
    fn route(&mut self, from: SocketAddr, data: &[u8]) -> Option<usize> {
        let by_name = stun_username(data)
            .and_then(|u| u.split(':').next())
            .and_then(|ours| self.by_ufrag.get(ours))
            .copied();
        match by_name {
            Some(i) => {
                self.by_addr.insert(from, i);
                Some(i)
            }
            None => self.by_addr.get(&from).copied(),
        }
    }

    fn input(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let Some(i) = self.route(from, data) else {
            self.counters.unrouted += 1;
            return;
        };
        let Some(leg) = self.legs.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        let msg = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: self.local,
                peer_addr: from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: BytesMut::from(data),
        };
        if leg.pc.handle_read(msg).is_err() {
            self.counters.errors += 1;
        }
        self.dirty.push(i);
    }

    /// Drains every touched connection; publishers' RTP fans out (touching subscribers),
    /// until nothing is left.
    fn flush(&mut self, now: Instant) {
        while let Some(i) = self.dirty.pop() {
            let Some(leg) = self.legs.get_mut(i).and_then(Option::as_mut) else {
                continue;
            };
            let mut media: Vec<(RtpCodecKind, rtp::Packet)> = Vec::new();
            loop {
                let mut any = false;
                while let Some(t) = leg.pc.poll_write() {
                    any = true;
                    self.batch.push(t.transport.peer_addr, Vec::from(t.message));
                }
                while let Some(ev) = leg.pc.poll_event() {
                    any = true;
                    match ev {
                        RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) => {
                            leg.connected = s == RTCPeerConnectionState::Connected;
                        }
                        RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                            let kind = leg
                                .pc
                                .rtp_receiver(init.receiver_id)
                                .map(|r| r.track().kind());
                            if let (Role::Publisher { kinds, .. }, Some(k)) = (&mut leg.role, kind)
                            {
                                kinds.insert(init.ssrc, k);
                            }
                        }
                        _ => {}
                    }
                }
                while let Some(m) = leg.pc.poll_read() {
                    any = true;
                    if let (RTCMessage::RtpPacket(_, p), Role::Publisher { kinds, .. }) =
                        (m.message, &leg.role)
                        && let Some(k) = kinds.get(&p.header.ssrc)
                    {
                        media.push((*k, p));
                    }
                }
                if !any {
                    break;
                }
            }
            leg.deadline = leg.pc.poll_timeout();
            if !media.is_empty() {
                let stream = match &leg.role {
                    Role::Publisher { stream, .. } => stream.clone(),
                    Role::Subscriber { .. } => continue,
                };
                self.counters.received += media.len() as u64;
                self.fan_out(now, &stream, media);
            }
        }
    }

    fn fan_out(&mut self, now: Instant, stream: &str, media: Vec<(RtpCodecKind, rtp::Packet)>) {
        for (i, slot) in self.legs.iter_mut().enumerate() {
            let Some(leg) = slot.as_mut() else { continue };
            let Role::Subscriber {
                stream: want,
                video,
                audio,
            } = &mut leg.role
            else {
                continue;
            };
            if !leg.connected || want.as_deref().is_some_and(|w| w != stream) {
                continue;
            }
            let mut wrote = false;
            for (kind, p) in &media {
                let out = if *kind == RtpCodecKind::Video {
                    video.as_mut()
                } else {
                    audio.as_mut()
                };
                let Some(out) = out else { continue };
                let Some(mut sender) = leg.pc.rtp_sender(out.sender) else {
                    continue;
                };
                let pt = match out.pt {
                    Some(pt) => pt,
                    None => match sender.get_parameters().rtp_parameters.codecs.first() {
                        Some(c) => *out.pt.insert(c.payload_type),
                        None => continue,
                    },
                };
                let mut p = p.clone();
                p.header.ssrc = out.ssrc;
                p.header.payload_type = pt;
                p.header.extension = false;
                p.header.extensions.clear();
                if sender.write_rtp(now, p).is_ok() {
                    self.counters.forwarded += 1;
                    wrote = true;
                } else {
                    self.counters.errors += 1;
                }
            }
            if wrote {
                self.dirty.push(i);
            }
        }
    }

    fn control(&mut self, c: Control) {
        match c {
            Control::Publish {
                stream,
                offer,
                reply,
            } => {
                let r = self.open(
                    offer,
                    Role::Publisher {
                        stream,
                        kinds: HashMap::new(),
                    },
                );
                let _ = reply.send(r.map_err(|e| e.to_string()));
            }
            Control::Play {
                stream,
                offer,
                reply,
            } => {
                let r = self.open(
                    offer,
                    Role::Subscriber {
                        stream,
                        video: None,
                        audio: None,
                    },
                );
                let _ = reply.send(r.map_err(|e| e.to_string()));
            }
            Control::Delete { id, reply } => {
                let found = self
                    .legs
                    .iter()
                    .position(|l| l.as_ref().is_some_and(|l| l.id == id));
                if let Some(i) = found
                    && let Some(mut leg) = self.legs[i].take()
                {
                    let _ = leg.pc.close();
                    while let Some(t) = leg.pc.poll_write() {
                        self.batch.push(t.transport.peer_addr, Vec::from(t.message));
                    }
                    if let Some(u) = &leg.ufrag {
                        self.by_ufrag.remove(u);
                    }
                    self.by_addr.retain(|_, l| *l != i);
                }
                let _ = reply.send(found.is_some());
            }
        }
    }

    /// Answers `offer` on a new connection on the shared socket.
    fn open(&mut self, offer: String, mut role: Role) -> Result<Answer, PeerError> {
        let now = Instant::now();
        let mut pc = build_pc(self.local, Interceptors::None)?;
        let kinds = media_kinds(&offer);
        pc.set_remote_description(
            now,
            RTCSessionDescription::offer(offer).map_err(rtc_err("parse offer"))?,
        )
        .map_err(rtc_err("set remote offer"))?;
        if let Role::Subscriber { video, audio, .. } = &mut role {
            for kind in kinds {
                let slot = if kind == RtpCodecKind::Video {
                    &mut *video
                } else {
                    &mut *audio
                };
                if slot.is_some() {
                    continue;
                }
                let ssrc = rand::random::<u32>() | 1;
                let label = if kind == RtpCodecKind::Video {
                    "video"
                } else {
                    "audio"
                };
                let track = MediaStreamTrack::new(
                    "ideal".into(),
                    label.into(),
                    label.into(),
                    kind,
                    vec![RTCRtpEncodingParameters {
                        rtp_coding_parameters: RTCRtpCodingParameters {
                            ssrc: Some(ssrc),
                            ..Default::default()
                        },
                        ..Default::default()
                    }],
                );
                let sender = pc.add_track(track).map_err(rtc_err("add track"))?;
                *slot = Some(Out {
                    sender,
                    ssrc,
                    pt: None,
                });
            }
        }
        let answer = pc.create_answer(None).map_err(rtc_err("create answer"))?;
        let sdp = answer.sdp.clone();
        pc.set_local_description(now, answer)
            .map_err(rtc_err("set local answer"))?;
        self.next_id += 1;
        let id = format!("s{}-{:08x}", self.next_id, rand::random::<u32>());
        let index = self.legs.len();
        let ufrag = ufrag_of(&sdp);
        if let Some(u) = &ufrag {
            self.by_ufrag.insert(u.clone(), index);
        }
        self.legs.push(Some(Leg {
            id: id.clone(),
            pc,
            ufrag,
            role,
            connected: false,
            deadline: Some(now),
        }));
        self.dirty.push(index);
        Ok(Answer { sdp, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn m_sections_in_order() {
        let sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";
        assert_eq!(
            media_kinds(sdp),
            vec![RtpCodecKind::Video, RtpCodecKind::Audio]
        );
    }
}
