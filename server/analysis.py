"""Server-side frame analysis as a resource: the ONNX detector (once per process), the
aiortc peers and the snapshot registry (the two transports, docs/architecture.md), the
sampler, and the sink that turns rule violations into durable,
evidence-carrying violations and thumbnails into teacher pushes.

Only evidence JPEGs of violations are stored; every other frame lives in memory only.
"""

from __future__ import annotations

import base64
import functools
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from detection import FaceDetector, RuleViolation, ScaledDetector
from detection.errors import DetectionError
from media import (
    AnalysisPeers,
    AnalysisSampler,
    AnalysisSettings,
    CombinedSources,
    MediaError,
    SnapshotRefused,
    Snapshots,
)
from media.sampler import STAGES
from rooms.attempts import AttemptService
from rooms.errors import Conflict, Invalid, RateLimited, RoomsError, TooLarge, Unavailable
from rooms.events import AnalysisFlag
from rooms.protocols import Notifier
from signaling.analysis_relay import RedisAnalysisRelay

from .keys import METRICS
from .metrics import Metrics
from .settings import Settings

logger = logging.getLogger(__name__)


class ViolationSink:
    """media.AnalysisSink: analysis results to the domain (which weighs and stores them) and
    thumbnails to teachers."""

    def __init__(self, attempts: AttemptService, notifier: Notifier) -> None:
        self._attempts = attempts
        self._notifier = notifier

    async def violation(self, attempt_id: str, violation: RuleViolation, evidence_jpeg: bytes) -> None:
        await self._attempts.analysis_flag(
            attempt_id,
            AnalysisFlag(
                kind=violation.kind,
                started_at=violation.started_at,
                duration=violation.duration,
                confidence=violation.confidence,
                explanation=violation.explanation,
                details=dict(violation.details),
                evidence_jpeg=evidence_jpeg,
            ),
        )

    async def thumbnail(self, attempt_id: str, jpeg: bytes) -> None:
        attempt = await self._attempts.attempt(attempt_id)
        data = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
        await self._notifier.teachers(attempt.room_id, "thumbnail", {"attempt_id": attempt_id, "jpeg": data})


class LocalAnalysis:
    """signaling.rtc.AnalysisGateway over this node's media.AnalysisPeers, with the exam's rules."""

    def __init__(
        self, peers: AnalysisPeers, sampler: AnalysisSampler, attempts: AttemptService, snapshots: Snapshots
    ) -> None:
        self.peers = peers
        self.sampler = sampler
        self.snapshots = snapshots
        self._attempts = attempts

    async def _settings(self, attempt_id: str) -> AnalysisSettings:
        attempt = await self._attempts.attempt(attempt_id)
        if attempt.closed:
            raise Conflict(f"the attempt is {attempt.status}", code="attempt_closed")
        exam = await self._attempts.exam(attempt.exam_id)
        rules = exam.rules
        if not rules.analysis.enabled:
            raise Conflict("this exam does not use server analysis", code="analysis_off")
        try:
            return AnalysisSettings.from_rules(
                rules.model_dump(mode="json"),
                attempt.accommodations,
                sample_interval=rules.analysis.sample_interval_seconds,
            )
        except MediaError as exc:
            raise _translate(exc) from None

    async def offer(self, attempt_id: str, sdp: str, type_: str) -> tuple[str, str]:
        settings = await self._settings(attempt_id)
        try:
            answer: tuple[str, str] = await self.peers.accept_offer(attempt_id, sdp, type_, settings)
            return answer
        except MediaError as exc:
            raise _translate(exc) from None

    async def frame(self, attempt_id: str, jpeg: bytes) -> None:
        """A snapshot from the student's page: kept as the attempt's latest frame.

        The attempt's analysis settings are read once, at its first frame (as an offer
        reads them once per peer); closing the attempt forgets them.
        """
        settings = self.snapshots.settings_of(attempt_id)
        if settings is None:
            settings = await self._settings(attempt_id)
        try:
            self.snapshots.put(attempt_id, jpeg, settings)
        except SnapshotRefused as exc:
            raise _refusal(exc) from None

    async def candidate(self, attempt_id: str, candidate: dict[str, Any]) -> None:
        text = candidate.get("candidate", "")
        mid = candidate.get("sdpMid")
        index = candidate.get("sdpMLineIndex")
        if (
            not isinstance(text, str)
            or not (mid is None or isinstance(mid, str))
            or not (index is None or isinstance(index, int))
        ):
            raise Invalid("a candidate is {candidate, sdpMid, sdpMLineIndex}", fields={"candidate": "malformed"})
        try:
            await self.peers.add_ice_candidate(attempt_id, text, mid, index)
        except MediaError as exc:
            raise _translate(exc) from None

    async def close(self, attempt_id: str) -> None:
        await self.peers.close(attempt_id)
        self.snapshots.close(attempt_id)
        self.sampler.forget(attempt_id)


def _refusal(exc: SnapshotRefused) -> RoomsError:
    if exc.code == "too_large":
        return TooLarge(exc.message, code="too_large")
    if exc.code == "rate_limited":
        return RateLimited(exc.message, code="rate_limited", retry_after=exc.retry_after)
    if exc.category == "unavailable":
        return Unavailable(exc.message, code="unavailable", retry_after=exc.retry_after)
    return Invalid(exc.message, code=exc.code)


def _translate(exc: MediaError) -> RoomsError:
    category = getattr(exc, "category", "invalid")
    if category == "invalid":
        return Invalid(str(exc), code="invalid")
    if category == "conflict":
        return Conflict(str(exc), code="conflict")
    return Unavailable(str(exc), code="unavailable", retry_after=5)


def local_analysis(
    settings: Settings, metrics: Metrics, attempts: AttemptService, notifier: Notifier
) -> LocalAnalysis | None:
    """The ONNX detector, this node's peers and sampler; None when the model is missing."""
    try:
        model = FaceDetector(settings.face_model or None)
    except DetectionError as exc:
        # The node still serves exams without analysis; offers it would answer are
        # answered "rtc_unavailable" (in a cluster it still relays to the rooms' hosts).
        logger.error("server analysis disabled: %s", exc)
        return None
    detector: FaceDetector | ScaledDetector = (
        ScaledDetector(model, settings.analysis_detect_width, recheck=settings.analysis_detect_recheck)
        if settings.analysis_detect_width
        else model
    )
    peers = AnalysisPeers(settings.ice_servers)
    snapshots = Snapshots(max_bytes=settings.analysis_snapshot_max_bytes)
    sampler = AnalysisSampler(
        CombinedSources(peers, snapshots),
        detector,
        ViolationSink(attempts, notifier),
        skip_unchanged=settings.analysis_skip_unchanged,
        force_detect_every=settings.analysis_force_detect_seconds,
    )
    metrics.live_peers.set_function(lambda: peers.live_count)
    metrics.dropped_frames.set_function(lambda: sampler.dropped_frames)
    metrics.stale_samples.set_function(lambda: sampler.stale_samples)
    metrics.analysed_samples.set_function(lambda: sampler.analysed_samples)
    _export_analysis_metrics(metrics, sampler, snapshots, detector)
    return LocalAnalysis(peers, sampler, attempts, snapshots)


def _stage_seconds(sampler: AnalysisSampler, stage: str) -> float:
    return sampler.stage_seconds.get(stage, 0.0)


def _export_analysis_metrics(
    metrics: Metrics, sampler: AnalysisSampler, snapshots: Snapshots, detector: FaceDetector | ScaledDetector
) -> None:
    """Where the analysis CPU goes, and what the snapshot transport and the change gate did."""
    from prometheus_client import Gauge

    stages = Gauge(
        "proctor_analysis_stage_seconds",
        "CPU seconds spent by the sampler per stage since start (thread time)",
        ["stage"],
        registry=metrics.registry,
    )
    for stage in STAGES:
        stages.labels(stage).set_function(functools.partial(_stage_seconds, sampler, stage))
    detections = Gauge(
        "proctor_analysis_detections",
        "Analysed samples by whether the detector ran or the frame was unchanged",
        ["outcome"],
        registry=metrics.registry,
    )
    detections.labels("detected").set_function(lambda: sampler.detections)
    detections.labels("unchanged").set_function(lambda: sampler.skipped_detections)
    if isinstance(detector, ScaledDetector):
        # Of the detected: how many the small copy showed nobody in, detected again at full size.
        detections.labels("rechecked").set_function(lambda: detector.rechecks)
    Gauge(
        "proctor_analysis_pending_samples",
        "Frames received for analysis and not yet counted (in the running batch or waiting in a slot)",
        registry=metrics.registry,
    ).set_function(lambda: sampler.pending_samples)
    frames = Gauge(
        "proctor_analysis_snapshots",
        "Camera snapshots received since start, by outcome; live: students sending them",
        ["outcome"],
        registry=metrics.registry,
    )
    frames.labels("accepted").set_function(lambda: snapshots.accepted)
    frames.labels("refused").set_function(lambda: snapshots.refused)
    frames.labels("live").set_function(lambda: snapshots.live_count)


async def analysis_ctx(app: web.Application) -> AsyncIterator[None]:
    """This node's analysis and, in a cluster, the relay through which the room's host
    node answers every offer (signaling/analysis_relay.py)."""
    local = app[ANALYSIS]
    relay = app[RELAY]
    if local is not None:
        await local.sampler.start()
    if relay is not None:
        await relay.start()
        _export_relay_metrics(app, relay)
    try:
        yield
    finally:
        if relay is not None:
            await relay.stop()
        if local is not None:
            await local.peers.close_all()
            local.snapshots.close_all()
            await local.sampler.stop()


ANALYSIS: web.AppKey[LocalAnalysis | None] = web.AppKey("analysis")
PEERS: web.AppKey[AnalysisPeers] = web.AppKey("analysis_peers")
RELAY: web.AppKey[RedisAnalysisRelay | None] = web.AppKey("analysis_relay")


def _export_relay_metrics(app: web.Application, relay: RedisAnalysisRelay) -> None:
    from prometheus_client import Gauge

    requests = Gauge(
        "proctor_analysis_relayed",
        "Analysis offers and candidates sent to the room's host node since start, by outcome",
        ["outcome"],
        registry=app[METRICS].registry,
    )
    requests.labels("sent").set_function(lambda: relay.relayed)
    requests.labels("failed").set_function(lambda: relay.failed)
    Gauge(
        "proctor_analysis_served",
        "Analysis peers this node answered as its rooms' host",
        registry=app[METRICS].registry,
    ).set_function(lambda: relay.served)
