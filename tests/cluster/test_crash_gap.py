"""A node that dies (SIGKILL) reads on the timeline like any network blip.

Its students are back on another node within a second, long before the dead node's registry
record expires, so nobody noticed them leave: the presence entry still read `online` on the
dead node. The node they come back to must see that the holder is dead, record one neutral
`network_gap` and show the teacher `reconnecting`, then `online` (rooms/cluster/presence.py).
Own module: two nodes of its own; the test kills one.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import asyncpg
import pytest

from server.cli.cluster import LocalCluster
from tests.support.cluster import CLUSTER_ENV, Cluster, Participant, eventually, require, student_on
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require("redis-server", "redis-server")
    require("nginx", "nginx")
    database = asyncio.run(postgres.create_database())
    local = LocalCluster(
        root=tmp_path_factory.mktemp("crash"), node_count=2, database_url=database, env=dict(CLUSTER_ENV)
    )
    local.start()
    try:
        yield Cluster(local)
    finally:
        local.stop()


async def rows(cluster: Cluster, query: str, attempt_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(cluster.local.database_url)
    try:
        return list(await conn.fetch(query, uuid.UUID(attempt_id)))
    finally:
        await conn.close()


def presence_of(tutor: Participant, attempt_id: str) -> list[str]:
    return [d["presence"] for d in tutor.received.events["presence"] if d["attempt_id"] == attempt_id]


async def test_a_sigkilled_node_is_one_network_gap_and_the_teacher_sees_reconnecting(
    cluster: Cluster, people: list[Participant]
) -> None:
    node_a, node_b = (n.node_id for n in cluster.local.nodes)
    room = cluster.room()
    [token] = cluster.invites(room["id"], 1, "crash")
    tutor = Participant(cluster.local.node(node_b).url, "/teacher", cluster.teacher_token([room["id"]]), subnet=1)
    people.append(tutor)
    await tutor.connect()
    assert (await tutor.call("watch", {"room_id": room["id"]}))["ok"]

    alice = await student_on(cluster, people, token, node_a)
    attempt_id = alice.joined["attempt"]["attempt_id"]
    await tutor.received.wait_for("presence", lambda d: d["attempt_id"] == attempt_id and d["presence"] == "online")
    answers: dict[str, Any] = {}
    for question_id, value in (("q1", 1), ("q2", [0, 2]), ("q3", "because")):
        alice.seq += 1
        ack = await alice.call("answer", {"question_id": question_id, "value": value, "seq": alice.seq})
        assert ack["ok"] and ack["stored"], ack
        answers[question_id] = value
    for _ in range(3):
        sent = await alice.event()
        assert sent is not None and sent["ok"], sent
    acked_events = set(alice.acked)
    assert presence_of(tutor, attempt_id) == ["online"]

    killed = time.time()
    await asyncio.to_thread(cluster.local.kill_node, cluster.local.node(node_a))
    alice.url = cluster.local.node(node_b).url  # its client reconnects, to the other node
    again = await alice.resume(timeout=20)
    back = time.time()
    assert again["resumed"] is True and again["attempt"]["attempt_id"] == attempt_id
    assert again["answers"] == answers, again["answers"]
    stored = await rows(cluster, "SELECT seq FROM violations WHERE attempt_id = $1", attempt_id)
    assert {r["seq"] for r in stored} == acked_events

    async def gaps() -> list[dict[str, Any]]:
        found = await rows(
            cluster, "SELECT details FROM attempt_log WHERE attempt_id = $1 AND kind = 'network_gap'", attempt_id
        )
        return [json.loads(r["details"]) for r in found]

    [gap] = await eventually(gaps, timeout=5)
    # From the dead node's last heartbeat (at most one interval before the kill) to the rejoin.
    started = datetime.fromisoformat(gap["from"]).timestamp()
    ended = datetime.fromisoformat(gap["to"]).timestamp()
    assert killed - 1.5 <= started <= killed + 0.1, (gap, killed)
    assert killed <= ended <= back + 0.1, (gap, killed, back)
    assert 0 < gap["seconds"] < back - killed + 1.5, gap
    print(f"[crash gap] SIGKILL to rejoined on the other node {back - killed:.2f} s; gap recorded {gap['seconds']} s")

    async def seen_back() -> list[str] | None:
        states = presence_of(tutor, attempt_id)
        return states if states.count("online") == 2 else None

    states = await eventually(seen_back, timeout=5)
    assert states[0] == "online" and states[-1] == "online", states
    assert states[1] in ("reconnecting", "offline"), states

    # The dead node's record expires and is reaped: that changes nothing any more.
    await asyncio.sleep(4.5)
    assert len(await gaps()) == 1
    assert presence_of(tutor, attempt_id) == states
    watch = await tutor.call("watch", {"room_id": room["id"]})
    [entry] = [s for s in watch["students"] if s["id"] == attempt_id]
    assert entry["presence"] == "online", entry
    timeline = cluster.rest("GET", f"/api/attempts/{attempt_id}/timeline")
    assert [e for e in timeline["entries"] if e["type"] == "network_gap"]
