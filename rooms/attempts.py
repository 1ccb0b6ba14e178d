"""Attempts: join or resume, autosave, client signals, submit, and the deadline sweeper.

The clock's rules are in rooms/timer.py; storage is an `AttemptRepository`
(rooms/protocols.py; Postgres in rooms/store/attempts.py) that applies them. A sweeper
submits attempts whose deadline has passed, whether or not the student is connected.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from core.signals import Signal

from .catalog import Exam, Room, parse_uuid
from .errors import Forbidden, Invalid, NoCapacity, NotFound
from .events import AnalysisFlag, AnswerRecord, Evidence, ServerSequence, ViolationRecord, WriteResult
from .protocols import AttemptRepository, EventSink, ExamCatalog, Grader, Notifier
from .review import flag_explanation
from .timer import LATE_ANSWER_GRACE, Attempt, Change, check_open, expire, first_join, submit, utcnow
from .tokens import Claims

# The clock's names, read by the edges from here as before the rules moved to rooms/timer.py.
__all__ = ["LATE_ANSWER_GRACE", "Attempt", "AttemptService", "JoinResult", "utcnow", "with_status"]

logger = logging.getLogger(__name__)

# A room's name, seats, exam version and closed flag change (step 12), and an exam changes in
# place until its first attempt: joins read both through this short cache, so a change reaches
# every node within these seconds.
ROOM_CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class JoinResult:
    attempt: Attempt
    exam: Exam
    answers: dict[str, Any]
    last_seq: int
    resumed: bool
    # The exam as this attempt's page shows it (its pools' draw, its order, no key); `answers`
    # above are in the same displayed option indexes.
    view: dict[str, Any] | None = None


class AttemptService:
    def __init__(
        self,
        store: AttemptRepository,
        catalog: ExamCatalog,
        writer: EventSink,
        notifier: Notifier,
        *,
        on_change: Callable[[str], None] | None = None,
        closed: Signal[Attempt] | None = None,
        changed_elsewhere: Signal[str] | None = None,
        grader: Grader | None = None,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._writer = writer
        self._notifier = notifier
        self._exams: dict[str, tuple[float, Exam]] = {}
        self._attempts: dict[str, Attempt] = {}
        self._rooms: dict[str, tuple[float, Room]] = {}
        # Grades closed attempts (rooms/store/grades.py); None in unit tests of the clock.
        self._grader = grader
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
        self._server_seq = ServerSequence()

    async def exam(self, exam_id: str) -> Exam:
        # What a student sees of a version does not change once an attempt has started on it
        # (an edit then makes a new version, a key correction changes only the key, and grading
        # reads the key fresh). Before that an edit changes it in place, so the cache is short:
        # an exam edited on any node is read again within ROOM_CACHE_SECONDS.
        cached = self._exams.get(exam_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < ROOM_CACHE_SECONDS:
            return cached[1]
        exam = await self._catalog.exam(exam_id)
        self._exams[exam_id] = (now, exam)
        return exam

    async def attempt(self, attempt_id: str, *, fresh: bool = False) -> Attempt:
        cached = self._attempts.get(attempt_id)
        if cached is not None and not fresh:
            return cached
        found = await self._store.get(str(parse_uuid(attempt_id, "attempt")))
        if found is None:
            raise NotFound(f"no attempt {attempt_id}")
        attempt = self._attempts[attempt_id] = found
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
        exam = await self.exam(room.exam_id)
        if room.exam_id != claims.exam_id and (await self.exam(claims.exam_id)).family != exam.family:
            # An invite names the version its room had then; the room may have moved on since.
            raise Forbidden("the invite's room does not belong to its exam")
        opening = functools.partial(first_join, exam.id, room.id, claims.sub, claims.name, exam.duration_seconds)
        # A closed room takes no new attempt (0 seats left); its started attempts resume.
        seats = 0 if room.closed else room.seats
        joined = await self._store.join(room.id, claims.sub, seats, opening, consent_version)
        if joined is None:
            if room.closed:
                raise Forbidden("this room is closed: it takes no new students", code="room_closed")
            raise NoCapacity(f"all {room.seats} seats of this room are taken", code="capacity", retry_after=60)
        attempt = joined.attempt
        self._attempts[attempt.id] = attempt
        self._scores[attempt.id] = joined.score
        # The attempt keeps the version it started with, whatever the room holds now.
        taken = await self.exam(attempt.exam_id)
        arrangement = taken.arrangement(attempt.id)
        answers = {}
        for qid, value in joined.answers.items():
            question = taken.question(qid)
            answers[qid] = arrangement.to_displayed(question, value) if question is not None else value
        return JoinResult(
            attempt=attempt,
            exam=taken,
            answers=answers,
            last_seq=joined.last_seq,
            resumed=joined.resumed,
            view=taken.for_attempt(attempt.id),
        )

    def forget_rooms(self) -> None:
        """Drop the cached rooms and exams: this node changed one (an edit, seats, closed)."""
        self._rooms.clear()
        self._exams.clear()

    async def _room(self, room_id: str) -> Room:
        cached = self._rooms.get(room_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < ROOM_CACHE_SECONDS:
            return cached[1]
        room = await self._catalog.room(room_id)
        self._rooms[room_id] = (now, room)
        return room

    def _check_open(self, attempt: Attempt, *, answering: bool) -> None:
        check_open(attempt, utcnow(), answering=answering)

    async def save_answer(self, attempt_id: str, question_id: str, value: Any, seq: int) -> WriteResult:
        attempt = await self.attempt(attempt_id)
        self._check_open(attempt, answering=True)
        exam = await self.exam(attempt.exam_id)
        question = exam.question(question_id)
        arrangement = exam.arrangement(attempt_id)
        if question is None or not arrangement.includes(question_id):
            raise Invalid(f"no question {question_id!r} in this exam", fields={"question_id": "unknown"})
        problem = question.check_answer(value)
        if problem:
            raise Invalid(f"invalid answer to {question_id}: {problem}", fields={"value": problem})
        # The page sends option indexes as it displayed them; stored are the original ones.
        stored = arrangement.to_original(question, value)
        result = await self._writer.submit(AnswerRecord(uuid.UUID(attempt_id), question_id, stored, seq))
        answered = await self._store.answered(attempt_id)
        await self._notifier.teachers(
            attempt.room_id,
            "progress",
            {"attempt_id": attempt_id, "answered": answered, "total": len(arrangement.question_ids)},
        )
        return result

    async def _score_after(self, attempt_id: str, severity: float) -> float:
        """The attempt's score including a violation just stored with `severity`."""
        score = self._scores.get(attempt_id)
        if score is None:
            # The sum already holds the row just stored.
            score = self._scores[attempt_id] = await self._store.score(attempt_id)
        else:
            score = self._scores[attempt_id] = score + severity
        return score

    async def client_event(
        self, attempt_id: str, seq: int, kind: str, occurred_at: datetime, details: dict[str, Any]
    ) -> WriteResult:
        attempt = await self.attempt(attempt_id)
        self._check_open(attempt, answering=False)
        exam = await self.exam(attempt.exam_id)
        # A signal switched off for this student (an accommodation) is kept, and counts nothing.
        weight = 0.0 if kind in attempt.accommodations else exam.rules.weight(kind)
        record = ViolationRecord(
            attempt_id=uuid.UUID(attempt_id),
            seq=seq,
            source="client",
            kind=kind,
            severity=weight,
            occurred_at=occurred_at,
            details=details,
        )
        result = await self._writer.submit(record)
        if result.stored:
            await self._notifier.teachers(
                attempt.room_id,
                "violation",
                {
                    "attempt_id": attempt_id,
                    "student_id": attempt.student_id,
                    "id": result.violation_id,
                    "seq": seq,
                    "source": "client",
                    "kind": kind,
                    "severity": weight,
                    "score": await self._score_after(attempt_id, weight),
                    "occurred_at": occurred_at.isoformat(),
                    "details": details,
                    "evidence_id": None,
                    "explanation": flag_explanation(kind, details),
                },
            )
        return result

    async def analysis_flag(self, attempt_id: str, flag: AnalysisFlag) -> WriteResult | None:
        """A violation the server's analysis found: weighed with the exam's rules, its evidence
        kept for the exam's retention period; None once the attempt has ended."""
        # Fresh: in a cluster the room's host analyses students connected elsewhere, and its
        # cached copy does not hear that the attempt was submitted or terminated.
        attempt = await self.attempt(attempt_id, fresh=True)
        if attempt.closed:
            return None
        exam = await self.exam(attempt.exam_id)
        now = utcnow()
        evidence = (
            Evidence(
                id=uuid.uuid4(),
                data=flag.evidence_jpeg,
                taken_at=now,
                expires_at=now + timedelta(days=exam.rules.evidence_retention_days),
            )
            if flag.evidence_jpeg
            else None
        )
        record = ViolationRecord(
            attempt_id=uuid.UUID(attempt_id),
            seq=self._server_seq.next(),
            source="server",
            kind=flag.kind,
            severity=exam.rules.weight(flag.kind),
            occurred_at=datetime.fromtimestamp(flag.started_at, UTC),
            # `explanation` is the detector's own words: the live push, the drawer and the review show them.
            details={
                **flag.details,
                "explanation": flag.explanation,
                "duration": round(flag.duration, 2),
                "confidence": round(flag.confidence, 3),
            },
            evidence=evidence,
        )
        return await self.server_violation(record)

    async def server_violation(self, record: ViolationRecord) -> WriteResult:
        """A violation found by the server's analysis (evidence attached)."""
        attempt = await self.attempt(str(record.attempt_id))
        result = await self._writer.submit(record)
        if result.stored:
            await self._notifier.teachers(
                attempt.room_id,
                "violation",
                {
                    "attempt_id": attempt.id,
                    "student_id": attempt.student_id,
                    "id": result.violation_id,
                    "seq": record.seq,
                    "source": "server",
                    "kind": record.kind,
                    "severity": record.severity,
                    "score": await self._score_after(attempt.id, record.severity),
                    "occurred_at": record.occurred_at.isoformat(),
                    "details": record.details,
                    "evidence_id": str(record.evidence.id) if record.evidence else None,
                    "explanation": flag_explanation(record.kind, record.details),
                },
            )
        return result

    async def submit(self, attempt_id: str, reason: str = "student") -> Attempt:
        attempt, applied = await self._apply(attempt_id, submit(reason))
        if not applied:  # already closed: the stored state, now cached
            return attempt
        self._changed(attempt_id)
        await self.log(attempt_id, "submit", {"reason": reason})
        await self.grade(attempt_id)
        await self._announce_end(attempt)
        return attempt

    async def grade(self, attempt_id: str) -> None:
        """Grade a closed attempt right after it committed. A failure here loses nothing: the
        sweeper grades every closed attempt that has no grade (`Grader.grade_pending`)."""
        if self._grader is None:
            return
        try:
            await self._grader.grade_attempt(attempt_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("grading attempt %s failed; the sweeper grades it again", attempt_id)

    async def _apply(self, attempt_id: str, change: Change) -> tuple[Attempt, bool]:
        result = await self._store.change(str(parse_uuid(attempt_id, "attempt")), change)
        if result is None:
            raise NotFound(f"no attempt {attempt_id}")
        self._attempts[attempt_id] = result[0]
        return result

    async def _announce_end(self, attempt: Attempt) -> None:
        data = {"attempt_id": attempt.id, "status": attempt.status, "reason": attempt.end_reason}
        await self._notifier.teachers(attempt.room_id, "submitted", data)
        await self._notifier.student(attempt.id, "deadline", attempt.clock())
        await self.ended(attempt)

    async def ended(self, attempt: Attempt) -> None:
        await self._ended.send(attempt)

    async def log(self, attempt_id: str, kind: str, details: dict[str, Any]) -> None:
        await self._store.log(attempt_id, kind, details)

    async def record_gap(self, attempt_id: str, started: float, ended: float) -> None:
        await self.log(
            attempt_id,
            "network_gap",
            {
                "from": datetime.fromtimestamp(started, UTC).isoformat(),
                "to": datetime.fromtimestamp(ended, UTC).isoformat(),
                "seconds": round(ended - started, 3),
            },
        )

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
        return await self._store.terminated_in(room_ids)

    async def expire_due(self) -> list[Attempt]:
        """Submit every running attempt whose deadline has passed; return them."""
        expired = await self._store.expire_due(expire)
        for attempt in expired:
            self._attempts[attempt.id] = attempt
            self._changed(attempt.id)
            await self.log(attempt.id, "submit", {"reason": "deadline"})
            await self.grade(attempt.id)
            await self._announce_end(attempt)
        if self._grader is not None:
            await self._grader.grade_pending()
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
