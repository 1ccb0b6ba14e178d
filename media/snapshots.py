"""The snapshot transport: students' pages send a small JPEG at the server's sample interval
over their Socket.IO connection, instead of a WebRTC video track.

Why (docs/architecture.md, "Analysis transport"): receiving WebRTC costs the node SRTP,
RTP depacketising, a jitter buffer and a VP8 decode of every frame, in two threads per
student, whether or not the sampler takes the frame. A snapshot costs one Socket.IO
message and one `cv2.imdecode` per sample, and the student's JPEG doubles as thumbnail
and evidence.

`Snapshots` is the registry the sampler reads (an `AnalysisSources`, like `AnalysisPeers`):
one `LatestFrame` per attempt, holding the JPEG bytes; decoding happens only when the
sampler takes the frame, in its worker thread. It checks what it can check cheaply on the
loop — size, the JPEG markers, the rate — and refuses anything else with a `MediaError`
the edge answers as an error ack. A frame that does not decode is counted by the sampler's
batch as a failed sample, never a traceback per frame (see `AnalysisSampler`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .analysis import AnalysisSettings, AnalysisSource, AnalysisSources
from .errors import MediaError, MediaErrorCategory
from .frames import LatestFrame

DEFAULT_MAX_BYTES = 48 * 1024  # a 320x240 camera frame at quality 0.6 is 8-15 KiB
DEFAULT_MAX_STUDENTS = 1000
# A student silent this long is no longer listed (their page closed without a `bye`).
DEFAULT_IDLE_SECONDS = 30.0
# Frames closer together than this share of the sample interval are refused: the page sends
# one per interval, a little early or late; twice the rate is a bug or abuse.
MIN_GAP_SHARE = 0.5
_JPEG_START = b"\xff\xd8\xff"
_JPEG_END = b"\xff\xd9"


class SnapshotRefused(MediaError):
    """A frame the registry would not keep; `retry_after` for one that came too soon."""

    def __init__(self, category: MediaErrorCategory, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(category, message)
        self.code = code
        self.retry_after = retry_after


@dataclass(slots=True)
class _Entry:
    settings: AnalysisSettings
    slot: LatestFrame
    last_put: float  # monotonic


class Snapshots:
    """Registry of snapshot-sending attempts (see the module docstring)."""

    def __init__(
        self,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_students: int = DEFAULT_MAX_STUDENTS,
        idle_seconds: float = DEFAULT_IDLE_SECONDS,
    ) -> None:
        if max_bytes < 1024:
            raise ValueError("max_bytes must be at least 1 KiB")
        self.max_bytes = max_bytes
        self._max_students = max_students
        self._idle = idle_seconds
        self._entries: dict[str, _Entry] = {}
        self.accepted = 0
        self.refused = 0

    @property
    def live_count(self) -> int:
        return len(self._entries)

    def __contains__(self, attempt_id: object) -> bool:
        return attempt_id in self._entries

    def settings_of(self, attempt_id: str) -> AnalysisSettings | None:
        entry = self._entries.get(attempt_id)
        return entry.settings if entry is not None else None

    def put(self, attempt_id: str, jpeg: bytes, settings: AnalysisSettings, now: float | None = None) -> None:
        """Keep `jpeg` as the attempt's latest frame, or raise `SnapshotRefused`."""
        if now is None:
            now = time.monotonic()
        try:
            self._check(jpeg)
        except SnapshotRefused:
            self.refused += 1
            raise
        entry = self._entries.get(attempt_id)
        if entry is not None and entry.settings != settings:
            entry = None  # the exam's rules changed: the sampler starts the attempt afresh
        if entry is None:
            if len(self._entries) >= self._max_students and attempt_id not in self._entries:
                self._expire(now)
                if len(self._entries) >= self._max_students:
                    self.refused += 1
                    raise SnapshotRefused(
                        "unavailable", "unavailable", "this node analyses all the students it can", retry_after=30
                    )
            entry = self._entries[attempt_id] = _Entry(settings, LatestFrame(), float("-inf"))
        gap = now - entry.last_put
        min_gap = settings.sample_interval * MIN_GAP_SHARE
        if gap < min_gap:
            self.refused += 1
            raise SnapshotRefused(
                "invalid",
                "rate_limited",
                f"one frame every {settings.sample_interval:g} s",
                retry_after=round(min_gap - gap, 3),
            )
        entry.last_put = now
        entry.slot.put(jpeg)
        self.accepted += 1

    def _check(self, jpeg: bytes) -> None:
        if not isinstance(jpeg, bytes):
            raise SnapshotRefused("invalid", "invalid", "a frame is the bytes of one JPEG")
        if len(jpeg) > self.max_bytes:
            raise SnapshotRefused("invalid", "too_large", f"a frame is at most {self.max_bytes} bytes")
        # The markers, not a decode: decoding belongs in the sampler's threads, off the loop.
        if not (jpeg.startswith(_JPEG_START) and jpeg.rstrip(b"\x00").endswith(_JPEG_END)):
            raise SnapshotRefused("invalid", "invalid", "a frame must be a JPEG image")

    def close(self, attempt_id: str) -> bool:
        entry = self._entries.pop(attempt_id, None)
        if entry is None:
            return False
        entry.slot.clear()
        return True

    def close_all(self) -> None:
        for attempt_id in list(self._entries):
            self.close(attempt_id)

    def sources(self) -> list[AnalysisSource]:
        self._expire(time.monotonic())
        return [AnalysisSource(attempt_id, e.settings, e.slot, paced=True) for attempt_id, e in self._entries.items()]

    def _expire(self, now: float) -> None:
        for attempt_id in [a for a, e in self._entries.items() if now - e.last_put > self._idle]:
            self.close(attempt_id)


class CombinedSources:
    """The sampler's sources on a node that takes both transports: peers and snapshots.

    An attempt in both (it switched transports) is analysed from its snapshots.
    """

    def __init__(self, peers: AnalysisSources, snapshots: Snapshots) -> None:
        self._peers = peers
        self._snapshots = snapshots

    def sources(self) -> list[AnalysisSource]:
        snapshot = self._snapshots.sources()
        taken = {source.attempt_id for source in snapshot}
        return [source for source in self._peers.sources() if source.attempt_id not in taken] + snapshot
