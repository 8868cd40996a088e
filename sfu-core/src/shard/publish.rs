//! Publishing: `AddTrackRequest`, the client's publisher offer, the first packets that
//! make a track live, mute, self metadata updates and unpublish.

use super::*;

impl Shard {
    pub(super) fn on_add_track(&mut self, pid: ParticipantId, a: proto::AddTrackRequest) {
        let p = self.participants.get_mut(&pid).expect("checked by caller");
        let allowed_sources = &p.permission.can_publish_sources;
        let source_ok = allowed_sources.is_empty() || allowed_sources.contains(&a.source);
        if !p.permission.can_publish || !source_ok {
            let r = proto::RequestResponse {
                request_id: 0,
                reason: proto::request_response::Reason::NotAllowed as i32,
                message: "does not have permission to publish".into(),
                request: Some(proto::request_response::Request::AddTrack(a)),
            };
            self.signal(pid, signal::resp(Resp::RequestResponse(r)));
            return;
        }
        let stream = if a.stream.is_empty() {
            match proto::TrackSource::try_from(a.source) {
                Ok(proto::TrackSource::ScreenShare | proto::TrackSource::ScreenShareAudio) => {
                    "screen".to_owned()
                }
                _ => "camera".to_owned(),
            }
        } else {
            a.stream.clone()
        };
        #[allow(deprecated)]
        let info = proto::TrackInfo {
            sid: new_sid(TRACK_PREFIX),
            r#type: a.r#type,
            name: a.name.clone(),
            muted: a.muted,
            width: a.width,
            height: a.height,
            simulcast: a.layers.len() > 1,
            disable_dtx: a.disable_dtx,
            source: a.source,
            layers: a.layers.clone(),
            stereo: a.stereo,
            disable_red: a.disable_red,
            encryption: a.encryption,
            stream,
            audio_features: a.audio_features.clone(),
            backup_codec_policy: a.backup_codec_policy,
            ..Default::default()
        };
        p.pending_tracks.retain(|t| t.cid != a.cid);
        p.pending_tracks.push(PendingTrack {
            cid: a.cid.clone(),
            info: info.clone(),
        });
        self.signal(
            pid,
            signal::resp(Resp::TrackPublished(proto::TrackPublishedResponse {
                cid: a.cid,
                track: Some(info),
            })),
        );
    }

    pub(super) fn on_mute(&mut self, now: Instant, pid: ParticipantId, sid: &str, muted: bool) {
        let owns = self
            .participants
            .get(&pid)
            .is_some_and(|p| p.published.iter().any(|s| s == sid));
        if owns {
            let mut resume_layer = None;
            if let Some(t) = self.tracks.get_mut(sid) {
                t.info.muted = muted;
                if !muted && t.is_video() {
                    resume_layer = t.best_layer(now);
                }
            }
            // Subscribers continue on a keyframe after an unmute.
            if let Some(li) = resume_layer {
                self.request_keyframe(now, sid, li);
            }
        } else if let Some(p) = self.participants.get_mut(&pid)
            && let Some(t) = p.pending_tracks.iter_mut().find(|t| t.info.sid == sid)
        {
            t.info.muted = muted;
            return;
        }
        if let Some(p) = self.participants.get_mut(&pid) {
            p.bump();
        }
        self.broadcast_participant(pid, true);
    }

    pub(super) fn on_update_metadata(
        &mut self,
        pid: ParticipantId,
        u: proto::UpdateParticipantMetadata,
    ) {
        use crate::room_api::{MAX_ATTRIBUTES_BYTES, MAX_METADATA_BYTES};
        let attrs: usize = u.attributes.iter().map(|(k, v)| k.len() + v.len()).sum();
        if u.metadata.len() > MAX_METADATA_BYTES || attrs > MAX_ATTRIBUTES_BYTES {
            let r = signal::request_response(
                u.request_id,
                proto::request_response::Reason::LimitExceeded,
                "metadata or attributes exceed the size limit",
            );
            self.signal(pid, r);
            return;
        }
        let p = self.participants.get_mut(&pid).expect("checked by caller");
        if !p.permission.can_update_metadata {
            let r = signal::request_response(
                u.request_id,
                proto::request_response::Reason::NotAllowed,
                "does not have permission to update own metadata",
            );
            self.signal(pid, r);
            return;
        }
        if !u.metadata.is_empty() {
            p.metadata = u.metadata;
        }
        if !u.name.is_empty() {
            p.name = u.name;
        }
        for (k, v) in u.attributes {
            if v.is_empty() {
                p.attributes.remove(&k);
            } else {
                p.attributes.insert(k, v);
            }
        }
        p.bump();
        self.broadcast_participant(pid, true);
        self.signal(
            pid,
            signal::request_response(u.request_id, proto::request_response::Reason::Ok, ""),
        );
    }

    pub(super) fn on_publisher_offer(
        &mut self,
        now: Instant,
        pid: ParticipantId,
        sd: proto::SessionDescription,
    ) {
        if !self.publishers.contains_key(&pid) {
            match PeerConnection::new(&self.factory, PcRole::Publisher, now) {
                Ok(pc) => {
                    self.publishers.insert(pid, pc);
                }
                Err(e) => {
                    warn!(error = %e, "cannot create publisher connection");
                    return;
                }
            }
        }
        let sending = crate::sdp_tracks::sending_track_ids(&sd.sdp);
        let pc = self.publishers.get_mut(&pid).expect("inserted above");
        match pc.answer_offer(now, sd.sdp) {
            Ok(answer) => {
                // Tracks the client stopped sending are unpublished.
                let gone: Vec<String> = self.participants[&pid]
                    .published
                    .iter()
                    .filter(|sid| {
                        self.tracks
                            .get(*sid)
                            .is_some_and(|t| !sending.contains(&t.rtc_track_id))
                    })
                    .cloned()
                    .collect();
                for sid in gone {
                    self.unpublish(now, pid, &sid);
                }
                let Some(pc) = self.publishers.get_mut(&pid) else {
                    return;
                };
                if let Some(u) = pc.ufrag() {
                    self.demux.set_ufrag(u.to_owned(), (pid, PcRole::Publisher));
                }
                let trickle = pc.trickle_once(&answer);
                let msg = signal::sdp("answer", answer, sd.id, HashMap::new());
                self.signal(pid, signal::resp(Resp::Answer(msg)));
                if let Some(t) = trickle {
                    self.signal(pid, signal::trickle(t, proto::SignalTarget::Publisher));
                }
                self.dirty.push((pid, PcRole::Publisher));
            }
            Err(e) => warn!(error = %e, "publisher offer rejected"),
        }
    }

    pub(super) fn on_track_open(&mut self, now: Instant, pid: ParticipantId, open: TrackOpen) {
        // A known track: a new simulcast layer, or the same SSRC re-bound after renegotiation.
        let known = self.published_sid(pid, &open.track_id);
        if let Some(sid) = known {
            let t = self.tracks.get_mut(&sid).expect("found above");
            t.add_layer(open.ssrc, open.rid, open.receiver_id);
            return;
        }
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        let Some(mime) = open.mime.clone() else {
            warn!(track = %open.track_id, "track without a codec");
            return;
        };
        let is_video = mime.to_ascii_lowercase().starts_with("video/");
        let want_type = if is_video {
            proto::TrackType::Video
        } else {
            proto::TrackType::Audio
        } as i32;
        let idx = p
            .pending_tracks
            .iter()
            .position(|t| t.cid == open.track_id)
            .or_else(|| {
                p.pending_tracks
                    .iter()
                    .position(|t| t.info.r#type == want_type)
            });
        let Some(idx) = idx else {
            debug!(track = %open.track_id, "media for a track that was never announced");
            self.counters.drop(DropReason::UnknownTrack);
            return;
        };
        let pending = p.pending_tracks.remove(idx);
        let mut info = pending.info;
        info.mime_type = mime.clone();
        info.mid = open.mid.clone().unwrap_or_default();
        let sid = info.sid.clone();
        let mut track = PublishedTrack {
            info,
            publisher: pid,
            publisher_sid: p.sid.clone(),
            room: p.room.clone(),
            rtc_track_id: open.track_id.clone(),
            codec: VideoCodec::from_mime(&mime),
            mime,
            fmtp: open.fmtp.clone(),
            clock_rate: open.clock_rate,
            channels: open.channels,
            layers: Vec::new(),
            down_tracks: Vec::new(),
        };
        track.add_layer(open.ssrc, open.rid, open.receiver_id);
        p.published.push(sid.clone());
        p.by_rtc_track.insert(open.track_id.clone(), sid.clone());
        p.bump();
        let room = p.room.clone();
        info!(room = %room, identity = %p.identity, track = %sid, mime = %track.mime, "track published");
        let track_info = track.info.clone();
        self.tracks.insert(sid.clone(), track);
        let ev = RoomEvent::TrackPublished {
            room: self.room_info(&room).unwrap_or_default(),
            participant: self.info_of(pid),
            track: track_info,
        };
        self.out.push_back(Output::Event(Box::new(ev)));
        // The ParticipantUpdate with the track goes out before any offer carrying it.
        self.broadcast_participant(pid, true);
        let members = self
            .rooms
            .get(&room)
            .map(|r| r.members.clone())
            .unwrap_or_default();
        for m in members {
            if m != pid && self.participants.get(&m).is_some_and(|x| x.auto_subscribe) {
                self.subscribe(now, m, &sid);
                self.negotiate(now, m);
            }
        }
        self.whep_on_publish(now, &room);
    }

    /// Removes a published track: subscribers lose their down-tracks, everyone sees the
    /// publisher's updated info.
    pub(super) fn unpublish(&mut self, now: Instant, pid: ParticipantId, sid: &str) {
        let Some(t) = self.tracks.remove(sid) else {
            return;
        };
        info!(room = %t.room, track = %sid, "track unpublished");
        if self.participants.contains_key(&pid) {
            self.out
                .push_back(Output::Event(Box::new(RoomEvent::TrackUnpublished {
                    room: self.room_info(&t.room).unwrap_or_default(),
                    participant: self.info_of(pid),
                    track: t.info.clone(),
                })));
        }
        for dt in t.down_tracks {
            self.detach_down_track(now, sid, dt);
        }
        if let Some(p) = self.participants.get_mut(&pid) {
            p.published.retain(|s| s != sid);
            p.by_rtc_track.retain(|_, s| s != sid);
            p.bump();
        }
        self.broadcast_participant(pid, true);
    }
}
