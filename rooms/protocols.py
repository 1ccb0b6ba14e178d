"""The seams that make one node into many: presence, placement and the notifier.

Each has an in-process implementation here (rooms/presence.py, rooms/placement.py) and a
Redis one for clusters; the app factory picks Redis when `PROCTOR_REDIS_URL` is set.
The notifier is implemented by signaling/ (it owns Socket.IO), so rooms/ never imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

PresenceState = Literal["online", "reconnecting", "offline", "submitted"]


@dataclass(frozen=True, slots=True)
class PresenceWrite:
    """What a presence write did. `applied` is False when it lost to a newer state from
    another node (no change). `away_since` (epoch seconds) is set when an `online` write
    ended an absence (the attempt was reconnecting or offline): when the absence began,
    on whichever node it was noticed. It is where a network gap starts. `unseen`: nobody
    noticed that absence (the process holding the student died), so teachers were never
    told the student was away."""

    applied: bool
    away_since: float | None = None
    unseen: bool = False


class Presence(Protocol):
    async def set(self, room_id: str, attempt_id: str, state: PresenceState) -> PresenceWrite:
        """Store a state, compare-and-set (see PresenceWrite)."""
        ...

    async def room(self, room_id: str) -> dict[str, PresenceState]:
        """attempt id -> state for every attempt seen in the room."""
        ...


class Placement(Protocol):
    node_id: str
    draining: bool

    def can_open(self) -> bool:
        """Whether a new room could be placed now (on this node or, in a cluster, any)."""
        ...

    async def acquire(self, room_id: str) -> str:
        """The node hosting `room_id`, placing it now if needed; raises NoCapacity."""
        ...

    async def release(self, room_id: str) -> None: ...

    def hosted(self) -> frozenset[str]: ...


class Notifier(Protocol):
    async def teachers(self, room_id: str, event: str, data: dict[str, Any]) -> None: ...

    async def student(self, attempt_id: str, event: str, data: dict[str, Any]) -> None: ...

    async def room_students(self, room_id: str, event: str, data: dict[str, Any]) -> None: ...
