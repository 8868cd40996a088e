//! Counters of the TURN server, read by the binary for its periodic log line.
//!
//! Packets are never logged one by one; every relayed or dropped packet moves a relaxed
//! atomic instead. Atomics (not a mutex) because every listener and allocation task bumps
//! them on the packet path.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum DropReason {
    /// Not STUN or ChannelData, or a STUN message / attribute that does not decode.
    Malformed,
    /// A STUN message whose FINGERPRINT does not match.
    BadFingerprint,
    /// A response, or an indication / method the server does not handle.
    Unexpected,
    /// Send indication or ChannelData on a 5-tuple without an allocation.
    NoAllocation,
    /// Send indication or peer datagram without a permission for the peer.
    NoPermission,
    /// ChannelData on a channel that is not bound.
    UnknownChannel,
    /// The allocation's queue was full.
    AllocationBusy,
    /// The TCP/TLS connection's write queue was full.
    ClientBacklog,
    /// The socket refused the datagram or the connection is gone.
    SendFailed,
}

const REASONS: usize = 9;

impl DropReason {
    fn index(self) -> usize {
        match self {
            Self::Malformed => 0,
            Self::BadFingerprint => 1,
            Self::Unexpected => 2,
            Self::NoAllocation => 3,
            Self::NoPermission => 4,
            Self::UnknownChannel => 5,
            Self::AllocationBusy => 6,
            Self::ClientBacklog => 7,
            Self::SendFailed => 8,
        }
    }
}

/// The live counters (shared by all tasks).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    allocations_total: AtomicU64,
    auth_failures: AtomicU64,
    to_peer_packets: AtomicU64,
    to_peer_bytes: AtomicU64,
    to_client_packets: AtomicU64,
    to_client_bytes: AtomicU64,
    dropped: [AtomicU64; REASONS],
}

impl Counters {
    pub(crate) fn drop_packet(&self, reason: DropReason) {
        self.dropped[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn allocation_created(&self) {
        self.allocations_total.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn auth_failed(&self) {
        self.auth_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn relayed_to_peer(&self, bytes: usize) {
        self.to_peer_packets.fetch_add(1, Ordering::Relaxed);
        self.to_peer_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn relayed_to_client(&self, bytes: usize) {
        self.to_client_packets.fetch_add(1, Ordering::Relaxed);
        self.to_client_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, allocations: u64) -> TurnStats {
        let d = |r: DropReason| self.dropped[r.index()].load(Ordering::Relaxed);
        TurnStats {
            allocations,
            allocations_total: self.allocations_total.load(Ordering::Relaxed),
            auth_failures: self.auth_failures.load(Ordering::Relaxed),
            relayed_to_peers_packets: self.to_peer_packets.load(Ordering::Relaxed),
            relayed_to_peers_bytes: self.to_peer_bytes.load(Ordering::Relaxed),
            relayed_to_clients_packets: self.to_client_packets.load(Ordering::Relaxed),
            relayed_to_clients_bytes: self.to_client_bytes.load(Ordering::Relaxed),
            dropped: DropCounts {
                malformed: d(DropReason::Malformed),
                bad_fingerprint: d(DropReason::BadFingerprint),
                unexpected: d(DropReason::Unexpected),
                no_allocation: d(DropReason::NoAllocation),
                no_permission: d(DropReason::NoPermission),
                unknown_channel: d(DropReason::UnknownChannel),
                allocation_busy: d(DropReason::AllocationBusy),
                client_backlog: d(DropReason::ClientBacklog),
                send_failed: d(DropReason::SendFailed),
            },
        }
    }
}

/// A snapshot of the server's counters ([`crate::TurnServer::stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TurnStats {
    /// Allocations alive now.
    pub allocations: u64,
    /// Allocations created since start.
    pub allocations_total: u64,
    /// Requests refused with 401 after carrying credentials (bad password, unknown or
    /// expired user). Plain challenges (no credentials yet) are not counted.
    pub auth_failures: u64,
    /// Datagrams sent from relays to peers.
    pub relayed_to_peers_packets: u64,
    /// Payload bytes sent from relays to peers.
    pub relayed_to_peers_bytes: u64,
    /// Peer datagrams delivered to clients (Data indication or ChannelData).
    pub relayed_to_clients_packets: u64,
    /// Payload bytes of those datagrams.
    pub relayed_to_clients_bytes: u64,
    /// Dropped packets by reason.
    pub dropped: DropCounts,
}

/// Dropped packets by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// Not STUN/ChannelData, or undecodable.
    pub malformed: u64,
    /// FINGERPRINT mismatch.
    pub bad_fingerprint: u64,
    /// Responses, unknown indications.
    pub unexpected: u64,
    /// Data for a 5-tuple without allocation.
    pub no_allocation: u64,
    /// Data to or from a peer without permission.
    pub no_permission: u64,
    /// ChannelData on an unbound channel.
    pub unknown_channel: u64,
    /// An allocation's inbound queue was full.
    pub allocation_busy: u64,
    /// A stream client's outbound queue was full.
    pub client_backlog: u64,
    /// A socket send failed.
    pub send_failed: u64,
}

impl DropCounts {
    /// Sum over all reasons.
    pub fn total(&self) -> u64 {
        self.malformed
            + self.bad_fingerprint
            + self.unexpected
            + self.no_allocation
            + self.no_permission
            + self.unknown_channel
            + self.allocation_busy
            + self.client_backlog
            + self.send_failed
    }
}

impl fmt::Display for TurnStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.dropped;
        write!(
            f,
            "allocations={} (total {}) auth_failures={} to_peers={}pkt/{}B to_clients={}pkt/{}B \
             dropped={} (malformed={} bad_fingerprint={} unexpected={} no_allocation={} \
             no_permission={} unknown_channel={} allocation_busy={} client_backlog={} send_failed={})",
            self.allocations,
            self.allocations_total,
            self.auth_failures,
            self.relayed_to_peers_packets,
            self.relayed_to_peers_bytes,
            self.relayed_to_clients_packets,
            self.relayed_to_clients_bytes,
            d.total(),
            d.malformed,
            d.bad_fingerprint,
            d.unexpected,
            d.no_allocation,
            d.no_permission,
            d.unknown_channel,
            d.allocation_busy,
            d.client_backlog,
            d.send_failed,
        )
    }
}
