//! Subscribing: down-tracks on the subscriber connection and the server-offered
//! negotiation that carries them (one offer in flight; changes meanwhile are folded into
//! one re-offer), plus subscriber track settings.

use super::*;

impl Shard {
    pub(super) fn on_subscriber_answer(
        &mut self,
        now: Instant,
        pid: ParticipantId,
        sd: proto::SessionDescription,
    ) {
        let expected = self
            .participants
            .get(&pid)
            .map(|p| p.negotiation.offer_id)
            .unwrap_or(0);
        if sd.id != 0 && sd.id != expected {
            debug!(
                got = sd.id,
                expected, "ignoring an answer to an older offer"
            );
            return;
        }
        let Some(pc) = self.subscribers.get_mut(&pid) else {
            return;
        };
        if let Err(e) = pc.accept_answer(now, sd.sdp) {
            warn!(error = %e, "subscriber answer rejected");
        }
        self.dirty.push((pid, PcRole::Subscriber));
        // Learn the negotiated payload types of every down-track.
        let subs: Vec<(String, rtc::rtp_transceiver::RTCRtpSenderId)> = self
            .participants
            .get(&pid)
            .map(|p| p.subscribed.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default();
        let mut plis = Vec::new();
        for (sid, sender) in subs {
            if let Some(t) = self.tracks.get_mut(&sid) {
                let pt = pc.sender_payload_type(sender, &t.mime, &t.fmtp);
                if let Some(dt) = t.down_tracks.iter_mut().find(|d| d.subscriber == pid) {
                    dt.payload_type = pt;
                }
                if t.is_video() {
                    // A subscriber can only start on a keyframe.
                    if let Some(l) = t.best_layer(now) {
                        let layer = &mut t.layers[l];
                        if layer.keyframes.request(now) {
                            plis.push((t.publisher, layer.receiver_id, layer.ssrc));
                        }
                    }
                }
            }
        }
        for (publisher, rx, ssrc) in plis {
            self.send_pli(now, publisher, rx, ssrc);
        }
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        p.negotiation.awaiting_answer = false;
        if std::mem::take(&mut p.negotiation.pending) {
            self.negotiate(now, pid);
        }
    }

    /// Sends a (re)offer on the subscriber connection, or queues one if an offer is out.
    pub(super) fn negotiate(&mut self, now: Instant, pid: ParticipantId) {
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        if !p.is_livekit() {
            // WHEP: the viewer's one offer/answer is all there is.
            return;
        }
        if p.negotiation.awaiting_answer {
            p.negotiation.pending = true;
            return;
        }
        let Some(pc) = self.subscribers.get_mut(&pid) else {
            return;
        };
        match pc.create_offer(now) {
            Ok(sdp) => {
                p.negotiation.offer_id += 1;
                p.negotiation.awaiting_answer = true;
                let mut mids = HashMap::new();
                for (sid, sender) in &p.subscribed {
                    if let Some(mid) = pc.sender_mid(*sender) {
                        mids.insert(mid, sid.clone());
                    }
                }
                if let Some(u) = pc.ufrag() {
                    self.demux
                        .set_ufrag(u.to_owned(), (pid, PcRole::Subscriber));
                }
                let id = p.negotiation.offer_id;
                let trickle = pc.trickle_once(&sdp);
                self.signal(
                    pid,
                    signal::resp(Resp::Offer(signal::sdp("offer", sdp, id, mids))),
                );
                if let Some(t) = trickle {
                    self.signal(pid, signal::trickle(t, proto::SignalTarget::Subscriber));
                }
                self.dirty.push((pid, PcRole::Subscriber));
            }
            Err(e) => warn!(error = %e, "cannot create subscriber offer"),
        }
    }

    /// Adds a down-track of `track_sid` for `pid` (negotiation is the caller's job).
    pub(super) fn subscribe(&mut self, _now: Instant, pid: ParticipantId, track_sid: &str) {
        let Some(p) = self.participants.get(&pid) else {
            return;
        };
        if !p.permission.can_subscribe || p.subscribed.contains_key(track_sid) || !p.is_livekit() {
            return;
        }
        let Some(t) = self.tracks.get(track_sid) else {
            let r = proto::SubscriptionResponse {
                track_sid: track_sid.to_owned(),
                err: proto::SubscriptionError::SeTrackNotfound as i32,
            };
            self.signal(pid, signal::resp(Resp::SubscriptionResponse(r)));
            return;
        };
        if t.publisher == pid || t.room != p.room {
            return;
        }
        let kind = if t.is_video() {
            RtpCodecKind::Video
        } else {
            RtpCodecKind::Audio
        };
        let ssrc: u32 = rand::random::<u32>() | 1;
        let codec = RTCRtpCodec {
            mime_type: t.mime.clone(),
            clock_rate: t.clock_rate,
            channels: t.channels,
            sdp_fmtp_line: t.fmtp.clone(),
            rtcp_feedback: Vec::new(),
        };
        let track = MediaStreamTrack::new(
            t.stream_id(),
            t.info.sid.clone(),
            t.info.name.clone(),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec,
                ..Default::default()
            }],
        );
        let Some(pc) = self.subscribers.get_mut(&pid) else {
            return;
        };
        let sender = match pc.add_send_track(track) {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, track = %track_sid, "cannot add down-track");
                return;
            }
        };
        let disabled = p.disabled.contains(track_sid);
        let p = self.participants.get_mut(&pid).expect("checked above");
        p.subscribed.insert(track_sid.to_owned(), sender);
        p.by_out_ssrc.insert(ssrc, track_sid.to_owned());
        let mut dt = DownTrack::new(pid, sender, ssrc);
        dt.paused = disabled;
        self.tracks
            .get_mut(track_sid)
            .expect("checked above")
            .down_tracks
            .push(dt);
    }

    pub(super) fn unsubscribe(&mut self, now: Instant, pid: ParticipantId, track_sid: &str) {
        let Some(t) = self.tracks.get_mut(track_sid) else {
            return;
        };
        let Some(i) = t.down_tracks.iter().position(|d| d.subscriber == pid) else {
            return;
        };
        let dt = t.down_tracks.remove(i);
        self.detach_down_track(now, track_sid, dt);
    }

    pub(super) fn set_track_disabled(
        &mut self,
        now: Instant,
        pid: ParticipantId,
        track_sid: &str,
        disabled: bool,
    ) {
        if let Some(p) = self.participants.get_mut(&pid) {
            if disabled {
                p.disabled.insert(track_sid.to_owned());
            } else {
                p.disabled.remove(track_sid);
            }
        }
        let Some(t) = self.tracks.get_mut(track_sid) else {
            return;
        };
        let mut want_key = None;
        let video = t.is_video();
        let best = t.best_layer(now);
        if let Some(dt) = t.down_tracks.iter_mut().find(|d| d.subscriber == pid) {
            let resumed = dt.paused && !disabled;
            dt.paused = disabled;
            if resumed && video {
                // Resume on a keyframe: forget the current layer so the forwarder waits.
                dt.munger = std::mem::take(&mut dt.munger).restart();
                want_key = best;
            }
        }
        if let Some(l) = want_key {
            self.request_keyframe(now, track_sid, l);
        }
    }

    /// Ends a down-track (already taken out of its track): a LiveKit subscriber loses the
    /// transceiver (renegotiated), a WHEP viewer's slot is freed for another track.
    pub(super) fn detach_down_track(&mut self, now: Instant, track_sid: &str, dt: DownTrack) {
        let sub = dt.subscriber;
        let Some(sp) = self.participants.get_mut(&sub) else {
            return;
        };
        sp.subscribed.remove(track_sid);
        sp.by_out_ssrc.remove(&dt.ssrc);
        if !sp.is_livekit() {
            self.whep_unbind(now, sub, dt);
            return;
        }
        if let Some(pc) = self.subscribers.get_mut(&sub) {
            let _ = pc.remove_send_track(dt.sender);
        }
        self.negotiate(now, sub);
    }
}
