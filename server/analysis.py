"""Server-side frame analysis as a resource: the ONNX detector (once per process), the
aiortc peers, the sampler, and the sink that turns rule violations into durable,
evidence-carrying violations and thumbnails into teacher pushes.

Only evidence JPEGs of violations are stored; every other frame lives in memory only.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from detection import FaceDetector, RuleViolation, ScaledDetector
from detection.errors import DetectionError
from media import AnalysisPeers, AnalysisSampler, AnalysisSettings, MediaError
from rooms.attempts import AttemptService
from rooms.errors import Conflict, Invalid, RoomsError, Unavailable
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

    def __init__(self, peers: AnalysisPeers, sampler: AnalysisSampler, attempts: AttemptService) -> None:
        self.peers = peers
        self.sampler = sampler
        self._attempts = attempts

    async def offer(self, attempt_id: str, sdp: str, type_: str) -> tuple[str, str]:
        attempt = await self._attempts.attempt(attempt_id)
        if attempt.closed:
            raise Conflict(f"the attempt is {attempt.status}", code="attempt_closed")
        exam = await self._attempts.exam(attempt.exam_id)
        rules = exam.rules
        if not rules.analysis.enabled:
            raise Conflict("this exam does not use server analysis", code="analysis_off")
        try:
            settings = AnalysisSettings.from_rules(
                rules.model_dump(mode="json"),
                attempt.accommodations,
                sample_interval=rules.analysis.sample_interval_seconds,
            )
            answer: tuple[str, str] = await self.peers.accept_offer(attempt_id, sdp, type_, settings)
            return answer
        except MediaError as exc:
            raise _translate(exc) from None

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
        self.sampler.forget(attempt_id)


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
        ScaledDetector(model, settings.analysis_detect_width) if settings.analysis_detect_width else model
    )
    peers = AnalysisPeers(settings.ice_servers)
    sampler = AnalysisSampler(peers, detector, ViolationSink(attempts, notifier))
    metrics.live_peers.set_function(lambda: peers.live_count)
    metrics.dropped_frames.set_function(lambda: sampler.dropped_frames)
    metrics.analysed_samples.set_function(lambda: sampler.analysed_samples)
    return LocalAnalysis(peers, sampler, attempts)


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
