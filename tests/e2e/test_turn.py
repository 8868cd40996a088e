"""Embedded TURN: LiveKit clients that may only use relay candidates get through our TURN server.

The server runs its embedded TURN (`turn.enabled`) and tells clients `force_relay`, so
livekit-client in Chromium uses `iceTransportPolicy: relay` with nothing but the ICE servers
from the JoinResponse (the browser has none of its own). A publisher and a subscriber, both in
Chromium, must exchange video through relay candidates:
  - over TURN/UDP (udp_port 3478), and
  - with the UDP listener switched off (udp_port 0), so only `turn:...?transport=tcp` is handed
    out and the browser reaches the TURN server over TCP.
`getStats` must show a selected candidate pair whose local candidate is `relay` with the
expected relay protocol, and the subscriber must decode frames. The same ICE servers (with the
WHIP participant's own credentials) come back as `Link` headers of a WHIP answer.
"""

import asyncio
import re

import pytest

from whip_client import make_offer, post_sdp

TEST_TIMEOUT_S = 80
WINDOW_S = 25.0


def _config(udp_port: int) -> str:
    return f"""
rtc:
  force_relay: true
turn:
  enabled: true
  udp_port: {udp_port}
  tcp_port: 3478
"""


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_browser_relay_only_through_embedded_turn(server, browser, note, transport):
    async def body():
        srv = server(config_yaml=_config(3478 if transport == "udp" else 0))
        room = f"turn-{transport}"
        pub = await browser(srv, "pub", room, publish=True)
        await pub.wait_event(lambda e: e["event"] == "published", 40, "publisher published")
        sub = await browser(srv, "sub", room, publish=False)
        await sub.wait_event(lambda e: e["event"] == "connected", 40, "subscriber connected")

        def decoded(e):
            return e["event"] == "stats" and any(
                r["identity"] == "pub" and r["kind"] == "video" and (r.get("framesDecoded") or 0) > 0
                for r in e.get("remote", [])
            )

        stats = await sub.wait_event(decoded, WINDOW_S, "subscriber decodes the publisher's video via TURN")
        r = next(r for r in stats["remote"] if r["identity"] == "pub" and r["kind"] == "video")
        note(f"{transport}: subscriber framesDecoded (first stats with frames)", r["framesDecoded"])

        for who, b, target in (("publisher", pub, "publisher"), ("subscriber", sub, "subscriber")):
            ack = await b.command({"cmd": "iceStats"})
            info = ack["result"][target]
            note(f"{transport}: {who} connection ICE", info)
            assert info is not None, f"{who}: no {target} connection"
            assert info["iceTransportPolicy"] == "relay", f"{who}: force_relay not applied: {info}"
            urls = [u for s in info["iceServers"] for u in (s["urls"] if isinstance(s["urls"], list) else [s["urls"]])]
            want = f"turn:{srv.host}:3478?transport={transport}"
            assert want in urls, f"{who}: {want} not among the JoinResponse ICE servers {urls}"
            if transport == "tcp":
                assert not any("transport=udp" in u for u in urls), urls
            users = {s["username"] for s in info["iceServers"]}
            ident = "pub" if who == "publisher" else "sub"
            assert any(u and re.fullmatch(rf"\d+:{ident}", u) for u in users), \
                f"{who}: REST credentials for {ident!r} expected, got {users}"
            pair = info["pair"]
            assert pair and pair["state"] == "succeeded", f"{who}: no selected candidate pair: {info}"
            assert pair["local"]["candidateType"] == "relay", f"{who}: local candidate is not relay: {pair}"
            assert pair["local"]["relayProtocol"] == transport, f"{who}: relay protocol: {pair}"
            assert pair["bytesReceived"] > 0 and pair["bytesSent"] > 0, pair

        # WHIP answers carry the same ICE servers, with the WHIP participant's credentials.
        offer = await make_offer(audio=False, video=True, send=True)
        res = await post_sdp(f"{srv.http}/whip/v1", offer, token=srv.token("whip-cam", room))
        assert res.status == 201, res.describe()
        links = res.header_all("Link")
        note(f"{transport}: WHIP Link headers", links)
        assert any(f"<turn:{srv.host}:3478?transport=tcp>" in l and 'rel="ice-server"' in l
                   and re.search(r'username="\d+:whip-cam"', l) for l in links), links

    await asyncio.wait_for(body(), TEST_TIMEOUT_S)
