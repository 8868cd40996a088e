//! A WHIP publisher without an encoder: VP8-shaped frames at a target bit rate (constant
//! payload size, as many packets per frame as the budget allows, marker on the last one,
//! a keyframe every `keyframe_interval` or right after a PLI/FIR; packets paced evenly over
//! the frame interval, or sent in one burst per frame), plus optional Opus-shaped
//! packets every 20 ms. Every packet carries a probe with its send time, and the send
//! times are kept so the report knows exactly how many packets fell into the window.

use std::{
    cell::RefCell,
    rc::Rc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use rtc::{
    media_stream::MediaStreamTrack,
    peer_connection::{RTCPeerConnection, message::RTCMessage},
    rtcp::payload_feedbacks::{
        full_intra_request::FullIntraRequest, picture_loss_indication::PictureLossIndication,
    },
    rtp,
    rtp_transceiver::{
        RTCRtpSenderId,
        rtp_sender::{RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind},
    },
};

use super::{
    clock::Clock,
    payload::{self, Kind, Probe, Vp8Packet},
    peer::{PeerError, Role},
};

/// What each publisher sends.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Video payload bit rate (RTP payload bytes only, no headers).
    pub bitrate_bps: u64,
    /// Video frames per second.
    pub fps: u32,
    /// Video payload size per packet, bytes.
    pub packet_size: usize,
    /// Send an Opus-shaped stream too.
    pub audio: bool,
    /// Audio payload size, bytes (one packet per 20 ms).
    pub audio_size: usize,
    /// Periodic keyframes.
    pub keyframe_interval: Duration,
    /// Spread each frame's packets evenly over the frame interval (as a sender's pacer
    /// does) instead of sending them in one burst.
    pub paced: bool,
}

/// What a publisher did, read by the run at the end.
#[derive(Debug, Default)]
pub struct PublisherStats {
    /// The connection came up.
    pub connected: bool,
    /// Send time (generator clock, ns) of each packet, by counter, per kind.
    pub sent_ns: [Vec<u64>; 2],
    /// Keyframes sent.
    pub keyframes: u64,
    /// PLI/FIR received from the server.
    pub keyframe_requests: u64,
    /// `write_rtp` refusals.
    pub write_errors: u64,
}

impl PublisherStats {
    /// Packets (both kinds) whose send time lies in `[start_ns, end_ns)`.
    pub fn sent_between(&self, start_ns: u64, end_ns: u64) -> u64 {
        self.sent_ns
            .iter()
            .map(|v| v.iter().filter(|&&t| t >= start_ns && t < end_ns).count() as u64)
            .sum()
    }
}

/// The video frame being sent (paced: its packets spread over the frame interval).
struct Frame {
    ts: u32,
    picture_id: u16,
    keyframe: bool,
    packets: usize,
    sent: usize,
    spacing: Duration,
    next: Instant,
}

struct Stream {
    sender: RTCRtpSenderId,
    ssrc: u32,
    pt: Option<u8>,
    seq: u16,
    ts: u32,
}

const AUDIO_PTIME: Duration = Duration::from_millis(20);
/// Behind by more than this (the loop stalled), skip instead of bursting to catch up.
const MAX_CATCH_UP: Duration = Duration::from_millis(200);

/// The publisher role of one peer.
pub struct Publisher {
    index: u32,
    cfg: MediaConfig,
    clock: Clock,
    stats: Rc<RefCell<PublisherStats>>,
    video: Stream,
    audio: Option<Stream>,
    next_frame: Option<Instant>,
    frame: Option<Frame>,
    next_audio: Option<Instant>,
    last_keyframe: Option<Instant>,
    keyframe_requested: bool,
    budget: f64,
    picture_id: u16,
}

fn add_track(pc: &mut RTCPeerConnection, video: bool, label: &str) -> Result<Stream, PeerError> {
    let (kind, codec) = if video {
        (
            RtpCodecKind::Video,
            RTCRtpCodec {
                mime_type: "video/VP8".into(),
                clock_rate: 90_000,
                ..Default::default()
            },
        )
    } else {
        (
            RtpCodecKind::Audio,
            RTCRtpCodec {
                mime_type: "audio/opus".into(),
                clock_rate: 48_000,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
                ..Default::default()
            },
        )
    };
    let ssrc = rand::random::<u32>() | 1;
    let coding = RTCRtpEncodingParameters {
        rtp_coding_parameters: RTCRtpCodingParameters {
            ssrc: Some(ssrc),
            ..Default::default()
        },
        codec,
        ..Default::default()
    };
    let track = MediaStreamTrack::new(
        "loadgen".into(),
        label.into(),
        label.into(),
        kind,
        vec![coding],
    );
    let sender = pc.add_track(track).map_err(|source| PeerError::Rtc {
        op: "add track",
        source,
    })?;
    Ok(Stream {
        sender,
        ssrc,
        pt: None,
        seq: rand::random(),
        ts: rand::random(),
    })
}

impl Publisher {
    /// Adds the tracks to `pc` (before its offer is made).
    pub fn new(
        pc: &mut RTCPeerConnection,
        index: u32,
        cfg: MediaConfig,
        clock: Clock,
        stats: Rc<RefCell<PublisherStats>>,
    ) -> Result<Self, PeerError> {
        let video = add_track(pc, true, "video")?;
        let audio = if cfg.audio {
            Some(add_track(pc, false, "audio")?)
        } else {
            None
        };
        Ok(Self {
            index,
            cfg,
            clock,
            stats,
            video,
            audio,
            next_frame: None,
            frame: None,
            next_audio: None,
            last_keyframe: None,
            keyframe_requested: false,
            budget: 0.0,
            picture_id: rand::random::<u16>() & 0x7fff,
        })
    }

    fn frame_interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / f64::from(self.cfg.fps.max(1)))
    }

    /// Decides the next frame: keyframe or not, how many packets, its RTP timestamp.
    fn start_frame(&mut self, now: Instant) -> Frame {
        let keyframe = self.keyframe_requested
            || self
                .last_keyframe
                .is_none_or(|t| now.duration_since(t) >= self.cfg.keyframe_interval);
        if keyframe {
            self.keyframe_requested = false;
            self.last_keyframe = Some(now);
            self.stats.borrow_mut().keyframes += 1;
        }
        let size = self.cfg.packet_size;
        self.budget += self.cfg.bitrate_bps as f64 / 8.0 / f64::from(self.cfg.fps.max(1));
        let packets = ((self.budget / size as f64).floor() as usize).max(1);
        self.budget -= (packets * size) as f64;
        let picture_id = self.picture_id;
        self.picture_id = (self.picture_id + 1) & 0x7fff;
        let ts = self.video.ts;
        self.video.ts = ts.wrapping_add(90_000 / self.cfg.fps.max(1));
        Frame {
            ts,
            picture_id,
            keyframe,
            packets,
            sent: 0,
            spacing: self.frame_interval() / packets as u32,
            next: now,
        }
    }

    /// Sends the next packet of `f`.
    fn send_packet(&mut self, pc: &mut RTCPeerConnection, now: Instant, f: &mut Frame) {
        let mut stats = self.stats.borrow_mut();
        let probe = Probe {
            publisher: self.index,
            kind: Kind::Video,
            counter: stats.sent_ns[Kind::Video.index()].len() as u64,
            sent_ns: self.clock.now_ns(),
        };
        let data = payload::vp8(
            self.cfg.packet_size,
            Vp8Packet {
                first: f.sent == 0,
                keyframe: f.keyframe,
                picture_id: f.picture_id,
            },
            &probe,
        );
        f.sent += 1;
        f.next += f.spacing;
        if write(pc, &mut self.video, now, f.sent == f.packets, f.ts, data) {
            stats.sent_ns[Kind::Video.index()].push(probe.sent_ns);
        } else {
            stats.write_errors += 1;
        }
    }

    /// Sends the current frame's packets that are due (all of them if `all`).
    fn send_due_packets(&mut self, pc: &mut RTCPeerConnection, now: Instant, all: bool) {
        let Some(mut f) = self.frame.take() else {
            return;
        };
        while f.sent < f.packets && (all || f.next <= now) {
            self.send_packet(pc, now, &mut f);
        }
        if f.sent < f.packets {
            self.frame = Some(f);
        }
    }

    fn send_audio(&mut self, pc: &mut RTCPeerConnection, now: Instant) {
        let Some(stream) = self.audio.as_mut() else {
            return;
        };
        let ts = stream.ts;
        stream.ts = ts.wrapping_add(960);
        let mut stats = self.stats.borrow_mut();
        let probe = Probe {
            publisher: self.index,
            kind: Kind::Audio,
            counter: stats.sent_ns[Kind::Audio.index()].len() as u64,
            sent_ns: self.clock.now_ns(),
        };
        let data = payload::opus(self.cfg.audio_size, &probe);
        if write(pc, stream, now, false, ts, data) {
            stats.sent_ns[Kind::Audio.index()].push(probe.sent_ns);
        } else {
            stats.write_errors += 1;
        }
    }
}

/// Writes one packet on `stream`; false if the connection refused it.
fn write(
    pc: &mut RTCPeerConnection,
    stream: &mut Stream,
    now: Instant,
    marker: bool,
    ts: u32,
    payload: Vec<u8>,
) -> bool {
    let Some(mut sender) = pc.rtp_sender(stream.sender) else {
        return false;
    };
    let pt = match stream.pt {
        Some(pt) => pt,
        None => {
            let Some(c) = sender.get_parameters().rtp_parameters.codecs.first() else {
                return false;
            };
            stream.pt = Some(c.payload_type);
            c.payload_type
        }
    };
    let seq = stream.seq;
    stream.seq = seq.wrapping_add(1);
    let header = rtp::header::Header {
        version: 2,
        payload_type: pt,
        sequence_number: seq,
        timestamp: ts,
        ssrc: stream.ssrc,
        marker,
        ..Default::default()
    };
    sender
        .write_rtp(
            now,
            rtp::Packet {
                header,
                payload: Bytes::from(payload),
            },
        )
        .is_ok()
}

/// Advances a schedule past `now`: how many slots are due, skipping a stalled backlog.
fn due(next: &mut Instant, interval: Duration, now: Instant) -> u32 {
    if now.duration_since(*next) > MAX_CATCH_UP {
        *next = now + interval;
        return 1;
    }
    let mut n = 0;
    while *next <= now {
        *next += interval;
        n += 1;
    }
    n
}

impl Role for Publisher {
    fn on_connected(&mut self, now: Instant) {
        self.stats.borrow_mut().connected = true;
        self.next_frame.get_or_insert(now);
        if self.audio.is_some() {
            self.next_audio.get_or_insert(now);
        }
    }

    fn on_message(&mut self, _now: Instant, msg: RTCMessage) {
        if let RTCMessage::RtcpPacket(_, pkts) = msg {
            let wants_key = pkts.iter().any(|p| {
                let a = p.as_any();
                a.is::<PictureLossIndication>() || a.is::<FullIntraRequest>()
            });
            if wants_key {
                self.keyframe_requested = true;
                self.stats.borrow_mut().keyframe_requests += 1;
            }
        }
    }

    fn next_tick(&self) -> Option<Instant> {
        [
            self.next_frame,
            self.frame.as_ref().map(|f| f.next),
            self.next_audio,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn on_tick(&mut self, pc: &mut RTCPeerConnection, now: Instant) {
        if let Some(mut next) = self.next_frame {
            let n = due(&mut next, self.frame_interval(), now);
            self.next_frame = Some(next);
            for _ in 0..n {
                // A frame still going out when the next one starts is finished first.
                self.send_due_packets(pc, now, true);
                self.frame = Some(self.start_frame(now));
                self.send_due_packets(pc, now, !self.cfg.paced);
            }
        }
        self.send_due_packets(pc, now, false);
        if let Some(mut next) = self.next_audio {
            let n = due(&mut next, AUDIO_PTIME, now);
            self.next_audio = Some(next);
            for _ in 0..n {
                self.send_audio(pc, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_catches_up_briefly_and_skips_a_stall() {
        let t0 = Instant::now();
        let iv = Duration::from_millis(20);
        let mut next = t0;
        assert_eq!(due(&mut next, iv, t0), 1);
        assert_eq!(next, t0 + iv);
        assert_eq!(due(&mut next, iv, t0 + Duration::from_millis(10)), 0);
        assert_eq!(due(&mut next, iv, t0 + Duration::from_millis(65)), 3);
        assert_eq!(next, t0 + Duration::from_millis(80));
        let late = t0 + Duration::from_secs(5);
        assert_eq!(due(&mut next, iv, late), 1);
        assert_eq!(next, late + iv);
    }

    #[test]
    fn window_counts_by_send_time() {
        let s = PublisherStats {
            sent_ns: [vec![1, 5, 10, 15], vec![2, 11]],
            ..Default::default()
        };
        assert_eq!(s.sent_between(5, 15), 3);
        assert_eq!(s.sent_between(0, u64::MAX), 6);
    }
}
