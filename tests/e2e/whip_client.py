"""aiortc-based WHIP (RFC 9725) publisher and WHEP viewer for the Switchyard e2e tests.

    pub = await whip_publish(f"{srv.http}/whip/v1", token)            # synthetic video + audio
    view = await whep_play(f"{srv.http}/whep/v1?participant=alice", token)
    n = await view.wait_frames(50, timeout=10)                         # decoded video frames
    r = await pub.patch(pub.trickle_fragment())                        # -> HttpResult (204)
    r = await pub.delete()                                             # -> HttpResult (200)
    await pub.close(); await view.close()

    r = await post_sdp(url, sdp_text, token=..., content_type=...)     # raw POST (error tests)

Rules of this environment (see /work/shared/docs/real-clients.md):
  - every RTCPeerConnection gets RTCConfiguration(iceServers=[]) (aiortc would otherwise use
    Google's public STUN server);
  - HTTP goes through urllib with no proxies, in a thread (asyncio.to_thread);
  - offers are non-trickle: aiortc gathers its (host) candidates inside setLocalDescription, so
    localDescription.sdp already holds them;
  - received frames are always drained (aiortc decodes every frame in a thread and queues it
    whether or not the application reads the track).

Nothing here depends on the livekit SDKs: it is a plain WHIP/WHEP client.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Optional

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError

SDP_CONTENT_TYPE = "application/sdp"
TRICKLE_CONTENT_TYPE = "application/trickle-ice-sdpfrag"
HTTP_TIMEOUT_S = 10.0

# No proxies, ever: the server lives at an address that only exists in the test namespace.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# --------------------------------------------------------------------------------------------
# HTTP


@dataclass
class HttpResult:
    """One HTTP exchange. Non-2xx answers are results too (urllib's HTTPError is unwrapped)."""

    method: str
    url: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> Optional[str]:
        """First value of a header (case-insensitive), or None."""
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        """Every value of a header (e.g. several `Link:` lines)."""
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def describe(self, max_body: int = 300) -> str:
        body = self.text.strip()
        if len(body) > max_body:
            body = body[:max_body] + "..."
        return f"{self.method} {self.url} -> {self.status} {body!r}"


def _request_sync(method: str, url: str, body: Optional[bytes], headers: dict[str, str],
                  timeout: float) -> HttpResult:
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with _opener.open(req, timeout=timeout) as r:
            return HttpResult(method, url, r.status, list(r.headers.items()), r.read())
    except urllib.error.HTTPError as e:
        try:
            data = e.read()
        except Exception:
            data = b""
        hdrs = list(e.headers.items()) if e.headers is not None else []
        return HttpResult(method, url, e.code, hdrs, data)


async def http_request(method: str, url: str, *, body: Optional[bytes | str] = None,
                       headers: Optional[dict[str, str]] = None,
                       timeout: float = HTTP_TIMEOUT_S) -> HttpResult:
    """Blocking urllib request run in a thread. Connection errors raise (URLError/OSError).
    Note: urllib adds `Content-Type: application/x-www-form-urlencoded` to a request with a
    body and no Content-Type."""
    if isinstance(body, str):
        body = body.encode()
    return await asyncio.to_thread(_request_sync, method, url, body, dict(headers or {}), timeout)


def bearer(token: Optional[str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


async def post_sdp(url: str, sdp: bytes | str, *, token: Optional[str] = None,
                   content_type: Optional[str] = SDP_CONTENT_TYPE,
                   headers: Optional[dict[str, str]] = None) -> HttpResult:
    """POST an SDP offer (or anything else: error tests) to a WHIP/WHEP endpoint."""
    h = bearer(token)
    if content_type is not None:
        h["Content-Type"] = content_type
    h.update(headers or {})
    return await http_request("POST", url, body=sdp, headers=h)


class WhipHttpError(AssertionError):
    """The endpoint did not answer the offer with 201 Created."""

    def __init__(self, what: str, result: HttpResult) -> None:
        super().__init__(f"{what}: {result.describe()}")
        self.result = result


# --------------------------------------------------------------------------------------------
# Synthetic sources


class ColourBarsTrack(VideoStreamTrack):
    """320x240 moving colour bars with a sweeping white square, ~30 fps (aiortc paces it)."""

    BARS = np.array(
        [[255, 255, 255], [255, 255, 0], [0, 255, 255], [0, 255, 0],
         [255, 0, 255], [255, 0, 0], [0, 0, 255], [16, 16, 16]],
        dtype=np.uint8,
    )

    def __init__(self, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self.width, self.height = width, height
        cols = (np.arange(width) * len(self.BARS)) // width
        self._base = np.broadcast_to(self.BARS[cols], (height, width, 3)).copy()
        self.frames_sent = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        i = self.frames_sent
        img = np.roll(self._base, (i * 4) % self.width, axis=1)
        x = (i * 6) % (self.width - 32)
        y = (i * 3) % (self.height - 32)
        img[y : y + 32, x : x + 32, :] = 255 - img[y : y + 32, x : x + 32, :]
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = pts
        frame.time_base = time_base
        self.frames_sent += 1
        return frame


class SineAudioTrack(MediaStreamTrack):
    """440 Hz sine, 48 kHz mono s16, 20 ms frames paced in real time."""

    kind = "audio"
    RATE = 48000
    SAMPLES = 960  # 20 ms

    def __init__(self, freq: float = 440.0) -> None:
        super().__init__()
        self.freq = freq
        self.frames_sent = 0
        self._start: Optional[float] = None
        self._ts = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.time()
            self._ts = 0
        else:
            self._ts += self.SAMPLES
            wait = self._start + self._ts / self.RATE - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        t = (np.arange(self.SAMPLES) + self._ts) / self.RATE
        pcm = (0.3 * 32767 * np.sin(2 * math.pi * self.freq * t)).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = self.RATE
        frame.pts = self._ts
        frame.time_base = fractions.Fraction(1, self.RATE)
        self.frames_sent += 1
        return frame


# --------------------------------------------------------------------------------------------
# Offers


def new_pc() -> RTCPeerConnection:
    # iceServers=[]: never aiortc's default public STUN server.
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


def _prefer(transceiver, kind: str, mime: Optional[str]) -> None:
    """Restrict a transceiver to one codec (plus RTX for video), e.g. mime="video/H264"."""
    if not mime:
        return
    caps = RTCRtpSender.getCapabilities(kind).codecs
    chosen = [c for c in caps if c.mimeType.lower() == mime.lower()]
    if not chosen:
        raise ValueError(f"aiortc has no {mime} codec")
    if kind == "video":
        chosen += [c for c in caps if c.mimeType.lower() == "video/rtx"]
    transceiver.setCodecPreferences(chosen)


def _add_media(pc: RTCPeerConnection, *, audio: bool, video: bool, send: bool,
               audio_codec: Optional[str] = None, video_codec: Optional[str] = None):
    """Add audio (first) and video transceivers. Returns (video_track, audio_track) when sending."""
    vtrack = atrack = None
    if audio:
        if send:
            atrack = SineAudioTrack()
            t = pc.addTransceiver(atrack, direction="sendonly")
        else:
            t = pc.addTransceiver("audio", direction="recvonly")
        _prefer(t, "audio", audio_codec)
    if video:
        if send:
            vtrack = ColourBarsTrack()
            t = pc.addTransceiver(vtrack, direction="sendonly")
        else:
            t = pc.addTransceiver("video", direction="recvonly")
        _prefer(t, "video", video_codec)
    return vtrack, atrack


async def make_offer(*, audio: bool = True, video: bool = True, send: bool = True,
                     datachannel: bool = False, audio_codec: Optional[str] = None,
                     video_codec: Optional[str] = None) -> str:
    """A real aiortc offer (with candidates) whose PeerConnection is closed again: for tests
    that only look at the HTTP answer. send=True -> sendonly (WHIP), False -> recvonly (WHEP)."""
    pc = new_pc()
    vt = at = None
    try:
        vt, at = _add_media(pc, audio=audio, video=video, send=send,
                            audio_codec=audio_codec, video_codec=video_codec)
        if datachannel:
            pc.createDataChannel("whip-test")
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp
    finally:
        await pc.close()
        for t in (vt, at):
            if t is not None:
                t.stop()


def replace_video_codecs(sdp: str, rtpmap: str = "FOO/90000", pt: int = 98) -> str:
    """Rewrite every m=video section to offer exactly one made-up codec (`a=rtpmap:98 FOO/90000`),
    dropping the real rtpmap/fmtp/rtcp-fb lines and the RTX ssrc-group."""
    out: list[str] = []
    in_video = False
    for line in sdp.splitlines():
        if line.startswith("m="):
            in_video = line.startswith("m=video")
            if in_video:
                parts = line.split()
                out.append(" ".join(parts[:3] + [str(pt)]))
                continue
        elif in_video and line.startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:", "a=ssrc-group:")):
            continue
        out.append(line)
        if in_video and line.startswith("a=mid:"):
            out.append(f"a=rtpmap:{pt} {rtpmap}")  # after c= (SDP line order), among the a= lines
    return "\r\n".join(out) + "\r\n"


def session_only_sdp() -> str:
    """A syntactically valid SDP with no m= line at all."""
    return (
        "v=0\r\n"
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n"
        "s=-\r\n"
        "t=0 0\r\n"
    )


def trickle_fragment_for(sdp: str) -> str:
    """An RFC 8840 trickle-ice-sdpfrag for the first media section of `sdp`: its ICE ufrag/pwd,
    m-line, mid, first candidate (a duplicate, harmless) and end-of-candidates."""
    ufrag = pwd = mline = mid = cand = None
    for line in sdp.splitlines():
        if line.startswith("a=ice-ufrag:") and ufrag is None:
            ufrag = line
        elif line.startswith("a=ice-pwd:") and pwd is None:
            pwd = line
        elif line.startswith("m=") and mline is None:
            kind = line[2:].split()[0]
            pt = line.split()[3] if len(line.split()) > 3 else "0"
            mline = f"m={kind} 9 UDP/TLS/RTP/SAVPF {pt}"
        elif line.startswith("a=mid:") and mid is None:
            mid = line
        elif line.startswith("a=candidate:") and cand is None:
            cand = line
    parts = [p for p in (ufrag, pwd, mline, mid, cand) if p]
    parts.append("a=end-of-candidates")
    return "\r\n".join(parts) + "\r\n"


# --------------------------------------------------------------------------------------------
# Sessions


class _Session:
    what = "WHIP"

    def __init__(self, pc: RTCPeerConnection, url: str, token: Optional[str], result: HttpResult) -> None:
        self.pc = pc
        self.url = url
        self.token = token  # sent as Bearer on PATCH / DELETE (None: no Authorization header)
        self.response = result
        self.status = result.status
        self.headers = result.headers
        self.etag = result.header("ETag")
        self.content_type = result.header("Content-Type")
        self.location_header = result.header("Location")
        # Location may be relative to the server ("/whip/v1/<id>"): resolve it against the POST URL.
        self.location = urllib.parse.urljoin(url, self.location_header) if self.location_header else None
        self.links = result.header_all("Link")
        self.offer = pc.localDescription.sdp if pc.localDescription else ""
        self.answer = result.text
        self.created_at = time.monotonic()
        self._closed = False

    def _need_location(self) -> str:
        if not self.location:
            raise AssertionError(f"{self.what}: the 201 had no Location header ({self.response.describe()})")
        return self.location

    def trickle_fragment(self) -> str:
        return trickle_fragment_for(self.offer)

    async def patch(self, body: str | bytes, content_type: Optional[str] = TRICKLE_CONTENT_TYPE,
                    *, headers: Optional[dict[str, str]] = None) -> HttpResult:
        h = bearer(self.token)
        if content_type is not None:
            h["Content-Type"] = content_type
        h.update(headers or {})
        return await http_request("PATCH", self._need_location(), body=body, headers=h)

    async def delete(self) -> HttpResult:
        return await http_request("DELETE", self._need_location(), headers=bearer(self.token))

    @property
    def ice_state(self) -> str:
        return f"{self.pc.iceConnectionState}/{self.pc.connectionState}"

    async def wait_connected(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pc.connectionState == "connected":
                return True
            if self.pc.connectionState in ("failed", "closed"):
                return False
            await asyncio.sleep(0.05)
        return self.pc.connectionState == "connected"

    async def _close_extra(self) -> None:
        pass

    async def close(self) -> None:
        """Close the PeerConnection locally (sends nothing over HTTP: call delete() for that)."""
        if self._closed:
            return
        self._closed = True
        await self._close_extra()
        try:
            await asyncio.wait_for(self.pc.close(), 5)
        except Exception:
            pass


class WhipSession(_Session):
    what = "WHIP"

    def __init__(self, pc, url, token, result, video_track, audio_track) -> None:
        super().__init__(pc, url, token, result)
        self.video_track: Optional[ColourBarsTrack] = video_track
        self.audio_track: Optional[SineAudioTrack] = audio_track

    @property
    def video_frames_sent(self) -> int:
        return self.video_track.frames_sent if self.video_track else 0

    @property
    def audio_frames_sent(self) -> int:
        return self.audio_track.frames_sent if self.audio_track else 0

    async def _close_extra(self) -> None:
        for t in (self.video_track, self.audio_track):
            if t is not None:
                t.stop()


class WhepSession(_Session):
    """Counts the decoded frames of every received track, per kind ("video" / "audio")."""

    what = "WHEP"

    def __init__(self, pc, url, token, result) -> None:
        super().__init__(pc, url, token, result)
        self.frames: dict[str, int] = {"video": 0, "audio": 0}
        self.first_frame_at: dict[str, float] = {}
        self.last_frame_at: dict[str, float] = {}
        self.last_size: Optional[tuple[int, int]] = None
        self.track_kinds: list[str] = []
        self.ended: dict[str, str] = {}
        self._tasks: list[asyncio.Task] = []

    def _start_drain(self, track: MediaStreamTrack) -> None:
        self.track_kinds.append(track.kind)
        self._tasks.append(asyncio.ensure_future(self._drain(track)))

    async def _drain(self, track: MediaStreamTrack) -> None:
        kind = track.kind
        try:
            while True:
                frame = await track.recv()
                now = time.monotonic()
                self.frames[kind] = self.frames.get(kind, 0) + 1
                self.first_frame_at.setdefault(kind, now)
                self.last_frame_at[kind] = now
                if kind == "video":
                    self.last_size = (frame.width, frame.height)
        except MediaStreamError:
            self.ended[kind] = "ended"
        except asyncio.CancelledError:
            raise
        except Exception as e:  # keep the failure visible in messages
            self.ended[kind] = f"{type(e).__name__}: {e}"

    def count(self, kind: str = "video") -> int:
        return self.frames.get(kind, 0)

    async def wait_frames(self, n: int, timeout: float, kind: str = "video") -> int:
        """Wait until >= n frames of `kind` were decoded (in total), at most `timeout` s.
        Returns the count, which may be < n on timeout: the caller asserts."""
        deadline = time.monotonic() + timeout
        while self.count(kind) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.count(kind)

    async def _close_extra(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass


async def _negotiate(pc: RTCPeerConnection, url: str, token: Optional[str], what: str,
                     token_in_query: bool) -> HttpResult:
    await pc.setLocalDescription(await pc.createOffer())  # gathers candidates (non-trickle)
    result = await post_sdp(url, pc.localDescription.sdp, token=None if token_in_query else token)
    if result.status != 201:
        raise WhipHttpError(f"{what} POST", result)
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=result.text, type="answer"))
    except Exception as e:
        raise AssertionError(f"{what}: aiortc rejected the answer ({type(e).__name__}: {e}):\n{result.text}") from e
    return result


async def whip_publish(url: str, token: Optional[str], *, audio: bool = True, video: bool = True,
                       video_codec: Optional[str] = None, audio_codec: Optional[str] = None,
                       token_in_query: bool = False) -> WhipSession:
    """Publish synthetic audio (sine) and/or video (colour bars) over WHIP.

    url: the endpoint (`.../whip/v1` or a short URL). token: sent as `Authorization: Bearer`
    on the POST (unless token_in_query: the URL already carries ?access_token=) and on
    PATCH/DELETE. Raises WhipHttpError unless the POST answers 201."""
    pc = new_pc()
    vt, at = _add_media(pc, audio=audio, video=video, send=True,
                        audio_codec=audio_codec, video_codec=video_codec)
    try:
        result = await _negotiate(pc, url, token, "WHIP", token_in_query)
    except BaseException:
        await pc.close()
        for t in (vt, at):
            if t is not None:
                t.stop()
        raise
    return WhipSession(pc, url, token, result, vt, at)


async def whep_play(url: str, token: Optional[str], *, audio: bool = True, video: bool = True,
                    token_in_query: bool = False) -> WhepSession:
    """Start a WHEP viewer with recvonly audio and/or video transceivers; every track the
    answer sends is drained and its decoded frames counted (WhepSession.frames / wait_frames)."""
    pc = new_pc()
    _add_media(pc, audio=audio, video=video, send=False)
    try:
        result = await _negotiate(pc, url, token, "WHEP", token_in_query)
    except BaseException:
        await pc.close()
        raise
    sess = WhepSession(pc, url, token, result)
    # setRemoteDescription created a RemoteStreamTrack for every m-line the answer sends on.
    for t in pc.getTransceivers():
        if t.receiver.track is not None:
            sess._start_drain(t.receiver.track)
    return sess
