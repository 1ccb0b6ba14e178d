"""Detect on a smaller copy of each frame, answer in the frame's own pixels.

A webcam face fills a good part of the frame, so CenterFace finds it at 160 px wide as
well as at 320 — for a quarter of the work (about 4 ms instead of 17 ms a frame on one
core here). Evidence and thumbnails still use the full frame; only detection is scaled.

Not always as well: the quality set (docs/analysis-quality.md) showed the 160-px copy
missing a far face (14–15 % of the frame's height) and a face with an object over one
eye, each a false "No face" for a student who is there — 93 % detection and 3.6 % false
violations at 160 px against 97 % and 0 % at 320. With `recheck`, a frame in which the
small copy shows nobody is detected again at full size, and that answer is kept: a
"No face" is then decided at full resolution, while the frames with a face, nearly all of
an exam's, still cost the small copy only. A frame too flat to hold a face at any size (a
covered lens) is not detected again: its luminance varies by a standard deviation under
`RECHECK_MIN_STDDEV`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from detection.face_detector import Face

BGRImage = npt.NDArray[np.uint8]

# Luminance std-dev (0-255) under which a frame is not detected again at full size: covered
# cameras measure 0.6-1.4 (the quality set, the benchmark clip), the darkest frames with a
# face 3.9 (the quality set's "very dark"). Rechecking the benchmark clip's covered stretch,
# a tenth of its frames, had cost ~0.9 ms per sample.
RECHECK_MIN_STDDEV = 2.0


class BatchDetector(Protocol):
    def detect_batch(self, frames: Sequence[BGRImage]) -> list[list[Face]]: ...


class ScaledDetector:
    def __init__(self, inner: BatchDetector, width: int, *, recheck: bool = False) -> None:
        if width < 32:
            raise ValueError("detection width must be at least 32 pixels")
        self.inner = inner
        self.width = width
        self.recheck = recheck
        self.rechecks = 0  # frames detected again at full size (a metric; two threads may add)

    def detect_batch(self, frames: Sequence[BGRImage]) -> list[list[Face]]:
        scaled: list[BGRImage] = []
        factors: list[float] = []
        for frame in frames:
            width = frame.shape[1]
            if width <= self.width:
                scaled.append(frame)
                factors.append(1.0)
                continue
            factor = width / self.width
            height = max(1, round(frame.shape[0] / factor))
            scaled.append(np.asarray(cv2.resize(frame, (self.width, height), interpolation=cv2.INTER_AREA), np.uint8))
            factors.append(factor)
        found = self.inner.detect_batch(scaled)
        results = [
            [_scale(face, f) for face in faces] if f != 1.0 else faces for faces, f in zip(found, factors, strict=True)
        ]
        if self.recheck:
            again = [
                i
                for i, (faces, f) in enumerate(zip(results, factors, strict=True))
                if not faces and f != 1.0 and _varied(scaled[i])
            ]
            if again:
                self.rechecks += len(again)
                for i, faces in zip(again, self.inner.detect_batch([frames[i] for i in again]), strict=True):
                    results[i] = faces
        return results


def _scale(face: Face, factor: float) -> Face:
    return Face(
        face.x1 * factor,
        face.y1 * factor,
        face.x2 * factor,
        face.y2 * factor,
        face.score,
        tuple((x * factor, y * factor) for x, y in face.landmarks),
    )


def _varied(image: BGRImage) -> bool:
    """Enough contrast for a face to be found in it at some size (see RECHECK_MIN_STDDEV)."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    _, stddev = cv2.meanStdDev(grey)
    return float(stddev[0][0]) >= RECHECK_MIN_STDDEV
