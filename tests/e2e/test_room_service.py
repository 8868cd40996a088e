"""(g) LiveKit's server API (Twirp RoomService at POST /twirp/livekit.RoomService/<Method>),
driven by the real server SDKs against rooms with live Python livekit.rtc participants.

  - test_room_service_python_protobuf: `livekit.api.LiveKitAPI` (Python, protobuf bodies).
    CreateRoom twice (same sid, explicitly given values applied, others kept), ListRooms (name
    filter, participant/publisher counts), ListParticipants / GetParticipant (identities,
    published tracks), UpdateRoomMetadata (everyone gets room_metadata_changed),
    UpdateParticipant metadata/name/attributes (the observer and the target itself see the
    changes), MutePublishedTrack (track_muted at the observer and at the publisher, whose local
    publication becomes muted; no more video frames), SendData to everyone and to
    destination_identities (topic, payload, no sender identity; nobody else gets the targeted
    one), UpdateSubscriptions subscribe=False/True (the observer's inbound audio RTP stops /
    resumes with a new track_subscribed), UpdateParticipant permission can_publish=False (the
    others get track_unpublished, the publisher its new permission), RemoveParticipant
    (disconnected PARTICIPANT_REMOVED), DeleteRoom (disconnected ROOM_DELETED, the room is gone
    from ListRooms).
    Two things the Python SDK (1.2.1, Rust SDK underneath) cannot show, whatever the server
    does: a server-side unsubscription never produces track_unsubscribed (only the app's own
    set_subscribed(False) or an unpublish do), and the server's TrackUnpublishedResponse for a
    local track is ignored (no local_track_unpublished). Those effects are checked on the wire
    and at the other participants instead.
  - test_room_service_node_json: the same through `RoomServiceClient` of livekit-server-sdk
    (Node, JSON bodies) run by js/room_service_client.mjs (JSON lines); every RoomService method
    it has is called and its effect on the participants is checked; a Twirp error is parsed by
    the Node SDK (code + status).
  - test_room_service_errors: Twirp errors: wrong grants -> unauthenticated/401; unknown
    room/participant/track -> not_found/404; garbage protobuf and invalid JSON -> malformed/400;
    unknown method or service -> bad_route/404; livekit.Egress -> unimplemented/501. Every error
    has `Content-Type: application/json` and a JSON {code, msg} body; nothing answers 5xx but 501.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Optional

import aiohttp
from livekit import api, rtc

from conftest import _register_log, _safe_name
from e2e_helpers import ARTIFACTS, JS_DIR, NODE, poll, publish_synthetic

TEST_TIMEOUT_S = 55
PUB, OBS, GUEST = "publisher", "observer", "guest"


# --------------------------------------------------------------------------------------------
# helpers


class Events:
    """Every RoomService-relevant event of one Room, as dicts {"ev": name, ..., "t": monotonic}."""

    def __init__(self, room: rtc.Room) -> None:
        self.room = room
        self.log: list[dict] = []
        on = room.on
        on("room_metadata_changed", lambda old, new: self._add("room_metadata_changed", old=old, new=new))
        on("participant_metadata_changed",
           lambda p, old, new: self._add("participant_metadata_changed", p, old=old, new=new))
        on("participant_name_changed",
           lambda p, old, new: self._add("participant_name_changed", p, old=old, new=new))
        on("participant_attributes_changed",
           lambda changed, p: self._add("participant_attributes_changed", p, changed=dict(changed)))
        on("participant_permissions_changed",
           lambda p, perm: self._add("participant_permissions_changed", p, can_publish=perm.can_publish,
                                     can_subscribe=perm.can_subscribe))
        on("track_muted", lambda p, pub: self._add("track_muted", p, sid=pub.sid))
        on("track_unmuted", lambda p, pub: self._add("track_unmuted", p, sid=pub.sid))
        on("track_published", lambda pub, p: self._add("track_published", p, sid=pub.sid))
        on("track_unpublished", lambda pub, p: self._add("track_unpublished", p, sid=pub.sid))
        on("track_subscribed", lambda tr, pub, p: self._add("track_subscribed", p, sid=pub.sid))
        on("track_unsubscribed", lambda tr, pub, p: self._add("track_unsubscribed", p, sid=pub.sid))
        on("local_track_unpublished", lambda pub: self._add("local_track_unpublished", sid=pub.sid))
        on("participant_disconnected",
           lambda p: self._add("participant_disconnected", p, reason=p.disconnect_reason))
        on("disconnected", lambda reason: self._add("disconnected", reason=reason))

    def _add(self, ev: str, participant: Any = None, **kw) -> None:
        d = {"ev": ev, **kw, "t": time.monotonic()}
        if participant is not None:
            d["identity"] = participant.identity
            d["local"] = isinstance(participant, rtc.LocalParticipant)
        self.log.append(d)

    def of(self, ev: str, **match) -> list[dict]:
        return [e for e in self.log if e["ev"] == ev and all(e.get(k) == v for k, v in match.items())]

    async def wait(self, who: str, ev: str, timeout: float = 5.0, **match) -> dict:
        try:
            got = await poll(lambda: self.of(ev, **match), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"{who}: no {ev} {match or ''} within {timeout} s; its events: {self.summary()}") from None
        return got[0]

    def summary(self) -> list:
        return [{k: v for k, v in e.items() if k != "t"} for e in self.log]


def _reason(r: Optional[int]) -> str:
    try:
        return rtc.DisconnectReason.Name(r)  # type: ignore[arg-type]
    except Exception:
        return repr(r)


async def _setup_participants(srv, lk, room_name: str):
    """observer + guest join, then publisher joins and publishes synthetic video + audio; the
    observer is subscribed to both tracks. Returns (pub, obs, guest, video, audio, events)."""
    obs = await lk(srv, OBS, room_name, counter=True)
    guest = await lk(srv, GUEST, room_name)
    ev = {OBS: Events(obs.room), GUEST: Events(guest.room)}
    pub = await lk(srv, PUB, room_name)
    ev[PUB] = Events(pub.room)
    video, audio = await publish_synthetic(pub.room, video=True, audio=True)
    pub.closers += [video.aclose, audio.aclose]
    await obs.counter.wait_subscribed(PUB, "video", timeout=15)
    await obs.counter.wait_subscribed(PUB, "audio", timeout=15)
    await poll(lambda: {PUB, GUEST} <= set(obs.room.remote_participants)
               and {PUB, OBS} <= set(guest.room.remote_participants)
               and {OBS, GUEST} <= set(pub.room.remote_participants), 10)
    return pub, obs, guest, video, audio, ev


async def _audio_packets(room: rtc.Room) -> int:
    """Total inbound-rtp audio packets of the Room's subscriber connection (libwebrtc stats)."""
    st = await asyncio.wait_for(room.get_rtc_stats(), 5)
    return sum(s.inbound_rtp.received.packets_received for s in st.subscriber_stats
               if s.WhichOneof("stats") == "inbound_rtp" and s.inbound_rtp.stream.kind == "audio")


async def _audio_packets_in(room: rtc.Room, seconds: float) -> int:
    n0 = await _audio_packets(room)
    await asyncio.sleep(seconds)
    return max(0, await _audio_packets(room) - n0)


async def _frames_in(counter, key: tuple[str, str], seconds: float) -> int:
    n0 = counter.frames[key]
    await asyncio.sleep(seconds)
    return counter.frames[key] - n0


# --------------------------------------------------------------------------------------------
# 1. Python server SDK (protobuf)


async def test_room_service_python_protobuf(server, lk, note):
    room_name = "rs-py-room"
    other_name = "rs-py-other"

    async def body(srv, lkapi: api.LiveKitAPI):
        rs = lkapi.room

        # -- CreateRoom: explicit values; a second call returns the same room and applies its values
        r1 = await rs.create_room(api.CreateRoomRequest(
            name=room_name, empty_timeout=300, departure_timeout=7, max_participants=10, metadata="created"))
        note("CreateRoom #1", (r1.sid, r1.empty_timeout, r1.departure_timeout, r1.max_participants, r1.metadata))
        assert r1.name == room_name and r1.sid.startswith("RM_"), r1
        assert (r1.empty_timeout, r1.departure_timeout, r1.max_participants, r1.metadata) == (300, 7, 10, "created"), r1
        r2 = await rs.create_room(api.CreateRoomRequest(name=room_name, max_participants=20, metadata="recreated"))
        note("CreateRoom #2", (r2.sid, r2.empty_timeout, r2.departure_timeout, r2.max_participants, r2.metadata))
        assert r2.sid == r1.sid, f"CreateRoom is not idempotent: {r1.sid} then {r2.sid}"
        assert (r2.max_participants, r2.metadata) == (20, "recreated"), r2
        assert (r2.empty_timeout, r2.departure_timeout) == (300, 7), f"unspecified values changed: {r2}"
        other = await rs.create_room(api.CreateRoomRequest(name=other_name))
        assert other.sid.startswith("RM_") and other.sid != r1.sid

        pub, obs, guest, video, audio, ev = await _setup_participants(srv, lk, room_name)
        vsid, asid = video.track.sid, audio.track.sid
        joined_sid = await asyncio.wait_for(obs.room.sid, 5)
        note("room sid seen by participants / room metadata", (joined_sid, obs.room.metadata))
        assert joined_sid == r1.sid, f"participants joined {joined_sid}, CreateRoom made {r1.sid}"
        assert obs.room.metadata == "recreated"

        # -- ListRooms
        listed = (await rs.list_rooms(api.ListRoomsRequest(names=[room_name]))).rooms
        note("ListRooms([room]) (name, sid, num_participants, num_publishers)",
             [(r.name, r.sid, r.num_participants, r.num_publishers) for r in listed])
        assert [r.name for r in listed] == [room_name], listed
        assert listed[0].sid == r1.sid and listed[0].num_participants == 3 and listed[0].num_publishers == 1, listed[0]
        all_rooms = (await rs.list_rooms(api.ListRoomsRequest())).rooms
        assert {room_name, other_name} <= {r.name for r in all_rooms}, all_rooms
        assert not (await rs.list_rooms(api.ListRoomsRequest(names=["rs-no-such-room"]))).rooms

        # -- ListParticipants / GetParticipant
        parts = (await rs.list_participants(api.ListParticipantsRequest(room=room_name))).participants
        by_id = {p.identity: p for p in parts}
        note("ListParticipants (identity, state, tracks)",
             [(p.identity, api.ParticipantInfo.State.Name(p.state), [(t.sid, api.TrackType.Name(t.type)) for t in p.tracks])
              for p in parts])
        assert set(by_id) == {PUB, OBS, GUEST}, list(by_id)
        assert {t.sid: t.type for t in by_id[PUB].tracks} == {vsid: api.TrackType.VIDEO, asid: api.TrackType.AUDIO}
        assert not by_id[OBS].tracks and not by_id[GUEST].tracks
        gp = await rs.get_participant(api.RoomParticipantIdentity(room=room_name, identity=PUB))
        note("GetParticipant(publisher) (sid, state, name)", (gp.sid, api.ParticipantInfo.State.Name(gp.state), gp.name))
        assert gp.identity == PUB and gp.sid == pub.room.local_participant.sid, gp
        assert {t.sid for t in gp.tracks} == {vsid, asid}
        assert gp.permission.can_publish

        # -- UpdateRoomMetadata: everyone gets room_metadata_changed
        rm = await rs.update_room_metadata(api.UpdateRoomMetadataRequest(room=room_name, metadata="room-meta-v2"))
        assert rm.metadata == "room-meta-v2" and rm.sid == r1.sid, rm
        for who, p in ((PUB, pub), (OBS, obs), (GUEST, guest)):
            e = await ev[who].wait(who, "room_metadata_changed", new="room-meta-v2")
            assert p.room.metadata == "room-meta-v2"
        note("room_metadata_changed (old -> new) at observer",
             [(e["old"], e["new"]) for e in ev[OBS].of("room_metadata_changed")])

        # -- UpdateParticipant: metadata, name, attributes of the guest
        up = await rs.update_participant(api.UpdateParticipantRequest(
            room=room_name, identity=GUEST, metadata="guest-meta", name="Guest Renamed",
            attributes={"role": "speaker", "lang": "fr"}))
        assert (up.metadata, up.name, dict(up.attributes)) == (
            "guest-meta", "Guest Renamed", {"role": "speaker", "lang": "fr"}), up
        await ev[OBS].wait(OBS, "participant_metadata_changed", identity=GUEST, new="guest-meta")
        await ev[OBS].wait(OBS, "participant_name_changed", identity=GUEST, new="Guest Renamed")
        await poll(lambda: obs.room.remote_participants[GUEST].attributes == {"role": "speaker", "lang": "fr"}, 5)
        attr_evs = ev[OBS].of("participant_attributes_changed", identity=GUEST)
        note("observer: participant_attributes_changed for guest", [e["changed"] for e in attr_evs])
        assert attr_evs and attr_evs[-1]["changed"] == {"role": "speaker", "lang": "fr"}, ev[OBS].summary()
        # the target itself
        await ev[GUEST].wait(GUEST, "participant_metadata_changed", identity=GUEST, local=True, new="guest-meta")
        lp = guest.room.local_participant
        await poll(lambda: lp.name == "Guest Renamed" and lp.attributes == {"role": "speaker", "lang": "fr"}, 5)
        assert lp.metadata == "guest-meta"
        # removing one attribute (empty value) keeps the other
        await rs.update_participant(api.UpdateParticipantRequest(room=room_name, identity=GUEST, attributes={"lang": ""}))
        await poll(lambda: obs.room.remote_participants[GUEST].attributes == {"role": "speaker"}, 5)

        # -- MutePublishedTrack(video, muted=True)
        frames_before = await _frames_in(obs.counter, (PUB, "video"), 1.0)
        mr = await rs.mute_published_track(api.MuteRoomTrackRequest(
            room=room_name, identity=PUB, track_sid=vsid, muted=True))
        assert mr.track.sid == vsid and mr.track.muted, mr
        await ev[OBS].wait(OBS, "track_muted", identity=PUB, sid=vsid)
        assert obs.room.remote_participants[PUB].track_publications[vsid].muted
        await ev[PUB].wait(PUB, "track_muted", identity=PUB, local=True, sid=vsid)
        local_vpub = pub.room.local_participant.track_publications[vsid]
        note("publisher: local video publication muted / track muted",
             (local_vpub.muted, local_vpub.track.muted if local_vpub.track else None))
        assert local_vpub.muted
        assert not ev[OBS].of("track_muted", sid=asid) and not ev[PUB].of("track_muted", sid=asid)
        await asyncio.sleep(0.5)
        frames_muted = await _frames_in(obs.counter, (PUB, "video"), 2.0)
        note("observer video frames: 1 s before mute / 2 s (after 0.5 s) while muted", (frames_before, frames_muted))
        assert frames_muted <= 3, f"{frames_muted} video frames in 2 s after MutePublishedTrack"

        # -- SendData: everyone, then only the observer
        await rs.send_data(api.SendDataRequest(room=room_name, data=b"api-to-all",
                                               kind=api.DataPacket.Kind.RELIABLE, topic="api-topic"))
        for who, p in ((PUB, pub), (OBS, obs), (GUEST, guest)):
            try:
                got = await poll(lambda: p.recorder.data_with(b"api-to-all"), 5)
            except asyncio.TimeoutError:
                raise AssertionError(f"{who} did not receive the broadcast SendData") from None
            assert len(got) == 1 and got[0]["topic"] == "api-topic" and got[0]["kind"] == "reliable", got
            assert not got[0]["from"], f"server-sent data has a sender identity: {got[0]}"
        t_direct = time.monotonic()
        await rs.send_data(api.SendDataRequest(room=room_name, data=b"api-to-observer",
                                               kind=api.DataPacket.Kind.RELIABLE, topic="api-direct",
                                               destination_identities=[OBS]))
        got = await poll(lambda: obs.recorder.data_with(b"api-to-observer"), 5)
        assert len(got) == 1 and got[0]["topic"] == "api-direct" and not got[0]["from"], got
        await asyncio.sleep(max(0.0, t_direct + 2.0 - time.monotonic()))
        assert not pub.recorder.data_with(b"api-to-observer"), "publisher got data targeted to the observer"
        assert not guest.recorder.data_with(b"api-to-observer"), "guest got data targeted to the observer"
        note("SendData received (broadcast, targeted) by pub/obs/guest",
             [(len(p.recorder.data_with(b"api-to-all")), len(p.recorder.data_with(b"api-to-observer")))
              for p in (pub, obs, guest)])

        # -- UpdateSubscriptions: the observer drops the audio track, then takes it again.
        # The Python SDK (Rust SDK underneath) emits track_unsubscribed only for its own
        # set_subscribed(False) or an unpublish, never when the server removes a subscription
        # (RemoteTrackPublication has no onRemoveTrack handling), so the effect is checked on
        # the wire: the observer's inbound audio RTP stops, and comes back on subscribe=True.
        n_on = await _audio_packets_in(obs.room, 1.0)
        await rs.update_subscriptions(api.UpdateSubscriptionsRequest(
            room=room_name, identity=OBS, track_sids=[asid], subscribe=False))
        await asyncio.sleep(1.0)
        n_off = await _audio_packets_in(obs.room, 2.0)
        subs_before = len(ev[OBS].of("track_subscribed", identity=PUB, sid=asid))
        await rs.update_subscriptions(api.UpdateSubscriptionsRequest(
            room=room_name, identity=OBS, track_sids=[asid], subscribe=True))
        try:
            await poll(lambda: len(ev[OBS].of("track_subscribed", identity=PUB, sid=asid)) > subs_before, 10)
        except asyncio.TimeoutError:
            raise AssertionError(f"observer: no new track_subscribed for {asid} within 10 s of "
                                 f"UpdateSubscriptions(subscribe=True): {ev[OBS].summary()}") from None
        await asyncio.sleep(0.5)
        n_again = await _audio_packets_in(obs.room, 1.0)
        note("observer audio RTP packets: 1 s subscribed / 2 s after subscribe=False (+1 s) / 1 s after subscribe=True",
             (n_on, n_off, n_again))
        note("observer audio subscription events", [e["ev"] for e in ev[OBS].log if e.get("sid") == asid])
        assert n_on >= 20, f"only {n_on} audio RTP packets/s before UpdateSubscriptions"
        assert n_off <= 5, (f"server still sends the audio track after UpdateSubscriptions(subscribe=False): "
                            f"{n_off} RTP packets in 2 s")
        assert n_again >= 20, f"only {n_again} audio RTP packets/s after UpdateSubscriptions(subscribe=True)"
        assert not ev[OBS].of("track_unsubscribed", sid=vsid), "video was unsubscribed too"

        # -- UpdateParticipant permission can_publish=False: the publisher's tracks are unpublished
        up = await rs.update_participant(api.UpdateParticipantRequest(
            room=room_name, identity=PUB,
            permission=api.ParticipantPermission(can_subscribe=True, can_publish=False, can_publish_data=True)))
        assert not up.permission.can_publish and up.permission.can_subscribe, up.permission
        for sid in (vsid, asid):
            await ev[OBS].wait(OBS, "track_unpublished", identity=PUB, sid=sid)
            await ev[GUEST].wait(GUEST, "track_unpublished", identity=PUB, sid=sid)
        await poll(lambda: not obs.room.remote_participants[PUB].track_publications, 5)
        # The publisher learns its new permission. (The Rust SDK under the Python one ignores the
        # server's TrackUnpublishedResponse: local_track_unpublished only follows the app's own
        # unpublish_track(), so the local publications stay; they are only noted here.)
        await ev[PUB].wait(PUB, "participant_permissions_changed", identity=PUB, local=True, can_publish=False)
        assert not pub.room.local_participant.permissions.can_publish
        note("publisher after can_publish=False: local_track_unpublished events / local publications",
             (len(ev[PUB].of("local_track_unpublished")), len(pub.room.local_participant.track_publications)))
        await ev[OBS].wait(OBS, "participant_permissions_changed", identity=PUB, can_publish=False)
        gp = await rs.get_participant(api.RoomParticipantIdentity(room=room_name, identity=PUB))
        assert not gp.tracks and not gp.permission.can_publish, gp

        # -- RemoveParticipant(guest)
        t_rm = time.monotonic()
        await rs.remove_participant(api.RoomParticipantIdentity(room=room_name, identity=GUEST))
        d = await ev[GUEST].wait(GUEST, "disconnected")
        note("guest disconnected: reason / after (s)", (_reason(d["reason"]), round(d["t"] - t_rm, 2)))
        assert d["reason"] == rtc.DisconnectReason.PARTICIPANT_REMOVED, _reason(d["reason"])
        await poll(lambda: GUEST in obs.recorder.disconnected and GUEST not in obs.room.remote_participants, 5)
        parts = (await rs.list_participants(api.ListParticipantsRequest(room=room_name))).participants
        assert {p.identity for p in parts} == {PUB, OBS}, parts

        # -- DeleteRoom: the others are disconnected with ROOM_DELETED
        t_del = time.monotonic()
        await rs.delete_room(api.DeleteRoomRequest(room=room_name))
        for who in (PUB, OBS):
            d = await ev[who].wait(who, "disconnected")
            note(f"{who} disconnected: reason / after (s)", (_reason(d["reason"]), round(d["t"] - t_del, 2)))
            assert d["reason"] == rtc.DisconnectReason.ROOM_DELETED, (who, _reason(d["reason"]))
        names = {r.name for r in (await rs.list_rooms(api.ListRoomsRequest())).rooms}
        assert room_name not in names and other_name in names, names
        assert not (await rs.list_rooms(api.ListRoomsRequest(names=[room_name]))).rooms

    async def run():
        srv = server()
        lkapi = api.LiveKitAPI(srv.http, srv.key, srv.secret)
        try:
            await body(srv, lkapi)
        finally:
            await lkapi.aclose()

    await asyncio.wait_for(run(), TEST_TIMEOUT_S)


# --------------------------------------------------------------------------------------------
# 2. Node server SDK (JSON)


class NodeRoomService:
    """js/room_service_client.mjs: RoomServiceClient of livekit-server-sdk, one JSON line per call."""

    def __init__(self, log_path) -> None:
        self.log_path = log_path
        self.proc: Optional[asyncio.subprocess.Process] = None
        self._next = 0
        self.calls: list[dict] = []

    async def start(self, host: str, key: str, secret: str) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        self.proc = await asyncio.create_subprocess_exec(
            NODE, str(JS_DIR / "room_service_client.mjs"), "--host", host, "--key", key, "--secret", secret,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=self._log, cwd=str(JS_DIR))
        first = await self._line(15)
        assert first.get("event") == "ready", first

    async def _line(self, timeout: float) -> dict:
        assert self.proc and self.proc.stdout
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise AssertionError(f"room_service_client.mjs exited ({self.proc.returncode}); see {self.log_path}")
        self._log.write(b"[stdout] " + line)
        self._log.flush()
        return json.loads(line)

    async def raw(self, op: str, **args) -> dict:
        assert self.proc and self.proc.stdin
        self._next += 1
        cid = self._next
        self.proc.stdin.write((json.dumps({"id": cid, "op": op, **args}) + "\n").encode())
        await self.proc.stdin.drain()
        r = await self._line(15)
        assert r.get("id") == cid, r
        self.calls.append(r)
        return r

    async def call(self, op: str, **args) -> Any:
        r = await self.raw(op, **args)
        if not r["ok"]:
            raise AssertionError(f"Node RoomServiceClient.{op}({args}) failed: {r['error']}")
        return r["result"]

    async def close(self) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            try:
                assert self.proc.stdin
                self.proc.stdin.write(b'{"op":"quit"}\n')
                await self.proc.stdin.drain()
                self.proc.stdin.close()
                await asyncio.wait_for(self.proc.wait(), 5)
            except Exception:
                self.proc.kill()
                await self.proc.wait()
        self._log.close()


def _tracks(pinfo: dict) -> dict[str, str]:
    return {t["sid"]: t.get("type") for t in pinfo.get("tracks", [])}


async def test_room_service_node_json(server, lk, note, request):
    room_name = "rs-node-room"
    log_path = ARTIFACTS / f"{_safe_name(request.node.nodeid)}-node-room-service.log"
    _register_log(request, "node room service client log", log_path)
    node = NodeRoomService(log_path)

    async def body():
        srv = server()
        await node.start(srv.http, srv.key, srv.secret)

        # -- createRoom twice
        c1 = await node.call("createRoom", options={"name": room_name, "emptyTimeout": 120, "maxParticipants": 8,
                                                     "metadata": "node-created"})
        note("createRoom #1 (JSON)", c1)
        assert c1["name"] == room_name and c1["sid"].startswith("RM_"), c1
        assert (c1["emptyTimeout"], c1["maxParticipants"], c1["metadata"]) == (120, 8, "node-created"), c1
        c2 = await node.call("createRoom", options={"name": room_name, "maxParticipants": 9})
        assert c2["sid"] == c1["sid"] and c2["maxParticipants"] == 9 and c2["emptyTimeout"] == 120, c2
        assert c2["metadata"] == "node-created", c2

        pub, obs, guest, video, audio, ev = await _setup_participants(srv, lk, room_name)
        vsid, asid = video.track.sid, audio.track.sid
        assert await asyncio.wait_for(obs.room.sid, 5) == c1["sid"]

        # -- listRooms
        rooms = await node.call("listRooms", names=[room_name])
        note("listRooms([room]) (JSON)", [(r["name"], r["sid"], r.get("numParticipants"), r.get("numPublishers"))
                                          for r in rooms])
        assert [r["name"] for r in rooms] == [room_name] and rooms[0]["sid"] == c1["sid"], rooms
        assert rooms[0]["numParticipants"] == 3 and rooms[0]["numPublishers"] == 1, rooms[0]
        assert room_name in {r["name"] for r in await node.call("listRooms")}
        assert await node.call("listRooms", names=["rs-no-such-room"]) == []

        # the JSON on the wire is protobuf's canonical JSON: camelCase names, int64 as strings
        # (protobuf-es fromJson would also accept snake_case, so look at the raw body once)
        tok = api.AccessToken(srv.key, srv.secret).with_grants(api.VideoGrants(room_list=True)).to_jwt()
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{srv.http}/twirp/livekit.RoomService/ListRooms", data=b"{}",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {tok}"},
                                 timeout=aiohttp.ClientTimeout(total=5)) as r:
                assert r.status == 200 and r.headers.get("Content-Type", "").startswith("application/json"), r
                raw = json.loads(await r.read())
        note("raw JSON ListRooms room keys", sorted(raw["rooms"][0]))
        assert {"emptyTimeout", "maxParticipants", "numParticipants", "creationTime"} <= set(raw["rooms"][0]), raw
        assert isinstance(raw["rooms"][0]["creationTime"], str), raw

        # -- listParticipants / getParticipant
        parts = await node.call("listParticipants", room=room_name)
        by_id = {p["identity"]: p for p in parts}
        note("listParticipants (identity, state, tracks) (JSON)",
             [(p["identity"], p.get("state"), _tracks(p)) for p in parts])
        assert set(by_id) == {PUB, OBS, GUEST}, list(by_id)
        assert _tracks(by_id[PUB]) == {vsid: "VIDEO", asid: "AUDIO"}, by_id[PUB]
        gp = await node.call("getParticipant", room=room_name, identity=PUB)
        assert gp["identity"] == PUB and gp["sid"] == pub.room.local_participant.sid, gp
        assert set(_tracks(gp)) == {vsid, asid}, gp
        # a Twirp error, parsed by the Node SDK (it needs Content-Type: application/json exactly)
        err = await node.raw("getParticipant", room=room_name, identity="nobody")
        note("getParticipant(unknown identity) error (JSON)", err.get("error"))
        assert not err["ok"] and err["error"]["code"] == "not_found" and err["error"]["status"] == 404, err

        # -- updateRoomMetadata
        rm = await node.call("updateRoomMetadata", room=room_name, metadata="node-room-meta")
        assert rm["metadata"] == "node-room-meta" and rm["sid"] == c1["sid"], rm
        for who, p in ((PUB, pub), (OBS, obs), (GUEST, guest)):
            await ev[who].wait(who, "room_metadata_changed", new="node-room-meta")
            assert p.room.metadata == "node-room-meta"

        # -- updateParticipant: metadata, name, attributes
        up = await node.call("updateParticipant", room=room_name, identity=GUEST,
                             options={"metadata": "node-guest-meta", "name": "Node Guest",
                                      "attributes": {"team": "blue"}})
        assert (up["metadata"], up["name"], up.get("attributes")) == ("node-guest-meta", "Node Guest", {"team": "blue"}), up
        await ev[OBS].wait(OBS, "participant_metadata_changed", identity=GUEST, new="node-guest-meta")
        await ev[OBS].wait(OBS, "participant_name_changed", identity=GUEST, new="Node Guest")
        await poll(lambda: obs.room.remote_participants[GUEST].attributes == {"team": "blue"}, 5)
        await ev[GUEST].wait(GUEST, "participant_metadata_changed", local=True, new="node-guest-meta")
        await poll(lambda: guest.room.local_participant.name == "Node Guest"
                   and guest.room.local_participant.attributes == {"team": "blue"}, 5)

        # -- mutePublishedTrack
        tr = await node.call("mutePublishedTrack", room=room_name, identity=PUB, trackSid=vsid, muted=True)
        note("mutePublishedTrack result (JSON)", {k: tr.get(k) for k in ("sid", "type", "muted", "source")})
        assert tr["sid"] == vsid and tr["muted"] is True, tr
        await ev[OBS].wait(OBS, "track_muted", identity=PUB, sid=vsid)
        await ev[PUB].wait(PUB, "track_muted", identity=PUB, local=True, sid=vsid)
        assert pub.room.local_participant.track_publications[vsid].muted
        assert obs.room.remote_participants[PUB].track_publications[vsid].muted

        # -- sendData: everyone (lossy), then only the guest (reliable)
        await node.call("sendData", room=room_name, payload="node-to-all", kind="lossy",
                        options={"topic": "node-topic"})
        for who, p in ((PUB, pub), (OBS, obs), (GUEST, guest)):
            try:
                got = await poll(lambda: p.recorder.data_with(b"node-to-all"), 5)
            except asyncio.TimeoutError:
                raise AssertionError(f"{who} did not receive sendData to everyone") from None
            assert got[0]["topic"] == "node-topic" and got[0]["kind"] == "lossy" and not got[0]["from"], got
        t_direct = time.monotonic()
        await node.call("sendData", room=room_name, payload="node-to-guest", kind="reliable",
                        options={"topic": "node-direct", "destinationIdentities": [GUEST]})
        got = await poll(lambda: guest.recorder.data_with(b"node-to-guest"), 5)
        assert len(got) == 1 and got[0]["topic"] == "node-direct" and got[0]["kind"] == "reliable", got
        await asyncio.sleep(max(0.0, t_direct + 2.0 - time.monotonic()))
        assert not obs.recorder.data_with(b"node-to-guest") and not pub.recorder.data_with(b"node-to-guest")

        # -- updateSubscriptions: the observer drops the audio track (checked on the wire: see
        #    the Python test; the Python SDK emits no track_unsubscribed for server-side changes)
        n_on = await _audio_packets_in(obs.room, 1.0)
        assert await node.call("updateSubscriptions", room=room_name, identity=OBS, trackSids=[asid],
                               subscribe=False) is None
        await asyncio.sleep(1.0)
        n_off = await _audio_packets_in(obs.room, 2.0)
        note("observer audio RTP packets: 1 s before / 2 s after updateSubscriptions(false) (+1 s)", (n_on, n_off))
        assert n_on >= 20 and n_off <= 5, (n_on, n_off)

        # -- updateParticipant permission canPublish=false (protobuf-es leaves the false field out)
        up = await node.call("updateParticipant", room=room_name, identity=PUB,
                             options={"permission": {"canSubscribe": True, "canPublish": False,
                                                     "canPublishData": True}})
        assert not up["permission"].get("canPublish") and up["permission"].get("canSubscribe"), up["permission"]
        for sid in (vsid, asid):
            await ev[OBS].wait(OBS, "track_unpublished", identity=PUB, sid=sid)
        await poll(lambda: not pub.room.local_participant.permissions.can_publish, 5)

        # -- removeParticipant
        await node.call("removeParticipant", room=room_name, identity=GUEST)
        d = await ev[GUEST].wait(GUEST, "disconnected")
        note("guest disconnected (Node removeParticipant)", _reason(d["reason"]))
        assert d["reason"] == rtc.DisconnectReason.PARTICIPANT_REMOVED, _reason(d["reason"])
        await poll(lambda: GUEST in obs.recorder.disconnected, 5)
        assert {p["identity"] for p in await node.call("listParticipants", room=room_name)} == {PUB, OBS}

        # -- deleteRoom
        assert await node.call("deleteRoom", room=room_name) is None
        for who in (PUB, OBS):
            d = await ev[who].wait(who, "disconnected")
            assert d["reason"] == rtc.DisconnectReason.ROOM_DELETED, (who, _reason(d["reason"]))
        assert room_name not in {r["name"] for r in await node.call("listRooms")}
        note("Node calls (op, ok, ms)", [(c["op"], c["ok"], c["ms"]) for c in node.calls])

    try:
        await asyncio.wait_for(body(), TEST_TIMEOUT_S)
    finally:
        await node.close()


# --------------------------------------------------------------------------------------------
# 3. errors


def _admin_token(key: str, secret: str, **grants) -> str:
    return api.AccessToken(key, secret).with_identity("api-caller").with_grants(api.VideoGrants(**grants)).to_jwt()


async def _expect_error(coro, code: str, status: int, what: str) -> api.TwirpError:
    try:
        r = await coro
    except api.TwirpError as e:
        assert (e.code, e.status) == (code, status), f"{what}: got {e}, want {code}/{status}"
        return e
    raise AssertionError(f"{what}: succeeded ({r!r}), want {code}/{status}")


async def test_room_service_errors(server, lk, note):
    room_name = "rs-err-room"

    async def body(http: aiohttp.ClientSession):
        srv = server()
        base = f"{srv.http}/twirp"
        seen: list[tuple[str, int, str]] = []

        async def post(path: str, data: bytes, *, ctype: Optional[str], token: Optional[str],
                       method: str = "POST") -> tuple[int, str, bytes]:
            headers = {}
            if ctype is not None:
                headers["Content-Type"] = ctype
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            async with http.request(method, f"{base}/{path}", data=data, headers=headers,
                                    timeout=aiohttp.ClientTimeout(total=5)) as r:
                body_ = await r.read()
                seen.append((path, r.status, body_[:120].decode(errors="replace")))
                # 501 is `unimplemented`; anything else >= 500 (500 above all) is a server failure
                assert r.status < 500 or r.status == 501, f"{method} {path}: HTTP {r.status} {body_[:200]!r}"
                return r.status, r.headers.get("Content-Type", ""), body_

        async def twirp_error(path: str, data: bytes, ctype: Optional[str], token: Optional[str],
                              code: str, status: int) -> dict:
            st, ct, raw = await post(path, data, ctype=ctype, token=token)
            assert st == status, f"{path}: HTTP {st} {raw[:200]!r}, want {status} ({code})"
            assert ct == "application/json", f"{path}: Content-Type {ct!r} (Twirp errors: application/json)"
            j = json.loads(raw)
            assert j.get("code") == code and isinstance(j.get("msg"), str) and j["msg"], f"{path}: {j}"
            return j

        full = api.LiveKitAPI(srv.http, srv.key, srv.secret)
        try:
            await full.room.create_room(api.CreateRoomRequest(name=room_name))
        finally:
            await full.aclose()
        p = await lk(srv, "member", room_name)

        def with_token(tok: str) -> api.LiveKitAPI:
            return api.LiveKitAPI.with_token(tok, srv.http, session=http)

        # -- wrong grants -> unauthenticated (401)
        join_only = srv.token("member2", room_name)  # roomJoin only
        await _expect_error(with_token(join_only).room.list_rooms(api.ListRoomsRequest()),
                            "unauthenticated", 401, "roomJoin token: ListRooms")
        await _expect_error(with_token(join_only).room.list_participants(api.ListParticipantsRequest(room=room_name)),
                            "unauthenticated", 401, "roomJoin token: ListParticipants")
        admin_other = _admin_token(srv.key, srv.secret, room_admin=True, room="some-other-room")
        await _expect_error(with_token(admin_other).room.list_participants(api.ListParticipantsRequest(room=room_name)),
                            "unauthenticated", 401, "roomAdmin(other room): ListParticipants")
        await _expect_error(with_token(admin_other).room.remove_participant(
            api.RoomParticipantIdentity(room=room_name, identity="member")),
            "unauthenticated", 401, "roomAdmin(other room): RemoveParticipant")
        lister = _admin_token(srv.key, srv.secret, room_list=True)
        await _expect_error(with_token(lister).room.create_room(api.CreateRoomRequest(name="rs-sneaky")),
                            "unauthenticated", 401, "roomList token: CreateRoom")
        await _expect_error(with_token(lister).room.delete_room(api.DeleteRoomRequest(room=room_name)),
                            "unauthenticated", 401, "roomList token: DeleteRoom")
        admin_here = _admin_token(srv.key, srv.secret, room_admin=True, room=room_name)
        await _expect_error(with_token(admin_here).room.delete_room(api.DeleteRoomRequest(room=room_name)),
                            "unauthenticated", 401, "roomAdmin token: DeleteRoom (needs roomCreate)")
        bad_sig = api.AccessToken(srv.key, "not-the-right-secret-0123456789abcdefghij").with_grants(
            api.VideoGrants(room_list=True)).to_jwt()
        await _expect_error(with_token(bad_sig).room.list_rooms(api.ListRoomsRequest()),
                            "unauthenticated", 401, "bad signature: ListRooms")
        await twirp_error("livekit.RoomService/ListRooms", b"", "application/protobuf", None, "unauthenticated", 401)
        # positive controls with the right grants
        assert [r.name for r in (await with_token(lister).room.list_rooms(api.ListRoomsRequest())).rooms] == [room_name]
        ps = (await with_token(admin_here).room.list_participants(api.ListParticipantsRequest(room=room_name))).participants
        assert [x.identity for x in ps] == ["member"], ps

        # -- unknown room / participant / track -> not_found (404)
        lkapi = api.LiveKitAPI(srv.http, srv.key, srv.secret, session=http)
        rs = lkapi.room
        nf = []
        nf.append(await _expect_error(rs.list_participants(api.ListParticipantsRequest(room="rs-no-such-room")),
                                      "not_found", 404, "ListParticipants(unknown room)"))
        nf.append(await _expect_error(rs.get_participant(api.RoomParticipantIdentity(room="rs-no-such-room", identity="x")),
                                      "not_found", 404, "GetParticipant(unknown room)"))
        nf.append(await _expect_error(rs.get_participant(api.RoomParticipantIdentity(room=room_name, identity="nobody")),
                                      "not_found", 404, "GetParticipant(unknown identity)"))
        nf.append(await _expect_error(rs.update_room_metadata(api.UpdateRoomMetadataRequest(room="rs-no-such-room",
                                                                                            metadata="m")),
                                      "not_found", 404, "UpdateRoomMetadata(unknown room)"))
        nf.append(await _expect_error(rs.mute_published_track(api.MuteRoomTrackRequest(
            room=room_name, identity="member", track_sid="TR_nosuchtrack", muted=True)),
            "not_found", 404, "MutePublishedTrack(unknown track)"))
        nf.append(await _expect_error(rs.send_data(api.SendDataRequest(room="rs-no-such-room", data=b"x")),
                                      "not_found", 404, "SendData(unknown room)"))
        nf.append(await _expect_error(rs.remove_participant(api.RoomParticipantIdentity(room=room_name, identity="nobody")),
                                      "not_found", 404, "RemoveParticipant(unknown identity)"))
        nf.append(await _expect_error(rs.delete_room(api.DeleteRoomRequest(room="rs-no-such-room")),
                                      "not_found", 404, "DeleteRoom(unknown room)"))
        note("not_found messages", sorted({e.message for e in nf}))
        # nothing above created a room
        assert [r.name for r in (await rs.list_rooms(api.ListRoomsRequest())).rooms] == [room_name]

        # -- malformed bodies -> malformed (400), whatever the grants
        creator = _admin_token(srv.key, srv.secret, room_create=True, room_list=True)
        for garbage in (b"\xff\xff\xff\xff", b"\x0a\x05ab", b"\x0f\x01\x02"):
            j = await twirp_error("livekit.RoomService/CreateRoom", garbage, "application/protobuf", creator,
                                  "malformed", 400)
        note("garbage protobuf ->", j)
        for bad_json in (b"{not json", b'{"name": 5}', b"[1,2"):
            j = await twirp_error("livekit.RoomService/CreateRoom", bad_json, "application/json", creator,
                                  "malformed", 400)
        note("invalid JSON ->", j)
        await twirp_error("livekit.RoomService/ListRooms", b"{oops", "application/json;charset=UTF-8", creator,
                          "malformed", 400)
        assert [r.name for r in (await rs.list_rooms(api.ListRoomsRequest())).rooms] == [room_name]

        # -- unknown method / service -> bad_route (404); Egress -> unimplemented (501)
        j = await twirp_error("livekit.RoomService/NoSuchMethod", b"", "application/protobuf", creator, "bad_route", 404)
        note("unknown method ->", j)
        await twirp_error("livekit.RoomService/NoSuchMethod", b"{}", "application/json", creator, "bad_route", 404)
        await twirp_error("livekit.NoSuchService/ListRooms", b"", "application/protobuf", creator, "bad_route", 404)
        await twirp_error("livekit.RoomService/ListRooms", b"", "text/plain", creator, "bad_route", 404)
        egress_tok = _admin_token(srv.key, srv.secret, room_record=True)
        j = await twirp_error("livekit.Egress/ListEgress", b"", "application/protobuf", egress_tok, "unimplemented", 501)
        note("livekit.Egress/ListEgress ->", j)
        await _expect_error(lkapi.egress.list_egress(api.ListEgressRequest()), "unimplemented", 501,
                            "Python SDK egress.list_egress")

        # -- a wrong HTTP method must not be a server error either
        st, ct, raw = await post("livekit.RoomService/ListRooms", b"", ctype=None, token=creator, method="GET")
        note("GET /twirp/livekit.RoomService/ListRooms ->", (st, ct, raw[:120]))

        note("raw responses (path, status, body)", seen)
        assert srv.alive(), "server died"
        # the member is still connected and the room intact
        assert p.room.connection_state == rtc.ConnectionState.CONN_CONNECTED
        ps = (await rs.list_participants(api.ListParticipantsRequest(room=room_name))).participants
        assert [x.identity for x in ps] == ["member"], ps

    async def run():
        async with aiohttp.ClientSession() as http:
            await body(http)

    await asyncio.wait_for(run(), TEST_TIMEOUT_S)
