"""Skipping detection on unchanged frames (media/change.py): the gate's logic on its own,
and in the sampler with the real detector on real photographs — a face that appears is
found at the next sample when the picture changes enough, and within the forced interval
even when the gate is told to see no change at all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import cv2
import numpy as np
import pytest

from detection import Face, FaceDetector, RuleSettings
from media import AnalysisSampler, AnalysisSettings, AnalysisSource, LatestFrame
from media.change import ChangeGate, difference, tiny_grey
from tests.support.images import Frame
from tests.support.media import RecordingSink

FACE = Face(10, 10, 50, 60, 0.9)


def test_the_first_frame_is_detected_and_an_unchanged_one_reuses_its_faces(one_face: Frame) -> None:
    gate = ChangeGate(threshold=3.0, force_every=3.0)
    tiny = tiny_grey(one_face)
    assert gate.decide(tiny, 0.0).detect, "nothing to compare with yet"
    gate.detected_faces(tiny, [FACE], 0.0)
    same = gate.decide(tiny_grey(one_face.copy()), 1.0)
    assert not same.detect and same.difference == 0.0
    assert gate.reuse() == [FACE]
    assert (gate.detected, gate.skipped) == (1, 1)


def test_sensor_noise_is_no_change_but_a_face_leaving_is(one_face: Frame, blank: Frame) -> None:
    gate = ChangeGate(threshold=3.0, force_every=3.0)
    gate.detected_faces(tiny_grey(one_face), [FACE], 0.0)
    rng = np.random.default_rng(3)
    noisy = np.clip(one_face.astype(np.int16) + rng.normal(0, 4, one_face.shape), 0, 255).astype(np.uint8)
    # Re-encoded as a page would send it: noise and JPEG artefacts together.
    ok, data = cv2.imencode(".jpg", noisy, [int(cv2.IMWRITE_JPEG_QUALITY), 60])
    assert ok
    resent = np.asarray(cv2.imdecode(data, cv2.IMREAD_COLOR), np.uint8)
    assert not gate.decide(tiny_grey(resent), 0.5).detect
    left = gate.decide(tiny_grey(blank), 0.5)
    assert left.detect and left.difference > 20


def test_detection_is_forced_after_force_every_seconds(one_face: Frame) -> None:
    gate = ChangeGate(threshold=3.0, force_every=3.0)
    tiny = tiny_grey(one_face)
    gate.detected_faces(tiny, [FACE], 10.0)
    assert not gate.decide(tiny, 12.9).detect
    assert gate.decide(tiny, 13.0).detect
    gate.detected_faces(tiny, [FACE], 13.0)
    assert not gate.decide(tiny, 14.0).detect, "the forced detection restarts the clock"


def test_reset_and_a_new_frame_size_detect_again(one_face: Frame) -> None:
    gate = ChangeGate()
    gate.detected_faces(tiny_grey(one_face), [FACE], 0.0)
    gate.reset()
    assert gate.decide(tiny_grey(one_face), 0.1).detect
    gate.detected_faces(tiny_grey(one_face), [FACE], 0.1)
    assert gate.decide(np.zeros((12, 16), np.uint8), 0.2).detect, "another shape cannot be compared"
    assert difference(tiny_grey(one_face), tiny_grey(one_face)) == 0.0


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        ChangeGate(threshold=-1)
    with pytest.raises(ValueError):
        ChangeGate(force_every=0)


class FoundFaces:
    """The real detector, recording when it ran and how many faces it found."""

    def __init__(self, inner: FaceDetector) -> None:
        self._inner = inner
        self.runs: list[tuple[float, int]] = []

    def detect_batch(self, frames: Sequence[Frame]) -> list[list[Face]]:
        found = self._inner.detect_batch(frames)
        self.runs.extend((time.monotonic(), len(faces)) for faces in found)
        return found


class OneStudent:
    def __init__(self, interval: float) -> None:
        settings = AnalysisSettings(rule_settings=RuleSettings(), sample_interval=interval, thumbnail_interval=60.0)
        self.source = AnalysisSource("a1", settings, LatestFrame())

    def sources(self) -> list[AnalysisSource]:
        return [self.source]


def _jpeg(image: Frame) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), 60])
    assert ok
    return bytes(data.tobytes())


async def _face_seen_after_it_appears(
    face_detector: FaceDetector, empty: Frame, face: Frame, threshold: float, force_every: float
) -> tuple[float, AnalysisSampler]:
    """Seconds from the face's first frame to the first detection that found it."""
    interval = 0.2
    student = OneStudent(interval)
    detector = FoundFaces(face_detector)
    sampler = AnalysisSampler(
        student,
        detector,
        RecordingSink(),
        tick=0.05,
        workers=1,
        change_threshold=threshold,
        force_detect_every=force_every,
    )
    empty_jpeg, face_jpeg = _jpeg(empty), _jpeg(face)
    async with sampler:
        for _ in range(int(1.5 / 0.1)):  # 1.5 s of the empty seat, a new frame every 0.1 s
            student.source.slot.put(empty_jpeg)
            await asyncio.sleep(0.1)
        appeared = time.monotonic()
        end = appeared + force_every + 2.0  # bounded: the assertion below says what was missed
        while time.monotonic() < end and not any(t >= appeared and n for t, n in detector.runs):
            student.source.slot.put(face_jpeg)
            await asyncio.sleep(0.1)
    seen = [t for t, n in detector.runs if t >= appeared and n]
    assert seen, f"the face was never detected ({detector.runs})"
    return seen[0] - appeared, sampler


async def test_a_face_that_appears_is_detected_at_the_next_sample(
    face_detector: FaceDetector, one_face: Frame, blank: Frame
) -> None:
    delay, sampler = await _face_seen_after_it_appears(face_detector, blank, one_face, threshold=3.0, force_every=3.0)
    assert delay < 0.2 + 0.3, f"found {delay:.2f} s after it appeared"
    assert sampler.skipped_detections > 0, "the empty seat's unchanged frames skipped the detector"


async def test_a_face_below_the_change_threshold_is_still_found_within_the_forced_interval(
    face_detector: FaceDetector, one_face: Frame, blank: Frame
) -> None:
    # A threshold no change can reach: only the forced detection can find the face.
    force_every = 1.0
    delay, sampler = await _face_seen_after_it_appears(
        face_detector, blank, one_face, threshold=256.0, force_every=force_every
    )
    assert delay <= force_every + 0.2 + 0.3, f"found {delay:.2f} s after it appeared"
    assert sampler.skipped_detections >= 3
