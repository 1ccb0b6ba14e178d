"""Per-question statistics of a room's graded attempts (docs/exams.md, "Results and statistics").

Pure arithmetic over the rows the store reads (rooms/store/results.py):

- **answered**: how many attempts saved an answer to the question;
- **mean score**: the mean of the question's points over the attempts graded on it;
- **difficulty** (the facility index, as Moodle calls it): mean score / the question's maximum,
  0..1, higher means easier;
- **discrimination**: the point-biserial (Pearson) correlation between the points an attempt got
  on the question and its points on *every other* question (the corrected item-total
  correlation: the question's own points are left out of the total so it does not correlate
  with itself): r = Σ(x−x̄)(y−ȳ) / √(Σ(x−x̄)² Σ(y−ȳ)²), −1..1; above about 0.3 the question
  separates strong from weak attempts, near 0 or below it does not. None when fewer than two
  attempts were graded on the question or either side has no spread (r is undefined then).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class GradeRow:
    """One graded answer: `points` of `max_points` on `question_id` in `attempt_id`."""

    attempt_id: str
    question_id: str
    points: float
    max_points: float


@dataclass(frozen=True, slots=True)
class QuestionRef:
    id: str
    text: str
    kind: str
    points: float


@dataclass(frozen=True, slots=True)
class QuestionStats:
    question_id: str
    text: str
    kind: str
    max_points: float
    answered: int
    graded: int
    mean_score: float | None
    difficulty: float | None
    discrimination: float | None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """The correlation of two equally long series; None when undefined (n < 2 or no spread)."""
    n = len(xs)
    if n < 2 or n != len(ys):
        return None
    mx = math.fsum(xs) / n
    my = math.fsum(ys) / n
    sxy = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    syy = math.fsum((y - my) ** 2 for y in ys)
    if sxx <= 1e-12 or syy <= 1e-12:
        return None
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def question_statistics(
    questions: Sequence[QuestionRef], answered: Mapping[str, int], grades: Iterable[GradeRow]
) -> list[QuestionStats]:
    """One entry per question of the exam, in the exam's order."""
    by_question: dict[str, dict[str, GradeRow]] = defaultdict(dict)
    totals: dict[str, float] = defaultdict(float)
    for g in grades:
        by_question[g.question_id][g.attempt_id] = g
        totals[g.attempt_id] += g.points
    stats = []
    for q in questions:
        rows = by_question.get(q.id, {})
        graded = len(rows)
        mean = math.fsum(r.points for r in rows.values()) / graded if graded else None
        # The stored maximum is the one the points were graded against (a key may have changed).
        maximum = max((r.max_points for r in rows.values()), default=q.points)
        difficulty = mean / maximum if mean is not None and maximum > 0 else None
        item = [r.points for r in rows.values()]
        rest = [totals[a] - r.points for a, r in rows.items()]
        discrimination = pearson(item, rest)
        stats.append(
            QuestionStats(
                question_id=q.id,
                text=q.text,
                kind=q.kind,
                max_points=maximum,
                answered=answered.get(q.id, 0),
                graded=graded,
                mean_score=_round(mean),
                difficulty=_round(difficulty),
                discrimination=_round(discrimination),
            )
        )
    return stats


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
