"""The attempt clock's rules (rooms/timer.py), pure: no database, no event loop but the test's.

Remaining time, the paused clock, the first deadline, late-answer grace, what closes an
attempt, the sweeper's expiry and a student's submit; and the live score bookkeeping of
AttemptService, through in-memory stand-ins for its store, catalog, writer and notifier.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from rooms.errors import Conflict, NoCapacity
from rooms.timer import LATE_ANSWER_GRACE, check_open, expire, is_due, opened, submit

from .fakes import T0, FakeNotifier, Fixture, attempt

US = timedelta(microseconds=1)


# -- the clock ---------------------------------------------------------------------------------


def test_remaining_is_the_time_to_the_deadline() -> None:
    a = attempt()
    assert a.remaining_seconds(T0) == 45 * 60
    assert a.remaining_seconds(T0 + timedelta(minutes=44, seconds=59)) == 1
    assert a.remaining_seconds(a.deadline) == 0


def test_remaining_never_goes_below_zero() -> None:
    a = attempt()
    assert a.remaining_seconds(a.deadline + timedelta(hours=1)) == 0


def test_a_paused_clock_stands_still_at_the_pause() -> None:
    a = attempt(status="paused", paused_at=T0 + timedelta(minutes=10))
    for later in (timedelta(minutes=10), timedelta(minutes=30), timedelta(hours=5)):
        assert a.remaining_seconds(T0 + later) == 35 * 60


def test_clock_reports_the_server_view() -> None:
    a = attempt()
    now = T0 + timedelta(seconds=0.25)
    clock = a.clock(now)
    assert clock == {
        "attempt_id": a.id,
        "status": "active",
        "deadline": a.deadline.isoformat(),
        "server_now": now.isoformat(),
        "remaining_seconds": 2699.75,
        "paused": False,
        "hard_close_at": None,
        "end_reason": None,
    }
    assert attempt(status="paused", paused_at=T0).clock(T0)["paused"] is True


def test_a_first_join_ends_one_duration_after_it_starts() -> None:
    a = opened("e", "r", "s1", "Ada", 2700.0, T0)
    assert (a.status, a.started_at, a.deadline) == ("active", T0, T0 + timedelta(seconds=2700))
    assert (a.paused_at, a.extension_seconds, a.end_reason, a.submitted_at) == (None, 0, None, None)
    assert (a.exam_id, a.room_id, a.student_id, a.student_name) == ("e", "r", "s1", "Ada")
    assert uuid.UUID(a.id) and opened("e", "r", "s1", "Ada", 60, T0).id != a.id


# -- what an attempt still takes ---------------------------------------------------------------


def test_the_late_answer_grace_is_two_seconds() -> None:
    assert LATE_ANSWER_GRACE == timedelta(seconds=2)


def test_answers_count_until_the_grace_after_the_deadline_ends() -> None:
    a = attempt()
    check_open(a, a.deadline, answering=True)
    check_open(a, a.deadline + LATE_ANSWER_GRACE, answering=True)  # the last instant that counts
    with pytest.raises(Conflict) as refused:
        check_open(a, a.deadline + LATE_ANSWER_GRACE + US, answering=True)
    assert refused.value.code == "attempt_closed"


def test_signals_are_taken_after_the_deadline_until_the_attempt_closes() -> None:
    a = attempt()
    check_open(a, a.deadline + timedelta(minutes=5), answering=False)


def test_a_paused_attempt_takes_signals_but_no_answers() -> None:
    a = attempt(status="paused", paused_at=T0)
    check_open(a, T0, answering=False)
    with pytest.raises(Conflict) as refused:
        check_open(a, T0, answering=True)
    assert refused.value.code == "paused"


@pytest.mark.parametrize("status", ["submitted", "terminated"])
def test_a_closed_attempt_takes_nothing(status: str) -> None:
    a = attempt(status=status)
    assert a.closed
    for answering in (False, True):
        with pytest.raises(Conflict) as refused:
            check_open(a, T0, answering=answering)
        assert refused.value.code == "attempt_closed"


@pytest.mark.parametrize("status", ["active", "paused"])
def test_a_running_attempt_is_not_closed(status: str) -> None:
    assert not attempt(status=status).closed


# -- the sweeper -------------------------------------------------------------------------------


def test_an_active_attempt_is_due_at_its_deadline_not_before() -> None:
    a = attempt()
    assert not is_due(a, a.deadline - US)
    assert is_due(a, a.deadline)
    assert expire(a, a.deadline - US) is None


def test_expiry_submits_as_of_the_deadline_not_of_the_sweep() -> None:
    a = attempt()
    done = expire(a, a.deadline + timedelta(seconds=7))
    assert done is not None
    assert (done.status, done.end_reason, done.submitted_at) == ("submitted", "deadline", a.deadline)
    assert done.deadline == a.deadline and done.closed


@pytest.mark.parametrize("status", ["paused", "submitted", "terminated"])
def test_only_an_active_attempt_expires(status: str) -> None:
    # A paused clock does not run out: its deadline moves on resume.
    a = attempt(status=status, paused_at=T0 if status == "paused" else None)
    assert not is_due(a, a.deadline + timedelta(hours=1))
    assert expire(a, a.deadline + timedelta(hours=1)) is None


# -- submit ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["active", "paused"])
def test_submit_closes_a_running_attempt_now(status: str) -> None:
    now = T0 + timedelta(minutes=20)
    a = attempt(status=status, paused_at=T0 if status == "paused" else None)
    done = submit("student")(a, now)
    assert done is not None
    assert (done.status, done.submitted_at, done.end_reason, done.paused_at) == ("submitted", now, "student", None)
    assert done.deadline == a.deadline


@pytest.mark.parametrize("status", ["submitted", "terminated"])
def test_submit_leaves_a_closed_attempt_alone(status: str) -> None:
    assert submit("student")(attempt(status=status), T0) is None


# -- score bookkeeping (AttemptService over the stand-ins of tests/rooms/fakes.py) -----------------


def scores(notifier: FakeNotifier) -> list[float]:
    return [data["score"] for event, data in notifier.teacher_events if event == "violation"]


async def test_a_joined_attempt_adds_each_weight_to_the_score_it_joined_with() -> None:
    f = Fixture.build(stored_score=4.0)
    joined = await f.attempts.join(f.student)
    assert joined.attempt.deadline == T0 + timedelta(seconds=2700)
    for seq, kind in enumerate(("copy", "paste", "tab_hidden"), start=1):
        await f.attempts.client_event(joined.attempt.id, seq, kind, T0, {})
    # tab_hidden has no weight in this exam's rules: recorded, adds nothing.
    assert scores(f.notifier) == [6.0, 9.0, 9.0]


async def test_an_attempt_not_joined_here_reads_the_stored_score_once() -> None:
    here = Fixture.build()
    joined = await here.attempts.join(here.student)
    other = Fixture.build()  # another node: the student is connected elsewhere
    other.store.attempts[joined.attempt.id] = joined.attempt
    # The stored sum already holds the row just written.
    other.store.stored_score = 7.0
    await other.attempts.client_event(joined.attempt.id, 1, "copy", T0, {})
    other.store.stored_score = 100.0  # read once: later ones add to the live score
    await other.attempts.client_event(joined.attempt.id, 2, "paste", T0, {})
    assert scores(other.notifier) == [7.0, 10.0]


async def test_a_full_room_refuses_the_next_first_join() -> None:
    f = Fixture.build()
    f.store.seats_left = 0
    with pytest.raises(NoCapacity) as refused:
        await f.attempts.join(f.student)
    assert refused.value.code == "capacity" and refused.value.retry_after == 60


async def test_submit_through_the_service_closes_once() -> None:
    f = Fixture.build()
    joined = await f.attempts.join(f.student)
    f.store.now = T0 + timedelta(minutes=3)
    done = await f.attempts.submit(joined.attempt.id)
    assert (done.status, done.submitted_at) == ("submitted", f.store.now)
    again = await f.attempts.submit(joined.attempt.id, reason="other")
    assert again.end_reason == "student"
    assert [e for e, _ in f.notifier.teacher_events].count("submitted") == 1
    with pytest.raises(Conflict):
        await f.attempts.save_answer(joined.attempt.id, "q1", "late", 1)
