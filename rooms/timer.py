"""An attempt and its server clock: the rules, as pure functions of (attempt, now).

The deadline is the server's. A new attempt ends `duration` after it starts; pause freezes
the clock (resume pushes the deadline by the paused time), extend moves it, and an active
attempt whose deadline has passed is submitted as of its deadline. Answers a little after
the deadline still count. Storage applies these functions inside its transaction with the
database's `now()`, taken once per operation, so every timestamp of one change agrees.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import Conflict

# Answers a little after the deadline still count: they were typed before it, in flight.
LATE_ANSWER_GRACE = timedelta(seconds=2)

RUNNING = ("active", "paused")
CLOSED = ("submitted", "terminated")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Attempt:
    id: str
    exam_id: str
    room_id: str
    student_id: str
    student_name: str
    status: str
    started_at: datetime
    deadline: datetime
    paused_at: datetime | None
    extension_seconds: int
    end_reason: str | None
    accommodations: tuple[str, ...] = ()
    submitted_at: datetime | None = None

    @property
    def closed(self) -> bool:
        return self.status in CLOSED

    def remaining_seconds(self, now: datetime) -> float:
        # A paused clock stands still at the moment of the pause.
        reference = self.paused_at if self.paused_at is not None else now
        return max(0.0, (self.deadline - reference).total_seconds())

    def clock(self, now: datetime | None = None) -> dict[str, Any]:
        now = now or utcnow()
        return {
            "attempt_id": self.id,
            "status": self.status,
            "deadline": self.deadline.isoformat(),
            "server_now": now.isoformat(),
            "remaining_seconds": round(self.remaining_seconds(now), 3),
            "paused": self.status == "paused",
        }


# A change of an attempt at `now`: the attempt after it, or None when its status does not allow it.
Change = Callable[[Attempt, datetime], Attempt | None]


def opened(
    exam_id: str, room_id: str, student_id: str, student_name: str, duration_seconds: float, now: datetime
) -> Attempt:
    """A first join's attempt: it starts now and ends `duration_seconds` later."""
    return Attempt(
        id=str(uuid.uuid4()),
        exam_id=exam_id,
        room_id=room_id,
        student_id=student_id,
        student_name=student_name,
        status="active",
        started_at=now,
        deadline=now + timedelta(seconds=duration_seconds),
        paused_at=None,
        extension_seconds=0,
        end_reason=None,
    )


def check_open(attempt: Attempt, now: datetime, *, answering: bool) -> None:
    """Refuse what a closed attempt (or, for answers, a paused or timed-out one) cannot take."""
    if attempt.closed:
        raise Conflict(f"the attempt is {attempt.status}", code="attempt_closed")
    if answering:
        if attempt.status == "paused":
            raise Conflict("the exam is paused by the teacher", code="paused")
        if now > attempt.deadline + LATE_ANSWER_GRACE:
            raise Conflict("the time is up", code="attempt_closed")


def is_due(attempt: Attempt, now: datetime) -> bool:
    """Whether the sweeper submits the attempt: running, not paused, deadline reached."""
    return attempt.status == "active" and attempt.deadline <= now


def expire(attempt: Attempt, now: datetime) -> Attempt | None:
    if not is_due(attempt, now):
        return None
    # Submitted as of the deadline, not of the sweep that noticed it.
    return replace(attempt, status="submitted", submitted_at=attempt.deadline, end_reason="deadline")


def submit(reason: str) -> Change:
    def change(attempt: Attempt, now: datetime) -> Attempt | None:
        if attempt.status not in RUNNING:
            return None
        return replace(attempt, status="submitted", submitted_at=now, end_reason=reason, paused_at=None)

    return change


def pause(attempt: Attempt, now: datetime) -> Attempt | None:
    if attempt.status != "active":
        return None
    return replace(attempt, status="paused", paused_at=now)


def resume(attempt: Attempt, now: datetime) -> Attempt | None:
    if attempt.status != "paused":
        return None
    # The paused time is given back: the remaining time is what it was at the pause.
    paused_for = now - attempt.paused_at if attempt.paused_at is not None else timedelta(0)
    return replace(attempt, status="active", deadline=attempt.deadline + paused_for, paused_at=None)


def extend(minutes: int) -> Change:
    def change(attempt: Attempt, now: datetime) -> Attempt | None:
        if attempt.status not in RUNNING:
            return None
        return replace(
            attempt,
            deadline=attempt.deadline + timedelta(minutes=minutes),
            extension_seconds=attempt.extension_seconds + minutes * 60,
        )

    return change


def terminate(attempt: Attempt, now: datetime) -> Attempt | None:
    if attempt.status not in RUNNING:
        return None
    return replace(attempt, status="terminated", submitted_at=now, end_reason="terminated", paused_at=None)
