"""The microphone track of a speaking exam: drained into a bounded ring, resampled to what
the voice model takes (16 kHz mono float), and never written anywhere.

Why a ring: like video (frames.py), aiortc parks every decoded audio frame (20 ms of 48 kHz
stereo from Opus, ~3.8 KB) on an unbounded queue until `recv()` takes it, so the track is
drained at the sender's rate. The drain only appends the frame to a ring of at most
`DEFAULT_RING_SECONDS`; the speech listener takes the whole ring every tick. When the
listener falls behind (its worker busy), the oldest frames fall out and are counted in
`dropped`: the rule then hears less, never more, and memory stays bounded.
"""

from __future__ import annotations

import time
from collections import deque

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from detection.voice import SAMPLE_RATE, Samples

from .priority import lower_decoder_threads

DEFAULT_RING_SECONDS = 5.0
_FRAME_SECONDS = 0.02  # what aiortc's Opus decoder delivers


class AudioRing:
    """The most recent decoded audio frames of one track, each with its arrival time."""

    __slots__ = ("_frames", "dropped", "received")

    def __init__(self, seconds: float = DEFAULT_RING_SECONDS) -> None:
        self._frames: deque[tuple[av.AudioFrame, float]] = deque(maxlen=max(1, round(seconds / _FRAME_SECONDS)))
        self.received = 0
        self.dropped = 0

    def put(self, frame: av.AudioFrame, received_at: float | None = None) -> None:
        if len(self._frames) == self._frames.maxlen:
            self.dropped += 1
        self._frames.append((frame, time.time() if received_at is None else received_at))
        self.received += 1

    def take(self) -> list[tuple[av.AudioFrame, float]]:
        """Everything held, oldest first; the ring is empty afterwards."""
        frames = list(self._frames)
        self._frames.clear()
        return frames

    def __len__(self) -> int:
        return len(self._frames)

    def clear(self) -> None:
        self._frames.clear()


async def drain_audio(track: MediaStreamTrack, ring: AudioRing) -> None:
    """Receive every frame of an audio track until it ends, keeping the newest in `ring`."""
    first = True
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        if first:
            first = False
            lower_decoder_threads()
        if isinstance(frame, av.AudioFrame):
            ring.put(frame)


class Resampler:
    """Any decoded audio to 16 kHz mono float32; one per track (the filter keeps state).

    libswresample through PyAV, one call per 20 ms frame: measured ~0.8 ms CPU per
    student-second here; a numpy decimator by 3 (48 → 16 kHz) with the frames batched was
    slower (1.4-1.7 ms: the per-frame array conversions cost more than the filter saves).
    Blocking; call from the listener's worker thread.
    """

    __slots__ = ("_resampler",)

    def __init__(self) -> None:
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

    def samples(self, frames: list[av.AudioFrame]) -> Samples:
        out: list[Samples] = []
        for frame in frames:
            # Frames the ring dropped leave a hole in the timestamps; the filter need not know.
            frame.pts = None
            for resampled in self._resampler.resample(frame):
                out.append(np.asarray(resampled.to_ndarray(), np.float32).reshape(-1))
        return np.concatenate(out) if out else np.zeros(0, np.float32)
