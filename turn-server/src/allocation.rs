//! One allocation as a task that owns all of its state (RFC 8656 sections 7-12).
//!
//! The task owns the relay socket, the permissions, the channel bindings and the expiry, so
//! nothing on the relay path is locked: the client's listener hands it requests, Send
//! indications and ChannelData through a bounded queue, and the task reads peer datagrams
//! from its relay socket itself. It ends when its lifetime runs out, on Refresh with lifetime
//! 0, or when the listener drops its queue (server shutdown, TCP connection closed). Its
//! [`Lease`] goes with it, returning the quota slot and the relay port.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rtc_stun::attributes::{
    ATTR_CHANNEL_NUMBER, ATTR_LIFETIME, ATTR_REQUESTED_ADDRESS_FAMILY, ATTR_XOR_PEER_ADDRESS,
    AttrType,
};
use rtc_stun::error_code::{
    CODE_ALLOC_MISMATCH, CODE_BAD_REQUEST, CODE_FORBIDDEN, CODE_PEER_ADDR_FAMILY_MISMATCH,
    CODE_UNKNOWN_ATTRIBUTE, CODE_WRONG_CREDENTIALS, ErrorCode,
};
use rtc_stun::message::{
    CLASS_INDICATION, Getter, METHOD_ALLOCATE, METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION,
    METHOD_DATA, METHOD_REFRESH, Message, MessageType, TransactionId,
};
use rtc_stun::uattrs::UnknownAttributes;
use rtc_turn::proto::channum::ChannelNumber;
use rtc_turn::proto::data::Data;
use rtc_turn::proto::lifetime::Lifetime;
use rtc_turn::proto::peeraddr::PeerAddress;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::Instant;
use tracing::debug;

use crate::auth;
use crate::bindings::{Channels, Permissions};
use crate::channel_data;
use crate::registry::Lease;
use crate::shared::{DEFAULT_LIFETIME, MAX_LIFETIME, Shared};
use crate::sink::ClientSink;
use crate::stats::DropReason;
use crate::wire::{self, Attr, ReplyTo};

/// Inbound queue length of one allocation, in messages.
const QUEUE: usize = 512;
/// How often expired permissions and channels are swept out.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// What a listener hands to an allocation.
#[derive(Debug)]
pub(crate) enum ToAllocation {
    /// A STUN request on the allocation's 5-tuple (authenticated by the task).
    Request(Box<Message>),
    /// A Send indication's peer and data.
    Send { peer: SocketAddr, data: Vec<u8> },
    /// A ChannelData message's channel and payload.
    ChannelData { number: u16, data: Vec<u8> },
}

/// Why [`AllocationHandle::offer`] failed.
#[derive(Debug)]
pub(crate) enum OfferError {
    /// The queue is full; the message was dropped.
    Busy,
    /// The allocation ended; the message is handed back.
    Gone(ToAllocation),
}

/// The listener's end of an allocation.
#[derive(Debug, Clone)]
pub(crate) struct AllocationHandle {
    pub id: u64,
    tx: mpsc::Sender<ToAllocation>,
}

impl AllocationHandle {
    /// Queues `msg` without waiting.
    pub(crate) fn offer(&self, msg: ToAllocation) -> Result<(), OfferError> {
        self.tx.try_send(msg).map_err(|e| match e {
            TrySendError::Full(_) => OfferError::Busy,
            TrySendError::Closed(m) => OfferError::Gone(m),
        })
    }
}

/// Everything a new allocation starts with.
pub(crate) struct NewAllocation {
    pub client: SocketAddr,
    pub username: String,
    pub relay: UdpSocket,
    pub relayed: SocketAddr,
    pub lifetime: Duration,
    pub sink: ClientSink,
    pub lease: Lease,
    /// Transaction id and encoded success of the Allocate, replayed on retransmission.
    pub allocate_txid: TransactionId,
    pub allocate_response: Vec<u8>,
    /// Told `(client, id)` when the task ends, so a UDP listener can forget the 5-tuple.
    pub on_exit: Option<mpsc::UnboundedSender<(SocketAddr, u64)>>,
}

/// Starts the allocation task.
pub(crate) fn spawn(shared: Arc<Shared>, new: NewAllocation) -> AllocationHandle {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel(QUEUE);
    let now = Instant::now();
    let task = Allocation {
        shared,
        id,
        client: new.client,
        username: new.username,
        relayed: new.relayed,
        sink: new.sink,
        lease: Some(new.lease),
        allocate_txid: new.allocate_txid,
        allocate_response: new.allocate_response,
        expires: now + new.lifetime,
        next_sweep: now + SWEEP_EVERY,
        permissions: Permissions::default(),
        channels: Channels::default(),
    };
    tokio::spawn(task.run(new.relay, rx, new.on_exit));
    AllocationHandle { id, tx }
}

/// The effective lifetime of an Allocate or Refresh (RFC 8656 section 7.2): the requested
/// value capped at the maximum, but never below the default.
pub(crate) fn granted_lifetime(requested: Option<Duration>) -> Duration {
    requested.map_or(DEFAULT_LIFETIME, |r| {
        r.min(MAX_LIFETIME).max(DEFAULT_LIFETIME)
    })
}

enum Flow {
    Continue,
    Stop,
}

struct Allocation {
    shared: Arc<Shared>,
    id: u64,
    client: SocketAddr,
    username: String,
    relayed: SocketAddr,
    sink: ClientSink,
    /// Released early on Refresh 0, so the quota slot and port are free before the client
    /// sees the response.
    lease: Option<Lease>,
    allocate_txid: TransactionId,
    allocate_response: Vec<u8>,
    expires: Instant,
    next_sweep: Instant,
    permissions: Permissions,
    channels: Channels,
}

impl Allocation {
    async fn run(
        mut self,
        relay: UdpSocket,
        mut rx: mpsc::Receiver<ToAllocation>,
        on_exit: Option<mpsc::UnboundedSender<(SocketAddr, u64)>>,
    ) {
        debug!(client = %self.client, relayed = %self.relayed, user = %self.username, "TURN allocation created");
        let sleep = tokio::time::sleep_until(self.wake_at());
        tokio::pin!(sleep);
        let reason = loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => {
                        if let Flow::Stop = self.on_message(msg, &relay, &mut rx).await {
                            break "deleted";
                        }
                    }
                    None => break "client gone",
                },
                r = relay.readable() => {
                    if r.is_ok() {
                        self.on_peer_readable(&relay).await;
                    }
                }
                () = &mut sleep => {
                    let now = Instant::now();
                    if now >= self.expires {
                        break "expired";
                    }
                    if now >= self.next_sweep {
                        self.permissions.sweep(now);
                        self.channels.sweep(now);
                        self.next_sweep = now + SWEEP_EVERY;
                    }
                }
            }
            let wake = self.wake_at();
            if sleep.deadline() != wake {
                sleep.as_mut().reset(wake);
            }
        };
        debug!(client = %self.client, relayed = %self.relayed, reason, "TURN allocation ended");
        if let Some(tx) = on_exit {
            let _ = tx.send((self.client, self.id));
        }
    }

    fn wake_at(&self) -> Instant {
        self.expires.min(self.next_sweep)
    }

    async fn on_message(
        &mut self,
        msg: ToAllocation,
        relay: &UdpSocket,
        rx: &mut mpsc::Receiver<ToAllocation>,
    ) -> Flow {
        let now = Instant::now();
        match msg {
            ToAllocation::ChannelData { number, data } => match self.channels.peer(number, now) {
                Some(peer) => self.to_peer(relay, &data, peer).await,
                None => self.shared.counters.drop_packet(DropReason::UnknownChannel),
            },
            ToAllocation::Send { peer, data } => {
                if self.permissions.allows(peer.ip(), now) {
                    self.to_peer(relay, &data, peer).await;
                } else {
                    self.shared.counters.drop_packet(DropReason::NoPermission);
                }
            }
            ToAllocation::Request(m) => {
                let (response, flow) = self.on_request(*m);
                if let Flow::Stop = flow {
                    // Deleted: whatever the client sends after the response (a new Allocate)
                    // must find no allocation, and its quota slot and port free.
                    rx.close();
                    self.lease = None;
                }
                self.respond(response).await;
                return flow;
            }
        }
        Flow::Continue
    }

    async fn to_peer(&self, relay: &UdpSocket, data: &[u8], peer: SocketAddr) {
        match relay.send_to(data, peer).await {
            Ok(_) => self.shared.counters.relayed_to_peer(data.len()),
            Err(_) => self.shared.counters.drop_packet(DropReason::SendFailed),
        }
    }

    /// Reads one peer datagram (if any is really there) and relays it to the client.
    async fn on_peer_readable(&self, relay: &UdpSocket) {
        let Some((frame, len)) = self.frame_peer_datagram(relay) else {
            return;
        };
        if self.sink.send_data(frame, &self.shared.counters).await {
            self.shared.counters.relayed_to_client(len);
        }
    }

    /// Receives into a per-thread 64 KiB buffer rather than one per allocation (thousands of
    /// allocations would otherwise hold a buffer each), and frames the datagram for the
    /// client: ChannelData when the peer has a channel, else a Data indication. Returns the
    /// frame and the payload length.
    fn frame_peer_datagram(&self, relay: &UdpSocket) -> Option<(Vec<u8>, usize)> {
        thread_local! {
            static BUF: RefCell<Vec<u8>> = RefCell::new(vec![0u8; 65536]);
        }
        BUF.with_borrow_mut(|buf| {
            let (n, from) = relay.try_recv_from(buf).ok()?;
            let data = &buf[..n];
            let counters = &self.shared.counters;
            let now = Instant::now();
            if !self.permissions.allows(from.ip(), now) {
                counters.drop_packet(DropReason::NoPermission);
                return None;
            }
            let frame = match self.channels.number(from, now) {
                Some(number) => channel_data::encode(number, data, self.sink.is_stream()),
                None => data_indication(from, data),
            };
            if frame.is_none() {
                counters.drop_packet(DropReason::SendFailed);
            }
            frame.map(|f| (f, n))
        })
    }

    async fn respond(&self, bytes: Option<Vec<u8>>) {
        if let Some(bytes) = bytes {
            self.sink.send_control(bytes, &self.shared.counters).await;
        }
    }

    fn on_request(&mut self, mut m: Message) -> (Option<Vec<u8>>, Flow) {
        let reply = ReplyTo::of(&m);
        let method = m.typ.method;
        if method == METHOD_ALLOCATE && m.transaction_id == self.allocate_txid {
            // A retransmitted Allocate: the same success again, not 437.
            return (Some(self.allocate_response.clone()), Flow::Continue);
        }
        let shared = Arc::clone(&self.shared);
        let identity = match auth::authenticate(&shared, &mut m) {
            Ok(identity) => identity,
            Err(rejection) => {
                let r = auth::rejection_response(&shared, &reply, rejection);
                return (r, Flow::Continue);
            }
        };
        let key = identity.key.as_slice();
        let crypto = shared.crypto();
        let fail = |code: ErrorCode| reply.error(code, vec![], Some(key), crypto);
        if identity.username != self.username {
            return (fail(CODE_WRONG_CREDENTIALS), Flow::Continue);
        }
        let known: &[AttrType] = if method == METHOD_REFRESH {
            &[ATTR_LIFETIME, ATTR_REQUESTED_ADDRESS_FAMILY]
        } else if method == METHOD_CREATE_PERMISSION {
            &[ATTR_XOR_PEER_ADDRESS]
        } else if method == METHOD_CHANNEL_BIND {
            &[ATTR_CHANNEL_NUMBER, ATTR_XOR_PEER_ADDRESS]
        } else {
            &[]
        };
        let unknown: Vec<AttrType> = wire::unknown_required(&m, known)
            .into_iter()
            .filter(|a| !wire::AUTH_ATTRS.contains(a))
            .collect();
        if !unknown.is_empty() && method != METHOD_ALLOCATE {
            let attrs: Vec<Attr<'_>> = vec![Box::new(UnknownAttributes(unknown))];
            let r = reply.error(CODE_UNKNOWN_ATTRIBUTE, attrs, Some(key), crypto);
            return (r, Flow::Continue);
        }
        let now = Instant::now();
        if method == METHOD_ALLOCATE {
            (fail(CODE_ALLOC_MISMATCH), Flow::Continue)
        } else if method == METHOD_REFRESH {
            self.refresh(&m, &reply, key, now)
        } else if method == METHOD_CREATE_PERMISSION {
            (self.create_permission(&m, &reply, key, now), Flow::Continue)
        } else if method == METHOD_CHANNEL_BIND {
            (self.channel_bind(&m, &reply, key, now), Flow::Continue)
        } else {
            (fail(CODE_BAD_REQUEST), Flow::Continue)
        }
    }

    fn refresh(
        &mut self,
        m: &Message,
        reply: &ReplyTo,
        key: &[u8],
        now: Instant,
    ) -> (Option<Vec<u8>>, Flow) {
        let crypto = self.shared.crypto();
        if let Ok(v) = m.get(ATTR_REQUESTED_ADDRESS_FAMILY) {
            let v4 = v.first() == Some(&1);
            if v4 != self.relayed.is_ipv4() {
                let r = reply.error(CODE_PEER_ADDR_FAMILY_MISMATCH, vec![], Some(key), crypto);
                return (r, Flow::Continue);
            }
        }
        let mut requested = Lifetime::default();
        let requested = requested.get_from(m).ok().map(|()| requested.0);
        if requested == Some(Duration::ZERO) {
            let attrs: Vec<Attr<'_>> = vec![Box::new(Lifetime(Duration::ZERO))];
            return (reply.success(attrs, Some(key), crypto), Flow::Stop);
        }
        let lifetime = granted_lifetime(requested);
        self.expires = now + lifetime;
        let attrs: Vec<Attr<'_>> = vec![Box::new(Lifetime(lifetime))];
        (reply.success(attrs, Some(key), crypto), Flow::Continue)
    }

    /// Checks a peer address: `Err(code)` when it may not be used.
    fn check_peer(&self, peer: SocketAddr) -> Result<(), ErrorCode> {
        if !wire::same_family(peer.ip(), self.shared.relay_ip) {
            return Err(CODE_PEER_ADDR_FAMILY_MISMATCH);
        }
        if !self.shared.peers.is_allowed(peer.ip()) {
            return Err(CODE_FORBIDDEN);
        }
        Ok(())
    }

    fn create_permission(
        &mut self,
        m: &Message,
        reply: &ReplyTo,
        key: &[u8],
        now: Instant,
    ) -> Option<Vec<u8>> {
        let crypto = self.shared.crypto();
        let fail = |code: ErrorCode| reply.error(code, vec![], Some(key), crypto);
        let peers = match wire::peer_addresses(m) {
            Some(p) if !p.is_empty() => p,
            _ => return fail(CODE_BAD_REQUEST),
        };
        for p in &peers {
            if let Err(code) = self.check_peer(*p) {
                return fail(code);
            }
        }
        for p in &peers {
            self.permissions.install(p.ip(), now);
        }
        reply.success(vec![], Some(key), crypto)
    }

    fn channel_bind(
        &mut self,
        m: &Message,
        reply: &ReplyTo,
        key: &[u8],
        now: Instant,
    ) -> Option<Vec<u8>> {
        let crypto = self.shared.crypto();
        let fail = |code: ErrorCode| reply.error(code, vec![], Some(key), crypto);
        let mut number = ChannelNumber::default();
        if number.get_from(m).is_err()
            || !channel_data::bindable(number.0, self.shared.strict_channels)
        {
            return fail(CODE_BAD_REQUEST);
        }
        let Some(peer) = wire::peer_address(m) else {
            return fail(CODE_BAD_REQUEST);
        };
        if let Err(code) = self.check_peer(peer) {
            return fail(code);
        }
        if self.channels.bind(number.0, peer, now).is_err() {
            return fail(CODE_BAD_REQUEST);
        }
        self.permissions.install(peer.ip(), now);
        reply.success(vec![], Some(key), crypto)
    }
}

/// A Data indication carrying a peer datagram.
fn data_indication(from: SocketAddr, data: &[u8]) -> Option<Vec<u8>> {
    let mut m = Message::new();
    m.build(&[
        Box::new(MessageType::new(METHOD_DATA, CLASS_INDICATION)) as Attr<'_>,
        Box::new(TransactionId::new()),
        Box::new(PeerAddress {
            ip: from.ip(),
            port: from.port(),
        }),
        Box::new(Data(data.to_vec())),
    ])
    .ok()?;
    // The 16-bit STUN length must hold the message.
    (m.raw.len() <= usize::from(u16::MAX)).then_some(m.raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes() {
        assert_eq!(granted_lifetime(None), DEFAULT_LIFETIME);
        assert_eq!(
            granted_lifetime(Some(Duration::from_secs(60))),
            DEFAULT_LIFETIME
        );
        assert_eq!(
            granted_lifetime(Some(Duration::from_secs(1200))),
            Duration::from_secs(1200)
        );
        assert_eq!(
            granted_lifetime(Some(Duration::from_secs(99999))),
            MAX_LIFETIME
        );
    }
}
