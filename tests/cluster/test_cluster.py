"""Three `proctor serve` processes behind Nginx on one Redis and one Postgres.

The tests share one cluster and run in file order; the destructive ones (SIGKILL, drain,
Redis restart) bring it back to three healthy nodes before they end.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from typing import Any

import asyncpg
import pytest

from server.cli.cluster import http_json
from tests.support.cluster import Cluster, Participant, eventually, lease_holder, student, teacher

pytestmark = pytest.mark.slow


async def hosted_counts(cluster: Cluster) -> dict[str, int]:
    redis = cluster.redis()
    try:
        return {n.node_id: int(await redis.scard(f"proctor:hosted:{n.node_id}")) for n in cluster.local.nodes}
    finally:
        await redis.aclose()


async def sent(person: Participant, kind: str = "tab_hidden") -> dict[str, Any]:
    ack = await person.event(kind)
    assert ack is not None, "the connection dropped"
    return ack


async def roster_presence(person: Participant, room_id: str) -> dict[str, str]:
    ack = await person.call("watch", {"room_id": room_id})
    assert ack["ok"], ack
    return {s["id"]: s["presence"] for s in ack["students"]}


async def stored_seqs(database_url: str, attempt_id: str) -> list[int]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT seq FROM violations WHERE attempt_id = $1 AND source = 'client' ORDER BY seq",
            uuid.UUID(attempt_id),
        )
        return [r["seq"] for r in rows]
    finally:
        await conn.close()


async def wait_released(cluster: Cluster) -> None:
    async def empty() -> bool:
        return sum((await hosted_counts(cluster)).values()) == 0

    await eventually(empty, timeout=20)


async def exit_code(node: Any, timeout: float) -> int:
    """The node's exit status; a node still running after `timeout` fails with its log's tail."""
    assert node.proc is not None
    try:
        return await asyncio.to_thread(node.proc.wait, timeout)
    except subprocess.TimeoutExpired:
        tail = node.log.read_text(errors="replace").splitlines()[-40:]
        pytest.fail(f"{node.node_id} still running {timeout}s after drain; its log ends:\n" + "\n".join(tail))


async def test_teacher_sees_students_on_other_nodes_and_controls_reach_them(
    cluster: Cluster, people: list[Participant]
) -> None:
    room = cluster.room()
    t_net = await cluster.subnet_of("node-1")
    a_net = await cluster.subnet_of("node-2")
    b_net = await cluster.subnet_of("node-3")
    tutor = await teacher(cluster, people, [room["id"]], t_net)
    token_a, token_b = cluster.invites(room["id"], 2, "x")
    alice = await student(cluster, people, token_a, a_net)
    bob = await student(cluster, people, token_b, b_net)
    assert await cluster.node_for(a_net) == "node-2" and await cluster.node_for(b_net) == "node-3"
    a_id = alice.joined["attempt"]["attempt_id"]
    b_id = bob.joined["attempt"]["attempt_id"]

    for attempt_id in (a_id, b_id):
        await tutor.received.wait_for("joined", lambda d, i=attempt_id: d["attempt_id"] == i)
        await tutor.received.wait_for(
            "presence", lambda d, i=attempt_id: d["attempt_id"] == i and d["presence"] == "online"
        )

    assert (await sent(alice, "window_blur"))["ok"]
    violation = await tutor.received.wait_for("violation", lambda d: d["attempt_id"] == a_id)
    assert violation["kind"] == "window_blur" and violation["seq"] == 1
    ack = await bob.call("answer", {"question_id": "q1", "value": 1, "seq": 1})
    assert ack["ok"], ack
    await tutor.received.wait_for("progress", lambda d: d["attempt_id"] == b_id and d["answered"] == 1)

    # A pause decided on node-1 reaches Alice on node-2, and node-2's cached attempt knows it.
    ack = await tutor.call("control", {"attempt_id": a_id, "action": "pause"})
    assert ack["ok"], ack
    await alice.received.wait_for("control", lambda d: d["action"] == "pause")
    refused = await alice.call("answer", {"question_id": "q1", "value": 0, "seq": 2})
    assert refused["ok"] is False and refused["error"]["code"] == "paused", refused
    assert (await tutor.call("control", {"attempt_id": a_id, "action": "resume"}))["ok"]
    await alice.received.wait_for("control", lambda d: d["action"] == "resume")
    assert (await alice.call("answer", {"question_id": "q1", "value": 0, "seq": 3}))["ok"]
    assert (await tutor.call("control", {"attempt_id": a_id, "action": "extend", "minutes": 5}))["ok"]
    extended = await alice.received.wait_for("control", lambda d: d["action"] == "extend")
    assert extended["remaining_seconds"] > 34 * 60
    # Terminating on node-1 closes the attempt on node-3 at once, and Bob's socket there
    # within seconds (access ends with the attempt).
    assert (await tutor.call("control", {"attempt_id": b_id, "action": "terminate"}))["ok"]
    closed = await bob.call("answer", {"question_id": "q2", "value": [0], "seq": 2})
    assert closed["ok"] is False and closed["error"]["code"] == "attempt_closed", closed
    await asyncio.wait_for(bob.gone.wait(), 5)

    # Live view across nodes: the teacher on node-1 calls Alice on node-2; her answer finds
    # the teacher's socket through the signed view session, not through node-local state.
    ack = await tutor.call("rtc", {"target": "peer", "type": "offer", "attempt_id": a_id, "sdp": "v=0 offer"})
    assert ack["ok"], ack
    offer = await alice.received.wait_for("rtc", lambda d: d["type"] == "offer")
    assert offer["session"] == ack["session"] and offer["sdp"] == "v=0 offer"
    answer = await alice.call(
        "rtc", {"target": "peer", "type": "answer", "session": offer["session"], "sdp": "v=0 answer"}
    )
    assert answer["ok"], answer
    got = await tutor.received.wait_for("rtc", lambda d: d["type"] == "answer")
    assert got["sdp"] == "v=0 answer" and got["attempt_id"] == a_id
    # Carol, another student (node-3), cannot answer a session issued for Alice.
    [token_c] = cluster.invites(room["id"], 1, "c")
    carol = await student(cluster, people, token_c, b_net)
    forged = await carol.call("rtc", {"target": "peer", "type": "answer", "session": offer["session"], "sdp": "x"})
    assert forged["ok"] is False and forged["error"]["code"] == "not_found", forged

    assert (await tutor.call("announce", {"text": "ten minutes"}))["ok"]
    await alice.received.wait_for("announce", lambda d: d["text"] == "ten minutes")
    await carol.received.wait_for("announce", lambda d: d["text"] == "ten minutes")
    c_id = carol.joined["attempt"]["attempt_id"]
    assert await roster_presence(tutor, room["id"]) == {a_id: "online", b_id: "submitted", c_id: "online"}

    await alice.close()
    await tutor.received.wait_for("presence", lambda d: d["attempt_id"] == a_id and d["presence"] == "reconnecting")
    await tutor.received.wait_for(
        "presence", lambda d: d["attempt_id"] == a_id and d["presence"] == "offline", timeout=10
    )


async def test_placement_respects_the_per_node_cap(cluster: Cluster, people: list[Participant]) -> None:
    await wait_released(cluster)
    rooms = [cluster.room() for _ in range(10)]
    ids = [r["id"] for r in rooms]
    tutor = await teacher(cluster, people, ids[:9], await cluster.subnet_of("node-1"), may_see=ids)
    # 3 nodes x 3 slots, spread by the least-loaded rule
    assert await hosted_counts(cluster) == {"node-1": 3, "node-2": 3, "node-3": 3}
    refused = await tutor.call("watch", {"room_id": ids[9]})
    assert refused["ok"] is False and refused["error"]["code"] == "capacity", refused
    assert refused["error"]["retry_after"] > 0

    async def rest_refuses() -> Any:
        exam = cluster.rest("POST", "/api/exams", {**_exam(), "title": "Full"})
        status, body = http_json(
            cluster.url + f"/api/exams/{exam['id']}/rooms",
            method="POST",
            token=cluster.local.admin_token,
            body={"name": "More", "seats": 5},
        )
        return status == 503 and body

    body = await eventually(rest_refuses, timeout=10)
    assert body["error"]["code"] == "capacity"

    assert (await tutor.call("unwatch", {"room_id": ids[0]}))["ok"]

    async def watch_again() -> bool:
        ack = await tutor.call("watch", {"room_id": ids[9]})
        return bool(ack["ok"])

    await eventually(watch_again, timeout=15, interval=0.5)
    await tutor.close()


def _exam() -> dict[str, Any]:
    from tests.support.node import EXAM_BODY

    return dict(EXAM_BODY)


async def test_sigkill_of_the_host_node_moves_the_room_and_loses_nothing(
    cluster: Cluster, people: list[Participant]
) -> None:
    await wait_released(cluster)
    room = cluster.room()
    tokens = iter(cluster.invites(room["id"], 4, "k"))
    first = await student(cluster, people, next(tokens), await cluster.subnet_of("node-2"))
    host = await lease_holder(cluster, room["id"])
    assert host is not None
    others = [n.node_id for n in cluster.local.nodes if n.node_id != host]
    # Two students on the host, one elsewhere, the teacher elsewhere.
    on_host: list[Participant] = []
    elsewhere: Participant | None = None
    if await cluster.node_for(first.subnet) == host:
        on_host.append(first)
    else:
        elsewhere = first
    skip = 0
    while len(on_host) < 2:
        net = await cluster.subnet_of(host, skip)
        skip += 1
        if net != first.subnet:
            on_host.append(await student(cluster, people, next(tokens), net))
    if elsewhere is None:
        elsewhere = await student(cluster, people, next(tokens), await cluster.subnet_of(others[0]))
    students = [*on_host, elsewhere]
    tutor = await teacher(cluster, people, [room["id"]], await cluster.subnet_of(others[1]))
    before = {s.joined["attempt"]["attempt_id"]: s.joined["attempt"]["deadline"] for s in students}
    for s in students:
        for _ in range(3):
            assert (await sent(s))["ok"]

    # Events in flight while the host dies: some are acknowledged, some never are.
    burst = [asyncio.create_task(s.event("copy")) for s in on_host for _ in range(5)]
    await asyncio.sleep(0.02)
    victim = cluster.local.node(host)
    cluster.local.kill_node(victim)
    await asyncio.gather(*burst)

    for s in on_host:
        await asyncio.wait_for(s.gone.wait(), 10)
        ack = await s.resume()
        assert ack["resumed"] is True
        attempt = ack["attempt"]
        assert before[attempt["attempt_id"]] == attempt["deadline"]  # same attempt, same deadline
        assert await cluster.node_for(s.subnet) != host
        assert not s.pending, s.pending  # everything re-sent and acknowledged
        assert (await sent(s))["ok"]

    async def moved() -> str | None:
        holder = await lease_holder(cluster, room["id"])
        return holder if holder in others else None

    assert await eventually(moved, timeout=15) in others

    async def converged() -> bool:
        states = await roster_presence(tutor, room["id"])
        return set(states.values()) == {"online"} and len(states) == 3

    await eventually(converged, timeout=15)
    for s in students:
        attempt_id = s.joined["attempt"]["attempt_id"]
        seqs = await stored_seqs(cluster.local.database_url, attempt_id)
        assert seqs == sorted(s.acked), (seqs, sorted(s.acked))  # each acknowledged event once
        assert seqs == list(range(1, s.seq + 1))  # and nothing the client sent is missing

    cluster.restart(host)  # back to three nodes for the next tests
    await cluster.routed(host)


async def test_drain_hands_rooms_over_and_moves_clients(cluster: Cluster, people: list[Participant]) -> None:
    await wait_released(cluster)
    room = cluster.room()
    tokens = cluster.invites(room["id"], 2, "d")
    students = [await student(cluster, people, tokens[i], await cluster.subnet_of("node-2", i)) for i in range(2)]
    for s in students:
        assert await cluster.node_for(s.subnet) == "node-2"
    tutor = await teacher(cluster, people, [room["id"]], await cluster.subnet_of("node-1"))
    assert await lease_holder(cluster, room["id"]) is not None
    node = cluster.local.node("node-2")
    env = {**os.environ, "PROCTOR_ADMIN_TOKEN": cluster.local.admin_token}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "server.cli.main", "drain", "--node", node.address, "--wait", "--timeout", "30"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert await exit_code(node, 15) == 0
    for s in students:
        await asyncio.wait_for(s.gone.wait(), 5)
        ack = await s.resume()
        assert ack["resumed"] is True
        assert await cluster.node_for(s.subnet) != "node-2"
        assert (await sent(s))["ok"]

    async def handed_over() -> str | None:
        holder = await lease_holder(cluster, room["id"])
        return holder if holder in ("node-1", "node-3") else None

    await eventually(handed_over, timeout=10)

    async def online() -> bool:
        return set((await roster_presence(tutor, room["id"])).values()) == {"online"}

    await eventually(online, timeout=10)
    cluster.restart("node-2")
    await cluster.routed("node-2")


async def test_redis_restart_mid_exam_reconnects_and_presence_converges(
    cluster: Cluster, people: list[Participant]
) -> None:
    room = cluster.room()
    tokens = cluster.invites(room["id"], 2, "r")
    alice = await student(cluster, people, tokens[0], await cluster.subnet_of("node-2"))
    bob = await student(cluster, people, tokens[1], await cluster.subnet_of("node-3"))
    tutor = await teacher(cluster, people, [room["id"]], await cluster.subnet_of("node-1"))
    ids = {alice.joined["attempt"]["attempt_id"], bob.joined["attempt"]["attempt_id"]}

    cluster.local.stop_redis()
    await asyncio.sleep(1.5)
    # Work that needs only Postgres goes on while Redis is away.
    assert (await sent(alice))["ok"]
    cluster.local.start_redis()

    async def registered() -> bool:
        redis = cluster.redis()
        try:
            keys = [f"proctor:node:{n.node_id}" for n in cluster.local.nodes]
            return bool(await redis.exists(*keys) == len(keys))
        finally:
            await redis.aclose()

    await eventually(registered, timeout=15)

    async def converged() -> bool:
        states = await roster_presence(tutor, room["id"])
        return states == {i: "online" for i in ids}

    await eventually(converged, timeout=15)

    async def relayed() -> bool:
        # Pub/sub is back: a new event on node-2 reaches the teacher on node-1.
        ack = await alice.event("paste")
        assert ack is not None and ack["ok"]
        try:
            await tutor.received.wait_for(
                "violation", lambda d: d["kind"] == "paste" and d["seq"] == ack["seq"], timeout=1
            )
        except TimeoutError:
            return False
        return True

    await eventually(relayed, timeout=15)
    assert await lease_holder(cluster, room["id"]) is not None
