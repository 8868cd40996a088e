"""Shared helpers for the Switchyard end-to-end tests.

Everything here drives *real* LiveKit clients through their public APIs only:
  - Python `livekit` (rtc SDK, native libwebrtc) and `livekit-api` (tokens),
  - `livekit-client` in headless chromium, through tests/e2e/js/browser_client.mjs.
The tests must pass unchanged against a real LiveKit server.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
from livekit import rtc

E2E_DIR = Path(__file__).resolve().parent
ROOT = E2E_DIR.parents[1]
JS_DIR = E2E_DIR / "js"
ARTIFACTS = ROOT / "tests" / ".artifacts"
NODE = os.environ.get("NODE", "/usr/bin/node")

# Addresses inside the private network namespace made by scripts/e2e.sh (never anything else).
SERVER_IP = "10.200.0.1"
HTTP_PORT = 7880
RTC_UDP_PORT = 7882

API_KEY = "testkey"
API_SECRET = "sw1tchyard-e2e-secret-0123456789abcdefgh"  # 40 chars (>= 32: PyJWT/LiveKit)
assert len(API_SECRET) == 40

# Per-attempt signal connection timeout for the Python SDK (its default is 5 s).
CONNECT_TIMEOUT_S = 5.0


async def poll(cond: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """Wait until cond() is truthy; return its value, or raise asyncio.TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise asyncio.TimeoutError()
        await asyncio.sleep(interval)


# --------------------------------------------------------------------------------------------
# Synthetic media publishers (Python rtc SDK)


class SyntheticVideo:
    """A VideoSource fed with RGBA frames whose content changes every frame (~fps)."""

    def __init__(self, width: int = 320, height: int = 240, fps: float = 30.0) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.source = rtc.VideoSource(width, height)
        self.track = rtc.LocalVideoTrack.create_video_track("synthetic-camera", self.source)
        self.frames_sent = 0
        self._task: Optional[asyncio.Task] = None

    def _frame(self, i: int) -> bytes:
        img = np.empty((self.height, self.width, 4), dtype=np.uint8)
        # background colour cycles, a white bar sweeps left to right, alpha opaque
        img[:, :, 0] = (i * 5) % 256
        img[:, :, 1] = (i * 3 + 85) % 256
        img[:, :, 2] = (255 - i * 7) % 256
        img[:, :, 3] = 255
        x = (i * 6) % self.width
        img[:, x : x + 16, :3] = 255
        y = (i * 4) % self.height
        img[y : y + 12, :, :3] = 0
        return img.tobytes()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / self.fps
        t0 = loop.time()
        i = 0
        while True:
            frame = rtc.VideoFrame(self.width, self.height, rtc.VideoBufferType.RGBA, self._frame(i))
            self.source.capture_frame(frame)
            self.frames_sent += 1
            i += 1
            await asyncio.sleep(max(0.0, t0 + i * period - loop.time()))

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def aclose(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.source.aclose()


class SyntheticAudio:
    """An AudioSource fed with 10 ms frames of a 440 Hz sine (48 kHz mono)."""

    SAMPLE_RATE = 48000
    CHANNELS = 1
    SAMPLES = 480  # 10 ms

    def __init__(self, freq: float = 440.0) -> None:
        self.source = rtc.AudioSource(self.SAMPLE_RATE, self.CHANNELS)
        self.track = rtc.LocalAudioTrack.create_audio_track("synthetic-mic", self.source)
        self.freq = freq
        self.frames_sent = 0
        self._task: Optional[asyncio.Task] = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        n = 0
        while True:
            f = rtc.AudioFrame.create(self.SAMPLE_RATE, self.CHANNELS, self.SAMPLES)
            t = (np.arange(self.SAMPLES) + n * self.SAMPLES) / self.SAMPLE_RATE
            samples = (0.3 * 32767 * np.sin(2 * math.pi * self.freq * t)).astype(np.int16)
            np.frombuffer(f.data, dtype=np.int16)[:] = samples
            # capture_frame waits while the source's 1 s queue is full; also pace in real time so
            # the queue stays short.
            await self.source.capture_frame(f)
            self.frames_sent += 1
            n += 1
            await asyncio.sleep(max(0.0, t0 + n * 0.010 - loop.time()))

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def aclose(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.source.aclose()


async def publish_synthetic(
    room: rtc.Room, *, video: bool = True, audio: bool = True
) -> tuple[Optional[SyntheticVideo], Optional[SyntheticAudio]]:
    """Publish a synthetic camera (VP8 320x240, simulcast off) and/or microphone track."""
    v = a = None
    if video:
        v = SyntheticVideo()
        v.start()
        await room.local_participant.publish_track(
            v.track,
            rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA, simulcast=False),
        )
    if audio:
        a = SyntheticAudio()
        a.start()
        await room.local_participant.publish_track(
            a.track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
    return v, a


# --------------------------------------------------------------------------------------------
# Receiving side


class MediaCounter:
    """Counts decoded frames of every track a Room subscribes to, per (identity, "video"|"audio").

    Attach it before Room.connect() so no track_subscribed event is missed.
    """

    def __init__(self, room: rtc.Room) -> None:
        self.room = room
        self.frames: dict[tuple[str, str], int] = defaultdict(int)
        self.subscribed_at: dict[tuple[str, str], float] = {}
        self.last_size: dict[tuple[str, str], tuple[int, int]] = {}
        self._streams: list[Any] = []
        self._tasks: list[asyncio.Task] = []
        room.on("track_subscribed", self._on_track_subscribed)

    def _on_track_subscribed(
        self, track: rtc.Track, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if track.kind == rtc.TrackKind.KIND_VIDEO:
            key = (participant.identity, "video")
            stream: Any = rtc.VideoStream(track)
        elif track.kind == rtc.TrackKind.KIND_AUDIO:
            key = (participant.identity, "audio")
            stream = rtc.AudioStream(track, sample_rate=48000, num_channels=1)
        else:
            return
        self.subscribed_at.setdefault(key, time.monotonic())
        self._streams.append(stream)
        self._tasks.append(asyncio.ensure_future(self._drain(stream, key)))

    async def _drain(self, stream: Any, key: tuple[str, str]) -> None:
        async for ev in stream:
            self.frames[key] += 1
            if key[1] == "video":
                self.last_size[key] = (ev.frame.width, ev.frame.height)

    async def wait_subscribed(self, identity: str, kind: str, timeout: float) -> None:
        await poll(lambda: (identity, kind) in self.subscribed_at, timeout)

    async def wait_frames(self, identity: str, kind: str, n: int, within: float) -> int:
        """Wait until >= n frames arrived, at most `within` seconds after the track was subscribed.
        Returns the count (which may be < n on timeout: the caller asserts)."""
        key = (identity, kind)
        deadline = self.subscribed_at[key] + within
        while self.frames[key] < n and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.frames[key]

    async def aclose(self) -> None:
        for s in self._streams:
            try:
                await asyncio.wait_for(s.aclose(), 3)
            except Exception:
                pass
        for t in self._tasks:
            t.cancel()


@dataclass
class RoomRecorder:
    """Records participant and data events of a Room (attach before connect)."""

    room: rtc.Room
    connected: list[str] = field(default_factory=list)
    disconnected: list[str] = field(default_factory=list)
    data: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.room.on("participant_connected", lambda p: self.connected.append(p.identity))
        self.room.on("participant_disconnected", lambda p: self.disconnected.append(p.identity))
        self.room.on("data_received", self._on_data)

    def _on_data(self, pkt: rtc.DataPacket) -> None:
        self.data.append(
            {
                "payload": bytes(pkt.data),
                "kind": "reliable" if pkt.kind == rtc.DataPacketKind.KIND_RELIABLE else "lossy",
                "topic": pkt.topic,
                "from": pkt.participant.identity if pkt.participant is not None else None,
                "t": time.monotonic(),
            }
        )

    def data_with(self, payload: bytes) -> list[dict]:
        return [d for d in self.data if d["payload"] == payload]


# --------------------------------------------------------------------------------------------
# Browser participant (livekit-client in headless chromium)


class BrowserClient:
    """Runs tests/e2e/js/browser_client.mjs and talks to it with JSON lines."""

    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self.events: list[dict] = []
        self.proc: Optional[asyncio.subprocess.Process] = None
        self._reader: Optional[asyncio.Task] = None
        self._log = None
        self._next_id = 0

    async def start(self, url: str, token: str, *, publish: bool = True,
                    single_pc: Optional[bool] = None, stats_ms: int = 1000) -> None:
        args = [str(JS_DIR / "browser_client.mjs"), "--url", url, "--token", token,
                "--stats-ms", str(stats_ms)]
        if not publish:
            args.append("--no-publish")
        if single_pc is not None:
            args += ["--single-pc", "true" if single_pc else "false"]
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

    async def _read(self) -> None:
        assert self.proc and self.proc.stdout
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                break
            if self._log:
                self._log.write(b"[stdout] " + line)
                self._log.flush()
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            ev["_mono"] = time.monotonic()
            self.events.append(ev)

    def find(self, pred: Callable[[dict], bool]) -> list[dict]:
        return [e for e in self.events if pred(e)]

    async def wait_event(self, pred: Callable[[dict], bool], timeout: float, what: str = "") -> dict:
        """Wait for an event matching pred; fail fast if the client reported a fatal error or exited."""
        deadline = time.monotonic() + timeout
        while True:
            for e in self.events:
                if pred(e):
                    return e
            fatal = [e for e in self.events if e.get("event") in ("error", "exit")]
            if fatal:
                raise AssertionError(f"browser {self.name}: {fatal[0]} while waiting for {what or pred}")
            if self.proc and self.proc.returncode is not None and (not self._reader or self._reader.done()):
                raise AssertionError(f"browser {self.name} exited ({self.proc.returncode}) while waiting for {what}")
            if time.monotonic() >= deadline:
                raise AssertionError(f"browser {self.name}: timed out after {timeout}s waiting for {what or pred}")
            await asyncio.sleep(0.05)

    async def command(self, cmd: dict, timeout: float = 10) -> dict:
        assert self.proc and self.proc.stdin
        self._next_id += 1
        cid = self._next_id
        self.proc.stdin.write((json.dumps({**cmd, "id": cid}) + "\n").encode())
        await self.proc.stdin.drain()
        ack = await self.wait_event(lambda e: e.get("event") == "ack" and e.get("id") == cid, timeout,
                                    f"ack of {cmd.get('cmd')}")
        if not ack.get("ok"):
            raise AssertionError(f"browser {self.name}: command {cmd} failed: {ack.get('error')}")
        return ack

    async def publish_data(self, payload: str, *, reliable: bool, topic: Optional[str] = None,
                           destination_identities: Optional[list[str]] = None) -> None:
        cmd: dict = {"cmd": "publishData", "payload": payload, "reliable": reliable}
        if topic is not None:
            cmd["topic"] = topic
        if destination_identities is not None:
            cmd["destinationIdentities"] = destination_identities
        await self.command(cmd)

    async def close(self) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            try:
                assert self.proc.stdin
                self.proc.stdin.write(b'{"cmd":"quit"}\n')
                await self.proc.stdin.drain()
                self.proc.stdin.close()
            except Exception:
                pass
            try:
                await asyncio.wait_for(self.proc.wait(), 8)
            except asyncio.TimeoutError:
                self.proc.terminate()
                try:
                    await asyncio.wait_for(self.proc.wait(), 5)
                except asyncio.TimeoutError:
                    self.proc.kill()
                    await self.proc.wait()
        if self._reader:
            try:
                await asyncio.wait_for(self._reader, 2)
            except Exception:
                self._reader.cancel()
        if self._log:
            self._log.close()
            self._log = None
