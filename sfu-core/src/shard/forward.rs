//! The forwarding hot path (one publisher packet to every down-track) and the feedback
//! that flows back: subscriber NACKs served from the layer caches, keyframe requests
//! throttled towards the publisher.

use super::*;

impl Shard {
    pub(super) fn send_pli(
        &mut self,
        now: Instant,
        publisher: ParticipantId,
        receiver: rtc::rtp_transceiver::RTCRtpReceiverId,
        media_ssrc: u32,
    ) {
        use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
        if let Some(pc) = self.publishers.get_mut(&publisher) {
            pc.write_rtcp(
                now,
                receiver,
                vec![Box::new(PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc,
                })],
            );
            self.counters.plis_sent += 1;
            self.dirty.push((publisher, PcRole::Publisher));
        }
    }

    /// The forwarding hot path: one publisher packet to every down-track.
    pub(super) fn on_rtp(
        &mut self,
        now: Instant,
        pid: ParticipantId,
        track_id: &str,
        pkt: rtp::Packet,
    ) {
        self.counters.received_packets += 1;
        let sid = self.published_sid(pid, track_id);
        let Some(sid) = sid else {
            self.counters.drop(DropReason::UnknownTrack);
            return;
        };
        let t = self.tracks.get_mut(&sid).expect("found above");
        let Some(li) = t.layer_index(pkt.header.ssrc) else {
            self.counters.drop(DropReason::UnknownTrack);
            return;
        };
        let video = t.is_video();
        let key = video && is_keyframe(t.codec, &pkt.payload);
        {
            let layer = &mut t.layers[li];
            layer.last_seen = Some(now);
            if let Some(c) = layer.cache.as_mut() {
                c.insert(&pkt);
            }
            if key {
                layer.keyframes.keyframe_received();
            }
        }
        if t.info.muted {
            // Muted by the publisher or the server API: nothing reaches subscribers.
            self.counters.drop(DropReason::Muted);
            return;
        }
        let target = if video { t.best_layer(now) } else { Some(li) };
        let target_ssrc = target.map(|i| t.layers[i].ssrc);
        let clock_rate = t.clock_rate;
        let mut want_keyframe = false;
        let input = InPacket {
            ssrc: pkt.header.ssrc,
            seq: pkt.header.sequence_number,
            ts: pkt.header.timestamp,
        };
        for dt in t.down_tracks.iter_mut() {
            if dt.paused {
                self.counters.drop(DropReason::Paused);
                continue;
            }
            let Some(pt) = dt.payload_type else {
                self.counters.drop(DropReason::NotNegotiated);
                continue;
            };
            let current = dt.munger.current_ssrc();
            if current != target_ssrc && Some(input.ssrc) == target_ssrc {
                // Switch (or start) only where the decoder can: a keyframe (any audio packet).
                if !video || key {
                    dt.munger.switch_to(input, now, clock_rate);
                } else {
                    want_keyframe = true;
                }
            } else if current != target_ssrc && current != Some(input.ssrc) {
                want_keyframe |= video;
            }
            let (seq, ts) = match dt.munger.munge(input, now) {
                Munged::Forward { seq, ts } => (seq, ts),
                Munged::TooOld => {
                    self.counters.drop(DropReason::BeforeSwitch);
                    continue;
                }
                Munged::OtherLayer => {
                    self.counters.drop(if current.is_none() {
                        DropReason::WaitingForKeyframe
                    } else {
                        DropReason::NotSelectedLayer
                    });
                    continue;
                }
            };
            let mut out = rtp::Packet {
                header: pkt.header.clone(),
                payload: pkt.payload.clone(),
            };
            out.header.ssrc = dt.ssrc;
            out.header.payload_type = pt;
            out.header.sequence_number = seq;
            out.header.timestamp = ts;
            out.header.extension = false;
            out.header.extensions.clear();
            out.header.extensions_padding = 0;
            if video {
                dt.sequencer.push(SentPacket {
                    out_seq: seq,
                    out_ts: ts,
                    in_ssrc: input.ssrc,
                    in_seq: input.seq,
                });
            }
            let sub = dt.subscriber;
            let written = match self.subscribers.get_mut(&sub) {
                Some(pc) => pc.write_rtp(now, dt.sender, out),
                None => false,
            };
            if written {
                self.counters.forwarded_packets += 1;
                self.dirty.push((sub, PcRole::Subscriber));
            } else {
                self.counters.drop(DropReason::WriteFailed);
            }
        }
        if want_keyframe && let Some(ti) = target {
            self.request_keyframe(now, &sid, ti);
        }
        self.dirty.dedup();
    }

    pub(super) fn on_subscriber_rtcp(
        &mut self,
        now: Instant,
        pid: ParticipantId,
        pkts: Vec<Box<dyn rtcp::Packet>>,
    ) {
        use rtc::rtcp::{
            payload_feedbacks::{
                full_intra_request::FullIntraRequest,
                picture_loss_indication::PictureLossIndication,
            },
            transport_feedbacks::transport_layer_nack::TransportLayerNack,
        };
        for p in pkts {
            let any = p.as_any();
            if let Some(nack) = any.downcast_ref::<TransportLayerNack>() {
                self.counters.nacks_in += 1;
                let seqs: Vec<u16> = nack.nacks.iter().flat_map(|n| n.packet_list()).collect();
                self.serve_nack(now, pid, nack.media_ssrc, &seqs);
            } else if let Some(pli) = any.downcast_ref::<PictureLossIndication>() {
                self.counters.keyframe_requests_in += 1;
                self.forward_keyframe_request(now, pid, pli.media_ssrc);
            } else if let Some(fir) = any.downcast_ref::<FullIntraRequest>() {
                self.counters.keyframe_requests_in += 1;
                for e in &fir.fir {
                    self.forward_keyframe_request(now, pid, e.ssrc);
                }
            }
        }
    }

    pub(super) fn forward_keyframe_request(
        &mut self,
        now: Instant,
        pid: ParticipantId,
        out_ssrc: u32,
    ) {
        let Some(sid) = self.subscribed_sid(pid, out_ssrc) else {
            return;
        };
        let Some(t) = self.tracks.get(&sid) else {
            return;
        };
        let layer_ssrc = t
            .down_tracks
            .iter()
            .find(|d| d.subscriber == pid)
            .and_then(|d| d.munger.current_ssrc());
        if let Some(li) = layer_ssrc
            .and_then(|s| t.layer_index(s))
            .or_else(|| t.best_layer(now))
        {
            self.request_keyframe(now, &sid, li);
        }
    }

    /// Answers a subscriber NACK from the layer caches.
    pub(super) fn serve_nack(
        &mut self,
        now: Instant,
        pid: ParticipantId,
        out_ssrc: u32,
        seqs: &[u16],
    ) {
        let Some(sid) = self.subscribed_sid(pid, out_ssrc) else {
            return;
        };
        let Some(t) = self.tracks.get_mut(&sid) else {
            return;
        };
        let Some(dt) = t.down_tracks.iter().find(|d| d.subscriber == pid) else {
            return;
        };
        let Some(pt) = dt.payload_type else { return };
        let (sender, ssrc) = (dt.sender, dt.ssrc);
        let mut resend = Vec::new();
        for &s in seqs {
            let hit = dt.sequencer.get(s).and_then(|sent| {
                let li = t.layer_index(sent.in_ssrc)?;
                let orig = t.layers[li].cache.as_ref()?.get(sent.in_seq)?;
                let mut p = rtp::Packet {
                    header: orig.header.clone(),
                    payload: orig.payload.clone(),
                };
                p.header.ssrc = ssrc;
                p.header.payload_type = pt;
                p.header.sequence_number = sent.out_seq;
                p.header.timestamp = sent.out_ts;
                p.header.extension = false;
                p.header.extensions.clear();
                p.header.extensions_padding = 0;
                Some(p)
            });
            match hit {
                Some(p) => resend.push(p),
                None => self.counters.drop(DropReason::NackMiss),
            }
        }
        if let Some(pc) = self.subscribers.get_mut(&pid) {
            for p in resend {
                if pc.write_rtp(now, sender, p) {
                    self.counters.retransmitted_packets += 1;
                }
            }
            self.dirty.push((pid, PcRole::Subscriber));
        }
    }
}
