"""Real Chromium, a real node and the real model: the student's camera (a y4m file) shows a
face, then nobody, then two people, on a loop. The page's snapshots raise "No face" for the
empty stretch and "Several faces" for the two people, nothing for the face, and each flag's
evidence is the frame that called for it and its duration is the rule's hold."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from benchmarks.analysis.scenes import scenes
from detection import FaceDetector
from server.analysis import ANALYSIS
from tests.e2e.test_exam_flow import open_student, pass_consent_and_check
from tests.support.browser import FPS, Browsers, Node, write_y4m_scenes
from tests.support.node import ADMIN

pytestmark = pytest.mark.slow

SECONDS_PER_SCENE = 4
EXAM: dict[str, Any] = {
    "title": "Watched quiz",
    "duration_minutes": 20,
    "questions": [{"id": "q1", "kind": "text", "text": "Say something."}],
    "rules": {
        "analysis": {
            "enabled": True,
            "sample_interval_seconds": 0.5,
            "no_face_seconds": 1.0,
            "multiple_faces_seconds": 1.0,
        },
        "evidence_retention_days": 7,
    },
}


@pytest.fixture(scope="module")
def sequence_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The quality set's clear frames (benchmarks/analysis/scenes.py), 4 s each."""
    chosen: dict[str, np.ndarray] = {}
    for scene in scenes(small=True):
        chosen.setdefault(scene.condition, scene.image)
    frames = SECONDS_PER_SCENE * FPS
    pictures = [chosen["clear"], chosen["no person"], chosen["two people"]]
    return write_y4m_scenes(
        tmp_path_factory.mktemp("cam") / "face-nobody-two.y4m",
        [(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), frames) for bgr in pictures],
    )


async def _server_flags(node: Node, room_id: str) -> tuple[str, list[dict[str, Any]]]:
    [attempt] = (await node.rest("GET", f"/api/rooms/{room_id}/attempts"))["attempts"]
    timeline = await node.rest("GET", f"/api/attempts/{attempt['id']}/timeline")
    flags = [e for e in timeline["entries"] if e["type"] == "violation" and e["source"] == "server"]
    return attempt["id"], flags


async def test_face_then_nobody_then_two_people_raise_the_right_flags_with_their_evidence(
    browsers: Browsers, node: Node, sequence_video: Path
) -> None:
    room = await node.room(EXAM)
    [invite] = await node.invites(room["id"], ["Grace Hopper"])
    student = await open_student(browsers, node, invite, sequence_video)
    await pass_consent_and_check(student)

    flags: list[dict[str, Any]] = []
    # Two loops of the clip: each stretch is seen whole at least once whatever the phase.
    deadline = asyncio.get_running_loop().time() + 2 * 3 * SECONDS_PER_SCENE + 10
    while asyncio.get_running_loop().time() < deadline:
        _, flags = await _server_flags(node, room["id"])
        if {"no_face", "multiple_faces"} <= {f["kind"] for f in flags}:
            break
        await asyncio.sleep(0.5)
    kinds = [f["kind"] for f in flags]
    assert {"no_face", "multiple_faces"} <= set(kinds), f"flags raised: {kinds}"
    # Nothing else: the face stretch raises nothing, an empty bright room is not a blocked camera.
    assert set(kinds) == {"no_face", "multiple_faces"}, kinds

    detector = FaceDetector()
    for flag in flags:
        assert flag["details"]["duration"] == 1.0, flag
        assert flag["explanation"], flag
        assert flag["evidence_id"], flag
        async with node.http.get(
            f"{node.url}/api/evidence/{flag['evidence_id']}", headers={"Authorization": f"Bearer {ADMIN}"}
        ) as resp:
            assert resp.status == 200, resp.status
            jpeg = await resp.read()
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape[1] <= 320
        # The evidence is the student's own snapshot of the stretch that called for the flag.
        faces = [f for f in detector.detect(np.asarray(image, np.uint8)) if f.score >= 0.5]
        assert len(faces) == (0 if flag["kind"] == "no_face" else 2), (flag["kind"], len(faces))

    local = node.app[ANALYSIS]
    assert local is not None and local.peers.live_count == 0, "analysed from snapshots, no WebRTC peer"
    assert not student.errors, student.errors
