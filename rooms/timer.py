"""An attempt and its server clock: the rules, as pure functions of (attempt, now).

The deadline is the server's. A new attempt ends `duration` after it starts; pause freezes
the clock (resume pushes the deadline by the paused time), extend moves it, and an active
attempt whose deadline has passed is submitted as of its deadline. Answers a little after
the deadline still count.

A schedule (rooms/exam.py `Schedule`) adds a window: a first join is refused before it opens,
after its latest start or after it closes (`check_window`); a running attempt may always
rejoin. A student's accommodation adds extra time to the clock (`set_extra`). With a hard
close the deadline is cut at the window's end: the clock's own deadline (`time_deadline`) is
kept beside it, so a pause, an extension or more extra time still count up to the cut, and
the sweeper submits a running attempt at the window's end even while it is paused.

Storage applies these functions inside its transaction with the database's `now()`, taken
once per operation, so every timestamp of one change agrees.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from .accommodations import Terms
from .errors import Conflict
from .exam import Schedule

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
    # Accommodation time already in the deadline; the clock's own deadline before the hard
    # close cut it (None: equal to `deadline`); the window's hard end (None: no hard close).
    extra_seconds: int = 0
    time_deadline: datetime | None = None
    hard_close_at: datetime | None = None

    @property
    def closed(self) -> bool:
        return self.status in CLOSED

    @property
    def clock_deadline(self) -> datetime:
        """When the time runs out, the hard close aside."""
        return self.time_deadline if self.time_deadline is not None else self.deadline

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
            # The page says "the window closes at …" and, at the end, that the window closed.
            "hard_close_at": self.hard_close_at.isoformat() if self.hard_close_at is not None else None,
            "end_reason": self.end_reason,
        }


# A change of an attempt at `now`: the attempt after it, or None when its status does not allow it.
Change = Callable[[Attempt, datetime], Attempt | None]


def opened(
    exam_id: str,
    room_id: str,
    student_id: str,
    student_name: str,
    duration_seconds: float,
    now: datetime,
    *,
    extra_seconds: int = 0,
    hard_close_at: datetime | None = None,
    accommodations: tuple[str, ...] = (),
) -> Attempt:
    """A first join's attempt: it starts now and ends `duration_seconds` (plus the student's
    extra time) later, or at the window's hard close if that comes first."""
    time_deadline = now + timedelta(seconds=duration_seconds + extra_seconds)
    return _cut(
        Attempt(
            id=str(uuid.uuid4()),
            exam_id=exam_id,
            room_id=room_id,
            student_id=student_id,
            student_name=student_name,
            status="active",
            started_at=now,
            deadline=time_deadline,
            paused_at=None,
            extension_seconds=0,
            end_reason=None,
            accommodations=accommodations,
            extra_seconds=extra_seconds,
            time_deadline=time_deadline,
            hard_close_at=hard_close_at,
        )
    )


def first_join(
    exam_id: str, room_id: str, student_id: str, student_name: str, duration_seconds: int, now: datetime, terms: Terms
) -> Attempt:
    """The attempt of a first join at `now` under `terms`: refused outside the window, with the
    student's extra time and rule switches, cut at the window's hard close."""
    check_window(terms.window, now)
    accommodation = terms.accommodation
    return opened(
        exam_id,
        room_id,
        student_id,
        student_name,
        float(duration_seconds),
        now,
        extra_seconds=accommodation.extra_seconds(duration_seconds),
        hard_close_at=hard_close_of(terms.window),
        accommodations=tuple(accommodation.rules_off),
    )


def _cut(attempt: Attempt, clock_deadline: datetime | None = None) -> Attempt:
    """The attempt with its clock's deadline `clock_deadline` (default: unchanged), and its
    deadline that, cut at the hard close."""
    clock = clock_deadline if clock_deadline is not None else attempt.clock_deadline
    if attempt.hard_close_at is None:
        # Nothing to cut: `time_deadline` stays NULL, so a node of the previous release that
        # moves `deadline` (extend, resume) during a rolling upgrade leaves nothing stale.
        return replace(attempt, deadline=clock, time_deadline=None)
    return replace(attempt, deadline=min(clock, attempt.hard_close_at), time_deadline=clock)


def check_window(schedule: Schedule, now: datetime) -> None:
    """Refuse a first join outside the window; the error's details say when (ISO)."""
    if schedule.opens_at is not None and now < schedule.opens_at:
        raise Conflict(
            f"this exam opens at {schedule.opens_at.isoformat()}",
            code="not_open_yet",
            details={"opens_at": schedule.opens_at.isoformat()},
        )
    if schedule.closes_at is not None and now >= schedule.closes_at:
        raise Conflict(
            f"this exam closed at {schedule.closes_at.isoformat()}",
            code="closed",
            details={"closes_at": schedule.closes_at.isoformat()},
        )
    if schedule.latest_start is not None and now > schedule.latest_start:
        raise Conflict(
            f"the last moment to start this exam was {schedule.latest_start.isoformat()}",
            code="too_late",
            details={"latest_start": schedule.latest_start.isoformat()},
        )


def hard_close_of(schedule: Schedule) -> datetime | None:
    """When attempts are submitted whatever time they have left, or None."""
    return schedule.closes_at if schedule.hard_close else None


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
    """Whether the sweeper submits the attempt: running and not paused with its deadline
    reached, or running (even paused) when its window has closed hard."""
    if attempt.status == "active" and attempt.deadline <= now:
        return True
    return attempt.status in RUNNING and attempt.hard_close_at is not None and attempt.hard_close_at <= now


def expire(attempt: Attempt, now: datetime) -> Attempt | None:
    if not is_due(attempt, now):
        return None
    # Submitted as of the deadline (a paused one: of the window's end), not of the sweep that
    # noticed it. An active deadline is never after the hard close (`_cut`).
    hard = attempt.hard_close_at
    if attempt.status == "paused" and hard is not None:
        at, closed_hard = hard, True
    else:
        at, closed_hard = attempt.deadline, hard is not None and attempt.deadline >= hard
    return replace(
        attempt,
        status="submitted",
        submitted_at=at,
        end_reason="window_closed" if closed_hard else "deadline",
        paused_at=None,
    )


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
    # The paused time is given back: the remaining time is what it was at the pause (up to
    # the hard close, which a pause does not move).
    paused_for = now - attempt.paused_at if attempt.paused_at is not None else timedelta(0)
    return _cut(replace(attempt, status="active", paused_at=None), attempt.clock_deadline + paused_for)


def extend(minutes: int) -> Change:
    def change(attempt: Attempt, now: datetime) -> Attempt | None:
        if attempt.status not in RUNNING:
            return None
        return _cut(
            replace(attempt, extension_seconds=attempt.extension_seconds + minutes * 60),
            attempt.clock_deadline + timedelta(minutes=minutes),
        )

    return change


def set_extra(extra_seconds: int, accommodations: tuple[str, ...] | None = None) -> Change:
    """A student's accommodation, edited while the attempt runs: the deadline moves by the
    difference in extra time (up to the hard close); `accommodations` (rule kinds switched
    off) replaces the attempt's list when given."""

    def change(attempt: Attempt, now: datetime) -> Attempt | None:
        if attempt.status not in RUNNING:
            return None
        rules = attempt.accommodations if accommodations is None else accommodations
        if extra_seconds == attempt.extra_seconds and rules == attempt.accommodations:
            return None
        moved = attempt.clock_deadline + timedelta(seconds=extra_seconds - attempt.extra_seconds)
        return _cut(replace(attempt, extra_seconds=extra_seconds, accommodations=rules), moved)

    return change


def set_hard_close(hard_close_at: datetime | None) -> Change:
    """The window's hard end changed (or went) while the attempt runs."""

    def change(attempt: Attempt, now: datetime) -> Attempt | None:
        if attempt.status not in RUNNING or attempt.hard_close_at == hard_close_at:
            return None
        return _cut(replace(attempt, hard_close_at=hard_close_at))

    return change


def terminate(attempt: Attempt, now: datetime) -> Attempt | None:
    if attempt.status not in RUNNING:
        return None
    return replace(attempt, status="terminated", submitted_at=now, end_reason="terminated", paused_at=None)
