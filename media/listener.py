"""The process's one speech loop: every tick, takes each listened-to student's audio ring,
resamples it and runs the voice model on all of them in one worker thread, feeds each
student's speaking rule, and hands `speaking` violations to the server's sink.

Evidence: no audio is stored, ever. A violation carries the duration and, when the student's
camera has a frame at hand, that frame as a JPEG (a picture of the moment, as the video rules
keep); with no frame it carries no evidence at all.

Back-pressure: the rings are bounded (media/audio.py); while a batch is still running the
tick takes nothing, so the rings keep filling up to their bound and then drop their oldest
frames (`dropped_audio_frames`). Nothing queues.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import av

from core.tasks import stop_task
from detection import RuleSettings, RuleViolation, SpeakingRule, VoiceModel, VoiceStream
from detection.voice import SAMPLE_RATE, Samples

from .analysis import AnalysisSink, AnalysisSource, AnalysisSources
from .audio import AudioRing, Resampler
from .frames import LatestFrame, evidence_jpeg
from .priority import lower_current_thread

logger = logging.getLogger(__name__)

DEFAULT_TICK = 0.5


@dataclass(frozen=True, slots=True)
class ListenerStats:
    students: int
    batches: int
    listened_seconds: float  # audio judged, summed over students
    dropped_audio_frames: int
    violations: int
    max_batch_seconds: float


class _Student:
    __slots__ = ("active", "attempt_id", "resampler", "ring", "rule", "settings", "slot", "stream")

    def __init__(self, source: AnalysisSource, ring: AudioRing, rule: SpeakingRule) -> None:
        self.attempt_id = source.attempt_id
        self.settings = source.settings
        self.ring = ring
        self.slot: LatestFrame = source.slot
        self.rule = rule
        self.stream = VoiceStream()
        self.resampler = Resampler()
        self.active = True


@dataclass(frozen=True, slots=True)
class _Job:
    student: _Student
    frames: list[av.AudioFrame]
    ended_at: float


class SpeechListener:
    """One per process, beside the frame sampler. `async with`, or `start()`/`stop()`."""

    def __init__(
        self,
        sources: AnalysisSources,
        model: VoiceModel,
        sink: AnalysisSink,
        *,
        tick: float = DEFAULT_TICK,
        rule_factory: Callable[[RuleSettings], SpeakingRule] = SpeakingRule,
    ) -> None:
        if tick <= 0:
            raise ValueError("tick must be positive")
        self._sources = sources
        self._model = model
        self._sink = sink
        self._tick = tick
        self._rule_factory = rule_factory
        self._students: dict[str, _Student] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._task: asyncio.Task[None] | None = None
        self._batch: asyncio.Task[None] | None = None
        self._batches = self._violations = 0
        self._samples = 0
        self._max_batch_seconds = 0.0
        self._dropped_gone = 0  # drops counted on rings of students who have left

    @property
    def stats(self) -> ListenerStats:
        dropped = self._dropped_gone + sum(student.ring.dropped for student in self._students.values())
        return ListenerStats(
            students=len(self._students),
            batches=self._batches,
            listened_seconds=self._samples / SAMPLE_RATE,
            dropped_audio_frames=dropped,
            violations=self._violations,
            max_batch_seconds=self._max_batch_seconds,
        )

    async def __aenter__(self) -> SpeechListener:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._task is not None:
            return
        # One thread: each student's recurrent state must be used by one call at a time, and
        # the batch across students is what makes the model cheap.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="speech", initializer=lower_current_thread)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="speech-listener")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)
        batch, self._batch = self._batch, None
        if batch is not None and not batch.done():
            done, _ = await asyncio.wait({batch}, timeout=5.0)
            if not done:
                await stop_task(batch)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._students.clear()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._tick)
            try:
                self.tick_once()
            except Exception:
                logger.exception("speech tick failed")

    def tick_once(self) -> None:
        """Take the rings and start a batch, unless the previous batch is still running."""
        self._sync()
        if self._batch is not None and not self._batch.done():
            return
        now = time.time()
        jobs = []
        for student in self._students.values():
            frames = student.ring.take()
            if frames:
                jobs.append(_Job(student, [frame for frame, _ in frames], frames[-1][1] if frames else now))
        if jobs:
            self._batch = asyncio.get_running_loop().create_task(self._guarded(jobs), name="speech-batch")

    async def wait_idle(self) -> None:
        """Wait for the running batch, if any (tests and benchmarks)."""
        if self._batch is not None:
            await asyncio.wait({self._batch})

    def _sync(self) -> None:
        live = {source.attempt_id: source for source in self._sources.sources() if source.audio is not None}
        for attempt_id in [a for a in self._students if a not in live]:
            self._forget(attempt_id)
        for attempt_id, source in live.items():
            assert source.audio is not None
            student = self._students.get(attempt_id)
            if student is not None and student.ring is source.audio and student.settings == source.settings:
                student.slot = source.slot
                continue
            if student is not None:
                self._forget(attempt_id)  # reconnected (a new ring) or new rules: start afresh
            rule = self._rule_factory(source.settings.rule_settings)
            self._students[attempt_id] = _Student(source, source.audio, rule)

    def _forget(self, attempt_id: str) -> None:
        student = self._students.pop(attempt_id, None)
        if student is not None:
            student.active = False
            self._dropped_gone += student.ring.dropped

    async def _guarded(self, jobs: list[_Job]) -> None:
        try:
            await self._run_batch(jobs)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("speech batch of %d students failed", len(jobs))

    async def _run_batch(self, jobs: list[_Job]) -> None:
        executor = self._executor
        if executor is None:
            return
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        results = await loop.run_in_executor(executor, _listen, self._model, jobs)
        self._max_batch_seconds = max(self._max_batch_seconds, time.monotonic() - started)
        self._batches += 1
        for job, (samples, probabilities) in zip(jobs, results, strict=True):
            self._samples += samples
            student = job.student
            if not student.active:
                continue
            violation = student.rule.observe(job.ended_at, probabilities.tolist())
            if violation is not None:
                await self._deliver(student, violation, executor)

    async def _deliver(self, student: _Student, violation: RuleViolation, executor: ThreadPoolExecutor) -> None:
        sample = student.slot.latest()
        evidence = b""
        if sample is not None:
            image = await asyncio.get_running_loop().run_in_executor(executor, sample.to_bgr)
            evidence = await asyncio.get_running_loop().run_in_executor(executor, evidence_jpeg, image)
        self._violations += 1
        try:
            await self._sink.violation(student.attempt_id, violation, evidence)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("speech sink failed")


def _listen(model: VoiceModel, jobs: list[_Job]) -> list[tuple[int, Samples]]:
    """The blocking part of a batch (worker thread): resample, then one model pass for all."""
    audio = [job.student.resampler.samples(job.frames) for job in jobs]
    work = [(job.student.stream, samples) for job, samples in zip(jobs, audio, strict=True)]
    probabilities = model.probabilities(work)
    return [(len(samples), p) for samples, p in zip(audio, probabilities, strict=True)]
