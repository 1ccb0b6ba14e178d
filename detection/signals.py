"""Per-frame measurements the rules read: luminance statistics, sharpness and head pose.

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

# The limits these ratios are compared with are exam settings (`yaw_ratio`, `pitch_ratio` in
# core/vocabulary.py), chosen from docs/analysis-quality.md. For scale: the nose tip sits
# roughly 0.4-0.5 interocular distances in front of the eyes, so the yaw ratio grows as
# about 0.45 * tan(yaw); CenterFace gives the frontal astronaut image 0.03 or less and the
# three-quarter cameraman image 0.36 at the node's 160-px detect width.


# The width of the grey copy whose Laplacian variance measures sharpness: small enough to
# cost well under a millisecond, large enough that a sharp webcam frame keeps its edges.
SHARPNESS_WIDTH = 80


@dataclass(frozen=True, slots=True)
class FrameStats:
    """Luminance (BT.601 luma, 0..255) statistics of a frame.

    ``sharpness`` is the variance of the Laplacian of a ``SHARPNESS_WIDTH``-pixel-wide grey
    copy divided by that copy's variance (blur lowers it, exposure hardly does); ``height``
    is the frame's height in pixels. Their defaults mean "not measured": such a frame is
    never too blurred, and face size is not judged.
    """

    mean: float
    stddev: float
    sharpness: float = math.inf
    height: int = 0


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
    height, width = grey.shape[:2]
    if width > SHARPNESS_WIDTH:
        small_height = max(1, round(height * SHARPNESS_WIDTH / width))
        grey = cv2.resize(grey, (SHARPNESS_WIDTH, small_height), interpolation=cv2.INTER_AREA)
    # Divided by the luminance variance so that a dim or low-contrast frame does not read as
    # blurred: the ratio falls with blur, not with exposure. +1 keeps a flat frame finite.
    sharpness = float(cv2.Laplacian(grey, cv2.CV_32F).var()) / (float(grey.var()) + 1.0)
    return FrameStats(mean=float(mean[0, 0]), stddev=float(stddev[0, 0]), sharpness=sharpness, height=height)


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


def head_pitch(face: Face) -> float | None:
    """Where the nose sits between the eye line (0) and the mouth line (1).

    The nose tip is projected onto the line from the eye midpoint to the mouth midpoint,
    and its position is divided by that line's length (so distance to the camera does not
    matter). A frontal face puts the nose a little past half way; looking down brings the
    nose tip towards the mouth (and shortens the eye-mouth distance), so the ratio grows.
    ``None`` without all five landmarks or when eyes and mouth coincide.
    """
    if len(face.landmarks) < 5:
        return None
    (left_x, left_y), (right_x, right_y), (nose_x, nose_y), (mouth_lx, mouth_ly), (mouth_rx, mouth_ry) = face.landmarks[
        :5
    ]
    eye_x, eye_y = (left_x + right_x) / 2, (left_y + right_y) / 2
    axis_x, axis_y = (mouth_lx + mouth_rx) / 2 - eye_x, (mouth_ly + mouth_ry) / 2 - eye_y
    length_sq = axis_x * axis_x + axis_y * axis_y
    if length_sq < 1e-12:
        return None
    return ((nose_x - eye_x) * axis_x + (nose_y - eye_y) * axis_y) / length_sq
