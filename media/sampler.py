"""The process's one analysis loop: samples each student's latest frame at the student's
rate, runs the detector on the students due together in one batch, feeds the rules, and
hands violations (with evidence) and thumbnails to the server's sink.

A WebRTC student's track brings several frames a second; the sampler reads its slot at its
own clock, and students are spread over the ticks of their interval (`lanes.py`), so the
detector gets a steady trickle of small batches rather than one burst a second. A snapshot
student's page already sends one frame per interval (a `paced` source): each frame is
taken at the first tick after it arrives, since a second clock of the same rate loses the
frames that land just after its ticks (docs/architecture.md: ~5 % at 300 students).

Back-pressure is by dropping, never by queueing: a due lane student waits for the first
free tick, a paced student's frame waits in its slot; a sample lost meanwhile (no free tick
within the interval, a frame replaced in its slot) counts in `dropped_frames`, a camera or
page with nothing new in `stale_samples`.

The event loop only schedules; conversion, inference and JPEG encoding run in the
sampler's worker threads. A frame that has not changed since the student's last detected
one reuses that detection (`change.py`), with a forced detection every few seconds. Each
stage's CPU time (thread time, so a thread waiting for a core is not charged) is summed
in `stage_seconds`: `/metrics` shows it, `benchmarks/analysis/bench_node.py` divides it
by student-seconds. A batch is split across `workers` threads (one per core, at
most `MAX_DEFAULT_WORKERS`; onnxruntime releases the GIL while it infers), and those
threads run at a lower CPU priority than the loop's: measured on the real node with 100
students (docs/benchmarks.md), two workers at the loop's priority pushed its lag p99 to
85 ms, at nice 10 it stayed at 24–46 ms with every sample analysed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from core.tasks import stop_task
from detection import Face, FrameStats, RuleSettings, StudentRules, frame_stats

from .analysis import AnalysisSink, AnalysisSource, AnalysisSources
from .change import DEFAULT_FORCE_EVERY, DEFAULT_THRESHOLD, ChangeGate, tiny_grey
from .errors import MediaError
from .frames import BGRImage, FrameSample, LatestFrame, evidence_jpeg, thumbnail_jpeg
from .lanes import DEFAULT_LANE_SIZE, Lanes
from .loop_lag import LoopLagMonitor
from .priority import lower_current_thread

logger = logging.getLogger(__name__)

DEFAULT_TICK = 0.1
# A paced sender's frame is late (a stalled camera or page) after this many intervals.
PACED_GRACE = 1.5
# A batch that ends with at least this many snapshots waiting starts the next tick at once
# (a lane's size, one onnxruntime run; measured in docs/architecture.md: fewer idle a worker).
CHAIN_AT = DEFAULT_LANE_SIZE
# Each worker thread runs its own onnxruntime call (one intra-op thread each); more threads
# than cores would only make them take turns.
MAX_DEFAULT_WORKERS = 2
DEFAULT_STOP_TIMEOUT = 5.0
# What `stage_seconds` counts; "rules" runs on the loop, the others in the worker threads.
STAGES = ("decode", "change", "detect", "stats", "thumbnail", "evidence", "rules")


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
    # Frames received and not yet counted: in the running batch, or (snapshots) waiting
    # in their slots. received = samples + dropped + pending, at any moment.
    pending_samples: int
    violations: int
    thumbnails: int
    last_batch_seconds: float
    max_batch_seconds: float
    max_batch_size: int


class _Student:
    """The sampler's state for one attempt; kept across a reconnect (a new slot), whose
    gap resets the rules' episodes."""

    __slots__ = (
        "active",
        "attempt_id",
        "gate",
        "last_seq",
        "next_sample",
        "next_thumbnail",
        "offset",
        "paced",
        "rules",
        "settings",
        "slot",
    )

    def __init__(
        self, source: AnalysisSource, rules: StudentRules, now: float, offset: float, gate: ChangeGate | None
    ) -> None:
        self.attempt_id = source.attempt_id
        self.gate = gate
        self.settings = source.settings
        self.slot: LatestFrame = source.slot
        self.rules = rules
        self.last_seq = 0
        self.offset = offset  # its lane: how far into each interval it is sampled
        self.paced = source.paced
        # A lane student's next sample; a paced student's deadline for its next frame.
        self.next_sample = (
            now + source.settings.sample_interval * PACED_GRACE
            if source.paced
            else _next_slot(now, source.settings.sample_interval, offset, inclusive=True)
        )
        self.next_thumbnail = 0.0  # the first sampled frame also makes the first thumbnail
        self.active = True

    def new_sample(self) -> FrameSample | None:
        """The slot's frame if it arrived since the last one taken, else None."""
        sample = self.slot.latest()
        return sample if sample is not None and sample.seq != self.last_seq else None


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
    detected: bool  # False: the frame had not changed, the last detection's faces were reused


class _Stopwatch:
    """Thread CPU time per stage, lap by lap (a worker thread's own; see `STAGES`)."""

    __slots__ = ("_last", "seconds")

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.thread_time()

    def lap(self, stage: str) -> None:
        now = time.thread_time()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._last
        self._last = now


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
        workers: int | None = None,
        lane_size: int = DEFAULT_LANE_SIZE,
        skip_unchanged: bool = True,
        change_threshold: float = DEFAULT_THRESHOLD,
        force_detect_every: float = DEFAULT_FORCE_EVERY,
    ) -> None:
        if tick <= 0:
            raise ValueError("tick must be positive")
        if workers is None:
            workers = min(MAX_DEFAULT_WORKERS, os.cpu_count() or 1)
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self._workers = workers
        self._skip_unchanged = skip_unchanged
        self._change_threshold = change_threshold
        self._force_detect_every = force_detect_every
        self.stage_seconds: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self.detections = 0
        self.undecodable = 0  # snapshots that did not decode: one lost sample each, no traceback
        self.skipped_detections = 0
        self._lanes = Lanes(tick, lane_size)
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
        self._wake = asyncio.Event()
        self._batches = self._samples = self._dropped = self._stale = self._in_flight = 0
        self._violations = self._thumbnails = self._max_batch_size = 0
        self._last_batch_seconds = self._max_batch_seconds = 0.0

    @property
    def dropped_frames(self) -> int:
        return self._dropped

    @property
    def stale_samples(self) -> int:
        return self._stale

    @property
    def analysed_samples(self) -> int:
        return self._samples

    @property
    def pending_samples(self) -> int:
        return self._in_flight + self._waiting()

    def _waiting(self) -> int:
        """Paced students whose new frame waits in its slot."""
        return sum(1 for s in self._students.values() if s.paced and s.new_sample() is not None)

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
            pending_samples=self.pending_samples,
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
        self._executor = ThreadPoolExecutor(
            max_workers=self._workers, thread_name_prefix="analysis", initializer=lower_current_thread
        )
        self.loop_lag.start()
        self._loop_task = asyncio.get_running_loop().create_task(self._run(), name="sampler")

    async def stop(self) -> None:
        """Stop ticking, let the running batch deliver (up to `stop_timeout`), release."""
        task, self._loop_task = self._loop_task, None
        await stop_task(task)
        batch, self._batch = self._batch, None
        if batch is not None and not batch.done():
            # The batch's violations are evidence we should not lose at shutdown; a
            # detector stuck for longer is abandoned (its thread cannot be interrupted).
            done, _ = await asyncio.wait({batch}, timeout=self._stop_timeout)
            if not done:
                await stop_task(batch)
        await self.loop_lag.stop()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._students.clear()
        self._lanes.clear()

    def forget(self, attempt_id: str) -> None:
        """Drop an attempt's rule state now (attempt ended) rather than at the next tick."""
        student = self._students.pop(attempt_id, None)
        if student is not None:
            student.active = False
            self._lanes.release(attempt_id)

    async def _run(self) -> None:
        while True:
            # A tick every `tick` s, and one as soon as a batch ends with `CHAIN_AT`
            # snapshots waiting: those go to the workers at once, not up to a tick later.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._tick)
            self._wake.clear()
            try:
                self._tick_once(time.monotonic())
            except Exception:
                logger.exception("analysis tick failed")

    def _tick_once(self, now: float) -> None:
        self._sync_students(now)
        busy = self.busy
        jobs: list[_Job] = []
        paced: list[_Student] = []
        for student in self._students.values():
            if student.paced:
                paced.append(student)
                continue
            job = self._lane_job(student, now, busy)
            if job is not None:
                jobs.append(job)
        if paced and not busy:
            jobs += self._paced_jobs(paced, now)
        if not jobs:
            return
        if busy:
            # Lane students busy for a whole interval: these samples are lost, the
            # effective rate falls. (A paced student's frame waits in its slot instead.)
            self._dropped += len(jobs)
            return
        for job in jobs:
            job.student.last_seq = job.sample.seq
            if job.want_thumbnail:
                settings = job.student.settings
                # Half a sample early, so tick jitter cannot push it to the next sample.
                job.student.next_thumbnail = now + settings.thumbnail_interval - settings.sample_interval / 2
        self._in_flight = len(jobs)
        self._batch = asyncio.get_running_loop().create_task(self._guarded_batch(jobs), name="analysis-batch")

    def _lane_job(self, student: _Student, now: float, busy: bool) -> _Job | None:
        if now < student.next_sample:
            return None
        interval = student.settings.sample_interval
        if busy and now < student.next_sample + interval:
            # The detector is still on an earlier batch: the student stays due and is
            # taken at the first free tick (a sample late by a tick is still a sample).
            # Nothing queues: the slot holds one frame, a batch at most every student.
            return None
        student.next_sample = _next_slot(now, interval, student.offset)
        sample = student.new_sample()
        if sample is None:
            # Nothing new since the last sample: a frozen or stalled camera. Analysing
            # the same frame again would report a face that may no longer be there.
            self._stale += 1
            return None
        return _Job(student, sample, now >= student.next_thumbnail)

    def _paced_jobs(self, students: list[_Student], now: float) -> list[_Job]:
        """Every paced student's new frame, all in this tick's batch: no cap, since a burst's
        longer batch is followed by shorter ones while the node keeps up (a cap per tick
        was measured and lost 16 % at 300 students, docs/architecture.md)."""
        jobs = []
        for student in students:
            sample = student.new_sample()
            if sample is None:
                if now >= student.next_sample:
                    # No frame for an interval and a half: the page or its camera stalled.
                    self._stale += 1
                    student.next_sample = now + student.settings.sample_interval
                continue
            if student.last_seq:
                # Frames the page sent that were replaced in the slot before one was taken.
                self._dropped += max(0, sample.seq - student.last_seq - 1)
            student.next_sample = now + student.settings.sample_interval * PACED_GRACE
            jobs.append(_Job(student, sample, now >= student.next_thumbnail))
        return jobs

    def _sync_students(self, now: float) -> None:
        live = {source.attempt_id: source for source in self._sources.sources()}
        for attempt_id in [a for a in self._students if a not in live]:
            self.forget(attempt_id)
        for attempt_id, source in live.items():
            student = self._students.get(attempt_id)
            # New, new rules, or another transport (sampled at the page's clock or in a lane).
            if student is None or student.settings != source.settings or student.paced != source.paced:
                if student is not None:
                    student.active = False
                rules = self._rules_factory(source.settings.rule_settings)
                # A paced sender is spread by its own clock; lanes are for the others.
                if source.paced:
                    self._lanes.release(attempt_id)
                    offset = 0.0
                else:
                    offset = self._lanes.assign(attempt_id, source.settings.sample_interval)
                gate = ChangeGate(self._change_threshold, self._force_detect_every) if self._skip_unchanged else None
                self._students[attempt_id] = _Student(source, rules, now, offset, gate)
            elif student.slot is not source.slot:
                # Reconnected: a new peer whose frames count from 1. Its first frames
                # follow a gap nothing was seen in, so episodes start afresh.
                student.slot = source.slot
                student.last_seq = 0
                student.rules.reset()
                if student.gate is not None:
                    student.gate.reset()

    async def _guarded_batch(self, jobs: list[_Job]) -> None:
        try:
            await self._run_batch(jobs)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("analysis batch of %d frames failed", len(jobs))
            # Its frames were not analysed: lost samples, still accounted for.
            self._dropped += self._in_flight
            self._in_flight = 0
        finally:
            if self._waiting() >= CHAIN_AT:
                self._wake.set()

    async def _run_batch(self, jobs: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        executor = self._executor
        if executor is None:
            return
        started = time.monotonic()
        requests = [_Request(job.sample, job.want_thumbnail, job.student.gate) for job in jobs]
        parts = await asyncio.gather(
            *(
                loop.run_in_executor(executor, _analyse, self._detector, chunk)
                for chunk in _split(requests, self._workers)
            )
        )
        results = [result for part, _ in parts for result in part]
        for _, seconds in parts:
            self._add_stages(seconds)
        detected = sum(1 for result in results if result is not None and result.detected)
        undecodable = sum(1 for result in results if result is None)
        self.detections += detected
        self.skipped_detections += len(results) - detected - undecodable
        self.undecodable += undecodable
        elapsed = time.monotonic() - started
        self._batches += 1
        self._samples += len(jobs)
        self._in_flight = 0
        self._last_batch_seconds = elapsed
        self._max_batch_seconds = max(self._max_batch_seconds, elapsed)
        self._max_batch_size = max(self._max_batch_size, len(jobs))
        for job, result in zip(jobs, results, strict=True):
            if result is None:
                continue
            await self._deliver(job, result, executor)

    async def _deliver(self, job: _Job, result: _Analysed, executor: ThreadPoolExecutor) -> None:
        student = job.student
        if not student.active:
            return  # the attempt ended while its frame was being analysed
        started = time.thread_time()
        violations = student.rules.observe(job.sample.received_at, result.stats, result.faces)
        self.stage_seconds["rules"] += time.thread_time() - started
        if result.thumbnail is not None:
            self._thumbnails += 1
            await self._call_sink(self._sink.thumbnail(student.attempt_id, result.thumbnail))
        if not violations:
            return
        # A snapshot is its own evidence: the JPEG the student sent, not a re-encoding.
        sent = job.sample.jpeg
        if sent is not None:
            evidence = sent
        else:
            evidence, seconds = await asyncio.get_running_loop().run_in_executor(
                executor, _timed_evidence, result.image
            )
            self.stage_seconds["evidence"] += seconds
        for violation in violations:
            self._violations += 1
            await self._call_sink(self._sink.violation(student.attempt_id, violation, evidence))

    def _add_stages(self, seconds: dict[str, float]) -> None:
        for stage, spent in seconds.items():
            self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + spent

    async def _call_sink(self, call: Awaitable[None]) -> None:
        # One failing delivery (a full writer, a closed dashboard) must not cost the
        # other students of the batch their results.
        try:
            await call
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("analysis sink failed")


@dataclass(frozen=True, slots=True)
class _Request:
    sample: FrameSample
    want_thumbnail: bool
    gate: ChangeGate | None


def _analyse(detector: BatchDetector, requests: Sequence[_Request]) -> tuple[list[_Analysed | None], dict[str, float]]:
    """The blocking part of a batch, run in the sampler's worker thread; with its stage times.

    A frame that does not decode (a snapshot with JPEG markers around garbage) is None:
    that student loses one sample, the others of the batch are analysed as usual.
    """
    clock = _Stopwatch()
    decoded: list[BGRImage | None] = []
    for request in requests:
        try:
            decoded.append(request.sample.to_bgr())
        except MediaError:
            decoded.append(None)
    clock.lap("decode")
    good = [index for index, image in enumerate(decoded) if image is not None]
    images = {index: image for index, image in enumerate(decoded) if image is not None}
    now = time.monotonic()
    tinies = {index: tiny_grey(images[index]) for index in good if requests[index].gate is not None}
    need = []
    for index in good:
        gate, tiny = requests[index].gate, tinies.get(index)
        if gate is None or tiny is None or gate.decide(tiny, now).detect:
            need.append(index)
    clock.lap("change")
    found = detector.detect_batch([images[index] for index in need]) if need else []
    clock.lap("detect")
    faces: dict[int, list[Face]] = {}
    for index, detected in zip(need, found, strict=True):
        faces[index] = list(detected)
        gate, tiny = requests[index].gate, tinies.get(index)
        if gate is not None and tiny is not None:
            gate.detected_faces(tiny, faces[index], now)
    stats = {index: frame_stats(images[index]) for index in good}
    clock.lap("stats")
    thumbnails = {index: _thumbnail(requests[index], images[index]) for index in good if requests[index].want_thumbnail}
    clock.lap("thumbnail")
    results: list[_Analysed | None] = []
    for index, request in enumerate(requests):
        image = images.get(index)
        if image is None:
            results.append(None)
            continue
        gate = request.gate
        reused = index not in faces
        results.append(
            _Analysed(
                image=image,
                stats=stats[index],
                faces=gate.reuse() if reused and gate is not None else faces.get(index, []),
                thumbnail=thumbnails.get(index),
                detected=not reused,
            )
        )
    return results, clock.seconds


def _thumbnail(request: _Request, image: BGRImage) -> bytes:
    # A snapshot is already a small JPEG: the teacher sees it as the student sent it.
    jpeg = request.sample.jpeg
    return jpeg if jpeg is not None else thumbnail_jpeg(image)


def _timed_evidence(image: BGRImage) -> tuple[bytes, float]:
    started = time.thread_time()
    jpeg = evidence_jpeg(image)
    return jpeg, time.thread_time() - started


def _split(requests: list[_Request], parts: int) -> list[list[_Request]]:
    """`requests` in at most `parts` contiguous chunks of near-equal size, in order."""
    parts = max(1, min(parts, len(requests)))
    size, extra = divmod(len(requests), parts)
    chunks = []
    start = 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        chunks.append(requests[start:end])
        start = end
    return chunks


def _next_slot(now: float, interval: float, offset: float = 0.0, *, inclusive: bool = False) -> float:
    """The next multiple of `interval`, plus `offset`, after `now` (or at it, if `inclusive`).

    Students of one lane (same interval, same offset) thus fall due on the same tick and
    share one batch.
    """
    slots = (now - offset) / interval
    index = math.ceil(slots) if inclusive else math.floor(slots) + 1
    return index * interval + offset
