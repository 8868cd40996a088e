"""Fixtures for the Switchyard end-to-end tests (run them through scripts/e2e.sh).

Each test gets a fresh server process (fixed ports: HTTP/WS 7880, RTC UDP 7882) on 10.200.0.1,
an address that only exists inside the private network namespace set up by scripts/e2e.sh.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

import pytest
from livekit import api, rtc

from e2e_helpers import (
    API_KEY,
    API_SECRET,
    ARTIFACTS,
    CONNECT_TIMEOUT_S,
    HTTP_PORT,
    ROOT,
    SERVER_IP,
    BrowserClient,
    MediaCounter,
    RoomRecorder,
)

SERVER_START_TIMEOUT_S = 20.0
LOG_TAIL_LINES = 60


def _bin_path() -> Path:
    return Path(os.environ.get("SWITCHYARD_BIN", str(ROOT / "target" / "debug" / "switchyard")))


def _safe_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1])[:120]


def _tail(path: Path, n: int = LOG_TAIL_LINES) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return "\n".join(lines[-n:])


# No proxies, ever: the server lives at an address that only exists in our namespace.
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _register_log(request: pytest.FixtureRequest, title: str, path: Path) -> None:
    logs = getattr(request.node, "_e2e_logs", None)
    if logs is None:
        logs = []
        request.node._e2e_logs = logs
    logs.append((title, path))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, append the tail of the server/browser logs of that test to its report."""
    rep = yield
    if rep.failed:
        for title, path in getattr(item, "_e2e_logs", []):
            rep.sections.append((f"{title} (tail of {path})", _tail(path)))
    return rep


def pytest_terminal_summary(terminalreporter):
    """Show what every test measured (frames received etc.), whatever -s/-r options are used."""
    lines = []
    for key in ("passed", "failed"):
        for rep in terminalreporter.stats.get(key, []):
            if getattr(rep, "when", None) != "call":
                continue
            props = [(k, v) for k, v in rep.user_properties if k.startswith("e2e:")]
            for k, v in props:
                lines.append(f"{rep.nodeid} [{rep.outcome}] {k[4:]}: {v}")
    if lines:
        terminalreporter.section("switchyard e2e measurements")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def note(request):
    """note("video frames", 123): printed now and in the final "switchyard e2e measurements" section."""

    def _note(what: str, value) -> None:
        print(f"[e2e] {what}: {value}", flush=True)
        request.node.user_properties.append((f"e2e:{what}", value))

    return _note


@pytest.fixture(scope="session", autouse=True)
def _inside_test_namespace():
    """Refuse to run unless 10.200.0.1 is a local address (i.e. inside scripts/e2e.sh's namespace),
    so that no test traffic can ever leave this machine."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((SERVER_IP, 0))
    except OSError:
        pytest.exit(
            f"{SERVER_IP} is not a local address: run the e2e tests through scripts/e2e.sh "
            "(it creates the private network namespace they need)",
            returncode=3,
        )
    finally:
        s.close()


class SwitchyardServer:
    def __init__(self, proc: subprocess.Popen, log_path: Path, cmd: list[str]) -> None:
        self.proc = proc
        self.log_path = log_path
        self.cmd = cmd
        self.host = SERVER_IP
        self.url = f"ws://{SERVER_IP}:{HTTP_PORT}"
        self.http = f"http://{SERVER_IP}:{HTTP_PORT}"
        self.key = API_KEY
        self.secret = API_SECRET

    def token(
        self,
        identity: str,
        room: str,
        *,
        name: Optional[str] = None,
        ttl: Optional[datetime.timedelta] = None,
        **grant_overrides,
    ) -> str:
        """A join token (roomJoin for `room`); keyword arguments override VideoGrants fields."""
        grants = {"room_join": True, "room": room}
        grants.update(grant_overrides)
        at = api.AccessToken(self.key, self.secret).with_identity(identity).with_name(name or identity)
        at = at.with_grants(api.VideoGrants(**grants))
        if ttl is not None:
            at = at.with_ttl(ttl)
        return at.to_jwt()

    def log_tail(self, n: int = LOG_TAIL_LINES) -> str:
        return _tail(self.log_path, n)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def server(request):
    """Factory: `srv = server(config_yaml=None)` starts a fresh Switchyard and waits until it is
    healthy (GET / -> 200). Stopped at teardown (SIGTERM, SIGKILL after 5 s)."""
    started: list[SwitchyardServer] = []

    def start(config_yaml: Optional[str] = None, extra_args: tuple[str, ...] = ()) -> SwitchyardServer:
        binary = _bin_path()
        if not (binary.is_file() and os.access(binary, os.X_OK)):
            pytest.fail(f"server binary {binary} not found (build it, or set SWITCHYARD_BIN)")
        if _port_open(SERVER_IP, HTTP_PORT):
            pytest.fail(f"something is already listening on {SERVER_IP}:{HTTP_PORT}")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        log_path = ARTIFACTS / f"{_safe_name(request.node.nodeid)}-server{len(started) or ''}.log"
        cmd = [
            str(binary),
            "--dev",
            "--bind", SERVER_IP,
            "--node-ip", SERVER_IP,
            "--keys", f"{API_KEY}: {API_SECRET}",
        ]
        if config_yaml is not None:
            cmd += ["--config-body", config_yaml]
        cmd += list(extra_args)
        env = dict(os.environ)
        # Each test gets its own SQLite database (kept across restarts within the test).
        db_path = ARTIFACTS / f"{_safe_name(request.node.nodeid)}.db"
        if not started:
            for suffix in ("", "-wal", "-shm"):
                Path(str(db_path) + suffix).unlink(missing_ok=True)
        env.setdefault("DATABASE_URL", f"sqlite://{db_path}?mode=rwc")
        env.setdefault("RUST_LOG", "info")
        env.setdefault("RUST_BACKTRACE", "1")
        logf = open(log_path, "wb")
        logf.write(("$ " + " ".join(cmd) + "\n").encode())
        logf.flush()
        proc = subprocess.Popen(
            cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(ROOT), env=env
        )
        logf.close()
        srv = SwitchyardServer(proc, log_path, cmd)
        started.append(srv)
        _register_log(request, "switchyard server log", log_path)

        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        last_err = ""
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited early with code {proc.returncode}:\n{srv.log_tail()}")
            try:
                with _http.open(srv.http + "/", timeout=1) as r:
                    if r.status == 200:
                        break
                    last_err = f"HTTP {r.status}"
            except urllib.error.HTTPError as e:
                last_err = f"HTTP {e.code}"
            except (urllib.error.URLError, OSError) as e:
                last_err = str(e)
            if time.monotonic() > deadline:
                srv.stop()
                pytest.fail(
                    f"server not healthy after {SERVER_START_TIMEOUT_S}s (last: {last_err}):\n{srv.log_tail()}"
                )
            time.sleep(0.1)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
async def lk(server):
    """Factory for Python rtc participants, disconnected at teardown (before the server stops).

        p = await lk(srv, "alice", "room1", single_peer_connection=False, counter=True)
        p.room, p.recorder (RoomRecorder), p.counter (MediaCounter or None)
    """
    made: list[Participant] = []

    async def join(srv: SwitchyardServer, identity: str, room_name: str, *, token: Optional[str] = None,
                   single_peer_connection: Optional[bool] = None, auto_subscribe: bool = True,
                   counter: bool = False, timeout: float = 20.0) -> "Participant":
        room = rtc.Room()
        p = Participant(identity, room, RoomRecorder(room), MediaCounter(room) if counter else None)
        made.append(p)
        opts = rtc.RoomOptions(
            auto_subscribe=auto_subscribe,
            connect_timeout=CONNECT_TIMEOUT_S,
            single_peer_connection=single_peer_connection,
        )
        await asyncio.wait_for(room.connect(srv.url, token or srv.token(identity, room_name), opts), timeout)
        return p

    yield join
    for p in made:
        await p.aclose()


class Participant:
    def __init__(self, identity: str, room: rtc.Room, recorder: RoomRecorder,
                 counter: Optional[MediaCounter]) -> None:
        self.identity = identity
        self.room = room
        self.recorder = recorder
        self.counter = counter
        self.closers: list = []  # extra async closers (synthetic sources)

    async def disconnect(self) -> None:
        try:
            await asyncio.wait_for(self.room.disconnect(), 10)
        except Exception:
            pass

    async def aclose(self) -> None:
        for c in self.closers:
            try:
                await asyncio.wait_for(c(), 5)
            except Exception:
                pass
        if self.counter:
            await self.counter.aclose()
        await self.disconnect()


@pytest.fixture
async def browser(server, request):
    """Factory for browser participants (livekit-client in headless chromium); closed at teardown.

        b = await browser(srv, "web", "room1", publish=True)
    """
    made: list[BrowserClient] = []

    async def start(srv: SwitchyardServer, identity: str, room_name: str, *, publish: bool = True,
                    single_pc: Optional[bool] = None, token: Optional[str] = None) -> BrowserClient:
        log_path = ARTIFACTS / f"{_safe_name(request.node.nodeid)}-browser-{identity}.log"
        _register_log(request, f"browser {identity} log", log_path)
        b = BrowserClient(identity, log_path)
        made.append(b)
        await b.start(srv.url, token or srv.token(identity, room_name), publish=publish, single_pc=single_pc)
        return b

    yield start
    for b in made:
        await b.close()
