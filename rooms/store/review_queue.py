"""The review queue: flagged attempts across every room a teacher may review, worst first.

Order: attempts still without a verdict first; then the suspicion score (the weights of every
flag not dismissed — a way to decide what to look at first, never a finding about the student);
then the number of flags nobody has decided yet; then the oldest attempt. Paginated.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from rooms.review import VERDICT_LABELS
from rooms.tokens import Claims

from .catalog import Catalog
from .database import Pool

# $1 all rooms (admin), $2 the teacher, $3 rooms a minted token names, $4 one room or NULL,
# $5 unreviewed only, $6 limit, $7 offset. The visible rooms are those where the teacher holds
# any role (rooms/store/members.py): every role may review (rooms/roles.py, "room.review").
_QUEUE = """
WITH visible AS (
    SELECT r.id, r.name, e.title FROM rooms r JOIN exams e ON e.id = r.exam_id
    WHERE ($1::boolean OR e.created_by = $2 OR r.id::text = ANY($3::text[])
           OR r.id IN (SELECT room_id FROM room_members WHERE subject = $2))
      AND ($4::uuid IS NULL OR r.id = $4::uuid)
), flagged AS (
    SELECT a.id, a.room_id, vr.name AS room_name, vr.title AS exam_title, a.student_id, a.student_name,
           a.status, a.started_at, a.submitted_at, a.verdict, f.*
    FROM attempts a JOIN visible vr ON vr.id = a.room_id
    CROSS JOIN LATERAL (
        SELECT count(*) AS violations,
               count(*) FILTER (WHERE v.review IS NULL) AS unreviewed,
               count(*) FILTER (WHERE v.review = 'confirmed') AS confirmed,
               count(*) FILTER (WHERE v.review = 'dismissed') AS dismissed,
               coalesce(sum(v.severity) FILTER (WHERE v.review IS DISTINCT FROM 'dismissed'), 0) AS suspicion,
               max(v.occurred_at) AS last_violation_at
        FROM violations v WHERE v.attempt_id = a.id
    ) f
    WHERE f.violations > 0 AND (NOT $5::boolean OR f.unreviewed > 0)
)
SELECT *, count(*) OVER () AS total FROM flagged
ORDER BY (verdict IS NULL) DESC, suspicion DESC, unreviewed DESC, started_at, id
LIMIT $6 OFFSET $7
"""


def _queue_row(row: asyncpg.Record) -> dict[str, Any]:
    verdict = row["verdict"]
    return {
        "attempt_id": str(row["id"]),
        "room_id": str(row["room_id"]),
        "room_name": row["room_name"],
        "exam_title": row["exam_title"],
        "student_id": row["student_id"],
        "student_name": row["student_name"],
        "status": row["status"],
        "started_at": row["started_at"].isoformat(),
        "submitted_at": row["submitted_at"].isoformat() if row["submitted_at"] else None,
        "flags": {
            "total": row["violations"],
            "unreviewed": row["unreviewed"],
            "confirmed": row["confirmed"],
            "dismissed": row["dismissed"],
        },
        "suspicion_score": round(float(row["suspicion"]), 2),
        "last_violation_at": row["last_violation_at"].isoformat(),
        "verdict": verdict,
        "verdict_label": VERDICT_LABELS.get(verdict) if verdict else None,
    }


class ReviewQueue:
    def __init__(self, pool: Pool, catalog: Catalog) -> None:
        self._pool = pool
        self._catalog = catalog

    async def page(
        self, claims: Claims, *, room_id: str | None, unreviewed_only: bool, page: int, per_page: int
    ) -> dict[str, Any]:
        claims.require_role("admin", "teacher")
        if room_id is not None:
            # A named room the caller cannot review is refused, not answered with an empty page.
            await self._catalog.room_for(claims, room_id, "room.review")
        rows = await self._pool.fetch(
            _QUEUE,
            claims.role == "admin",
            claims.sub,
            list(claims.rooms),
            uuid.UUID(room_id) if room_id is not None else None,
            unreviewed_only,
            per_page,
            (page - 1) * per_page,
        )
        total = int(rows[0]["total"]) if rows else await self._total(claims, room_id, unreviewed_only, page)
        return {
            "attempts": [_queue_row(r) for r in rows],
            "page": page,
            "per_page": per_page,
            "total": total,
            "pages": max(1, -(-total // per_page)),
        }

    async def _total(self, claims: Claims, room_id: str | None, unreviewed_only: bool, page: int) -> int:
        # An empty page past the end still says how many there are (page 1 empty: none at all).
        if page == 1:
            return 0
        rows = await self._pool.fetch(
            _QUEUE,
            claims.role == "admin",
            claims.sub,
            list(claims.rooms),
            uuid.UUID(room_id) if room_id is not None else None,
            unreviewed_only,
            1,
            0,
        )
        return int(rows[0]["total"]) if rows else 0
