"""What the durable event writer stores, and what a write did: the domain's side of it.

The domain builds these records (an answer, a violation with its evidence) and hands them to
an `EventSink` (rooms/protocols.py); rooms/store/event_writer.py writes them to Postgres.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Evidence:
    id: uuid.UUID
    data: bytes
    taken_at: datetime
    expires_at: datetime
    content_type: str = "image/jpeg"


@dataclass(frozen=True, slots=True)
class ViolationRecord:
    attempt_id: uuid.UUID
    seq: int
    source: str  # "client" | "server"
    kind: str
    severity: float
    occurred_at: datetime
    details: dict[str, Any]
    evidence: Evidence | None = None

    @property
    def key(self) -> tuple[Any, ...]:
        return ("v", self.attempt_id, self.source, self.seq)


@dataclass(frozen=True, slots=True)
class AnswerRecord:
    attempt_id: uuid.UUID
    question_id: str
    value: Any
    seq: int

    @property
    def key(self) -> tuple[Any, ...]:
        return ("a", self.attempt_id, self.question_id)


Record = ViolationRecord | AnswerRecord


@dataclass(frozen=True, slots=True)
class WriteResult:
    """`stored` False means an earlier write already holds this event (a re-send)."""

    stored: bool
    violation_id: int | None = None
