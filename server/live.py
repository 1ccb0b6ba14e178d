"""Wires the live path: durable writer, attempt services, presence, the Socket.IO hub.

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

from rooms.attempts import Attempt, AttemptService
from rooms.classroom import Classroom
from rooms.store.attempts import AttemptStore
from rooms.store.classroom import ClassroomStore
from rooms.store.event_writer import TRANSIENT, EventWriter
from rooms.placement import Occupancy
from rooms.store.privacy import purge_expired_evidence
from rooms.presence import PresenceTracker
from rooms.presence_feed import PresenceFeed
from rooms.protocols import PresenceState
from core.tasks import stop_tasks
from signaling.guard import Admission, Limits
from signaling.hub import Hub
from signaling.rtc import RtcRouter

from .keys import (
    ATTEMPTS,
    AUDIT,
    BACKENDS,
    CATALOG,
    CLASSROOM,
    HUB,
    METRICS,
    PLACEMENT,
    POOL,
    REVOCATIONS,
    SETTINGS,
    TOKENS,
    WRITER,
    WRITER_POOL,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")


def create_hub(app: web.Application) -> Hub:
    settings = app[SETTINGS]
    metrics = app[METRICS]
    hub = Hub(
        tokens=app[TOKENS],
        limits=Limits(settings.max_message_bytes, settings.events_per_second, settings.event_burst),
        allowed_origins=settings.allowed_origins,
        client_manager=app[BACKENDS].client_manager,
        on_refused=lambda code: metrics.acks_refused.labels(code).inc(),
        on_count=lambda ns, delta: metrics.sockets.labels(ns).inc(delta),
        admission=Admission(settings.max_connections, settings.connects_per_ip_per_second,
                            settings.connect_burst_per_ip, settings.connects_per_second, settings.connect_burst),
    )
    hub.attach(app)
    return hub


async def live_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    metrics = app[METRICS]
    pool = app[POOL]
    hub = app[HUB]
    placement = app[PLACEMENT]

    def committed(count: int, oldest: float, kinds: dict[str, int]) -> None:
        metrics.commit_latency.observe(oldest)
        for kind, n in kinds.items():
            metrics.events_written.labels(kind).inc(n)

    writer = EventWriter(
        app[WRITER_POOL], flush_ms=settings.writer_flush_ms, batch_size=settings.writer_batch_size,
        max_pending=settings.writer_max_pending, on_commit=committed,
    )
    writer.start()
    metrics.writer_queue.set_function(lambda: writer.depth)
    metrics.live_rooms.set_function(lambda: len(placement.hosted()))
    notifier = hub.notifier
    attempts = AttemptService(AttemptStore(pool), app[CATALOG], writer, notifier)

    rtc = RtcRouter(hub.sio, attempts, app[CATALOG], app[AUDIT], settings.secret)
    hub.bind_rtc(rtc)

    async def presence_changed(room_id: str, attempt_id: str, state: PresenceState) -> None:
        await notifier.teachers(room_id, "presence", {"attempt_id": attempt_id, "presence": state})
        if state == "offline":
            await rtc.attempt_gone(attempt_id)

    store = app[BACKENDS].presence
    # Pushed by one task in slices: a burst of disconnects must not push inline (rooms/presence_feed.py).
    feed = PresenceFeed(presence_changed)
    tracker = PresenceTracker(store, settings.reconnect_grace_seconds, feed.changed, attempts.record_gap)
    occupancy = Occupancy(placement, linger=settings.reconnect_grace_seconds)
    classroom = Classroom(ClassroomStore(pool), app[CATALOG], attempts, store, notifier, app[AUDIT])
    hub.students.bind(attempts, tracker, occupancy, notifier)
    hub.teachers.bind(classroom, occupancy)
    # cluster: cross-node cache invalidation, lost nodes, re-reads after a Redis outage
    app[BACKENDS].bind(attempts, notifier, resync=hub.resync_teachers)
    app[WRITER] = writer
    app[ATTEMPTS] = attempts
    app[CLASSROOM] = classroom

    async def sweep() -> None:
        async for expired in _every(1.0, attempts.expire_due):
            for attempt in expired:
                await tracker.submitted(attempt.room_id, attempt.id)

    async def end_terminated(attempt: Attempt) -> None:
        # Access ends with the attempt: the student's sockets are closed; a reconnect
        # finds the attempt terminated and can do nothing but read that.
        if attempt.status == "terminated":
            await hub.disconnect_attempt(attempt.id)

    attempts.closed_listeners.append(end_terminated)
    revocations = app[REVOCATIONS]

    async def guard() -> None:
        await revocations.refresh()
        rooms = hub.joined_rooms()
        terminated: set[str] = set()
        if rooms:
            # By room, not by attempt: at 10,000 students the list of attempt ids cost ~2 % of
            # the node's CPU to encode every 2 s (py-spy); (room_id, student_id) is indexed.
            rows = await pool.fetch(
                "SELECT id::text FROM attempts WHERE room_id = ANY($1::uuid[]) AND status = 'terminated'", list(rooms))
            terminated = {r["id"] for r in rows}
        await hub.disconnect_unauthorised(terminated)

    async def retention() -> None:
        await purge_expired_evidence(pool)

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
        await feed.close()
        occupancy.close()


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
