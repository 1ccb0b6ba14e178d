"""End to end on the snapshot transport: real Socket.IO clients send real JPEGs of a face
(then of nothing) as `frame` events to a real node (real Postgres, real ONNX model); the
teacher gets the student's own JPEG as thumbnail, and a `no_face` flag whose evidence is the
JPEG that was sent. Bad frames are answered with an error ack, store nothing, and cost the
other students nothing."""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

import cv2
import pytest

from server.analysis import ANALYSIS
from tests.support.images import Frame
from tests.support.live import Client, Live
from tests.support.node import EXAM_BODY

SNAPSHOT_EXAM: dict[str, Any] = {
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
INTERVAL = 0.5


def jpeg(image: Frame, quality: int = 60) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
    assert ok
    return bytes(data.tobytes())


class Camera:
    """Sends `frame` events at the exam's interval, like the page; bounded by `stop()`."""

    def __init__(self, client: Client, frame: bytes) -> None:
        self.client = client
        self.frame = frame
        self.acks: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        for _ in range(120):  # at most a minute
            self.acks.append(await self.client.call("frame", {"jpeg": self.frame}))
            await asyncio.sleep(INTERVAL * 1.05)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


@pytest.mark.slow
async def test_snapshots_are_analysed_and_are_their_own_thumbnail_and_evidence(
    live: Live, one_face: Frame, blank: Frame, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    room = await live.room(exam=SNAPSHOT_EXAM)
    tokens = await live.invites(room["id"], 3)
    teacher, _ = await live.teacher(await live.teacher_token([room["id"]]), room["id"])
    clients: dict[str, Client] = {}
    attempts: dict[str, str] = {}
    for name, token in zip(("leaves", "steady", "bad"), tokens, strict=True):
        client, joined = await live.student(token)
        assert joined["analysis"]["enabled"] is True
        assert joined["analysis"]["transport"] == "snapshot"
        clients[name], attempts[name] = client, joined["attempt"]["attempt_id"]

    face, nobody = jpeg(one_face), jpeg(blank)
    leaves, steady = Camera(clients["leaves"], face), Camera(clients["steady"], face)
    leaves.start()
    steady.start()
    try:
        thumb = await teacher.received.wait_for(
            "thumbnail", lambda t: t["attempt_id"] == attempts["leaves"], timeout=20
        )
        # The teacher sees the student's own JPEG: nothing was re-encoded.
        assert base64.b64decode(thumb["jpeg"].removeprefix("data:image/jpeg;base64,")) == face

        # The bad student: every refusal is an error ack, and none stores anything.
        bad = clients["bad"]
        too_large = await bad.call("frame", {"jpeg": b"\xff\xd8\xff" + bytes(50 * 1024) + b"\xff\xd9"})
        assert too_large["ok"] is False and too_large["error"]["code"] == "too_large", too_large
        not_jpeg = await bad.call("frame", {"jpeg": b"GIF89a" + bytes(100)})
        assert not_jpeg["ok"] is False and not_jpeg["error"]["code"] == "invalid", not_jpeg
        as_text = await bad.call("frame", {"jpeg": "not bytes"})
        assert as_text["ok"] is False and as_text["error"]["code"] == "invalid", as_text
        extra = await bad.call("frame", {"jpeg": face, "note": "x"})
        assert extra["ok"] is False and extra["error"]["code"] == "invalid", extra
        await asyncio.sleep(1.1)  # the guard's own bucket (4 frames/s) refills
        # Markers around garbage pass the cheap check; the sampler cannot decode it and
        # drops that one sample, without a traceback and without a flag.
        corrupt = await bad.call("frame", {"jpeg": b"\xff\xd8\xff" + bytes(range(256)) * 4 + b"\xff\xd9"})
        assert corrupt["ok"] is True, corrupt
        too_soon = await bad.call("frame", {"jpeg": face})
        assert too_soon["ok"] is False and too_soon["error"]["code"] == "rate_limited", too_soon
        assert too_soon["error"]["retry_after"] > 0
        flood = [await bad.call("frame", {"jpeg": face}) for _ in range(8)]
        assert all(not a["ok"] and a["error"]["code"] == "rate_limited" for a in flood), flood

        # The student who leaves the camera: no_face, with the frame sent as evidence.
        leaves.frame = nobody
        flag = await teacher.received.wait_for(
            "violation", lambda v: v["attempt_id"] == attempts["leaves"] and v["kind"] == "no_face", timeout=20
        )
        assert flag["source"] == "server" and flag["evidence_id"]
        resp = await live.http.get(
            f"{live.url}/api/evidence/{flag['evidence_id']}",
            headers={"Authorization": f"Bearer {await live.teacher_token([room['id']])}"},
        )
        assert resp.status == 200 and await resp.read() == nobody
        # The steady student kept being analysed all along.
        await teacher.received.wait_for(
            "thumbnail",
            lambda t: (
                t["attempt_id"] == attempts["steady"]
                and teacher.received.events["thumbnail"].index(t) > teacher.received.events["thumbnail"].index(thumb)
            ),
            timeout=20,
        )
    finally:
        await leaves.stop()
        await steady.stop()

    assert all(a["ok"] for a in steady.acks), [a for a in steady.acks if not a["ok"]]
    violations = teacher.received.events["violation"]
    assert not [v for v in violations if v["attempt_id"] == attempts["steady"]], "a steady face raises nothing"
    assert not [v for v in violations if v["attempt_id"] == attempts["bad"]], "refused frames raise nothing"
    timeline = await live.rest("GET", f"/api/attempts/{attempts['bad']}/timeline")
    assert not [e for e in timeline["entries"] if e["type"] == "violation"], timeline
    local = live.app[ANALYSIS]  # type: ignore[attr-defined]
    assert local is not None
    assert local.sampler.undecodable >= 1, "the corrupt frame reached the sampler"
    assert local.snapshots.refused >= 4  # too large, not a JPEG, too soon, flood (the rest: the guard)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]

    # Submitting forgets the attempt's frames.
    await clients["leaves"].call("submit")
    assert attempts["leaves"] not in local.snapshots
    closed = await clients["leaves"].call("frame", {"jpeg": face})
    assert closed["ok"] is False and closed["error"]["code"] == "attempt_closed", closed


async def test_a_speaking_exam_and_a_webrtc_node_keep_webrtc(live: Live) -> None:
    room = await live.room(exam=SNAPSHOT_EXAM)
    [token] = await live.invites(room["id"], 1)
    # A frame before join is refused like any other event of an unjoined student.
    client = await live.connect("/student", token)
    early = await client.call("frame", {"jpeg": b"\xff\xd8\xff\xd9"})
    assert early["ok"] is False and early["error"]["code"] == "not_joined", early
    joined = await client.call("join")
    assert joined["analysis"]["transport"] == "snapshot"
    speaking_exam = {
        **SNAPSHOT_EXAM,
        "rules": {**SNAPSHOT_EXAM["rules"], "analysis": {"enabled": True, "speaking": True}},
    }
    room = await live.room(exam=speaking_exam)
    [token] = await live.invites(room["id"], 1)
    _, joined = await live.student(token)
    assert joined["analysis"]["speaking"] is True
    assert joined["analysis"]["transport"] == "webrtc"
