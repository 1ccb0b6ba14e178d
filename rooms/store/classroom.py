"""A live room in Postgres: the roster and the recent violations a dashboard opens with, and
the controls table (every control and announce, recorded before anyone is told)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from rooms.protocols import ControlRecord
from rooms.review import flag_explanation
from rooms.timer import Attempt, Change

from .attempts import change_locked
from .database import Pool
from .review import attempt_summary

_ROSTER = """
SELECT a.id, a.student_id, a.student_name, a.status, a.started_at, a.deadline,
       a.submitted_at, a.end_reason, a.extension_seconds,
       (SELECT coalesce(sum(v.severity), 0) FROM violations v WHERE v.attempt_id = a.id) AS score,
       (SELECT count(*) FROM answers x WHERE x.attempt_id = a.id) AS answered,
       (SELECT count(*) FROM violations v WHERE v.attempt_id = a.id) AS violations,
       lv.occurred_at AS last_violation_at, lv.kind AS last_violation_kind
FROM attempts a
LEFT JOIN LATERAL (
    SELECT occurred_at, kind FROM violations v WHERE v.attempt_id = a.id
    ORDER BY occurred_at DESC LIMIT 1
) lv ON true
WHERE a.room_id = $1
ORDER BY a.student_name, a.student_id
"""

_RECENT = """
SELECT v.id, v.attempt_id, a.student_id, v.seq, v.source, v.kind, v.severity, v.occurred_at,
       v.details, v.evidence_id,
       (SELECT coalesce(sum(w.severity), 0) FROM violations w WHERE w.attempt_id = a.id) AS score
FROM violations v JOIN attempts a ON a.id = v.attempt_id
WHERE a.room_id = $1
ORDER BY v.occurred_at DESC
LIMIT $2
"""

_INSERT_CONTROL = """
INSERT INTO controls (room_id, attempt_id, actor, action, params) VALUES ($1, $2, $3, $4, $5::jsonb)
"""


def _violation_json(row: asyncpg.Record) -> dict[str, Any]:
    details = json.loads(row["details"])
    return {
        "attempt_id": str(row["attempt_id"]),
        "student_id": row["student_id"],
        "id": row["id"],
        "seq": row["seq"],
        "source": row["source"],
        "kind": row["kind"],
        "severity": row["severity"],
        "score": row["score"],
        "occurred_at": row["occurred_at"].isoformat(),
        "details": details,
        "evidence_id": str(row["evidence_id"]) if row["evidence_id"] else None,
        "explanation": flag_explanation(row["kind"], details),
    }


class ClassroomStore:
    """The `ClassroomRepository` of rooms/protocols.py, in Postgres."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def roster(self, room_id: str) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(_ROSTER, uuid.UUID(room_id))
        entries = []
        for row in rows:
            entry = attempt_summary(row)
            # The live suspicion score, for the dashboard's triage only (flags count once confirmed).
            entry["score"] = round(float(row["score"]), 2)
            entry["last_violation_kind"] = row["last_violation_kind"]
            entries.append(entry)
        return entries

    async def recent_violations(self, room_id: str, limit: int) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(_RECENT, uuid.UUID(room_id), limit)
        return [_violation_json(r) for r in reversed(rows)]

    async def control(self, control: ControlRecord, change: Change) -> tuple[Attempt, bool] | None:
        async with self._pool.acquire() as conn, conn.transaction():
            result = await change_locked(conn, control.attempt_id, change)
            if result is not None and result[1]:
                await self._insert(conn, control)
            return result

    async def record(self, control: ControlRecord) -> None:
        async with self._pool.acquire() as conn:
            await self._insert(conn, control)

    async def announce(self, room_id: str, actor: str, text: str) -> None:
        await self._pool.execute(
            "INSERT INTO controls (room_id, actor, action, params) VALUES ($1, $2, 'announce', $3::jsonb)",
            uuid.UUID(room_id),
            actor,
            json.dumps({"text": text}),
        )

    @staticmethod
    async def _insert(conn: asyncpg.Connection, control: ControlRecord) -> None:
        await conn.execute(
            _INSERT_CONTROL,
            uuid.UUID(control.room_id),
            uuid.UUID(control.attempt_id),
            control.actor,
            control.action,
            json.dumps(control.params),
        )
