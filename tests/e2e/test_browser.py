"""(b) livekit-client in headless chromium <-> Python livekit.rtc, through the SFU.

The browser uses its default connect path (RoomOptions.singlePeerConnection=true: /rtc/v1 with the
token in ?access_token=, falling back to /rtc when /rtc/v1/validate answers 404) and publishes the
fake camera + microphone with enableCameraAndMicrophone() (default options: VP8, simulcast).
The Python participant publishes a synthetic camera.
  - Python must decode >= 30 frames of the browser camera within 15 s of subscribing to it;
  - the browser must report inbound-rtp framesDecoded > 0 for the Python participant's video.
"""

import asyncio


from e2e_helpers import publish_synthetic

TEST_TIMEOUT_S = 55
MIN_FRAMES = 30
WINDOW_S = 15.0


async def test_browser_interop(server, lk, browser, note):
    async def body():
        srv = server()
        room_name = "browser-room"
        py = await lk(srv, "py", room_name, counter=True)
        video, _ = await publish_synthetic(py.room, video=True, audio=False)
        py.closers.append(video.aclose)

        web = await browser(srv, "web", room_name, publish=True)
        connected = await web.wait_event(lambda e: e["event"] == "connected", 30, "browser connected")
        note("browser connected to room", f"{connected.get('room')} sid={connected.get('roomSid')}")
        published = await web.wait_event(lambda e: e["event"] == "published", 20, "browser published")
        note("browser published", published.get("tracks"))
        kinds = {t["kind"] for t in published["tracks"]}
        assert kinds == {"video", "audio"}, published

        # Python receives the browser's camera.
        c = py.counter
        await c.wait_subscribed("web", "video", timeout=15)
        n = await c.wait_frames("web", "video", MIN_FRAMES, within=WINDOW_S)
        note("python: browser video frames received", n)
        note("python: browser video frame size", c.last_size.get(("web", "video")))
        assert n >= MIN_FRAMES, f"python got only {n} frames of the browser camera within {WINDOW_S}s"

        # The browser decodes the Python participant's video.
        def decoded(e):
            return e["event"] == "stats" and any(
                r["identity"] == "py" and r["kind"] == "video" and r["framesDecoded"] > 0
                for r in e.get("remote", [])
            )

        stats = await web.wait_event(decoded, WINDOW_S, "browser framesDecoded > 0 for py's video")
        r = next(r for r in stats["remote"] if r["identity"] == "py" and r["kind"] == "video")
        note("browser: py video framesDecoded", r["framesDecoded"])
        note("browser: py video inbound stats", r)
        assert r["framesDecoded"] > 0
        assert set(py.room.remote_participants) == {"web"}

    await asyncio.wait_for(body(), TEST_TIMEOUT_S)
