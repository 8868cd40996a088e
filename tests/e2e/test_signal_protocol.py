"""LiveKit signalling details at the protocol level, spoken with LiveKit's own protobuf types
(the `livekit-protocol` package the SDKs use) over a raw WebSocket, as a client would:

  - the first message is the JoinResponse, with what SDKs require (server version, ping
    interval/timeout > 0, permission, PA_/RM_ sids, subscriber_primary);
  - a refresh_token follows that verifies with the LiveKit TokenVerifier (same identity/room);
  - the server offers the subscriber connection with data channels;
  - ping_req is answered with pong_resp echoing the timestamp, legacy ping with pong;
  - /rtc/v1 and /rtc/v1/validate answer HTTP 404 (so SDKs fall back to /rtc) with CORS and a
    body without "requested room does not exist";
  - a resume attempt (reconnect=1) gets Leave{STATE_MISMATCH, RECONNECT};
  - non-upgrade GET /rtc is 404; health GET / is 200 "OK".
"""

import asyncio
import time

import aiohttp
from livekit import api
from livekit.protocol import models as lkmodels
from livekit.protocol import rtc as lkrtc

TEST_TIMEOUT_S = 40


async def _recv(ws, timeout=5.0) -> lkrtc.SignalResponse:
    m = await asyncio.wait_for(ws.receive(), timeout)
    assert m.type == aiohttp.WSMsgType.BINARY, m
    r = lkrtc.SignalResponse()
    r.ParseFromString(m.data)
    return r


async def test_signal_protocol(server, note):
    srv = server()

    async def body():
        tok = srv.token("raw", "proto-room")
        async with aiohttp.ClientSession() as s:
            url = f"{srv.http}/rtc?access_token={tok}&protocol=16&sdk=js&version=2.23.0"
            async with s.ws_connect(url) as ws:
                first = await _recv(ws)
                assert first.WhichOneof("message") == "join", first
                j = first.join
                assert j.server_info.version and j.server_version
                assert j.ping_interval == 5 and j.ping_timeout == 15
                assert j.subscriber_primary
                assert j.participant.sid.startswith("PA_") and j.room.sid.startswith("RM_")
                assert j.participant.identity == "raw"
                assert j.participant.permission.can_publish and j.participant.permission.can_subscribe
                note("join server_info.version", j.server_info.version)

                seen = {}
                while "refresh_token" not in seen or "offer" not in seen:
                    r = await _recv(ws)
                    seen[r.WhichOneof("message")] = r
                claims = api.TokenVerifier(srv.key, srv.secret).verify(seen["refresh_token"].refresh_token)
                assert claims.identity == "raw" and claims.video.room == "proto-room"
                assert "webrtc-datachannel" in seen["offer"].offer.sdp
                assert seen["offer"].offer.id >= 1
                note("refresh_token verified", True)

                now_ms = int(time.time() * 1000)
                req = lkrtc.SignalRequest(ping_req=lkrtc.Ping(timestamp=now_ms, rtt=0))
                await ws.send_bytes(req.SerializeToString())
                await ws.send_bytes(lkrtc.SignalRequest(ping=now_ms).SerializeToString())
                got = {}
                while len(got) < 2:
                    r = await _recv(ws)
                    if r.WhichOneof("message") in ("pong_resp", "pong"):
                        got[r.WhichOneof("message")] = r
                assert got["pong_resp"].pong_resp.last_ping_timestamp == now_ms
                assert got["pong_resp"].pong_resp.timestamp >= now_ms - 60_000
                assert got["pong"].pong > 0

                leave = lkrtc.SignalRequest(leave=lkrtc.LeaveRequest(reason=lkmodels.DisconnectReason.CLIENT_INITIATED))
                await ws.send_bytes(leave.SerializeToString())

            # v1 falls back cleanly.
            for path in ("/rtc/v1", "/rtc/v1/validate"):
                async with s.get(f"{srv.http}{path}?access_token={tok}") as r:
                    text = await r.text()
                    assert r.status == 404, (path, r.status)
                    assert "requested room does not exist" not in text
                    assert r.headers.get("Access-Control-Allow-Origin") == "*"
            # A resume is answered with a full-reconnect leave.
            url = f"{srv.http}/rtc?access_token={tok}&reconnect=1&sid=PA_unknown&protocol=16"
            async with s.ws_connect(url) as ws:
                r = await _recv(ws)
                assert r.WhichOneof("message") == "leave", r
                assert r.leave.reason == lkmodels.DisconnectReason.STATE_MISMATCH
                assert r.leave.action == lkrtc.LeaveRequest.Action.RECONNECT
            async with s.get(f"{srv.http}/rtc?access_token={tok}") as r:
                assert r.status == 404
            async with s.get(f"{srv.http}/") as r:
                assert r.status == 200 and (await r.text()) == "OK"

    await asyncio.wait_for(body(), TEST_TIMEOUT_S)
