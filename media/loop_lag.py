"""Event-loop lag: how late a sleep of known length wakes up.

Everything the node does (Socket.IO acks, signaling, draining camera tracks) runs on one
loop; a blocking call anywhere shows up here first. The sampler owns one monitor because
media is the usual suspect, but the figure is the whole loop's.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from core.tasks import stop_task

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 0.1
DEFAULT_HISTORY = 600  # one minute at the default interval


class LoopLagMonitor:
    """Sleeps `interval` seconds in a loop and records how much later than asked it woke.

    `on_lag` receives every measurement (seconds), e.g. a Prometheus histogram's
    `observe`; `recent` keeps the last `history` measurements for tests and `/metrics`.
    """

    def __init__(
        self,
        interval: float = DEFAULT_INTERVAL,
        *,
        history: int = DEFAULT_HISTORY,
        on_lag: Callable[[float], None] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._interval = interval
        self._on_lag = on_lag
        self._recent: deque[float] = deque(maxlen=history)
        self._last = 0.0
        self._max = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def last_lag(self) -> float:
        return self._last

    @property
    def max_lag(self) -> float:
        return self._max

    @property
    def recent(self) -> list[float]:
        return list(self._recent)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def reset_max(self) -> float:
        """Return the maximum since the last reset and start a new window."""
        value, self._max = self._max, 0.0
        return value

    def start(self) -> None:
        if self.running:
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + self._interval
            await asyncio.sleep(self._interval)
            lag = max(0.0, loop.time() - expected)
            self._record(lag)

    def _record(self, lag: float) -> None:
        self._last = lag
        self._max = max(self._max, lag)
        self._recent.append(lag)
        if self._on_lag is not None:
            try:
                self._on_lag(lag)
            except Exception:
                # A broken metrics callback must not stop the measurement.
                logger.exception("loop-lag callback failed")
