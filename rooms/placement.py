"""Room placement on a single node: a fixed number of room slots, refused when full."""

from __future__ import annotations

import asyncio

from .errors import NoCapacity
from .protocols import Placement


class LocalPlacement:
    def __init__(self, node_id: str, rooms_per_node: int) -> None:
        self.node_id = node_id
        self.capacity = rooms_per_node
        self.draining = False
        self._rooms: set[str] = set()

    def can_open(self) -> bool:
        return not self.draining and len(self._rooms) < self.capacity

    async def acquire(self, room_id: str) -> str:
        if room_id in self._rooms:
            return self.node_id
        if not self.can_open():
            raise NoCapacity(
                "this node hosts all the rooms it can; try again shortly",
                code="capacity",
                retry_after=30,
            )
        self._rooms.add(room_id)
        return self.node_id

    async def release(self, room_id: str) -> None:
        self._rooms.discard(room_id)

    def hosted(self) -> frozenset[str]:
        return frozenset(self._rooms)


class Occupancy:
    """Counts this node's participants per room; a room is acquired on its first participant
    and released when it has been empty for `linger` seconds (a reconnect keeps it)."""

    def __init__(self, placement: Placement, linger: float) -> None:
        self._placement = placement
        self._linger = linger
        self._members: dict[str, set[str]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def enter(self, room_id: str, member: str) -> str:
        host = await self._placement.acquire(room_id)
        self._members.setdefault(room_id, set()).add(member)
        timer = self._timers.pop(room_id, None)
        if timer is not None:
            timer.cancel()
        return host

    def leave(self, room_id: str, member: str) -> None:
        members = self._members.get(room_id)
        if members is None:
            return
        members.discard(member)
        if not members:
            del self._members[room_id]
            loop = asyncio.get_running_loop()
            self._timers[room_id] = loop.call_later(self._linger, self._release_later, room_id)

    def rooms(self) -> frozenset[str]:
        return frozenset(self._members)

    def _release_later(self, room_id: str) -> None:
        self._timers.pop(room_id, None)
        if room_id in self._members:
            return
        task = asyncio.get_running_loop().create_task(self._placement.release(room_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
