//! Routing client packets by 5-tuple.
//!
//! One dispatcher serves one client-facing socket: the UDP listener (many clients, keyed by
//! their address) or one TCP/TLS connection (one client). The server side of the 5-tuple and
//! the transport are fixed per dispatcher, so the client address completes it. The map from
//! client to allocation is owned by the listener task and only written when an allocation is
//! created or ends, so routing a packet is a plain lookup.
//!
//! The dispatcher answers what needs no allocation (Binding requests, Allocate, and errors
//! for TURN requests on a 5-tuple without one) and forwards everything else to the
//! allocation's task.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use rtc_stun::error_code::{CODE_ALLOC_MISMATCH, CODE_BAD_REQUEST};
use rtc_stun::message::{
    CLASS_INDICATION, CLASS_REQUEST, Getter, METHOD_BINDING, METHOD_CHANNEL_BIND,
    METHOD_CREATE_PERMISSION, METHOD_REFRESH, METHOD_SEND, Message,
};
use rtc_turn::proto::data::Data;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use crate::allocation::{AllocationHandle, OfferError, ToAllocation};
use crate::auth;
use crate::channel_data;
use crate::shared::Shared;
use crate::sink::ClientSink;
use crate::stats::DropReason;
use crate::wire::{self, DecodeError, ReplyTo};

/// How responses leave this dispatcher's socket.
#[derive(Debug, Clone)]
pub(crate) enum Outbound {
    /// The UDP listener socket.
    Udp(Arc<UdpSocket>),
    /// The connection's writer queue.
    Stream(mpsc::Sender<Bytes>),
}

impl Outbound {
    pub(crate) fn sink_for(&self, client: SocketAddr) -> ClientSink {
        match self {
            Self::Udp(socket) => ClientSink::Udp {
                socket: Arc::clone(socket),
                to: client,
            },
            Self::Stream(tx) => ClientSink::Stream { tx: tx.clone() },
        }
    }
}

/// Routes the packets of one client-facing socket.
pub(crate) struct Dispatcher {
    pub(crate) shared: Arc<Shared>,
    pub(crate) outbound: Outbound,
    pub(crate) allocations: HashMap<SocketAddr, AllocationHandle>,
    pub(crate) on_exit: Option<mpsc::UnboundedSender<(SocketAddr, u64)>>,
}

impl Dispatcher {
    pub(crate) fn new(
        shared: Arc<Shared>,
        outbound: Outbound,
        on_exit: Option<mpsc::UnboundedSender<(SocketAddr, u64)>>,
    ) -> Self {
        Self {
            shared,
            outbound,
            allocations: HashMap::new(),
            on_exit,
        }
    }

    /// Forgets `client`'s allocation if it is still the one with `id`.
    pub(crate) fn forget(&mut self, client: SocketAddr, id: u64) {
        if self.allocations.get(&client).is_some_and(|h| h.id == id) {
            self.allocations.remove(&client);
        }
    }

    /// Whether any allocation lives on this socket.
    pub(crate) fn has_allocations(&self) -> bool {
        !self.allocations.is_empty()
    }

    fn drop_packet(&self, reason: DropReason) {
        self.shared.counters.drop_packet(reason);
    }

    /// Handles one datagram or stream frame from `from`.
    pub(crate) async fn on_packet(&mut self, from: SocketAddr, bytes: &[u8]) {
        match bytes.first().map(|b| b >> 6) {
            Some(0b00) => self.on_stun(from, bytes).await,
            Some(0b01) => self.on_channel_data(from, bytes),
            _ => self.drop_packet(DropReason::Malformed),
        }
    }

    fn on_channel_data(&mut self, from: SocketAddr, bytes: &[u8]) {
        let Some(frame) = channel_data::parse(bytes) else {
            self.drop_packet(DropReason::Malformed);
            return;
        };
        let msg = ToAllocation::ChannelData {
            number: frame.number,
            data: frame.payload.to_vec(),
        };
        self.forward(from, msg);
    }

    /// Queues `msg` for `from`'s allocation; `Some(msg)` back when there is none.
    fn forward(&mut self, from: SocketAddr, msg: ToAllocation) -> Option<ToAllocation> {
        let Some(handle) = self.allocations.get(&from) else {
            self.drop_unrouted(&msg);
            return Some(msg);
        };
        match handle.offer(msg) {
            Ok(()) => None,
            Err(OfferError::Busy) => {
                self.drop_packet(DropReason::AllocationBusy);
                None
            }
            Err(OfferError::Gone(msg)) => {
                self.allocations.remove(&from);
                self.drop_unrouted(&msg);
                Some(msg)
            }
        }
    }

    /// Data without an allocation is dropped; requests are answered by the caller.
    fn drop_unrouted(&self, msg: &ToAllocation) {
        if !matches!(msg, ToAllocation::Request(_)) {
            self.drop_packet(DropReason::NoAllocation);
        }
    }

    async fn on_stun(&mut self, from: SocketAddr, bytes: &[u8]) {
        let m = match wire::decode(bytes) {
            Ok(m) => m,
            Err(DecodeError::Malformed) => return self.drop_packet(DropReason::Malformed),
            Err(DecodeError::BadFingerprint) => {
                return self.drop_packet(DropReason::BadFingerprint);
            }
        };
        let class = m.typ.class;
        let method = m.typ.method;
        if class == CLASS_REQUEST {
            if method == METHOD_BINDING {
                return self.binding(from, &m).await;
            }
            let msg = ToAllocation::Request(Box::new(m));
            let Some(ToAllocation::Request(m)) = self.forward(from, msg) else {
                return;
            };
            return self.request_without_allocation(from, *m).await;
        }
        if class == CLASS_INDICATION && method == METHOD_SEND {
            let mut data = Data::default();
            match (wire::peer_address(&m), data.get_from(&m)) {
                (Some(peer), Ok(())) => {
                    self.forward(from, ToAllocation::Send { peer, data: data.0 });
                }
                _ => self.drop_packet(DropReason::Malformed),
            }
            return;
        }
        if class == CLASS_INDICATION && method == METHOD_BINDING {
            // A keepalive (RFC 8489 section 6.3.2): nothing to answer.
            return;
        }
        self.drop_packet(DropReason::Unexpected);
    }

    async fn binding(&self, from: SocketAddr, m: &Message) {
        let reply = ReplyTo::of(m);
        let response = reply.success(vec![wire::xor_mapped(from)], None, self.shared.crypto());
        if let Some(bytes) = response {
            self.outbound
                .sink_for(from)
                .send_control(bytes, &self.shared.counters)
                .await;
        }
    }

    async fn request_without_allocation(&mut self, from: SocketAddr, mut m: Message) {
        let method = m.typ.method;
        if method == rtc_stun::message::METHOD_ALLOCATE {
            return self.allocate(from, m).await;
        }
        let reply = ReplyTo::of(&m);
        let shared = Arc::clone(&self.shared);
        let response = if method == METHOD_REFRESH
            || method == METHOD_CREATE_PERMISSION
            || method == METHOD_CHANNEL_BIND
        {
            match auth::authenticate(&shared, &mut m) {
                Ok(id) => reply.error(CODE_ALLOC_MISMATCH, vec![], Some(&id.key), shared.crypto()),
                Err(r) => auth::rejection_response(&shared, &reply, r),
            }
        } else {
            reply.error(CODE_BAD_REQUEST, vec![], None, shared.crypto())
        };
        if let Some(bytes) = response {
            self.outbound
                .sink_for(from)
                .send_control(bytes, &shared.counters)
                .await;
        }
    }
}
