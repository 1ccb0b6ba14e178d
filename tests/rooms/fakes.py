"""In-memory stand-ins for the domain's protocols (rooms/protocols.py), for unit tests of
the rules in AttemptService and Classroom. Integration tests use the real stores."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from rooms.accommodations import Terms
from rooms.attempts import AttemptService
from rooms.catalog import Exam, Room
from rooms.classroom import Classroom
from rooms.events import Record, WriteResult
from rooms.exam import Question, Rules
from rooms.protocols import ControlRecord, Joined, PresenceState, PresenceWrite
from rooms.roles import Action
from rooms.timer import Attempt, Change
from rooms.tokens import Claims

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def attempt(**changes: Any) -> Attempt:
    """A 45-minute attempt started at T0, active unless `changes` say otherwise."""
    base = Attempt(
        id=str(uuid.uuid4()),
        exam_id=str(uuid.uuid4()),
        room_id=str(uuid.uuid4()),
        student_id="s1",
        student_name="Ada",
        status="active",
        started_at=T0,
        deadline=T0 + timedelta(minutes=45),
        paused_at=None,
        extension_seconds=0,
        end_reason=None,
    )
    return replace(base, **changes)


class FakeStore:
    def __init__(self, stored_score: float) -> None:
        self.attempts: dict[str, Attempt] = {}
        # The room's window and the student's accommodation a first join reads.
        self.terms = Terms()
        self.stored_score = stored_score
        self.seats_left = 1
        self.now = T0

    async def get(self, attempt_id: str) -> Attempt | None:
        return self.attempts.get(attempt_id)

    async def join(
        self,
        room_id: str,
        student_id: str,
        seats: int,
        opening: Callable[[datetime, Terms], Attempt],
        consent_version: str | None,
    ) -> Joined | None:
        if self.seats_left == 0:
            return None
        self.seats_left -= 1
        a = opening(self.now, self.terms)
        self.attempts[a.id] = a
        return Joined(attempt=a, answers={}, last_seq=0, score=self.stored_score, resumed=False)

    async def change(self, attempt_id: str, change: Change) -> tuple[Attempt, bool] | None:
        current = self.attempts[attempt_id]
        changed = change(current, self.now)
        if changed is None:
            return current, False
        self.attempts[attempt_id] = changed
        return changed, True

    async def expire_due(self, expire: Change) -> list[Attempt]:
        return []

    async def answered(self, attempt_id: str) -> int:
        return 0

    async def score(self, attempt_id: str) -> float:
        return self.stored_score

    async def log(self, attempt_id: str, kind: str, details: dict[str, Any]) -> None:
        pass

    async def terminated_in(self, room_ids: set[str]) -> set[str]:
        return {a.id for a in self.attempts.values() if a.room_id in room_ids and a.status == "terminated"}


class FakeCatalog:
    def __init__(self, exam: Exam, room: Room) -> None:
        self._exam, self._room = exam, room

    async def exam(self, exam_id: str) -> Exam:
        return self._exam

    async def room(self, room_id: str) -> Room:
        return self._room

    async def room_for(self, claims: Claims, room_id: str, action: Action) -> tuple[Room, Exam]:
        return self._room, self._exam


class FakeWriter:
    def __init__(self) -> None:
        self.ids = iter(range(1, 1000))

    async def submit(self, record: Record) -> WriteResult:
        return WriteResult(True, next(self.ids))


class FakeNotifier:
    def __init__(self) -> None:
        self.teacher_events: list[tuple[str, dict[str, Any]]] = []

    async def teachers(self, room_id: str, event: str, data: dict[str, Any]) -> None:
        self.teacher_events.append((event, data))

    async def student(self, attempt_id: str, event: str, data: dict[str, Any]) -> None:
        pass

    async def room_students(self, room_id: str, event: str, data: dict[str, Any]) -> None:
        pass


@dataclass
class Fixture:
    """An AttemptService over stand-ins, one exam (45 min, one question) and a one-seat room."""

    attempts: AttemptService
    store: FakeStore
    catalog: FakeCatalog
    notifier: FakeNotifier
    student: Claims

    @classmethod
    def build(cls, stored_score: float = 0.0) -> Fixture:
        exam = Exam(
            id=str(uuid.uuid4()),
            title="Algebra",
            duration_seconds=2700,
            questions=(Question(id="q1", kind="essay", text="Why?"),),
            rules=Rules(weights={"copy": 2.0, "paste": 3.0}),
            created_by="t1",
            created_at=T0,
        )
        room = Room(id=str(uuid.uuid4()), exam_id=exam.id, name="A", seats=1, host_node=None, created_at=T0)
        store, catalog, notifier = FakeStore(stored_score), FakeCatalog(exam, room), FakeNotifier()
        student = Claims(role="student", sub="s1", name="Ada", exam_id=exam.id, room_id=room.id)
        return cls(AttemptService(store, catalog, FakeWriter(), notifier), store, catalog, notifier, student)

    def classroom(self) -> tuple[Classroom, FakeClassroomStore]:
        rooms = FakeClassroomStore(self.store)
        return Classroom(rooms, self.catalog, self.attempts, NoPresence(), FakeNotifier(), NoAudit()), rooms


class FakeClassroomStore:
    def __init__(self, attempts: FakeStore) -> None:
        self.attempts = attempts
        self.recorded: list[ControlRecord] = []

    async def roster(self, room_id: str) -> list[dict[str, Any]]:
        return []

    async def recent_violations(self, room_id: str, limit: int) -> list[dict[str, Any]]:
        return []

    async def control(self, control: ControlRecord, change: Change) -> tuple[Attempt, bool] | None:
        result = await self.attempts.change(control.attempt_id, change)
        if result is not None and result[1]:
            self.recorded.append(control)
        return result

    async def record(self, control: ControlRecord) -> None:
        self.recorded.append(control)

    async def announce(self, room_id: str, actor: str, text: str) -> None:
        pass


class NoPresence:
    async def set(self, room_id: str, attempt_id: str, state: PresenceState) -> PresenceWrite:
        return PresenceWrite(True)

    async def room(self, room_id: str) -> dict[str, PresenceState]:
        return {}


class NoAudit:
    async def record(
        self,
        claims: Claims,
        action: str,
        target_type: str,
        target_id: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        pass
