"""Detection on a downscaled copy finds the same faces, in the full frame's coordinates."""

from __future__ import annotations

import cv2
import numpy as np

from detection import FaceDetector, ScaledDetector


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
