//! One subscriber's copy of a published track: the sender on the subscriber connection,
//! the SSRC/PT it uses there, the rewriting state and a sequencer that maps outgoing
//! sequence numbers back to publisher packets, so a NACK can be served from the layer's
//! cache.

use rtc::rtp_transceiver::RTCRtpSenderId;

use crate::{ParticipantId, rtp_munger::RtpMunger};

/// Outgoing packets remembered for NACKs.
const SEQUENCER_SIZE: usize = 1024;

/// Where an outgoing packet came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentPacket {
    /// Outgoing sequence number (tag of the slot).
    pub out_seq: u16,
    /// Outgoing timestamp.
    pub out_ts: u32,
    /// Publisher layer SSRC.
    pub in_ssrc: u32,
    /// Publisher sequence number.
    pub in_seq: u16,
}

/// Ring of recently sent packets.
#[derive(Debug, Clone)]
pub struct Sequencer {
    slots: Vec<Option<SentPacket>>,
}

impl Default for Sequencer {
    fn default() -> Self {
        Self {
            slots: vec![None; SEQUENCER_SIZE],
        }
    }
}

impl Sequencer {
    /// Remembers a sent packet.
    pub fn push(&mut self, p: SentPacket) {
        let i = p.out_seq as usize % SEQUENCER_SIZE;
        self.slots[i] = Some(p);
    }

    /// Looks up an outgoing sequence number.
    pub fn get(&self, out_seq: u16) -> Option<SentPacket> {
        self.slots[out_seq as usize % SEQUENCER_SIZE].filter(|p| p.out_seq == out_seq)
    }
}

/// A down-track.
#[derive(Debug)]
pub struct DownTrack {
    /// Subscriber.
    pub subscriber: ParticipantId,
    /// Sender on the subscriber connection.
    pub sender: RTCRtpSenderId,
    /// SSRC on the subscriber leg.
    pub ssrc: u32,
    /// Negotiated payload type (known once the subscriber answered).
    pub payload_type: Option<u8>,
    /// Subscriber disabled the track (UpdateTrackSettings) or is not ready.
    pub paused: bool,
    /// Rewriting state.
    pub munger: RtpMunger,
    /// Sent-packet history for NACKs.
    pub sequencer: Sequencer,
}

impl DownTrack {
    /// A new down-track.
    pub fn new(subscriber: ParticipantId, sender: RTCRtpSenderId, ssrc: u32) -> Self {
        Self {
            subscriber,
            sender,
            ssrc,
            payload_type: None,
            paused: false,
            munger: RtpMunger::default(),
            sequencer: Sequencer::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequencer_tags_slots() {
        let mut s = Sequencer::default();
        s.push(SentPacket {
            out_seq: 5,
            out_ts: 1,
            in_ssrc: 9,
            in_seq: 100,
        });
        assert_eq!(s.get(5).unwrap().in_seq, 100);
        assert!(s.get(5 + SEQUENCER_SIZE as u16).is_none());
    }
}
