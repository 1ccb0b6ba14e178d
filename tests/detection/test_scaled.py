"""Detection on a downscaled copy finds the same faces, in the full frame's coordinates, and
the full-size recheck finds those the copy missed."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from benchmarks.analysis.scenes import scenes
from detection import Face, FaceDetector, ScaledDetector


def test_scaled_detection_matches_full_size(detector: FaceDetector, astronaut: np.ndarray) -> None:
    one_face = np.asarray(cv2.resize(astronaut, (320, 240), interpolation=cv2.INTER_AREA), np.uint8)
    pair = cv2.resize(np.hstack([astronaut, astronaut]), (320, 160), interpolation=cv2.INTER_AREA)
    two_faces = np.asarray(cv2.copyMakeBorder(pair, 40, 40, 0, 0, cv2.BORDER_CONSTANT, value=(0, 0, 0)), np.uint8)
    blank = np.zeros_like(one_face)
    scaled = ScaledDetector(detector, 160)
    one, two, none = scaled.detect_batch([one_face, two_faces, blank])
    assert (len(one), len(two), len(none)) == (1, 2, 0)
    [full] = detector.detect(one_face)
    [small] = one
    # Boxes come back in the 320-wide frame's pixels, close to the full-size answer.
    for a, b in ((small.x1, full.x1), (small.y1, full.y1), (small.x2, full.x2), (small.y2, full.y2)):
        assert abs(a - b) < 12, (small, full)
    assert len(small.landmarks) == 5


class CountingDetector:
    """The real detector, counting the frames it is given per call."""

    def __init__(self, inner: FaceDetector) -> None:
        self.inner = inner
        self.calls: list[int] = []

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[list[Face]]:
        self.calls.append(len(frames))
        return self.inner.detect_batch(frames)


def test_a_far_face_the_small_copy_misses_is_found_by_the_full_size_recheck(
    detector: FaceDetector, astronaut: np.ndarray
) -> None:
    # The quality set's "small face (far)" frames: the student is there, 14-15 % of the
    # frame's height, which the 160-px copy misses (a false "No face" without the recheck).
    far = [s.image for s in scenes() if s.condition == "small face (far)"]
    one_face = np.asarray(cv2.resize(astronaut, (320, 240), interpolation=cv2.INTER_AREA), np.uint8)
    small = ScaledDetector(detector, 160).detect_batch(far)
    missed = [image for image, faces in zip(far, small, strict=True) if not faces]
    assert missed, "the 160-px copy now finds every far face: this test no longer shows the recheck"

    counting = CountingDetector(detector)
    scaled = ScaledDetector(counting, 160, recheck=True)
    found = scaled.detect_batch([one_face, *missed])
    assert [len(faces) for faces in found] == [1] + [len(detector.detect(image)) for image in missed]
    assert all(found[1:]), "at full size the far student is found"
    # One run on the small copies, one on the full frames of those that showed nobody.
    assert counting.calls == [1 + len(missed), len(missed)]
    assert scaled.rechecks == len(missed)


def test_without_recheck_or_with_a_face_nothing_is_detected_twice(
    detector: FaceDetector, astronaut: np.ndarray
) -> None:
    one_face = np.asarray(cv2.resize(astronaut, (320, 240), interpolation=cv2.INTER_AREA), np.uint8)
    counting = CountingDetector(detector)
    ScaledDetector(counting, 160, recheck=True).detect_batch([one_face, one_face])
    blank = np.full_like(one_face, 128)
    plain = ScaledDetector(counting, 160)
    assert plain.detect_batch([blank]) == [[]]
    assert counting.calls == [2, 1]
    assert plain.rechecks == 0


def test_a_covered_camera_is_not_detected_again_but_a_dark_room_is(detector: FaceDetector) -> None:
    rng = np.random.default_rng(7)
    # A covered lens: almost black, sensor noise only (std-dev ~1, as the quality set's).
    covered = np.clip(rng.normal(6, 1.0, (240, 320, 3)), 0, 255).astype(np.uint8)
    # A dim empty room: dark, but with the contrast a face could hide in.
    ramp = np.linspace(10, 50, 320, dtype=np.float32)[None, :, None]
    dim = np.clip(np.broadcast_to(ramp, (240, 320, 3)) + rng.normal(0, 1.0, (240, 320, 3)), 0, 255).astype(np.uint8)
    counting = CountingDetector(detector)
    scaled = ScaledDetector(counting, 160, recheck=True)
    assert scaled.detect_batch([covered, dim]) == [[], []]
    assert counting.calls == [2, 1]
    assert scaled.rechecks == 1
