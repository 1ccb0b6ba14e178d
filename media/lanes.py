"""When in its sampling interval each student is sampled: the sampler's lanes.

Sampling every student on the same tick makes one burst per interval: at 100 students and
1 sample/s the detector worked ~0.7 s out of every second, and while it ran the event
loop had to share the machine's cores with it (loop-lag spikes), the whole burst's
deliveries (thumbnails, violations) followed at once, and a burst that overran the
second dropped every student's next sample. Lanes spread the students over the ticks of
their interval instead — lane k is sampled `k` ticks into the interval — so the work
arrives as a steady trickle of small batches.

A lane is filled up to `size` students before the next one opens, so a few students still
share one batch (one onnxruntime call); past `size × lanes` students, each newcomer joins
the least-loaded lane.
"""

from __future__ import annotations

DEFAULT_LANE_SIZE = 8  # detection.face_detector.DEFAULT_MAX_BATCH: one onnxruntime run per lane


class Lanes:
    """Assigns each attempt an offset (seconds) within its sample interval."""

    def __init__(self, tick: float, size: int = DEFAULT_LANE_SIZE) -> None:
        if tick <= 0:
            raise ValueError("tick must be positive")
        if size < 1:
            raise ValueError("lane size must be at least 1")
        self._tick = tick
        self._size = size
        self._counts: dict[float, list[int]] = {}  # interval -> students per lane
        self._assigned: dict[str, tuple[float, int]] = {}  # attempt -> (interval, lane)

    def assign(self, attempt_id: str, interval: float) -> float:
        """The attempt's offset into `interval`, a whole number of ticks below it."""
        self.release(attempt_id)
        # A small epsilon: 1.0 / 0.1 is 9.999999999999998 in floating point.
        lanes = max(1, int(interval / self._tick + 1e-9))
        counts = self._counts.setdefault(interval, [0] * lanes)
        lane = next((i for i, count in enumerate(counts) if count < self._size), None)
        if lane is None:
            lane = min(range(lanes), key=counts.__getitem__)
        counts[lane] += 1
        self._assigned[attempt_id] = (interval, lane)
        return lane * self._tick

    def release(self, attempt_id: str) -> None:
        assigned = self._assigned.pop(attempt_id, None)
        if assigned is None:
            return
        interval, lane = assigned
        counts = self._counts[interval]
        counts[lane] -= 1
        if not any(counts):
            del self._counts[interval]

    def occupancy(self, interval: float) -> list[int]:
        """Students per lane of `interval` (for tests and debugging)."""
        return list(self._counts.get(interval, []))

    def clear(self) -> None:
        self._counts.clear()
        self._assigned.clear()
