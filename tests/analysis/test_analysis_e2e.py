"""End to end: an aiortc client streams a synthetic camera over Socket.IO-signaled WebRTC
to a real node (real Postgres, real ONNX model); violations carry evidence that only the
room's teachers can read, and every read is audited."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from server.analysis import PEERS
from server.keys import POOL
from tests.support.images import Frame
from tests.support.live import Client, Live
from tests.support.media import SyntheticCamera
from tests.support.node import EXAM_BODY

ANALYSED_EXAM: dict[str, Any] = {
    **EXAM_BODY,
    "rules": {
        "analysis": {
            "enabled": True,
            "sample_interval_seconds": 0.5,
            "no_face_seconds": 1.0,
            "multiple_faces_seconds": 1.0,
            "camera_blocked_seconds": 1.0,
        },
        "evidence_retention_days": 7,
    },
}


async def stream(student: Client, image: Frame) -> RTCPeerConnection:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(SyntheticCamera(image))
    await pc.setLocalDescription(await pc.createOffer())
    ack = await student.call("rtc", {"target": "server", "type": "offer", "sdp": pc.localDescription.sdp})
    assert ack["ok"], ack
    await pc.setRemoteDescription(RTCSessionDescription(sdp=ack["sdp"], type=ack["type"]))
    return pc


@pytest.mark.slow
async def test_faces_become_violations_with_audited_evidence(
    live: Live, one_face: Frame, two_faces: Frame, blank: Frame
) -> None:
    room = await live.room(exam=ANALYSED_EXAM)
    tokens = await live.invites(room["id"], 3)
    teacher, _ = await live.teacher(await live.teacher_token([room["id"]]), room["id"])
    students = {}
    pcs = []
    for name, token, image in zip(("one", "two", "blank"), tokens, (one_face, two_faces, blank), strict=True):
        client, joined = await live.student(token)
        assert joined["analysis"]["enabled"] is True
        students[name] = joined["attempt"]["attempt_id"]
        pcs.append(await stream(client, image))
    try:
        await teacher.received.wait_for(
            "violation", lambda v: v["attempt_id"] == students["two"] and v["kind"] == "multiple_faces", timeout=20
        )
        await teacher.received.wait_for(
            "violation", lambda v: v["attempt_id"] == students["blank"] and v["kind"] == "no_face", timeout=20
        )
        await teacher.received.wait_for(
            "violation", lambda v: v["attempt_id"] == students["blank"] and v["kind"] == "camera_blocked", timeout=20
        )
        thumb = await teacher.received.wait_for("thumbnail", lambda t: t["attempt_id"] == students["one"], timeout=20)
        assert thumb["jpeg"].startswith("data:image/jpeg;base64,")
        await asyncio.sleep(1.5)
    finally:
        for pc in pcs:
            await pc.close()

    violations = teacher.received.events["violation"]
    assert not [v for v in violations if v["attempt_id"] == students["one"]], "one face raises nothing"
    multiple = next(v for v in violations if v["kind"] == "multiple_faces")
    assert multiple["source"] == "server" and multiple["evidence_id"]
    assert "face" in multiple["explanation"].lower()

    # The room's teacher reads the evidence; the read is audited.
    teacher_token = await live.teacher_token([room["id"]])
    resp = await live.http.get(
        f"{live.url}/api/evidence/{multiple['evidence_id']}", headers={"Authorization": f"Bearer {teacher_token}"}
    )
    assert resp.status == 200 and resp.content_type == "image/jpeg"
    assert (await resp.read())[:2] == b"\xff\xd8"
    pool = live.app[POOL]  # type: ignore[attr-defined]
    audited = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'evidence.view' AND target_id = $1", multiple["evidence_id"]
    )
    assert audited == 1
    # Another room's teacher and the student themselves are refused.
    other_room = await live.room()
    outsider = await live.teacher_token([other_room["id"]], sub="t-other")
    for token in (outsider, tokens[1]):
        resp = await live.http.get(
            f"{live.url}/api/evidence/{multiple['evidence_id']}", headers={"Authorization": f"Bearer {token}"}
        )
        assert resp.status == 403
    # Timeline shows the server violation with its evidence and reason.
    timeline = await live.rest("GET", f"/api/attempts/{students['two']}/timeline")
    server_entries = [e for e in timeline["entries"] if e["type"] == "violation" and e["source"] == "server"]
    assert server_entries and server_entries[0]["evidence_id"]
    # The same words as the live feed, under the same name.
    assert all(e["explanation"] == e["details"]["explanation"] for e in server_entries)

    # Peers close when the students leave; the count returns to zero.
    peers = live.app[PEERS]  # type: ignore[attr-defined]
    for _ in range(100):
        if peers.live_count == 0:
            break
        await asyncio.sleep(0.1)
    assert peers.live_count == 0


async def test_offer_refused_when_analysis_is_off(live: Live, one_face: Frame) -> None:
    room = await live.room()
    [token] = await live.invites(room["id"], 1)
    student, joined = await live.student(token)
    assert joined["analysis"]["enabled"] is False
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(SyntheticCamera(one_face))
    await pc.setLocalDescription(await pc.createOffer())
    ack = await student.call("rtc", {"target": "server", "type": "offer", "sdp": pc.localDescription.sdp})
    await pc.close()
    assert ack["ok"] is False and ack["error"]["code"] == "analysis_off"
    bad = await student.call("rtc", {"target": "server", "type": "offer", "sdp": "v=0 garbage"})
    assert bad["ok"] is False and bad["error"]["code"] in ("analysis_off", "invalid")


async def test_submit_closes_the_analysis_peer(live: Live, one_face: Frame) -> None:
    room = await live.room(exam=ANALYSED_EXAM)
    [token] = await live.invites(room["id"], 1)
    student, _ = await live.student(token)
    pc = await stream(student, one_face)
    peers = live.app[PEERS]  # type: ignore[attr-defined]
    assert peers.live_count == 1
    await student.call("submit")
    for _ in range(50):
        if peers.live_count == 0:
            break
        await asyncio.sleep(0.1)
    await pc.close()
    assert peers.live_count == 0
