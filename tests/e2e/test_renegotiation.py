"""Publisher renegotiation must not interrupt an already-flowing simulcast camera.

The browser (livekit-client, default options: simulcast VP8, default signalling path) joins without
publishing, then:
  1. publishes ONLY its camera (setCameraEnabled(true)): the Python participant must decode
     >= 30 frames of it (within 15 s of subscribing);
  2. publishes its microphone (setMicrophoneEnabled(true)): a renegotiation of the publisher PC.
     The Python participant must get the audio track (track_subscribed), and, after ~3 s, still
     decode >= 30 camera frames in a fresh 5 s window;
  3. unpublishes the microphone (unpublishTrack): another renegotiation. After ~3 s, the camera
     must still deliver >= 30 frames in a fresh 5 s window.

All checks of steps 2 and 3 are measured before anything is asserted, so a failure report shows
every step. A per-second timeline of decoded camera frames is recorded as a measurement.
"""

import asyncio
import time

from livekit import rtc

from e2e_helpers import poll

TEST_TIMEOUT_S = 55
MIN_FRAMES = 30
FIRST_WINDOW_S = 15.0
SETTLE_S = 3.0
WINDOW_S = 5.0
KEY_V = ("web", "video")
KEY_A = ("web", "audio")


def _layers(stats_ev):
    """Compact per-rid outbound stats of the browser's local tracks from a "stats" event."""
    if not stats_ev:
        return None
    out = {}
    for t in stats_ev.get("local", []):
        out[t["source"]] = [
            (l.get("rid"), l.get("packetsSent"), l.get("framesEncoded"), l.get("frameWidth"))
            for l in t.get("layers", [])
        ]
    return out


async def test_renegotiation_keeps_simulcast_video(server, lk, browser, note):
    marks: list[tuple[float, str]] = []
    samples: list[tuple[float, int]] = []
    t0 = time.monotonic()

    def mark(label: str) -> None:
        marks.append((round(time.monotonic() - t0, 1), label))

    async def body():
        srv = server()
        room_name = "reneg-room"
        py = await lk(srv, "py", room_name, counter=True)
        c = py.counter
        unpublished: list[tuple[str, str]] = []
        py.room.on(
            "track_unpublished",
            lambda pub, p: unpublished.append(
                (p.identity, "audio" if pub.kind == rtc.TrackKind.KIND_AUDIO else "video")),
        )

        async def sampler():
            while True:
                samples.append((time.monotonic() - t0, c.frames[KEY_V]))
                await asyncio.sleep(0.5)

        sampler_task = asyncio.ensure_future(sampler())
        try:
            web = await browser(srv, "web", room_name, publish=False)
            connected = await web.wait_event(lambda e: e["event"] == "connected", 30, "browser connected")
            note("browser connected to room", f"{connected.get('room')} sid={connected.get('roomSid')}")
            mark("browser connected")

            # ---- 1. camera only -------------------------------------------------------------
            ack = await web.command({"cmd": "setCamera", "enabled": True}, timeout=20)
            mark("camera published")
            tracks = ack["result"]["tracks"]
            note("step1: browser tracks after setCamera", tracks)
            assert {t["kind"] for t in tracks} == {"video"}, tracks
            await c.wait_subscribed("web", "video", timeout=15)
            mark("py subscribed video")
            n1 = await c.wait_frames("web", "video", MIN_FRAMES, within=FIRST_WINDOW_S)
            note("step1: camera frames received (camera only)", n1)
            note("step1: camera frame size", c.last_size.get(KEY_V))
            assert n1 >= MIN_FRAMES, f"python got only {n1} camera frames within {FIRST_WINDOW_S}s"

            failures: list[str] = []

            async def window(step: str) -> int:
                start = c.frames[KEY_V]
                await asyncio.sleep(WINDOW_S)
                n = c.frames[KEY_V] - start
                note(f"{step}: camera frames in a {WINDOW_S:.0f}s window", n)
                stats = web.find(lambda e: e["event"] == "stats")
                note(f"{step}: browser outbound layers (rid, packetsSent, framesEncoded, width)",
                     _layers(stats[-1] if stats else None))
                if n < MIN_FRAMES:
                    failures.append(f"{step}: only {n} camera frames in {WINDOW_S}s (need {MIN_FRAMES})")
                return n

            # ---- 2. publish the microphone (renegotiation) ------------------------------------
            ack = await web.command({"cmd": "setMicrophone", "enabled": True}, timeout=20)
            mark("mic published")
            tracks = ack["result"]["tracks"]
            note("step2: browser tracks after setMicrophone", tracks)
            try:
                await c.wait_subscribed("web", "audio", timeout=10)
                mark("py subscribed audio")
                note("step2: python subscribed to browser audio", True)
            except asyncio.TimeoutError:
                note("step2: python subscribed to browser audio", False)
                failures.append("step2: python never got track_subscribed for the browser's audio")
            await asyncio.sleep(SETTLE_S)
            mark("window 2 start")
            await window("step2 (after mic publish)")
            mark("window 2 end")
            note("step2: audio frames received so far", c.frames[KEY_A])

            # ---- 3. unpublish the microphone (renegotiation) ----------------------------------
            ack = await web.command({"cmd": "unpublish", "source": "microphone"}, timeout=20)
            mark("mic unpublished")
            note("step3: browser tracks after unpublish", ack["result"]["tracks"])
            try:
                await poll(lambda: ("web", "audio") in unpublished, 5)
                note("step3: python saw the audio track unpublished", True)
            except asyncio.TimeoutError:
                note("step3: python saw the audio track unpublished", False)
                failures.append("python never saw the unpublished microphone (track_unpublished)")
            await asyncio.sleep(SETTLE_S)
            mark("window 3 start")
            await window("step3 (after mic unpublish)")
            mark("window 3 end")

            assert not failures, "; ".join(failures)
        finally:
            sampler_task.cancel()

    try:
        await asyncio.wait_for(body(), TEST_TIMEOUT_S)
    finally:
        # camera frames decoded per second (t = seconds since test start), plus the step marks
        per_s = []
        for i in range(2, len(samples), 2):
            per_s.append((round(samples[i][0]), samples[i][1] - samples[i - 2][1]))
        note("timeline: camera frames per second (t, frames)", per_s)
        note("timeline: marks (t, what)", marks)
