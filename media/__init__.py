"""Server-side media: receive students' camera tracks, sample their latest frames for
`detection/`, and hand violations (with evidence JPEGs) and thumbnails to the server.

Engine package: no aiohttp, no Socket.IO, and no opinion on what a violation is.
"""

from media.analysis import AnalysisSettings, AnalysisSink, AnalysisSource, AnalysisSources
from media.audio import AudioRing
from media.errors import AnalysisUnavailable, InvalidOffer, MediaError, MediaErrorCategory
from media.frames import FrameSample, LatestFrame, evidence_jpeg, thumbnail_jpeg
from media.listener import ListenerStats, SpeechListener
from media.loop_lag import LoopLagMonitor
from media.peers import AnalysisPeers
from media.sampler import AnalysisSampler, BatchDetector, SamplerStats
from media.snapshots import CombinedSources, SnapshotRefused, Snapshots

__all__ = [
    "AnalysisPeers",
    "AnalysisSampler",
    "AnalysisSettings",
    "AnalysisSink",
    "AnalysisSource",
    "AnalysisSources",
    "AnalysisUnavailable",
    "AudioRing",
    "BatchDetector",
    "CombinedSources",
    "FrameSample",
    "InvalidOffer",
    "LatestFrame",
    "ListenerStats",
    "LoopLagMonitor",
    "MediaError",
    "MediaErrorCategory",
    "SamplerStats",
    "SnapshotRefused",
    "Snapshots",
    "SpeechListener",
    "evidence_jpeg",
    "thumbnail_jpeg",
]
