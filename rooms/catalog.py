"""Exams and rooms as the domain holds them once stored: ids, questions, rules and seats.

The Postgres catalog (rooms/store/catalog.py) builds these values; the domain reads them
through the `ExamCatalog` protocol (rooms/protocols.py), so it needs no database driver.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .arrangement import Arrangement, arrange, student_questions
from .errors import NotFound
from .exam import ExamSpec, Pool, Question, Rules, Schedule

# ExamSpec fields kept in the exams row's `settings` jsonb (migration 0011), not in a column each.
SETTINGS_FIELDS = ("shuffle_questions", "shuffle_options", "pools", "schedule")


@dataclass(frozen=True, slots=True)
class Exam:
    id: str
    title: str
    duration_seconds: int
    questions: tuple[Question, ...]
    rules: Rules
    created_by: str
    created_at: datetime
    # Step 12: settings, and the version family (docs/exams.md, "Versions and lifecycle").
    shuffle_questions: bool = False
    shuffle_options: bool = False
    pools: tuple[Pool, ...] = ()
    schedule: Schedule = field(default_factory=Schedule)
    family_id: str = ""
    version: int = 1
    parent_id: str | None = None
    archived: bool = False

    def question(self, question_id: str) -> Question | None:
        for q in self.questions:
            if q.id == question_id:
                return q
        return None

    @property
    def family(self) -> str:
        return self.family_id or self.id

    def spec(self) -> ExamSpec:
        """The exam as the body that would create it (what an edit starts from)."""
        return ExamSpec(
            title=self.title,
            duration_minutes=max(1, self.duration_seconds // 60),
            questions=self.questions,
            rules=self.rules,
            shuffle_questions=self.shuffle_questions,
            shuffle_options=self.shuffle_options,
            pools=self.pools,
            schedule=self.schedule,
        )

    def arrangement(self, attempt_id: str) -> Arrangement:
        """The questions and option order attempt `attempt_id` gets (rooms/arrangement.py)."""
        return arrange(
            attempt_id,
            self.questions,
            shuffle_questions=self.shuffle_questions,
            shuffle_options=self.shuffle_options,
            pools=self.pools,
        )

    def attempt_questions(self, attempt_id: str) -> tuple[Question, ...]:
        """The questions of one attempt (its pools' draw), in the exam's own order."""
        chosen = set(self.arrangement(attempt_id).question_ids)
        return tuple(q for q in self.questions if q.id in chosen)

    def for_attempt(self, attempt_id: str) -> dict[str, Any]:
        """The exam as this attempt's page gets it: its questions, in its order, no key."""
        data = self.to_json(for_student=True)
        data["questions"] = student_questions(self.questions, self.arrangement(attempt_id))
        return data

    def to_json(self, *, for_student: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "duration_minutes": self.duration_seconds // 60,
            "duration_seconds": self.duration_seconds,
            "questions": [q.for_student() if for_student else q.model_dump(mode="json") for q in self.questions],
        }
        # Students may know how long evidence about them is kept (the consent notice says so).
        # How many questions an attempt gets (with pools, fewer than the exam holds).
        data["question_count"] = len(self.arrangement("").question_ids)
        if for_student and self.pools:
            # A pooled exam's bank stays on the server: a student sees only the questions drawn
            # for them, in the join's acknowledgement (`for_attempt`).
            data["questions"] = []
        data["evidence_retention_days"] = self.rules.evidence_retention_days
        data["analysis_enabled"] = self.rules.analysis.enabled
        data["speaking_enabled"] = self.rules.analysis.speaking_for()  # the consent names the microphone
        if not for_student:
            data["rules"] = self.rules.model_dump(mode="json")
            data["created_by"] = self.created_by
            data["created_at"] = self.created_at.isoformat()
            data["shuffle_questions"] = self.shuffle_questions
            data["shuffle_options"] = self.shuffle_options
            data["pools"] = [p.model_dump(mode="json") for p in self.pools]
            data["schedule"] = self.schedule.model_dump(mode="json")
            data["family_id"] = self.family
            data["version"] = self.version
            data["parent_id"] = self.parent_id
            data["archived"] = self.archived
        return data


@dataclass(frozen=True, slots=True)
class Room:
    id: str
    exam_id: str
    name: str
    seats: int
    host_node: str | None
    created_at: datetime
    closed: bool = False  # step 12: a closed room takes no new attempts (resumes still work)
    schedule: Schedule | None = None  # the room's own window (None: the exam's applies)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "exam_id": self.exam_id,
            "name": self.name,
            "seats": self.seats,
            "host_node": self.host_node,
            "created_at": self.created_at.isoformat(),
            "closed": self.closed,
            "schedule": self.schedule.model_dump(mode="json") if self.schedule is not None else None,
        }


def parse_uuid(value: str, what: str) -> uuid.UUID:
    # An id that is not a UUID names nothing: the caller answers 404, as for an unknown one.
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise NotFound(f"no {what} {value!r}", code="not_found") from None
