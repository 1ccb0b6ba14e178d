"""Exams and rooms as the domain holds them once stored: ids, questions, rules and seats.

The Postgres catalog (rooms/store/catalog.py) builds these values; the domain reads them
through the `ExamCatalog` protocol (rooms/protocols.py), so it needs no database driver.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import NotFound
from .exam import Question, Rules, Schedule


@dataclass(frozen=True, slots=True)
class Exam:
    id: str
    title: str
    duration_seconds: int
    questions: tuple[Question, ...]
    rules: Rules
    created_by: str
    created_at: datetime
    # As read with the exam, for its JSON; joins read the window afresh (rooms/store/schedule.py).
    schedule: Schedule | None = None

    def question(self, question_id: str) -> Question | None:
        for q in self.questions:
            if q.id == question_id:
                return q
        return None

    def to_json(self, *, for_student: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "duration_minutes": self.duration_seconds // 60,
            "duration_seconds": self.duration_seconds,
            "questions": [q.for_student() if for_student else q.model_dump(mode="json") for q in self.questions],
        }
        # Students may know how long evidence about them is kept (the consent notice says so).
        data["evidence_retention_days"] = self.rules.evidence_retention_days
        data["analysis_enabled"] = self.rules.analysis.enabled
        data["speaking_enabled"] = self.rules.analysis.speaking_for()  # the consent names the microphone
        data["schedule"] = self.schedule.model_dump(mode="json") if self.schedule is not None else None
        if not for_student:
            data["rules"] = self.rules.model_dump(mode="json")
            data["created_by"] = self.created_by
            data["created_at"] = self.created_at.isoformat()
        return data


@dataclass(frozen=True, slots=True)
class Room:
    id: str
    exam_id: str
    name: str
    seats: int
    host_node: str | None
    created_at: datetime
    schedule: Schedule | None = None  # the room's own window (None: the exam's applies)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "exam_id": self.exam_id,
            "name": self.name,
            "seats": self.seats,
            "host_node": self.host_node,
            "created_at": self.created_at.isoformat(),
            "schedule": self.schedule.model_dump(mode="json") if self.schedule is not None else None,
        }


def parse_uuid(value: str, what: str) -> uuid.UUID:
    # An id that is not a UUID names nothing: the caller answers 404, as for an unknown one.
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise NotFound(f"no {what} {value!r}", code="not_found") from None
