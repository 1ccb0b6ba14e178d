"""End to end on a real node (real Postgres, the real ONNX model at the node's detect width):
an aiortc client plays a y4m video of a real turned head as its camera, and the teacher's
live feed, the stored violation and the review timeline all carry the same plain-words
explanation of the "Head turned" flag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

from benchmarks.analysis.scenes import HEIGHT, backgrounds, cameraman_bust, place
from tests.support.browser import write_y4m
from tests.support.live import Client, Live
from tests.support.node import EXAM_BODY

TURNED_EXAM: dict[str, Any] = {
    **EXAM_BODY,
    "rules": {
        "analysis": {"enabled": True, "sample_interval_seconds": 0.5, "head_turned_seconds": 1.5},
        "evidence_retention_days": 7,
    },
}


@pytest.fixture(scope="module")
def turned_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = place(backgrounds()["coffee"], cameraman_bust(), HEIGHT, 35)  # BGR, 320x240
    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    return write_y4m(tmp_path_factory.mktemp("cam") / "turned.y4m", rgb, frames=10)


async def stream_file(student: Client, video: Path) -> tuple[RTCPeerConnection, MediaPlayer]:
    player = MediaPlayer(str(video), loop=True)
    assert player.video is not None, f"aiortc could not open {video} as a video"
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(player.video)
    await pc.setLocalDescription(await pc.createOffer())
    ack = await student.call("rtc", {"target": "server", "type": "offer", "sdp": pc.localDescription.sdp})
    assert ack["ok"], ack
    await pc.setRemoteDescription(RTCSessionDescription(sdp=ack["sdp"], type=ack["type"]))
    return pc, player


@pytest.mark.slow
async def test_a_turned_head_is_flagged_with_the_same_explanation_everywhere(live: Live, turned_video: Path) -> None:
    room = await live.room(exam=TURNED_EXAM)
    [token] = await live.invites(room["id"], 1)
    teacher, _ = await live.teacher(await live.teacher_token([room["id"]]), room["id"])
    student, joined = await live.student(token)
    attempt_id = joined["attempt"]["attempt_id"]
    pc, player = await stream_file(student, turned_video)
    try:
        pushed = await teacher.received.wait_for(
            "violation", lambda v: v["attempt_id"] == attempt_id and v["kind"] == "head_turned", timeout=30
        )
    finally:
        await pc.close()
        if player.video is not None:
            player.video.stop()

    assert pushed["source"] == "server" and pushed["evidence_id"]
    assert pushed["explanation"].startswith("Head turned to the side for 1.5 s (yaw ratio ")
    assert pushed["explanation"].endswith(" > 0.30)")
    # A real person in front of the camera: never "No face" or "Several faces".
    assert not [v for v in teacher.received.events["violation"] if v["kind"] in ("no_face", "multiple_faces")]

    timeline = await live.rest("GET", f"/api/attempts/{attempt_id}/timeline")
    [entry] = [e for e in timeline["entries"] if e["type"] == "violation" and e["kind"] == "head_turned"]
    details = entry["details"]
    assert details["explanation"] == entry["explanation"] == pushed["explanation"]
    assert details["duration"] == 1.5
    assert details["yaw_ratio"] > details["threshold"] == 0.3
    assert entry["evidence_id"] == pushed["evidence_id"]
