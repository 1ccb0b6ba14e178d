"""The live path's running parts: the durable writer and the node's periodic work.

Shutdown order (uvicorn's): stop taking rooms, tell clients to go, stop the sweeper, flush
the writer so everything acknowledged-to-be is committed, then the pool closes (an earlier
cleanup context).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from core.tasks import stop_tasks
from rooms.store.event_writer import TRANSIENT
from rooms.store.privacy import purge_expired_evidence

from .wire import NODE

logger = logging.getLogger(__name__)
T = TypeVar("T")


async def live_ctx(app: web.Application) -> AsyncIterator[None]:
    """The durable writer and the node's periodic work: deadlines, revoked sessions, retention."""
    node = app[NODE]
    settings, metrics, hub, attempts = node.settings, node.metrics, node.hub, node.attempts
    writer, tracker, placement = node.writer, node.tracker, node.backends.placement
    writer.start()
    metrics.writer_queue.set_function(lambda: writer.depth)
    metrics.live_rooms.set_function(lambda: len(placement.hosted()))

    async def sweep() -> None:
        async for expired in _every(1.0, attempts.expire_due):
            for attempt in expired:
                await tracker.submitted(attempt.room_id, attempt.id)

    revocations = node.revocations

    async def guard() -> None:
        await revocations.refresh()
        rooms = hub.joined_rooms()
        terminated = await attempts.terminated_in(rooms) if rooms else set()
        await hub.disconnect_unauthorised(terminated)

    async def retention() -> None:
        await purge_expired_evidence(node.database)

    tasks = [
        asyncio.create_task(sweep(), name="deadline-sweeper"),
        asyncio.create_task(_drain(_every(2.0, guard)), name="session-guard"),
        asyncio.create_task(_drain(_every(settings.retention_interval_seconds, retention)), name="retention"),
    ]
    try:
        yield
    finally:
        placement.draining = True
        await hub.disconnect_all()
        await stop_tasks(tasks)
        await writer.close(timeout=settings.drain_timeout_seconds)
        tracker.close()
        await node.feed.close()
        node.occupancy.close()


async def _drain(results: AsyncIterator[object]) -> None:
    async for _ in results:
        pass


async def _every(interval: float, fn: Callable[[], Awaitable[T]]) -> AsyncIterator[T]:
    """Call `fn` every `interval` seconds, yielding its results; a failure is logged."""
    while True:
        try:
            yield await fn()
        except asyncio.CancelledError:
            raise
        except TRANSIENT as exc:
            logger.warning("periodic %s: database unavailable (%s)", getattr(fn, "__name__", fn), type(exc).__name__)
        except Exception:
            logger.exception("periodic %s failed; trying again", getattr(fn, "__name__", fn))
        await asyncio.sleep(interval)
