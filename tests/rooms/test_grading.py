"""Scoring answers against keys (rooms/grading.py): the rules of docs/exams.md, and properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rooms.exam import Question
from rooms.grading import Score, normalise_text, parse_number, partial_fraction, score, total


def single(points: float = 2.0) -> Question:
    return Question(id="s", kind="single", text="?", options=("a", "b", "c"), correct=(1,), points=points)


def multiple(scoring: str = "partial", points: float = 3.0, correct: tuple[int, ...] = (0, 2)) -> Question:
    return Question.model_validate(
        {
            "id": "m",
            "kind": "multiple",
            "text": "?",
            "options": ["a", "b", "c", "d"],
            "correct": list(correct),
            "scoring": scoring,
            "points": points,
        }
    )


NUMERIC = Question(id="n", kind="numeric", text="1/3?", answer=0.33, tolerance=0.005)
SHORT = Question(id="t", kind="short", text="Capital?", accepted=("Paris", "Ville  Lumière"))
ESSAY = Question(id="e", kind="essay", text="Explain.", points=5)


def test_single_is_all_or_nothing() -> None:
    assert score(single(), 1) == Score(2.0, 2.0)
    assert score(single(), 0) == Score(0.0, 2.0)
    assert score(single(), True) == Score(0.0, 2.0)  # a bool is not an index


def test_multiple_all_or_nothing() -> None:
    q = multiple("all_or_nothing")
    assert score(q, [2, 0]) == Score(3.0, 3.0)
    assert score(q, [0]) == Score(0.0, 3.0)
    assert score(q, [0, 1, 2]) == Score(0.0, 3.0)


@pytest.mark.parametrize(
    ("chosen", "points"),
    [([0, 2], 3.0), ([0], 1.5), ([0, 1], 0.0), ([1, 3], 0.0), ([0, 1, 2], 1.5), ([0, 1, 2, 3], 0.0)],
)
def test_multiple_partial_is_right_minus_wrong_over_right(chosen: list[int], points: float) -> None:
    assert score(multiple("partial"), chosen) == Score(points, 3.0)


@pytest.mark.parametrize("value", [0.33, "0,33", " 0.33 ", "0.334", 0.3299, "+0.33", "3.3e-1"])
def test_numeric_within_tolerance(value: Any) -> None:
    assert score(NUMERIC, value) == Score(1.0, 1.0)


@pytest.mark.parametrize("value", [0.34, "0.336", "abc", "0..33", "nan", "inf", "1,2,3", True])
def test_numeric_outside_tolerance_or_not_a_number(value: Any) -> None:
    assert score(NUMERIC, value) == Score(0.0, 1.0)


def test_numeric_zero_tolerance_ignores_float_noise() -> None:
    q = Question(id="n", kind="numeric", text="?", answer=0.3)
    assert score(q, 0.1 + 0.2) == Score(1.0, 1.0)


@pytest.mark.parametrize("value", ["paris", "  PARIS ", "Paris\n", "ville lumière", "VILLE\tLUMIÈRE", "Ｐａｒｉｓ"])
def test_short_ignores_case_spacing_and_width(value: str) -> None:
    assert score(SHORT, value) == Score(1.0, 1.0)


def test_short_wrong() -> None:
    assert score(SHORT, "Lyon") == Score(0.0, 1.0)
    assert score(SHORT, "Par is") == Score(0.0, 1.0)


def test_essay_needs_a_person_unless_unanswered() -> None:
    assert score(ESSAY, "Because.") is None
    assert score(ESSAY, None) == Score(0.0, 5.0)
    assert score(ESSAY, "   ") == Score(0.0, 5.0)


def test_keyless_choice_needs_a_person() -> None:
    q = Question(id="k", kind="single", text="?", options=("a", "b"))
    assert not q.auto_graded
    assert score(q, 0) is None


def test_unanswered_scores_zero() -> None:
    for q in (single(), multiple(), NUMERIC, SHORT):
        assert score(q, None) == Score(0.0, q.points)
    assert score(multiple(), []) == Score(0.0, 3.0)


def test_total_is_final_only_when_every_question_has_a_grade() -> None:
    qs = (single(), ESSAY)
    assert total(qs, {"s": 2.0}).final is False
    result = total(qs, {"s": 2.0, "e": 4.5})
    assert (result.grade, result.grade_max, result.final) == (6.5, 7.0, True)


def test_normalise_and_parse() -> None:
    assert normalise_text("  A\u00a0 b ") == "a b"
    assert parse_number(" 1,5 ") == 1.5
    assert parse_number("1e400") is None


@given(
    size=st.integers(1, 20),
    data=st.data(),
    points=st.floats(0, 1000, allow_nan=False),
)
def test_partial_credit_stays_within_zero_and_the_points(size: int, data: st.DataObject, points: float) -> None:
    indexes = st.lists(st.integers(0, size - 1), unique=True, max_size=size)
    right = data.draw(st.lists(st.integers(0, size - 1), unique=True, min_size=1, max_size=size))
    chosen = data.draw(indexes)
    q = Question.model_validate(
        {
            "id": "m",
            "kind": "multiple",
            "text": "?",
            "options": [f"o{i}" for i in range(max(2, size))],
            "correct": right,
            "scoring": "partial",
            "points": points,
        }
    )
    result = score(q, chosen)
    assert result is not None
    assert 0.0 <= result.points <= points
    assert 0.0 <= partial_fraction(right, chosen) <= 1.0
    if set(chosen) == set(right):
        assert result.points == points
