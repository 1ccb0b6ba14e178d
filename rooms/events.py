"""What the durable event writer stores, and what a write did: the domain's side of it.

The domain builds these records (an answer, a violation with its evidence) and hands them to
an `EventSink` (rooms/protocols.py); rooms/store/event_writer.py writes them to Postgres.
"""

from __future__ import annotations

import itertools
import time
import uuid
from dataclasses import dataclass, field
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


@dataclass(frozen=True, slots=True)
class AnalysisFlag:
    """What the server's analysis found about one student, before the exam's rules weigh it."""

    kind: str
    started_at: float  # epoch seconds: when the condition began
    duration: float
    confidence: float
    explanation: str  # plain words: the live feed, the drawer and the review timeline show them
    details: dict[str, Any] = field(default_factory=dict)
    evidence_jpeg: bytes = b""  # the frame of the moment; empty: no evidence (speaking without a camera)


class ServerSequence:
    """Sequence numbers for violations the server finds (a student's own events carry the
    page's): microseconds since the epoch are unique per node and sortable; the counter breaks
    ties within one tick."""

    def __init__(self) -> None:
        self._tiebreak = itertools.count()

    def next(self) -> int:
        return time.time_ns() // 1000 * 16 + next(self._tiebreak) % 16
