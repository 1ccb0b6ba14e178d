"""The sampler's schedule under load: students spread over lanes instead of one burst per
interval, a batch split across worker threads that yield the cores to the event loop, and
a student whose sample falls due while the detector is busy waiting for it instead of
losing the sample."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import av
import pytest

from detection import Face, FaceDetector, RuleSettings, ScaledDetector
from media import AnalysisSampler, AnalysisSettings, AnalysisSource, LatestFrame
from media.lanes import Lanes
from media.priority import BACKGROUND_NICENESS as WORKER_NICENESS
from tests.support.images import Frame
from tests.support.media import RecordingSink, wait_until

SETTINGS = AnalysisSettings(rule_settings=RuleSettings(), sample_interval=1.0, thumbnail_interval=5.0)


def test_lanes_fill_one_batch_before_opening_the_next() -> None:
    lanes = Lanes(tick=0.1, size=8)
    offsets = [lanes.assign(f"a{i}", 1.0) for i in range(8)]
    assert offsets == [0.0] * 8, "a few students share one lane, so one onnxruntime call"
    assert lanes.assign("a8", 1.0) == pytest.approx(0.1)
    assert lanes.occupancy(1.0) == [8, 1] + [0] * 8


def test_lanes_spread_evenly_once_all_are_full() -> None:
    lanes = Lanes(tick=0.1, size=8)
    offsets = [lanes.assign(f"a{i}", 1.0) for i in range(100)]
    assert lanes.occupancy(1.0) == [10] * 10
    assert all(0.0 <= offset < 1.0 for offset in offsets)


def test_lanes_reuse_a_released_place_and_keep_intervals_apart() -> None:
    lanes = Lanes(tick=0.1, size=2)
    for i in range(4):
        lanes.assign(f"a{i}", 1.0)
    lanes.release("a0")
    assert lanes.assign("new", 1.0) == 0.0, "the gap in lane 0 is filled first"
    assert lanes.assign("b0", 0.2) == 0.0, "another interval has lanes of its own"
    assert len(lanes.occupancy(0.2)) == 2
    # Re-assigning (new settings) moves the attempt rather than counting it twice.
    lanes.assign("b0", 0.2)
    assert sum(lanes.occupancy(0.2)) == 1
    lanes.release("b0")
    lanes.release("unknown")
    assert lanes.occupancy(0.2) == []


@dataclass
class Sources:
    """Students without a network: frames go straight into their slots."""

    items: list[AnalysisSource] = field(default_factory=list)

    def sources(self) -> list[AnalysisSource]:
        return list(self.items)


@dataclass
class Call:
    size: int
    thread: int
    niceness: int
    started: float


class RecordingDetector:
    """The real detector, recording each call's batch size, thread and niceness; `delay`
    stands for a slower CPU."""

    def __init__(self, inner: FaceDetector | ScaledDetector, delay: float = 0.0) -> None:
        self._inner = inner
        self._delay = delay
        self.calls: list[Call] = []

    def detect_batch(self, frames: Sequence[Frame]) -> list[list[Face]]:
        native = threading.get_native_id()
        self.calls.append(Call(len(frames), native, os.getpriority(os.PRIO_PROCESS, native), time.monotonic()))
        time.sleep(self._delay)
        return self._inner.detect_batch(frames)


@asynccontextmanager
async def cameras(sources: Sources, students: int, image: Frame) -> AsyncIterator[None]:
    """Start `students` cameras at 5 fps; yield while they run."""
    for i in range(students):
        sources.items.append(AnalysisSource(f"a{i}", SETTINGS, LatestFrame()))

    async def feed() -> None:
        while True:
            for source in sources.items:
                source.slot.put(av.VideoFrame.from_ndarray(image, format="bgr24"))
            await asyncio.sleep(0.2)

    task = asyncio.create_task(feed())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_many_students_are_spread_over_the_interval_in_low_priority_workers(
    face_detector: FaceDetector, one_face: Frame
) -> None:
    sources = Sources()
    # Detection at 160 px, as the server does, and lanes 0.2 s apart: a batch of 8 takes a
    # few tens of ms, so lanes stay apart even on a busy test machine.
    detector = RecordingDetector(ScaledDetector(face_detector, 160))
    async with cameras(sources, 24, one_face):
        async with AnalysisSampler(
            sources, detector, RecordingSink(), tick=0.2, lane_size=8, workers=2, skip_unchanged=False
        ) as sampler:
            await wait_until(lambda: sampler.stats.samples >= 24 * 3, 10, "three samples per student")
            stats = sampler.stats
    # 24 students in lanes of 8: three batches a second, not one of 24 (two lanes may
    # share a batch when a tick comes late).
    assert stats.max_batch_size <= 16, stats
    assert sorted(call.size for call in detector.calls)[len(detector.calls) // 2] <= 4
    assert stats.dropped_frames == 0, stats
    # Each batch was split across both workers, which run below the loop's priority.
    assert len({call.thread for call in detector.calls}) == 2
    assert {call.niceness for call in detector.calls} == {WORKER_NICENESS}


async def test_a_busy_detector_delays_a_sample_instead_of_dropping_it(
    face_detector: FaceDetector, one_face: Frame
) -> None:
    # Two lanes 0.1 s apart and a detector that takes 0.15 s: every second lane finds
    # the first one still running. The detector has the capacity (0.3 s of work a
    # second), so no sample may be lost, only taken a tick late.
    sources = Sources()
    detector = RecordingDetector(face_detector, delay=0.15)
    async with cameras(sources, 2, one_face):
        async with AnalysisSampler(
            sources, detector, RecordingSink(), tick=0.1, lane_size=1, workers=1, skip_unchanged=False
        ) as sampler:
            await wait_until(lambda: sampler.stats.samples >= 8, 10, "eight samples")
            stats = sampler.stats
    assert stats.dropped_frames == 0, stats
