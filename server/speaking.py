"""Speaking (Step 13 B) as a resource: the voice model (once per process) and the speech
listener over this node's analysis peers, started after them and stopped before them.

The microphone of a speaking exam is analysed in memory only: frames go from the peer's
bounded ring through the model and are dropped; `speaking` violations carry the duration and
a camera frame of the moment when one is at hand (docs/privacy.md).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from detection import VoiceModel
from detection.errors import DetectionError
from media import SpeechListener
from rooms.attempts import AttemptService
from rooms.protocols import Notifier

from .analysis import LocalAnalysis, ViolationSink
from .metrics import Metrics

logger = logging.getLogger(__name__)


def speech_listener(
    analysis: LocalAnalysis | None, metrics: Metrics, attempts: AttemptService, notifier: Notifier
) -> SpeechListener | None:
    """The listener over `analysis`'s peers; None without analysis or without the voice model."""
    if analysis is None:
        return None
    try:
        model = VoiceModel()
    except DetectionError as exc:
        # Exams still run; their speaking rule stays silent and the node says why once.
        logger.error("speaking analysis disabled: %s", exc)
        return None
    listener = SpeechListener(analysis.peers, model, ViolationSink(attempts, notifier))
    from prometheus_client import Gauge

    Gauge(
        "proctor_speech_dropped_audio_frames",
        "Microphone frames dropped by full rings since start (the speech listener fell behind)",
        registry=metrics.registry,
    ).set_function(lambda: listener.stats.dropped_audio_frames)
    return listener


async def speaking_ctx(app: web.Application) -> AsyncIterator[None]:
    """Runs the node's speech listener (appended after `analysis_ctx`, so it stops first)."""
    from .wire import NODE

    listener = app[NODE].speech
    if listener is not None:
        await listener.start()
    try:
        yield
    finally:
        if listener is not None:
            await listener.stop()
