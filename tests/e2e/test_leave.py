"""(e) Leaving, and closing an empty room after room.departure_timeout.

Server config: room.departure_timeout=2 s, room.empty_timeout=5 s.
  - A and B join; B disconnects; A sees participant_disconnected(B) within 5 s.
  - A notes the room sid (RM_...) and leaves. After 4 s (> departure_timeout) C joins the same room
    name and must get a different room sid (old room closed, new one auto-created).
  - Control: D joins while C is still there and sees the same sid as C (and sees C).
"""

import asyncio
import time


from e2e_helpers import poll

TEST_TIMEOUT_S = 50
ROOM = "leave-room"
CONFIG = "room:\n  departure_timeout: 2\n  empty_timeout: 5\n"


async def test_leave_and_room_close(server, lk, note):
    async def body():
        srv = server(config_yaml=CONFIG)
        a = await lk(srv, "a", ROOM)
        b = await lk(srv, "b", ROOM)
        await poll(lambda: "b" in a.room.remote_participants, 10)

        t0 = time.monotonic()
        await b.disconnect()
        await poll(lambda: "b" in a.recorder.disconnected, 5)
        note("A saw B leave after (s)", round(time.monotonic() - t0, 2))
        assert "b" not in a.room.remote_participants

        sid_a = await asyncio.wait_for(a.room.sid, 5)
        note("room sid seen by A", sid_a)
        assert sid_a.startswith("RM_"), sid_a
        await a.disconnect()

        await asyncio.sleep(4.0)  # > departure_timeout: the room must have been closed

        c = await lk(srv, "c", ROOM)
        sid_c = await asyncio.wait_for(c.room.sid, 5)
        note("room sid seen by C", sid_c)
        assert sid_c.startswith("RM_"), sid_c
        assert sid_c != sid_a, "room was not closed after departure_timeout (same sid)"
        assert not c.room.remote_participants, dict(c.room.remote_participants)

        d = await lk(srv, "d", ROOM)
        sid_d = await asyncio.wait_for(d.room.sid, 5)
        note("room sid seen by D", sid_d)
        assert sid_d == sid_c, "a second room was created while the first was occupied"
        assert set(d.room.remote_participants) == {"c"}
        await poll(lambda: "d" in c.room.remote_participants, 10)

    await asyncio.wait_for(body(), TEST_TIMEOUT_S)
