"""What teachers do in a live room: watch the roster, and control attempts or the room.

Every control and announce is recorded (controls table) before anyone is told, so the
timeline and the audit log hold exactly what students saw. The state a control changes is
the timer's rule (rooms/timer.py) for that action, applied by the store in the same
transaction that records the control.
"""

from __future__ import annotations

from typing import Any, Literal

from . import timer
from .attempts import AttemptService
from .errors import Conflict, Invalid
from .protocols import AuditTrail, ClassroomRepository, ControlRecord, ExamCatalog, Notifier, Presence
from .timer import Attempt, Change
from .tokens import Claims

Action = Literal["warn", "message", "pause", "resume", "extend", "terminate"]

# How many of the room's latest violations a dashboard opened mid-exam starts its feed with.
RECENT_VIOLATIONS = 50
EXTEND_MINUTES = (1, 600)


def state_change(action: str, minutes: int | None = None) -> Change | None:
    """The timer rule an action applies, or None for an action that changes no state."""
    if action == "pause":
        return timer.pause
    if action == "resume":
        return timer.resume
    if action == "extend":
        if minutes is None or not EXTEND_MINUTES[0] <= minutes <= EXTEND_MINUTES[1]:
            raise Invalid("extend needs minutes between 1 and 600", fields={"minutes": "1..600"})
        return timer.extend(minutes)
    if action == "terminate":
        return timer.terminate
    return None


def roster_presence(status: str, live: str | None) -> str:
    """A roster entry's presence: a closed attempt shows as submitted, an unseen one offline."""
    if status in timer.CLOSED:
        return "submitted"
    return live or "offline"


class Classroom:
    def __init__(
        self,
        store: ClassroomRepository,
        catalog: ExamCatalog,
        attempts: AttemptService,
        presence: Presence,
        notifier: Notifier,
        audit: AuditTrail,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._attempts = attempts
        self._presence = presence
        self._notifier = notifier
        self._audit = audit

    async def roster(self, claims: Claims, room_id: str) -> dict[str, Any]:
        room, exam = await self._catalog.room_for(claims, room_id, "room.watch")
        entries = await self._store.roster(room.id)
        states = await self._presence.room(room.id)
        students = []
        # An attempt gets its pools' draw, the same number for every attempt of a version.
        total = len(exam.arrangement(room.id).question_ids)
        for entry in entries:
            entry["total_questions"] = total
            entry["presence"] = roster_presence(entry["status"], states.get(entry["id"]))
            students.append(entry)
        recent = await self._store.recent_violations(room.id, RECENT_VIOLATIONS)
        await self._audit.record(claims, "room.watch", "room", room.id)
        return {
            "room": room.to_json(),
            "exam": {"id": exam.id, "title": exam.title},
            "students": students,
            # The feed of a dashboard opened mid-exam starts with what already happened.
            "recent_violations": recent,
        }

    async def control(
        self,
        claims: Claims,
        attempt_id: str,
        action: Action,
        *,
        minutes: int | None = None,
        text: str | None = None,
    ) -> Attempt:
        attempt = await self._attempts.attempt(attempt_id, fresh=True)
        await self._catalog.room_for(claims, attempt.room_id, "room.control")
        change = state_change(action, minutes)
        params: dict[str, Any] = {}
        if action == "extend":
            params["minutes"] = minutes
        if text:
            params["text"] = text
        if action in ("warn", "message") and not text:
            raise Invalid(f"{action} needs a text", fields={"text": "required"})
        record = ControlRecord(attempt.room_id, attempt.id, claims.sub, action, params)
        if change is not None:
            result = await self._store.control(record, change)
            if result is None or not result[1]:
                status = result[0].status if result is not None else "gone"
                raise Conflict(f"cannot {action} an attempt that is {status}", code="invalid_state")
            attempt = result[0]
        elif attempt.closed:
            raise Conflict(f"the attempt is {attempt.status}", code="attempt_closed")
        else:
            await self._store.record(record)
        self._attempts.updated(attempt)
        await self._audit.record(claims, f"control.{action}", "attempt", attempt_id, params)
        clock = attempt.clock()
        await self._notifier.student(attempt_id, "control", {"action": action, **params, **clock})
        if change is not None:
            await self._notifier.student(attempt_id, "deadline", clock)
        await self._notifier.teachers(
            attempt.room_id,
            "control",
            {
                "attempt_id": attempt_id,
                "action": action,
                "by": claims.sub,
                **params,
                **clock,
            },
        )
        if action == "terminate":
            await self._notifier.teachers(
                attempt.room_id,
                "submitted",
                {
                    "attempt_id": attempt_id,
                    "status": attempt.status,
                    "reason": attempt.end_reason,
                },
            )
            await self._attempts.grade(attempt_id)  # what was answered counts (docs/exams.md)
            await self._attempts.ended(attempt)
        return attempt

    async def announce(self, claims: Claims, room_id: str, text: str) -> None:
        room, _ = await self._catalog.room_for(claims, room_id, "room.announce")
        await self._store.announce(room.id, claims.sub, text)
        await self._audit.record(claims, "room.announce", "room", room.id, {"text": text})
        data = {"room_id": room.id, "text": text, "by": claims.name or claims.sub}
        await self._notifier.room_students(room.id, "announce", data)
        await self._notifier.teachers(room.id, "announce", data)
