"""The process's one analysis loop: samples each student's latest frame at the student's
rate, runs the detector on all of them in one executor call, feeds the rules, and hands
violations (with evidence) and thumbnails to the server's sink.

Back-pressure is by dropping, never by queueing: a tick that finds the previous batch
still running counts its due samples in `dropped_frames` and moves on. The event loop
only schedules; conversion, inference and JPEG encoding run in the sampler's own
single worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from detection import Face, FrameStats, RuleSettings, StudentRules, frame_stats

from .analysis import AnalysisSink, AnalysisSource, AnalysisSources
from .frames import BGRImage, FrameSample, LatestFrame, evidence_jpeg, thumbnail_jpeg
from .loop_lag import LoopLagMonitor

logger = logging.getLogger(__name__)

DEFAULT_TICK = 0.1
DEFAULT_STOP_TIMEOUT = 5.0


class BatchDetector(Protocol):
    """What the sampler needs of `detection.FaceDetector` (blocking; run in a thread)."""

    def detect_batch(self, frames: Sequence[BGRImage]) -> list[list[Face]]: ...


@dataclass(frozen=True, slots=True)
class SamplerStats:
    """Counters since start; `dropped_frames` is the back-pressure figure to watch."""

    students: int
    batches: int
    samples: int
    dropped_frames: int
    stale_samples: int
    violations: int
    thumbnails: int
    last_batch_seconds: float
    max_batch_seconds: float
    max_batch_size: int


class _Student:
    """The sampler's state for one attempt; kept across a reconnect (a new slot), whose
    gap resets the rules' episodes."""

    __slots__ = (
        "attempt_id",
        "settings",
        "slot",
        "rules",
        "last_seq",
        "next_sample",
        "next_thumbnail",
        "active",
    )

    def __init__(self, source: AnalysisSource, rules: StudentRules, now: float) -> None:
        self.attempt_id = source.attempt_id
        self.settings = source.settings
        self.slot: LatestFrame = source.slot
        self.rules = rules
        self.last_seq = 0
        self.next_sample = _next_slot(now, source.settings.sample_interval, inclusive=True)
        self.next_thumbnail = 0.0  # the first sampled frame also makes the first thumbnail
        self.active = True


@dataclass(frozen=True, slots=True)
class _Job:
    student: _Student
    sample: FrameSample
    want_thumbnail: bool


@dataclass(frozen=True, slots=True)
class _Analysed:
    image: BGRImage
    stats: FrameStats
    faces: list[Face]
    thumbnail: bytes | None


class AnalysisSampler:
    """One per process. Use as `async with AnalysisSampler(...)`, or `start()`/`stop()`.

    `sources` lists the attempts sending video (`AnalysisPeers`), `detector` is the
    shared `FaceDetector`, `sink` receives results. `on_loop_lag` gets every loop-lag
    measurement (seconds), e.g. a histogram's `observe`.
    """

    def __init__(
        self,
        sources: AnalysisSources,
        detector: BatchDetector,
        sink: AnalysisSink,
        *,
        tick: float = DEFAULT_TICK,
        on_loop_lag: Callable[[float], None] | None = None,
        rules_factory: Callable[[RuleSettings], StudentRules] = StudentRules,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
    ) -> None:
        if tick <= 0:
            raise ValueError("tick must be positive")
        self._sources = sources
        self._detector = detector
        self._sink = sink
        self._tick = tick
        self._rules_factory = rules_factory
        self._stop_timeout = stop_timeout
        self.loop_lag = LoopLagMonitor(on_lag=on_loop_lag)
        self._students: dict[str, _Student] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._batch: asyncio.Task[None] | None = None
        self._batches = self._samples = self._dropped = self._stale = 0
        self._violations = self._thumbnails = self._max_batch_size = 0
        self._last_batch_seconds = self._max_batch_seconds = 0.0

    @property
    def dropped_frames(self) -> int:
        return self._dropped

    @property
    def busy(self) -> bool:
        return self._batch is not None and not self._batch.done()

    @property
    def stats(self) -> SamplerStats:
        return SamplerStats(
            students=len(self._students),
            batches=self._batches,
            samples=self._samples,
            dropped_frames=self._dropped,
            stale_samples=self._stale,
            violations=self._violations,
            thumbnails=self._thumbnails,
            last_batch_seconds=self._last_batch_seconds,
            max_batch_seconds=self._max_batch_seconds,
            max_batch_size=self._max_batch_size,
        )

    async def __aenter__(self) -> AnalysisSampler:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._loop_task is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analysis")
        self.loop_lag.start()
        self._loop_task = asyncio.get_running_loop().create_task(self._run(), name="sampler")

    async def stop(self) -> None:
        """Stop ticking, let the running batch deliver (up to `stop_timeout`), release."""
        task, self._loop_task = self._loop_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        batch, self._batch = self._batch, None
        if batch is not None and not batch.done():
            # The batch's violations are evidence we should not lose at shutdown; a
            # detector stuck for longer is abandoned (its thread cannot be interrupted).
            done, _ = await asyncio.wait({batch}, timeout=self._stop_timeout)
            if not done:
                batch.cancel()
                await asyncio.gather(batch, return_exceptions=True)
        await self.loop_lag.stop()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._students.clear()

    def forget(self, attempt_id: str) -> None:
        """Drop an attempt's rule state now (attempt ended) rather than at the next tick."""
        student = self._students.pop(attempt_id, None)
        if student is not None:
            student.active = False

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._tick)
            try:
                self._tick_once(time.monotonic())
            except Exception:
                logger.exception("analysis tick failed")

    def _tick_once(self, now: float) -> None:
        self._sync_students(now)
        due: list[_Student] = []
        for student in self._students.values():
            if now >= student.next_sample:
                student.next_sample = _next_slot(now, student.settings.sample_interval)
                due.append(student)
        if not due:
            return
        jobs: list[_Job] = []
        for student in due:
            sample = student.slot.latest()
            if sample is None or sample.seq == student.last_seq:
                # Nothing new since the last sample: a frozen or stalled camera. Analysing
                # the same frame again would report a face that may no longer be there.
                self._stale += 1
                continue
            jobs.append(_Job(student, sample, now >= student.next_thumbnail))
        if not jobs:
            return
        if self.busy:
            self._dropped += len(jobs)
            return
        for job in jobs:
            job.student.last_seq = job.sample.seq
            if job.want_thumbnail:
                settings = job.student.settings
                # Half a sample early, so tick jitter cannot push it to the next sample.
                job.student.next_thumbnail = (
                    now + settings.thumbnail_interval - settings.sample_interval / 2
                )
        self._batch = asyncio.get_running_loop().create_task(
            self._guarded_batch(jobs), name="analysis-batch"
        )

    def _sync_students(self, now: float) -> None:
        live = {source.attempt_id: source for source in self._sources.sources()}
        for attempt_id in [a for a in self._students if a not in live]:
            self.forget(attempt_id)
        for attempt_id, source in live.items():
            student = self._students.get(attempt_id)
            if student is None or student.settings != source.settings:
                if student is not None:
                    student.active = False
                rules = self._rules_factory(source.settings.rule_settings)
                self._students[attempt_id] = _Student(source, rules, now)
            elif student.slot is not source.slot:
                # Reconnected: a new peer whose frames count from 1. Its first frames
                # follow a gap nothing was seen in, so episodes start afresh.
                student.slot = source.slot
                student.last_seq = 0
                student.rules.reset()

    async def _guarded_batch(self, jobs: list[_Job]) -> None:
        try:
            await self._run_batch(jobs)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("analysis batch of %d frames failed", len(jobs))

    async def _run_batch(self, jobs: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        executor = self._executor
        if executor is None:
            return
        started = time.monotonic()
        requests = [(job.sample, job.want_thumbnail) for job in jobs]
        results = await loop.run_in_executor(executor, _analyse, self._detector, requests)
        elapsed = time.monotonic() - started
        self._batches += 1
        self._samples += len(jobs)
        self._last_batch_seconds = elapsed
        self._max_batch_seconds = max(self._max_batch_seconds, elapsed)
        self._max_batch_size = max(self._max_batch_size, len(jobs))
        for job, result in zip(jobs, results, strict=True):
            await self._deliver(job, result, executor)

    async def _deliver(self, job: _Job, result: _Analysed, executor: ThreadPoolExecutor) -> None:
        student = job.student
        if not student.active:
            return  # the attempt ended while its frame was being analysed
        violations = student.rules.observe(job.sample.received_at, result.stats, result.faces)
        if result.thumbnail is not None:
            self._thumbnails += 1
            await self._call_sink(self._sink.thumbnail(student.attempt_id, result.thumbnail))
        if not violations:
            return
        loop = asyncio.get_running_loop()
        evidence = await loop.run_in_executor(executor, evidence_jpeg, result.image)
        for violation in violations:
            self._violations += 1
            await self._call_sink(self._sink.violation(student.attempt_id, violation, evidence))

    async def _call_sink(self, call: Awaitable[None]) -> None:
        # One failing delivery (a full writer, a closed dashboard) must not cost the
        # other students of the batch their results.
        try:
            await call
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("analysis sink failed")


def _analyse(
    detector: BatchDetector, requests: Sequence[tuple[FrameSample, bool]]
) -> list[_Analysed]:
    """The blocking part of a batch, run in the sampler's worker thread."""
    images = [sample.to_bgr() for sample, _ in requests]
    faces = detector.detect_batch(images)
    return [
        _Analysed(
            image=image,
            stats=frame_stats(image),
            faces=list(found),
            thumbnail=thumbnail_jpeg(image) if want_thumbnail else None,
        )
        for image, found, (_, want_thumbnail) in zip(images, faces, requests, strict=True)
    ]


def _next_slot(now: float, interval: float, *, inclusive: bool = False) -> float:
    """The next multiple of `interval` after `now` (or at it, if `inclusive`).

    Students with the same interval thus fall due on the same tick and share one batch.
    """
    slots = now / interval
    index = math.ceil(slots) if inclusive else math.floor(slots) + 1
    return index * interval
