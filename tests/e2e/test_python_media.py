"""(a) Media between two Python livekit.rtc participants through the SFU.

The publisher sends a synthetic camera (VP8 320x240 ~30 fps, simulcast off) and a synthetic
microphone (48 kHz mono 10 ms sine frames); the subscriber decodes both via VideoStream/AudioStream.
Run in both signalling modes the SDK has:
  - "default": RoomOptions.single_peer_connection=None -> SDK default (true): /rtc/v1 single
    PeerConnection, falling back to v0 /rtc only if the server answers the upgrade with HTTP 404;
  - "v0": single_peer_connection=False -> /rtc with a publisher and a subscriber PeerConnection.
"""

import asyncio

import pytest

from e2e_helpers import publish_synthetic

TEST_TIMEOUT_S = 50
MIN_VIDEO_FRAMES = 50
WINDOW_S = 10.0  # frames must arrive within this long after the subscription


@pytest.mark.parametrize(
    "single_peer_connection", [None, False], ids=["default", "v0"]
)
async def test_python_publish_subscribe(server, lk, note, single_peer_connection):
    async def body():
        srv = server()
        room_name = "media-room"
        sub = await lk(srv, "subscriber", room_name, counter=True,
                       single_peer_connection=single_peer_connection)
        pub = await lk(srv, "publisher", room_name, single_peer_connection=single_peer_connection)

        video, audio = await publish_synthetic(pub.room, video=True, audio=True)
        pub.closers += [video.aclose, audio.aclose]

        c = sub.counter
        await c.wait_subscribed("publisher", "video", timeout=15)
        await c.wait_subscribed("publisher", "audio", timeout=15)
        n_video = await c.wait_frames("publisher", "video", MIN_VIDEO_FRAMES, within=WINDOW_S)
        n_audio = await c.wait_frames("publisher", "audio", 1, within=WINDOW_S)

        note("video frames received", n_video)
        note("video frame size", c.last_size.get(("publisher", "video")))
        note("audio frames received", n_audio)
        note("video frames sent", video.frames_sent)
        note("audio frames sent", audio.frames_sent)
        note("room sid", await asyncio.wait_for(sub.room.sid, 5))

        assert n_video >= MIN_VIDEO_FRAMES, f"only {n_video} video frames within {WINDOW_S}s of subscription"
        assert n_audio > 0, f"no audio frames within {WINDOW_S}s of subscription"
        # both sides see each other
        assert set(sub.room.remote_participants) == {"publisher"}
        assert set(pub.room.remote_participants) == {"subscriber"}

    await asyncio.wait_for(body(), TEST_TIMEOUT_S)
