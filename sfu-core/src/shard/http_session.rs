//! WHIP publish and WHEP play sessions on the shard (see [`crate::http_session`]).
//!
//! Everything that can fail (SDP checks, the connection's offer/answer, room admission) runs
//! before the participant is added, so a refused request leaves nothing behind.

use super::*;
use crate::http_session::{
    HttpSessionError, OfferedMedia, PlaySelection, PlaySlot, SdpFrag, SessionAnswer, WhepState,
    check_play_offer, check_publish_offer, ufrag_of, whip_source, with_credentials,
};

/// What a PATCH did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchOutcome {
    /// Trickled candidates were taken (204).
    Trickled,
    /// ICE restarted: our new credentials as an sdpfrag, and the new entity tag (200).
    Restarted {
        /// `application/trickle-ice-sdpfrag` body.
        sdpfrag: String,
        /// New `ETag`.
        etag: String,
    },
}

fn pc_err(e: crate::peer_connection::PcError) -> HttpSessionError {
    HttpSessionError::BadSdp(e.to_string())
}

/// The entity tag of an ICE session: our ufrag, quoted.
fn etag_of(pc: &PeerConnection) -> String {
    format!("\"{}\"", pc.ufrag().unwrap_or_default())
}

/// Our ICE credentials and candidates from a local description, as an sdpfrag.
fn local_sdpfrag(sdp: &str) -> String {
    let mut out = String::new();
    let mut ufrag_seen = false;
    let mut candidates = Vec::new();
    for l in sdp.lines().map(|l| l.trim_end_matches('\r')) {
        if (l.starts_with("a=ice-ufrag:") || l.starts_with("a=ice-pwd:")) && !ufrag_seen {
            out.push_str(l);
            out.push_str("\r\n");
            if l.starts_with("a=ice-pwd:") {
                ufrag_seen = true;
            }
        } else if l.starts_with("a=candidate:") && !candidates.contains(&l) {
            candidates.push(l);
        }
    }
    for c in candidates {
        out.push_str(c);
        out.push_str("\r\n");
    }
    out
}

impl Shard {
    /// Starts a WHIP session: `p` publishes what `offer` sends, as an INGRESS participant.
    pub fn whip_publish(
        &mut self,
        now: Instant,
        mut p: JoinParams,
        offer: &str,
    ) -> Result<SessionAnswer, HttpSessionError> {
        let media = check_publish_offer(offer)?;
        self.check_admission(&p)?;
        let mut pc = PeerConnection::new(&self.factory, PcRole::Publisher, now)
            .map_err(|e| JoinError::PeerConnection(e.to_string()))?;
        let answer = pc.answer_offer(now, offer.to_owned()).map_err(pc_err)?;
        p.kind = proto::participant_info::Kind::Ingress as i32;
        p.auto_subscribe = false;
        let id = self.admit(now, p, Transport::Whip)?;
        let part = self.participants.get_mut(&id).expect("admitted above");
        part.pending_tracks = media
            .iter()
            .enumerate()
            .map(|(i, m)| whip_pending_track(i, m))
            .collect();
        let sid = part.sid.clone();
        info!(room = %part.room, identity = %part.identity, tracks = media.len(), "WHIP session started");
        let etag = etag_of(&pc);
        self.start_http_leg(id, PcRole::Publisher, pc);
        self.announce_joined(id);
        self.flush(now);
        Ok(SessionAnswer {
            participant: id,
            participant_sid: sid,
            sdp: answer,
            etag,
        })
    }

    /// Starts a WHEP session: `p` plays what `selection` picks on the m-sections `offer`
    /// receives, now or as soon as it is published.
    pub fn whep_play(
        &mut self,
        now: Instant,
        mut p: JoinParams,
        selection: PlaySelection,
        offer: &str,
    ) -> Result<SessionAnswer, HttpSessionError> {
        let media = check_play_offer(offer)?;
        self.check_admission(&p)?;
        let mut pc = PeerConnection::new(&self.factory, PcRole::Subscriber, now)
            .map_err(|e| JoinError::PeerConnection(e.to_string()))?;
        pc.set_remote_offer(now, offer.to_owned()).map_err(pc_err)?;
        let mut slots = Vec::new();
        for (i, m) in media.iter().enumerate() {
            let kind = if m.video {
                RtpCodecKind::Video
            } else {
                RtpCodecKind::Audio
            };
            let ssrc: u32 = rand::random::<u32>() | 1;
            // No codec: the viewer's own list stays negotiable, so whatever track is bound
            // later finds its payload type on this sender.
            let track = MediaStreamTrack::new(
                "switchyard".to_owned(),
                format!("{}{i}", if m.video { "video" } else { "audio" }),
                String::new(),
                kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    ..Default::default()
                }],
            );
            let sender = pc.add_track(track).map_err(pc_err)?;
            slots.push(PlaySlot {
                video: m.video,
                sender,
                ssrc,
                bound: None,
                munger: None,
            });
        }
        let answer = pc.answer(now).map_err(pc_err)?;
        p.auto_subscribe = false;
        let id = self.admit(now, p, Transport::Whep(WhepState { selection, slots }))?;
        let part = &self.participants[&id];
        let sid = part.sid.clone();
        info!(room = %part.room, identity = %part.identity, "WHEP session started");
        let etag = etag_of(&pc);
        self.start_http_leg(id, PcRole::Subscriber, pc);
        self.announce_joined(id);
        self.whep_fill(now, id);
        self.flush(now);
        Ok(SessionAnswer {
            participant: id,
            participant_sid: sid,
            sdp: answer,
            etag,
        })
    }

    fn start_http_leg(&mut self, id: ParticipantId, role: PcRole, pc: PeerConnection) {
        if let Some(u) = pc.ufrag() {
            self.demux.set_ufrag(u.to_owned(), (id, role));
        }
        match role {
            PcRole::Publisher => self.publishers.insert(id, pc),
            PcRole::Subscriber => self.subscribers.insert(id, pc),
        };
        self.dirty.push((id, role));
    }

    /// The connection of a WHIP/WHEP session.
    fn http_leg(&self, id: ParticipantId) -> Result<PcKey, HttpSessionError> {
        match self.participants.get(&id).map(|p| &p.transport) {
            Some(Transport::Whip) => Ok((id, PcRole::Publisher)),
            Some(Transport::Whep(_)) => Ok((id, PcRole::Subscriber)),
            _ => Err(HttpSessionError::NotFound),
        }
    }

    /// A PATCH on a session: trickled candidates, or an ICE restart when the fragment
    /// carries new remote credentials. `if_match` (other than `*`) must be the current
    /// entity tag.
    pub fn http_session_patch(
        &mut self,
        now: Instant,
        id: ParticipantId,
        frag: &str,
        if_match: Option<&str>,
    ) -> Result<PatchOutcome, HttpSessionError> {
        let key = self.http_leg(id)?;
        let frag = SdpFrag::parse(frag);
        let pc = self.pc(key).expect("a session has its connection");
        if let Some(tag) = if_match
            && tag != "*"
            && tag != etag_of(pc)
        {
            return Err(HttpSessionError::PreconditionFailed);
        }
        let remote = pc.remote_sdp();
        let restart = match (&frag.ufrag, &frag.pwd, &remote) {
            (Some(u), Some(_), Some(r)) => ufrag_of(r).as_deref() != Some(u.as_str()),
            _ => false,
        };
        if restart {
            let (u, pwd) = (frag.ufrag.as_deref(), frag.pwd.as_deref());
            let offer = with_credentials(
                &remote.expect("checked above"),
                u.expect("checked above"),
                pwd.expect("checked above"),
            );
            pc.set_remote_offer(now, offer)
                .map_err(|e| HttpSessionError::IceRestart(e.to_string()))?;
            let answer = pc
                .answer(now)
                .map_err(|e| HttpSessionError::IceRestart(e.to_string()))?;
            let etag = etag_of(pc);
            if let Some(u) = pc.ufrag() {
                let u = u.to_owned();
                self.demux.set_ufrag(u, key);
            }
            self.dirty.push(key);
            self.flush(now);
            return Ok(PatchOutcome::Restarted {
                sdpfrag: local_sdpfrag(&answer),
                etag,
            });
        }
        for (c, mid) in frag.candidates {
            let json = serde_json::json!({ "candidate": c, "sdpMid": mid.unwrap_or_default() });
            if let Err(e) = pc.add_remote_candidate(&json.to_string()) {
                debug!(error = %e, "ignoring trickled candidate");
            }
        }
        self.dirty.push(key);
        self.flush(now);
        Ok(PatchOutcome::Trickled)
    }

    /// A DELETE: the session's participant leaves the room.
    pub fn http_session_end(
        &mut self,
        now: Instant,
        id: ParticipantId,
    ) -> Result<(), HttpSessionError> {
        self.http_leg(id)?;
        if let Some(p) = self.participants.get_mut(&id) {
            p.left = true;
        }
        self.remove_participant(now, id, proto::DisconnectReason::ClientInitiated, false);
        self.flush(now);
        Ok(())
    }

    /// Tracks a WHEP viewer should play, in preference order.
    fn whep_wanted(&self, viewer: ParticipantId) -> Vec<String> {
        let Some(v) = self.participants.get(&viewer) else {
            return Vec::new();
        };
        let Transport::Whep(w) = &v.transport else {
            return Vec::new();
        };
        let live = |sid: &String| self.tracks.get(sid).is_some_and(|t| t.room == v.room);
        if w.selection.names_tracks() {
            return w
                .selection
                .track_sids
                .iter()
                .filter(|s| live(s))
                .cloned()
                .collect();
        }
        let members = self
            .rooms
            .get(&v.room)
            .map(|r| r.members.as_slice())
            .unwrap_or_default();
        let publishers = members
            .iter()
            .filter(|m| **m != viewer)
            .filter_map(|m| self.participants.get(m));
        let chosen = match &w.selection.participant {
            Some(identity) => publishers.into_iter().find(|p| &p.identity == identity),
            None => {
                let has = |p: &Participant, video: bool| {
                    p.published
                        .iter()
                        .any(|s| self.tracks.get(s).is_some_and(|t| t.is_video() == video))
                };
                let all: Vec<&Participant> = publishers.collect();
                all.iter()
                    .find(|p| has(p, true))
                    .or_else(|| all.iter().find(|p| has(p, false)))
                    .copied()
            }
        };
        chosen
            .map(|p| p.published.iter().filter(|s| live(s)).cloned().collect())
            .unwrap_or_default()
    }

    /// Binds free slots of a WHEP viewer to the tracks it should play.
    pub(super) fn whep_fill(&mut self, now: Instant, viewer: ParticipantId) {
        for sid in self.whep_wanted(viewer) {
            let Some(t) = self.tracks.get(&sid) else {
                continue;
            };
            let (video, mime, fmtp) = (t.is_video(), t.mime.clone(), t.fmtp.clone());
            let Some(v) = self.participants.get_mut(&viewer) else {
                return;
            };
            let Transport::Whep(w) = &mut v.transport else {
                return;
            };
            if w.slots
                .iter()
                .any(|s| s.bound.as_deref() == Some(sid.as_str()))
            {
                continue;
            }
            let Some(slot) = w
                .slots
                .iter_mut()
                .find(|s| s.bound.is_none() && s.video == video)
            else {
                continue;
            };
            let Some(pc) = self.subscribers.get_mut(&viewer) else {
                return;
            };
            let Some(pt) = pc.sender_payload_type(slot.sender, &mime, &fmtp) else {
                debug!(track = %sid, %mime, "WHEP viewer did not negotiate this codec");
                continue;
            };
            slot.bound = Some(sid.clone());
            let mut dt = DownTrack::new(viewer, slot.sender, slot.ssrc);
            dt.payload_type = Some(pt);
            if let Some(m) = slot.munger.take() {
                dt.munger = m.restart();
            }
            v.subscribed.insert(sid.clone(), slot.sender);
            v.by_out_ssrc.insert(slot.ssrc, sid.clone());
            debug!(track = %sid, viewer = %v.identity, "WHEP slot bound");
            let t = self.tracks.get_mut(&sid).expect("found above");
            t.down_tracks.push(dt);
            if video && let Some(l) = t.best_layer(now) {
                self.request_keyframe(now, &sid, l);
            }
        }
    }

    /// A WHEP slot's track went away: keep its stream position, play something else.
    pub(super) fn whep_unbind(&mut self, now: Instant, viewer: ParticipantId, dt: DownTrack) {
        if let Some(v) = self.participants.get_mut(&viewer)
            && let Transport::Whep(w) = &mut v.transport
            && let Some(slot) = w.slots.iter_mut().find(|s| s.sender == dt.sender)
        {
            slot.bound = None;
            slot.munger = Some(dt.munger);
        }
        self.whep_fill(now, viewer);
    }

    /// A track was published in `room`: WHEP viewers with a free slot may want it.
    pub(super) fn whep_on_publish(&mut self, now: Instant, room: &str) {
        let viewers: Vec<ParticipantId> = self
            .rooms
            .get(room)
            .map(|r| r.members.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|m| {
                self.participants
                    .get(m)
                    .is_some_and(|p| matches!(p.transport, Transport::Whep(_)))
            })
            .collect();
        for v in viewers {
            self.whep_fill(now, v);
        }
    }
}

/// The track a WHIP m-section announces (like an `AddTrackRequest` would).
fn whip_pending_track(i: usize, m: &OfferedMedia) -> PendingTrack {
    let (ty, name) = if m.video {
        (proto::TrackType::Video, "video")
    } else {
        (proto::TrackType::Audio, "audio")
    };
    let info = proto::TrackInfo {
        sid: new_sid(TRACK_PREFIX),
        r#type: ty as i32,
        name: name.to_owned(),
        source: whip_source(m.video) as i32,
        stream: "whip".to_owned(),
        ..Default::default()
    };
    PendingTrack {
        cid: m.track_id.clone().unwrap_or_else(|| format!("whip-{i}")),
        info,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdpfrag_of_answer() {
        let sdp = "v=0\r\nm=audio 9 X 0\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\n\
                   a=candidate:1 1 udp 1 10.0.0.1 7882 typ host\r\nm=video 9 X 0\r\n\
                   a=ice-ufrag:u\r\na=ice-pwd:p\r\na=candidate:1 1 udp 1 10.0.0.1 7882 typ host\r\n";
        assert_eq!(
            local_sdpfrag(sdp),
            "a=ice-ufrag:u\r\na=ice-pwd:p\r\na=candidate:1 1 udp 1 10.0.0.1 7882 typ host\r\n"
        );
    }
}
