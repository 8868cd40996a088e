"""(h) WHIP ingest (RFC 9725) and WHEP playback, against real LiveKit clients.

Clients: aiortc 1.16 (tests/e2e/whip_client.py: synthetic 320x240 ~30 fps colour bars + 48 kHz
sine over WHIP; recvonly WHEP viewer that decodes and counts frames), Python `livekit` rtc
participants, `livekit-client` in headless Chromium (the `browser` fixture) and a plain-browser
RTCPeerConnection WHEP player (js/whep_browser.mjs). Tokens are ordinary LiveKit access tokens
(`Authorization: Bearer`, or `?access_token=` on the short URLs).

  - test_whip_publish_to_livekit: aiortc publishes video + audio over POST /whip/v1 (201,
    application/sdp answer with recvonly m-lines, relative Location /whip/v1/<id>, ETag); a
    livekit rtc participant auto-subscribes and decodes >= 50 video frames and > 0 audio frames;
    the WHIP publisher is a participant of kind INGRESS with one MICROPHONE and one CAMERA track
    (seen by the rtc SDK and by RoomService.ListParticipants).
  - test_whip_short_url_and_cors: OPTIONS /whip/v1 and /whep/v1 (CORS preflight as Chromium
    sends it); POST /whip/<room>?access_token= publishes (participant appears, INGRESS), the
    201 carries CORS headers exposing Location; /whep/<room>?access_token=&participant= plays it;
    a short URL naming another room than the token's -> 403 and no participant anywhere.
  - test_browser_publish_whep_viewers: livekit-client publishes its fake camera + mic; an aiortc
    WHEP viewer (participant=<browser identity>) decodes >= 50 video frames and some audio and is
    listed as a room participant; a plain Chromium RTCPeerConnection WHEP player (cross-origin
    fetch with Bearer) reports inbound-rtp framesDecoded > 0 and DELETEs its Location (200).
  - test_whip_delete_ends_participant: PATCH trickle-ice-sdpfrag -> 204, other Content-Type ->
    415; DELETE -> 200 and the rtc observer gets participant_disconnected within 5 s; then
    DELETE / PATCH on that Location -> 404.
  - test_whep_delete_stops_media: a WHEP viewer of a livekit rtc publisher DELETEs: 200, its
    frame counts stop (<= 2 video / <= 5 audio frames in a 2 s window starting 1 s after the
    DELETE), the publisher sees the viewer leave, PATCH / DELETE -> 404.
  - test_whep_before_publish: a WHEP viewer with the default selection joins an empty room
    (201, answer already sendonly), gets nothing, then starts decoding within 15 s once an aiortc
    WHIP publisher appears.
  - test_whip_whep_errors: garbage SDP 400, no audio/video m-line 400, only unsupported codecs
    (video "FOO", audio PCMU) 400/406, wrong Content-Type 415, bad/missing token 401, token
    without canPublish (WHIP) / canSubscribe (WHEP) 403, PATCH / DELETE of unknown resources
    404; none of it leaves a participant in the room (rtc observer + ListParticipants); then a
    valid WHIP and WHEP POST still get 201.

aiortc never gets a STUN server (RTCConfiguration(iceServers=[])); all HTTP is urllib without
proxies. The answers' ICE candidates must point at 10.200.0.1 (the server is ICE-lite).
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from typing import Any, Optional

import pytest
from livekit import api, rtc

from conftest import _register_log, _safe_name
from e2e_helpers import (
    API_KEY,
    API_SECRET,
    ARTIFACTS,
    JS_DIR,
    NODE,
    BrowserClient,
    poll,
    publish_synthetic,
)
from whip_client import (
    SDP_CONTENT_TYPE,
    TRICKLE_CONTENT_TYPE,
    WhepSession,
    WhipSession,
    http_request,
    make_offer,
    post_sdp,
    replace_video_codecs,
    session_only_sdp,
    whep_play,
    whip_publish,
)

TEST_TIMEOUT_S = 40
BROWSER_TEST_TIMEOUT_S = 60
MIN_VIDEO_FRAMES = 50
WINDOW_S = 10.0


# --------------------------------------------------------------------------------------------
# helpers


def whip_url(srv) -> str:
    return f"{srv.http}/whip/v1"


def whep_url(srv, participant: Optional[str] = None, tracks: Optional[list[str]] = None) -> str:
    q = {}
    if participant is not None:
        q["participant"] = participant
    if tracks:
        q["tracks"] = ",".join(tracks)
    return f"{srv.http}/whep/v1" + (f"?{urllib.parse.urlencode(q)}" if q else "")


def media_directions(sdp: str) -> list[tuple[str, str]]:
    """[(kind, direction)] of every m-section (direction defaults to sendrecv)."""
    out: list[list[str]] = []
    for line in sdp.splitlines():
        line = line.strip()
        if line.startswith("m="):
            out.append([line[2:].split(" ", 1)[0], "sendrecv"])
        elif out and line in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"):
            out[-1][1] = line[2:]
    return [(k, d) for k, d in out]


def answer_summary(sdp: str) -> dict:
    cands = [ln.split(" ", 4)[4] if len(ln.split(" ")) > 4 else ln
             for ln in sdp.splitlines() if ln.startswith("a=candidate:")]
    codecs = sorted({ln.split(" ", 1)[1].strip() for ln in sdp.splitlines() if ln.startswith("a=rtpmap:")})
    return {
        "media": media_directions(sdp),
        "ice_lite": "a=ice-lite" in sdp,
        "candidates": sorted(set(cands)),
        "codecs": codecs,
    }


def check_created(sess: WhipSession | WhepSession, what: str, prefix: str) -> None:
    """The WHIP/WHEP 201 contract: application/sdp answer, Location under `prefix` (relative, or
    absolute on this server), an ETag."""
    status, ctype, loc, etag = sess.status, sess.content_type, sess.location_header, sess.etag
    assert status == 201, f"{what}: status {status}"
    assert ctype and ctype.split(";")[0].strip().lower() == SDP_CONTENT_TYPE, f"{what}: Content-Type {ctype!r}"
    assert loc, f"{what}: no Location header"
    path = urllib.parse.urlsplit(loc).path
    assert path.startswith(prefix) and len(path) > len(prefix), \
        f"{what}: Location {loc!r} is not {prefix}<resource-id>"
    assert urllib.parse.urlsplit(sess.location).netloc == urllib.parse.urlsplit(sess.url).netloc, \
        f"{what}: Location {loc!r} points to another server"
    assert etag, f"{what}: no ETag header"


async def room_participants(srv, room: str) -> dict[str, Any]:
    """RoomService.ListParticipants as {identity: ParticipantInfo}; {} if the room does not exist."""
    lkapi = api.LiveKitAPI(srv.http, srv.key, srv.secret)
    try:
        res = await asyncio.wait_for(
            lkapi.room.list_participants(api.ListParticipantsRequest(room=room)), 10)
        return {p.identity: p for p in res.participants}
    except api.TwirpError as e:
        if e.status == 404:
            return {}
        raise
    finally:
        await lkapi.aclose()


def _kind_name(k: int) -> str:
    try:
        return rtc.ParticipantKind.Name(k)  # type: ignore[arg-type]
    except Exception:
        return repr(k)


def check_ingress_participant(p: rtc.RemoteParticipant, audio: bool = True, video: bool = True) -> list:
    """kind INGRESS, exactly one MICROPHONE audio and one CAMERA video publication (as sent)."""
    assert p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_INGRESS, \
        f"{p.identity}: kind {_kind_name(p.kind)}, want PARTICIPANT_KIND_INGRESS"
    pubs = sorted((pub.kind, pub.source, pub.mime_type) for pub in p.track_publications.values())
    want = []
    if audio:
        want.append((rtc.TrackKind.KIND_AUDIO, rtc.TrackSource.SOURCE_MICROPHONE))
    if video:
        want.append((rtc.TrackKind.KIND_VIDEO, rtc.TrackSource.SOURCE_CAMERA))
    assert sorted((k, s) for k, s, _ in pubs) == sorted(want), \
        f"{p.identity}: publications (kind, source, mime) {pubs}, want {want}"
    return pubs


def check_ingress_info(info: Any, audio: bool = True, video: bool = True) -> None:
    """The same through RoomService (ParticipantInfo)."""
    assert info.kind == api.ParticipantInfo.Kind.INGRESS, \
        f"ListParticipants: {info.identity} kind {info.kind}, want INGRESS (1)"
    got = sorted((t.type, t.source) for t in info.tracks)
    want = []
    if audio:
        want.append((api.TrackType.AUDIO, api.TrackSource.MICROPHONE))
    if video:
        want.append((api.TrackType.VIDEO, api.TrackSource.CAMERA))
    assert got == sorted(want), f"ListParticipants: {info.identity} tracks (type, source) {got}, want {sorted(want)}"


async def expect(cond, timeout: float, what: str) -> Any:
    """poll(cond) that fails with a readable message."""
    try:
        return await poll(cond, timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"timed out after {timeout} s: {what}") from None


def token_without(identity: str, room: str, **grants) -> str:
    """A join token with explicit grant overrides (e.g. can_publish=False)."""
    g = {"room_join": True, "room": room}
    g.update(grants)
    return (api.AccessToken(API_KEY, API_SECRET).with_identity(identity).with_name(identity)
            .with_grants(api.VideoGrants(**g)).to_jwt())


@pytest.fixture
async def sessions(server):
    """WHIP/WHEP sessions to close (locally) at teardown, before the server stops."""
    made: list = []
    yield made
    for s in made:
        try:
            await asyncio.wait_for(s.close(), 8)
        except Exception:
            pass


class WhepBrowser(BrowserClient):
    """js/whep_browser.mjs (plain RTCPeerConnection WHEP player in headless chromium), JSON lines;
    reuses BrowserClient's reader / wait_event / command / close."""

    async def start_whep(self, url: str, token: str, *, stats_ms: int = 500) -> None:
        args = [str(JS_DIR / "whep_browser.mjs"), "--url", url, "--token", token, "--stats-ms", str(stats_ms)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        self.proc = await asyncio.create_subprocess_exec(
            NODE, *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
            cwd=str(JS_DIR),
        )
        self._reader = asyncio.ensure_future(self._read())


@pytest.fixture
async def whep_browser(server, request):
    made: list[WhepBrowser] = []

    async def start(url: str, token: str, name: str = "whep-chromium") -> WhepBrowser:
        log_path = ARTIFACTS / f"{_safe_name(request.node.nodeid)}-whep-browser-{name}.log"
        _register_log(request, f"WHEP browser {name} log", log_path)
        b = WhepBrowser(name, log_path)
        made.append(b)
        await b.start_whep(url, token)
        return b

    yield start
    for b in made:
        await b.close()


# --------------------------------------------------------------------------------------------
# 1. aiortc WHIP -> livekit rtc subscriber


async def test_whip_publish_to_livekit(server, lk, note, sessions):
    async def body():
        srv = server()
        room = "whip-room"
        viewer = await lk(srv, "viewer", room, counter=True)

        t0 = time.monotonic()
        pub = await whip_publish(whip_url(srv), srv.token("whip-pub", room))
        sessions.append(pub)
        note("WHIP POST -> 201 (s)", round(time.monotonic() - t0, 3))
        note("WHIP response headers", pub.headers)
        note("WHIP answer", answer_summary(pub.answer))
        check_created(pub, "WHIP POST", "/whip/v1/")
        dirs = media_directions(pub.answer)
        assert sorted(dirs) == [("audio", "recvonly"), ("video", "recvonly")], \
            f"WHIP answer m-lines {dirs}, want audio+video recvonly (answer to a sendonly offer)"
        note("WHIP Link headers", pub.links)

        connected = await pub.wait_connected(10)
        note("aiortc publisher ICE/PC state", pub.ice_state)
        assert connected, f"aiortc WHIP publisher not connected after 10 s ({pub.ice_state})"

        c = viewer.counter
        await c.wait_subscribed("whip-pub", "video", timeout=15)
        await c.wait_subscribed("whip-pub", "audio", timeout=15)
        n_video = await c.wait_frames("whip-pub", "video", MIN_VIDEO_FRAMES, within=WINDOW_S)
        n_audio = await c.wait_frames("whip-pub", "audio", 1, within=WINDOW_S)
        note("livekit: WHIP video frames received", n_video)
        note("livekit: WHIP video frame size", c.last_size.get(("whip-pub", "video")))
        note("livekit: WHIP audio frames received", n_audio)
        note("aiortc: video / audio frames sent", (pub.video_frames_sent, pub.audio_frames_sent))
        assert n_video >= MIN_VIDEO_FRAMES, f"only {n_video} WHIP video frames within {WINDOW_S}s of subscription"
        assert n_audio > 0, f"no WHIP audio frames within {WINDOW_S}s of subscription"

        p = viewer.room.remote_participants["whip-pub"]
        pubs = check_ingress_participant(p)
        note("livekit: WHIP participant kind / publications", (_kind_name(p.kind), pubs))

        parts = await room_participants(srv, room)
        assert set(parts) == {"viewer", "whip-pub"}, f"ListParticipants: {sorted(parts)}"
        check_ingress_info(parts["whip-pub"])
        note("ListParticipants whip-pub tracks", [(t.sid, t.type, t.source, t.mime_type) for t in parts["whip-pub"].tracks])

    await asyncio.wait_for(body(), TEST_TIMEOUT_S)


# --------------------------------------------------------------------------------------------
# 2. short URLs + CORS


async def test_whip_short_url_and_cors(server, lk, note, sessions):
    async def body():
        srv = server()
        room = "short-room"

        # CORS preflight exactly as Chromium sends it for a file:// page POSTing with a Bearer token.
        for path in ("/whip/v1", "/whep/v1"):
            r = await http_request("OPTIONS", f"{srv.http}{path}", headers={
                "Origin": "null",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            })
            note(f"OPTIONS {path}", (r.status, [(k, v) for k, v in r.headers if k.lower().startswith("access-control")]))
            assert r.status in (200, 204), f"OPTIONS {path}: {r.describe()}"
            assert r.header("Access-Control-Allow-Origin") in ("*", "null"), \
                f"OPTIONS {path}: Access-Control-Allow-Origin {r.header('Access-Control-Allow-Origin')!r}"
            methods = (r.header("Access-Control-Allow-Methods") or "").upper()
            assert "POST" in methods, f"OPTIONS {path}: Access-Control-Allow-Methods {methods!r}"
            allow_h = (r.header("Access-Control-Allow-Headers") or "").lower()
            # "*" is accepted by Chromium for Authorization too (checked), but the Fetch standard
            # says "*" does not cover Authorization: listing it explicitly is better for other browsers.
            assert allow_h.strip() == "*" or ("authorization" in allow_h and "content-type" in allow_h), \
                f"OPTIONS {path}: Access-Control-Allow-Headers {allow_h!r} must allow Authorization and Content-Type"
            expose = (r.header("Access-Control-Expose-Headers") or "").lower()
            assert "location" in expose, f"OPTIONS {path}: Access-Control-Expose-Headers {expose!r} lacks Location"

        guard = await lk(srv, "guard", room, counter=True)

        # WHIP short URL: room in the path, token in the query.
        tok = srv.token("short-pub", room)
        url = f"{srv.http}/whip/{room}?access_token={tok}"
        pub = await whip_publish(url, tok, token_in_query=True)
        sessions.append(pub)
        note("short WHIP POST", (pub.status, pub.location_header, pub.etag))
        assert pub.status == 201
        assert pub.location_header, "short WHIP POST: no Location header"
        assert pub.etag, "short WHIP POST: no ETag header"
        # The real (non-preflight) response is where a browser reads CORS exposure from.
        assert pub.response.header("Access-Control-Allow-Origin"), "201 without Access-Control-Allow-Origin"
        assert "location" in (pub.response.header("Access-Control-Expose-Headers") or "").lower(), \
            f"201 Access-Control-Expose-Headers {pub.response.header('Access-Control-Expose-Headers')!r} lacks Location"

        await expect(lambda: "short-pub" in guard.room.remote_participants, 10,
                     "the short-URL WHIP publisher never appeared in the room")
        await guard.counter.wait_subscribed("short-pub", "video", timeout=10)
        p = guard.room.remote_participants["short-pub"]
        note("short WHIP participant kind / publications", (_kind_name(p.kind), check_ingress_participant(p)))

        # WHEP short URL, playing the short-URL publisher.
        vtok = srv.token("short-viewer", room)
        q = urllib.parse.urlencode({"access_token": vtok, "participant": "short-pub"})
        view = await whep_play(f"{srv.http}/whep/{room}?{q}", vtok, token_in_query=True)
        sessions.append(view)
        note("short WHEP POST", (view.status, view.location_header, view.etag))
        check_created(view, "short WHEP POST", "/whep/")
        n = await view.wait_frames(10, WINDOW_S)
        note("short WHEP video frames", n)
        assert n >= 10, f"short-URL WHEP viewer decoded only {n} frames in {WINDOW_S}s ({view.ice_state})"

        # Token for short-room used on /whip/other-room -> 403, and nobody joins either room.
        wrong_tok = srv.token("short-wrong", room)
        r = await post_sdp(f"{srv.http}/whip/other-room?access_token={wrong_tok}", await make_offer())
        note("short WHIP, token for another room", f"{r.status} {r.text.strip()[:120]!r}")
        assert r.status == 403, f"room mismatch: {r.describe()}"
        r = await post_sdp(f"{srv.http}/whep/other-room?access_token={wrong_tok}", await make_offer(send=False))
        note("short WHEP, token for another room", f"{r.status} {r.text.strip()[:120]!r}")
        assert r.status == 403, f"room mismatch (WHEP): {r.describe()}"
        await asyncio.sleep(0.5)
        assert "short-wrong" not in guard.room.remote_participants
        assert "short-wrong" not in await room_participants(srv, room)
        assert "short-wrong" not in await room_participants(srv, "other-room")

        r = await pub.delete()
        note("short WHIP DELETE", r.status)
        assert r.status == 200, r.describe()
        await expect(lambda: "short-pub" in guard.recorder.disconnected, 5,
                     "no participant_disconnected for short-pub after DELETE")

    await asyncio.wait_for(body(), TEST_TIMEOUT_S)


# --------------------------------------------------------------------------------------------
# 3. livekit-client (browser) publishes; aiortc and plain-browser WHEP viewers


async def test_browser_publish_whep_viewers(server, browser, whep_browser, note, sessions):
    async def body():
        srv = server()
        room = "whep-browser-room"
        web = await browser(srv, "web", room, publish=True)
        await web.wait_event(lambda e: e["event"] == "connected", 30, "browser connected")
        published = await web.wait_event(lambda e: e["event"] == "published", 20, "browser published")
        note("browser published", published.get("tracks"))

        # aiortc WHEP viewer of the browser's tracks.
        t0 = time.monotonic()
        view = await whep_play(whep_url(srv, participant="web"), srv.token("whep-aiortc", room))
        sessions.append(view)
        check_created(view, "WHEP POST", "/whep/v1/")
        note("WHEP answer", answer_summary(view.answer))
        dirs = media_directions(view.answer)
        assert sorted(dirs) == [("audio", "sendonly"), ("video", "sendonly")], \
            f"WHEP answer m-lines {dirs}, want audio+video sendonly"
        n = await view.wait_frames(MIN_VIDEO_FRAMES, 15)
        n_audio = await view.wait_frames(1, 5, kind="audio")
        first = view.first_frame_at.get("video")
        note("aiortc WHEP: first video frame after POST (s)", round(first - t0, 2) if first else None)
        note("aiortc WHEP: video / audio frames", (n, n_audio))
        note("aiortc WHEP: video frame size", view.last_size)
        assert n >= MIN_VIDEO_FRAMES, \
            f"aiortc WHEP viewer decoded only {n} frames of the browser camera in 15 s ({view.ice_state}, {view.ended})"
        assert n_audio > 0, f"aiortc WHEP viewer got no audio frames of the browser microphone ({view.ended})"

        parts = await room_participants(srv, room)
        note("ListParticipants", sorted(parts))
        assert {"web", "whep-aiortc"} <= set(parts), f"the WHEP viewer is not a room participant: {sorted(parts)}"

        r = await view.delete()
        note("aiortc WHEP DELETE", r.status)
        assert r.status == 200, r.describe()
        await view.close()

        # Plain browser RTCPeerConnection WHEP player.
        wb = await whep_browser(whep_url(srv, participant="web"), srv.token("whep-chromium", room))
        posted = await wb.wait_event(lambda e: e["event"] == "posted", 20, "WHEP browser POST")
        note("browser WHEP POST", {k: posted.get(k) for k in ("status", "location", "etag", "contentType")})
        assert posted["status"] == 201, posted
        assert posted.get("location"), \
            "the browser could not read Location from the 201 (Access-Control-Expose-Headers must list it)"

        def decoded(e):
            return e["event"] == "stats" and e["video"]["framesDecoded"] > 0

        stats = await wb.wait_event(decoded, 15, "browser WHEP inbound-rtp framesDecoded > 0")
        note("browser WHEP: first decoded-frames stats", stats)
        ack = await wb.command({"cmd": "delete"})
        note("browser WHEP DELETE", ack.get("result"))
        assert ack["result"]["status"] == 200, ack

    await asyncio.wait_for(body(), BROWSER_TEST_TIMEOUT_S)


# --------------------------------------------------------------------------------------------
# 4. WHIP DELETE


async def test_whip_delete_ends_participant(server, lk, note, sessions):
    async def body():
        srv = server()
        room = "whip-delete-room"
        obs = await lk(srv, "observer", room, counter=True)
        pub = await whip_publish(whip_url(srv), srv.token("whip-del", room))
        sessions.append(pub)
        check_created(pub, "WHIP POST", "/whip/v1/")
        await obs.counter.wait_subscribed("whip-del", "video", timeout=15)
        n = await obs.counter.wait_frames("whip-del", "video", 10, within=WINDOW_S)
        assert n >= 10, f"observer got only {n} WHIP frames"

        frag = pub.trickle_fragment()
        r = await pub.patch(frag)
        note("PATCH trickle-ice-sdpfrag", r.status)
        assert r.status == 204, f"PATCH {TRICKLE_CONTENT_TYPE}: {r.describe()}\n{frag}"
        r = await pub.patch(frag, "text/plain")
        note("PATCH text/plain", r.status)
        assert r.status == 415, f"PATCH text/plain: {r.describe()}"

        t_del = time.monotonic()
        r = await pub.delete()
        note("DELETE", (r.status, round(time.monotonic() - t_del, 3)))
        assert r.status == 200, r.describe()
        await expect(lambda: "whip-del" in obs.recorder.disconnected, 5,
                     f"participant_disconnected for whip-del after DELETE "
                     f"(remote: {sorted(obs.room.remote_participants)})")
        note("participant_disconnected after DELETE (s)", round(time.monotonic() - t_del, 2))
        assert "whip-del" not in obs.room.remote_participants
        assert "whip-del" not in await room_participants(srv, room)

        r = await pub.delete()
        note("DELETE again", r.status)
        assert r.status == 404, f"second DELETE: {r.describe()}"
        r = await pub.patch(frag)
        note("PATCH after DELETE", r.status)
        assert r.status == 404, f"PATCH after DELETE: {r.describe()}"

    await asyncio.wait_for(body(), TEST_TIMEOUT_S)


# --------------------------------------------------------------------------------------------
# 5. WHEP DELETE


async def test_whep_delete_stops_media(server, lk, note, sessions):
    async def body():
        srv = server()
        room = "whep-delete-room"
        pub = await lk(srv, "publisher", room)
        video, audio = await publish_synthetic(pub.room, video=True, audio=True)
        pub.closers += [video.aclose, audio.aclose]

        view = await whep_play(whep_url(srv, participant="publisher"), srv.token("whep-del-viewer", room))
        sessions.append(view)
        check_created(view, "WHEP POST", "/whep/v1/")
        n = await view.wait_frames(30, WINDOW_S)
        a = await view.wait_frames(1, 5, kind="audio")
        note("before DELETE: video / audio frames", (n, a))
        assert n >= 30, f"WHEP viewer decoded only {n} frames in {WINDOW_S}s ({view.ice_state}, {view.ended})"
        assert a > 0, "WHEP viewer got no audio frames"
        await expect(lambda: "whep-del-viewer" in pub.room.remote_participants, 5,
                     "the WHEP viewer never appeared as a room participant at the publisher")

        r = await view.delete()
        note("WHEP DELETE", r.status)
        assert r.status == 200, r.describe()
        await asyncio.sleep(1.0)  # frames already in flight / in aiortc's decoder queue
        v1, a1 = view.count("video"), view.count("audio")
        await asyncio.sleep(2.0)
        v2, a2 = view.count("video"), view.count("audio")
        note("after DELETE: video / audio frames in 2 s window", (v2 - v1, a2 - a1))
        assert v2 - v1 <= 2, f"{v2 - v1} video frames still arrived 1-3 s after DELETE"
        assert a2 - a1 <= 5, f"{a2 - a1} audio frames still arrived 1-3 s after DELETE"
        await expect(lambda: "whep-del-viewer" in pub.recorder.disconnected, 5,
                     "no participant_disconnected for the WHEP viewer after its DELETE")

        r = await view.patch(view.trickle_fragment())
        note("PATCH after DELETE", r.status)
        assert r.status == 404, f"PATCH after DELETE: {r.describe()}"
        r = await view.delete()
        note("DELETE again", r.status)
        assert r.status == 404, f"second DELETE: {r.describe()}"

    await asyncio.wait_for(body(), TEST_TIMEOUT_S)


# --------------------------------------------------------------------------------------------
# 6. WHEP before anything is published


async def test_whep_before_publish(server, note, sessions):
    async def body():
        srv = server()
        room = "whep-early-room"
        view = await whep_play(whep_url(srv), srv.token("early-viewer", room))
        sessions.append(view)
        check_created(view, "WHEP POST (empty room)", "/whep/v1/")
        dirs = media_directions(view.answer)
        note("WHEP answer (empty room)", answer_summary(view.answer))
        # An inactive/recvonly m-line would need a renegotiation WHEP does not have; aiortc
        # creates no receiving track for it.
        assert sorted(dirs) == [("audio", "sendonly"), ("video", "sendonly")], \
            f"WHEP answer m-lines {dirs}, want audio+video sendonly even with nothing published yet"
        parts = await room_participants(srv, room)
        assert "early-viewer" in parts, f"the WHEP viewer is not a room participant: {sorted(parts)}"

        await asyncio.sleep(1.5)
        assert view.count("video") == 0 and view.count("audio") == 0, view.frames

        t_pub = time.monotonic()
        pub = await whip_publish(whip_url(srv), srv.token("late-pub", room))
        sessions.append(pub)
        check_created(pub, "WHIP POST", "/whip/v1/")
        n = await view.wait_frames(30, 15)
        a = await view.wait_frames(1, 5, kind="audio")
        first = view.first_frame_at.get("video")
        note("first video frame after WHIP POST (s)", round(first - t_pub, 2) if first else None)
        note("video / audio frames", (n, a))
        assert n >= 30, (f"WHEP viewer decoded only {n} frames within 15 s of the WHIP publish "
                         f"({view.ice_state}, {view.ended}; publisher {pub.ice_state})")
        assert a > 0, "WHEP viewer got no audio from the late publisher"

    await asyncio.wait_for(body(), TEST_TIMEOUT_S)


# --------------------------------------------------------------------------------------------
# 7. errors


async def test_whip_whep_errors(server, lk, note, sessions):
    async def body():
        srv = server()
        room = "err-room"
        guard = await lk(srv, "guard", room)

        whip_offer = await make_offer(send=True)
        whep_offer = await make_offer(send=False)
        dc_only = await make_offer(audio=False, video=False, datachannel=True)
        foo_send = replace_video_codecs(await make_offer(audio=False, send=True))
        foo_recv = replace_video_codecs(await make_offer(audio=False, send=False))
        pcmu_only = await make_offer(video=False, audio_codec="audio/PCMU")
        bad_sig = (api.AccessToken(API_KEY, "not-the-right-secret-0123456789abcdefghij")
                   .with_identity("e-badsig").with_grants(api.VideoGrants(room_join=True, room=room)).to_jwt())

        def ok(identity: str) -> str:
            return srv.token(identity, room)

        # (name, endpoint, body, token, content type, accepted statuses)
        cases: list[tuple[str, str, Any, Optional[str], Optional[str], set[int]]] = [
            ("WHIP garbage text", "whip", "this is not an SDP offer\r\n", ok("e-garbage"), SDP_CONTENT_TYPE, {400}),
            ("WHIP garbage bytes", "whip", b"\x00\xff\xfe\x80v=0\x00" * 8, ok("e-bytes"), SDP_CONTENT_TYPE, {400}),
            ("WHIP no m-line", "whip", session_only_sdp(), ok("e-nomedia"), SDP_CONTENT_TYPE, {400}),
            ("WHIP datachannel only", "whip", dc_only, ok("e-dc"), SDP_CONTENT_TYPE, {400}),
            ("WHIP only video/FOO", "whip", foo_send, ok("e-foo"), SDP_CONTENT_TYPE, {400, 406}),
            ("WHIP only PCMU audio", "whip", pcmu_only, ok("e-pcmu"), SDP_CONTENT_TYPE, {400, 406}),
            ("WHIP text/plain", "whip", whip_offer, ok("e-ctype"), "text/plain", {415}),
            ("WHIP application/json", "whip", whip_offer, ok("e-json"), "application/json", {415}),
            ("WHIP bad signature", "whip", whip_offer, bad_sig, SDP_CONTENT_TYPE, {401}),
            ("WHIP no token", "whip", whip_offer, None, SDP_CONTENT_TYPE, {401}),
            ("WHIP not a JWT", "whip", whip_offer, "not-a-jwt", SDP_CONTENT_TYPE, {401}),
            ("WHIP canPublish=false", "whip", whip_offer, token_without("e-nopub", room, can_publish=False),
             SDP_CONTENT_TYPE, {403}),
            ("WHEP garbage text", "whep", "this is not an SDP offer\r\n", ok("e-wgarbage"), SDP_CONTENT_TYPE, {400}),
            ("WHEP no m-line", "whep", session_only_sdp(), ok("e-wnomedia"), SDP_CONTENT_TYPE, {400}),
            ("WHEP only video/FOO", "whep", foo_recv, ok("e-wfoo"), SDP_CONTENT_TYPE, {400, 406}),
            ("WHEP text/plain", "whep", whep_offer, ok("e-wctype"), "text/plain", {415}),
            ("WHEP bad signature", "whep", whep_offer, bad_sig, SDP_CONTENT_TYPE, {401}),
            ("WHEP no token", "whep", whep_offer, None, SDP_CONTENT_TYPE, {401}),
            ("WHEP canSubscribe=false", "whep", whep_offer, token_without("e-nosub", room, can_subscribe=False),
             SDP_CONTENT_TYPE, {403}),
        ]
        failures = []
        for name, ep, sdp, tok, ctype, want in cases:
            r = await post_sdp(f"{srv.http}/{ep}/v1", sdp, token=tok, content_type=ctype)
            note(name, f"{r.status} {r.text.strip()[:120]!r}")
            if r.status not in want:
                failures.append(f"{name}: got {r.status} {r.text.strip()[:200]!r}, want {sorted(want)}")
        assert not failures, "wrong status codes:\n" + "\n".join(failures)

        for ep in ("whip", "whep"):
            url = f"{srv.http}/{ep}/v1/no-such-resource-0123456789"
            hdr = {"Authorization": f"Bearer {ok('e-unknown')}"}
            r = await http_request("PATCH", url, body="a=end-of-candidates\r\n",
                                   headers={**hdr, "Content-Type": TRICKLE_CONTENT_TYPE})
            note(f"PATCH unknown {ep} resource", r.status)
            assert r.status == 404, r.describe()
            r = await http_request("DELETE", url, headers=hdr)
            note(f"DELETE unknown {ep} resource", r.status)
            assert r.status == 404, r.describe()

        # Nothing above may have left a participant behind.
        await asyncio.sleep(1.0)
        assert guard.recorder.connected == [], f"refused requests created participants: {guard.recorder.connected}"
        assert not guard.room.remote_participants, sorted(guard.room.remote_participants)
        parts = await room_participants(srv, room)
        assert set(parts) == {"guard"}, f"ListParticipants after the refused requests: {sorted(parts)}"
        assert srv.alive(), "server died"

        # Positive controls: the same server still takes valid WHIP and WHEP offers.
        pub = await whip_publish(whip_url(srv), ok("e-control"), video=False)
        sessions.append(pub)
        assert pub.status == 201
        view = await whep_play(whep_url(srv), ok("e-control-viewer"))
        sessions.append(view)
        assert view.status == 201
        await expect(lambda: "e-control" in guard.room.remote_participants, 10,
                     "the control WHIP publisher never appeared in the room")

    await asyncio.wait_for(body(), TEST_TIMEOUT_S)
