"""Per-frame measurements the rules read: luminance statistics and head turn.

Both are cheap and deterministic so that the rules stay pure logic over numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from detection.errors import InvalidFrame
from detection.face_detector import Face

# Head turn limit, in eye distances (see ``head_turn``). The nose tip sits roughly 0.4-0.5
# interocular distances in front of the eyes, so the offset grows as about 0.45 * tan(yaw):
# 0.3 is roughly 30-35 degrees of yaw. Measured with CenterFace: the frontal astronaut
# image gives |0.03| or less, the three-quarter cameraman image 0.36 at 160x120 and
# 0.57-0.90 from 240x180 up.
HEAD_TURN_LIMIT = 0.3


@dataclass(frozen=True, slots=True)
class FrameStats:
    """Luminance (BT.601 luma, 0..255) statistics of a frame."""

    mean: float
    stddev: float


def frame_stats(frame: npt.NDArray[np.uint8]) -> FrameStats:
    """Mean and standard deviation of a BGR uint8 HxWx3 (or grey HxW) frame's luminance."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.size == 0:
        raise InvalidFrame("frame must be a non-empty uint8 array")
    if frame.ndim == 3 and frame.shape[2] == 3:
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    elif frame.ndim == 2:
        grey = frame
    else:
        raise InvalidFrame(f"frame must be HxWx3 BGR or HxW grey, got shape {frame.shape}")
    mean, stddev = cv2.meanStdDev(grey)
    return FrameStats(mean=float(mean[0, 0]), stddev=float(stddev[0, 0]))


def head_turn(face: Face) -> float | None:
    """How far the head is turned left or right, as the nose's offset from the eye midpoint.

    The offset is measured along the line through the two eyes (so tilting the head
    sideways does not count) and divided by the distance between the eyes (so it does not
    depend on how far the student sits from the camera). A frontal face gives about 0;
    the sign says which way the head turned and is dropped here. ``None`` when the face
    has no landmarks or its eyes coincide, i.e. when the turn cannot be judged.
    """
    if len(face.landmarks) < 3:
        return None
    (left_x, left_y), (right_x, right_y), (nose_x, nose_y) = face.landmarks[:3]
    eye_distance = math.hypot(right_x - left_x, right_y - left_y)
    if eye_distance < 1e-6:
        return None
    axis_x = (right_x - left_x) / eye_distance
    axis_y = (right_y - left_y) / eye_distance
    offset = (nose_x - (left_x + right_x) / 2) * axis_x + (nose_y - (left_y + right_y) / 2) * axis_y
    return abs(offset) / eye_distance
