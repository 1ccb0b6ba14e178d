"""What follows a student from node to node: the analysis peer lives on the room's host
node whichever node the student's socket is on (and moves when the host dies), and a
reconnect that lands on another node is still one neutral `network_gap`.

Students connect to chosen nodes directly (not through Nginx) so that the socket's node and
the room's host are known to differ. Own module: its own three nodes; the SIGKILL test
runs last and leaves the cluster with two.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from tests.support.cluster import Cluster, Participant, eventually, lease_holder, student_on, teacher
from tests.support.images import Frame
from tests.support.media import SyntheticCamera
from tests.support.node import EXAM_BODY

pytestmark = pytest.mark.slow

ANALYSED_EXAM: dict[str, Any] = {
    **EXAM_BODY,
    "rules": {"analysis": {"enabled": True, "sample_interval_seconds": 0.5}},
}


async def offer(person: Participant, image: Frame) -> tuple[RTCPeerConnection, dict[str, Any]]:
    """What the student page does: one non-trickle offer to the server, answered in the ack."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(SyntheticCamera(image))
    await pc.setLocalDescription(await pc.createOffer())
    ack = await person.call("rtc", {"target": "server", "type": "offer", "sdp": pc.localDescription.sdp}, timeout=15)
    if ack["ok"]:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=ack["sdp"], type=ack["type"]))
    return pc, ack


def peers(cluster: Cluster) -> dict[str, float]:
    return {n.node_id: cluster.metric(n.node_id, "proctor_live_peers") for n in cluster.local.nodes if n.alive()}


def peers_on(cluster: Cluster, node_id: str, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return peers(cluster)[node_id] == count

    return check


async def hosted_room(cluster: Cluster, people: list[Participant]) -> tuple[dict[str, Any], str, Participant]:
    room = cluster.room(exam_body=ANALYSED_EXAM)
    tutor = await teacher(cluster, people, [room["id"]], await cluster.subnet_of("node-1"))
    host = await lease_holder(cluster, room["id"])
    assert host is not None
    return room, host, tutor


async def test_a_rooms_analysis_offer_is_answered_by_its_host_node(
    cluster: Cluster, people: list[Participant], one_face: Frame
) -> None:
    room, host, tutor = await hosted_room(cluster, people)
    elsewhere = next(n.node_id for n in cluster.local.nodes if n.node_id != host)
    [token] = cluster.invites(room["id"], 1, "a")
    alice = await student_on(cluster, people, token, elsewhere)
    attempt_id = alice.joined["attempt"]["attempt_id"]
    assert alice.joined["analysis"]["enabled"] is True
    assert await lease_holder(cluster, room["id"]) == host  # her join did not move the room

    pc, ack = await offer(alice, one_face)
    try:
        assert ack["ok"] and ack["type"] == "answer" and ack["sdp"].startswith("v=0"), ack

        async def on_host() -> dict[str, float] | None:
            counts = peers(cluster)
            return counts if counts[host] == 1 and counts[elsewhere] == 0 else None

        counts = await eventually(on_host, timeout=10)
        assert sum(counts.values()) == 1, counts
        # The host analyses the frames and its thumbnails reach the teacher (on node-1).
        thumb = await tutor.received.wait_for("thumbnail", lambda d: d["attempt_id"] == attempt_id, timeout=20)
        assert thumb["jpeg"].startswith("data:image/jpeg;base64,")

        # The student says bye on her node: the peer on the host closes.
        assert (await alice.call("rtc", {"target": "server", "type": "bye"}))["ok"]
        await eventually(peers_on(cluster, host, 0), timeout=10)
    finally:
        await pc.close()


async def test_a_reconnect_on_another_node_records_one_network_gap(cluster: Cluster, people: list[Participant]) -> None:
    room, _host, tutor = await hosted_room(cluster, people)
    first, second = [n.node_id for n in cluster.local.nodes][1:3]
    [token] = cluster.invites(room["id"], 1, "g")
    bob = await student_on(cluster, people, token, first)
    attempt_id = bob.joined["attempt"]["attempt_id"]
    await bob.close()
    await tutor.received.wait_for(
        "presence", lambda d: d["attempt_id"] == attempt_id and d["presence"] == "reconnecting"
    )
    await asyncio.sleep(1.0)
    again = await student_on(cluster, people, token, second)
    assert again.joined["resumed"] is True

    async def online_again() -> bool:
        states = [d["presence"] for d in tutor.received.events["presence"] if d["attempt_id"] == attempt_id]
        return states.count("online") == 2

    await eventually(online_again, timeout=5)

    async def gaps() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(cluster.local.database_url)
        try:
            rows = await conn.fetch(
                "SELECT details FROM attempt_log WHERE attempt_id = $1 AND kind = 'network_gap'", uuid.UUID(attempt_id)
            )
        finally:
            await conn.close()
        return [json.loads(r["details"]) for r in rows]

    [gap] = await eventually(gaps, timeout=5)
    assert 1.0 <= gap["seconds"] < 10, gap
    # It is on the timeline as a neutral entry, and nothing counts as a violation.
    timeline = cluster.rest("GET", f"/api/attempts/{attempt_id}/timeline")
    assert [e for e in timeline["entries"] if e["type"] == "network_gap"]
    assert not [e for e in timeline["entries"] if e["type"] == "violation"]
    await asyncio.sleep(0.5)
    assert len(await gaps()) == 1


async def test_an_accommodation_set_on_another_node_reaches_the_student_and_the_rules(
    cluster: Cluster, people: list[Participant]
) -> None:
    from server.cli.cluster import http_json

    room = cluster.room()  # 30 minutes
    here, there = (n.node_id for n in cluster.local.nodes[:2])
    tutor = await teacher(cluster, people, [room["id"]], await cluster.subnet_of(here))
    [token] = cluster.invites(room["id"], 1, "acc")
    alice = await student_on(cluster, people, token, here)
    deadline = alice.joined["attempt"]["deadline"]

    # Set through the other node: the change reaches her page on her node (Socket.IO over
    # Redis), and her node's cached attempt is dropped, so its rules apply to her next event.
    url = cluster.local.node(there).url + f"/api/rooms/{room['id']}/accommodations/acc-0"
    body = {"extra_minutes": 20, "rules_off": ["paste"]}
    status, data = await asyncio.to_thread(http_json, url, method="PUT", body=body, token=cluster.local.admin_token)
    assert status == 200 and data["applied_to"] == [alice.joined["attempt"]["attempt_id"]], data
    clock = await alice.received.wait_for("deadline", lambda c: c["deadline"] != deadline, timeout=10)
    assert 50 * 60 - 15 < clock["remaining_seconds"] <= 50 * 60  # 30 minutes + 20
    assert (await alice.event("paste")) is not None
    flag = await tutor.received.wait_for("violation", lambda v: v["kind"] == "paste", timeout=10)
    assert flag["severity"] == 0.0


async def test_when_the_host_dies_the_student_is_told_and_the_new_host_answers(
    cluster: Cluster, people: list[Participant], one_face: Frame
) -> None:
    room, host, _ = await hosted_room(cluster, people)
    elsewhere = next(n.node_id for n in cluster.local.nodes if n.node_id != host)
    [token] = cluster.invites(room["id"], 1, "f")
    carol = await student_on(cluster, people, token, elsewhere)
    pc, ack = await offer(carol, one_face)
    assert ack["ok"], ack
    replacement: RTCPeerConnection | None = None
    try:
        await eventually(peers_on(cluster, host, 1), timeout=10)
        cluster.local.kill_node(cluster.local.node(host))
        # The node that places the room again tells its students to offer again.
        bye = await carol.received.wait_for(
            "rtc", lambda d: d.get("target") == "server" and d["type"] == "bye", timeout=15
        )
        assert bye["reason"] == "host_changed"
        new_host = await lease_holder(cluster, room["id"])
        assert new_host is not None and new_host != host
        await pc.close()

        async def answered() -> Any:
            nonlocal replacement
            if replacement is not None:
                await replacement.close()
            replacement, again = await offer(carol, one_face)
            return again if again["ok"] else None

        again = await eventually(answered, timeout=20, interval=1.0)
        assert again["type"] == "answer"
        holder = await lease_holder(cluster, room["id"])
        assert holder is not None and holder != host
        await eventually(peers_on(cluster, holder, 1), timeout=10)
    finally:
        await pc.close()
        if replacement is not None:
            await replacement.close()
