from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from detection import Face, FaceDetector, InvalidFrame, RuleSettings, frame_stats, head_turn

YAW_LIMIT = RuleSettings().yaw_ratio

Frame = npt.NDArray[np.uint8]

# Eyes 40 px apart at y=100, nose on the midline below them, mouth corners below that.
FRONTAL = ((180.0, 100.0), (220.0, 100.0), (200.0, 120.0), (185.0, 140.0), (215.0, 140.0))


def _face(landmarks: tuple[tuple[float, float], ...], score: float = 0.9) -> Face:
    return Face(x1=160.0, y1=70.0, x2=240.0, y2=170.0, score=score, landmarks=landmarks)


def _rotated(points: tuple[tuple[float, float], ...], degrees: float) -> tuple[tuple[float, float], ...]:
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    return tuple((200 + (x - 200) * cos - (y - 120) * sin, 120 + (x - 200) * sin + (y - 120) * cos) for x, y in points)


def test_black_and_flat_frames() -> None:
    black = frame_stats(np.zeros((240, 320, 3), np.uint8))
    grey = frame_stats(np.full((240, 320, 3), 128, np.uint8))

    assert (black.mean, black.stddev) == (0.0, 0.0)
    assert grey.mean == pytest.approx(128) and grey.stddev == pytest.approx(0)


def test_photograph_is_neither_dark_nor_flat(astronaut: Frame) -> None:
    stats = frame_stats(astronaut)

    assert 60 < stats.mean < 200
    assert stats.stddev > 30


def test_luminance_weights_green_most() -> None:
    blue, green = np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)
    blue[..., 0] = 255
    green[..., 1] = 255

    assert frame_stats(blue).mean == pytest.approx(29, abs=1)  # 0.114 * 255
    assert frame_stats(green).mean == pytest.approx(150, abs=1)  # 0.587 * 255


def test_grey_frames_are_accepted_and_others_rejected() -> None:
    assert frame_stats(np.full((4, 4), 7, np.uint8)).mean == pytest.approx(7)
    with pytest.raises(InvalidFrame):
        frame_stats(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(InvalidFrame):
        frame_stats(np.zeros((4, 4, 3), np.float64))


def test_frontal_face_is_not_turned() -> None:
    assert head_turn(_face(FRONTAL)) == pytest.approx(0)


def test_nose_shift_is_measured_in_eye_distances() -> None:
    shifted = list(FRONTAL)
    shifted[2] = (200.0 + 16.0, 120.0)  # 16 px off the midline, eyes 40 px apart

    assert head_turn(_face(tuple(shifted))) == pytest.approx(0.4)
    shifted[2] = (200.0 - 16.0, 120.0)
    assert head_turn(_face(tuple(shifted))) == pytest.approx(0.4)


def test_tilting_the_head_sideways_is_not_turning_it() -> None:
    shifted = list(FRONTAL)
    shifted[2] = (210.0, 120.0)
    turned = tuple(shifted)

    for degrees in (-35.0, 20.0, 60.0):
        assert head_turn(_face(_rotated(FRONTAL, degrees))) == pytest.approx(0, abs=1e-9)
        assert head_turn(_face(_rotated(turned, degrees))) == pytest.approx(0.25)


def test_turn_cannot_be_judged_without_landmarks() -> None:
    assert head_turn(_face(())) is None
    same_point = ((200.0, 100.0), (200.0, 100.0), (200.0, 120.0), (190.0, 140.0), (210.0, 140.0))
    assert head_turn(_face(same_point)) is None


@pytest.mark.parametrize("flip", [False, True], ids=["as-is", "mirrored"])
def test_real_photographs_frontal_versus_turned(
    detector: FaceDetector, astronaut: Frame, cameraman: Frame, flip: bool
) -> None:
    def at_320x240(frame: Frame) -> Frame:
        resized = np.asarray(cv2.resize(frame, (320, 240), interpolation=cv2.INTER_AREA), np.uint8)
        return np.ascontiguousarray(resized[:, ::-1]) if flip else resized

    (frontal,), (turned,) = detector.detect_batch([at_320x240(astronaut), at_320x240(cameraman)])

    frontal_turn, turned_turn = head_turn(frontal), head_turn(turned)
    assert frontal_turn is not None and turned_turn is not None
    # Measured: about 0.02 for the astronaut, 0.7-0.9 for the cameraman.
    assert frontal_turn < YAW_LIMIT / 2
    assert turned_turn > YAW_LIMIT * 1.5
