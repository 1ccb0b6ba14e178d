"""The classroom's controls as timer rules (rooms/classroom.py → rooms/timer.py), pure.

Pause freezes the clock, resume pushes the deadline by exactly the paused time, extend moves
the deadline and counts the extension, terminate closes; each only from the statuses that
allow it. Then Classroom.control through in-memory stand-ins: a refused change records nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from rooms.classroom import Classroom, roster_presence, state_change
from rooms.errors import Conflict, Invalid
from rooms.timer import Attempt, Change, extend, pause, resume, terminate
from rooms.tokens import Claims

from .fakes import T0, FakeClassroomStore, FakeStore, Fixture, attempt


def applied(change: Change | None, a: Attempt, now: datetime) -> Attempt:
    assert change is not None
    changed = change(a, now)
    assert changed is not None, f"{a.status} refused the change"
    return changed


# -- pause and resume --------------------------------------------------------------------------


def test_pause_freezes_the_clock_now() -> None:
    a = attempt()
    now = T0 + timedelta(minutes=10)
    p = applied(state_change("pause"), a, now)
    assert (p.status, p.paused_at, p.deadline) == ("paused", now, a.deadline)
    assert p.remaining_seconds(now + timedelta(hours=2)) == a.remaining_seconds(now)


def test_resume_pushes_the_deadline_by_the_paused_time() -> None:
    a = attempt()
    paused_at = T0 + timedelta(minutes=10)
    resumed_at = paused_at + timedelta(minutes=7, seconds=3, microseconds=5)
    r = applied(state_change("resume"), applied(pause, a, paused_at), resumed_at)
    assert r.status == "active" and r.paused_at is None
    assert r.deadline - a.deadline == timedelta(minutes=7, seconds=3, microseconds=5)
    # What was left at the pause is left at the resume.
    assert r.remaining_seconds(resumed_at) == a.remaining_seconds(paused_at)


def test_pauses_add_up() -> None:
    a = attempt()
    now, total = T0, timedelta(0)
    for run, held in ((5, 2), (1, 9), (3, 1)):
        now += timedelta(minutes=run)
        a = applied(pause, a, now)
        now += timedelta(minutes=held)
        total += timedelta(minutes=held)
        a = applied(resume, a, now)
    assert a.deadline == T0 + timedelta(minutes=45) + total


def test_pause_needs_an_active_attempt_and_resume_a_paused_one() -> None:
    paused = attempt(status="paused", paused_at=T0)
    assert pause(paused, T0) is None
    assert resume(attempt(), T0) is None
    for status in ("submitted", "terminated"):
        assert pause(attempt(status=status), T0) is None
        assert resume(attempt(status=status, paused_at=T0), T0) is None


# -- extend ------------------------------------------------------------------------------------


def test_extend_moves_the_deadline_and_counts_the_extension() -> None:
    a = attempt()
    once = applied(state_change("extend", 5), a, T0)
    assert once.deadline - a.deadline == timedelta(minutes=5) and once.extension_seconds == 300
    twice = applied(state_change("extend", 10), once, T0)
    assert twice.deadline - a.deadline == timedelta(minutes=15) and twice.extension_seconds == 900
    assert twice.status == "active" and twice.paused_at is None


def test_extending_a_paused_attempt_adds_to_what_is_left_at_the_pause() -> None:
    p = applied(pause, attempt(), T0 + timedelta(minutes=40))
    e = applied(extend(3), p, T0 + timedelta(minutes=50))
    assert (e.status, e.paused_at) == ("paused", p.paused_at)
    assert e.remaining_seconds(T0 + timedelta(hours=1)) == p.remaining_seconds(T0) + 180


@pytest.mark.parametrize("status", ["submitted", "terminated"])
def test_a_closed_attempt_is_not_extended(status: str) -> None:
    assert extend(5)(attempt(status=status), T0) is None


@pytest.mark.parametrize("minutes", [None, 0, -1, 601])
def test_extend_takes_one_to_six_hundred_minutes(minutes: int | None) -> None:
    with pytest.raises(Invalid) as refused:
        state_change("extend", minutes)
    assert refused.value.fields == {"minutes": "1..600"}


def test_the_bounds_of_extend_are_allowed() -> None:
    for minutes in (1, 600):
        assert applied(state_change("extend", minutes), attempt(), T0).extension_seconds == minutes * 60


# -- terminate, and the actions that change nothing ----------------------------------------------


@pytest.mark.parametrize("status", ["active", "paused"])
def test_terminate_closes_a_running_attempt_now(status: str) -> None:
    a = attempt(status=status, paused_at=T0 if status == "paused" else None)
    now = T0 + timedelta(minutes=12)
    t = applied(state_change("terminate"), a, now)
    assert (t.status, t.submitted_at, t.end_reason, t.paused_at) == ("terminated", now, "terminated", None)
    assert t.closed and t.deadline == a.deadline


@pytest.mark.parametrize("status", ["submitted", "terminated"])
def test_a_closed_attempt_is_not_terminated_again(status: str) -> None:
    assert terminate(attempt(status=status), T0) is None


def test_warn_and_message_change_no_state() -> None:
    assert state_change("warn") is None and state_change("message") is None


def test_roster_presence() -> None:
    assert roster_presence("submitted", "online") == "submitted"
    assert roster_presence("terminated", None) == "submitted"
    assert roster_presence("active", None) == "offline"
    assert roster_presence("paused", "reconnecting") == "reconnecting"


# -- Classroom.control through stand-ins ----------------------------------------------------------

TEACHER = Claims(role="teacher", sub="t1", rooms=())


async def classroom() -> tuple[Classroom, FakeClassroomStore, FakeStore, str]:
    f = Fixture.build()
    joined = await f.attempts.join(f.student)
    room, rooms = f.classroom()
    return room, rooms, f.store, joined.attempt.id


async def test_a_control_is_recorded_with_its_change() -> None:
    room, rooms, store, attempt_id = await classroom()
    store.now = T0 + timedelta(minutes=1)
    paused = await room.control(TEACHER, attempt_id, "pause")
    assert paused.status == "paused" and paused.paused_at == store.now
    assert [(c.action, c.actor, c.params) for c in rooms.recorded] == [("pause", "t1", {})]
    extended = await room.control(TEACHER, attempt_id, "extend", minutes=2)
    assert extended.extension_seconds == 120 and rooms.recorded[-1].params == {"minutes": 2}


async def test_a_refused_change_records_nothing() -> None:
    room, rooms, store, attempt_id = await classroom()
    before = store.attempts[attempt_id]
    with pytest.raises(Conflict) as refused:
        await room.control(TEACHER, attempt_id, "resume")
    assert refused.value.code == "invalid_state"
    assert rooms.recorded == [] and store.attempts[attempt_id] == before


async def test_a_message_to_a_closed_attempt_is_refused() -> None:
    room, rooms, store, attempt_id = await classroom()
    store.attempts[attempt_id] = replace(store.attempts[attempt_id], status="submitted")
    with pytest.raises(Conflict) as refused:
        await room.control(TEACHER, attempt_id, "message", text="hello")
    assert refused.value.code == "attempt_closed" and rooms.recorded == []
    with pytest.raises(Invalid):
        await room.control(TEACHER, attempt_id, "warn")
