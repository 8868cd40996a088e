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
    http_session::Transport,
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
    /// `room.enable_remote_unmute`: the server API may unmute a publisher's track.
    pub enable_remote_unmute: bool,
    /// `rtc.force_relay`: clients are told to use relay candidates only.
    pub force_relay: bool,
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
            enable_remote_unmute: false,
            force_relay: false,
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
        // WHIP/WHEP sessions have no signalling channel.
        if self.participants.get(&to).is_some_and(|p| !p.is_livekit()) {
            return;
        }
        self.out.push_back(Output::Signal(to, msg));
    }

    /// Creates a room (the caller checked it does not exist) and arms its empty timeout.
    fn create_room(&mut self, now: Instant, name: &str, s: &crate::RoomSettings) {
        let mut room = Room {
            sid: new_sid(ROOM_PREFIX),
            name: name.to_owned(),
            empty_timeout: s.empty_timeout.unwrap_or(self.cfg.empty_timeout),
            departure_timeout: s.departure_timeout.unwrap_or(self.cfg.departure_timeout),
            max_participants: s.max_participants.unwrap_or(self.cfg.max_participants),
            metadata: s.metadata.clone().unwrap_or_default(),
            created_at_ms: self.clock.unix_ms(now),
            members: Vec::new(),
            closes_at: None,
            ever_joined: false,
        };
        room.arm_close(now);
        info!(room = %room.name, sid = %room.sid, "room started");
        self.out
            .push_back(Output::Event(Box::new(RoomEvent::RoomStarted {
                room: room.info(0, 0),
            })));
        self.rooms.insert(name.to_owned(), room);
    }

    /// Removes a room (its members are already gone) and reports it finished.
    fn close_room(&mut self, name: &str, why: &str) {
        if let Some(r) = self.rooms.remove(name) {
            info!(room = %r.name, sid = %r.sid, why, "room finished");
            self.out
                .push_back(Output::Event(Box::new(RoomEvent::RoomFinished {
                    room: r.info(0, 0),
                })));
        }
    }

    /// Current `ParticipantInfo` of a participant (which must exist), with its tracks.
    fn info_of(&self, pid: ParticipantId) -> proto::ParticipantInfo {
        self.participants[&pid].info(self.track_infos(pid))
    }

    /// Shard handle of `identity` in `room`.
    fn find_participant(&self, room: &str, identity: &str) -> Option<ParticipantId> {
        self.rooms.get(room)?.members.iter().copied().find(|m| {
            self.participants
                .get(m)
                .is_some_and(|p| p.identity == identity)
        })
    }

    /// Sid of the track `pid` publishes as `rtc_track_id` on its publisher connection.
    fn published_sid(&self, pid: ParticipantId, rtc_track_id: &str) -> Option<String> {
        self.participants
            .get(&pid)?
            .by_rtc_track
            .get(rtc_track_id)
            .cloned()
    }

    /// Sid of the track `pid` receives on its down-track SSRC `out_ssrc`.
    fn subscribed_sid(&self, pid: ParticipantId, out_ssrc: u32) -> Option<String> {
        self.participants
            .get(&pid)?
            .by_out_ssrc
            .get(&out_ssrc)
            .cloned()
    }

    /// Asks layer `li` of track `sid` for a keyframe, subject to its PLI throttle.
    fn request_keyframe(&mut self, now: Instant, sid: &str, li: usize) {
        let Some(t) = self.tracks.get_mut(sid) else {
            return;
        };
        let Some(layer) = t.layers.get_mut(li) else {
            return;
        };
        if layer.keyframes.request(now) {
            let (publisher, rx, ssrc) = (t.publisher, layer.receiver_id, layer.ssrc);
            self.send_pli(now, publisher, rx, ssrc);
        }
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

    /// Admits a LiveKit participant. Its JoinResponse is the first output for it.
    pub fn join(&mut self, now: Instant, mut p: JoinParams) -> Result<ParticipantId, JoinError> {
        let room = p.room.clone();
        let ice_servers = std::mem::take(&mut p.ice_servers);
        let mut sub = PeerConnection::new(&self.factory, PcRole::Subscriber, now)
            .map_err(|e| JoinError::PeerConnection(e.to_string()))?;
        let id = self.admit(now, p, Transport::LiveKit)?;
        let reliable = sub.create_data_channel("_reliable", true).ok();
        let lossy = sub.create_data_channel("_lossy", false).ok();
        self.subscribers.insert(id, sub);
        let me = self.participants.get_mut(&id).expect("admitted above");
        me.channels = crate::participant::SubscriberChannels { reliable, lossy };

        let join = self.join_response(id, ice_servers);
        self.signal(id, signal::resp(Resp::Join(join)));
        self.announce_joined(id);

        // Fast start: subscribe to what is already published, then offer.
        let existing: Vec<String> = self
            .tracks
            .values()
            .filter(|t| t.room == room && t.publisher != id)
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

    /// Room admission shared by every way in (LiveKit, WHIP, WHEP): checks that the room
    /// takes `p` (before changing anything), creates the room if needed, evicts a session
    /// with the same identity, and adds the participant (state JOINING, no connections).
    pub(super) fn admit(
        &mut self,
        now: Instant,
        p: JoinParams,
        transport: Transport,
    ) -> Result<ParticipantId, JoinError> {
        let unix_ms = self.clock.unix_ms(now);
        let dup = self.check_admission(&p)?;
        if !self.rooms.contains_key(&p.room) {
            self.create_room(now, &p.room, &p.room_settings);
        }
        if let Some(old) = dup {
            self.remove_participant(now, old, proto::DisconnectReason::DuplicateIdentity, true);
        }
        let id = ParticipantId(self.next_id);
        self.next_id += 1;
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
            by_rtc_track: HashMap::new(),
            subscribed: HashMap::new(),
            by_out_ssrc: HashMap::new(),
            disabled: Default::default(),
            negotiation: Default::default(),
            channels: Default::default(),
            publisher_channels: HashMap::new(),
            last_reliable_seq: 0,
            left: false,
            transport,
        };
        info!(room = %part.room, identity = %part.identity, sid = %part.sid, "participant joining");
        self.participants.insert(id, part);
        let room = self
            .rooms
            .get_mut(&p.room)
            .expect("room exists or was created above");
        room.members.push(id);
        room.ever_joined = true;
        room.closes_at = None;
        Ok(id)
    }

    /// Would the room take `p`? Returns the session `p` replaces (same identity), if any.
    /// Changes nothing.
    pub(super) fn check_admission(
        &self,
        p: &JoinParams,
    ) -> Result<Option<ParticipantId>, JoinError> {
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
        Ok(dup)
    }

    /// Moves a new participant to JOINED and tells the room.
    pub(super) fn announce_joined(&mut self, id: ParticipantId) {
        let me = self.participants.get_mut(&id).expect("caller admitted it");
        me.state = proto::participant_info::State::Joined;
        me.bump();
        self.broadcast_participant(id, false);
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

    fn join_response(
        &self,
        id: ParticipantId,
        ice_servers: Vec<proto::IceServer>,
    ) -> proto::JoinResponse {
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
            ice_servers,
            client_configuration: self.cfg.force_relay.then(|| proto::ClientConfiguration {
                force_relay: proto::ClientConfigSetting::Enabled as i32,
                ..Default::default()
            }),
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
        let room_info = self.room_info(&p.room).unwrap_or_default();
        let publisher_info = p.info(Vec::new());
        for sid in std::mem::take(&mut p.published) {
            if let Some(t) = self.tracks.remove(&sid) {
                self.out
                    .push_back(Output::Event(Box::new(RoomEvent::TrackUnpublished {
                        room: room_info.clone(),
                        participant: publisher_info.clone(),
                        track: t.info.clone(),
                    })));
                for dt in t.down_tracks {
                    self.detach_down_track(now, &sid, dt);
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
        let was_active = p.state == proto::participant_info::State::Active;
        p.state = proto::participant_info::State::Disconnected;
        p.bump();
        let mut info = p.info(Vec::new());
        info.disconnect_reason = reason as i32;
        let ev = if was_active {
            RoomEvent::ParticipantLeft {
                room: room_info,
                participant: info.clone(),
            }
        } else {
            RoomEvent::ParticipantConnectionAborted {
                room: room_info,
                participant: info.clone(),
            }
        };
        self.out.push_back(Output::Event(Box::new(ev)));
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

    /// Disconnects everyone with `Leave{SERVER_SHUTDOWN}` and closes every room.
    pub fn shutdown(&mut self, now: Instant) {
        let everyone: Vec<ParticipantId> = self.participants.keys().copied().collect();
        for pid in everyone {
            self.remove_participant(now, pid, proto::DisconnectReason::ServerShutdown, true);
        }
        let names: Vec<String> = self.rooms.keys().cloned().collect();
        for name in names {
            self.close_room(&name, "shutdown");
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
            Req::Mute(m) => self.on_mute(now, pid, &m.sid, m.muted),
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
            // A WHIP session's only connection is its publisher connection.
            PcEvent::Connected
                if self
                    .participants
                    .get(&pid)
                    .is_some_and(|p| matches!(p.transport, Transport::Whip)) =>
            {
                self.on_primary_connected(pid)
            }
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
        let room = p.room.clone();
        let ev = RoomEvent::ParticipantJoined {
            room: self.room_info(&room).unwrap_or_default(),
            participant: self.info_of(pid),
        };
        self.out.push_back(Output::Event(Box::new(ev)));
        self.broadcast_participant(pid, true);
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
            self.close_room(&name, "timeout");
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

mod api;
mod data;
mod forward;
mod http_session;
pub use http_session::PatchOutcome;
mod publish;
mod subscribe;
#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests pick the virtual clock's starting instant
mod tests;
