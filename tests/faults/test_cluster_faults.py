"""Faults of a real 3-node cluster behind Nginx (its own, started for this module): the
same event replayed through two nodes at once, a node SIGKILLed and Redis restarted while
20 students each send an event every 100 ms.

The tests run in file order; the destructive ones bring the cluster back to three healthy
nodes and a running Redis before they end.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from server.cli.cluster import http_json
from tests.support.cluster import Cluster, Participant, eventually, lease_holder, student, teacher

from .figures import ms, percentile, record
from .load import Load, LoadedStudent, check_invariant, loaded_students, pushes

pytestmark = pytest.mark.slow

CONVERGE = 10.0  # presence must be right within this many seconds of the fault's end


async def roster(person: Participant, room_id: str) -> dict[str, dict[str, Any]]:
    """The room's roster, as the dashboard reads it: an `unavailable` answer (Redis just
    restarted: a pooled connection to the old server fails once) is retried after its
    `retry_after`, a few times; any other refusal fails."""
    for _ in range(5):
        ack = await person.call("watch", {"room_id": room_id})
        if ack["ok"] or ack["error"]["code"] != "unavailable":
            break
        await asyncio.sleep(ack["error"]["retry_after"])
    assert ack["ok"], ack
    return {s["id"]: s for s in ack["students"]}


def nodes_ready(cluster: Cluster, skip: str | None = None) -> dict[str, Any]:
    """Each node's process is alive and answers /readyz 200."""
    states: dict[str, Any] = {}
    for node in cluster.local.nodes:
        if node.node_id == skip:
            continue
        status: Any
        try:
            status, _ = http_json(node.url + "/readyz", timeout=2)
        except OSError as exc:
            status = type(exc).__name__
        states[node.node_id] = status if node.alive() else "dead"
    return states


async def all_online(tutor: Participant, room_id: str, students: list[LoadedStudent]) -> float:
    """Seconds until the teacher's roster shows every student online (AssertionError after
    CONVERGE s)."""
    start = time.monotonic()
    ids = [s.joined["attempt"]["attempt_id"] for s in students]

    async def right() -> bool:
        entries = await roster(tutor, room_id)
        return all(entries[a]["presence"] == "online" for a in ids)

    await eventually(right, timeout=CONVERGE, interval=0.25)
    return time.monotonic() - start


async def counted(tutor: Participant, room_id: str, students: list[LoadedStudent]) -> None:
    """The roster counts every stored event of every student once."""
    entries = await roster(tutor, room_id)
    got = {
        s.joined["attempt"]["attempt_id"]: entries[s.joined["attempt"]["attempt_id"]]["violations"] for s in students
    }
    assert got == {s.joined["attempt"]["attempt_id"]: s.seq for s in students}, got


def latency_figures(students: list[LoadedStudent], start: float, end: float) -> dict[str, Any]:
    """Ack latency of the sends in [start, end) and the longest stall (no ack) of a student."""
    inside = [t.latency for s in students for t in s.timed if start <= t.sent < end and t.ok]
    stalls = []
    for s in students:
        times = sorted(t.sent + t.latency for t in s.timed if t.ok)
        stalls.append(max((b - a for a, b in itertools.pairwise(times)), default=0.0))
    return {
        "acks": len(inside),
        "ack_p50_ms": ms(percentile(inside, 50)),
        "ack_p99_ms": ms(percentile(inside, 99)),
        "ack_max_ms": ms(max(inside, default=0.0)),
        "longest_stall_s": round(max(stalls, default=0.0), 2),
    }


async def test_same_event_replayed_three_times_through_two_nodes(cluster: Cluster, people: list[Participant]) -> None:
    room = cluster.room()
    [token] = cluster.invites(room["id"], 1, "twice")
    net_a = await cluster.subnet_of("node-1")
    net_b = await cluster.subnet_of("node-2")
    tutor = await teacher(cluster, people, [room["id"]], await cluster.subnet_of("node-3"))
    first = await student(cluster, people, token, net_a)
    second = await student(cluster, people, token, net_b)
    assert {await cluster.node_for(net_a), await cluster.node_for(net_b)} == {"node-1", "node-2"}
    attempt_id = first.joined["attempt"]["attempt_id"]
    assert second.joined["attempt"]["attempt_id"] == attempt_id and second.joined["resumed"] is True

    rounds = 10
    kinds = ["paste", "copy", "tab_hidden", "window_blur", "devtools"]
    all_acks: list[dict[str, Any]] = []
    for n in range(rounds):
        payload = {"seq": n + 1, "kind": kinds[n % len(kinds)], "occurred_at": datetime.now(UTC).isoformat()}
        acks = await asyncio.gather(*(p.call("event", payload) for p in (first, second) for _ in range(3)))
        all_acks.extend(acks)
        assert all(a["ok"] and a["seq"] == n + 1 for a in acks), acks
        assert sum(a["stored"] for a in acks) == 1, acks
    await asyncio.sleep(1.5)  # let any duplicate push arrive

    conn = await asyncpg.connect(cluster.local.database_url)
    try:
        rows = await conn.fetch(
            "SELECT seq, kind, severity FROM violations WHERE attempt_id = $1 ORDER BY seq", uuid.UUID(attempt_id)
        )
        score = await conn.fetchval(
            "SELECT coalesce(sum(severity), 0) FROM violations WHERE attempt_id = $1", uuid.UUID(attempt_id)
        )
    finally:
        await conn.close()
    pushed = Counter(v["seq"] for v in tutor.received.events["violation"] if v["attempt_id"] == attempt_id)
    entry = (await roster(tutor, room["id"]))[attempt_id]
    stored_by_node = Counter(
        ("node-1" if i // 3 == 0 else "node-2")
        for r in range(rounds)
        for i, a in enumerate(all_acks[r * 6 : (r + 1) * 6])
        if a["stored"]
    )
    record(
        "replay_through_two_nodes",
        rounds=rounds,
        sends=len(all_acks),
        acks_ok=sum(a["ok"] for a in all_acks),
        stored_true=sum(a["stored"] for a in all_acks),
        stored_by_node=dict(stored_by_node),
        rows=len(rows),
        teacher_violations=sum(pushed.values()),
        score=float(score),
        roster_score=entry["score"],
    )
    assert [r["seq"] for r in rows] == list(range(1, rounds + 1))
    assert dict(pushed) == {seq: 1 for seq in range(1, rounds + 1)}, pushed
    assert float(score) == sum(float(r["severity"]) for r in rows)
    assert entry["violations"] == rounds and float(entry["score"]) == float(score)
    assert entry["presence"] == "online"


def lost_by_origin(teacher: Participant, students: list[LoadedStudent], per_node: dict[str, int]) -> dict[str, str]:
    """Stored events whose `violation` push never reached the teacher, by the student's node."""
    seen = {(v["attempt_id"], v["seq"]) for v in teacher.received.events["violation"]}
    out: dict[str, str] = {}
    start = 0
    for node_id, count in per_node.items():
        group = students[start : start + count]
        start += count
        expected = sum(s.seq for s in group)
        got = sum(1 for s in group for q in range(1, s.seq + 1) if (s.joined["attempt"]["attempt_id"], q) in seen)
        out[node_id] = f"{expected - got}/{expected}"
    return out


async def test_redis_restart_under_load(cluster: Cluster, people: list[Participant]) -> None:
    room = cluster.room()
    students = await loaded_students(cluster, people, room["id"], {"node-1": 7, "node-2": 7, "node-3": 6}, "rl")
    tutor = await teacher(cluster, people, [room["id"]], await cluster.subnet_of("node-1"))
    load = Load(students)
    load.start()
    try:
        await asyncio.sleep(3)
        assert tutor.received.events["resync"] == []  # nothing lost yet, nothing to re-read
        down = time.monotonic()
        await asyncio.to_thread(cluster.local.stop_redis)
        await asyncio.sleep(2)
        # A dashboard that asks now is told to retry, not handed an internal error.
        during = await tutor.call("watch", {"room_id": room["id"]})
        assert during["ok"] is False and during["error"]["code"] == "unavailable", during
        assert during["error"]["retry_after"] > 0
        await asyncio.sleep(max(0.0, 5 - (time.monotonic() - down)))
        restart = time.monotonic()
        await asyncio.to_thread(cluster.local.start_redis)
        up = time.monotonic()

        # The teacher's node is subscribed again and says so; the dashboard's answer is a
        # `watch`, and its roster counts every event acknowledged until then, the outage's too.
        async def resynced() -> list[Any]:
            return list(tutor.received.events["resync"])

        first = await eventually(resynced, timeout=CONVERGE, interval=0.05)
        resync_in = time.monotonic() - up
        assert first[0] in ({"reason": "bus_reconnected"}, {"reason": "peer_dropped"}), first
        acked = {s.joined["attempt"]["attempt_id"]: len(s.acked) for s in students}
        acked_while_down = sum(1 for s in students for t in s.timed if t.ok and down <= t.sent + t.latency < up)
        assert acked_while_down > 0
        entries = await roster(tutor, room["id"])
        behind = {a: (entries[a]["violations"], n) for a, n in acked.items() if entries[a]["violations"] < n}
        assert not behind, behind

        async def registered() -> bool:
            redis = cluster.redis()
            try:
                keys = [f"proctor:node:{n.node_id}" for n in cluster.local.nodes]
                return bool(await redis.exists(*keys) == len(keys))
            finally:
                await redis.aclose()

        await eventually(registered, timeout=CONVERGE)
        registered_in = time.monotonic() - up

        async def relayed() -> bool:
            # A new event from node-2 reaches the teacher on node-1: pub/sub is back.
            probe = students[7]
            mark = len(tutor.received.events["violation"])
            await asyncio.sleep(0.5)
            return any(
                v["attempt_id"] == probe.joined["attempt"]["attempt_id"]
                for v in tutor.received.events["violation"][mark:]
            )

        await eventually(relayed, timeout=CONVERGE, interval=0.1)
        relayed_in = time.monotonic() - up
        await all_online(tutor, room["id"], students)
        presence_in = time.monotonic() - up
        await asyncio.sleep(3)
    finally:
        await load.finish()
    resyncs = tutor.received.events["resync"]
    # One per recovery: the node's own resubscription, and at most one more for each other
    # node that dropped messages (when its request came after the teacher's node was back).
    assert 1 <= len(resyncs) <= len(cluster.local.nodes), resyncs
    await counted(tutor, room["id"], students)
    figures = await check_invariant(cluster.local.database_url, students)
    teacher_pushes = pushes(tutor, students)

    # Every node reports ready again once its Redis checks pass: within the convergence bound
    # (a node's readiness is re-probed on its own timer, so a loaded machine sees it later).
    async def all_ready() -> dict[str, Any] | None:
        states = nodes_ready(cluster)
        return states if set(states.values()) == {200} else None

    ready = await eventually(all_ready, timeout=CONVERGE)
    during = latency_figures(students, down, up)
    record(
        "redis_restart_under_load",
        students=len(students),
        interval_ms=100,
        redis_down_s=round(restart - down, 1),
        events=sum(s.seq for s in students),
        **figures,
        resumes=sum(len(s.resumes) for s in students),
        lost_calls=sum(s.lost_calls for s in students),
        error_acks=dict(sum((s.errors for s in students), Counter())),
        acks_while_redis_down=during["acks"],
        while_down=during,
        overall=latency_figures(students, 0, float("inf")),
        registry_back_after_restart_s=round(registered_in, 2),
        relay_back_after_restart_s=round(relayed_in, 2),
        presence_online_after_restart_s=round(presence_in, 2),
        teacher_pushes=teacher_pushes,
        nodes=ready,
        resync_after_restart_s=round(resync_in, 2),
        resyncs=[r["reason"] for r in resyncs],
        acked_while_down_counted_after_resync=acked_while_down,
        pushes_lost_by_origin=lost_by_origin(tutor, students, {"node-1": 7, "node-2": 7, "node-3": 6}),
    )
    assert teacher_pushes["duplicates"] == 0
    assert set(ready.values()) == {200}, ready
    assert await lease_holder(cluster, room["id"]) is not None


async def test_sigkill_under_load(cluster: Cluster, people: list[Participant]) -> None:
    room = cluster.room()
    students = await loaded_students(cluster, people, room["id"], {"node-1": 7, "node-2": 7, "node-3": 6}, "kl")
    host = await lease_holder(cluster, room["id"])
    assert host is not None
    others = [n.node_id for n in cluster.local.nodes if n.node_id != host]
    tutor = await teacher(cluster, people, [room["id"]], await cluster.subnet_of(others[0]))
    on_victim = [s for s in students if await cluster.node_for(s.subnet) == host]
    before = {s.joined["attempt"]["attempt_id"]: s.joined["attempt"]["deadline"] for s in students}
    load = Load(students)
    load.start()
    try:
        await asyncio.sleep(3)
        killed = time.monotonic()
        await asyncio.to_thread(cluster.local.kill_node, cluster.local.node(host))

        async def all_back() -> bool:
            return all(s.resumes and s.sio is not None and s.joined.get("resumed") for s in on_victim)

        await eventually(all_back, timeout=40, interval=0.1)
        back = time.monotonic()  # the fault ends: every student of the dead node is back
        presence_in = await all_online(tutor, room["id"], students)
        await asyncio.sleep(3)
    finally:
        await load.finish()
    await counted(tutor, room["id"], students)
    figures = await check_invariant(cluster.local.database_url, students)
    for s in students:  # same attempt, same deadline, wherever the student is now
        assert before[s.joined["attempt"]["attempt_id"]] == s.joined["attempt"]["deadline"]
    for s in on_victim:
        assert await cluster.node_for(s.subnet) != host

    async def moved() -> str | None:
        holder = await lease_holder(cluster, room["id"])
        return holder if holder in others else None

    new_host = await eventually(moved, timeout=CONVERGE)
    teacher_pushes = pushes(tutor, students)
    ready = nodes_ready(cluster, skip=host)
    reconnects = [b - a for s in on_victim for a, b in s.resumes]
    record(
        "sigkill_under_load",
        students=len(students),
        on_victim=len(on_victim),
        interval_ms=100,
        victim=host,
        new_host=new_host,
        events=sum(s.seq for s in students),
        **figures,
        resumes=sum(len(s.resumes) for s in students),
        lost_calls=sum(s.lost_calls for s in students),
        error_acks=dict(sum((s.errors for s in students), Counter())),
        kill_to_all_rejoined_s=round(back - killed, 2),
        reconnect_max_s=round(max(reconnects, default=0.0), 2),
        after_kill=latency_figures(students, killed, back),
        overall=latency_figures(students, 0, float("inf")),
        presence_online_after_all_rejoined_s=round(presence_in, 2),
        presence_online_after_kill_s=round(back - killed + presence_in, 2),
        teacher_pushes=teacher_pushes,
        nodes=ready,
    )
    assert teacher_pushes["duplicates"] == 0
    assert set(ready.values()) == {200}, ready

    await asyncio.to_thread(cluster.restart, host)  # back to three nodes
    await cluster.routed(host)
    assert set(nodes_ready(cluster).values()) == {200}
