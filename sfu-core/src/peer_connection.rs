//! One WebRTC peer connection (webrtc-rs's sans-IO `rtc` core) as the shard uses it.
//!
//! The wrapper owns the codec and interceptor setup every leg of the SFU needs, supplies
//! the shared UDP port as the only (ICE-lite host) candidate, and turns `rtc`'s poll
//! interface into plain [`PcEvent`]s and [`Transmit`]s. It never reads the clock: every
//! call takes `now`.

use std::{collections::VecDeque, net::SocketAddr, time::Instant};

use bytes::BytesMut;
use rtc::{
    data_channel::{RTCDataChannelId, RTCDataChannelInit},
    interceptor::{
        Attribute, Interceptor, Packet as IPacket, ReceiverReportBuilder, Registry,
        SenderReportBuilder, Slot, StreamInfo, TaggedPacket,
    },
    peer_connection::{
        RTCPeerConnection, RTCPeerConnectionBuilder,
        certificate::RTCCertificate,
        configuration::{
            RTCConfigurationBuilder,
            interceptor_registry::register_default_interceptors,
            media_engine::{
                MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_RTX, MIME_TYPE_VP8, MediaEngine,
            },
            setting_engine::SettingEngineBuilder,
        },
        event::{RTCDataChannelEvent, RTCPeerConnectionEvent, RTCTrackEvent},
        message::{RTCMessage, TaggedRTCMessage},
        sdp::RTCSessionDescription,
        state::RTCPeerConnectionState,
        transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit},
    },
    rtcp, rtp,
    rtp_transceiver::{
        RTCRtpReceiverId, RTCRtpSenderId, RTCRtpTransceiverId,
        rtp_sender::{
            RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability,
            RtpCodecKind,
        },
    },
    sansio::Protocol,
    shared::{TaggedBytesMut, TransportContext, TransportProtocol, error::Error as RtcError},
};

use crate::{demux::PcRole, output::Transmit};

/// Errors from the WebRTC core, with the operation that failed.
#[derive(Debug, thiserror::Error)]
#[error("{op}: {source}")]
pub struct PcError {
    op: &'static str,
    #[source]
    source: RtcError,
}

fn ctx(op: &'static str) -> impl FnOnce(RtcError) -> PcError {
    move |source| PcError { op, source }
}

/// A media track opened by the first RTP packet of an SSRC.
#[derive(Debug, Clone)]
pub struct TrackOpen {
    /// Receiver handling it.
    pub receiver_id: RTCRtpReceiverId,
    /// rtc's track id (the remote msid track id).
    pub track_id: String,
    /// SSRC of the layer.
    pub ssrc: u32,
    /// Simulcast rid, if any.
    pub rid: Option<String>,
    /// mid of the transceiver.
    pub mid: Option<String>,
    /// MIME type of the first packet's payload type.
    pub mime: Option<String>,
    /// Clock rate of that codec.
    pub clock_rate: u32,
    /// Channels of that codec (2 for Opus).
    pub channels: u16,
    /// fmtp line of that codec.
    pub fmtp: String,
}

/// What happened on a connection.
#[derive(Debug)]
pub enum PcEvent {
    /// DTLS is up; media can flow.
    Connected,
    /// The connection failed or closed.
    Failed,
    /// A remote track (or simulcast layer) started.
    Track(TrackOpen),
    /// An RTP packet from the remote.
    Rtp(String, rtp::Packet),
    /// Feedback (PLI/FIR/NACK/REMB) from the remote.
    Rtcp(Vec<Box<dyn rtcp::Packet>>),
    /// A data channel opened.
    DataOpen(RTCDataChannelId, String),
    /// A data channel message.
    Data(RTCDataChannelId, BytesMut),
}

/// Shared settings for building connections.
#[derive(Clone)]
pub struct PcFactory {
    /// One DTLS certificate for every connection of the node.
    pub certificate: RTCCertificate,
    /// The advertised ICE host candidate (node IP + UDP port).
    pub advertised: SocketAddr,
}

impl PcFactory {
    /// Creates a factory with a fresh certificate.
    pub fn new(advertised: SocketAddr) -> Result<Self, PcError> {
        let provider = rtc::crypto::default_provider().map_err(|e| PcError {
            op: "crypto provider",
            source: RtcError::Other(e.to_string()),
        })?;
        let params = rtc::peer_connection::certificate::CertificateParams::new(vec![
            "switchyard".to_owned(),
        ])
        .map_err(|e| PcError {
            op: "certificate params",
            source: RtcError::Other(e.to_string()),
        })?;
        let certificate = RTCCertificate::generate(
            provider.crypto(),
            rtc::crypto::SignatureScheme::EcdsaP256Sha256,
            params,
        )
        .map_err(ctx("generate certificate"))?;
        Ok(Self {
            certificate,
            advertised,
        })
    }
}

fn fb(typ: &str, parameter: &str) -> RTCPFeedback {
    RTCPFeedback {
        typ: typ.into(),
        parameter: parameter.into(),
    }
}

/// The codecs every leg offers/accepts: Opus, VP8, H.264 (two profiles), with RTX.
fn media_engine() -> Result<MediaEngine, RtcError> {
    let mut me = MediaEngine::default();
    let video_fb = vec![
        fb("goog-remb", ""),
        fb("ccm", "fir"),
        fb("nack", ""),
        fb("nack", "pli"),
    ];
    let codec = |mime: &str, rate: u32, ch: u16, fmtp: &str, fbs: Vec<RTCPFeedback>, pt: u8| {
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: mime.into(),
                clock_rate: rate,
                channels: ch,
                sdp_fmtp_line: fmtp.into(),
                rtcp_feedback: fbs,
            },
            payload_type: pt,
        }
    };
    me.register_codec(
        codec(
            MIME_TYPE_OPUS,
            48000,
            2,
            "minptime=10;useinbandfec=1",
            vec![],
            111,
        ),
        RtpCodecKind::Audio,
    )?;
    me.register_codec(
        codec(MIME_TYPE_VP8, 90000, 0, "", video_fb.clone(), 96),
        RtpCodecKind::Video,
    )?;
    me.register_codec(
        codec(MIME_TYPE_RTX, 90000, 0, "apt=96", vec![], 97),
        RtpCodecKind::Video,
    )?;
    me.register_codec(
        codec(
            MIME_TYPE_H264,
            90000,
            0,
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            video_fb.clone(),
            125,
        ),
        RtpCodecKind::Video,
    )?;
    me.register_codec(
        codec(MIME_TYPE_RTX, 90000, 0, "apt=125", vec![], 105),
        RtpCodecKind::Video,
    )?;
    me.register_codec(
        codec(
            MIME_TYPE_H264,
            90000,
            0,
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
            video_fb,
            102,
        ),
        RtpCodecKind::Video,
    )?;
    me.register_codec(
        codec(MIME_TYPE_RTX, 90000, 0, "apt=102", vec![], 103),
        RtpCodecKind::Video,
    )?;
    let ext = |u: &str| RTCRtpHeaderExtensionCapability { uri: u.to_owned() };
    use rtc::sdp::extmap::{ABS_SEND_TIME_URI, AUDIO_LEVEL_URI, SDES_MID_URI};
    me.register_header_extension(ext(SDES_MID_URI), RtpCodecKind::Audio, None)?;
    me.register_header_extension(ext(AUDIO_LEVEL_URI), RtpCodecKind::Audio, None)?;
    me.register_header_extension(ext(ABS_SEND_TIME_URI), RtpCodecKind::Audio, None)?;
    me.register_header_extension(ext(ABS_SEND_TIME_URI), RtpCodecKind::Video, None)?;
    Ok(me)
}

/// Delivers subscriber feedback the SFU acts on (PLI, FIR, NACK, REMB) to the application;
/// `rtc` swallows inbound RTCP otherwise. Only those packets are kept, because `rtc`
/// routes a compound by its first packet.
#[derive(Default)]
pub struct RtcpToApp {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

fn wanted_rtcp(p: &dyn rtcp::Packet) -> bool {
    use rtc::rtcp::{
        payload_feedbacks::{
            full_intra_request::FullIntraRequest, picture_loss_indication::PictureLossIndication,
            receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate,
        },
        transport_feedbacks::transport_layer_nack::TransportLayerNack,
    };
    let a = p.as_any();
    a.is::<PictureLossIndication>()
        || a.is::<FullIntraRequest>()
        || a.is::<TransportLayerNack>()
        || a.is::<ReceiverEstimatedMaximumBitrate>()
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for RtcpToApp {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = RtcError;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), RtcError> {
        if let IPacket::Rtcp(pkts) = &msg.message.packet {
            let keep: Vec<Box<dyn rtcp::Packet>> = pkts
                .iter()
                .filter(|p| wanted_rtcp(p.as_ref()))
                .cloned()
                .collect();
            if keep.is_empty() {
                return Ok(());
            }
            msg.message.packet = IPacket::Rtcp(keep);
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), RtcError> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for RtcpToApp {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}

/// A peer connection of one participant.
pub struct PeerConnection {
    pc: RTCPeerConnection,
    /// Publisher (client offers) or subscriber (we offer).
    pub role: PcRole,
    local: SocketAddr,
    connected: bool,
    failed: bool,
    ufrag: Option<String>,
    candidate: String,
    trickled: bool,
}

impl PeerConnection {
    /// Builds a connection for `role`.
    pub fn new(factory: &PcFactory, role: PcRole, now: Instant) -> Result<Self, PcError> {
        let mut me = media_engine().map_err(ctx("media engine"))?;
        let registry = match role {
            PcRole::Publisher => {
                // NACK generator (we NACK publishers), TWCC feedback so the publisher's
                // bandwidth estimate can grow, SR/RR, mid/rid/rrid for simulcast.
                register_default_interceptors(Registry::new(), &mut me)
                    .map_err(ctx("interceptors"))?
                    .with(
                        Slot::from(500usize),
                        crate::simulcast_rr_filter::SimulcastRrFilter::default(),
                    )
            }
            PcRole::Subscriber => {
                rtc::peer_connection::configuration::interceptor_registry::configure_simulcast_extension_headers(
                    &mut me,
                )
                .map_err(ctx("extensions"))?;
                Registry::new()
                    .with(Slot::ReceiverReport, ReceiverReportBuilder::new().build())
                    .with(Slot::SenderReport, SenderReportBuilder::new().build())
                    .with(Slot::from(14_000usize), RtcpToApp::default())
            }
        };
        let setting = SettingEngineBuilder::new().with_lite(true).build();
        let config = RTCConfigurationBuilder::new()
            .with_certificates(vec![factory.certificate.clone()])
            .build();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(config)
            .with_media_engine(me)
            .with_setting_engine(setting)
            .with_interceptor_registry(registry)
            .build(now)
            .map_err(ctx("build peer connection"))?;
        let cand = CandidateHostConfig {
            base_config: CandidateConfig {
                network: "udp".into(),
                address: factory.advertised.ip().to_string(),
                port: factory.advertised.port(),
                component: 1,
                ..Default::default()
            },
            ..Default::default()
        }
        .new_candidate_host()
        .map_err(ctx("host candidate"))?;
        let init = RTCIceCandidate::from(&cand)
            .to_json()
            .map_err(ctx("candidate json"))?;
        let candidate = init.candidate.clone();
        pc.add_local_candidate(init)
            .map_err(ctx("add local candidate"))?;
        Ok(Self {
            pc,
            role,
            local: factory.advertised,
            connected: false,
            failed: false,
            ufrag: None,
            candidate,
            trickled: false,
        })
    }

    /// DTLS connected at least once and not failed since.
    pub fn is_connected(&self) -> bool {
        self.connected && !self.failed
    }

    /// The current remote description's SDP.
    pub fn remote_sdp(&self) -> Option<String> {
        self.pc.remote_description().map(|d| d.sdp.clone())
    }

    /// Local ICE ufrag of the current local description.
    pub fn ufrag(&self) -> Option<&str> {
        self.ufrag.as_deref()
    }

    fn refresh_ufrag(&mut self) {
        self.ufrag = self
            .pc
            .local_description()
            .and_then(|d| d.unmarshal().ok())
            .and_then(|sd| {
                sd.attribute("ice-ufrag").cloned().or_else(|| {
                    sd.media_descriptions
                        .iter()
                        .find_map(|m| m.attribute("ice-ufrag").flatten().map(str::to_owned))
                })
            });
    }

    /// Our host candidate as trickle JSON (`candidate`, `sdpMid`, `sdpMLineIndex`: the Rust
    /// and Python SDKs require all three), the first time it is asked for after `sdp` was
    /// sent. The candidate is in the SDP too; trickling it as well is what LiveKit does.
    pub fn trickle_once(&mut self, sdp: &str) -> Option<String> {
        if self.trickled {
            return None;
        }
        self.trickled = true;
        let mid = sdp
            .lines()
            .find_map(|l| l.trim_end_matches('\r').strip_prefix("a=mid:"))
            .unwrap_or("0");
        let c = if self.candidate.starts_with("candidate:") {
            self.candidate.clone()
        } else {
            format!("candidate:{}", self.candidate)
        };
        Some(serde_json::json!({ "candidate": c, "sdpMid": mid, "sdpMLineIndex": 0 }).to_string())
    }

    /// Creates the data channels the server offers on a subscriber connection.
    pub fn create_data_channel(
        &mut self,
        label: &str,
        reliable: bool,
    ) -> Result<RTCDataChannelId, PcError> {
        let init = RTCDataChannelInit {
            ordered: reliable,
            max_retransmits: if reliable { None } else { Some(0) },
            ..Default::default()
        };
        Ok(self
            .pc
            .create_data_channel(label, Some(init))
            .map_err(ctx("create data channel"))?
            .id())
    }

    /// Creates and applies an offer; returns its SDP.
    pub fn create_offer(&mut self, now: Instant) -> Result<String, PcError> {
        let offer = self.pc.create_offer(None).map_err(ctx("create offer"))?;
        self.apply_local(now, offer)
    }

    /// Applies the remote answer to our offer.
    pub fn accept_answer(&mut self, now: Instant, sdp: String) -> Result<(), PcError> {
        let answer = RTCSessionDescription::answer(sdp).map_err(ctx("parse answer"))?;
        self.pc
            .set_remote_description(now, answer)
            .map_err(ctx("set remote answer"))
    }

    /// Applies a remote offer and returns our answer's SDP.
    pub fn answer_offer(&mut self, now: Instant, sdp: String) -> Result<String, PcError> {
        let offer = RTCSessionDescription::offer(sdp).map_err(ctx("parse offer"))?;
        self.pc
            .set_remote_description(now, offer)
            .map_err(ctx("set remote offer"))?;
        let answer = self.pc.create_answer(None).map_err(ctx("create answer"))?;
        self.apply_local(now, answer)
    }

    /// Applies a remote offer without answering yet (WHEP adds its senders in between).
    pub fn set_remote_offer(&mut self, now: Instant, sdp: String) -> Result<(), PcError> {
        let offer = RTCSessionDescription::offer(sdp).map_err(ctx("parse offer"))?;
        self.pc
            .set_remote_description(now, offer)
            .map_err(ctx("set remote offer"))
    }

    /// Creates and applies the answer to the remote offer; returns its SDP.
    pub fn answer(&mut self, now: Instant) -> Result<String, PcError> {
        let answer = self.pc.create_answer(None).map_err(ctx("create answer"))?;
        self.apply_local(now, answer)
    }

    /// Attaches a sender to the first transceiver of its kind the remote offered that has
    /// none yet (W3C `addTrack`), so the answer sends on the viewer's own m-section.
    pub fn add_track(
        &mut self,
        track: rtc::media_stream::MediaStreamTrack,
    ) -> Result<RTCRtpSenderId, PcError> {
        self.pc.add_track(track).map_err(ctx("add track"))
    }

    /// Sets our local description and re-reads the ICE ufrag it carries.
    fn apply_local(
        &mut self,
        now: Instant,
        desc: RTCSessionDescription,
    ) -> Result<String, PcError> {
        let sdp = desc.sdp.clone();
        self.pc
            .set_local_description(now, desc)
            .map_err(ctx("set local description"))?;
        self.refresh_ufrag();
        Ok(sdp)
    }

    /// Adds a trickled remote candidate (JSON `RTCIceCandidateInit`). Bad input is an error,
    /// never a panic.
    pub fn add_remote_candidate(&mut self, json: &str) -> Result<(), PcError> {
        let init: RTCIceCandidateInit = serde_json::from_str(json).map_err(|e| PcError {
            op: "parse candidate",
            source: RtcError::Other(e.to_string()),
        })?;
        if init.candidate.is_empty() {
            return Ok(());
        }
        self.pc
            .add_remote_candidate(init)
            .map_err(ctx("add remote candidate"))
    }

    /// Feeds a datagram received on the shared socket.
    pub fn handle_datagram(&mut self, now: Instant, remote: SocketAddr, data: &[u8]) {
        let msg = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr: self.local,
                peer_addr: remote,
                ecn: None,
                transport_protocol: TransportProtocol::UDP,
            },
            message: BytesMut::from(data),
        };
        // rtc logs and swallows errors inside the pipeline; nothing to handle here.
        let _ = self.pc.handle_read(msg);
    }

    /// Advances timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = self.pc.handle_timeout(now);
    }

    /// Next deadline.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.pc.poll_timeout()
    }

    /// Adds a send-only down-track; returns its sender.
    pub fn add_send_track(
        &mut self,
        track: rtc::media_stream::MediaStreamTrack,
    ) -> Result<RTCRtpSenderId, PcError> {
        use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
        let tid = self
            .pc
            .add_transceiver_from_track(
                track,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendonly,
                    ..Default::default()
                }),
            )
            .map_err(ctx("add transceiver"))?;
        Ok(RTCRtpSenderId::from(tid))
    }

    /// Removes a down-track.
    pub fn remove_send_track(&mut self, sender: RTCRtpSenderId) -> Result<(), PcError> {
        self.pc.remove_track(sender).map_err(ctx("remove track"))
    }

    /// mid of the transceiver behind a sender.
    pub fn sender_mid(&mut self, sender: RTCRtpSenderId) -> Option<String> {
        self.pc
            .rtp_transceiver(RTCRtpTransceiverId::from(sender))?
            .mid()
            .clone()
    }

    /// Negotiated payload type for `mime` on a sender (after the answer).
    pub fn sender_payload_type(
        &mut self,
        sender: RTCRtpSenderId,
        mime: &str,
        fmtp: &str,
    ) -> Option<u8> {
        let mut s = self.pc.rtp_sender(sender)?;
        let codecs = &s.get_parameters().rtp_parameters.codecs;
        codecs
            .iter()
            .find(|c| {
                c.rtp_codec.mime_type.eq_ignore_ascii_case(mime)
                    && c.rtp_codec.sdp_fmtp_line == fmtp
            })
            .or_else(|| {
                codecs
                    .iter()
                    .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
            })
            .map(|c| c.payload_type)
    }

    /// Writes RTP on a down-track. The packet must already carry this leg's SSRC and PT.
    pub fn write_rtp(&mut self, now: Instant, sender: RTCRtpSenderId, pkt: rtp::Packet) -> bool {
        match self.pc.rtp_sender(sender) {
            Some(mut s) => s.write_rtp(now, pkt).is_ok(),
            None => false,
        }
    }

    /// Sends RTCP (PLI, ...) to the remote sender behind `receiver`.
    pub fn write_rtcp(
        &mut self,
        now: Instant,
        receiver: RTCRtpReceiverId,
        pkts: Vec<Box<dyn rtcp::Packet>>,
    ) {
        if let Some(mut r) = self.pc.rtp_receiver(receiver) {
            let _ = r.write_rtcp(now, pkts);
        }
    }

    /// Sends a message on a data channel; false if the channel is not open.
    pub fn send_data(&mut self, now: Instant, channel: RTCDataChannelId, data: &[u8]) -> bool {
        match self.pc.data_channel(channel) {
            Some(mut dc) => dc.send(now, BytesMut::from(data)).is_ok(),
            None => false,
        }
    }

    /// Closes the connection (queues close alerts; drain afterwards).
    pub fn close(&mut self) {
        let _ = self.pc.close();
    }

    fn track_open(&mut self, init: rtc::peer_connection::event::RTCTrackEventInit) -> TrackOpen {
        let mid = self
            .pc
            .rtp_transceiver(RTCRtpTransceiverId::from(init.receiver_id))
            .and_then(|t| t.mid().clone());
        let codec = self.pc.rtp_receiver(init.receiver_id).and_then(|mut r| {
            r.track()
                .codec(init.ssrc)
                .cloned()
                .filter(|c| !c.mime_type.is_empty())
                .or_else(|| {
                    r.get_parameters()
                        .rtp_parameters
                        .codecs
                        .first()
                        .map(|c| c.rtp_codec.clone())
                })
        });
        TrackOpen {
            receiver_id: init.receiver_id,
            track_id: init.track_id,
            ssrc: init.ssrc,
            rid: init.rid,
            mid,
            mime: codec.as_ref().map(|c| c.mime_type.clone()),
            clock_rate: codec.as_ref().map(|c| c.clock_rate).unwrap_or(90000),
            channels: codec.as_ref().map(|c| c.channels).unwrap_or(0),
            fmtp: codec.map(|c| c.sdp_fmtp_line).unwrap_or_default(),
        }
    }

    /// Drains everything `rtc` has to say until it is quiet.
    pub fn drain(&mut self, transmits: &mut Vec<Transmit>, events: &mut Vec<PcEvent>) {
        loop {
            let mut any = false;
            while let Some(t) = self.pc.poll_write() {
                any = true;
                transmits.push(Transmit {
                    local: self.local,
                    remote: t.transport.peer_addr,
                    data: t.message.into(),
                });
            }
            while let Some(e) = self.pc.poll_event() {
                any = true;
                match e {
                    RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) => match s {
                        RTCPeerConnectionState::Connected => {
                            self.connected = true;
                            events.push(PcEvent::Connected);
                        }
                        RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
                            if !self.failed =>
                        {
                            self.failed = true;
                            events.push(PcEvent::Failed);
                        }
                        _ => {}
                    },
                    RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                        let t = self.track_open(init);
                        events.push(PcEvent::Track(t));
                    }
                    RTCPeerConnectionEvent::OnDataChannel(RTCDataChannelEvent::OnOpen(id)) => {
                        let label = self
                            .pc
                            .data_channel(id)
                            .map(|d| d.label().to_owned())
                            .unwrap_or_default();
                        events.push(PcEvent::DataOpen(id, label));
                    }
                    _ => {}
                }
            }
            while let Some(TaggedRTCMessage { message, .. }) = self.pc.poll_read() {
                any = true;
                match message {
                    RTCMessage::RtpPacket(track, pkt) => events.push(PcEvent::Rtp(track, pkt)),
                    RTCMessage::RtcpPacket(_, pkts) => events.push(PcEvent::Rtcp(pkts)),
                    RTCMessage::DataChannelMessage(id, m) => events.push(PcEvent::Data(id, m.data)),
                    _ => {}
                }
            }
            if !any {
                break;
            }
        }
    }
}
