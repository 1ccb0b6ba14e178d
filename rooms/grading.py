"""Scoring one answer against its question's key, and an attempt's total. Pure rules, no I/O.

docs/exams.md ("Grading") states the same formulas:

- single: all of the points if the chosen option is the right one, else 0.
- multiple, all_or_nothing: all of the points if exactly the right options are chosen.
- multiple, partial: points × clamp((right chosen − wrong chosen) / right, 0, 1).
- numeric: all of the points if |value − answer| ≤ tolerance; "0,33" and " 0.33 " are numbers.
- short: all of the points if the answer equals an accepted one after Unicode NFKC, casefold and
  whitespace collapsed and trimmed.
- essay (and any question without a key): a person grades it.

An unanswered question scores 0 without a person: there is nothing to judge.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .exam import Question

_SPACE = re.compile(r"\s+")
# A decimal number as people type it: sign, digits, one decimal point or comma, an exponent.
_NUMBER = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True, slots=True)
class Score:
    """What the server decided for one question: `points` of `max_points`."""

    points: float
    max_points: float


def normalise_text(value: str) -> str:
    """A short answer as compared: NFKC, case folded, whitespace collapsed and trimmed."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", value).casefold()).strip()


def parse_number(value: Any) -> float | None:
    """The number a student gave (an int, a float, or text with a decimal point or comma)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip().replace(" ", "")
        if not _NUMBER.fullmatch(text):
            return None
        number = float(text.replace(",", "."))
    else:
        return None
    return number if math.isfinite(number) else None


def partial_fraction(right: Iterable[int], chosen: Iterable[int]) -> float:
    """(right chosen − wrong chosen) / right, clamped to [0, 1]."""
    right_set, chosen_set = set(right), set(chosen)
    if not right_set:
        return 1.0 if not chosen_set else 0.0
    hits = len(right_set & chosen_set)
    misses = len(chosen_set - right_set)
    return min(1.0, max(0.0, (hits - misses) / len(right_set)))


def answered(value: Any) -> bool:
    """Whether `value` is an answer at all (None, "", whitespace and [] are not)."""
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | tuple):
        return bool(value)
    return True


def score(question: Question, value: Any) -> Score | None:
    """The score of `value` (original option indexes) for `question`; None: a person grades it."""
    full = question.points
    if not answered(value):
        return Score(0.0, full)
    if not question.auto_graded:
        return None
    if question.kind == "single":
        assert question.correct is not None
        right = isinstance(value, int) and not isinstance(value, bool) and value == question.correct[0]
        return Score(full if right else 0.0, full)
    if question.kind == "multiple":
        assert question.correct is not None
        if not isinstance(value, list | tuple):
            return Score(0.0, full)
        chosen = [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
        if question.scoring == "partial":
            return Score(full * partial_fraction(question.correct, chosen), full)
        return Score(full if set(chosen) == set(question.correct) else 0.0, full)
    if question.kind == "numeric":
        assert question.answer is not None
        number = parse_number(value)
        # A tiny relative slack: 0.1 + 0.2 must be within a tolerance of 0 of 0.3.
        slack = question.tolerance + 1e-9 * max(1.0, abs(question.answer))
        right = number is not None and abs(number - question.answer) <= slack
        return Score(full if right else 0.0, full)
    # short
    if not isinstance(value, str):
        return Score(0.0, full)
    given = normalise_text(value)
    right = any(given == normalise_text(a) for a in question.accepted)
    return Score(full if right else 0.0, full)


@dataclass(frozen=True, slots=True)
class Total:
    """An attempt's grade from its questions' grades."""

    grade: float
    grade_max: float
    final: bool


def total(questions: Iterable[Question], grades: Mapping[str, float]) -> Total:
    """Sum of the graded points over the attempt's questions; final when each has a grade."""
    grade = grade_max = 0.0
    final = True
    for q in questions:
        grade_max += q.points
        if q.id in grades:
            grade += grades[q.id]
        else:
            final = False
    return Total(round(grade, 6), round(grade_max, 6), final)
