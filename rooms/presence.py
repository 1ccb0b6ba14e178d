"""Presence: who is online, reconnecting, offline or submitted, with a reconnect grace period.

`PresenceTracker` turns socket comings and goings into presence states and neutral timeline
entries (network gaps), and keeps the states in a `Presence` store (in-process or Redis).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .protocols import Presence, PresenceState, PresenceWrite

logger = logging.getLogger(__name__)


class LocalPresence:
    def __init__(self) -> None:
        self._rooms: dict[str, dict[str, PresenceState]] = {}
        self._away: dict[str, float] = {}  # attempt -> when it went reconnecting

    async def set(self, room_id: str, attempt_id: str, state: PresenceState) -> PresenceWrite:
        states = self._rooms.setdefault(room_id, {})
        previous = states.get(attempt_id)
        states[attempt_id] = state
        if state in ("reconnecting", "offline"):
            # offline keeps the start of the absence that reconnecting began
            if previous not in ("reconnecting", "offline") or attempt_id not in self._away:
                self._away[attempt_id] = time.time()
            return PresenceWrite(True)
        away = self._away.pop(attempt_id, None)
        return PresenceWrite(True, away if state == "online" else None)

    async def room(self, room_id: str) -> dict[str, PresenceState]:
        return dict(self._rooms.get(room_id, {}))


@dataclass
class _Seat:
    room_id: str
    connections: int = 0
    offline_timer: asyncio.TimerHandle | None = None
    submitted: bool = False


Changed = Callable[[str, str, PresenceState], Awaitable[None]]
Gap = Callable[[str, float, float], Awaitable[None]]


class PresenceTracker:
    def __init__(self, store: Presence, grace_seconds: float, on_change: Changed, on_gap: Gap) -> None:
        self._store = store
        self._grace = grace_seconds
        self._on_change = on_change
        self._on_gap = on_gap
        self._seats: dict[str, _Seat] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def connections(self, attempt_id: str) -> int:
        seat = self._seats.get(attempt_id)
        return seat.connections if seat else 0

    async def connected(self, room_id: str, attempt_id: str) -> None:
        seat = self._seats.setdefault(attempt_id, _Seat(room_id))
        seat.connections += 1
        if seat.offline_timer is not None:
            seat.offline_timer.cancel()
            seat.offline_timer = None
        if seat.submitted:
            return
        # The store knows when the attempt went away, whichever node noticed it (in a
        # cluster the student may have left another node): that is a reconnect, and the
        # gap is a neutral timeline entry, never a violation.
        write = await self._store.set(seat.room_id, attempt_id, "online")
        if write.unseen and write.applied:
            # The node that held the student died without a word (SIGKILL): teachers saw no
            # absence. They hear `reconnecting` now, then `online`, as after any network blip.
            await self._on_change(seat.room_id, attempt_id, "reconnecting")
        if write.away_since is not None:
            await self._on_gap(attempt_id, write.away_since, max(write.away_since, time.time()))
        if write.applied:
            await self._on_change(seat.room_id, attempt_id, "online")

    async def disconnected(self, attempt_id: str) -> None:
        seat = self._seats.get(attempt_id)
        if seat is None or seat.connections == 0:
            return
        seat.connections -= 1
        if seat.connections > 0:
            return
        if seat.submitted:
            self._seats.pop(attempt_id, None)
            return
        await self._set(seat, attempt_id, "reconnecting")
        loop = asyncio.get_running_loop()
        seat.offline_timer = loop.call_later(self._grace, self._spawn_offline, attempt_id)

    async def submitted(self, room_id: str, attempt_id: str) -> None:
        seat = self._seats.setdefault(attempt_id, _Seat(room_id))
        seat.submitted = True
        if seat.offline_timer is not None:
            seat.offline_timer.cancel()
            seat.offline_timer = None
        await self._set(seat, attempt_id, "submitted")

    def _spawn_offline(self, attempt_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self._go_offline(attempt_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _go_offline(self, attempt_id: str) -> None:
        seat = self._seats.get(attempt_id)
        if seat is None or seat.connections > 0:
            return
        seat.offline_timer = None
        try:
            await self._set(seat, attempt_id, "offline")
        except Exception:
            logger.exception("presence: could not mark %s offline", attempt_id)

    async def _set(self, seat: _Seat, attempt_id: str, state: PresenceState) -> None:
        # In a cluster a stale state (this node's grace timer after the student moved to
        # another node) loses to the newer one, and teachers are not told.
        if (await self._store.set(seat.room_id, attempt_id, state)).applied:
            await self._on_change(seat.room_id, attempt_id, state)

    def close(self) -> None:
        for seat in self._seats.values():
            if seat.offline_timer is not None:
                seat.offline_timer.cancel()
        for task in self._tasks:
            task.cancel()
