//! A small TURN client for the integration tests, built on the same `rtc-stun` / `rtc-turn`
//! codecs as the server, plus helpers (server config, UDP echo peer, REST credentials).
//!
//! It speaks over UDP, TCP or TLS, follows the 401 challenge, retries once on 438, checks the
//! MESSAGE-INTEGRITY of every response that carries one, and keeps frames that arrive while
//! it waits for a response (Data indications, ChannelData) for `recv_data`.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use rtc_stun::attributes::{
    ATTR_MESSAGE_INTEGRITY, ATTR_NONCE, ATTR_REALM, ATTR_USERNAME, AttrType,
};
use rtc_stun::crypto::RTCCryptoProvider;
use rtc_stun::error_code::ErrorCodeAttribute;
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{
    CLASS_ERROR_RESPONSE, CLASS_INDICATION, CLASS_REQUEST, CLASS_SUCCESS_RESPONSE, Getter,
    METHOD_ALLOCATE, METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION, METHOD_DATA, METHOD_REFRESH,
    METHOD_SEND, Message, MessageType, Method, Setter, TransactionId,
};
use rtc_stun::textattrs::TextAttribute;
use rtc_stun::xoraddr::XorMappedAddress;
use rtc_turn::proto::channum::ChannelNumber;
use rtc_turn::proto::data::Data;
use rtc_turn::proto::lifetime::Lifetime;
use rtc_turn::proto::peeraddr::PeerAddress;
use rtc_turn::proto::relayaddr::RelayedAddress;
use rtc_turn::proto::reqtrans::RequestedTransport;
use rtc_turn::proto::{PROTO_UDP, Protocol};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use turn_server::TurnConfig;

pub const SECRET: &str = "integration-test-secret-0123456789abcdef";
pub const WAIT: Duration = Duration::from_secs(3);

pub type Attrs = Vec<Box<dyn Setter>>;

/// A config for loopback tests: UDP and TCP on free ports, relays on 127.0.0.1.
pub fn test_config() -> TurnConfig {
    TurnConfig {
        enabled: true,
        bind_ip: "127.0.0.1".parse().unwrap(),
        udp_port: Some(0),
        tcp_port: Some(0),
        tls_port: None,
        relay_ip: "127.0.0.1".parse().unwrap(),
        auth_secret: Some(SECRET.into()),
        ..Default::default()
    }
}

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// REST credentials for `id`, valid for an hour.
pub fn creds(id: &str) -> (String, String) {
    turn_server::rest_credentials(SECRET, id, Duration::from_secs(3600), now_unix())
}

/// A UDP peer on `ip` that echoes every datagram to its sender.
pub async fn echo_peer(ip: &str) -> SocketAddr {
    let socket = UdpSocket::bind((ip, 0)).await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(&buf[..n], from).await;
        }
    });
    addr
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

enum Conn {
    Udp {
        socket: UdpSocket,
        server: SocketAddr,
    },
    Stream {
        io: Box<dyn Stream>,
        buf: BytesMut,
    },
}

/// Data received through the relay.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A Data indication from this peer.
    Indication(SocketAddr, Vec<u8>),
    /// ChannelData on this channel.
    Channel(u16, Vec<u8>),
}

pub struct TurnClient {
    conn: Conn,
    pub local: SocketAddr,
    user: String,
    pass: String,
    realm: String,
    nonce: String,
    key: Vec<u8>,
    provider: Arc<dyn RTCCryptoProvider>,
    inbox: VecDeque<Vec<u8>>,
    /// Raw attributes added to every message (before integrity) until cleared.
    pub extra: Vec<(AttrType, Vec<u8>)>,
}

impl TurnClient {
    fn new(conn: Conn, local: SocketAddr) -> Self {
        Self {
            conn,
            local,
            user: String::new(),
            pass: String::new(),
            realm: String::new(),
            nonce: String::new(),
            key: Vec::new(),
            provider: rtc_stun::crypto::default_provider().unwrap(),
            inbox: VecDeque::new(),
            extra: Vec::new(),
        }
    }

    pub async fn udp(server: SocketAddr) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = socket.local_addr().unwrap();
        Self::new(Conn::Udp { socket, server }, local)
    }

    pub async fn tcp(server: SocketAddr) -> Self {
        let s = TcpStream::connect(server).await.unwrap();
        let local = s.local_addr().unwrap();
        Self::new(
            Conn::Stream {
                io: Box::new(s),
                buf: BytesMut::new(),
            },
            local,
        )
    }

    /// TLS, trusting exactly `cert_der`.
    pub async fn tls(server: SocketAddr, cert_der: Vec<u8>) -> Self {
        use tokio_rustls::rustls;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(cert_der))
            .unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(server).await.unwrap();
        let local = tcp.local_addr().unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = connector.connect(name, tcp).await.unwrap();
        Self::new(
            Conn::Stream {
                io: Box::new(tls),
                buf: BytesMut::new(),
            },
            local,
        )
    }

    pub fn is_stream(&self) -> bool {
        matches!(self.conn, Conn::Stream { .. })
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        match &mut self.conn {
            Conn::Udp { socket, server } => {
                socket.send_to(bytes, *server).await.unwrap();
            }
            Conn::Stream { io, .. } => {
                // The server may already have closed a connection we fuzz; ignore errors.
                let _ = io.write_all(bytes).await;
            }
        }
    }

    /// Closes a stream connection (write side and all).
    pub async fn close(self) {
        if let Conn::Stream { mut io, .. } = self.conn {
            let _ = io.shutdown().await;
        }
    }

    /// The next datagram / stream frame, `None` after `within`.
    pub async fn recv_frame(&mut self, within: Duration) -> Option<Vec<u8>> {
        if let Some(f) = self.inbox.pop_front() {
            return Some(f);
        }
        tokio::time::timeout(within, self.read_frame())
            .await
            .ok()
            .flatten()
    }

    async fn read_frame(&mut self) -> Option<Vec<u8>> {
        match &mut self.conn {
            Conn::Udp { socket, .. } => {
                let mut buf = vec![0u8; 65536];
                let (n, _) = socket.recv_from(&mut buf).await.ok()?;
                buf.truncate(n);
                Some(buf)
            }
            Conn::Stream { io, buf } => loop {
                if buf.len() >= 4 {
                    let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
                    let total = if buf[0] >> 6 == 0 {
                        20 + len
                    } else {
                        (4 + len).div_ceil(4) * 4
                    };
                    if buf.len() >= total {
                        return Some(buf.split_to(total).to_vec());
                    }
                }
                if io.read_buf(buf).await.ok()? == 0 {
                    return None;
                }
            },
        }
    }

    pub fn set_credentials(&mut self, user: &str, pass: &str) {
        self.user = user.to_owned();
        self.pass = pass.to_owned();
        if !self.realm.is_empty() {
            self.derive_key();
        }
    }

    fn derive_key(&mut self) {
        self.key = MessageIntegrity::long_term_integrity_key(
            self.user.clone(),
            self.realm.clone(),
            self.pass.clone(),
            self.provider.crypto(),
        )
        .unwrap();
    }

    /// A request (or indication) of `method`; with `auth`, USERNAME/REALM/NONCE and
    /// MESSAGE-INTEGRITY; always a FINGERPRINT.
    pub fn message(&self, typ: MessageType, attrs: Attrs, auth: bool) -> Message {
        let mut setters: Vec<Box<dyn Setter + '_>> =
            vec![Box::new(typ), Box::new(TransactionId::new())];
        setters.extend(attrs);
        let mut m = Message::new();
        m.build(&setters).unwrap();
        for (t, v) in &self.extra {
            m.add(*t, v);
        }
        if auth {
            TextAttribute::new(ATTR_USERNAME, self.user.clone())
                .add_to(&mut m)
                .unwrap();
            TextAttribute::new(ATTR_REALM, self.realm.clone())
                .add_to(&mut m)
                .unwrap();
            TextAttribute::new(ATTR_NONCE, self.nonce.clone())
                .add_to(&mut m)
                .unwrap();
            MessageIntegrity::new_raw_integrity_with_provider(
                self.key.clone(),
                self.provider.crypto(),
            )
            .add_to(&mut m)
            .unwrap();
        }
        FINGERPRINT.add_to(&mut m).unwrap();
        m
    }

    pub fn request(&self, method: Method, attrs: Attrs, auth: bool) -> Message {
        self.message(MessageType::new(method, CLASS_REQUEST), attrs, auth)
    }

    /// Sends `m` and waits for the response with its transaction id. Other frames are kept
    /// for `recv_data`. Panics after [`WAIT`] without a response.
    pub async fn transact(&mut self, m: &Message) -> Message {
        self.send_bytes(&m.raw).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut kept = Vec::new();
        let resp = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = tokio::time::timeout(left, self.read_frame())
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("no response to {}", m.typ));
            if frame.len() >= 20 && frame[0] >> 6 == 0 && frame[8..20] == m.transaction_id.0 {
                let mut r = Message::new();
                r.raw = frame;
                r.decode().unwrap();
                break r;
            }
            kept.push(frame);
        };
        self.inbox.extend(kept);
        let mut resp = resp;
        if resp.contains(ATTR_MESSAGE_INTEGRITY) {
            MessageIntegrity::check(&mut resp, &self.key, self.provider.crypto())
                .expect("response MESSAGE-INTEGRITY must verify with our key");
        }
        if resp.contains(rtc_stun::attributes::ATTR_FINGERPRINT) {
            FINGERPRINT.check(&resp).expect("response FINGERPRINT");
        }
        resp
    }

    fn remember_challenge(&mut self, r: &Message) {
        if let Ok(realm) = TextAttribute::get_from_as(r, ATTR_REALM) {
            self.realm = realm.text;
        }
        if let Ok(nonce) = TextAttribute::get_from_as(r, ATTR_NONCE) {
            self.nonce = nonce.text;
        }
        self.derive_key();
    }

    /// An authenticated request: `Ok(response)` on success, `Err(code)` on an error response.
    /// A 438 is retried once with the new nonce. Success responses must carry integrity.
    pub async fn authed(
        &mut self,
        method: Method,
        attrs: impl Fn() -> Attrs,
    ) -> Result<Message, u16> {
        for _ in 0..2 {
            let m = self.request(method, attrs(), true);
            let r = self.transact(&m).await;
            if r.typ.class == CLASS_SUCCESS_RESPONSE {
                assert!(
                    r.contains(ATTR_MESSAGE_INTEGRITY),
                    "authenticated success without MESSAGE-INTEGRITY"
                );
                return Ok(r);
            }
            assert_eq!(r.typ.class, CLASS_ERROR_RESPONSE);
            let code = error_code(&r);
            if code == 438 {
                assert!(r.contains(ATTR_NONCE), "438 without NONCE");
                self.remember_challenge(&r);
                continue;
            }
            return Err(code);
        }
        Err(438)
    }

    /// Sends an unauthenticated Allocate, expects the 401 challenge and keeps its REALM
    /// and NONCE for the following requests.
    pub async fn challenge(&mut self, user: &str, pass: &str) {
        self.set_credentials(user, pass);
        let m = self.request(METHOD_ALLOCATE, udp_transport(), false);
        let r = self.transact(&m).await;
        assert_eq!(r.typ.class, CLASS_ERROR_RESPONSE);
        assert_eq!(
            error_code(&r),
            401,
            "unauthenticated Allocate must be challenged"
        );
        assert!(r.contains(ATTR_REALM) && r.contains(ATTR_NONCE));
        assert!(!r.contains(ATTR_MESSAGE_INTEGRITY));
        self.remember_challenge(&r);
    }

    /// Allocate with the 401 challenge first; the relayed address on success.
    pub async fn allocate(&mut self, user: &str, pass: &str) -> Result<SocketAddr, u16> {
        self.challenge(user, pass).await;
        let r = self.authed(METHOD_ALLOCATE, udp_transport).await?;
        Ok(relayed_address(&r))
    }

    pub async fn create_permission(&mut self, peer: SocketAddr) -> Result<(), u16> {
        self.authed(METHOD_CREATE_PERMISSION, || vec![peer_attr(peer)])
            .await
            .map(|_| ())
    }

    pub async fn channel_bind(&mut self, number: u16, peer: SocketAddr) -> Result<(), u16> {
        self.authed(METHOD_CHANNEL_BIND, || {
            vec![Box::new(ChannelNumber(number)), peer_attr(peer)]
        })
        .await
        .map(|_| ())
    }

    /// Refresh; the granted lifetime in seconds.
    pub async fn refresh(&mut self, secs: u64) -> Result<u64, u16> {
        let r = self
            .authed(METHOD_REFRESH, || {
                vec![Box::new(Lifetime(Duration::from_secs(secs)))]
            })
            .await?;
        let mut l = Lifetime::default();
        l.get_from(&r).unwrap();
        Ok(l.0.as_secs())
    }

    pub async fn send_indication(&mut self, peer: SocketAddr, data: &[u8]) {
        let m = self.message(
            MessageType::new(METHOD_SEND, CLASS_INDICATION),
            vec![peer_attr(peer), Box::new(Data(data.to_vec()))],
            false,
        );
        self.send_bytes(&m.raw).await;
    }

    pub async fn send_channel_data(&mut self, number: u16, data: &[u8]) {
        let mut out = Vec::new();
        out.extend_from_slice(&number.to_be_bytes());
        out.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
        out.extend_from_slice(data);
        if self.is_stream() {
            out.resize(out.len().div_ceil(4) * 4, 0);
        }
        self.send_bytes(&out).await;
    }

    /// The next relayed data, `None` after `within`.
    pub async fn recv_data(&mut self, within: Duration) -> Option<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self.recv_frame(left).await?;
            if frame[0] >> 6 == 1 {
                let n = u16::from_be_bytes([frame[0], frame[1]]);
                let len = usize::from(u16::from_be_bytes([frame[2], frame[3]]));
                if self.is_stream() {
                    assert_eq!(frame.len() % 4, 0, "ChannelData over streams is padded");
                } else {
                    assert_eq!(frame.len(), 4 + len, "no padding over UDP");
                }
                return Some(Received::Channel(n, frame[4..4 + len].to_vec()));
            }
            let mut m = Message::new();
            m.raw = frame;
            if m.decode().is_ok() && m.typ == MessageType::new(METHOD_DATA, CLASS_INDICATION) {
                let mut peer = PeerAddress::default();
                peer.get_from(&m).unwrap();
                let mut data = Data::default();
                data.get_from(&m).unwrap();
                return Some(Received::Indication(
                    SocketAddr::new(peer.ip, peer.port),
                    data.0,
                ));
            }
        }
    }
}

pub fn udp_transport() -> Attrs {
    vec![Box::new(RequestedTransport {
        protocol: PROTO_UDP,
    })]
}

pub fn transport(protocol: u8) -> Attrs {
    vec![Box::new(RequestedTransport {
        protocol: Protocol(protocol),
    })]
}

pub fn peer_attr(peer: SocketAddr) -> Box<dyn Setter> {
    Box::new(PeerAddress {
        ip: peer.ip(),
        port: peer.port(),
    })
}

pub fn error_code(m: &Message) -> u16 {
    let mut e = ErrorCodeAttribute::default();
    e.get_from(m).expect("ERROR-CODE");
    e.code.0
}

pub fn relayed_address(m: &Message) -> SocketAddr {
    let mut a = RelayedAddress::default();
    a.get_from(m).unwrap();
    SocketAddr::new(a.ip, a.port)
}

pub fn mapped_address(m: &Message) -> SocketAddr {
    let mut a = XorMappedAddress::default();
    a.get_from(m).unwrap();
    SocketAddr::new(a.ip, a.port)
}

pub fn lifetime(m: &Message) -> u64 {
    let mut l = Lifetime::default();
    l.get_from(m).unwrap();
    l.0.as_secs()
}
