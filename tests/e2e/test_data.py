"""(c) Data packets between a browser (livekit-client) and Python livekit.rtc participants.

Browser "web", Python "alice" (A) and Python "bob" (B) in one room.
  1. web -> everyone, reliable and lossy, with topics: alice receives them with the right payload,
     kind, topic and sender identity "web".
  2. alice -> everyone, reliable and lossy: the browser receives them, sender "alice".
  3. web -> destinationIdentities=["alice"]: alice receives it; bob must not (we wait 2 s), while bob
     does receive a later broadcast (so he was listening all along).
Lossy packets are sent several times (they may legitimately be dropped); at least one must arrive.
"""

import asyncio


from e2e_helpers import poll

TEST_TIMEOUT_S = 55
LOSSY_COPIES = 5


async def test_data_packets(server, lk, browser, note):
    async def body():
        srv = server()
        room_name = "data-room"
        alice = await lk(srv, "alice", room_name)
        bob = await lk(srv, "bob", room_name)
        web = await browser(srv, "web", room_name, publish=False)
        await web.wait_event(lambda e: e["event"] == "connected", 30, "browser connected")

        # Everyone must know everyone before sending (sender identity resolution).
        await poll(lambda: "web" in alice.room.remote_participants and "web" in bob.room.remote_participants, 10)
        def web_sees(who):
            return any(
                (e["event"] == "connected" and who in e["remotes"])
                or (e["event"] == "participantConnected" and e["identity"] == who)
                for e in web.events
            )

        await poll(lambda: web_sees("alice") and web_sees("bob"), 10)

        # ---- 1. browser -> Python (broadcast)
        await web.publish_data("web-reliable-1", reliable=True, topic="topic-rel")
        for i in range(LOSSY_COPIES):
            await web.publish_data("web-lossy-1", reliable=False, topic="topic-lossy")
            await asyncio.sleep(0.1)

        got = await poll(lambda: alice.recorder.data_with(b"web-reliable-1"), 10)
        d = got[0]
        assert (d["kind"], d["topic"], d["from"]) == ("reliable", "topic-rel", "web"), d
        assert len(got) == 1, f"reliable packet delivered {len(got)} times"
        got = await poll(lambda: alice.recorder.data_with(b"web-lossy-1"), 10)
        d = got[0]
        assert (d["kind"], d["topic"], d["from"]) == ("lossy", "topic-lossy", "web"), d
        note("alice got lossy copies", f"{len(got)}/{LOSSY_COPIES}")

        # ---- 2. Python -> browser (broadcast)
        await alice.room.local_participant.publish_data(b"alice-reliable-1", reliable=True, topic="topic-rel")
        for i in range(LOSSY_COPIES):
            await alice.room.local_participant.publish_data(b"alice-lossy-1", reliable=False, topic="topic-lossy")
            await asyncio.sleep(0.1)

        e = await web.wait_event(lambda e: e["event"] == "data" and e["payload"] == "alice-reliable-1", 10,
                                 "browser receives alice's reliable packet")
        assert (e["kind"], e["topic"], e["from"], e["participantIdentity"]) == (
            "reliable", "topic-rel", "alice", "alice"), e
        e = await web.wait_event(lambda e: e["event"] == "data" and e["payload"] == "alice-lossy-1", 10,
                                 "browser receives alice's lossy packet")
        assert (e["kind"], e["topic"], e["from"], e["participantIdentity"]) == (
            "lossy", "topic-lossy", "alice", "alice"), e
        n = len(web.find(lambda e: e["event"] == "data" and e["payload"] == "alice-lossy-1"))
        note("browser got lossy copies", f"{n}/{LOSSY_COPIES}")
        # the sender does not get its own packets back
        assert not alice.recorder.data_with(b"alice-reliable-1")

        # ---- 3. targeted: browser -> alice only
        await web.publish_data("only-for-alice", reliable=True, topic="topic-target",
                               destination_identities=["alice"])
        got = await poll(lambda: alice.recorder.data_with(b"only-for-alice"), 10)
        assert (got[0]["from"], got[0]["topic"], got[0]["kind"]) == ("web", "topic-target", "reliable"), got[0]
        await asyncio.sleep(2.0)
        assert not bob.recorder.data_with(b"only-for-alice"), "bob received a packet addressed to alice only"

        await web.publish_data("for-everyone", reliable=True, topic="topic-rel")
        got_b = await poll(lambda: bob.recorder.data_with(b"for-everyone"), 10)
        assert got_b[0]["from"] == "web", got_b[0]
        await poll(lambda: alice.recorder.data_with(b"for-everyone"), 10)
        assert not bob.recorder.data_with(b"only-for-alice"), "bob received a packet addressed to alice only"
        # bob saw the broadcasts of step 1/2 as well
        assert bob.recorder.data_with(b"web-reliable-1") and bob.recorder.data_with(b"alice-reliable-1")

        note("alice data packets", len(alice.recorder.data))
        note("bob data packets", len(bob.recorder.data))

    await asyncio.wait_for(body(), TEST_TIMEOUT_S)
