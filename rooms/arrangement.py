"""Per-attempt order of questions and options, and the pools' draw. Pure and deterministic.

The seed is the SHA-256 of the attempt id, so every node, before and after a restart, gives
one attempt the same questions in the same order (docs/exams.md, "Shuffling and pools").
The student's page sees option indexes *as displayed*; answers are stored with the original
indexes (`to_original`), so grading, review and export never need the order.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .exam import Pool, Question


@dataclass(frozen=True, slots=True)
class Arrangement:
    """Which questions an attempt gets, in its order, and each choice question's option order.

    `options[qid][shown]` is the original index of the option shown at position `shown`."""

    question_ids: tuple[str, ...]
    options: Mapping[str, tuple[int, ...]]

    def includes(self, question_id: str) -> bool:
        return question_id in self.question_ids

    def to_original(self, question: Question, value: Any) -> Any:
        """A student's answer (displayed indexes) with the original option indexes."""
        order = self.options.get(question.id)
        if order is None:
            return value
        if question.kind == "single" and _index(value, len(order)):
            return order[value]
        if question.kind == "multiple" and isinstance(value, list) and all(_index(v, len(order)) for v in value):
            return sorted(order[v] for v in value)
        return value

    def to_displayed(self, question: Question, value: Any) -> Any:
        """A stored answer (original indexes) as the student's page shows it."""
        order = self.options.get(question.id)
        if order is None:
            return value
        shown = {original: i for i, original in enumerate(order)}
        if question.kind == "single" and _index(value, len(order)):
            return shown[value]
        if question.kind == "multiple" and isinstance(value, list) and all(_index(v, len(order)) for v in value):
            return sorted(shown[v] for v in value)
        return value


def _index(value: Any, size: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < size


def seed_of(attempt_id: str) -> int:
    return int.from_bytes(hashlib.sha256(attempt_id.encode()).digest()[:16], "big")


def arrange(
    attempt_id: str,
    questions: Sequence[Question],
    *,
    shuffle_questions: bool = False,
    shuffle_options: bool = False,
    pools: Sequence[Pool] = (),
) -> Arrangement:
    """The attempt's arrangement: pools drawn, then questions and options shuffled if asked."""
    rng = random.Random(seed_of(attempt_id))
    drawn: set[str] = set()
    pooled: set[str] = set()
    # Pools draw in their declared order, each from the same generator, so the draw is stable.
    for pool in pools:
        pooled.update(pool.questions)
        drawn.update(rng.sample(list(pool.questions), pool.draw))
    ids = [q.id for q in questions if q.id not in pooled or q.id in drawn]
    if shuffle_questions:
        rng.shuffle(ids)
    options: dict[str, tuple[int, ...]] = {}
    if shuffle_options:
        by_id = {q.id: q for q in questions}
        for qid in ids:
            q = by_id[qid]
            if q.kind in ("single", "multiple"):
                order = list(range(len(q.options)))
                rng.shuffle(order)
                options[qid] = tuple(order)
    return Arrangement(tuple(ids), options)


def student_questions(questions: Sequence[Question], arrangement: Arrangement) -> list[dict[str, Any]]:
    """The attempt's questions as its page gets them: its order, options as displayed, no key."""
    by_id = {q.id: q for q in questions}
    shown = []
    for qid in arrangement.question_ids:
        data = by_id[qid].for_student()
        order = arrangement.options.get(qid)
        if order is not None:
            data["options"] = [by_id[qid].options[i] for i in order]
        shown.append(data)
    return shown
