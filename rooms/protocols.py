"""The seams of the domain: what it asks of the cluster, of Socket.IO and of storage.

Presence, placement and the notifier make one node into many: each has an in-process
implementation here (rooms/presence.py, rooms/placement.py) and a Redis one for clusters;
the app factory picks Redis when `PROCTOR_REDIS_URL` is set. The notifier is implemented by
signaling/ (it owns Socket.IO), so rooms/ never imports it.

The repositories (catalog, event sink, audit trail, attempts, classroom) are implemented in
Postgres by rooms/store/; the domain keeps the rules and hands the store pure functions
(`rooms.timer.Change`) to apply, so no module directly under rooms/ imports a database driver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from .accommodations import Terms
from .catalog import Exam, Room
from .events import Record, WriteResult
from .roles import Action
from .timer import Attempt, Change
from .tokens import Claims

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


class ExamCatalog(Protocol):
    async def exam(self, exam_id: str) -> Exam: ...

    async def room(self, room_id: str) -> Room: ...

    async def room_for(self, claims: Claims, room_id: str, action: Action) -> tuple[Room, Exam]:
        """The room and its exam if `claims` may do `action` there (Forbidden otherwise,
        NotFound if absent)."""
        ...


class EventSink(Protocol):
    async def submit(self, record: Record) -> WriteResult:
        """Returns once the record is durable (or known to be stored already)."""
        ...


class AuditTrail(Protocol):
    async def record(
        self,
        claims: Claims,
        action: str,
        target_type: str,
        target_id: str,
        details: dict[str, Any] | None = None,
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class Joined:
    """A join's attempt and what the student's page resumes from."""

    attempt: Attempt
    answers: dict[str, Any]
    last_seq: int
    score: float
    resumed: bool


class AttemptRepository(Protocol):
    async def get(self, attempt_id: str) -> Attempt | None: ...

    async def join(
        self,
        room_id: str,
        student_id: str,
        seats: int,
        opening: Callable[[datetime, Terms], Attempt],
        consent_version: str | None,
    ) -> Joined | None:
        """The student's attempt in the room, created by `opening(now, terms)` on the first join
        (`terms`: the room's window and the student's accommodation, read with the seat count;
        at most `seats` per room); records consent to `consent_version` once and the join or
        resume. None when every seat is taken."""
        ...

    async def change(self, attempt_id: str, change: Change) -> tuple[Attempt, bool] | None:
        """Apply `change` to the stored attempt at the store's now, atomically: (the attempt as
        stored now, whether the change applied). None if there is no such attempt."""
        ...

    async def expire_due(self, expire: Change) -> list[Attempt]:
        """Apply `expire` to every running attempt whose deadline has passed; the changed ones."""
        ...

    async def answered(self, attempt_id: str) -> int:
        """How many questions the attempt has an answer to."""
        ...

    async def score(self, attempt_id: str) -> float:
        """The stored suspicion score: the sum of the attempt's violation severities."""
        ...

    async def log(self, attempt_id: str, kind: str, details: dict[str, Any]) -> None:
        """A neutral timeline entry (join, resume, submit, network gap)."""
        ...

    async def terminated_in(self, room_ids: set[str]) -> set[str]:
        """Ids of the attempts of these rooms that a teacher terminated (on any node)."""
        ...


class Grader(Protocol):
    """Grades closed attempts automatically (rooms/store/grades.py)."""

    async def grade_attempt(self, attempt_id: str) -> object:
        """Grade one closed attempt (idempotent); nothing for a running one."""
        ...

    async def grade_pending(self) -> int:
        """Grade closed attempts left without a grade (a crash between close and grade); how many."""
        ...


@dataclass(frozen=True, slots=True)
class ControlRecord:
    """A teacher's control of one attempt, as the timeline and the audit log keep it."""

    room_id: str
    attempt_id: str
    actor: str
    action: str
    params: dict[str, Any]


class ClassroomRepository(Protocol):
    async def roster(self, room_id: str) -> list[dict[str, Any]]:
        """Every attempt of the room, summarised (score, answers, last violation), by name."""
        ...

    async def recent_violations(self, room_id: str, limit: int) -> list[dict[str, Any]]:
        """The room's latest `limit` violations, oldest first."""
        ...

    async def control(self, control: ControlRecord, change: Change) -> tuple[Attempt, bool] | None:
        """Apply `change` and record `control` in one transaction; nothing is recorded when the
        change does not apply. Returns as `AttemptRepository.change`."""
        ...

    async def record(self, control: ControlRecord) -> None:
        """Record a control that changes no state (warn, message)."""
        ...

    async def announce(self, room_id: str, actor: str, text: str) -> None: ...
