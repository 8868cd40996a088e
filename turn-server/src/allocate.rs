//! The Allocate request on a 5-tuple without an allocation (RFC 8656 section 7.2).
//!
//! Checks, in order: credentials; unknown comprehension-required attributes (420, which is
//! also how DONT-FRAGMENT is refused: relays cannot set DF); REQUESTED-TRANSPORT (400 when
//! missing, 442 unless UDP); EVEN-PORT / RESERVATION-TOKEN / REQUESTED-ADDRESS-FAMILY
//! consistency (400, 440); the user's quota (486); a relay port (508). The success carries
//! XOR-RELAYED-ADDRESS, XOR-MAPPED-ADDRESS, LIFETIME and, for EVEN-PORT with R, the
//! RESERVATION-TOKEN of the port kept for the next Allocate. It is also kept by the new
//! allocation task to answer a retransmission of the same request.

use std::net::SocketAddr;
use std::sync::Arc;

use rtc_stun::attributes::{
    ATTR_EVEN_PORT, ATTR_LIFETIME, ATTR_REQUESTED_ADDRESS_FAMILY, ATTR_REQUESTED_TRANSPORT,
    ATTR_RESERVATION_TOKEN, AttrType,
};
use rtc_stun::error_code::{
    CODE_ADDR_FAMILY_NOT_SUPPORTED, CODE_ALLOC_QUOTA_REACHED, CODE_BAD_REQUEST,
    CODE_INSUFFICIENT_CAPACITY, CODE_SERVER_ERROR, CODE_UNKNOWN_ATTRIBUTE,
    CODE_UNSUPPORTED_TRANS_PROTO, ErrorCode,
};
use rtc_stun::message::{Getter, Message};
use rtc_stun::uattrs::UnknownAttributes;
use rtc_turn::proto::PROTO_UDP;
use rtc_turn::proto::lifetime::Lifetime;
use rtc_turn::proto::relayaddr::RelayedAddress;
use rtc_turn::proto::reqtrans::RequestedTransport;
use rtc_turn::proto::rsrvtoken::ReservationToken;

use crate::allocation::{self, NewAllocation, granted_lifetime};
use crate::auth;
use crate::dispatcher::Dispatcher;
use crate::port_pool::RelayWant;
use crate::wire::{self, Attr, ReplyTo};

const KNOWN: [AttrType; 5] = [
    ATTR_LIFETIME,
    ATTR_REQUESTED_TRANSPORT,
    ATTR_EVEN_PORT,
    ATTR_RESERVATION_TOKEN,
    ATTR_REQUESTED_ADDRESS_FAMILY,
];

/// A parsed, consistent Allocate.
struct Plan {
    want: RelayWant,
    lifetime: std::time::Duration,
}

impl Dispatcher {
    /// Handles an Allocate from `from`, which has no allocation on this socket.
    pub(crate) async fn allocate(&mut self, from: SocketAddr, mut m: Message) {
        let shared = Arc::clone(&self.shared);
        let sink = self.outbound.sink_for(from);
        let reply = ReplyTo::of(&m);
        let identity = match auth::authenticate(&shared, &mut m) {
            Ok(identity) => identity,
            Err(rejection) => {
                if let Some(r) = auth::rejection_response(&shared, &reply, rejection) {
                    sink.send_control(r, &shared.counters).await;
                }
                return;
            }
        };
        let key = identity.key.as_slice();
        let crypto = shared.crypto();
        let fail = |code: ErrorCode| reply.error(code, vec![], Some(key), crypto);

        let unknown: Vec<AttrType> = wire::unknown_required(&m, &KNOWN)
            .into_iter()
            .filter(|a| !wire::AUTH_ATTRS.contains(a))
            .collect();
        let outcome = if unknown.is_empty() {
            plan(&m, &shared).map_err(fail)
        } else {
            let attrs: Vec<Attr<'_>> = vec![Box::new(UnknownAttributes(unknown))];
            Err(reply.error(CODE_UNKNOWN_ATTRIBUTE, attrs, Some(key), crypto))
        };
        let plan = match outcome {
            Ok(plan) => plan,
            Err(response) => {
                if let Some(r) = response {
                    sink.send_control(r, &shared.counters).await;
                }
                return;
            }
        };

        let Some(mut lease) = shared.registry.admit(&identity.username, shared.user_limit) else {
            if let Some(r) = fail(CODE_ALLOC_QUOTA_REACHED) {
                sink.send_control(r, &shared.counters).await;
            }
            return;
        };
        let Some(grant) = shared.registry.bind_relay(&mut lease, plan.want) else {
            if let Some(r) = fail(CODE_INSUFFICIENT_CAPACITY) {
                sink.send_control(r, &shared.counters).await;
            }
            return;
        };
        let Ok(relay) = tokio::net::UdpSocket::from_std(grant.socket) else {
            if let Some(r) = fail(CODE_SERVER_ERROR) {
                sink.send_control(r, &shared.counters).await;
            }
            return;
        };
        let relayed = SocketAddr::new(shared.advertised_ip, grant.port);
        // Built in a block: the boxed attributes are not `Send` and must not live across an
        // await.
        let response = {
            let mut attrs: Vec<Attr<'_>> = vec![
                Box::new(RelayedAddress {
                    ip: relayed.ip(),
                    port: relayed.port(),
                }),
                wire::xor_mapped(from),
                Box::new(Lifetime(plan.lifetime)),
            ];
            if let Some(token) = grant.token {
                attrs.push(Box::new(ReservationToken(token.to_vec())));
            }
            reply.success(attrs, Some(key), crypto)
        };
        let Some(response) = response else {
            return;
        };
        let handle = allocation::spawn(
            Arc::clone(&shared),
            NewAllocation {
                client: from,
                username: identity.username,
                relay,
                relayed,
                lifetime: plan.lifetime,
                sink: sink.clone(),
                lease,
                allocate_txid: reply.transaction_id(),
                allocate_response: response.clone(),
                on_exit: self.on_exit.clone(),
            },
        );
        self.allocations.insert(from, handle);
        shared.counters.allocation_created();
        sink.send_control(response, &shared.counters).await;
    }
}

/// Validates the Allocate's attributes; `Err(code)` for the error response.
fn plan(m: &Message, shared: &crate::shared::Shared) -> Result<Plan, ErrorCode> {
    let mut transport = RequestedTransport::default();
    if transport.get_from(m).is_err() {
        return Err(CODE_BAD_REQUEST);
    }
    if transport.protocol != PROTO_UDP {
        return Err(CODE_UNSUPPORTED_TRANS_PROTO);
    }
    let even = match m.get(ATTR_EVEN_PORT) {
        Ok(v) => match v.first() {
            Some(flags) => Some(flags & 0x80 != 0),
            None => return Err(CODE_BAD_REQUEST),
        },
        Err(_) => None,
    };
    let token = if m.contains(ATTR_RESERVATION_TOKEN) {
        let mut t = ReservationToken::default();
        if t.get_from(m).is_err() {
            return Err(CODE_BAD_REQUEST);
        }
        let Ok(token) = <[u8; 8]>::try_from(t.0.as_slice()) else {
            return Err(CODE_BAD_REQUEST);
        };
        Some(token)
    } else {
        None
    };
    if let Ok(v) = m.get(ATTR_REQUESTED_ADDRESS_FAMILY) {
        if token.is_some() {
            return Err(CODE_BAD_REQUEST);
        }
        let wants_v4 = match v.first() {
            Some(1) => true,
            Some(2) => false,
            _ => return Err(CODE_ADDR_FAMILY_NOT_SUPPORTED),
        };
        if wants_v4 != shared.relay_ip.is_ipv4() {
            return Err(CODE_ADDR_FAMILY_NOT_SUPPORTED);
        }
    }
    let want = match (even, token) {
        (Some(_), Some(_)) => return Err(CODE_BAD_REQUEST),
        (None, Some(token)) => RelayWant::Token(token),
        (Some(true), None) => RelayWant::EvenReserveNext,
        (Some(false), None) => RelayWant::Even,
        (None, None) => RelayWant::Any,
    };
    let mut lifetime = Lifetime::default();
    let requested = lifetime.get_from(m).ok().map(|()| lifetime.0);
    Ok(Plan {
        want,
        lifetime: granted_lifetime(requested),
    })
}
