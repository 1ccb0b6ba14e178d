"""Skipping detection on a frame that has not changed since the last one analysed.

A student at a desk sends nearly the same picture second after second; running the face
detector on it again finds the same faces. `ChangeGate` keeps, per student, a tiny grey
copy of the last frame the detector saw and its faces. A new frame whose tiny copy differs
from it by less than `threshold` (mean absolute difference, 0..255) reuses those faces —
unless the last detection is `force_every` seconds old, so a person who enters slowly
(or a change too small for the tiny copy) is still seen within `force_every` seconds.

The tiny copy is 32×24: small enough to cost ~20 µs, large enough that a face entering
or leaving the picture moves the mean difference by far more than sensor noise does
(measured in tests/media/test_change.py and docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from detection import Face

TINY_SIZE = (32, 24)
# Sensor noise and JPEG re-encoding of a still scene stay below ~1.5 on the 32x24 copy; a
# face moving in or out, a hand over the camera, the lights going off are above 8.
DEFAULT_THRESHOLD = 3.0
DEFAULT_FORCE_EVERY = 3.0

TinyImage = npt.NDArray[np.uint8]


def tiny_grey(image: npt.NDArray[np.uint8]) -> TinyImage:
    """The 32x24 grey copy the gate compares (blocking; call from a worker thread)."""
    small = cv2.resize(image, TINY_SIZE, interpolation=cv2.INTER_AREA)
    if small.ndim == 3:
        small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    return np.asarray(small, dtype=np.uint8)


def difference(a: TinyImage, b: TinyImage) -> float:
    """Mean absolute difference of two tiny copies, 0..255."""
    return float(cv2.absdiff(a, b).mean())


@dataclass(frozen=True, slots=True)
class GateDecision:
    detect: bool
    difference: float  # inf when there was nothing to compare with


class ChangeGate:
    """One student's last detected frame; not thread-safe (one batch at a time uses it)."""

    __slots__ = ("_faces", "_force_every", "_last", "_last_detected", "_threshold", "detected", "skipped")

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, force_every: float = DEFAULT_FORCE_EVERY) -> None:
        if threshold < 0:
            raise ValueError("threshold must not be negative")
        if force_every <= 0:
            raise ValueError("force_every must be positive")
        self._threshold = threshold
        self._force_every = force_every
        self._last: TinyImage | None = None
        self._last_detected = float("-inf")
        self._faces: list[Face] = []
        self.detected = 0
        self.skipped = 0

    def decide(self, tiny: TinyImage, now: float) -> GateDecision:
        """Whether this frame needs the detector (`now`: a monotonic clock, seconds)."""
        if self._last is None or self._last.shape != tiny.shape:
            return GateDecision(True, float("inf"))
        diff = difference(self._last, tiny)
        due = now - self._last_detected >= self._force_every
        return GateDecision(due or diff >= self._threshold, diff)

    def detected_faces(self, tiny: TinyImage, faces: list[Face], now: float) -> None:
        """Record a detection: the frame compared against from now on, and its faces."""
        self._last = tiny
        self._last_detected = now
        self._faces = list(faces)
        self.detected += 1

    def reuse(self) -> list[Face]:
        """The faces of the last detected frame, for a frame that did not change."""
        self.skipped += 1
        return list(self._faces)

    def reset(self) -> None:
        """Forget the last frame (the student reconnected: the next frame is detected)."""
        self._last = None
        self._last_detected = float("-inf")
        self._faces = []
