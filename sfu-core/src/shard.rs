//! The shard: every room, participant and peer connection one media thread owns.
//!
//! Inputs are join requests, signal messages, datagrams and timeouts, each with `now`;
//! outputs ([`Output`]) are polled. One `&mut self` call at a time, no locks, no clock.
//!
//! Life of a participant: `join` sends its JoinResponse and a subscriber offer (with the
//! `_reliable`/`_lossy` data channels and every track it auto-subscribes to); the client
//! answers; when that connection is up the participant is ACTIVE. Publishing is
//! `AddTrackRequest` -> `TrackPublishedResponse`, then the client's publisher offer, then
//! media: the first RTP packet of a track publishes it and subscribes everyone else.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    time::{Duration, Instant},
};

use livekit_protocol as proto;
use prost::Message as _;
use proto::{signal_request::Message as Req, signal_response::Message as Resp};
use rtc::{
    media_stream::MediaStreamTrack,
    rtcp, rtp,
    rtp_transceiver::rtp_sender::{
        RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
    },
};
use tracing::{debug, info, warn};

use crate::{
    JoinError, JoinParams, ParticipantId,
    codec::{VideoCodec, is_keyframe},
    demux::{Demux, PcKey, PcRole},
    down_track::{DownTrack, SentPacket},
    drop_reason::{Counters, DropReason},
    ids::{PARTICIPANT_PREFIX, ROOM_PREFIX, TRACK_PREFIX, new_sid},
    output::{Output, RoomEvent},
    participant::{Participant, PendingTrack},
    peer_connection::{PcEvent, PcFactory, PeerConnection, TrackOpen},
    published_track::PublishedTrack,
    room::Room,
    rtp_munger::{InPacket, Munged},
    signal,
};

/// Housekeeping period (layer activity, keyframe retries).
const TICK: Duration = Duration::from_millis(100);

/// Node-level settings of the media plane.
#[derive(Debug, Clone)]
pub struct ShardConfig {
    /// Version string clients see (`server_info.version`).
    pub server_version: String,
    /// Node id (`ND_...`).
    pub node_id: String,
    /// Region name.
    pub region: String,
    /// Default `empty_timeout` (s).
    pub empty_timeout: u32,
    /// Default `departure_timeout` (s).
    pub departure_timeout: u32,
    /// Default `max_participants` (0 = unlimited).
    pub max_participants: u32,
}

impl Default for ShardConfig {
    fn default() -> Self {
        Self {
            server_version: "1.9.0".into(),
            node_id: new_sid("ND_"),
            region: String::new(),
            empty_timeout: 300,
            departure_timeout: 20,
            max_participants: 0,
        }
    }
}

/// Converts the monotonic clock input into unix time for the protocol's timestamps.
#[derive(Debug, Clone, Copy)]
struct WallClock {
    base: Instant,
    base_unix_ms: i64,
}

impl WallClock {
    fn unix_ms(&self, now: Instant) -> i64 {
        self.base_unix_ms + now.saturating_duration_since(self.base).as_millis() as i64
    }
}

/// A media shard.
pub struct Shard {
    cfg: ShardConfig,
    factory: PcFactory,
    clock: WallClock,
    rooms: HashMap<String, Room>,
    participants: HashMap<ParticipantId, Participant>,
    publishers: HashMap<ParticipantId, PeerConnection>,
    subscribers: HashMap<ParticipantId, PeerConnection>,
    tracks: HashMap<String, PublishedTrack>,
    demux: Demux,
    next_id: u64,
    out: VecDeque<Output>,
    dirty: Vec<PcKey>,
    /// Next deadline of each connection, refreshed whenever it is drained.
    deadlines: HashMap<PcKey, Instant>,
    next_tick: Instant,
    /// Drop and forwarding counters.
    pub counters: Counters,
}

impl Shard {
    /// A shard; `unix_ms_now` is the wall-clock time at `now`.
    pub fn new(cfg: ShardConfig, factory: PcFactory, now: Instant, unix_ms_now: i64) -> Self {
        Self {
            cfg,
            factory,
            clock: WallClock {
                base: now,
                base_unix_ms: unix_ms_now,
            },
            rooms: HashMap::new(),
            participants: HashMap::new(),
            publishers: HashMap::new(),
            subscribers: HashMap::new(),
            tracks: HashMap::new(),
            demux: Demux::default(),
            next_id: 1,
            out: VecDeque::new(),
            dirty: Vec::new(),
            deadlines: HashMap::new(),
            next_tick: now + TICK,
            counters: Counters::default(),
        }
    }

    /// Does a room exist on this shard?
    pub fn room_exists(&self, name: &str) -> bool {
        self.rooms.contains_key(name)
    }

    /// Number of rooms.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Number of participants.
    pub fn participant_count(&self) -> usize {
        self.participants.len()
    }

    /// Next output.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Earliest deadline.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let mut t = self.next_tick;
        for r in self.rooms.values() {
            if let Some(c) = r.closes_at {
                t = t.min(c);
            }
        }
        if let Some(d) = self.deadlines.values().min() {
            t = t.min(*d);
        }
        Some(t)
    }

    fn signal(&mut self, to: ParticipantId, msg: Box<proto::SignalResponse>) {
        self.out.push_back(Output::Signal(to, msg));
    }

    fn pc(&mut self, key: PcKey) -> Option<&mut PeerConnection> {
        match key.1 {
            PcRole::Publisher => self.publishers.get_mut(&key.0),
            PcRole::Subscriber => self.subscribers.get_mut(&key.0),
        }
    }

    // ----------------------------------------------------------------------------------
    // Join / leave
    // ----------------------------------------------------------------------------------

    /// Admits a participant. Its JoinResponse is the first output for it.
    pub fn join(&mut self, now: Instant, p: JoinParams) -> Result<ParticipantId, JoinError> {
        let unix_ms = self.clock.unix_ms(now);
        // Check everything that can fail before changing any state.
        let existing = self.rooms.get(&p.room);
        if existing.is_none() && !p.may_create_room {
            return Err(JoinError::RoomNotFound);
        }
        // Duplicate identity: the new session replaces the old one (LiveKit DUPLICATE_IDENTITY).
        let dup = existing.and_then(|r| {
            r.members.iter().copied().find(|m| {
                self.participants
                    .get(m)
                    .is_some_and(|x| x.identity == p.identity)
            })
        });
        if let Some(r) = existing {
            let others = r.members.len() - usize::from(dup.is_some());
            if r.max_participants > 0 && others as u32 >= r.max_participants {
                return Err(JoinError::RoomFull);
            }
        }
        let mut sub = PeerConnection::new(&self.factory, PcRole::Subscriber, now)
            .map_err(|e| JoinError::PeerConnection(e.to_string()))?;
        if existing.is_none() {
            let s = &p.room_settings;
            let room = Room {
                sid: new_sid(ROOM_PREFIX),
                name: p.room.clone(),
                empty_timeout: s.empty_timeout.unwrap_or(self.cfg.empty_timeout),
                departure_timeout: s.departure_timeout.unwrap_or(self.cfg.departure_timeout),
                max_participants: s.max_participants.unwrap_or(self.cfg.max_participants),
                metadata: s.metadata.clone().unwrap_or_default(),
                created_at_ms: unix_ms,
                members: Vec::new(),
                closes_at: None,
                ever_joined: false,
            };
            info!(room = %room.name, sid = %room.sid, "room started");
            self.out.push_back(Output::Event(RoomEvent::RoomStarted {
                room: room.name.clone(),
                sid: room.sid.clone(),
            }));
            self.rooms.insert(p.room.clone(), room);
        }
        if let Some(old) = dup {
            self.remove_participant(now, old, proto::DisconnectReason::DuplicateIdentity, true);
        }
        let id = ParticipantId(self.next_id);
        self.next_id += 1;
        let reliable = sub.create_data_channel("_reliable", true).ok();
        let lossy = sub.create_data_channel("_lossy", false).ok();
        let part = Participant {
            id,
            room: p.room.clone(),
            sid: new_sid(PARTICIPANT_PREFIX),
            identity: p.identity,
            name: p.name,
            metadata: p.metadata,
            attributes: p.attributes,
            permission: p.permission,
            kind: p.kind,
            state: proto::participant_info::State::Joining,
            version: 1,
            joined_at_ms: unix_ms,
            auto_subscribe: p.auto_subscribe,
            client_info: p.client_info,
            pending_tracks: Vec::new(),
            published: Vec::new(),
            subscribed: HashMap::new(),
            by_out_ssrc: HashMap::new(),
            disabled: Default::default(),
            negotiation: Default::default(),
            channels: crate::participant::SubscriberChannels { reliable, lossy },
            publisher_channels: HashMap::new(),
            last_reliable_seq: 0,
            left: false,
        };
        info!(room = %part.room, identity = %part.identity, sid = %part.sid, "participant joining");
        self.subscribers.insert(id, sub);
        self.participants.insert(id, part);
        let room = self.rooms.get_mut(&p.room).expect("room inserted above");
        room.members.push(id);
        room.ever_joined = true;
        room.closes_at = None;

        let join = self.join_response(id);
        self.signal(id, signal::resp(Resp::Join(join)));
        let me = self.participants.get_mut(&id).expect("inserted above");
        me.state = proto::participant_info::State::Joined;
        me.bump();
        self.broadcast_participant(id, false);

        // Fast start: subscribe to what is already published, then offer.
        let existing: Vec<String> = self
            .tracks
            .values()
            .filter(|t| t.room == p.room && t.publisher != id)
            .map(|t| t.info.sid.clone())
            .collect();
        if self.participants[&id].auto_subscribe && self.participants[&id].permission.can_subscribe
        {
            for sid in existing {
                self.subscribe(now, id, &sid);
            }
        }
        self.negotiate(now, id);
        self.flush(now);
        Ok(id)
    }

    fn participant_infos_in(
        &self,
        room: &str,
        except: Option<ParticipantId>,
    ) -> Vec<proto::ParticipantInfo> {
        self.rooms
            .get(room)
            .map(|r| {
                r.members
                    .iter()
                    .filter(|m| Some(**m) != except)
                    .filter_map(|m| self.participants.get(m))
                    .filter(|p| !p.hidden())
                    .map(|p| p.info(self.track_infos(p.id)))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn track_infos(&self, pid: ParticipantId) -> Vec<proto::TrackInfo> {
        self.participants
            .get(&pid)
            .map(|p| {
                p.published
                    .iter()
                    .filter_map(|s| self.tracks.get(s))
                    .map(|t| t.info.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn room_info(&self, room: &str) -> Option<proto::Room> {
        let r = self.rooms.get(room)?;
        let members: Vec<&Participant> = r
            .members
            .iter()
            .filter_map(|m| self.participants.get(m))
            .collect();
        let pubs = members.iter().filter(|p| !p.published.is_empty()).count() as u32;
        Some(r.info(members.len() as u32, pubs))
    }

    fn join_response(&self, id: ParticipantId) -> proto::JoinResponse {
        let p = &self.participants[&id];
        let codec = |m: &str| proto::Codec {
            mime: m.into(),
            fmtp_line: String::new(),
        };
        proto::JoinResponse {
            room: self.room_info(&p.room),
            participant: Some(p.info(Vec::new())),
            other_participants: self.participant_infos_in(&p.room, Some(id)),
            server_version: self.cfg.server_version.clone(),
            ice_servers: Vec::new(),
            subscriber_primary: true,
            server_region: self.cfg.region.clone(),
            ping_timeout: 15,
            ping_interval: 5,
            server_info: Some(proto::ServerInfo {
                edition: proto::server_info::Edition::Standard as i32,
                version: self.cfg.server_version.clone(),
                protocol: 16,
                region: self.cfg.region.clone(),
                node_id: self.cfg.node_id.clone(),
                ..Default::default()
            }),
            enabled_publish_codecs: vec![
                codec("audio/opus"),
                codec("video/VP8"),
                codec("video/H264"),
            ],
            ..Default::default()
        }
    }

    /// Sends `pid`'s current info to everyone in its room (and to itself if `to_self`).
    fn broadcast_participant(&mut self, pid: ParticipantId, to_self: bool) {
        let Some(p) = self.participants.get(&pid) else {
            return;
        };
        let info = p.info(self.track_infos(pid));
        let hidden = p.hidden();
        let members = self
            .rooms
            .get(&p.room)
            .map(|r| r.members.clone())
            .unwrap_or_default();
        for m in members {
            if (m == pid && to_self) || (m != pid && !hidden) {
                self.signal(m, signal::participant_update(vec![info.clone()]));
            }
        }
    }

    /// Removes a participant: its tracks, its subscriptions, its connections.
    fn remove_participant(
        &mut self,
        now: Instant,
        pid: ParticipantId,
        reason: proto::DisconnectReason,
        tell: bool,
    ) {
        let Some(mut p) = self.participants.remove(&pid) else {
            return;
        };
        info!(room = %p.room, identity = %p.identity, ?reason, "participant left");
        if tell {
            self.signal(
                pid,
                signal::leave(reason, proto::leave_request::Action::Disconnect),
            );
        }
        self.out.push_back(Output::CloseSignal(pid));
        // Unpublish its tracks from every subscriber.
        for sid in std::mem::take(&mut p.published) {
            if let Some(t) = self.tracks.remove(&sid) {
                for dt in t.down_tracks {
                    self.detach_down_track(now, dt.subscriber, &sid, dt.sender, dt.ssrc);
                }
            }
        }
        // Drop its own down-tracks.
        for sid in p.subscribed.keys() {
            if let Some(t) = self.tracks.get_mut(sid) {
                t.down_tracks.retain(|d| d.subscriber != pid);
            }
        }
        for role in [PcRole::Publisher, PcRole::Subscriber] {
            if let Some(mut pc) = match role {
                PcRole::Publisher => self.publishers.remove(&pid),
                PcRole::Subscriber => self.subscribers.remove(&pid),
            } {
                pc.close();
                let (mut tx, mut ev) = (Vec::new(), Vec::new());
                pc.drain(&mut tx, &mut ev);
                self.out.extend(tx.into_iter().map(Output::Transmit));
            }
            self.demux.remove((pid, role));
            self.deadlines.remove(&(pid, role));
        }
        self.dirty.retain(|k| k.0 != pid);
        if p.state == proto::participant_info::State::Active {
            self.out
                .push_back(Output::Event(RoomEvent::ParticipantLeft {
                    room: p.room.clone(),
                    identity: p.identity.clone(),
                }));
        }
        p.state = proto::participant_info::State::Disconnected;
        p.bump();
        let mut info = p.info(Vec::new());
        info.disconnect_reason = reason as i32;
        if let Some(room) = self.rooms.get_mut(&p.room) {
            room.members.retain(|m| *m != pid);
            if room.members.is_empty() {
                room.arm_close(now);
            }
            let members = room.members.clone();
            if !p.hidden() {
                for m in members {
                    self.signal(m, signal::participant_update(vec![info.clone()]));
                }
            }
        }
    }

    /// Removes a published track: subscribers lose their down-tracks, everyone sees the
    /// publisher's updated info.
    fn unpublish(&mut self, now: Instant, pid: ParticipantId, sid: &str) {
        let Some(t) = self.tracks.remove(sid) else {
            return;
        };
        info!(room = %t.room, track = %sid, "track unpublished");
        for dt in t.down_tracks {
            self.detach_down_track(now, dt.subscriber, sid, dt.sender, dt.ssrc);
        }
        if let Some(p) = self.participants.get_mut(&pid) {
            p.published.retain(|s| s != sid);
            p.bump();
        }
        self.broadcast_participant(pid, true);
    }

    fn detach_down_track(
        &mut self,
        now: Instant,
        sub: ParticipantId,
        track_sid: &str,
        sender: rtc::rtp_transceiver::RTCRtpSenderId,
        ssrc: u32,
    ) {
        if let Some(sp) = self.participants.get_mut(&sub) {
            sp.subscribed.remove(track_sid);
            sp.by_out_ssrc.remove(&ssrc);
        }
        if let Some(pc) = self.subscribers.get_mut(&sub) {
            let _ = pc.remove_send_track(sender);
        }
        self.negotiate(now, sub);
    }

    /// Disconnects everyone with `Leave{SERVER_SHUTDOWN}` and closes every room.
    pub fn shutdown(&mut self, now: Instant) {
        let everyone: Vec<ParticipantId> = self.participants.keys().copied().collect();
        for pid in everyone {
            self.remove_participant(now, pid, proto::DisconnectReason::ServerShutdown, true);
        }
        for (_, r) in self.rooms.drain() {
            info!(room = %r.name, sid = %r.sid, "room finished");
            self.out.push_back(Output::Event(RoomEvent::RoomFinished {
                room: r.name,
                sid: r.sid,
            }));
        }
    }

    /// The participant's signalling connection closed. Without session resume this ends
    /// the participant (the SDK then rejoins).
    pub fn signal_closed(&mut self, now: Instant, pid: ParticipantId) {
        if self.participants.contains_key(&pid) {
            let reason = if self.participants[&pid].left {
                proto::DisconnectReason::ClientInitiated
            } else {
                proto::DisconnectReason::SignalClose
            };
            self.remove_participant(now, pid, reason, false);
            self.flush(now);
        }
    }

    // ----------------------------------------------------------------------------------
    // Signal requests
    // ----------------------------------------------------------------------------------

    /// Handles a signal message from a participant.
    pub fn handle_signal(&mut self, now: Instant, pid: ParticipantId, req: proto::SignalRequest) {
        if !self.participants.contains_key(&pid) {
            return;
        }
        let Some(msg) = req.message else { return };
        match msg {
            Req::Offer(sd) => self.on_publisher_offer(now, pid, sd),
            Req::Answer(sd) => self.on_subscriber_answer(now, pid, sd),
            Req::Trickle(t) => {
                let key = if t.target == proto::SignalTarget::Subscriber as i32 {
                    (pid, PcRole::Subscriber)
                } else {
                    (pid, PcRole::Publisher)
                };
                if let Some(pc) = self.pc(key)
                    && let Err(e) = pc.add_remote_candidate(&t.candidate_init)
                {
                    debug!(error = %e, "ignoring remote candidate");
                }
            }
            Req::AddTrack(a) => self.on_add_track(pid, a),
            Req::Mute(m) => self.on_mute(pid, &m.sid, m.muted),
            Req::Subscription(s) => {
                let mut sids = s.track_sids.clone();
                for pt in &s.participant_tracks {
                    sids.extend(pt.track_sids.iter().cloned());
                }
                for sid in sids {
                    if s.subscribe {
                        self.subscribe(now, pid, &sid);
                    } else {
                        self.unsubscribe(now, pid, &sid);
                    }
                }
                self.negotiate(now, pid);
            }
            Req::TrackSetting(s) => {
                for sid in &s.track_sids {
                    self.set_track_disabled(now, pid, sid, s.disabled);
                }
            }
            Req::Leave(_) => {
                if let Some(p) = self.participants.get_mut(&pid) {
                    p.left = true;
                }
                self.remove_participant(now, pid, proto::DisconnectReason::ClientInitiated, false);
            }
            Req::UpdateMetadata(u) => self.on_update_metadata(pid, u),
            _ => {}
        }
        self.flush(now);
    }

    fn on_add_track(&mut self, pid: ParticipantId, a: proto::AddTrackRequest) {
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

    fn on_mute(&mut self, pid: ParticipantId, sid: &str, muted: bool) {
        let owns = self
            .participants
            .get(&pid)
            .is_some_and(|p| p.published.iter().any(|s| s == sid));
        if owns {
            if let Some(t) = self.tracks.get_mut(sid) {
                t.info.muted = muted;
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

    fn on_update_metadata(&mut self, pid: ParticipantId, u: proto::UpdateParticipantMetadata) {
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

    fn on_publisher_offer(
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

    fn on_subscriber_answer(
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
    fn negotiate(&mut self, now: Instant, pid: ParticipantId) {
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
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

    // ----------------------------------------------------------------------------------
    // Subscriptions
    // ----------------------------------------------------------------------------------

    /// Adds a down-track of `track_sid` for `pid` (negotiation is the caller's job).
    fn subscribe(&mut self, _now: Instant, pid: ParticipantId, track_sid: &str) {
        let Some(p) = self.participants.get(&pid) else {
            return;
        };
        if !p.permission.can_subscribe || p.subscribed.contains_key(track_sid) {
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

    fn unsubscribe(&mut self, now: Instant, pid: ParticipantId, track_sid: &str) {
        let Some(t) = self.tracks.get_mut(track_sid) else {
            return;
        };
        let Some(i) = t.down_tracks.iter().position(|d| d.subscriber == pid) else {
            return;
        };
        let dt = t.down_tracks.remove(i);
        self.detach_down_track(now, pid, track_sid, dt.sender, dt.ssrc);
    }

    fn set_track_disabled(
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
            let layer = &mut t.layers[l];
            if layer.keyframes.request(now) {
                let (publisher, rx, ssrc) = (t.publisher, layer.receiver_id, layer.ssrc);
                self.send_pli(now, publisher, rx, ssrc);
            }
        }
    }

    // ----------------------------------------------------------------------------------
    // Datagrams and connection events
    // ----------------------------------------------------------------------------------

    /// Handles a datagram received on the shared UDP port.
    pub fn handle_datagram(&mut self, now: Instant, remote: SocketAddr, data: &[u8]) {
        let Some(key) = self.demux.route(remote, data) else {
            self.counters.drop(DropReason::UnknownPeer);
            return;
        };
        match self.pc(key) {
            Some(pc) => pc.handle_datagram(now, remote, data),
            None => {
                self.counters.drop(DropReason::UnknownPeer);
                return;
            }
        }
        self.dirty.push(key);
        self.flush(now);
    }

    /// Drains every connection touched since the last flush, and whatever that touches.
    fn flush(&mut self, now: Instant) {
        let mut transmits = Vec::new();
        let mut events = Vec::new();
        while let Some(key) = self.dirty.pop() {
            let Some(pc) = self.pc(key) else { continue };
            pc.drain(&mut transmits, &mut events);
            // A connection's deadline only moves when we touch it, and every touch marks it
            // dirty, so caching it here spares asking every connection on every wake-up.
            match pc.poll_timeout() {
                Some(d) => self.deadlines.insert(key, d),
                None => self.deadlines.remove(&key),
            };
            for t in transmits.drain(..) {
                self.demux.learn(t.remote, key);
                self.out.push_back(Output::Transmit(t));
            }
            for ev in events.drain(..) {
                self.on_pc_event(now, key, ev);
            }
            self.dirty.dedup();
        }
    }

    fn on_pc_event(&mut self, now: Instant, (pid, role): PcKey, ev: PcEvent) {
        match ev {
            PcEvent::Connected if role == PcRole::Subscriber => self.on_primary_connected(pid),
            PcEvent::Failed => {
                debug!(?pid, ?role, "peer connection failed");
                self.remove_participant(now, pid, proto::DisconnectReason::ConnectionTimeout, true);
            }
            PcEvent::Track(open) if role == PcRole::Publisher => self.on_track_open(now, pid, open),
            PcEvent::Rtp(track_id, pkt) if role == PcRole::Publisher => {
                self.on_rtp(now, pid, &track_id, pkt)
            }
            PcEvent::Rtcp(pkts) if role == PcRole::Subscriber => {
                self.on_subscriber_rtcp(now, pid, pkts)
            }
            PcEvent::DataOpen(id, label) => {
                if role == PcRole::Publisher
                    && let Some(p) = self.participants.get_mut(&pid)
                {
                    p.publisher_channels.insert(id, label);
                }
            }
            PcEvent::Data(id, bytes) => self.on_data(now, pid, role, id, &bytes),
            _ => {}
        }
    }

    fn on_primary_connected(&mut self, pid: ParticipantId) {
        let Some(p) = self.participants.get_mut(&pid) else {
            return;
        };
        if p.state == proto::participant_info::State::Active {
            return;
        }
        p.state = proto::participant_info::State::Active;
        p.bump();
        info!(room = %p.room, identity = %p.identity, "participant active");
        let ev = RoomEvent::ParticipantJoined {
            room: p.room.clone(),
            identity: p.identity.clone(),
        };
        self.out.push_back(Output::Event(ev));
        self.broadcast_participant(pid, true);
    }

    fn on_track_open(&mut self, now: Instant, pid: ParticipantId, open: TrackOpen) {
        // A known track: a new simulcast layer, or the same SSRC re-bound after renegotiation.
        let known = self
            .participants
            .get(&pid)
            .and_then(|p| {
                p.published.iter().find(|s| {
                    self.tracks
                        .get(*s)
                        .is_some_and(|t| t.rtc_track_id == open.track_id)
                })
            })
            .cloned();
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
        p.bump();
        let room = p.room.clone();
        let ev = RoomEvent::TrackPublished {
            room: room.clone(),
            identity: p.identity.clone(),
            track_sid: sid.clone(),
        };
        info!(room = %room, identity = %p.identity, track = %sid, mime = %track.mime, "track published");
        self.tracks.insert(sid.clone(), track);
        self.out.push_back(Output::Event(ev));
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
    }

    fn send_pli(
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
    fn on_rtp(&mut self, now: Instant, pid: ParticipantId, track_id: &str, pkt: rtp::Packet) {
        self.counters.received_packets += 1;
        let sid = self
            .participants
            .get(&pid)
            .and_then(|p| {
                p.published.iter().find(|s| {
                    self.tracks
                        .get(*s)
                        .is_some_and(|t| t.rtc_track_id == track_id)
                })
            })
            .cloned();
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
            let layer = &mut t.layers[ti];
            if layer.keyframes.request(now) {
                let (publisher, rx, ssrc) = (t.publisher, layer.receiver_id, layer.ssrc);
                self.send_pli(now, publisher, rx, ssrc);
            }
        }
        self.dirty.dedup();
    }

    fn on_subscriber_rtcp(
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

    fn forward_keyframe_request(&mut self, now: Instant, pid: ParticipantId, out_ssrc: u32) {
        let Some(sid) = self
            .participants
            .get(&pid)
            .and_then(|p| p.by_out_ssrc.get(&out_ssrc))
            .cloned()
        else {
            return;
        };
        let Some(t) = self.tracks.get_mut(&sid) else {
            return;
        };
        let layer_ssrc = t
            .down_tracks
            .iter()
            .find(|d| d.subscriber == pid)
            .and_then(|d| d.munger.current_ssrc());
        let Some(li) = layer_ssrc
            .and_then(|s| t.layer_index(s))
            .or_else(|| t.best_layer(now))
        else {
            return;
        };
        let layer = &mut t.layers[li];
        if layer.keyframes.request(now) {
            let (publisher, rx, ssrc) = (t.publisher, layer.receiver_id, layer.ssrc);
            self.send_pli(now, publisher, rx, ssrc);
        }
    }

    /// Answers a subscriber NACK from the layer caches.
    fn serve_nack(&mut self, now: Instant, pid: ParticipantId, out_ssrc: u32, seqs: &[u16]) {
        let Some(sid) = self
            .participants
            .get(&pid)
            .and_then(|p| p.by_out_ssrc.get(&out_ssrc))
            .cloned()
        else {
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

    // ----------------------------------------------------------------------------------
    // Data
    // ----------------------------------------------------------------------------------

    fn on_data(
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
            let ch = if reliable {
                target.channels.reliable
            } else {
                target.channels.lossy
            };
            let Some(ch) = ch else { continue };
            let sent = match self.subscribers.get_mut(&m) {
                Some(pc) => pc.send_data(now, ch, &encoded),
                None => false,
            };
            if sent {
                self.counters.forwarded_data += 1;
                self.dirty.push((m, PcRole::Subscriber));
            } else {
                self.counters.drop(DropReason::WriteFailed);
            }
        }
    }

    // ----------------------------------------------------------------------------------
    // Time
    // ----------------------------------------------------------------------------------

    /// Advances every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<PcKey> = self
            .deadlines
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            if let Some(pc) = self.pc(key) {
                pc.handle_timeout(now);
                self.dirty.push(key);
            }
        }
        if now >= self.next_tick {
            self.next_tick = now + TICK;
            self.tick(now);
        }
        let closing: Vec<String> = self
            .rooms
            .values()
            .filter(|r| r.members.is_empty() && r.closes_at.is_some_and(|c| c <= now))
            .map(|r| r.name.clone())
            .collect();
        for name in closing {
            if let Some(r) = self.rooms.remove(&name) {
                info!(room = %r.name, sid = %r.sid, "room finished");
                self.out.push_back(Output::Event(RoomEvent::RoomFinished {
                    room: r.name,
                    sid: r.sid,
                }));
            }
        }
        self.flush(now);
    }

    /// Housekeeping: re-ask for keyframes that subscribers still wait for.
    fn tick(&mut self, now: Instant) {
        let mut plis = Vec::new();
        for t in self.tracks.values_mut() {
            if !t.is_video() {
                continue;
            }
            let Some(target) = t.best_layer(now) else {
                continue;
            };
            let target_ssrc = t.layers[target].ssrc;
            let waiting = t.down_tracks.iter().any(|d| {
                !d.paused
                    && d.payload_type.is_some()
                    && d.munger.current_ssrc() != Some(target_ssrc)
            });
            let layer = &mut t.layers[target];
            if (waiting && layer.keyframes.request(now)) || layer.keyframes.poll(now) {
                plis.push((t.publisher, layer.receiver_id, layer.ssrc));
            }
        }
        for (publisher, rx, ssrc) in plis {
            self.send_pli(now, publisher, rx, ssrc);
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests pick the virtual clock's starting instant
mod tests {
    use super::*;

    fn shard(now: Instant) -> Shard {
        let f = PcFactory::new("127.0.0.1:7882".parse().unwrap()).unwrap();
        Shard::new(ShardConfig::default(), f, now, 1_700_000_000_000)
    }

    fn params(room: &str, identity: &str) -> JoinParams {
        JoinParams::new(room, identity)
    }

    /// Sends an AddTrackRequest and returns what the shard answered.
    fn add_track(
        s: &mut Shard,
        now: Instant,
        who: ParticipantId,
        kind: proto::TrackType,
    ) -> Vec<(ParticipantId, proto::SignalResponse)> {
        let req = proto::AddTrackRequest {
            cid: "c1".into(),
            r#type: kind as i32,
            ..Default::default()
        };
        s.handle_signal(
            now,
            who,
            proto::SignalRequest {
                message: Some(Req::AddTrack(req)),
            },
        );
        signals(s)
    }

    fn signals(s: &mut Shard) -> Vec<(ParticipantId, proto::SignalResponse)> {
        let mut v = vec![];
        while let Some(o) = s.poll_output() {
            if let Output::Signal(p, m) = o {
                v.push((p, *m));
            }
        }
        v
    }

    #[test]
    fn join_response_comes_first_with_livekit_essentials_then_an_offer() {
        let now = Instant::now();
        let mut s = shard(now);
        let a = s.join(now, params("r", "alice")).unwrap();
        let out = signals(&mut s);
        let Some(Resp::Join(j)) = &out[0].1.message else {
            panic!("first message must be join: {out:?}")
        };
        assert_eq!(out[0].0, a);
        assert!(!j.server_info.as_ref().unwrap().version.is_empty());
        assert_eq!((j.ping_interval, j.ping_timeout), (5, 15));
        assert!(j.subscriber_primary);
        assert!(
            j.participant
                .as_ref()
                .unwrap()
                .permission
                .as_ref()
                .unwrap()
                .can_publish
        );
        assert!(j.participant.as_ref().unwrap().sid.starts_with("PA_"));
        assert!(j.room.as_ref().unwrap().sid.starts_with("RM_"));
        assert!(out.iter().any(|(_, m)| matches!(&m.message, Some(Resp::Offer(o)) if o.id == 1 && o.sdp.contains("webrtc-datachannel"))));
        let trickle = out.iter().find_map(|(_, m)| match &m.message {
            Some(Resp::Trickle(t)) => Some(t.clone()),
            _ => None,
        });
        let t = trickle.expect("server trickles its candidate");
        assert_eq!(t.target, proto::SignalTarget::Subscriber as i32);
        let v: serde_json::Value = serde_json::from_str(&t.candidate_init).unwrap();
        assert!(v["candidate"].as_str().unwrap().starts_with("candidate:"));
        assert!(
            v["sdpMid"].is_string() && v["sdpMLineIndex"].is_number(),
            "{v}"
        );
    }
    #[test]
    fn second_participant_sees_first_and_first_gets_update() {
        let now = Instant::now();
        let mut s = shard(now);
        let a = s.join(now, params("r", "alice")).unwrap();
        signals(&mut s);
        let b = s.join(now, params("r", "bob")).unwrap();
        let out = signals(&mut s);
        let Some(Resp::Join(j)) = &out.iter().find(|(p, _)| *p == b).unwrap().1.message else {
            panic!()
        };
        assert_eq!(j.other_participants.len(), 1);
        assert_eq!(j.other_participants[0].identity, "alice");
        assert!(out.iter().any(|(p, m)| *p == a
            && matches!(&m.message, Some(Resp::Update(u)) if u.participants[0].identity == "bob")));
    }

    #[test]
    fn duplicate_identity_evicts_the_old_session() {
        let now = Instant::now();
        let mut s = shard(now);
        let a1 = s.join(now, params("r", "alice")).unwrap();
        signals(&mut s);
        let _a2 = s.join(now, params("r", "alice")).unwrap();
        let mut saw_leave = false;
        let mut saw_close = false;
        while let Some(o) = s.poll_output() {
            match o {
                Output::Signal(p, m) if p == a1 => {
                    if let Some(Resp::Leave(l)) = m.message {
                        saw_leave = l.reason == proto::DisconnectReason::DuplicateIdentity as i32;
                    }
                }
                Output::CloseSignal(p) if p == a1 => saw_close = true,
                _ => {}
            }
        }
        assert!(saw_leave && saw_close);
        assert_eq!(s.participant_count(), 1);
    }

    #[test]
    fn room_closes_after_departure_timeout_and_not_before() {
        let now = Instant::now();
        let mut s = shard(now);
        let mut p = params("r", "alice");
        p.room_settings.departure_timeout = Some(2);
        let a = s.join(now, p).unwrap();
        s.handle_signal(
            now,
            a,
            proto::SignalRequest {
                message: Some(Req::Leave(Default::default())),
            },
        );
        assert!(s.room_exists("r"));
        s.handle_timeout(now + Duration::from_millis(1900));
        assert!(s.room_exists("r"));
        s.handle_timeout(now + Duration::from_millis(2100));
        assert!(!s.room_exists("r"));
    }

    #[test]
    fn shutdown_tells_everyone_and_closes_rooms() {
        let now = Instant::now();
        let mut s = shard(now);
        let a = s.join(now, params("r", "alice")).unwrap();
        signals(&mut s);
        s.shutdown(now);
        let mut leave = None;
        let mut closed = false;
        while let Some(o) = s.poll_output() {
            match o {
                Output::Signal(p, m) if p == a => {
                    if let Some(Resp::Leave(l)) = m.message {
                        leave = Some(l);
                    }
                }
                Output::CloseSignal(p) => closed |= p == a,
                _ => {}
            }
        }
        assert_eq!(
            leave.unwrap().reason,
            proto::DisconnectReason::ServerShutdown as i32
        );
        assert!(closed);
        assert_eq!((s.room_count(), s.participant_count()), (0, 0));
    }

    #[test]
    fn no_auto_create_refuses_unknown_rooms() {
        let now = Instant::now();
        let mut s = shard(now);
        let mut p = params("r", "alice");
        p.may_create_room = false;
        assert_eq!(s.join(now, p).unwrap_err(), JoinError::RoomNotFound);
    }

    #[test]
    fn add_track_needs_permission() {
        let now = Instant::now();
        let mut s = shard(now);
        let mut p = params("r", "alice");
        p.permission.can_publish = false;
        let a = s.join(now, p).unwrap();
        signals(&mut s);
        let out = add_track(&mut s, now, a, proto::TrackType::Video);
        assert!(
            matches!(&out[0].1.message, Some(Resp::RequestResponse(r)) if r.reason == proto::request_response::Reason::NotAllowed as i32)
        );
    }

    #[test]
    fn add_track_answers_with_a_track_sid() {
        let now = Instant::now();
        let mut s = shard(now);
        let a = s.join(now, params("r", "alice")).unwrap();
        signals(&mut s);
        let out = add_track(&mut s, now, a, proto::TrackType::Audio);
        let Some(Resp::TrackPublished(t)) = &out[0].1.message else {
            panic!("{out:?}")
        };
        assert_eq!(t.cid, "c1");
        assert!(t.track.as_ref().unwrap().sid.starts_with("TR_"));
    }
}
