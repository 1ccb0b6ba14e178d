"""A room's results: the table of attempts (grade, time taken, decided flags, verdict) and the
per-question statistics (rooms/results.py does the arithmetic).

Grades are read as the grading code left them (`attempts.grade`, `grade_max`, `grade_final`,
`answer_grades`; NULL/absent while not graded). Flags appear only as counts by review state:
a flag counts against a student once a person confirmed it, so no raw sum of weights is here.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from rooms.results import GradeRow, QuestionRef, question_statistics
from rooms.review import VERDICT_LABELS
from rooms.roles import Action
from rooms.tokens import Claims

from .catalog import Catalog
from .database import Pool

_TABLE = """
SELECT a.id, a.student_id, a.student_name, a.status, a.started_at, a.submitted_at, a.end_reason,
       a.extension_seconds, a.grade, a.grade_max, a.grade_final, a.verdict, a.verdict_note, a.verdict_by,
       a.verdict_at,
       extract(epoch FROM a.submitted_at - a.started_at) AS time_taken_seconds,
       (SELECT count(*) FROM answers x WHERE x.attempt_id = a.id) AS answered,
       f.unreviewed, f.confirmed, f.dismissed
FROM attempts a CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE v.review IS NULL) AS unreviewed,
           count(*) FILTER (WHERE v.review = 'confirmed') AS confirmed,
           count(*) FILTER (WHERE v.review = 'dismissed') AS dismissed
    FROM violations v WHERE v.attempt_id = a.id
) f
WHERE a.room_id = $1
ORDER BY a.student_name, a.student_id
"""

# Only ended attempts: a running one has no total yet to correlate with.
_GRADES = """
SELECT g.attempt_id::text, g.question_id, g.points, g.max_points
FROM answer_grades g JOIN attempts a ON a.id = g.attempt_id
WHERE a.room_id = $1 AND a.status IN ('submitted', 'terminated')
"""
_ANSWERED = """
SELECT x.question_id, count(*) AS answered
FROM answers x JOIN attempts a ON a.id = x.attempt_id
WHERE a.room_id = $1
GROUP BY x.question_id
"""


def _float(value: Any) -> float | None:
    return None if value is None else round(float(value), 4)


def result_row(row: asyncpg.Record) -> dict[str, Any]:
    verdict = row["verdict"]
    taken = row["time_taken_seconds"]
    return {
        "id": str(row["id"]),
        "student_id": row["student_id"],
        "student_name": row["student_name"],
        "status": row["status"],
        "started_at": row["started_at"].isoformat(),
        "submitted_at": row["submitted_at"].isoformat() if row["submitted_at"] else None,
        "end_reason": row["end_reason"],
        "time_taken_seconds": None if taken is None else round(float(taken), 1),
        "answered": row["answered"],
        "grade": _float(row["grade"]),
        "grade_max": _float(row["grade_max"]),
        "grade_final": bool(row["grade_final"]),
        "confirmed_flags": row["confirmed"],
        "dismissed_flags": row["dismissed"],
        "unreviewed_flags": row["unreviewed"],
        "verdict": verdict,
        "verdict_label": VERDICT_LABELS.get(verdict) if verdict else None,
        "verdict_note": row["verdict_note"],
        "verdict_by": row["verdict_by"],
        "verdict_at": row["verdict_at"].isoformat() if row["verdict_at"] else None,
    }


class Results:
    def __init__(self, pool: Pool, catalog: Catalog) -> None:
        self._pool = pool
        self._catalog = catalog

    async def table(self, claims: Claims, room_id: str, action: Action = "room.attempts") -> dict[str, Any]:
        room, exam = await self._catalog.room_for(claims, room_id, action)
        rows = [result_row(r) for r in await self._pool.fetch(_TABLE, uuid.UUID(room.id))]
        return {
            "room": {"id": room.id, "name": room.name},
            "exam": {"id": exam.id, "title": exam.title},
            "attempts": rows,
        }

    async def statistics(self, claims: Claims, room_id: str) -> dict[str, Any]:
        room, exam = await self._catalog.room_for(claims, room_id, "room.attempts")
        rid = uuid.UUID(room.id)
        async with self._pool.acquire() as conn:
            grades = [GradeRow(r[0], r[1], float(r[2]), float(r[3])) for r in await conn.fetch(_GRADES, rid)]
            answered = {r["question_id"]: int(r["answered"]) for r in await conn.fetch(_ANSWERED, rid)}
            counts = await conn.fetchrow(
                "SELECT count(*) AS attempts,"
                " count(*) FILTER (WHERE status IN ('submitted', 'terminated')) AS ended,"
                " count(*) FILTER (WHERE grade_final) AS graded FROM attempts WHERE room_id = $1",
                rid,
            )
        assert counts is not None
        questions = [QuestionRef(q.id, q.text, q.kind, q.points) for q in exam.questions]
        stats = question_statistics(questions, answered, grades)
        return {
            "room": {"id": room.id, "name": room.name},
            "exam": {"id": exam.id, "title": exam.title},
            "attempts": counts["attempts"],
            "ended": counts["ended"],
            "graded": counts["graded"],
            "questions": [s.as_json() for s in stats],
            "formulas": {
                "difficulty": "mean points / maximum points (0..1, higher = easier)",
                "discrimination": "Pearson (point-biserial) correlation of the question's points with the points"
                " on the other questions, over ended attempts graded on it (-1..1; null when undefined)",
            },
        }
