"""(f) Participant controls with Python livekit.rtc participants only.

  - test_h264_publish: a synthetic camera published with video_codec=H264 (simulcast off) is
    decoded by the subscriber (>= 30 frames in 10 s); the codec of the subscriber's inbound-rtp
    stream (libwebrtc stats) must be video/H264 (an SFU cannot transcode), and so must the
    publisher's outbound-rtp. TrackInfo.mime_type as seen by the subscriber is recorded.
  - test_mute_unmute: LocalVideoTrack.mute() (the SDK sends SignalRequest.mute =
    MuteTrackRequest{sid, muted}); the subscriber gets track_muted for exactly that publication
    (not for the audio one), then track_unmuted after unmute(), and video keeps flowing.
  - test_manual_subscription: RoomOptions(auto_subscribe=False): track_published but no
    subscription, no frames and no inbound RTP for 3 s; set_subscribed(True) (SDK sends
    UpdateSubscription{subscribe: true}) -> >= 20 frames; set_subscribed(False) ->
    track_unsubscribed (the SDK emits that one locally) and the server must stop sending RTP;
    set_subscribed(True) again -> frames again.
  - test_track_disable: the SDK's "disable a remote track publication" (which sends
    UpdateTrackSettings{disabled: true}) stops the frames (<= 3 in a 3 s window after 1 s of
    settling, and inbound RTP packets nearly stop too); re-enabling gives >= 20 frames in 5 s.
    The Python wrapper (1.2.1) has no public method for it: RemoteTrackPublication only has
    set_subscribed() and set_video_quality(). The SDK's FFI does have the request
    (EnableRemoteTrackPublicationRequest -> Rust RemoteTrackPublication::set_enabled, which sends
    UpdateTrackSettings{track_sids, disabled: !enabled, width, height}); we send that request
    through the SDK's own FfiClient (see _set_publication_enabled).
  - test_can_publish_data_false: reliable data from a participant whose token has
    canPublishData=false reaches nobody (2 s wait), while a permitted participant's data does.
  - test_duplicate_identity: a second connection with identity "dup" evicts the first one
    (its Room gets `disconnected`, reason DUPLICATE_IDENTITY); the observer sees exactly one "dup"
    (the new session's sid) and receives the new session's data.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Optional

from livekit import rtc
from livekit.rtc._ffi_client import FfiClient
from livekit.rtc._proto import ffi_pb2 as proto_ffi

from e2e_helpers import SyntheticVideo, poll, publish_synthetic

TEST_TIMEOUT_S = 50
PUB = "publisher"


# --------------------------------------------------------------------------------------------
# helpers


class TrackEvents:
    """Records the track/room events of one Room: (name, participant identity, track sid, t)."""

    NAMES = ("track_published", "track_unpublished", "track_subscribed", "track_unsubscribed",
             "track_muted", "track_unmuted")

    def __init__(self, room: rtc.Room) -> None:
        self.events: list[tuple[str, str, str, float]] = []
        self.disconnects: list[tuple[int, float]] = []
        room.on("track_published", lambda pub, p: self._add("track_published", p, pub))
        room.on("track_unpublished", lambda pub, p: self._add("track_unpublished", p, pub))
        room.on("track_subscribed", lambda tr, pub, p: self._add("track_subscribed", p, pub))
        room.on("track_unsubscribed", lambda tr, pub, p: self._add("track_unsubscribed", p, pub))
        room.on("track_muted", lambda p, pub: self._add("track_muted", p, pub))
        room.on("track_unmuted", lambda p, pub: self._add("track_unmuted", p, pub))
        room.on("disconnected", lambda reason: self.disconnects.append((reason, time.monotonic())))

    def _add(self, name: str, participant: Any, publication: Any) -> None:
        self.events.append((name, participant.identity, publication.sid, time.monotonic()))

    def of(self, name: str, identity: Optional[str] = None, sid: Optional[str] = None) -> list:
        return [e for e in self.events
                if e[0] == name and (identity is None or e[1] == identity) and (sid is None or e[2] == sid)]

    def summary(self, t0: float) -> list:
        return [(e[0], e[1], e[2], round(e[3] - t0, 2)) for e in self.events]


def _remote_pub(room: rtc.Room, identity: str, kind) -> Optional[rtc.RemoteTrackPublication]:
    p = room.remote_participants.get(identity)
    if p is None:
        return None
    for pub in p.track_publications.values():
        if pub.kind == kind:
            return pub
    return None


async def _inbound_video(room: rtc.Room) -> dict[int, dict]:
    """Subscriber-side inbound-rtp video streams: ssrc -> {packets, bytes, frames, codec}."""
    st = await asyncio.wait_for(room.get_rtc_stats(), 5)
    codecs = {s.codec.rtc.id: s.codec.codec.mime_type for s in st.subscriber_stats if s.WhichOneof("stats") == "codec"}
    out = {}
    for s in st.subscriber_stats:
        if s.WhichOneof("stats") != "inbound_rtp" or s.inbound_rtp.stream.kind != "video":
            continue
        r = s.inbound_rtp
        out[r.stream.ssrc] = {
            "packets": r.received.packets_received,
            "bytes": r.inbound.bytes_received,
            "frames": r.inbound.frames_decoded,
            "codec": codecs.get(r.stream.codec_id, ""),
            "decoder": r.inbound.decoder_implementation,
        }
    return out


def _packets_delta(before: dict[int, dict], after: dict[int, dict]) -> int:
    """RTP packets received between two _inbound_video() snapshots (new ssrcs count fully)."""
    total = 0
    for ssrc, a in after.items():
        b = before.get(ssrc)
        total += max(0, a["packets"] - (b["packets"] if b else 0))
    return total


def _set_publication_enabled(publication: rtc.RemoteTrackPublication, enabled: bool) -> None:
    """RemoteTrackPublication.set_enabled() of the Rust SDK (-> UpdateTrackSettings{disabled}).

    livekit (python) 1.2.1 exposes no wrapper for it; this is the FFI request the SDK defines for it
    (EnableRemoteTrackPublicationRequest), sent the same way the wrapper sends set_subscribed()."""
    req = proto_ffi.FfiRequest()
    req.enable_remote_track_publication.track_publication_handle = publication._ffi_handle.handle
    req.enable_remote_track_publication.enabled = enabled
    FfiClient.instance.request(req)


async def _frames_in(counter, key: tuple[str, str], seconds: float) -> int:
    n0 = counter.frames[key]
    await asyncio.sleep(seconds)
    return counter.frames[key] - n0


# --------------------------------------------------------------------------------------------
# 1. H264


async def test_h264_publish(server, lk, note):
    async def body():
        srv = server()
        room_name = "h264-room"
        sub = await lk(srv, "subscriber", room_name, counter=True)
        pub = await lk(srv, PUB, room_name)

        video = SyntheticVideo()
        video.start()
        pub.closers.append(video.aclose)
        local_pub = await pub.room.local_participant.publish_track(
            video.track,
            rtc.TrackPublishOptions(video_codec=rtc.VideoCodec.H264, simulcast=False,
                                    source=rtc.TrackSource.SOURCE_CAMERA),
        )

        c = sub.counter
        await c.wait_subscribed(PUB, "video", timeout=15)
        n = await c.wait_frames(PUB, "video", 30, within=10.0)
        note("H264 frames decoded within 10 s", n)
        note("video frame size", c.last_size.get((PUB, "video")))

        rpub = _remote_pub(sub.room, PUB, rtc.TrackKind.KIND_VIDEO)
        assert rpub is not None
        note("publication.mime_type seen by subscriber", repr(rpub.mime_type))
        note("publication.mime_type seen by publisher", repr(local_pub.mime_type))

        inbound = await _inbound_video(sub.room)
        note("subscriber inbound-rtp video", inbound)
        pst = await asyncio.wait_for(pub.room.get_rtc_stats(), 5)
        pcodecs = {s.codec.rtc.id: s.codec.codec.mime_type for s in pst.publisher_stats if s.WhichOneof("stats") == "codec"}
        outbound = [
            (s.outbound_rtp.stream.ssrc, pcodecs.get(s.outbound_rtp.stream.codec_id, ""),
             s.outbound_rtp.outbound.encoder_implementation)
            for s in pst.publisher_stats
            if s.WhichOneof("stats") == "outbound_rtp" and s.outbound_rtp.stream.kind == "video"
        ]
        note("publisher outbound-rtp video (ssrc, codec, encoder)", outbound)

        assert n >= 30, f"only {n} H264 frames decoded within 10 s of subscription"
        assert outbound and all(o[1].lower() == "video/h264" for o in outbound), (
            f"publisher is not sending H264: {outbound}")
        decoded = [v for v in inbound.values() if v["frames"] > 0]
        assert decoded and all(v["codec"].lower() == "video/h264" for v in decoded), (
            f"subscriber is not decoding H264: {inbound}")
        if rpub.mime_type:
            assert rpub.mime_type.lower() == "video/h264", f"TrackInfo.mime_type {rpub.mime_type!r}"

    await asyncio.wait_for(body(), TEST_TIMEOUT_S)


# --------------------------------------------------------------------------------------------
# 2. mute / unmute


async def test_mute_unmute(server, lk, note):
    async def body():
        srv = server()
        room_name = "mute-room"
        sub = await lk(srv, "subscriber", room_name, counter=True)
        ev = TrackEvents(sub.room)
        pub = await lk(srv, PUB, room_name)
        video, audio = await publish_synthetic(pub.room, video=True, audio=True)
        pub.closers += [video.aclose, audio.aclose]

        c = sub.counter
        await c.wait_subscribed(PUB, "video", timeout=15)
        await c.wait_subscribed(PUB, "audio", timeout=15)
        n = await c.wait_frames(PUB, "video", 20, within=10.0)
        assert n >= 20, f"only {n} video frames before muting"

        vsid = video.track.sid
        asid = audio.track.sid
        rv = sub.room.remote_participants[PUB].track_publications[vsid]
        assert not rv.muted

        t0 = time.monotonic()
        video.track.mute()
        try:
            await poll(lambda: ev.of("track_muted", PUB, vsid), 5)
        except asyncio.TimeoutError:
            raise AssertionError(f"no track_muted for {vsid} within 5 s; subscriber events: {ev.summary(t0)}")
        note("track_muted seen after (s)", round(ev.of("track_muted", PUB, vsid)[0][3] - t0, 2))
        assert rv.muted, "remote publication not muted after track_muted"
        assert not ev.of("track_muted", PUB, asid), "audio publication reported muted"
        assert not sub.room.remote_participants[PUB].track_publications[asid].muted

        await asyncio.sleep(1.0)
        t1 = time.monotonic()
        video.track.unmute()
        try:
            await poll(lambda: ev.of("track_unmuted", PUB, vsid), 5)
        except asyncio.TimeoutError:
            raise AssertionError(f"no track_unmuted for {vsid} within 5 s; subscriber events: {ev.summary(t0)}")
        note("track_unmuted seen after (s)", round(ev.of("track_unmuted", PUB, vsid)[0][3] - t1, 2))
        assert not rv.muted, "remote publication still muted after track_unmuted"

        n_after = await _frames_in(c, (PUB, "video"), 5.0)
        note("video frames in 5 s after unmute", n_after)
        note("subscriber track events", ev.summary(t0))
        assert len(ev.of("track_muted", PUB, vsid)) == 1 and len(ev.of("track_unmuted", PUB, vsid)) == 1, (
            ev.summary(t0))
        assert n_after >= 20, f"only {n_after} video frames in 5 s after unmute"

    await asyncio.wait_for(body(), TEST_TIMEOUT_S)


# --------------------------------------------------------------------------------------------
# 3. manual subscription


async def test_manual_subscription(server, lk, note):
    async def body():
        srv = server()
        room_name = "manual-sub-room"
        sub = await lk(srv, "subscriber", room_name, counter=True, auto_subscribe=False)
        ev = TrackEvents(sub.room)
        pub = await lk(srv, PUB, room_name)
        t0 = time.monotonic()
        video, _ = await publish_synthetic(pub.room, video=True, audio=False)
        pub.closers.append(video.aclose)
        vsid = video.track.sid
        c = sub.counter
        key = (PUB, "video")

        try:
            await poll(lambda: ev.of("track_published", PUB, vsid), 10)
        except asyncio.TimeoutError:
            raise AssertionError(f"no track_published for {vsid} within 10 s; events: {ev.summary(t0)}")
        rpub = sub.room.remote_participants[PUB].track_publications[vsid]

        # -- not subscribed: nothing must arrive
        await asyncio.sleep(3.0)
        stats0 = await _inbound_video(sub.room)
        note("inbound video before set_subscribed(True)", stats0)
        assert not ev.of("track_subscribed"), f"subscribed without asking: {ev.summary(t0)}"
        assert c.frames[key] == 0 and not rpub.subscribed
        assert sum(v["packets"] for v in stats0.values()) == 0, f"RTP received while not subscribed: {stats0}"

        # -- subscribe
        t1 = time.monotonic()
        rpub.set_subscribed(True)
        try:
            await poll(lambda: ev.of("track_subscribed", PUB, vsid), 10)
        except asyncio.TimeoutError:
            raise AssertionError(f"no track_subscribed within 10 s of set_subscribed(True): {ev.summary(t0)}")
        note("track_subscribed after set_subscribed(True) (s)",
             round(ev.of("track_subscribed", PUB, vsid)[0][3] - t1, 2))
        n = await c.wait_frames(PUB, "video", 20, within=10.0)
        note("frames within 10 s of subscribing", n)
        assert n >= 20, f"only {n} frames within 10 s of set_subscribed(True)"

        # -- unsubscribe
        rpub.set_subscribed(False)
        try:
            await poll(lambda: ev.of("track_unsubscribed", PUB, vsid), 5)
        except asyncio.TimeoutError:
            raise AssertionError(f"no track_unsubscribed within 5 s of set_subscribed(False): {ev.summary(t0)}")
        await asyncio.sleep(1.0)
        s1 = await _inbound_video(sub.room)
        f1 = c.frames[key]
        await asyncio.sleep(3.0)
        s2 = await _inbound_video(sub.room)
        pk = _packets_delta(s1, s2)
        fr = c.frames[key] - f1
        note("after unsubscribe: RTP packets / frames in 3 s (after 1 s)", (pk, fr))
        note("after unsubscribe: inbound video stats at +1 s / +4 s", (s1, s2))
        assert pk <= 5, f"server still sends the track after UpdateSubscription{{subscribe:false}}: {pk} RTP packets in 3 s ({s1} -> {s2})"
        assert fr == 0, f"{fr} frames after unsubscribing"

        # -- subscribe again
        t2 = time.monotonic()
        rpub.set_subscribed(True)
        try:
            await poll(lambda: len(ev.of("track_subscribed", PUB, vsid)) >= 2, 10)
        except asyncio.TimeoutError:
            raise AssertionError(f"no second track_subscribed within 10 s of re-subscribing: {ev.summary(t0)}")
        f2 = c.frames[key]
        deadline = time.monotonic() + 10.0
        while c.frames[key] - f2 < 20 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        n2 = c.frames[key] - f2
        note("re-subscribe: track_subscribed after (s) / frames within 10 s",
             (round(ev.of("track_subscribed", PUB, vsid)[1][3] - t2, 2), n2))
        note("subscriber track events", ev.summary(t0))
        assert n2 >= 20, f"only {n2} frames within 10 s of re-subscribing"

    await asyncio.wait_for(body(), TEST_TIMEOUT_S)


# --------------------------------------------------------------------------------------------
# 4. disable / enable a subscribed track (UpdateTrackSettings.disabled)


async def test_track_disable(server, lk, note):
    async def body():
        srv = server()
        room_name = "disable-room"
        sub = await lk(srv, "subscriber", room_name, counter=True)
        pub = await lk(srv, PUB, room_name)
        video, _ = await publish_synthetic(pub.room, video=True, audio=False)
        pub.closers.append(video.aclose)
        c = sub.counter
        key = (PUB, "video")
        await c.wait_subscribed(PUB, "video", timeout=15)
        n = await c.wait_frames(PUB, "video", 20, within=10.0)
        assert n >= 20, f"only {n} frames before disabling"
        rpub = sub.room.remote_participants[PUB].track_publications[video.track.sid]

        _set_publication_enabled(rpub, False)
        await asyncio.sleep(1.0)
        s1 = await _inbound_video(sub.room)
        f1 = c.frames[key]
        await asyncio.sleep(3.0)
        s2 = await _inbound_video(sub.room)
        off_frames = c.frames[key] - f1
        off_packets = _packets_delta(s1, s2)
        note("disabled: frames / RTP packets in 3 s (after 1 s)", (off_frames, off_packets))
        note("disabled: inbound video stats at +1 s / +4 s", (s1, s2))

        _set_publication_enabled(rpub, True)
        t_on = time.monotonic()
        f2 = c.frames[key]
        first_at = None
        while time.monotonic() < t_on + 5.0:
            if first_at is None and c.frames[key] > f2:
                first_at = round(time.monotonic() - t_on, 2)
            await asyncio.sleep(0.05)
        on_frames = c.frames[key] - f2
        note("re-enabled: frames in 5 s / first frame after (s)", (on_frames, first_at))

        assert off_frames <= 3, f"{off_frames} frames in 3 s while disabled (UpdateTrackSettings{{disabled:true}})"
        assert off_packets <= 10, (
            f"server kept sending RTP while the track was disabled: {off_packets} packets in 3 s ({s1} -> {s2})")
        assert on_frames >= 20, f"only {on_frames} frames in 5 s after re-enabling"

    await asyncio.wait_for(body(), TEST_TIMEOUT_S)


# --------------------------------------------------------------------------------------------
# 5. canPublishData = false


async def test_can_publish_data_false(server, lk, note):
    async def body():
        srv = server()
        room_name = "perm-data-room"
        rx = await lk(srv, "rx", room_name)
        mute_tok = srv.token("nodata", room_name, can_publish_data=False)
        nodata = await lk(srv, "nodata", room_name, token=mute_tok)
        ok = await lk(srv, "ok", room_name)
        await poll(lambda: {"nodata", "ok"} <= set(rx.room.remote_participants), 10)
        await poll(lambda: "rx" in nodata.room.remote_participants and "rx" in ok.room.remote_participants, 10)

        perm = rx.room.remote_participants["nodata"].permissions
        note("nodata permission seen by rx (can_publish_data, can_publish, can_subscribe)",
             (perm.can_publish_data, perm.can_publish, perm.can_subscribe))
        note("nodata's own permission (can_publish_data)", nodata.room.local_participant.permissions.can_publish_data)

        t0 = time.monotonic()
        err = None
        try:
            await asyncio.wait_for(
                nodata.room.local_participant.publish_data(b"forbidden", reliable=True, topic="t"), 5)
        except Exception as e:  # the SDK may refuse locally; then the server was not tested
            err = repr(e)
        note("publish_data by nodata raised", err)
        await ok.room.local_participant.publish_data(b"allowed", reliable=True, topic="t")
        got = await poll(lambda: rx.recorder.data_with(b"allowed"), 5)
        assert got[0]["from"] == "ok", got[0]
        await asyncio.sleep(max(0.0, t0 + 2.0 - time.monotonic()))
        assert not rx.recorder.data_with(b"forbidden"), (
            f"rx received data from a participant with canPublishData=false: {rx.recorder.data_with(b'forbidden')}")
        assert not ok.recorder.data_with(b"forbidden"), "ok received data from nodata"
        assert ok.recorder.data_with(b"allowed") == [], "sender got its own packet back"
        assert nodata.recorder.data_with(b"allowed"), "nodata did not receive the permitted broadcast"
        assert err is None, f"the SDK refused to send (server not exercised): {err}"

    await asyncio.wait_for(body(), TEST_TIMEOUT_S)


# --------------------------------------------------------------------------------------------
# 6. duplicate identity


async def test_duplicate_identity(server, lk, note):
    async def body():
        srv = server()
        room_name = "dup-room"
        first = await lk(srv, "dup", room_name)
        first_ev = TrackEvents(first.room)
        obs = await lk(srv, "observer", room_name)
        await poll(lambda: "dup" in obs.room.remote_participants, 10)
        old_sid = first.room.local_participant.sid
        assert obs.room.remote_participants["dup"].sid == old_sid

        t0 = time.monotonic()
        second = await lk(srv, "dup", room_name)
        new_sid = second.room.local_participant.sid
        note("dup sids (first, second)", (old_sid, new_sid))
        assert new_sid and new_sid != old_sid

        try:
            await poll(lambda: first_ev.disconnects, 5)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"first 'dup' Room got no `disconnected` within 5 s of the second join "
                f"(state {first.room.connection_state})")
        reason, t_disc = first_ev.disconnects[0]
        note("first dup disconnected: reason / after (s)",
             (rtc.DisconnectReason.Name(reason), round(t_disc - t0, 2)))
        assert reason == rtc.DisconnectReason.DUPLICATE_IDENTITY, rtc.DisconnectReason.Name(reason)

        try:
            await poll(lambda: getattr(obs.room.remote_participants.get("dup"), "sid", None) == new_sid, 5)
        except asyncio.TimeoutError:
            d = obs.room.remote_participants.get("dup")
            raise AssertionError(f"observer does not see the new 'dup' session: {d and d.sid} (want {new_sid}); "
                                 f"joined {obs.recorder.connected} left {obs.recorder.disconnected}")
        await asyncio.sleep(1.0)  # a late update about the old session must not remove the new one
        note("observer: participant_connected / participant_disconnected",
             (obs.recorder.connected, obs.recorder.disconnected))
        assert set(obs.room.remote_participants) == {"dup"}, dict(obs.room.remote_participants)
        assert obs.room.remote_participants["dup"].sid == new_sid
        assert set(second.room.remote_participants) == {"observer"}, dict(second.room.remote_participants)

        await second.room.local_participant.publish_data(b"from-new-dup", reliable=True, topic="dup")
        got = await poll(lambda: obs.recorder.data_with(b"from-new-dup"), 5)
        assert len(got) == 1 and got[0]["from"] == "dup", got
        await obs.room.local_participant.publish_data(b"to-dup", reliable=True, topic="dup")
        await poll(lambda: second.recorder.data_with(b"to-dup"), 5)
        assert not first.recorder.data_with(b"to-dup"), "the evicted session still received data"

    await asyncio.wait_for(body(), TEST_TIMEOUT_S)
