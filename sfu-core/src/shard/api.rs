//! The LiveKit RoomService operations, applied to the shard's rooms and participants with
//! the effects connected clients expect: removal sends `Leave{PARTICIPANT_REMOVED}`, a
//! forced mute tells the publisher and stops forwarding, revoking `canPublish`
//! unpublishes, metadata changes reach everyone as updates.

use super::*;
use crate::room_api::{
    MAX_ATTRIBUTES_BYTES, MAX_METADATA_BYTES, MAX_NAME_LEN, RoomApi, RoomApiError, RoomApiResponse,
};

type ApiResult = Result<RoomApiResponse, RoomApiError>;

fn room_not_found() -> RoomApiError {
    RoomApiError::NotFound("requested room does not exist".into())
}

fn participant_not_found() -> RoomApiError {
    RoomApiError::NotFound("participant does not exist".into())
}

fn check_metadata(metadata: &str) -> Result<(), RoomApiError> {
    if metadata.len() > MAX_METADATA_BYTES {
        return Err(RoomApiError::InvalidArgument(format!(
            "metadata is larger than {MAX_METADATA_BYTES} bytes"
        )));
    }
    Ok(())
}

impl Shard {
    /// Applies a RoomService request.
    pub fn room_api(&mut self, now: Instant, req: RoomApi) -> ApiResult {
        let r = match req {
            RoomApi::CreateRoom(r) => self.api_create_room(now, *r),
            RoomApi::ListRooms(r) => Ok(RoomApiResponse::Rooms(
                self.rooms
                    .keys()
                    .filter(|n| r.names.is_empty() || r.names.contains(n))
                    .filter_map(|n| self.room_info(n))
                    .collect(),
            )),
            RoomApi::DeleteRoom(r) => self.api_delete_room(now, &r.room),
            RoomApi::ListParticipants(r) => {
                let room = self.rooms.get(&r.room).ok_or_else(room_not_found)?;
                Ok(RoomApiResponse::Participants(
                    room.members
                        .iter()
                        .filter_map(|m| self.participants.get(m))
                        .map(|p| p.info(self.track_infos(p.id)))
                        .collect(),
                ))
            }
            RoomApi::GetParticipant(r) => {
                let pid = self.api_participant(&r.room, &r.identity)?;
                Ok(RoomApiResponse::Participant(self.info_of(pid)))
            }
            RoomApi::RemoveParticipant(r) => {
                let pid = self.api_participant(&r.room, &r.identity)?;
                self.remove_participant(
                    now,
                    pid,
                    proto::DisconnectReason::ParticipantRemoved,
                    true,
                );
                Ok(RoomApiResponse::Empty)
            }
            RoomApi::MutePublishedTrack(r) => self.api_mute(r),
            RoomApi::UpdateParticipant(r) => self.api_update_participant(now, r),
            RoomApi::UpdateSubscriptions(r) => {
                let pid = self.api_participant(&r.room, &r.identity)?;
                let mut sids = r.track_sids;
                for pt in r.participant_tracks {
                    sids.extend(pt.track_sids);
                }
                for sid in sids {
                    if r.subscribe {
                        self.subscribe(now, pid, &sid);
                    } else {
                        self.unsubscribe(now, pid, &sid);
                    }
                }
                self.negotiate(now, pid);
                Ok(RoomApiResponse::Empty)
            }
            RoomApi::SendData(r) => self.api_send_data(now, r),
            RoomApi::UpdateRoomMetadata(r) => {
                check_metadata(&r.metadata)?;
                let room = self.rooms.get_mut(&r.room).ok_or_else(room_not_found)?;
                room.metadata = r.metadata;
                let members = room.members.clone();
                let info = self.room_info(&r.room).expect("room exists");
                for m in members {
                    let update = proto::RoomUpdate {
                        room: Some(info.clone()),
                    };
                    self.signal(m, signal::resp(Resp::RoomUpdate(update)));
                }
                Ok(RoomApiResponse::Room(info))
            }
        };
        self.flush(now);
        r
    }

    fn api_participant(&self, room: &str, identity: &str) -> Result<ParticipantId, RoomApiError> {
        if !self.rooms.contains_key(room) {
            return Err(room_not_found());
        }
        self.find_participant(room, identity)
            .ok_or_else(participant_not_found)
    }

    fn api_create_room(&mut self, now: Instant, r: proto::CreateRoomRequest) -> ApiResult {
        if r.name.is_empty() {
            return Err(RoomApiError::InvalidArgument(
                "room name is required".into(),
            ));
        }
        if r.name.len() > MAX_NAME_LEN {
            return Err(RoomApiError::InvalidArgument(
                "room name is too long".into(),
            ));
        }
        check_metadata(&r.metadata)?;
        let nonzero = |v: u32| (v > 0).then_some(v);
        match self.rooms.get_mut(&r.name) {
            Some(room) => {
                // Idempotent: return the room, applying explicitly given values.
                if let Some(v) = nonzero(r.empty_timeout) {
                    room.empty_timeout = v;
                }
                if let Some(v) = nonzero(r.departure_timeout) {
                    room.departure_timeout = v;
                }
                if let Some(v) = nonzero(r.max_participants) {
                    room.max_participants = v;
                }
                if !r.metadata.is_empty() {
                    room.metadata = r.metadata;
                }
            }
            None => {
                let settings = crate::RoomSettings {
                    empty_timeout: nonzero(r.empty_timeout),
                    departure_timeout: nonzero(r.departure_timeout),
                    max_participants: nonzero(r.max_participants),
                    metadata: Some(r.metadata),
                };
                self.create_room(now, &r.name, &settings);
            }
        }
        Ok(RoomApiResponse::Room(
            self.room_info(&r.name).expect("room exists"),
        ))
    }

    fn api_delete_room(&mut self, now: Instant, name: &str) -> ApiResult {
        let members = self
            .rooms
            .get(name)
            .ok_or_else(room_not_found)?
            .members
            .clone();
        for pid in members {
            self.remove_participant(now, pid, proto::DisconnectReason::RoomDeleted, true);
        }
        self.close_room(name, "deleted");
        Ok(RoomApiResponse::Empty)
    }

    fn api_mute(&mut self, r: proto::MuteRoomTrackRequest) -> ApiResult {
        let pid = self.api_participant(&r.room, &r.identity)?;
        let owns = self.participants[&pid].published.contains(&r.track_sid);
        let track = self
            .tracks
            .get_mut(&r.track_sid)
            .filter(|_| owns)
            .ok_or_else(|| RoomApiError::NotFound("track does not exist".into()))?;
        if !r.muted && !self.cfg.enable_remote_unmute {
            return Err(RoomApiError::FailedPrecondition(
                "remote unmute not enabled (room.enable_remote_unmute)".into(),
            ));
        }
        track.info.muted = r.muted;
        let info = track.info.clone();
        let mute = proto::MuteTrackRequest {
            sid: r.track_sid,
            muted: r.muted,
        };
        self.signal(pid, signal::resp(Resp::Mute(mute)));
        if let Some(p) = self.participants.get_mut(&pid) {
            p.bump();
        }
        self.broadcast_participant(pid, true);
        Ok(RoomApiResponse::Track(info))
    }

    fn api_update_participant(
        &mut self,
        now: Instant,
        r: proto::UpdateParticipantRequest,
    ) -> ApiResult {
        let pid = self.api_participant(&r.room, &r.identity)?;
        check_metadata(&r.metadata)?;
        let attrs_size: usize = r.attributes.iter().map(|(k, v)| k.len() + v.len()).sum();
        if attrs_size > MAX_ATTRIBUTES_BYTES {
            return Err(RoomApiError::InvalidArgument(format!(
                "attributes are larger than {MAX_ATTRIBUTES_BYTES} bytes"
            )));
        }
        let p = self.participants.get_mut(&pid).expect("found above");
        if !r.metadata.is_empty() {
            p.metadata = r.metadata;
        }
        if !r.name.is_empty() {
            p.name = r.name;
        }
        for (k, v) in r.attributes {
            if v.is_empty() {
                p.attributes.remove(&k);
            } else {
                p.attributes.insert(k, v);
            }
        }
        let mut unpublish_all = false;
        let mut unsubscribe_all = false;
        if let Some(perm) = r.permission {
            unpublish_all = p.permission.can_publish && !perm.can_publish;
            unsubscribe_all = p.permission.can_subscribe && !perm.can_subscribe;
            p.permission = perm.clone();
            self.out.push_back(Output::PermissionChanged(pid, perm));
        }
        p.bump();
        if unpublish_all {
            for sid in self.participants[&pid].published.clone() {
                self.unpublish(now, pid, &sid);
                let msg = proto::TrackUnpublishedResponse { track_sid: sid };
                self.signal(pid, signal::resp(Resp::TrackUnpublished(msg)));
            }
        }
        if unsubscribe_all {
            for sid in self.participants[&pid]
                .subscribed
                .keys()
                .cloned()
                .collect::<Vec<_>>()
            {
                self.unsubscribe(now, pid, &sid);
            }
        }
        self.broadcast_participant(pid, true);
        Ok(RoomApiResponse::Participant(self.info_of(pid)))
    }

    fn api_send_data(&mut self, now: Instant, r: proto::SendDataRequest) -> ApiResult {
        if !self.rooms.contains_key(&r.room) {
            return Err(room_not_found());
        }
        if !r.nonce.is_empty() && r.nonce.len() != 16 {
            return Err(RoomApiError::InvalidArgument(
                "nonce must be 16 bytes or empty".into(),
            ));
        }
        let reliable = r.kind != proto::data_packet::Kind::Lossy as i32;
        #[allow(deprecated)]
        let dp = proto::DataPacket {
            kind: r.kind,
            destination_identities: r.destination_identities.clone(),
            value: Some(proto::data_packet::Value::User(proto::UserPacket {
                payload: r.data,
                topic: r.topic,
                nonce: r.nonce,
                destination_identities: r.destination_identities.clone(),
                ..Default::default()
            })),
            ..Default::default()
        };
        #[allow(deprecated)]
        let sids = r.destination_sids;
        let encoded = dp.encode_to_vec();
        let members = self.rooms[&r.room].members.clone();
        for m in members {
            let Some(p) = self.participants.get(&m) else {
                continue;
            };
            let targeted = !r.destination_identities.is_empty() || !sids.is_empty();
            if targeted && !r.destination_identities.contains(&p.identity) && !sids.contains(&p.sid)
            {
                continue;
            }
            self.send_data_to(now, m, reliable, &encoded);
        }
        Ok(RoomApiResponse::Empty)
    }
}
