"""Schedules and accommodations as teachers set them: who may, what is stored, and how a
change reaches attempts already running (docs/exams.md, "Schedule and accommodations").

The rules are the timer's (rooms/timer.py: `check_window` at a first join, `set_extra` and
`set_hard_close` on a running attempt); storage is a `ScheduleRepository` (Postgres in
rooms/store/schedule.py). A change to a running attempt is a control (`ClassroomRepository.
control`): applied and recorded in one transaction, so it shows on the attempt's timeline, and
the student's page hears it on the path every deadline change takes (`deadline`, `control`).
"""

from __future__ import annotations

from typing import Any, Protocol

from . import timer
from .accommodations import Accommodation, for_student
from .attempts import AttemptService
from .catalog import Exam, Room
from .exam import Schedule
from .protocols import AuditTrail, ClassroomRepository, ControlRecord, Notifier
from .roles import Action
from .timer import Attempt, Change
from .tokens import Claims


class ScheduleRepository(Protocol):
    async def exam_schedule(self, exam_id: str) -> Schedule | None: ...

    async def room_schedule(self, room_id: str) -> Schedule | None: ...

    async def set_exam_schedule(self, exam_id: str, schedule: Schedule | None) -> None: ...

    async def set_room_schedule(self, room_id: str, schedule: Schedule | None) -> None: ...

    async def windows(self, exam_id: str) -> dict[str, Schedule]:
        """room id -> its window (its own, else the exam's), for every room of the exam."""
        ...

    async def running(self, room_id: str, student_id: str | None = None) -> list[str]:
        """Ids of the room's running attempts (one student's, when named)."""
        ...

    async def accommodations(self, room_id: str) -> list[dict[str, Any]]: ...

    async def accommodation(self, room_id: str, student_id: str) -> Accommodation | None: ...

    async def put_accommodation(
        self, room_id: str, student_id: str, accommodation: Accommodation, by: str
    ) -> dict[str, Any]: ...

    async def delete_accommodation(self, room_id: str, student_id: str) -> bool: ...


class ScopedCatalog(Protocol):
    """The catalog's scope-checked reads (rooms/store/catalog.py `Catalog`)."""

    async def exam_for(self, claims: Claims, exam_id: str, action: Action = "exam.read") -> Exam: ...

    async def room_for(self, claims: Claims, room_id: str, action: Action) -> tuple[Room, Exam]: ...


def _schedule_json(schedule: Schedule | None) -> dict[str, Any] | None:
    return schedule.model_dump(mode="json") if schedule is not None else None


class Scheduling:
    def __init__(
        self,
        store: ScheduleRepository,
        catalog: ScopedCatalog,
        controls: ClassroomRepository,
        attempts: AttemptService,
        notifier: Notifier,
        audit: AuditTrail,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._controls = controls
        self._attempts = attempts
        self._notifier = notifier
        self._audit = audit

    # ---- windows ---------------------------------------------------------------------------

    async def exam_schedule(self, claims: Claims, exam_id: str) -> dict[str, Any]:
        exam = await self._catalog.exam_for(claims, exam_id, "exam.read")
        return {"exam_id": exam.id, "schedule": _schedule_json(await self._store.exam_schedule(exam.id))}

    async def set_exam_schedule(self, claims: Claims, exam_id: str, schedule: Schedule | None) -> dict[str, Any]:
        """Set (None: clear) the exam's window; rooms without their own follow it at once."""
        exam = await self._catalog.exam_for(claims, exam_id, "exam.schedule")
        await self._store.set_exam_schedule(exam.id, schedule)
        await self._audit.record(claims, "exam.schedule", "exam", exam.id, {"schedule": _schedule_json(schedule)})
        for room_id, window in (await self._store.windows(exam.id)).items():
            await self._apply_window(claims, room_id, window)
        return {"exam_id": exam.id, "schedule": _schedule_json(schedule)}

    async def room_schedule(self, claims: Claims, room_id: str) -> dict[str, Any]:
        room, exam = await self._catalog.room_for(claims, room_id, "room.attempts")
        own = await self._store.room_schedule(room.id)
        inherited = await self._store.exam_schedule(exam.id)
        return {
            "room_id": room.id,
            "schedule": _schedule_json(own),
            "exam_schedule": _schedule_json(inherited),
            # What joins are checked against: the room's own window replaces the exam's.
            "effective": _schedule_json(own or inherited),
        }

    async def set_room_schedule(self, claims: Claims, room_id: str, schedule: Schedule | None) -> dict[str, Any]:
        """Set (None: clear, so the exam's applies) the room's own window."""
        room, exam = await self._catalog.room_for(claims, room_id, "room.schedule")
        await self._store.set_room_schedule(room.id, schedule)
        await self._audit.record(claims, "room.schedule", "room", room.id, {"schedule": _schedule_json(schedule)})
        window = (await self._store.windows(exam.id)).get(room.id, Schedule())
        await self._apply_window(claims, room.id, window)
        return await self.room_schedule(claims, room.id)

    async def _apply_window(self, claims: Claims, room_id: str, window: Schedule) -> None:
        # Only the hard close reaches a running attempt: opening and latest start are about
        # starting, and a soft close lets attempts already started run their time out.
        hard = timer.hard_close_of(window)
        params = {"hard_close_at": hard.isoformat() if hard is not None else None}
        for attempt_id in await self._store.running(room_id):
            await self._change(claims, room_id, attempt_id, "window", timer.set_hard_close(hard), params)

    # ---- accommodations --------------------------------------------------------------------

    async def accommodations(self, claims: Claims, room_id: str) -> dict[str, Any]:
        room, exam = await self._catalog.room_for(claims, room_id, "room.accommodations")
        return {
            "room_id": room.id,
            "duration_seconds": exam.duration_seconds,
            "accommodations": await self._store.accommodations(room.id),
        }

    async def put_accommodation(
        self, claims: Claims, room_id: str, student_id: str, accommodation: Accommodation
    ) -> dict[str, Any]:
        """Store the student's accommodation; a running attempt gets it at once."""
        room, exam = await self._catalog.room_for(claims, room_id, "room.accommodations")
        stored = await self._store.put_accommodation(room.id, student_id, accommodation, claims.sub)
        extra = accommodation.extra_seconds(exam.duration_seconds)
        rules_off = tuple(accommodation.rules_off)
        # The note may hold health information: the audit keeps what was granted, not why.
        summary = {
            "student_id": student_id,
            "extra_percent": accommodation.extra_percent,
            "extra_minutes": accommodation.extra_minutes,
            "rules_off": list(rules_off),
        }
        await self._audit.record(claims, "accommodation.set", "room", room.id, summary)
        stored["applied_to"] = await self._apply_accommodation(claims, room.id, student_id, extra, rules_off)
        return stored

    async def delete_accommodation(self, claims: Claims, room_id: str, student_id: str) -> dict[str, Any]:
        """Remove the student's accommodation (none: nothing to do, answered `deleted: false`)."""
        room, _ = await self._catalog.room_for(claims, room_id, "room.accommodations")
        if not await self._store.delete_accommodation(room.id, student_id):
            return {"room_id": room.id, "student_id": student_id, "deleted": False, "applied_to": []}
        await self._audit.record(claims, "accommodation.delete", "room", room.id, {"student_id": student_id})
        applied = await self._apply_accommodation(claims, room.id, student_id, 0, ())
        return {"room_id": room.id, "student_id": student_id, "deleted": True, "applied_to": applied}

    async def _apply_accommodation(
        self, claims: Claims, room_id: str, student_id: str, extra: int, rules_off: tuple[str, ...]
    ) -> list[str]:
        applied = []
        params = for_student(extra, rules_off)
        for attempt_id in await self._store.running(room_id, student_id):
            before = await self._attempts.attempt(attempt_id, fresh=True)
            attempt = await self._change(
                claims, room_id, attempt_id, "accommodation", timer.set_extra(extra, rules_off), params
            )
            if attempt is None:
                continue
            applied.append(attempt_id)
            if attempt.accommodations != before.accommodations:
                # The analysis peer was built with the old rules: the page offers again and
                # the host builds the peer with this student's rules as they are now.
                await self._notifier.student(
                    attempt_id, "rtc", {"target": "server", "type": "bye", "reason": "rules_changed"}
                )
        return applied

    async def _change(
        self, claims: Claims, room_id: str, attempt_id: str, action: str, change: Change, params: dict[str, Any]
    ) -> Attempt | None:
        """Apply `change` to a running attempt as a recorded control; tell its student and the room."""
        result = await self._controls.control(ControlRecord(room_id, attempt_id, claims.sub, action, params), change)
        if result is None or not result[1]:
            return None  # ended meanwhile, or nothing to change
        attempt = result[0]
        self._attempts.updated(attempt)
        clock = attempt.clock()
        await self._notifier.student(attempt_id, "control", {"action": action, **params, **clock})
        await self._notifier.student(attempt_id, "deadline", clock)
        await self._notifier.teachers(
            room_id, "control", {"attempt_id": attempt_id, "action": action, "by": claims.sub, **params, **clock}
        )
        return attempt
