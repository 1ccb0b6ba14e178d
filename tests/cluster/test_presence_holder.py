"""Whether the process holding a student is gone, against a real Redis in one process.

A node's liveness here is what Redis sees of it: its registry record (with the process's
incarnation) and a subscription to its own `proctor:analysis:{node}` channel, which a
running node always holds (signaling/analysis_relay.py). The end-to-end SIGKILL is
tests/cluster/test_crash_gap.py; this checks each way a holder can be gone, and that a live
one is not taken for dead.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from rooms.cluster.presence import RedisPresence
from rooms.cluster.registry import NodeRegistry
from rooms.protocols import PresenceState

pytestmark = pytest.mark.slow


async def node(redis: Redis, node_id: str) -> RedisPresence:
    registry = NodeRegistry(redis, node_id, "127.0.0.1:1", 10)
    await registry.beat()
    return RedisPresence(redis, registry, grace_seconds=0.3)


@pytest.fixture
async def listening(redis: Redis) -> AsyncIterator[dict[str, PubSub]]:
    """node id -> a subscription to its analysis channel (what a running node holds)."""
    subs: dict[str, PubSub] = {}
    try:
        yield subs
    finally:
        for sub in subs.values():
            await sub.aclose()  # type: ignore[no-untyped-call]


async def listen(redis: Redis, subs: dict[str, PubSub], node_id: str) -> None:
    sub = redis.pubsub()
    await sub.subscribe(f"proctor:analysis:{node_id}")
    subs[node_id] = sub


async def test_a_second_tab_on_a_live_node_is_no_absence(redis: Redis, listening: dict[str, PubSub]) -> None:
    a, b = await node(redis, "a"), await node(redis, "b")
    await listen(redis, listening, "a")
    assert (await a.set("r", "att", "online")).applied
    write = await b.set("r", "att", "online")
    assert write.applied and write.away_since is None and not write.unseen


async def test_a_holder_that_stopped_listening_died_at_its_last_heartbeat(
    redis: Redis, listening: dict[str, PubSub]
) -> None:
    a, b = await node(redis, "a"), await node(redis, "b")
    await listen(redis, listening, "a")
    await a.set("r", "att", "online")
    beat = time.time()
    await a.registry.beat()
    await listening.pop("a").aclose()  # type: ignore[no-untyped-call]  # the process died: Redis closed its connections
    write = await b.set("r", "att", "online")
    assert write.applied and write.unseen
    assert write.away_since is not None and beat - 0.1 <= write.away_since <= beat + 0.1
    # The absence ended here: a second write is no new gap.
    again = await b.set("r", "att", "online")
    assert again.away_since is None and not again.unseen


async def test_a_holder_whose_record_expired_or_was_restarted_is_gone(
    redis: Redis, listening: dict[str, PubSub]
) -> None:
    a, b = await node(redis, "a"), await node(redis, "b")
    await listen(redis, listening, "a")
    went_online = time.time()
    await a.set("r", "x", "online")
    await a.set("r", "y", "online")
    await redis.delete("proctor:node:a")  # expired: its last beat was at least a ttl ago
    gone = await b.set("r", "x", "online")
    # No later trace of it than the entry itself (the ttl bound is older here).
    assert gone.unseen and gone.away_since is not None and went_online - 0.1 <= gone.away_since <= went_online + 0.1
    # Same node id, a new process (it listens on the same channel): the old one is gone.
    restarted = await node(redis, "a")
    write = await b.set("r", "y", "online")
    assert write.unseen and write.away_since is not None
    # A student coming back to the restarted node itself: a gap too.
    await restarted.set("r", "z", "online")
    newest = await node(redis, "a")
    assert (await newest.set("r", "z", "online")).unseen


async def test_a_restarted_node_marks_what_its_previous_process_left(redis: Redis) -> None:
    old = await node(redis, "a")
    for attempt in ("p", "q"):
        await old.set("r", attempt, "online")
    await old.registry.beat()
    last_beat = time.time()
    new = NodeRegistry(redis, "a", "127.0.0.1:1", 10)
    presence = RedisPresence(redis, new, grace_seconds=0.3)
    told: list[tuple[str, PresenceState]] = []

    async def lost(room_id: str, attempt_id: str, state: PresenceState) -> None:
        told.append((attempt_id, state))

    presence.on_lost = lost
    await new.beat()  # finds the previous process's record: it died unseen
    assert sorted(told) == [("p", "reconnecting"), ("q", "reconnecting")]
    assert await presence.room("r") == {"p": "reconnecting", "q": "reconnecting"}
    # q comes back to the new process: one gap, dated from the old process's last beat.
    back = await presence.set("r", "q", "online")
    assert back.away_since is not None and last_beat - 0.1 <= back.away_since <= last_beat + 0.1
    assert not back.unseen  # teachers were told at the restart
    # p does not: offline after the grace, while q (the new process's) stays online.
    await _until(lambda: ("p", "offline") in told)
    assert await presence.room("r") == {"p": "offline", "q": "online"}
    assert await redis.sismember("proctor:presence-node:a", "r q")
    presence.close()


async def _until(check: object, timeout: float = 3.0) -> None:
    import asyncio

    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reached"
        await asyncio.sleep(0.05)
