"""The window and accommodation rules of rooms/timer.py, as pure functions of (attempt, now):
a fake clock (fixed datetimes), no database. Integration: tests/rooms/test_schedule_store.py
and tests/signaling/test_schedule_live.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from rooms import timer
from rooms.accommodations import Accommodation, Terms, for_student
from rooms.errors import Conflict
from rooms.exam import AnalysisRules, Schedule
from rooms.timer import Attempt, first_join
from tests.rooms.fakes import T0, Fixture

HOUR = timedelta(hours=1)
DURATION = 3600  # a one-hour exam

WINDOW = Schedule(opens_at=T0, latest_start=T0 + HOUR, closes_at=T0 + 2 * HOUR)
HARD = Schedule(opens_at=T0, closes_at=T0 + 90 * timedelta(minutes=1), hard_close=True)


NO_TERMS = Terms()


def join_at(now: datetime, terms: Terms = NO_TERMS) -> Attempt:
    return first_join("e", "r", "s1", "Ada", DURATION, now, terms)


# -- the window -------------------------------------------------------------------------------


def test_a_join_before_the_window_is_refused_saying_when_it_opens() -> None:
    with pytest.raises(Conflict) as refused:
        join_at(T0 - timedelta(seconds=1), Terms(window=WINDOW))
    assert refused.value.code == "not_open_yet"
    assert refused.value.details == {"opens_at": T0.isoformat()}
    assert T0.isoformat() in refused.value.message


def test_a_join_after_the_latest_start_is_refused_as_too_late() -> None:
    with pytest.raises(Conflict) as refused:
        join_at(T0 + HOUR + timedelta(seconds=1), Terms(window=WINDOW))
    assert refused.value.code == "too_late"
    assert refused.value.details == {"latest_start": (T0 + HOUR).isoformat()}


def test_a_join_at_or_after_the_close_is_refused_as_closed() -> None:
    window = Schedule(closes_at=T0)
    for now in (T0, T0 + timedelta(days=3)):
        with pytest.raises(Conflict) as refused:
            join_at(now, Terms(window=window))
        assert refused.value.code == "closed" and refused.value.details == {"closes_at": T0.isoformat()}


def test_a_join_inside_the_window_or_without_one_starts_the_full_time() -> None:
    for terms, now in ((Terms(window=WINDOW), T0), (Terms(window=WINDOW), T0 + HOUR), (Terms(), T0 - 100 * HOUR)):
        a = join_at(now, terms)
        assert a.deadline == now + timedelta(seconds=DURATION)
        assert a.hard_close_at is None and a.time_deadline is None  # nothing to cut


def test_the_window_compares_instants_not_wall_clocks() -> None:
    # 10:00 in Paris (UTC+1) is 09:00 UTC: T0.
    paris = datetime(2026, 3, 2, 10, 0, tzinfo=timezone(HOUR))
    join_at(T0, Terms(window=Schedule(opens_at=paris)))
    with pytest.raises(Conflict):
        join_at(T0 - timedelta(microseconds=1), Terms(window=Schedule(opens_at=paris)))


def test_a_naive_time_is_not_a_schedule() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        Schedule(opens_at=datetime(2026, 3, 2, 9, 0))


# -- the hard close ---------------------------------------------------------------------------


def test_a_hard_close_cuts_the_deadline_at_the_window_end() -> None:
    late = join_at(T0 + HOUR, Terms(window=HARD))  # 30 minutes before the close
    assert late.deadline == T0 + 90 * timedelta(minutes=1)
    assert late.time_deadline == T0 + 2 * HOUR  # the clock alone would give a full hour
    early = join_at(T0, Terms(window=HARD))  # the hour fits
    assert early.deadline == T0 + HOUR


def test_the_sweeper_submits_at_the_hard_close_with_time_left() -> None:
    a = join_at(T0 + HOUR, Terms(window=HARD))
    close = T0 + 90 * timedelta(minutes=1)
    assert not timer.is_due(a, close - timedelta(seconds=1))
    done = timer.expire(a, close + timedelta(seconds=3))
    assert done is not None
    assert (done.status, done.submitted_at, done.end_reason) == ("submitted", close, "window_closed")
    # An attempt whose time ran out before the close ends by its deadline, as before.
    early = timer.expire(join_at(T0, Terms(window=HARD)), T0 + HOUR)
    assert early is not None and early.end_reason == "deadline" and early.submitted_at == T0 + HOUR


def test_a_paused_attempt_is_submitted_at_the_hard_close_too() -> None:
    a = timer.pause(join_at(T0, Terms(window=HARD)), T0 + 10 * timedelta(minutes=1))
    assert a is not None
    close = T0 + 90 * timedelta(minutes=1)
    assert not timer.is_due(a, close - timedelta(seconds=1))
    done = timer.expire(a, close)
    assert done is not None
    assert (done.status, done.submitted_at, done.end_reason, done.paused_at) == (
        "submitted",
        close,
        "window_closed",
        None,
    )


def test_resume_and_extend_count_up_to_the_hard_close_only() -> None:
    a = join_at(T0, Terms(window=HARD))  # deadline T0+60, close T0+90
    paused = timer.pause(a, T0 + 10 * timedelta(minutes=1))
    assert paused is not None
    resumed = timer.resume(paused, T0 + 50 * timedelta(minutes=1))  # 40 minutes given back
    assert resumed is not None
    assert resumed.time_deadline == T0 + 100 * timedelta(minutes=1)
    assert resumed.deadline == T0 + 90 * timedelta(minutes=1)
    extended = timer.extend(5)(resumed, T0 + 51 * timedelta(minutes=1))
    assert extended is not None and extended.deadline == T0 + 90 * timedelta(minutes=1)
    assert extended.time_deadline == T0 + 105 * timedelta(minutes=1)
    # The window reopened later: the clock's own deadline, kept beside the cut, applies.
    later = timer.set_hard_close(T0 + 3 * HOUR)(extended, T0 + 52 * timedelta(minutes=1))
    assert later is not None and later.deadline == T0 + 105 * timedelta(minutes=1)
    uncut = timer.set_hard_close(None)(extended, T0 + 52 * timedelta(minutes=1))
    assert uncut is not None and uncut.deadline == T0 + 105 * timedelta(minutes=1) and uncut.time_deadline is None


def test_a_hard_close_set_while_running_cuts_at_once() -> None:
    a = join_at(T0)
    cut = timer.set_hard_close(T0 + 30 * timedelta(minutes=1))(a, T0 + 5 * timedelta(minutes=1))
    assert cut is not None and cut.deadline == T0 + 30 * timedelta(minutes=1)
    assert timer.set_hard_close(cut.hard_close_at)(cut, T0) is None  # unchanged: nothing to write


# -- accommodations ---------------------------------------------------------------------------


def test_extra_time_as_a_percentage_and_as_minutes() -> None:
    assert Accommodation(extra_percent=25).extra_seconds(DURATION) == 900
    assert Accommodation(extra_minutes=15).extra_seconds(DURATION) == 900
    assert Accommodation(extra_percent=50, extra_minutes=10).extra_seconds(DURATION) == 2400
    assert Accommodation(extra_percent=0.01).extra_seconds(61) == 1  # rounded up, never lost


def test_a_first_join_carries_the_accommodation() -> None:
    terms = Terms(accommodation=Accommodation(extra_percent=25, rules_off=("no_face", "tab_hidden")))
    a = join_at(T0, terms)
    assert a.deadline == T0 + timedelta(seconds=DURATION + 900)
    assert a.extra_seconds == 900 and a.accommodations == ("no_face", "tab_hidden")


def test_extra_time_edited_while_running_moves_the_deadline_by_the_difference() -> None:
    a = join_at(T0)
    more = timer.set_extra(900, ("looking_away",))(a, T0 + HOUR / 2)
    assert more is not None
    assert more.deadline == T0 + HOUR + timedelta(minutes=15) and more.accommodations == ("looking_away",)
    less = timer.set_extra(300)(more, T0 + HOUR / 2)
    assert less is not None and less.deadline == T0 + HOUR + timedelta(minutes=5)
    assert less.accommodations == ("looking_away",)  # None: the rule switches stay
    gone = timer.set_extra(0, ())(less, T0 + HOUR / 2)
    assert gone is not None and gone.deadline == T0 + HOUR and gone.accommodations == ()
    assert timer.set_extra(0, ())(gone, T0) is None  # nothing changes: nothing to write


def test_extra_time_on_a_paused_attempt_is_time_left_after_the_resume() -> None:
    paused = timer.pause(join_at(T0), T0 + 20 * timedelta(minutes=1))
    assert paused is not None
    more = timer.set_extra(600)(paused, T0 + 30 * timedelta(minutes=1))
    assert more is not None and more.remaining_seconds(T0 + 5 * HOUR) == 50 * 60


def test_extra_time_stops_at_the_hard_close() -> None:
    a = join_at(T0 + HOUR, Terms(window=HARD, accommodation=Accommodation(extra_minutes=30)))
    assert a.deadline == T0 + 90 * timedelta(minutes=1)
    assert a.time_deadline == T0 + 2 * HOUR + 30 * timedelta(minutes=1)


@pytest.mark.parametrize("status", ["submitted", "terminated"])
def test_a_closed_attempt_keeps_its_time(status: str) -> None:
    a = join_at(T0)
    closed = replace(a, status=status)
    assert timer.set_extra(600)(closed, T0) is None
    assert timer.set_hard_close(T0)(closed, T0) is None


def test_accommodation_bounds() -> None:
    for bad in (
        {"extra_minutes": -1},
        {"extra_percent": -5},
        {"extra_percent": 401},
        {"extra_minutes": 1441},
        {"extra_minutes": "15"},
        {"extra_percent": float("nan")},
        {"rules_off": ["no_face", "no_face"]},
        {"rules_off": ["not_a_rule"]},
        {"note": "x" * 501},
        {"extra": 1},
    ):
        with pytest.raises(ValidationError):
            Accommodation.model_validate(bad)


def test_the_student_is_told_minutes_and_rule_names_never_the_note() -> None:
    told = for_student(900, ("no_face", "tab_hidden"))
    assert told == {
        "extra_seconds": 900,
        "extra_minutes": 15.0,
        "rules_off": [{"id": "no_face", "label": "No face"}, {"id": "tab_hidden", "label": "Tab hidden"}],
    }


def test_rule_switches_reach_the_students_analysis_rules() -> None:
    a = join_at(T0, Terms(accommodation=Accommodation(rules_off=("speaking", "no_face"))))
    rules = AnalysisRules(enabled=True, speaking=True)
    assert rules.for_student(a.accommodations)["speaking"] is False
    assert rules.for_student(())["speaking"] is True
    from detection.settings import RuleSettings

    settings = RuleSettings.from_rules({"analysis": rules.model_dump(mode="json")}, a.accommodations)
    assert {"no_face", "speaking"} <= set(settings.disabled)


async def test_a_browser_signal_switched_off_for_the_student_counts_nothing() -> None:
    f = Fixture.build()
    f.store.terms = Terms(accommodation=Accommodation(rules_off=("paste",)))
    joined = await f.attempts.join(f.student)
    await f.attempts.client_event(joined.attempt.id, 1, "paste", T0, {})
    await f.attempts.client_event(joined.attempt.id, 2, "copy", T0, {})
    pushed = [d for e, d in f.notifier.teacher_events if e == "violation"]
    assert [(d["kind"], d["severity"], d["score"]) for d in pushed] == [("paste", 0.0, 0.0), ("copy", 2.0, 2.0)]


async def test_the_service_refuses_a_first_join_outside_the_window() -> None:
    f = Fixture.build()
    f.store.terms = Terms(window=Schedule(opens_at=T0 + HOUR))
    with pytest.raises(Conflict) as refused:
        await f.attempts.join(f.student)
    assert refused.value.code == "not_open_yet"
    assert datetime.fromisoformat(refused.value.details["opens_at"]) == T0 + HOUR
    assert T0.tzinfo is UTC
