"""Placement and presence against a real Redis, with several registries in one process."""

from __future__ import annotations

import asyncio
import functools
import time

import pytest
from redis.asyncio import Redis

from rooms.cluster.placement import RedisPlacement
from rooms.cluster.presence import RedisPresence
from rooms.cluster.registry import NodeRegistry
from rooms.errors import NoCapacity
from rooms.protocols import PresenceState

pytestmark = pytest.mark.slow


async def make_nodes(redis: Redis, n: int, capacity: int) -> list[RedisPlacement]:
    placements = []
    for i in range(n):
        registry = NodeRegistry(redis, f"n{i}", f"127.0.0.1:{9000 + i}", capacity)
        placement = RedisPlacement(redis, registry)
        registry.load = functools.partial(placement.load, 0)
        placements.append(placement)
    for p in placements:
        await p.registry.beat()
    for p in placements:
        await p.registry.beat()  # everyone sees everyone
    return placements


async def test_concurrent_acquires_agree_on_one_host(redis: Redis) -> None:
    nodes = await make_nodes(redis, 5, capacity=10)
    for room in range(20):
        hosts = await asyncio.gather(*(nodes[i % 5].acquire(f"room-{room}") for i in range(50)))
        assert len(set(hosts)) == 1, hosts
        holder = await redis.get(f"proctor:lease:room-{room}")
        assert isinstance(holder, bytes) and holder.decode() == hosts[0]
    # 20 rooms over 5 nodes of 10 slots: spread evenly by the least-loaded rule
    counts = [await redis.scard(f"proctor:hosted:n{i}") for i in range(5)]
    assert counts == [4, 4, 4, 4, 4]


async def test_capacity_is_respected_then_refused(redis: Redis) -> None:
    nodes = await make_nodes(redis, 3, capacity=2)
    hosts = [await nodes[i % 3].acquire(f"r{i}") for i in range(6)]
    assert sorted(hosts) == ["n0", "n0", "n1", "n1", "n2", "n2"]
    with pytest.raises(NoCapacity) as caught:
        await nodes[0].acquire("r-too-many")
    assert caught.value.code == "capacity" and caught.value.retry_after
    for p in nodes:
        await p.registry.beat()
    assert not any(p.can_open() for p in nodes)
    # A room nobody takes part in any more is released by its host at the next tick.
    owner = next(p for p in nodes if p.node_id == hosts[0])
    for p in nodes:
        await p.release("r0")
    await owner.registry.beat()
    for p in nodes:
        await p.registry.beat()
    assert nodes[1].can_open()
    assert await nodes[1].acquire("r-too-many") == hosts[0]


async def test_a_lost_hosts_rooms_move_to_live_nodes(redis: Redis) -> None:
    nodes = await make_nodes(redis, 3, capacity=5)
    host = await nodes[0].acquire("exam")
    victim = next(p for p in nodes if p.node_id == host)
    survivors = [p for p in nodes if p is not victim]
    await redis.delete(victim.registry.key(victim.node_id))  # its heartbeat stops: gone
    for p in survivors:
        await p.registry.beat()
    new_host = await survivors[0].acquire("exam")
    assert new_host != host and new_host in {p.node_id for p in survivors}
    assert await survivors[1].acquire("exam") == new_host


async def test_draining_node_hands_rooms_over_and_takes_none(redis: Redis) -> None:
    nodes = await make_nodes(redis, 2, capacity=5)
    for i in range(4):
        await nodes[i % 2].acquire(f"d{i}")
    nodes[0].draining = True
    await nodes[0].registry.beat()
    assert await redis.scard("proctor:hosted:n0") == 0
    await nodes[1].registry.beat()  # the interested node places its rooms again
    for i in range(4):
        assert await nodes[1].acquire(f"d{i}") == "n1"
    assert await nodes[0].acquire("new-room") == "n1"


async def test_presence_compare_and_set_across_nodes(redis: Redis) -> None:
    a_reg = NodeRegistry(redis, "a", "x:1", 5)
    b_reg = NodeRegistry(redis, "b", "x:2", 5)
    a = RedisPresence(redis, a_reg, grace_seconds=0.2)
    b = RedisPresence(redis, b_reg, grace_seconds=0.2)
    await a_reg.beat()
    await b_reg.beat()
    assert (await a.set("R", "att", "online")).applied
    assert (await a.set("R", "att", "reconnecting")).applied
    assert (await b.set("R", "att", "online")).applied  # moved to node b
    assert not (await a.set("R", "att", "offline")).applied  # a's stale grace timer loses
    assert (await b.room("R")) == {"att": "online"}
    assert (await b.set("R", "att", "submitted")).applied
    assert not (await a.set("R", "att", "online")).applied
    assert (await a.room("R")) == {"att": "submitted"}


async def test_presence_hands_the_start_of_an_absence_to_the_node_the_student_returns_to(redis: Redis) -> None:
    regs = [NodeRegistry(redis, n, "x:1", 5) for n in ("a", "b")]
    a, b = (RedisPresence(redis, r, grace_seconds=0.2) for r in regs)
    for r in regs:
        await r.beat()
    assert (await a.set("R", "att", "online")).away_since is None
    before = time.time()
    await a.set("R", "att", "reconnecting")
    after = time.time()
    await asyncio.sleep(0.3)
    await a.set("R", "att", "offline")  # the grace ran out on a: the absence still began earlier
    back = await b.set("R", "att", "online")
    assert back.applied and back.away_since is not None
    assert before - 0.01 <= back.away_since <= after + 0.01, (before, back.away_since, after)
    again = await b.set("R", "att", "online")  # one absence, one gap
    assert again.applied and again.away_since is None
    # A node that dies unseen: its students are away from when it was reaped.
    await b.set("R", "s2", "online")
    await redis.delete(regs[1].key("b"))
    reaped = time.time()
    await regs[0].beat()
    back = await a.set("R", "s2", "online")
    assert back.away_since is not None and abs(back.away_since - reaped) < 1.0
    await asyncio.sleep(0.3)  # a's offline step for the lost node: s2 is back, att (on b) is not
    assert await a.room("R") == {"att": "offline", "s2": "online"}


async def test_presence_of_a_lost_node_goes_reconnecting_then_offline(redis: Redis) -> None:
    told: list[tuple[str, str, PresenceState]] = []
    regs = [NodeRegistry(redis, n, "x:1", 5) for n in ("a", "b")]
    a, b = (RedisPresence(redis, r, grace_seconds=0.3) for r in regs)

    async def lost(room: str, attempt: str, state: PresenceState) -> None:
        told.append((room, attempt, state))

    b.on_lost = lost
    for r in regs:
        await r.beat()
    await a.set("R", "s1", "online")
    await a.set("R", "s2", "online")
    await redis.delete(regs[0].key("a"))
    await regs[1].beat()
    assert sorted(told) == [("R", "s1", "reconnecting"), ("R", "s2", "reconnecting")]
    await asyncio.sleep(0.5)
    assert (await b.room("R")) == {"s1": "offline", "s2": "offline"}
    assert len(told) == 4


async def test_redis_flush_is_repaired_by_the_next_heartbeat(redis: Redis) -> None:
    nodes = await make_nodes(redis, 2, capacity=5)
    presence = RedisPresence(redis, nodes[0].registry, grace_seconds=1)
    host = await nodes[0].acquire("keep")
    await presence.set("keep", "s", "online")
    await redis.flushdb()  # what a Redis restart without persistence does
    for p in nodes:
        await p.registry.beat()
    assert await redis.get("proctor:lease:keep") == host.encode()
    assert await presence.room("keep") == {"s": "online"}
    assert await redis.exists("proctor:node:n0", "proctor:node:n1") == 2
