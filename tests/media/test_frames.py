"""The pieces without a network: the one-frame slot, the JPEG encodings, the settings'
validation and the loop-lag monitor."""

from __future__ import annotations

import asyncio
import time

import av
import cv2
import numpy as np
import pytest

from detection import RuleSettings
from media import AnalysisSettings, LatestFrame, LoopLagMonitor, MediaError, evidence_jpeg, thumbnail_jpeg
from tests.support.images import Frame
from tests.support.media import HEIGHT, WIDTH


def test_latest_frame_keeps_only_the_newest(one_face: Frame, blank: Frame) -> None:
    slot = LatestFrame()
    assert slot.latest() is None and slot.frames_received == 0
    for image in (one_face, blank, one_face, blank):
        slot.put(av.VideoFrame.from_ndarray(image, format="bgr24"))
    sample = slot.latest()
    assert sample is not None
    assert sample.seq == slot.frames_received == 4
    assert np.array_equal(sample.to_bgr(), blank)
    slot.clear()
    assert slot.latest() is None and slot.frames_received == 4


def test_latest_frame_converts_yuv_to_bgr(one_face: Frame) -> None:
    # Decoded WebRTC video arrives as yuv420p; the slot converts only when sampled.
    slot = LatestFrame()
    slot.put(av.VideoFrame.from_ndarray(one_face, format="bgr24").reformat(format="yuv420p"))
    sample = slot.latest()
    assert sample is not None and isinstance(sample.frame, av.VideoFrame) and sample.frame.format.name == "yuv420p"
    image = sample.to_bgr()
    assert image.dtype == np.uint8 and image.shape == (HEIGHT, WIDTH, 3)
    assert float(abs(image.astype(int) - one_face.astype(int)).mean()) < 8


def _shape(jpeg: bytes) -> tuple[int, ...]:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a JPEG"
    return tuple(image.shape)


def test_evidence_is_the_full_frame_and_thumbnail_is_small(one_face: Frame) -> None:
    assert _shape(evidence_jpeg(one_face)) == (HEIGHT, WIDTH, 3)
    assert _shape(thumbnail_jpeg(one_face)) == (120, 160, 3)
    assert len(thumbnail_jpeg(one_face)) < len(evidence_jpeg(one_face)) < 40_000
    # A frame already smaller than a thumbnail is not enlarged.
    tiny = np.ascontiguousarray(one_face[:60, :80])
    assert _shape(thumbnail_jpeg(tiny)) == (60, 80, 3)


@pytest.mark.parametrize(
    ("sample_interval", "thumbnail_interval"),
    [(0.0, 5.0), (-1.0, 5.0), (3600.0, 5.0), (1.0, 0.0)],
)
def test_settings_out_of_range_are_invalid(sample_interval: float, thumbnail_interval: float) -> None:
    with pytest.raises(MediaError) as caught:
        AnalysisSettings(
            rule_settings=RuleSettings(),
            sample_interval=sample_interval,
            thumbnail_interval=thumbnail_interval,
        )
    assert caught.value.category == "invalid"


def test_settings_from_exam_rules_and_accommodations() -> None:
    settings = AnalysisSettings.from_rules(
        {"analysis": {"no_face_seconds": 7}}, ["no_face", "extra_time"], sample_interval=0.5
    )
    assert settings.rule_settings.no_face_seconds == 7.0
    assert settings.rule_settings.disabled == frozenset({"no_face"})
    assert settings.sample_interval == 0.5 and settings.enabled


@pytest.mark.asyncio
async def test_loop_lag_monitor_sees_a_blocked_loop() -> None:
    seen: list[float] = []
    monitor = LoopLagMonitor(interval=0.02, on_lag=seen.append)
    monitor.start()
    try:
        await asyncio.sleep(0.1)
        assert monitor.max_lag < 0.05
        time.sleep(0.2)  # what a blocking call in a handler does to everyone
        await asyncio.sleep(0.1)
    finally:
        await monitor.stop()
    assert not monitor.running
    assert monitor.max_lag >= 0.15
    assert seen and seen == monitor.recent
    assert monitor.reset_max() >= 0.15 and monitor.max_lag == 0.0
