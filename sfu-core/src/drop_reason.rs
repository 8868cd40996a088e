//! Why a packet was not forwarded. Drops are counted, never logged per packet.

/// A reason to drop a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum DropReason {
    /// Datagram from an address/ufrag we do not know.
    UnknownPeer = 0,
    /// RTP on an SSRC/track we did not bind.
    UnknownTrack,
    /// Video held back until a keyframe arrives on the selected layer.
    WaitingForKeyframe,
    /// Packet of a layer the subscriber is not receiving.
    NotSelectedLayer,
    /// Packet older than a layer switch.
    BeforeSwitch,
    /// Subscriber paused the track (UpdateTrackSettings disabled).
    Paused,
    /// The subscriber has not answered the offer carrying this down-track yet.
    NotNegotiated,
    /// The track is muted (by its publisher or the server API).
    Muted,
    /// The subscriber connection refused the packet.
    WriteFailed,
    /// Data packet without `canPublishData`.
    DataNotAllowed,
    /// Reliable data packet seen before (sequence de-dup).
    DataDuplicate,
    /// Data packet that did not parse.
    DataMalformed,
    /// NACK for a packet no longer in the cache.
    NackMiss,
}

impl DropReason {
    /// Every reason, for metrics export.
    pub const ALL: [DropReason; 13] = [
        DropReason::UnknownPeer,
        DropReason::UnknownTrack,
        DropReason::WaitingForKeyframe,
        DropReason::NotSelectedLayer,
        DropReason::BeforeSwitch,
        DropReason::Paused,
        DropReason::NotNegotiated,
        DropReason::Muted,
        DropReason::WriteFailed,
        DropReason::DataNotAllowed,
        DropReason::DataDuplicate,
        DropReason::DataMalformed,
        DropReason::NackMiss,
    ];

    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::UnknownPeer => "unknown_peer",
            DropReason::UnknownTrack => "unknown_track",
            DropReason::WaitingForKeyframe => "waiting_for_keyframe",
            DropReason::NotSelectedLayer => "not_selected_layer",
            DropReason::BeforeSwitch => "before_switch",
            DropReason::Paused => "paused",
            DropReason::NotNegotiated => "not_negotiated",
            DropReason::Muted => "muted",
            DropReason::WriteFailed => "write_failed",
            DropReason::DataNotAllowed => "data_not_allowed",
            DropReason::DataDuplicate => "data_duplicate",
            DropReason::DataMalformed => "data_malformed",
            DropReason::NackMiss => "nack_miss",
        }
    }
}

/// Counters per [`DropReason`], plus forwarded totals.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    drops: [u64; DropReason::ALL.len()],
    /// RTP packets written to subscribers.
    pub forwarded_packets: u64,
    /// RTP packets received from publishers.
    pub received_packets: u64,
    /// Retransmissions served from the cache.
    pub retransmitted_packets: u64,
    /// Data packets forwarded (per destination).
    pub forwarded_data: u64,
    /// Keyframe requests (PLI/FIR) received from subscribers.
    pub keyframe_requests_in: u64,
    /// PLIs sent to publishers.
    pub plis_sent: u64,
    /// NACK requests received from subscribers.
    pub nacks_in: u64,
}

impl Counters {
    /// Counts one drop.
    pub fn drop(&mut self, r: DropReason) {
        self.drops[r as usize] += 1;
    }

    /// Drops counted for `r`.
    pub fn drops(&self, r: DropReason) -> u64 {
        self.drops[r as usize]
    }
}
