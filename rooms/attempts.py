"""Attempts: join or resume, autosave, client signals, submit, and the server's clock.

The deadline is the server's. Pause freezes the clock (resume pushes the deadline by the
paused time), extend moves it, and a sweeper submits attempts whose deadline has passed,
whether or not the student is connected.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from rooms.store.catalog import Catalog, Exam, Room, parse_uuid
from rooms.store.event_writer import AnswerRecord, EventWriter, ViolationRecord, WriteResult

from .errors import Conflict, Forbidden, Invalid, NoCapacity, NotFound
from .protocols import Notifier
from core.signals import Signal

from .store.database import Pool
from .tokens import Claims

logger = logging.getLogger(__name__)

# Answers a little after the deadline still count: they were typed before it, in flight.
LATE_ANSWER_GRACE = timedelta(seconds=2)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Attempt:
    id: str
    exam_id: str
    room_id: str
    student_id: str
    student_name: str
    status: str
    started_at: datetime
    deadline: datetime
    paused_at: datetime | None
    extension_seconds: int
    end_reason: str | None
    accommodations: tuple[str, ...] = ()

    @property
    def closed(self) -> bool:
        return self.status in ("submitted", "terminated")

    def remaining_seconds(self, now: datetime) -> float:
        reference = self.paused_at if self.paused_at is not None else now
        return max(0.0, (self.deadline - reference).total_seconds())

    def clock(self, now: datetime | None = None) -> dict[str, Any]:
        now = now or utcnow()
        return {
            "attempt_id": self.id,
            "status": self.status,
            "deadline": self.deadline.isoformat(),
            "server_now": now.isoformat(),
            "remaining_seconds": round(self.remaining_seconds(now), 3),
            "paused": self.status == "paused",
        }


# Everything a join returns, and its two records (consent once per notice version, the
# join/resume timeline entry), in one round trip.
_JOIN_STATE = """
WITH consent AS (
    INSERT INTO consents (attempt_id, exam_id, room_id, student_id, notice_version)
    SELECT $1, $2, $3, $4, $5::text
    WHERE $5::text IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM consents WHERE attempt_id = $1 AND notice_version = $5::text)
), entry AS (
    INSERT INTO attempt_log (attempt_id, kind, details) VALUES ($1, $6, '{}')
)
SELECT
    (SELECT coalesce(json_object_agg(question_id, value), '{}') FROM answers WHERE attempt_id = $1) AS answers,
    greatest((SELECT max(seq) FROM violations WHERE attempt_id = $1 AND source = 'client'),
             (SELECT max(seq) FROM answers WHERE attempt_id = $1)) AS last_seq,
    (SELECT coalesce(sum(severity), 0) FROM violations WHERE attempt_id = $1) AS score
"""


def attempt_from(row: asyncpg.Record) -> Attempt:
    return Attempt(
        id=str(row["id"]), exam_id=str(row["exam_id"]), room_id=str(row["room_id"]),
        student_id=row["student_id"], student_name=row["student_name"], status=row["status"],
        started_at=row["started_at"], deadline=row["deadline"], paused_at=row["paused_at"],
        extension_seconds=row["extension_seconds"],
        end_reason=row["end_reason"],
        accommodations=tuple(json.loads(row["accommodations"])),
    )


@dataclass(frozen=True, slots=True)
class JoinResult:
    attempt: Attempt
    exam: Exam
    answers: dict[str, Any]
    last_seq: int
    resumed: bool


class AttemptService:
    def __init__(
        self,
        pool: Pool,
        catalog: Catalog,
        writer: EventWriter,
        notifier: Notifier,
        *,
        on_change: Callable[[str], None] | None = None,
        closed: Signal[Attempt] | None = None,
        changed_elsewhere: Signal[str] | None = None,
    ) -> None:
        self._pool = pool
        self._catalog = catalog
        self._writer = writer
        self._notifier = notifier
        self._exams: dict[str, Exam] = {}
        self._attempts: dict[str, Attempt] = {}
        self._rooms: dict[str, Room] = {}
        # A cluster (server/wire.py): told the id of every attempt this node changes, so the
        # other nodes drop their cached copy, and told of theirs. None on a single node.
        self.on_change = on_change
        if changed_elsewhere is not None:
            changed_elsewhere.connect(self._changed_elsewhere)
        # Sent once an attempt ends (submit, deadline, terminate): its sockets close, its
        # media peer goes.
        self._ended: Signal[Attempt] = closed if closed is not None else Signal("attempt-closed")
        self._join_gate = asyncio.Semaphore(8)
        # Live suspicion scores of attempts whose violations this node writes (their
        # students are connected here); the stored truth is the sum over violations.
        self._scores: dict[str, float] = {}

    async def exam(self, exam_id: str) -> Exam:
        # Exams do not change after creation, so a process-wide cache is safe.
        exam = self._exams.get(exam_id)
        if exam is None:
            exam = self._exams[exam_id] = await self._catalog.exam(exam_id)
        return exam

    async def attempt(self, attempt_id: str, *, fresh: bool = False) -> Attempt:
        cached = self._attempts.get(attempt_id)
        if cached is not None and not fresh:
            return cached
        row = await self._pool.fetchrow("SELECT * FROM attempts WHERE id = $1", parse_uuid(attempt_id, "attempt"))
        if row is None:
            raise NotFound(f"no attempt {attempt_id}")
        attempt = self._attempts[attempt_id] = attempt_from(row)
        return attempt

    def forget(self, attempt_id: str) -> None:
        self._attempts.pop(attempt_id, None)

    async def _changed_elsewhere(self, attempt_id: str) -> None:
        self.forget(attempt_id)

    async def join(self, claims: Claims, consent_version: str | None = None) -> JoinResult:
        """Create the attempt on first join, resume it afterwards (same deadline)."""
        # A reconnect storm must not take every pooled connection (each join holds one for
        # its transaction); the rest of the node keeps serving while joins queue here.
        async with self._join_gate:
            return await self._join(claims, consent_version)

    async def _join(self, claims: Claims, consent_version: str | None) -> JoinResult:
        if claims.role != "student" or not claims.room_id or not claims.exam_id:
            raise Forbidden("only a student token can join an exam")
        room = await self._room(claims.room_id)
        if room.exam_id != claims.exam_id:
            raise Forbidden("the invite's room does not belong to its exam")
        exam = await self.exam(room.exam_id)
        async with self._pool.acquire() as conn:
            # A resume (most joins, and all of a reconnect storm) needs no lock: two round trips.
            row = await conn.fetchrow(
                "SELECT * FROM attempts WHERE room_id = $1 AND student_id = $2", uuid.UUID(room.id), claims.sub
            )
            resumed = row is not None
            if row is None:
                row = await self._create(conn, room, exam, claims)
            attempt = attempt_from(row)
            state = await conn.fetchrow(
                _JOIN_STATE, uuid.UUID(attempt.id), uuid.UUID(exam.id), uuid.UUID(room.id), claims.sub,
                consent_version, "resume" if resumed else "join",
            )
        assert state is not None
        self._attempts[attempt.id] = attempt
        self._scores[attempt.id] = float(state["score"])
        return JoinResult(
            attempt=attempt,
            exam=exam,
            answers=json.loads(state["answers"]),
            last_seq=int(state["last_seq"] or 0),
            resumed=resumed,
        )

    async def _room(self, room_id: str) -> Room:
        # A room's exam and seats do not change; only its host does, which joins ignore.
        room = self._rooms.get(room_id)
        if room is None:
            room = self._rooms[room_id] = await self._catalog.room(room_id)
        return room

    async def _create(self, conn: asyncpg.Connection, room: Room, exam: Exam, claims: Claims) -> asyncpg.Record:
        async with conn.transaction():
            # Serialise first joins to one room so the seat count cannot be exceeded by a race.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", room.id)
            row = await conn.fetchrow(
                "SELECT * FROM attempts WHERE room_id = $1 AND student_id = $2", uuid.UUID(room.id), claims.sub
            )
            if row is not None:  # the same student's other tab won the race
                return row
            taken = await conn.fetchval("SELECT count(*) FROM attempts WHERE room_id = $1", uuid.UUID(room.id))
            if taken >= room.seats:
                raise NoCapacity(f"all {room.seats} seats of this room are taken", code="capacity", retry_after=60)
            row = await conn.fetchrow(
                "INSERT INTO attempts (id, exam_id, room_id, student_id, student_name, deadline)"
                " VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6)) RETURNING *",
                uuid.uuid4(), uuid.UUID(exam.id), uuid.UUID(room.id), claims.sub,
                claims.name, float(exam.duration_seconds),
            )
            assert row is not None
            return row

    def _check_open(self, attempt: Attempt, *, answering: bool) -> None:
        if attempt.closed:
            raise Conflict(f"the attempt is {attempt.status}", code="attempt_closed")
        if answering:
            if attempt.status == "paused":
                raise Conflict("the exam is paused by the teacher", code="paused")
            if utcnow() > attempt.deadline + LATE_ANSWER_GRACE:
                raise Conflict("the time is up", code="attempt_closed")

    async def save_answer(self, attempt_id: str, question_id: str, value: Any, seq: int) -> WriteResult:
        attempt = await self.attempt(attempt_id)
        self._check_open(attempt, answering=True)
        exam = await self.exam(attempt.exam_id)
        question = exam.question(question_id)
        if question is None:
            raise Invalid(f"no question {question_id!r} in this exam", fields={"question_id": "unknown"})
        problem = question.check_answer(value)
        if problem:
            raise Invalid(f"invalid answer to {question_id}: {problem}", fields={"value": problem})
        result = await self._writer.submit(AnswerRecord(uuid.UUID(attempt_id), question_id, value, seq))
        answered = await self._pool.fetchval(
            "SELECT count(*) FROM answers WHERE attempt_id = $1", uuid.UUID(attempt_id)
        )
        await self._notifier.teachers(
            attempt.room_id, "progress",
            {"attempt_id": attempt_id, "answered": answered, "total": len(exam.questions)},
        )
        return result

    async def _score_after(self, attempt_id: str, severity: float) -> float:
        """The attempt's score including a violation just stored with `severity`."""
        score = self._scores.get(attempt_id)
        if score is None:
            # The sum already holds the row just stored.
            total = await self._pool.fetchval(
                "SELECT coalesce(sum(severity), 0) FROM violations WHERE attempt_id = $1", uuid.UUID(attempt_id))
            score = self._scores[attempt_id] = float(total)
        else:
            score = self._scores[attempt_id] = score + severity
        return score

    async def client_event(
        self, attempt_id: str, seq: int, kind: str, occurred_at: datetime, details: dict[str, Any]
    ) -> WriteResult:
        attempt = await self.attempt(attempt_id)
        self._check_open(attempt, answering=False)
        exam = await self.exam(attempt.exam_id)
        weight = exam.rules.weight(kind)
        record = ViolationRecord(
            attempt_id=uuid.UUID(attempt_id), seq=seq, source="client", kind=kind,
            severity=weight, occurred_at=occurred_at, details=details,
        )
        result = await self._writer.submit(record)
        if result.stored:
            await self._notifier.teachers(attempt.room_id, "violation", {
                "attempt_id": attempt_id, "student_id": attempt.student_id, "id": result.violation_id,
                "seq": seq, "source": "client", "kind": kind, "severity": weight,
                "score": await self._score_after(attempt_id, weight), "occurred_at": occurred_at.isoformat(), "details": details,
                "evidence_id": None,
                "reason": f"{kind} reported by the browser adds {weight:g} to the score",
            })
        return result

    async def server_violation(self, record: ViolationRecord) -> WriteResult:
        """A violation found by the server's analysis (evidence attached)."""
        attempt = await self.attempt(str(record.attempt_id))
        result = await self._writer.submit(record)
        if result.stored:
            await self._notifier.teachers(attempt.room_id, "violation", {
                "attempt_id": attempt.id, "student_id": attempt.student_id, "id": result.violation_id,
                "seq": record.seq, "source": "server", "kind": record.kind,
                "severity": record.severity, "score": await self._score_after(attempt.id, record.severity),
                "occurred_at": record.occurred_at.isoformat(), "details": record.details,
                "evidence_id": str(record.evidence.id) if record.evidence else None,
                "reason": str(record.details.get("reason", record.kind)),
            })
        return result

    async def submit(self, attempt_id: str, reason: str = "student") -> Attempt:
        row = await self._pool.fetchrow(
            "UPDATE attempts SET status = 'submitted', submitted_at = now(), end_reason = $2,"
            " paused_at = NULL WHERE id = $1 AND status IN ('active', 'paused') RETURNING *",
            uuid.UUID(attempt_id), reason,
        )
        if row is None:
            return await self.attempt(attempt_id, fresh=True)
        attempt = self._attempts[attempt_id] = attempt_from(row)
        self._changed(attempt_id)
        await self.log(attempt_id, "submit", {"reason": reason})
        await self._announce_end(attempt)
        return attempt

    async def _announce_end(self, attempt: Attempt) -> None:
        data = {"attempt_id": attempt.id, "status": attempt.status, "reason": attempt.end_reason}
        await self._notifier.teachers(attempt.room_id, "submitted", data)
        await self._notifier.student(attempt.id, "deadline", attempt.clock())
        await self.ended(attempt)

    async def ended(self, attempt: Attempt) -> None:
        await self._ended.send(attempt)

    async def log(self, attempt_id: str, kind: str, details: dict[str, Any]) -> None:
        await self._pool.execute(
            "INSERT INTO attempt_log (attempt_id, kind, details) VALUES ($1, $2, $3::jsonb)",
            uuid.UUID(attempt_id), kind, json.dumps(details),
        )

    async def record_gap(self, attempt_id: str, started: float, ended: float) -> None:
        await self.log(attempt_id, "network_gap", {
            "from": datetime.fromtimestamp(started, UTC).isoformat(),
            "to": datetime.fromtimestamp(ended, UTC).isoformat(),
            "seconds": round(ended - started, 3),
        })

    def updated(self, attempt: Attempt) -> None:
        self._attempts[attempt.id] = attempt
        self._changed(attempt.id)

    def _changed(self, attempt_id: str) -> None:
        if self.on_change is not None:
            self.on_change(attempt_id)

    async def terminated_in(self, room_ids: set[str]) -> set[str]:
        """Attempts of these rooms that a teacher terminated (possibly on another node)."""
        # By room, not by attempt: at 10,000 students the list of attempt ids cost ~2 % of
        # the node's CPU to encode every 2 s (py-spy); (room_id, student_id) is indexed.
        rows = await self._pool.fetch(
            "SELECT id::text FROM attempts WHERE room_id = ANY($1::uuid[]) AND status = 'terminated'", list(room_ids))
        return {r["id"] for r in rows}

    async def expire_due(self) -> list[Attempt]:
        """Submit every running attempt whose deadline has passed; return them."""
        rows = await self._pool.fetch(
            "UPDATE attempts SET status = 'submitted', submitted_at = deadline, end_reason = 'deadline'"
            " WHERE status = 'active' AND deadline <= now() RETURNING *"
        )
        expired = [attempt_from(r) for r in rows]
        for attempt in expired:
            self._attempts[attempt.id] = attempt
            self._changed(attempt.id)
            await self.log(attempt.id, "submit", {"reason": "deadline"})
            await self._announce_end(attempt)
        return expired

    async def run_deadline_sweeper(self, interval: float = 1.0) -> None:
        while True:
            try:
                await self.expire_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("deadline sweeper failed; trying again")
            await asyncio.sleep(interval)


def with_status(attempt: Attempt, **changes: Any) -> Attempt:
    return replace(attempt, **changes)
