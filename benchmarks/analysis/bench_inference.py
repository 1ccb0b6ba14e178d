"""Face-detection throughput on one core: batched versus unbatched, 320x240 and 160x120.

A script, not a test. Run from the repository root:

    python benchmarks/analysis/bench_inference.py [--seconds 2.0] [--threads 1]

Each configuration runs for about ``--seconds`` (after a warm-up), so the whole run is
bounded: 2 sizes x 5 configurations x (seconds + warm-up), under 30 s by default. Frames
are the astronaut photograph (one real face) resized to each size, so decoding does
real work. "ms/frame" is the wall time of ``detect``/``detect_batch`` divided by the
frames it handled (pre-processing, onnxruntime, decoding); "ort ms" is onnxruntime's
share. With one intra-op thread, frames/s is per core.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from detection import FaceDetector

Frame = npt.NDArray[np.uint8]
SIZES = ((320, 240), (160, 120))
BATCHES = (1, 4, 8, 16)


def _astronaut() -> Frame:
    try:
        # Imported by name: scikit-image has no type information, this keeps it Any.
        data = importlib.import_module("skimage.data")
    except ImportError:
        sys.exit("scikit-image provides the test photograph: pip install 'scikit-image>=0.24'")
    rgb: Frame = data.astronaut()
    return np.ascontiguousarray(rgb[:, :, ::-1])


class _TimedSession:
    """Wraps the onnxruntime session to add up the time spent inside ``run``."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.seconds = 0.0

    def run(self, names: list[str], feeds: dict[str, Any]) -> Any:
        start = time.perf_counter()
        try:
            return self.session.run(names, feeds)
        finally:
            self.seconds += time.perf_counter() - start


def _measure(
    call: Callable[[], object], frames_per_call: int, timed: _TimedSession, budget: float
) -> tuple[float, float]:
    """(median ms per frame, onnxruntime ms per frame) over about ``budget`` seconds."""
    for _ in range(2):  # warm-up: the first run at a new shape plans memory
        call()
    timed.seconds = 0.0
    per_call: list[float] = []
    started = time.perf_counter()
    while time.perf_counter() - started < budget or len(per_call) < 3:
        start = time.perf_counter()
        call()
        per_call.append(time.perf_counter() - start)
    total_frames = frames_per_call * len(per_call)
    return statistics.median(per_call) * 1000 / frames_per_call, timed.seconds * 1000 / total_frames


def _one_by_one(detector: FaceDetector, frame: Frame, count: int) -> None:
    for _ in range(count):
        detector.detect(frame)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="measuring time per configuration")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    args = parser.parse_args()

    detector = FaceDetector(intra_op_threads=args.threads, max_batch=max(BATCHES))
    timed = _TimedSession(detector._session)
    detector._session = timed  # measuring the same detector the server uses, not a copy
    photo = _astronaut()
    print(f"CenterFace, onnxruntime CPU, intra_op_threads={args.threads}, {args.seconds:g} s per row")
    print(f"{'size':>8} {'mode':>12} {'ms/frame':>9} {'ort ms':>7} {'frames/s':>9} {'faces':>6}")
    for width, height in SIZES:
        frame = np.asarray(cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA), np.uint8)
        faces = len(detector.detect(frame))
        rows: list[tuple[str, Callable[[], object], int]] = [
            ("unbatched x16", partial(_one_by_one, detector, frame, 16), 16)
        ]
        for batch in BATCHES:
            frames = [frame.copy() for _ in range(batch)]
            rows.append((f"batch {batch}", partial(detector.detect_batch, frames), batch))
        for label, call, count in rows:
            ms, ort_ms = _measure(call, count, timed, args.seconds)
            print(f"{width}x{height:<4} {label:>12} {ms:9.2f} {ort_ms:7.2f} {1000 / ms:9.1f} {faces:6d}")


if __name__ == "__main__":
    main()
