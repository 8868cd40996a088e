//! The forwarding loop of the ideal forwarder: one task owns every connection; each
//! connection has its own UDP socket, read by a small reader task that hands datagrams to
//! the loop. A publisher's RTP is decrypted once (by its connection) and written to every
//! subscriber's connection with only the SSRC and payload type rewritten, which encrypts
//! it with that subscriber's SRTP context; nothing else happens per packet. Connections
//! run no interceptors (no NACK, reports, TWCC, keyframe gating, layer selection):
//! exactly the work every SFU must do, and no more.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    rc::Rc,
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
use tokio::{
    net::UdpSocket,
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use crate::loadgen::peer::{Interceptors, PeerError, bind_socket, build_pc, rtc_err};

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
    socket: Rc<UdpSocket>,
    local: SocketAddr,
    role: Role,
    reader: JoinHandle<()>,
    connected: bool,
    deadline: Option<Instant>,
}

struct Datagram {
    leg: usize,
    from: SocketAddr,
    data: BytesMut,
    at: Instant,
}

/// What the loop did (printed at exit).
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    /// RTP packets read from publishers.
    pub received: u64,
    /// RTP packets written to subscribers.
    pub forwarded: u64,
    /// Writes or sends that failed.
    pub errors: u64,
}

/// The forwarder's state; [`Forwarder::run`] drives it.
pub struct Forwarder {
    ip: IpAddr,
    legs: Vec<Option<Leg>>,
    dirty: Vec<usize>,
    tx: mpsc::UnboundedSender<Datagram>,
    rx: mpsc::UnboundedReceiver<Datagram>,
    next_id: u64,
    /// Counters.
    pub counters: Counters,
}

const MAX_SLEEP: Duration = Duration::from_millis(250);
const MIN_TIMER: Duration = Duration::from_millis(1);

async fn reader(leg: usize, socket: Rc<UdpSocket>, tx: mpsc::UnboundedSender<Datagram>) {
    let mut buf = vec![0u8; 2048];
    while let Ok((n, from)) = socket.recv_from(&mut buf).await {
        let d = Datagram {
            leg,
            from,
            data: BytesMut::from(&buf[..n]),
            at: Instant::now(),
        };
        if tx.send(d).is_err() {
            return;
        }
    }
}

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
    /// A forwarder whose connections bind to `ip`.
    pub fn new(ip: IpAddr) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            ip,
            legs: Vec::new(),
            dirty: Vec::new(),
            tx,
            rx,
            next_id: 0,
            counters: Counters::default(),
        }
    }

    /// Serves `control` requests and forwards media until `control` closes.
    pub async fn run(&mut self, mut control: mpsc::UnboundedReceiver<Control>) {
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
                d = self.rx.recv() => {
                    if let Some(d) = d {
                        self.input(d);
                        while let Ok(d) = self.rx.try_recv() {
                            self.input(d);
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
        }
    }

    fn input(&mut self, d: Datagram) {
        let Some(leg) = self.legs.get_mut(d.leg).and_then(Option::as_mut) else {
            return;
        };
        let msg = TaggedBytesMut {
            now: d.at,
            transport: TransportContext {
                local_addr: leg.local,
                peer_addr: d.from,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: d.data,
        };
        if leg.pc.handle_read(msg).is_err() {
            self.counters.errors += 1;
        }
        self.dirty.push(d.leg);
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
                    if leg
                        .socket
                        .try_send_to(&t.message, t.transport.peer_addr)
                        .is_err()
                    {
                        self.counters.errors += 1;
                    }
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
                    leg.reader.abort();
                    let _ = leg.pc.close();
                    while let Some(t) = leg.pc.poll_write() {
                        let _ = leg.socket.try_send_to(&t.message, t.transport.peer_addr);
                    }
                }
                let _ = reply.send(found.is_some());
            }
        }
    }

    /// Answers `offer` on a new connection with its own socket.
    fn open(&mut self, offer: String, mut role: Role) -> Result<Answer, PeerError> {
        let std_sock = bind_socket(self.ip)?;
        let ip = self.ip;
        let local = std_sock
            .local_addr()
            .map_err(|source| PeerError::Socket { ip, source })?;
        let socket = Rc::new(
            UdpSocket::from_std(std_sock).map_err(|source| PeerError::Socket { ip, source })?,
        );
        let now = Instant::now();
        let mut pc = build_pc(local, Interceptors::None)?;
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
        let reader = tokio::task::spawn_local(reader(index, socket.clone(), self.tx.clone()));
        self.legs.push(Some(Leg {
            id: id.clone(),
            pc,
            socket,
            local,
            role,
            reader,
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
