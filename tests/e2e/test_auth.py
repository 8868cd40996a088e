"""(d) Token validation: bad tokens are rejected and never create a participant.

For each bad token (bad signature, expired beyond the 60 s leeway, unknown API key, no roomJoin):
  - GET /rtc/validate?access_token=<token> -> 401 with a non-empty plain-text reason;
  - rtc.Room().connect() raises rtc.ConnectError.
A valid token without a room name -> 400 on validate. A valid token -> 200.
Meanwhile a legitimate participant sits in the room and must see no participant_connected event;
a final valid join then shows exactly the expected participants on both sides.
"""

import asyncio
import time

import aiohttp
import jwt
from livekit import api, rtc

from e2e_helpers import API_KEY, API_SECRET, CONNECT_TIMEOUT_S, poll

TEST_TIMEOUT_S = 55
ROOM = "auth-room"


def _hand_made(claims: dict, key: str = API_KEY, secret: str = API_SECRET) -> str:
    now = int(time.time())
    base = {"iss": key, "nbf": now - 10, "exp": now + 600}
    base.update(claims)
    return jwt.encode(base, secret, algorithm="HS256")


def bad_tokens() -> dict[str, str]:
    now = int(time.time())
    return {
        "bad-signature": api.AccessToken(API_KEY, "not-the-right-secret-0123456789abcdefghij")
        .with_identity("intruder-badsig")
        .with_grants(api.VideoGrants(room_join=True, room=ROOM))
        .to_jwt(),
        # exp one hour ago (LiveKit allows 60 s of clock skew)
        "expired": _hand_made(
            {"sub": "intruder-expired", "nbf": now - 7200, "exp": now - 3600,
             "video": {"roomJoin": True, "room": ROOM}}
        ),
        "unknown-api-key": api.AccessToken("unknownkey", API_SECRET)
        .with_identity("intruder-unknownkey")
        .with_grants(api.VideoGrants(room_join=True, room=ROOM))
        .to_jwt(),
        # a properly signed token whose video grant has no roomJoin
        "no-roomJoin": api.AccessToken(API_KEY, API_SECRET)
        .with_identity("intruder-nojoin")
        .with_grants(api.VideoGrants(room=ROOM))
        .to_jwt(),
    }


async def validate(http: aiohttp.ClientSession, base: str, token: str) -> tuple[int, str, str]:
    async with http.get(f"{base}/rtc/validate", params={"access_token": token},
                        timeout=aiohttp.ClientTimeout(total=5)) as r:
        return r.status, await r.text(), r.headers.get("Content-Type", "")


async def connect_must_fail(srv, token: str) -> str:
    room = rtc.Room()
    try:
        await asyncio.wait_for(
            room.connect(srv.url, token, rtc.RoomOptions(connect_timeout=CONNECT_TIMEOUT_S)), 20
        )
    except rtc.ConnectError as e:
        return e.message
    await room.disconnect()
    raise AssertionError("connect() succeeded with a bad token")


async def test_token_validation(server, lk, note):
    async def body():
        srv = server()
        guard = await lk(srv, "guard", ROOM)
        assert not guard.room.remote_participants

        async with aiohttp.ClientSession() as http:
            for name, tok in bad_tokens().items():
                status, text, ctype = await validate(http, srv.http, tok)
                note(f"validate {name}", f"{status} {ctype!r} {text.strip()!r}")
                assert status == 401, f"{name}: validate returned {status} {text!r}"
                assert text.strip(), f"{name}: empty 401 body"
                assert not text.lstrip().startswith("{"), f"{name}: body should be plain text, got {text!r}"

                msg = await connect_must_fail(srv, tok)
                note(f"connect {name}", msg)

            # signed, roomJoin, but no room name
            no_room = _hand_made({"sub": "intruder-noroom", "video": {"roomJoin": True}})
            status, text, _ = await validate(http, srv.http, no_room)
            note("validate no-room", f"{status} {text.strip()!r}")
            assert status == 400, f"no room: validate returned {status} {text!r}"
            msg = await connect_must_fail(srv, no_room)
            note("connect no-room", msg)

            # a valid token
            status, text, _ = await validate(http, srv.http, srv.token("late", ROOM))
            note("validate valid", f"{status} {text.strip()!r}")
            assert status == 200, f"valid token: validate returned {status} {text!r}"

        # Nothing joined: give stray joins a moment to surface, then check.
        await asyncio.sleep(1.0)
        assert guard.recorder.connected == [], f"bad tokens created participants: {guard.recorder.connected}"
        assert not guard.room.remote_participants, dict(guard.room.remote_participants)

        late = await lk(srv, "late", ROOM)
        await poll(lambda: "late" in guard.room.remote_participants, 10)
        assert guard.recorder.connected == ["late"], guard.recorder.connected
        assert set(guard.room.remote_participants) == {"late"}
        assert set(late.room.remote_participants) == {"guard"}

    await asyncio.wait_for(body(), TEST_TIMEOUT_S)
