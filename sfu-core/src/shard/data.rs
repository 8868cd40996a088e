//! Data packets: LiveKit `DataPacket`s from a publisher's `_reliable`/`_lossy` channel to
//! the other participants' matching channel, stamped with the sender.

use super::*;

impl Shard {
    pub(super) fn on_data(
        &mut self,
        now: Instant,
        pid: ParticipantId,
        role: PcRole,
        channel: rtc::data_channel::RTCDataChannelId,
        bytes: &[u8],
    ) {
        if role != PcRole::Publisher {
            return;
        }
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        // Only `_reliable` and `_lossy` carry DataPackets (`_data_track` frames are not ours yet).
        let reliable = match p.publisher_channels.get(&channel).map(String::as_str) {
            Some("_reliable") => true,
            Some("_lossy") => false,
            _ => return,
        };
        let Ok(mut dp) = proto::DataPacket::decode(bytes) else {
            self.counters.drop(DropReason::DataMalformed);
            return;
        };
        if !p.permission.can_publish_data {
            self.counters.drop(DropReason::DataNotAllowed);
            return;
        }
        if reliable && dp.sequence > 0 {
            if dp.sequence <= p.last_reliable_seq {
                self.counters.drop(DropReason::DataDuplicate);
                return;
            }
            p.last_reliable_seq = dp.sequence;
        }
        // Metrics are not forwarded; transcriptions only from agents (as LiveKit does).
        let agent = p.kind == proto::participant_info::Kind::Agent as i32;
        match dp.value {
            Some(proto::data_packet::Value::Metrics(_)) => return,
            Some(proto::data_packet::Value::Transcription(_)) if !agent => {
                self.counters.drop(DropReason::DataNotAllowed);
                return;
            }
            _ => {}
        }
        // The channel decides the kind (the field is deprecated and clients disagree on it).
        #[allow(deprecated)]
        {
            dp.kind = if reliable {
                proto::data_packet::Kind::Reliable
            } else {
                proto::data_packet::Kind::Lossy
            } as i32;
        }
        let hidden = p.hidden();
        dp.participant_identity = if hidden {
            String::new()
        } else {
            p.identity.clone()
        };
        dp.participant_sid = if hidden { String::new() } else { p.sid.clone() };
        #[allow(deprecated)]
        let mut destinations = dp.destination_identities.clone();
        #[allow(deprecated)]
        if let Some(proto::data_packet::Value::User(u)) = dp.value.as_mut() {
            u.participant_identity = dp.participant_identity.clone();
            u.participant_sid = dp.participant_sid.clone();
            destinations.extend(u.destination_identities.iter().cloned());
        }
        let room = p.room.clone();
        let encoded = dp.encode_to_vec();
        let members = self
            .rooms
            .get(&room)
            .map(|r| r.members.clone())
            .unwrap_or_default();
        for m in members {
            if m == pid {
                continue;
            }
            let Some(target) = self.participants.get(&m) else {
                continue;
            };
            if !destinations.is_empty() && !destinations.contains(&target.identity) {
                continue;
            }
            self.send_data_to(now, m, reliable, &encoded);
        }
    }

    /// Sends an encoded DataPacket to one participant on its `_reliable` or `_lossy` channel.
    pub(super) fn send_data_to(
        &mut self,
        now: Instant,
        to: ParticipantId,
        reliable: bool,
        encoded: &[u8],
    ) {
        let Some(target) = self.participants.get(&to) else {
            return;
        };
        let ch = if reliable {
            target.channels.reliable
        } else {
            target.channels.lossy
        };
        let Some(ch) = ch else { return };
        let sent = match self.subscribers.get_mut(&to) {
            Some(pc) => pc.send_data(now, ch, encoded),
            None => false,
        };
        if sent {
            self.counters.forwarded_data += 1;
            self.dirty.push((to, PcRole::Subscriber));
        } else {
            self.counters.drop(DropReason::WriteFailed);
        }
    }
}
