//! A WHEP subscriber without a decoder: offers to receive video and audio, reads the
//! probe at the end of every RTP payload, and counts, per measured packet, whether it
//! arrived (once) and how long after it was sent.

use std::{cell::RefCell, rc::Rc, time::Instant};

use rtc::{
    peer_connection::{RTCPeerConnection, message::RTCMessage},
    rtp_transceiver::{
        RTCRtpTransceiverDirection, RTCRtpTransceiverInit, rtp_sender::RtpCodecKind,
    },
};

use super::{
    clock::{Clock, SharedWindow},
    payload::Probe,
    peer::{PeerError, Role},
};

/// Which counters of one kind were seen: a growable bit set.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    bits: Vec<u64>,
}

impl Seen {
    /// Marks `counter`; false if it was already marked (a duplicate).
    pub fn insert(&mut self, counter: u64) -> bool {
        let (word, bit) = ((counter / 64) as usize, counter % 64);
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        let mask = 1u64 << bit;
        let fresh = self.bits[word] & mask == 0;
        self.bits[word] |= mask;
        fresh
    }
}

/// What a subscriber saw, read by the run.
#[derive(Debug, Default)]
pub struct SubscriberStats {
    /// The publisher it plays.
    pub publisher: u32,
    /// The connection came up.
    pub connected: bool,
    /// Setting up failed (HTTP or SDP): why.
    pub failed: Option<String>,
    /// First RTP packet carrying our probe, per kind (video, audio).
    pub first_packet: [Option<Instant>; 2],
    /// Every RTP packet read.
    pub packets_in: u64,
    /// Packets without our probe, or from another publisher.
    pub foreign: u64,
    /// Measured packets (send time in the window), each counted once.
    pub delivered: u64,
    /// Measured packets that came again (retransmissions that were not needed, loops).
    pub duplicates: u64,
    /// One-way latency of each delivered packet, microseconds.
    pub latencies_us: Vec<u32>,
    seen: [Seen; 2],
}

/// The subscriber role of one peer.
pub struct Subscriber {
    clock: Clock,
    window: SharedWindow,
    stats: Rc<RefCell<SubscriberStats>>,
}

impl Subscriber {
    /// Adds receive-only video and audio transceivers to `pc` (before its offer).
    pub fn new(
        pc: &mut RTCPeerConnection,
        clock: Clock,
        window: SharedWindow,
        stats: Rc<RefCell<SubscriberStats>>,
    ) -> Result<Self, PeerError> {
        for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
            pc.add_transceiver_from_kind(
                kind,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    ..Default::default()
                }),
            )
            .map_err(|source| PeerError::Rtc {
                op: "add recvonly transceiver",
                source,
            })?;
        }
        Ok(Self {
            clock,
            window,
            stats,
        })
    }
}

impl SubscriberStats {
    /// Fresh counters of a subscriber that plays `publisher`.
    pub fn playing(publisher: u32) -> Self {
        Self {
            publisher,
            ..Default::default()
        }
    }

    /// True once media of every published kind arrived (video, and audio if `audio`):
    /// audio flows at once while video may wait for a keyframe.
    pub fn receiving(&self, audio: bool) -> bool {
        self.first_packet[0].is_some() && (!audio || self.first_packet[1].is_some())
    }

    /// Records one received payload at `now_ns` (generator clock) if its send time is in
    /// `window`.
    pub fn record(&mut self, payload: &[u8], now_ns: u64, window: &super::clock::Window) {
        self.packets_in += 1;
        let Some(p) = Probe::read(payload).filter(|p| p.publisher == self.publisher) else {
            self.foreign += 1;
            return;
        };
        if !window.contains(p.sent_ns) {
            return;
        }
        if self.seen[p.kind.index()].insert(p.counter) {
            self.delivered += 1;
            let us = now_ns.saturating_sub(p.sent_ns) / 1000;
            self.latencies_us.push(us.min(u64::from(u32::MAX)) as u32);
        } else {
            self.duplicates += 1;
        }
    }
}

impl Role for Subscriber {
    fn on_connected(&mut self, _now: Instant) {
        self.stats.borrow_mut().connected = true;
    }

    fn on_message(&mut self, now: Instant, msg: RTCMessage) {
        if let RTCMessage::RtpPacket(_, pkt) = msg {
            let mut s = self.stats.borrow_mut();
            if let Some(p) = Probe::read(&pkt.payload) {
                s.first_packet[p.kind.index()].get_or_insert(now);
            }
            s.record(&pkt.payload, self.clock.ns(now), &self.window.get());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{super::clock::Window, super::payload::*, *};

    #[test]
    fn bit_set_finds_duplicates() {
        let mut s = Seen::default();
        assert!(s.insert(0));
        assert!(s.insert(1000));
        assert!(!s.insert(1000));
        assert!(!s.insert(0));
        assert!(s.insert(63));
        assert!(s.insert(64));
    }

    #[test]
    fn counts_only_measured_packets_of_its_publisher_once() {
        let mut st = SubscriberStats {
            publisher: 2,
            ..Default::default()
        };
        let w = Window {
            start_ns: 1_000_000,
            end_ns: 2_000_000,
        };
        let pkt = |publisher, counter, sent_ns| {
            opus(
                100,
                &Probe {
                    publisher,
                    kind: Kind::Audio,
                    counter,
                    sent_ns,
                },
            )
        };
        st.record(&pkt(2, 0, 500_000), 600_000, &w); // before the window
        st.record(&pkt(2, 1, 1_000_000), 1_250_000, &w);
        st.record(&pkt(2, 1, 1_000_000), 1_900_000, &w); // duplicate
        st.record(&pkt(3, 2, 1_500_000), 1_600_000, &w); // another publisher
        st.record(&[0u8; 10], 1_600_000, &w); // no probe
        st.record(&pkt(2, 2, 1_999_999), 2_100_000, &w); // sent inside, arrives after
        st.record(&pkt(2, 3, 2_000_000), 2_100_000, &w); // after the window
        assert_eq!(st.packets_in, 7);
        assert_eq!(st.delivered, 2);
        assert_eq!(st.duplicates, 1);
        assert_eq!(st.foreign, 2);
        assert_eq!(st.latencies_us, vec![250, 100]);
    }
}
