//! One generator peer: a webrtc-rs `rtc` (sans-IO) connection on its own UDP socket, and
//! the loop that drives it.
//!
//! The loop follows the sans-IO contract (shared/docs/rtc-sans-io-guide.md §2): after
//! every input (datagram, timer, media written) drain `poll_write` → `poll_event` →
//! `poll_read` until a whole pass yields nothing, then sleep until the earliest of the
//! connection's `poll_timeout` and the role's own next tick (a publisher's next frame).
//! A full ICE agent on the client side needs no demux: one socket, one connection.
//! Inbound RTCP is swallowed by `rtc` unless an interceptor marks it for the application,
//! so publishers install `RtcpToApp` to see the server's keyframe requests.

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use bytes::BytesMut;
use rtc::{
    interceptor::{Registry, Slot},
    peer_connection::{
        RTCPeerConnection, RTCPeerConnectionBuilder,
        configuration::{
            RTCConfigurationBuilder, interceptor_registry::register_default_interceptors,
            media_engine::MediaEngine,
        },
        event::RTCPeerConnectionEvent,
        message::RTCMessage,
        sdp::RTCSessionDescription,
        state::RTCPeerConnectionState,
        transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate},
    },
    sansio::Protocol,
    shared::{TaggedBytesMut, TransportContext, TransportProtocol, error::Error as RtcError},
};
use tokio::{net::UdpSocket, sync::watch};

/// Setting a peer up failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The WebRTC core refused a step.
    #[error("{op}: {source}")]
    Rtc {
        /// Which step.
        op: &'static str,
        /// The core's error.
        source: RtcError,
    },
    /// The socket could not be opened.
    #[error("UDP socket on {ip}: {source}")]
    Socket {
        /// Local address asked for.
        ip: IpAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Wraps a core error with the step that failed.
pub fn rtc_err(op: &'static str) -> impl FnOnce(RtcError) -> PeerError {
    move |source| PeerError::Rtc { op, source }
}

/// What a peer does with its connection besides keeping it alive.
pub trait Role {
    /// The connection reached `Connected`.
    fn on_connected(&mut self, _now: Instant) {}
    /// Media or delivered RTCP arrived (`now`: when its datagram was read).
    fn on_message(&mut self, now: Instant, msg: RTCMessage);
    /// When the role wants `on_tick` next (only asked while connected).
    fn next_tick(&self) -> Option<Instant> {
        None
    }
    /// The tick is due: write media.
    fn on_tick(&mut self, _pc: &mut RTCPeerConnection, _now: Instant) {}
}

/// Counters of one peer's loop (not per packet in any log: read at the end).
#[derive(Debug, Default, Clone, Copy)]
pub struct PeerCounters {
    /// Datagrams read.
    pub datagrams_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Errors from the core or the socket (kept going).
    pub errors: u64,
}

/// Which interceptors a connection runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interceptors {
    /// `rtc`'s defaults (NACK, RTCP reports, TWCC receiver): what a client runs.
    Default,
    /// The defaults plus delivery of PLI/FIR/NACK/REMB to the application (publishers).
    DefaultWithFeedback,
    /// None: SRTP only (the ideal forwarder).
    None,
}

/// A non-blocking UDP socket on `ip`, any port.
pub fn bind_socket(ip: IpAddr) -> Result<std::net::UdpSocket, PeerError> {
    let err = |source| PeerError::Socket { ip, source };
    let s = std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).map_err(err)?;
    s.set_nonblocking(true).map_err(err)?;
    Ok(s)
}

/// A connection with default codecs whose one host candidate is `local`.
pub fn build_pc(
    local: SocketAddr,
    interceptors: Interceptors,
) -> Result<RTCPeerConnection, PeerError> {
    let mut me = MediaEngine::default();
    me.register_default_codecs()
        .map_err(rtc_err("register codecs"))?;
    let registry = match interceptors {
        Interceptors::None => Registry::new(),
        Interceptors::Default => register_default_interceptors(Registry::new(), &mut me)
            .map_err(rtc_err("register interceptors"))?,
        Interceptors::DefaultWithFeedback => {
            register_default_interceptors(Registry::new(), &mut me)
                .map_err(rtc_err("register interceptors"))?
                .with(
                    Slot::from(14_000usize),
                    sfu_core::peer_connection::RtcpToApp::default(),
                )
        }
    };
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(me)
        .with_interceptor_registry(registry)
        .build(Instant::now())
        .map_err(rtc_err("build peer connection"))?;
    let cand = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".into(),
            address: local.ip().to_string(),
            port: local.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()
    .map_err(rtc_err("host candidate"))?;
    let init = RTCIceCandidate::from(&cand)
        .to_json()
        .map_err(rtc_err("candidate to JSON"))?;
    pc.add_local_candidate(init)
        .map_err(rtc_err("add local candidate"))?;
    Ok(pc)
}

/// A client connection and its socket.
pub struct Peer {
    /// The connection.
    pub pc: RTCPeerConnection,
    socket: UdpSocket,
    local: SocketAddr,
    state: RTCPeerConnectionState,
    /// What the loop saw.
    pub counters: PeerCounters,
}

/// Longest sleep of the loop, so a stop or a late timer is never missed for long.
const MAX_SLEEP: Duration = Duration::from_millis(250);
/// Shortest wait for a connection timer that is already due (anti-spin, as the async
/// `webrtc` driver does).
const MIN_TIMER: Duration = Duration::from_millis(1);

impl Peer {
    /// Opens a socket on `ip` (any port), builds a connection with default codecs and
    /// `interceptors`, and adds the socket as its host candidate.
    pub fn new(ip: IpAddr, interceptors: Interceptors) -> Result<Self, PeerError> {
        let std_sock = bind_socket(ip)?;
        let local = std_sock
            .local_addr()
            .map_err(|source| PeerError::Socket { ip, source })?;
        let socket =
            UdpSocket::from_std(std_sock).map_err(|source| PeerError::Socket { ip, source })?;
        Ok(Self {
            pc: build_pc(local, interceptors)?,
            socket,
            local,
            state: RTCPeerConnectionState::New,
            counters: PeerCounters::default(),
        })
    }

    /// Creates the offer, sets it as local description and returns its SDP.
    pub fn offer(&mut self) -> Result<String, PeerError> {
        let offer = self
            .pc
            .create_offer(None)
            .map_err(rtc_err("create offer"))?;
        let sdp = offer.sdp.clone();
        self.pc
            .set_local_description(Instant::now(), offer)
            .map_err(rtc_err("set local offer"))?;
        Ok(sdp)
    }

    /// Applies the server's SDP answer.
    pub fn apply_answer(&mut self, sdp: String) -> Result<(), PeerError> {
        let answer = RTCSessionDescription::answer(sdp).map_err(rtc_err("parse answer"))?;
        self.pc
            .set_remote_description(Instant::now(), answer)
            .map_err(rtc_err("set remote answer"))
    }

    /// Runs the connection until `stop` turns true, then closes it.
    pub async fn run<R: Role>(&mut self, role: &mut R, mut stop: watch::Receiver<bool>) {
        let mut buf = vec![0u8; 2048];
        // A dropped sender means stop too.
        let mut orphaned = false;
        loop {
            let now = Instant::now();
            if self.pc.poll_timeout().is_some_and(|t| t <= now)
                && self.pc.handle_timeout(now).is_err()
            {
                self.counters.errors += 1;
            }
            let connected = self.state == RTCPeerConnectionState::Connected;
            if connected && role.next_tick().is_some_and(|t| t <= now) {
                role.on_tick(&mut self.pc, now);
            }
            self.flush(role).await;
            if orphaned || *stop.borrow_and_update() {
                break;
            }
            let now = Instant::now();
            let mut deadline = self
                .pc
                .poll_timeout()
                .map_or(now + MAX_SLEEP, |t| t.max(now + MIN_TIMER))
                .min(now + MAX_SLEEP);
            if self.state == RTCPeerConnectionState::Connected
                && let Some(t) = role.next_tick()
            {
                deadline = deadline.min(t);
            }
            tokio::select! {
                biased;
                r = stop.changed() => orphaned = r.is_err(),
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, from)) => {
                        self.read(Instant::now(), from, &buf[..n]);
                        // Take what else is queued before the next round of polling.
                        for _ in 0..64 {
                            match self.socket.try_recv_from(&mut buf) {
                                Ok((n, from)) => self.read(Instant::now(), from, &buf[..n]),
                                Err(_) => break,
                            }
                        }
                    }
                    // ICMP errors (e.g. the server went away) surface here: count, go on.
                    Err(_) => self.counters.errors += 1,
                },
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
        }
        if self.pc.close().is_err() {
            self.counters.errors += 1;
        }
        while let Some(t) = self.pc.poll_write() {
            let _ = self.socket.try_send_to(&t.message, t.transport.peer_addr);
        }
    }

    fn read(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.counters.datagrams_in += 1;
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
        if self.pc.handle_read(msg).is_err() {
            self.counters.errors += 1;
        }
    }

    /// Drains writes, events and reads until a whole pass yields nothing.
    async fn flush<R: Role>(&mut self, role: &mut R) {
        loop {
            let mut any = false;
            while let Some(t) = self.pc.poll_write() {
                any = true;
                match self.socket.send_to(&t.message, t.transport.peer_addr).await {
                    Ok(_) => self.counters.datagrams_out += 1,
                    Err(_) => self.counters.errors += 1,
                }
            }
            while let Some(ev) = self.pc.poll_event() {
                any = true;
                if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) = ev {
                    self.state = s;
                    if s == RTCPeerConnectionState::Connected {
                        role.on_connected(Instant::now());
                    }
                }
            }
            while let Some(m) = self.pc.poll_read() {
                any = true;
                role.on_message(m.now, m.message);
            }
            if !any {
                return;
            }
        }
    }
}
