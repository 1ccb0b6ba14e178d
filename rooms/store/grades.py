"""Grades in Postgres: the automatic grading of a closed attempt, grades given by hand, and the
re-grade of a version whose key was corrected (docs/exams.md, "Grading").

Every write re-computes the attempt's total in the same transaction, under the attempt's row
lock, so two graders (or a grader and the sweeper) never leave a sum that misses one of them.
`GradeChange` is sent on the `grade_changed` signal after the commit, whenever an attempt's
grade, maximum or finality changed; LTI grade passback listens there (server/wire.py).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from core.signals import Signal
from rooms.catalog import Exam
from rooms.errors import Conflict, Invalid, NotFound
from rooms.exam import Question
from rooms.grading import score, total
from rooms.tokens import Claims

from .audit import AuditLog
from .catalog import exam_from, parse_uuid
from .database import Pool
from .review import Review

CLOSED = ("submitted", "terminated")
# An answer may still be in the durable writer's batch when an attempt closes: the sweeper
# grades an attempt again when one of its answers was saved after its grade (within this window).
LATE_WINDOW = "2 minutes"


@dataclass(frozen=True, slots=True)
class GradeChange:
    """An attempt's grade as it now stands (sent after commit)."""

    attempt_id: str
    grade: float
    grade_max: float
    final: bool


def answer_text(question: Question, value: Any) -> Any:
    """A stored answer as a person reads it: the options' text, not their indexes."""
    if value is None:
        return None
    if question.kind == "single" and isinstance(value, int) and 0 <= value < len(question.options):
        return question.options[value]
    if question.kind == "multiple" and isinstance(value, list):
        return [question.options[v] for v in value if isinstance(v, int) and 0 <= v < len(question.options)]
    return value


async def _regrade_locked(conn: asyncpg.Connection, attempt: asyncpg.Record, exam: Exam) -> GradeChange:
    """Inside a transaction, the attempt row locked: auto grades written, the total stored."""
    aid = attempt["id"]
    questions = exam.attempt_questions(str(aid))
    answers = {
        r["question_id"]: json.loads(r["value"])
        for r in await conn.fetch("SELECT question_id, value FROM answers WHERE attempt_id = $1", aid)
    }
    rows = await conn.fetch("SELECT question_id, points, auto FROM answer_grades WHERE attempt_id = $1", aid)
    manual = {r["question_id"] for r in rows if not r["auto"]}
    for q in questions:
        if q.id in manual:
            continue  # a person's grade stands until a person changes it
        found = score(q, answers.get(q.id))
        if found is None:
            await conn.execute("DELETE FROM answer_grades WHERE attempt_id = $1 AND question_id = $2", aid, q.id)
        else:
            await conn.execute(
                "INSERT INTO answer_grades (attempt_id, question_id, points, max_points, auto)"
                " VALUES ($1, $2, $3, $4, true) ON CONFLICT (attempt_id, question_id) DO UPDATE"
                " SET points = EXCLUDED.points, max_points = EXCLUDED.max_points, graded_at = now()",
                aid,
                q.id,
                found.points,
                found.max_points,
            )
    grades = {
        r["question_id"]: float(r["points"])
        for r in await conn.fetch("SELECT question_id, points FROM answer_grades WHERE attempt_id = $1", aid)
    }
    result = total(questions, grades)
    await conn.execute(
        "UPDATE attempts SET grade = $2, grade_max = $3, grade_final = $4, graded_at = now() WHERE id = $1",
        aid,
        result.grade,
        result.grade_max,
        result.final,
    )
    return GradeChange(str(aid), result.grade, result.grade_max, result.final)


def _before(attempt: asyncpg.Record) -> GradeChange | None:
    if attempt["grade"] is None:
        return None
    return GradeChange(str(attempt["id"]), attempt["grade"], attempt["grade_max"], attempt["grade_final"])


class GradeStore:
    """Automatic and manual grades; every read and write by a person is scope-checked."""

    def __init__(self, pool: Pool, review: Review, audit: AuditLog, changed: Signal[GradeChange]) -> None:
        self._pool = pool
        self._review = review
        self._audit = audit
        self._changed = changed

    async def _lock(self, conn: asyncpg.Connection, attempt_id: uuid.UUID) -> tuple[asyncpg.Record, Exam]:
        attempt = await conn.fetchrow("SELECT * FROM attempts WHERE id = $1 FOR UPDATE", attempt_id)
        if attempt is None:
            raise NotFound(f"no attempt {attempt_id}")
        exam_row = await conn.fetchrow("SELECT * FROM exams WHERE id = $1", attempt["exam_id"])
        assert exam_row is not None
        return attempt, exam_from(exam_row)

    async def _announce(self, before: GradeChange | None, after: GradeChange) -> None:
        if before != after:
            await self._changed.send(after)

    async def grade_attempt(self, attempt_id: str, *, pending_only: bool = False) -> GradeChange | None:
        """Grade a closed attempt automatically (idempotent); None if it is still running, or
        (`pending_only`, the sweeper) if another node graded it since it was listed."""
        async with self._pool.acquire() as conn, conn.transaction():
            attempt, exam = await self._lock(conn, uuid.UUID(attempt_id))
            if attempt["status"] not in CLOSED:
                return None
            if pending_only and attempt["grade"] is not None:
                late = await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM answers WHERE attempt_id = $1 AND saved_at > $2)",
                    attempt["id"],
                    attempt["graded_at"],
                )
                if not late:
                    return None
            before = _before(attempt)
            after = await _regrade_locked(conn, attempt, exam)
        await self._announce(before, after)
        return after

    async def grade_pending(self, limit: int = 50) -> int:
        """Grade closed attempts without a grade, or with an answer saved after it (crash, late write)."""
        rows = await self._pool.fetch(
            "SELECT id::text FROM attempts WHERE grade IS NULL AND status IN ('submitted', 'terminated')"
            " UNION SELECT a.id::text FROM attempts a WHERE a.status IN ('submitted', 'terminated')"
            f" AND a.submitted_at > now() - interval '{LATE_WINDOW}'"
            " AND EXISTS (SELECT 1 FROM answers x WHERE x.attempt_id = a.id AND x.saved_at > a.graded_at)"
            " LIMIT $1",
            limit,
        )
        # Bounded per sweep: the deadline sweeper runs this after its deadlines, every second,
        # and a backlog (the closed attempts of before migration 0009) must not delay them.
        for row in rows:
            await self.grade_attempt(row["id"], pending_only=True)
        return len(rows)

    async def set_grade(
        self, claims: Claims, attempt_id: str, question_id: str, points: float, comment: str
    ) -> dict[str, Any]:
        """A person's grade for one question of a closed attempt; audited with the one it replaced."""
        attempt_id, _ = await self._review.attempt_room(claims, attempt_id, "room.grade")
        async with self._pool.acquire() as conn, conn.transaction():
            attempt, exam = await self._lock(conn, uuid.UUID(attempt_id))
            if attempt["status"] not in CLOSED:
                raise Conflict("the attempt is still running: grade it once it is submitted", code="attempt_running")
            question = next((q for q in exam.attempt_questions(attempt_id) if q.id == question_id), None)
            if question is None:
                raise NotFound(f"no question {question_id!r} in this attempt")
            if points > question.points:
                raise Invalid(
                    f"at most {question.points:g} points for this question", fields={"points": "above the maximum"}
                )
            previous = await conn.fetchrow(
                "SELECT points, auto, comment, graded_by FROM answer_grades WHERE attempt_id = $1 AND question_id = $2",
                attempt["id"],
                question_id,
            )
            await conn.execute(
                "INSERT INTO answer_grades (attempt_id, question_id, points, max_points, auto, comment, graded_by)"
                " VALUES ($1, $2, $3, $4, false, $5, $6) ON CONFLICT (attempt_id, question_id) DO UPDATE"
                " SET points = EXCLUDED.points, max_points = EXCLUDED.max_points, auto = false,"
                " comment = EXCLUDED.comment, graded_by = EXCLUDED.graded_by, graded_at = now()",
                attempt["id"],
                question_id,
                points,
                question.points,
                comment,
                claims.sub,
            )
            before = _before(attempt)
            after = await _regrade_locked(conn, attempt, exam)
        await self._audit.record(
            claims,
            "grade.set",
            "attempt",
            attempt_id,
            {
                "question_id": question_id,
                "points": points,
                "comment": comment,
                "previous": dict(previous) if previous is not None else None,
                "grade": after.grade,
                "final": after.final,
            },
        )
        await self._announce(before, after)
        return {"attempt_id": attempt_id, "question_id": question_id, "points": points, **_total_json(after)}

    async def regrade_version(self, claims: Claims, exam_id: str) -> list[dict[str, Any]]:
        """Grade every closed attempt of an exam version again (its key changed); audited per attempt."""
        rows = await self._pool.fetch(
            "SELECT id::text FROM attempts WHERE exam_id = $1 AND status IN ('submitted', 'terminated')",
            uuid.UUID(exam_id),
        )
        changes = []
        for row in rows:
            async with self._pool.acquire() as conn, conn.transaction():
                attempt, exam = await self._lock(conn, uuid.UUID(row["id"]))
                before = _before(attempt)
                after = await _regrade_locked(conn, attempt, exam)
            entry = {
                "attempt_id": row["id"],
                "before": _total_json(before) if before is not None else None,
                "after": _total_json(after),
            }
            await self._audit.record(claims, "grade.regrade", "attempt", row["id"], {"exam_id": exam_id, **entry})
            await self._announce(before, after)
            changes.append(entry)
        return changes

    # ------------------------------------------------------------------------- reading

    async def attempt_sheet(self, claims: Claims, attempt_id: str) -> dict[str, Any]:
        """One attempt for its grader: each question with its key, the answer (as text) and grade."""
        attempt_id, room_id = await self._review.attempt_room(claims, attempt_id, "room.grade")
        aid = uuid.UUID(attempt_id)
        async with self._pool.acquire() as conn:
            attempt = await conn.fetchrow("SELECT * FROM attempts WHERE id = $1", aid)
            assert attempt is not None
            exam_row = await conn.fetchrow("SELECT * FROM exams WHERE id = $1", attempt["exam_id"])
            answers = await conn.fetch("SELECT question_id, value FROM answers WHERE attempt_id = $1", aid)
            grades = await conn.fetch("SELECT * FROM answer_grades WHERE attempt_id = $1", aid)
        assert exam_row is not None
        exam = exam_from(exam_row)
        values = {r["question_id"]: json.loads(r["value"]) for r in answers}
        graded = {r["question_id"]: r for r in grades}
        return {
            "attempt": _attempt_json(attempt, room_id),
            "exam": {"id": exam.id, "title": exam.title, "version": exam.version},
            "questions": [
                _answer_json(q, values.get(q.id), graded.get(q.id)) for q in exam.attempt_questions(attempt_id)
            ],
        }

    async def question_sheet(self, claims: Claims, room_id: str, question_id: str) -> dict[str, Any]:
        """One question across every closed attempt of a room (whatever version each took)."""
        room, _ = await self._review._catalog.room_for(claims, room_id, "room.grade")
        rows = await self._pool.fetch(
            "SELECT a.*, e.questions AS exam_questions, x.value AS answer_value,"
            " g.points, g.max_points, g.auto, g.comment, g.graded_by, g.graded_at"
            " FROM attempts a JOIN exams e ON e.id = a.exam_id"
            " LEFT JOIN answers x ON x.attempt_id = a.id AND x.question_id = $2"
            " LEFT JOIN answer_grades g ON g.attempt_id = a.id AND g.question_id = $2"
            " WHERE a.room_id = $1 AND a.status IN ('submitted', 'terminated')"
            " ORDER BY a.student_name, a.student_id",
            uuid.UUID(room.id),
            question_id,
        )
        exams: dict[str, Exam] = {}
        entries = []
        question_json: dict[str, Any] | None = None
        for r in rows:
            exam_id = str(r["exam_id"])
            if exam_id not in exams:
                exam_row = await self._pool.fetchrow("SELECT * FROM exams WHERE id = $1", r["exam_id"])
                assert exam_row is not None
                exams[exam_id] = exam_from(exam_row)
            exam = exams[exam_id]
            question = next((q for q in exam.attempt_questions(str(r["id"])) if q.id == question_id), None)
            if question is None:
                continue  # not drawn for this attempt, or not in its version
            value = json.loads(r["answer_value"]) if r["answer_value"] is not None else None
            entry = _answer_json(question, value, r if r["points"] is not None else None)
            question_json = question_json or {k: entry[k] for k in ("id", "kind", "text", "options", "points")}
            entries.append({"attempt": _attempt_json(r, room.id), **entry})
        if question_json is None:
            raise NotFound(f"no submitted attempt of this room has a question {question_id!r}")
        return {"room_id": room.id, "question": question_json, "answers": entries}


def _total_json(change: GradeChange) -> dict[str, Any]:
    return {"grade": change.grade, "grade_max": change.grade_max, "final": change.final}


def _attempt_json(row: asyncpg.Record, room_id: str) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "room_id": room_id,
        "exam_id": str(row["exam_id"]),
        "student_id": row["student_id"],
        "student_name": row["student_name"],
        "status": row["status"],
        "grade": row["grade"],
        "grade_max": row["grade_max"],
        "grade_final": row["grade_final"],
    }


def _answer_json(question: Question, value: Any, grade: asyncpg.Record | None) -> dict[str, Any]:
    return {
        "id": question.id,
        "kind": question.kind,
        "text": question.text,
        "options": list(question.options),
        "points": question.points,
        "key": {k: v for k, v in question.model_dump(mode="json").items() if k in _KEY_VIEW},
        "auto_graded": question.auto_graded,
        "answer": value,
        "answer_text": answer_text(question, value),
        "grade": None
        if grade is None
        else {
            "points": grade["points"],
            "max_points": grade["max_points"],
            "auto": grade["auto"],
            "comment": grade["comment"],
            "graded_by": grade["graded_by"],
            "graded_at": grade["graded_at"].isoformat(),
        },
    }


_KEY_VIEW = ("correct", "scoring", "answer", "tolerance", "accepted", "feedback")


def parse_question_id(value: str) -> str:
    if not value or len(value) > 64:
        raise NotFound(f"no question {value!r}")
    return value


__all__ = ["GradeChange", "GradeStore", "answer_text", "parse_uuid"]
