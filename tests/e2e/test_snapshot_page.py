"""The student page on the snapshot transport (the default): real Chromium with a y4m camera
sends a small JPEG per sample interval over its Socket.IO connection and opens no analysis
peer; on a WebRTC node the same page offers a video track instead."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from server.analysis import ANALYSIS
from tests.e2e.test_exam_flow import open_student, open_teacher, pass_consent_and_check
from tests.support.browser import Browsers, Node

pytestmark = pytest.mark.slow

EXAM: dict[str, Any] = {
    "title": "Analysed quiz",
    "duration_minutes": 20,
    "questions": [{"id": "q1", "kind": "text", "text": "Say something."}],
    "rules": {"analysis": {"enabled": True, "sample_interval_seconds": 0.5, "no_face_seconds": 1.0}},
}


async def _until(condition: Any, seconds: float, what: str) -> None:
    for _ in range(int(seconds * 10)):
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_the_page_sends_snapshots_at_the_sample_interval(
    browsers: Browsers, node: Node, face_video: Path
) -> None:
    room = await node.room(EXAM)
    invites = await node.invites(room["id"], ["Grace Hopper"])
    teacher = await open_teacher(browsers, node, room["id"], await node.teacher_token([room["id"]]), face_video)
    student = await open_student(browsers, node, invites[0], face_video)
    await pass_consent_and_check(student)
    local = node.app[ANALYSIS]
    assert local is not None
    await _until(lambda: local.snapshots.accepted >= 2, 15, "two snapshots")
    before, started = local.snapshots.accepted, asyncio.get_running_loop().time()
    await asyncio.sleep(3.0)
    rate = (local.snapshots.accepted - before) / (asyncio.get_running_loop().time() - started)
    # One frame per 0.5 s interval: about 2/s, never the camera's frame rate.
    assert 1.4 <= rate <= 2.4, rate
    assert local.snapshots.refused == 0
    assert local.peers.live_count == 0, "no WebRTC peer on the snapshot transport"
    [source] = local.snapshots.sources()
    sample = source.slot.latest()
    assert sample is not None and sample.jpeg is not None
    image = cv2.imdecode(np.frombuffer(sample.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[1] <= 320
    assert len(sample.jpeg) < 48 * 1024
    # The sampler analysed them and the teacher sees the student's picture.
    assert local.sampler.analysed_samples >= 2
    await teacher.locator(".tile img.thumb").wait_for(timeout=8_000)
    assert not student.errors, student.errors


@pytest.mark.parametrize("e2e_settings", [{"analysis_transport": "webrtc"}], indirect=True)
async def test_a_webrtc_node_gets_a_video_track(browsers: Browsers, node: Node, face_video: Path) -> None:
    room = await node.room(EXAM)
    invites = await node.invites(room["id"], ["Ada Lovelace"])
    student = await open_student(browsers, node, invites[0], face_video)
    await pass_consent_and_check(student)
    local = node.app[ANALYSIS]
    assert local is not None
    await _until(lambda: local.peers.live_count == 1, 15, "the analysis peer")
    await _until(lambda: local.sampler.analysed_samples >= 2, 15, "two samples")
    assert local.snapshots.accepted == 0
    assert not student.errors, student.errors
