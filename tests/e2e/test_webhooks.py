"""(h) LiveKit webhooks: Switchyard POSTs protojson `WebhookEvent`s to `webhook.urls`, signed
with `webhook.api_key`, from a durable outbox.

The receiver is an aiohttp server on 10.200.0.2 (the client side of the test namespace). It checks
every request it gets, whatever it answers: `Content-Type: application/webhook+json`, and the
body + `Authorization` header accepted by BOTH server SDKs' `WebhookReceiver` (Python
`livekit.api.WebhookReceiver(TokenVerifier(key, secret)).receive(body, auth)` in process, and
livekit-server-sdk's `WebhookReceiver.receive(body, auth)` in a Node process,
js/webhook_verifier.mjs), with the same event, id, room and participant read by both. Only then
does it answer (200, or 503 while it plays "down").

Test steps wait for the server's state through the RoomService API (ListParticipants state
ACTIVE, a track listed, a participant or room gone), so each room's events have one causal order.

  - test_webhooks_one_room_life: room.departure_timeout 2 s. alice joins and publishes a video
    track, bob joins, bob leaves, alice leaves; the room closes. The room's events are exactly
    room_started, participant_joined(alice), track_published(alice's track),
    participant_joined(bob), participant_left(bob), track_unpublished(alice's track),
    participant_left(alice), room_finished, in that order, with unique EV_ ids, createdAt set,
    the room sid the clients saw, the right identities/sids, participant states ACTIVE
    (joined) / DISCONNECTED + CLIENT_INITIATED (left).
  - test_webhooks_survive_outage_and_restart: the receiver answers 503 for 30 s. Meanwhile two
    rooms live concurrently (join, publish, join, leave, ...), the server is restarted once
    (SIGTERM -> it disconnects the remaining publisher with SERVER_SHUTDOWN and closes its
    room -> same SQLite file on the next start), and new participants join both rooms (new room
    sids). After the outage one more participant leaves. Every event from before and after the
    restart arrives within a bounded wait, in order per room, the pre-restart ones with the ids
    and createdAt they had in the outbox when the server stopped; no event arrives twice under
    different ids (same-id duplicates are allowed: at-least-once).
"""

from __future__ import annotations

import asyncio
import json
import socket
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import aiohttp
from aiohttp import web
from livekit import api, rtc
from livekit.protocol.models import DisconnectReason

from conftest import _safe_name
from e2e_helpers import API_KEY, API_SECRET, ARTIFACTS, JS_DIR, NODE, poll, publish_synthetic

RECEIVER_IP = "10.200.0.2"
CONTENT_TYPE = "application/webhook+json"
ACTIVE = api.ParticipantInfo.State.ACTIVE
DISCONNECTED = api.ParticipantInfo.State.DISCONNECTED


def _config(url: str) -> str:
    return (
        "webhook:\n"
        f"  api_key: {API_KEY}\n"
        "  urls:\n"
        f"    - {url}\n"
        "room:\n"
        "  departure_timeout: 2\n"
    )


# --------------------------------------------------------------------------------------------
# Node livekit-server-sdk WebhookReceiver


class NodeVerifier:
    """js/webhook_verifier.mjs: one {"seq","body","auth"} line in, one verdict line out."""

    def __init__(self, key: str, secret: str) -> None:
        self.key, self.secret = key, secret
        self.proc: Optional[asyncio.subprocess.Process] = None
        self._seq = 0
        self._waiting: dict[int, asyncio.Future] = {}
        self._reader: Optional[asyncio.Task] = None
        self._ready = asyncio.get_running_loop().create_future()

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            NODE, str(JS_DIR / "webhook_verifier.mjs"), "--key", self.key, "--secret", self.secret,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=str(JS_DIR),
        )
        self._reader = asyncio.ensure_future(self._read())
        await asyncio.wait_for(self._ready, 15)

    async def _read(self) -> None:
        assert self.proc and self.proc.stdout
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                break
            msg = json.loads(line)
            if msg.get("event") == "ready" and not self._ready.done():
                self._ready.set_result(msg)
                continue
            fut = self._waiting.pop(msg.get("seq"), None)
            if fut and not fut.done():
                fut.set_result(msg)
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(RuntimeError("webhook_verifier.mjs exited"))
        if not self._ready.done():
            self._ready.set_exception(RuntimeError("webhook_verifier.mjs exited before ready"))

    async def verify(self, body: str, auth: str) -> dict:
        assert self.proc and self.proc.stdin
        self._seq += 1
        seq = self._seq
        fut = asyncio.get_running_loop().create_future()
        self._waiting[seq] = fut
        self.proc.stdin.write((json.dumps({"seq": seq, "body": body, "auth": auth}) + "\n").encode())
        await self.proc.stdin.drain()
        return await asyncio.wait_for(fut, 10)

    async def close(self) -> None:
        if self.proc and self.proc.returncode is None:
            try:
                assert self.proc.stdin
                self.proc.stdin.write(b'{"op":"quit"}\n')
                await self.proc.stdin.drain()
                self.proc.stdin.close()
                await asyncio.wait_for(self.proc.wait(), 5)
            except Exception:
                self.proc.kill()
                await self.proc.wait()
        if self._reader:
            self._reader.cancel()


# --------------------------------------------------------------------------------------------
# The receiver


@dataclass
class Hook:
    """One request the receiver got (verified by both SDKs)."""

    event: str
    id: str
    created_at: int
    room: str
    room_sid: str
    identity: str
    participant_sid: str
    state: int
    reason: int
    track_sid: str
    status: int  # what the receiver answered
    mono: float
    wall: float

    def key(self) -> tuple:
        """What the event is about: two different ids must never share this."""
        return (self.event, self.room_sid, self.participant_sid, self.track_sid)

    def short(self) -> str:
        who = f" {self.identity}" if self.identity else ""
        tr = f" {self.track_sid}" if self.track_sid else ""
        reason = f" ({DisconnectReason.Name(self.reason)})" if self.reason else ""
        return f"{self.event} room={self.room}/{self.room_sid}{who}{tr}{reason} id={self.id} createdAt={self.created_at}"


class WebhookSink:
    """aiohttp receiver at http://10.200.0.2:<free port>/hook."""

    def __init__(self, key: str, secret: str) -> None:
        self.py_receiver = api.WebhookReceiver(api.TokenVerifier(key, secret))
        self.node = NodeVerifier(key, secret)
        self.up = True  # False: answer 503 (after verifying)
        self.requests: list[Hook] = []  # every verified request, in arrival order
        self.errors: list[str] = []
        self.port = 0
        self._runner: Optional[web.AppRunner] = None

    @property
    def url(self) -> str:
        return f"http://{RECEIVER_IP}:{self.port}/hook"

    def delivered(self) -> list[Hook]:
        """Requests answered 200, in arrival order (same-id duplicates included)."""
        return [h for h in self.requests if h.status == 200]

    async def start(self) -> None:
        await self.node.start()
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((RECEIVER_IP, 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def close(self) -> None:
        if self._runner:
            await self._runner.cleanup()
        await self.node.close()

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        auth = request.headers.get("Authorization", "")
        ctype = request.headers.get("Content-Type")
        problems = []
        if ctype != CONTENT_TYPE:
            problems.append(f"Content-Type {ctype!r}, want {CONTENT_TYPE!r}")
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            self.errors.append(f"body is not UTF-8: {e}: {raw[:200]!r}")
            return web.Response(status=400)
        ev = None
        try:
            ev = self.py_receiver.receive(body, auth)
        except Exception as e:  # noqa: BLE001 - any rejection is a failure to report
            problems.append(f"Python WebhookReceiver rejected it: {type(e).__name__}: {e}")
        try:
            nv = await self.node.verify(body, auth)
        except Exception as e:  # noqa: BLE001
            nv = {"ok": False, "error": f"verifier failed: {e}"}
        if not nv.get("ok"):
            problems.append(f"Node WebhookReceiver rejected it: {nv.get('error')}")
        elif ev is not None:
            py_view = (ev.event, ev.id, ev.created_at, ev.room.name, ev.room.sid,
                       ev.participant.identity if ev.HasField("participant") else None)
            node_view = (nv["event"], nv["id"], nv["createdAt"], (nv["room"] or {}).get("name", ""),
                         (nv["room"] or {}).get("sid", ""), (nv["participant"] or {}).get("identity"))
            if py_view != node_view:
                problems.append(f"SDKs disagree: python {py_view} node {node_view}")
        if problems or ev is None:
            self.errors.append(f"{'; '.join(problems)}: body={body[:300]!r} auth={auth[:60]!r}")
            return web.Response(status=401, text="; ".join(problems))
        status = 200 if self.up else 503
        p = ev.participant
        self.requests.append(Hook(
            event=ev.event, id=ev.id, created_at=ev.created_at, room=ev.room.name, room_sid=ev.room.sid,
            identity=p.identity, participant_sid=p.sid, state=p.state, reason=p.disconnect_reason,
            track_sid=ev.track.sid, status=status, mono=time.monotonic(), wall=time.time(),
        ))
        return web.Response(status=status, text="ok" if status == 200 else "down")


# --------------------------------------------------------------------------------------------
# Waiting on the server's state through RoomService


class ServerState:
    def __init__(self, srv) -> None:
        self.api = api.LiveKitAPI(srv.http, srv.key, srv.secret)

    async def aclose(self) -> None:
        await self.api.aclose()

    async def participants(self, room: str) -> Optional[dict[str, Any]]:
        """identity -> ParticipantInfo, or None if the room does not exist."""
        try:
            parts = (await self.api.room.list_participants(api.ListParticipantsRequest(room=room))).participants
        except api.TwirpError as e:
            if e.code == "not_found":
                return None
            raise
        return {p.identity: p for p in parts}

    async def wait(self, room: str, cond: Callable[[Optional[dict]], bool], what: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            try:
                last = await self.participants(room)
                if cond(last):
                    return
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
                last = e
            if time.monotonic() >= deadline:
                raise AssertionError(f"{room}: timed out after {timeout}s waiting for {what}; last: {last}")
            await asyncio.sleep(0.1)

    async def wait_active(self, room: str, identity: str) -> None:
        await self.wait(room, lambda m: bool(m) and identity in m and m[identity].state == ACTIVE,
                        f"{identity} ACTIVE")

    async def wait_track(self, room: str, identity: str, track_sid: str) -> None:
        await self.wait(room, lambda m: bool(m) and identity in m
                        and any(t.sid == track_sid for t in m[identity].tracks),
                        f"{identity}'s track {track_sid} listed")

    async def wait_gone(self, room: str, identity: str) -> None:
        await self.wait(room, lambda m: m is None or identity not in m, f"{identity} gone")

    async def wait_room_closed(self, room: str, timeout: float = 15) -> None:
        await self.wait(room, lambda m: m is None, "room closed", timeout)


# --------------------------------------------------------------------------------------------
# Expected sequences


@dataclass
class Exp:
    event: str
    room_sid: str
    identity: str = ""
    participant_sid: str = ""
    track_sid: str = ""
    reason: Optional[int] = None  # participant_left: DisconnectReason

    def short(self) -> str:
        return f"{self.event} {self.room_sid} {self.identity} {self.track_sid}".rstrip()


def _mismatch(h: Hook, e: Exp) -> list[str]:
    bad = []
    if h.event != e.event:
        return [f"event {h.event}, want {e.event}"]
    if h.room_sid != e.room_sid:
        bad.append(f"room sid {h.room_sid}, want {e.room_sid}")
    if h.identity != e.identity:
        bad.append(f"identity {h.identity!r}, want {e.identity!r}")
    if e.participant_sid and h.participant_sid != e.participant_sid:
        bad.append(f"participant sid {h.participant_sid}, want {e.participant_sid}")
    if h.track_sid != e.track_sid:
        bad.append(f"track sid {h.track_sid!r}, want {e.track_sid!r}")
    if e.event == "participant_joined" and h.state != ACTIVE:
        bad.append(f"participant state {api.ParticipantInfo.State.Name(h.state)}, want ACTIVE")
    if e.event in ("participant_left", "participant_connection_aborted") and h.state != DISCONNECTED:
        bad.append(f"participant state {api.ParticipantInfo.State.Name(h.state)}, want DISCONNECTED")
    if e.reason is not None and h.reason != e.reason:
        bad.append(f"disconnect reason {DisconnectReason.Name(h.reason)}, want {DisconnectReason.Name(e.reason)}")
    return bad


def first_per_id(hooks: list[Hook]) -> list[Hook]:
    seen: set[str] = set()
    out = []
    for h in hooks:
        if h.id not in seen:
            seen.add(h.id)
            out.append(h)
    return out


def check_sequence(room: str, got: list[Hook], want: list[Exp]) -> None:
    """`got` (first delivery of each id, in arrival order) must be exactly `want`."""
    problems = []
    for i in range(max(len(got), len(want))):
        g = got[i] if i < len(got) else None
        w = want[i] if i < len(want) else None
        if g is None:
            problems.append(f"#{i}: missing {w.short()}")
        elif w is None:
            problems.append(f"#{i}: unexpected {g.short()}")
        else:
            problems += [f"#{i} ({w.event}): {m}" for m in _mismatch(g, w)]
    if problems:
        raise AssertionError(
            f"room {room}: webhook sequence differs:\n  " + "\n  ".join(problems)
            + "\ngot:\n  " + "\n  ".join(h.short() for h in got)
            + "\nwant:\n  " + "\n  ".join(e.short() for e in want)
        )


def check_ids(hooks: list[Hook], now_wall: float) -> None:
    ids = [h.id for h in first_per_id(hooks)]
    assert len(ids) == len(set(ids))
    for h in hooks:
        assert h.id.startswith("EV_") and len(h.id) > 3, f"bad event id {h.id!r}: {h.short()}"
        assert 0 < h.created_at <= now_wall + 2, f"createdAt {h.created_at} not set/plausible: {h.short()}"
    # Two different ids for the same happening would be a duplicate that receivers cannot
    # de-duplicate.
    by_key: dict[tuple, str] = {}
    for h in first_per_id(hooks):
        other = by_key.setdefault(h.key(), h.id)
        assert other == h.id, f"the same event was delivered under two ids {other} and {h.id}: {h.short()}"
    # A redelivered id must carry the same event.
    first = {h.id: h for h in first_per_id(hooks)}
    for h in hooks:
        f = first[h.id]
        assert (h.key(), h.created_at) == (f.key(), f.created_at), f"id {h.id} reused: {f.short()} / {h.short()}"


# --------------------------------------------------------------------------------------------
# 1. One room's life, receiver up


TEST1_TIMEOUT_S = 60
ROOM1 = "wh-life"


async def test_webhooks_one_room_life(server, lk, note):
    sink = WebhookSink(API_KEY, API_SECRET)

    async def body():
        srv = server(config_yaml=_config(sink.url))
        st = ServerState(srv)
        try:
            a = await lk(srv, "alice", ROOM1)
            room_sid = await asyncio.wait_for(a.room.sid, 5)
            await st.wait_active(ROOM1, "alice")
            video, _ = await publish_synthetic(a.room, video=True, audio=False)
            a.closers.append(video.aclose)
            tsid = video.track.sid
            await st.wait_track(ROOM1, "alice", tsid)
            b = await lk(srv, "bob", ROOM1)
            await st.wait_active(ROOM1, "bob")
            assert await asyncio.wait_for(b.room.sid, 5) == room_sid
            await b.disconnect()
            await st.wait_gone(ROOM1, "bob")
            await a.disconnect()
            t_left = time.monotonic()
            await st.wait_room_closed(ROOM1)
            note("room closed after alice left (s)", round(time.monotonic() - t_left, 2))

            try:
                await poll(lambda: any(h.event == "room_finished" for h in sink.delivered()), 10)
            except asyncio.TimeoutError:
                raise AssertionError(
                    "no room_finished webhook within 10 s of the room closing; receiver errors:\n"
                    + "\n".join(sink.errors) + "\naccepted: " + "; ".join(h.short() for h in sink.delivered())
                ) from None
            note("room_finished webhook after alice left (s)",
                 round(next(h.mono for h in sink.delivered() if h.event == "room_finished") - t_left, 2))
            await asyncio.sleep(1.5)  # anything after room_finished would be a bug

            assert not sink.errors, "receiver rejected requests:\n" + "\n".join(sink.errors)
            hooks = sink.delivered()
            for i, h in enumerate(hooks):
                note(f"webhook {i}", h.short())
            assert len(hooks) == len(sink.requests), "the receiver answered 200 to everything"
            assert {h.room for h in hooks} == {ROOM1}, [h.short() for h in hooks]
            check_ids(hooks, time.time())
            dups = len(hooks) - len(first_per_id(hooks))
            note("same-id redeliveries", dups)
            a_sid, b_sid = a.room.local_participant.sid, b.room.local_participant.sid
            cli = DisconnectReason.CLIENT_INITIATED
            check_sequence(ROOM1, first_per_id(hooks), [
                Exp("room_started", room_sid),
                Exp("participant_joined", room_sid, "alice", a_sid),
                Exp("track_published", room_sid, "alice", a_sid, tsid),
                Exp("participant_joined", room_sid, "bob", b_sid),
                Exp("participant_left", room_sid, "bob", b_sid, reason=cli),
                Exp("track_unpublished", room_sid, "alice", a_sid, tsid),
                Exp("participant_left", room_sid, "alice", a_sid, reason=cli),
                Exp("room_finished", room_sid),
            ])
        finally:
            await st.aclose()

    await sink.start()
    try:
        await asyncio.wait_for(body(), TEST1_TIMEOUT_S)
    finally:
        await sink.close()


# --------------------------------------------------------------------------------------------
# 2. Receiver outage + server restart


TEST2_TIMEOUT_S = 150
OUTAGE_S = 30.0
RECOVERY_BUDGET_S = 80.0  # retries back off 1, 2, 4, ... 32 s: the next one is <= ~32 s away
R1, R2 = "wh-outage-1", "wh-outage-2"


OUTBOX_SQL = ("SELECT seq, id, queue_key, attempts, next_attempt_at_ms, created_at_ms, last_error, body "
              "FROM webhook_outbox ORDER BY seq")


def _outbox_rows_postgres(url: str) -> list[tuple]:
    """Reads the outbox through psql (the URL's Unix socket works inside the test namespace)."""
    import subprocess

    sql = ("SELECT json_agg(json_build_array(seq, id, queue_key, attempts, next_attempt_at_ms, "
           "created_at_ms, last_error, body) ORDER BY seq) FROM webhook_outbox")
    out = subprocess.run(["psql", url, "-Atc", sql], capture_output=True, text=True, timeout=20,
                         cwd="/", check=True).stdout.strip()
    return [tuple(r) for r in json.loads(out)] if out else []


def outbox_rows(db: Path) -> list[dict]:
    """The server's webhook_outbox table (read while the server is stopped or running), from the
    per-test SQLite file or, when the suite runs on PostgreSQL (DATABASE_URL), from there."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        rows = _outbox_rows_postgres(url)
    else:
        con = sqlite3.connect(str(db), timeout=5)
        try:
            rows = con.execute(OUTBOX_SQL).fetchall()
        finally:
            con.close()
    out = []
    for seq, id_, qk, attempts, nxt, created, err, body in rows:
        b = json.loads(body)
        out.append({"seq": seq, "id": id_, "queue": qk, "attempts": attempts, "next_ms": nxt,
                    "created_ms": created, "error": err, "event": b.get("event"),
                    "identity": (b.get("participant") or {}).get("identity", ""),
                    "createdAt": int(b.get("createdAt", 0))})
    return out


async def test_webhooks_survive_outage_and_restart(server, lk, note, request):
    sink = WebhookSink(API_KEY, API_SECRET)
    db = ARTIFACTS / f"{_safe_name(request.node.nodeid)}.db"
    cli = DisconnectReason.CLIENT_INITIATED

    async def life_r1(st: ServerState) -> dict:
        """alice1 joins + publishes, bob1 joins and leaves, alice1 leaves, the room closes."""
        a = await lk(srv, "alice1", R1)
        sid = await asyncio.wait_for(a.room.sid, 5)
        await st.wait_active(R1, "alice1")
        video, _ = await publish_synthetic(a.room, video=True, audio=False)
        a.closers.append(video.aclose)
        tsid = video.track.sid
        await st.wait_track(R1, "alice1", tsid)
        b = await lk(srv, "bob1", R1)
        await st.wait_active(R1, "bob1")
        await b.disconnect()
        await st.wait_gone(R1, "bob1")
        await a.disconnect()
        await st.wait_gone(R1, "alice1")
        await st.wait_room_closed(R1)
        asid, bsid = a.room.local_participant.sid, b.room.local_participant.sid
        return {"sid": sid, "expected": [
            Exp("room_started", sid),
            Exp("participant_joined", sid, "alice1", asid),
            Exp("track_published", sid, "alice1", asid, tsid),
            Exp("participant_joined", sid, "bob1", bsid),
            Exp("participant_left", sid, "bob1", bsid, reason=cli),
            Exp("track_unpublished", sid, "alice1", asid, tsid),
            Exp("participant_left", sid, "alice1", asid, reason=cli),
            Exp("room_finished", sid),
        ]}

    async def life_r2(st: ServerState) -> dict:
        """alice2 joins + publishes, bob2 joins and leaves; alice2 stays until the restart."""
        a = await lk(srv, "alice2", R2)
        sid = await asyncio.wait_for(a.room.sid, 5)
        await st.wait_active(R2, "alice2")
        video, _ = await publish_synthetic(a.room, video=True, audio=False)
        a.closers.append(video.aclose)
        tsid = video.track.sid
        await st.wait_track(R2, "alice2", tsid)
        b = await lk(srv, "bob2", R2)
        await st.wait_active(R2, "bob2")
        await b.disconnect()
        await st.wait_gone(R2, "bob2")
        asid, bsid = a.room.local_participant.sid, b.room.local_participant.sid
        return {"sid": sid, "alice": a, "expected": [
            Exp("room_started", sid),
            Exp("participant_joined", sid, "alice2", asid),
            Exp("track_published", sid, "alice2", asid, tsid),
            Exp("participant_joined", sid, "bob2", bsid),
            Exp("participant_left", sid, "bob2", bsid, reason=cli),
            # the server's shutdown, while alice2 is still in the room:
            Exp("track_unpublished", sid, "alice2", asid, tsid),
            Exp("participant_left", sid, "alice2", asid, reason=DisconnectReason.SERVER_SHUTDOWN),
            Exp("room_finished", sid),
        ]}

    srv = None

    async def body():
        nonlocal srv
        config = _config(sink.url)
        sink.up = False
        t_down = time.monotonic()
        srv = await asyncio.to_thread(server, config)
        st = ServerState(srv)
        try:
            r1, r2 = await asyncio.gather(life_r1(st), life_r2(st))
        finally:
            await st.aclose()
        alice2 = r2["alice"]
        shutdown_seen: list = []
        alice2.room.on("disconnected", lambda reason: shutdown_seen.append(reason))

        # -- restart: SIGTERM, wait for the exit, then start again on the same database
        t_stop_wall = time.time()
        t_stop = time.monotonic()
        note("events generated before the restart (s after the outage began)", round(t_stop - t_down, 1))
        await asyncio.to_thread(srv.stop)
        rc = srv.proc.returncode
        note("server exit status after SIGTERM / time to exit (s)", (rc, round(time.monotonic() - t_stop, 2)))
        assert rc == 0, f"server did not exit cleanly on SIGTERM (status {rc}; -9 = killed after 5 s)"
        await poll(lambda: shutdown_seen, 5)
        note("alice2 disconnect reason at shutdown", rtc.DisconnectReason.Name(shutdown_seen[0]))
        await alice2.disconnect()  # no reconnection attempt into the next server
        rows = outbox_rows(db)
        note("outbox rows when the server had stopped", len(rows))
        for r in rows:
            note(f"outbox at stop seq {r['seq']}",
                 f"{r['queue']} {r['event']} {r['identity']} id={r['id']} attempts={r['attempts']} "
                 f"last_error={r['error']}")
        pre = r1["expected"] + r2["expected"]
        assert sink.delivered() == [], "nothing may be accepted during the outage"
        missing_at_stop = [e.short() for e in pre if not any(
            r["event"] == e.event and r["identity"] == e.identity and r["queue"] in (R1, R2) for r in rows)]
        assert len(rows) == len(pre) and not missing_at_stop, (
            f"the outbox holds {len(rows)} rows at shutdown, {len(pre)} events happened; "
            f"missing: {missing_at_stop}")
        ids_at_stop = {r["id"]: r for r in rows}

        srv = await asyncio.to_thread(server, config)
        st = ServerState(srv)
        try:
            c = await lk(srv, "carol1", R1)
            d = await lk(srv, "dave2", R2)
            sid1b = await asyncio.wait_for(c.room.sid, 5)
            sid2b = await asyncio.wait_for(d.room.sid, 5)
            assert sid1b not in (r1["sid"],) and sid2b != r2["sid"], "rooms re-created with new sids"
            await st.wait_active(R1, "carol1")
            await st.wait_active(R2, "dave2")
            await c.disconnect()
            await st.wait_gone(R1, "carol1")
            await st.wait_room_closed(R1)

            # -- the receiver comes back
            remaining = OUTAGE_S - (time.monotonic() - t_down)
            note("outage: actions done after (s)", round(time.monotonic() - t_down, 1))
            if remaining > 0:
                await asyncio.sleep(remaining)
            answered_503 = len(sink.requests)
            sink.up = True
            t_up = time.monotonic()
            note("receiver down for (s) / requests answered 503", (round(t_up - t_down, 1), answered_503))
            assert answered_503 > 0, "the server never tried to deliver during the outage"
            for room in (R1, R2):
                tries = [round(h.mono - t_down, 1) for h in sink.requests if h.room == room and h.status == 503]
                note(f"{room}: 503 attempts (s after outage began)", tries)

            # one more event after the recovery
            await d.disconnect()
            await st.wait_gone(R2, "dave2")
            await st.wait_room_closed(R2)
        finally:
            await st.aclose()

        c_sid, d_sid = c.room.local_participant.sid, d.room.local_participant.sid
        want = {
            R1: r1["expected"] + [
                Exp("room_started", sid1b),
                Exp("participant_joined", sid1b, "carol1", c_sid),
                Exp("participant_left", sid1b, "carol1", c_sid, reason=cli),
                Exp("room_finished", sid1b),
            ],
            R2: r2["expected"] + [
                Exp("room_started", sid2b),
                Exp("participant_joined", sid2b, "dave2", d_sid),
                Exp("participant_left", sid2b, "dave2", d_sid, reason=cli),
                Exp("room_finished", sid2b),
            ],
        }
        total = sum(len(v) for v in want.values())

        def all_in() -> bool:
            return len({h.id for h in sink.delivered()}) >= total

        deadline = min(t_up + RECOVERY_BUDGET_S, t_start + TEST2_TIMEOUT_S - 10)
        while not all_in() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        delivered = sink.delivered()
        uniq = first_per_id(delivered)
        note("all events delivered after the receiver came back (s)",
             round(max(h.mono for h in uniq) - t_up, 1) if uniq else None)
        for i, h in enumerate(delivered):
            note(f"delivered {i:02d}", h.short())
        note("deliveries / distinct ids / expected", (len(delivered), len(uniq), total))
        if not all_in():
            left = outbox_rows(db)
            raise AssertionError(
                f"only {len(uniq)} of {total} events delivered {round(time.monotonic() - t_up, 1)} s after "
                f"the receiver came back; outbox now: "
                + "; ".join(f"{r['queue']} {r['event']} {r['identity']} attempts={r['attempts']} "
                            f"next_in_ms={r['next_ms'] - int(time.time() * 1000)} error={r['error']}"
                            for r in left))
        await asyncio.sleep(1.5)  # late extras would show up here
        delivered = sink.delivered()
        assert not sink.errors, "receiver rejected requests:\n" + "\n".join(sink.errors)
        check_ids(delivered, time.time())
        for room in (R1, R2):
            check_sequence(room, first_per_id([h for h in delivered if h.room == room]), want[room])
        assert {h.room for h in delivered} == {R1, R2}
        # The pre-restart events kept the id and createdAt they had in the outbox at shutdown.
        for h in first_per_id(delivered):
            if h.id in ids_at_stop:
                assert h.created_at == ids_at_stop[h.id]["createdAt"] and h.created_at <= t_stop_wall + 1, h.short()
        pre_ids = {h.id for h in first_per_id(delivered)} & set(ids_at_stop)
        assert pre_ids == set(ids_at_stop), "pre-restart outbox ids were not all delivered under those ids"
        note("same-id redeliveries", len(delivered) - len(uniq))
        assert outbox_rows(db) == [], "outbox not empty after every delivery"

    t_start = time.monotonic()
    await sink.start()
    try:
        await asyncio.wait_for(body(), TEST2_TIMEOUT_S)
    finally:
        await sink.close()
