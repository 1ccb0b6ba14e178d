"""Teachers' presence pushes, sent by one task in slices instead of inline.

When 1,000 connections drop at once, their 1,000 disconnect handlers run in one turn of
the event loop. Each used to push its `reconnecting` to the teachers inline, which made
that turn longer for everyone: the other students' acknowledgements waited behind it
(docs/reliability.md, reconnect storm). The tracker now only queues the change here; one
task sends the queue in order, `slice_size` at a time, and yields between slices, so a burst
of presence changes is spread over many short turns. Pushes keep their order (per attempt
and overall); a teacher hears of a change a few milliseconds later than before.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from core.tasks import stop_task

from .protocols import PresenceState

logger = logging.getLogger(__name__)

Push = Callable[[str, str, PresenceState], Awaitable[None]]


class PresenceFeed:
    def __init__(self, push: Push, slice_size: int = 32) -> None:
        self._push = push
        self._slice = slice_size
        self._queue: deque[tuple[str, str, PresenceState]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def depth(self) -> int:
        return len(self._queue)

    async def changed(self, room_id: str, attempt_id: str, state: PresenceState) -> None:
        """Queue a push (the tracker's `on_change`); it returns at once."""
        self._queue.append((room_id, attempt_id, state))
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="presence-feed")

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
            for _ in range(min(self._slice, len(self._queue))):
                room_id, attempt_id, state = self._queue.popleft()
                try:
                    await self._push(room_id, attempt_id, state)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("presence push for %s failed", attempt_id)
            await asyncio.sleep(0)  # whatever else is ready runs before the next slice

    async def close(self, timeout: float = 2.0) -> None:
        """Send what is queued (up to `timeout`), then stop."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._queue and self._task is not None and not self._task.done():
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.01)
        await stop_task(self._task)
