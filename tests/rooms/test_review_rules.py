"""The review's pure rules (rooms/review.py) and the statistics' arithmetic (rooms/results.py)."""

from __future__ import annotations

import math

import pytest

from rooms.errors import Conflict, Invalid, RoomsError
from rooms.results import GradeRow, QuestionRef, pearson, question_statistics
from rooms.review import FlagCounts, answer_text, check_verdict, flag_explanation, plural


def test_counts_read_as_people_write_them() -> None:
    assert [plural(n, "student") for n in (0, 1, 2)] == ["0 students", "1 student", "2 students"]
    assert plural(1, "person", "people") == "1 person" and plural(3, "person", "people") == "3 people"


def test_the_explanation_is_the_detectors_then_an_older_rows_then_the_kinds() -> None:
    words = "No face seen for 4.0 s (best score 0.00 < 0.50)"
    assert flag_explanation("no_face", {"explanation": words, "reason": "other"}) == words
    assert flag_explanation("no_face", {"reason": "stored before step 12"}) == "stored before step 12"
    assert flag_explanation("paste", {}) == "Text was pasted into the exam page."
    assert flag_explanation("paste", {"explanation": "  "}) == "Text was pasted into the exam page."
    assert "unknown_kind" in flag_explanation("unknown_kind", {})


def test_answers_show_option_texts() -> None:
    options = ("2", "4", "7")
    assert answer_text("single", options, 1) == "4"
    assert answer_text("multiple", options, [0, 2]) == "2; 7"
    assert answer_text("multiple", options, []) == "(nothing chosen)"
    assert answer_text("single", options, 9) == "option 9"  # a key corrected since: still readable
    assert answer_text("numeric", (), "3,14") == "3,14" and answer_text("essay", (), None) == "(no answer)"


@pytest.mark.parametrize(
    ("verdict", "note", "status", "flags", "error", "code"),
    [
        ("cleared", "", "active", FlagCounts(0, 0, 0), Conflict, "attempt_running"),
        ("cleared", "", "paused", FlagCounts(0, 0, 0), Conflict, "attempt_running"),
        ("cleared", "", "submitted", FlagCounts(1, 0, 0), Conflict, "unreviewed_flags"),
        ("misconduct", "why", "submitted", FlagCounts(0, 0, 2), Conflict, "no_confirmed_flag"),
        ("follow_up", " ", "terminated", FlagCounts(0, 1, 0), Invalid, "invalid"),
        ("misconduct", "", "submitted", FlagCounts(0, 1, 0), Invalid, "invalid"),
    ],
)
def test_a_verdict_is_refused_when(
    verdict: str, note: str, status: str, flags: FlagCounts, error: type[RoomsError], code: str
) -> None:
    with pytest.raises(error) as raised:
        check_verdict(verdict, note, status, flags)  # type: ignore[arg-type]
    assert raised.value.code == code


def test_a_verdict_is_accepted_when_everything_is_decided() -> None:
    check_verdict("cleared", "", "submitted", FlagCounts(0, 0, 3))
    check_verdict("cleared", "", "submitted", FlagCounts(0, 0, 0))
    check_verdict("follow_up", "ask about the second screen", "terminated", FlagCounts(0, 0, 1))
    check_verdict("misconduct", "phone", "submitted", FlagCounts(0, 1, 1))


def test_pearson_is_undefined_without_spread_or_pairs() -> None:
    assert pearson([1.0], [2.0]) is None
    assert pearson([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None
    assert pearson([0.0, 1.0], [0.0, 1.0]) == pytest.approx(1.0)
    # By hand: x = 1,2,3; y = 3,1,2 -> dx = -1,0,1; dy = 1,-1,0 -> Σ = -1; √(2·2) = 2 -> -0.5
    assert pearson([1.0, 2.0, 3.0], [3.0, 1.0, 2.0]) == pytest.approx(-0.5)


def test_a_question_nobody_answered_has_no_figures_and_the_stored_maximum_wins() -> None:
    questions = [QuestionRef("q1", "a", "single", 1.0), QuestionRef("q2", "b", "essay", 4.0)]
    grades = [GradeRow("A", "q1", 1.0, 2.0), GradeRow("B", "q1", 0.0, 2.0)]
    s1, s2 = question_statistics(questions, {"q1": 2}, grades)
    assert (s1.max_points, s1.mean_score, s1.difficulty) == (2.0, 0.5, 0.25)  # graded against 2, not 1
    assert s1.discrimination is None  # no other question: the rest has no spread
    assert (s2.answered, s2.graded, s2.mean_score, s2.difficulty, s2.discrimination) == (0, 0, None, None, None)
    assert not math.isnan(s1.mean_score or 0.0)
