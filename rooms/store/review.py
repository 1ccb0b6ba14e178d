"""After-the-fact views: a room's attempts (the rows of the room report), one attempt's timeline."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from rooms.errors import Forbidden, NotFound
from rooms.roles import Action
from rooms.tokens import Claims

from .catalog import Catalog, parse_uuid
from .database import Pool

_ATTEMPT_SUMMARY = """
SELECT a.id, a.student_id, a.student_name, a.status, a.started_at, a.deadline,
       a.submitted_at, a.end_reason, a.extension_seconds,
       (SELECT coalesce(sum(v.severity), 0) FROM violations v WHERE v.attempt_id = a.id) AS score,
       (SELECT count(*) FROM answers x WHERE x.attempt_id = a.id) AS answered,
       (SELECT count(*) FROM violations v WHERE v.attempt_id = a.id) AS violations,
       (SELECT max(v.occurred_at) FROM violations v WHERE v.attempt_id = a.id) AS last_violation_at
FROM attempts a
WHERE a.room_id = $1
ORDER BY a.student_name, a.student_id
"""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def attempt_summary(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "student_id": row["student_id"],
        "student_name": row["student_name"],
        "status": row["status"],
        "started_at": _iso(row["started_at"]),
        "deadline": _iso(row["deadline"]),
        "submitted_at": _iso(row["submitted_at"]),
        "end_reason": row["end_reason"],
        "score": round(float(row["score"]), 2),
        "extension_seconds": row["extension_seconds"],
        "answered": row["answered"],
        "violations": row["violations"],
        "last_violation_at": _iso(row["last_violation_at"]),
    }


class Review:
    def __init__(self, pool: Pool, catalog: Catalog) -> None:
        self._pool = pool
        self._catalog = catalog

    async def attempts(self, claims: Claims, room_id: str, action: Action = "room.attempts") -> list[dict[str, Any]]:
        room, _ = await self._catalog.room_for(claims, room_id, action)
        rows = await self._pool.fetch(_ATTEMPT_SUMMARY, uuid.UUID(room.id))
        return [attempt_summary(r) for r in rows]

    async def attempt_room(self, claims: Claims, attempt_id: str, action: Action) -> tuple[str, str]:
        """(attempt id, room id) if `claims` may do `action` on the attempt (a student: read their own)."""
        row = await self._pool.fetchrow(
            "SELECT id, room_id, student_id, exam_id FROM attempts WHERE id = $1",
            parse_uuid(attempt_id, "attempt"),
        )
        if row is None:
            raise NotFound(f"no attempt {attempt_id}")
        room_id = str(row["room_id"])
        if claims.role == "student":
            if action != "room.timeline" or claims.sub != row["student_id"] or claims.room_id != room_id:
                raise Forbidden("a student can read only their own attempt")
        else:
            await self._catalog.room_for(claims, room_id, action)
        return str(row["id"]), room_id

    async def timeline(self, claims: Claims, attempt_id: str) -> dict[str, Any]:
        attempt_id, _ = await self.attempt_room(claims, attempt_id, "room.timeline")
        aid = uuid.UUID(attempt_id)
        async with self._pool.acquire() as conn:
            attempt = await conn.fetchrow(_ATTEMPT_SUMMARY.replace("WHERE a.room_id = $1", "WHERE a.id = $1"), aid)
            violations = await conn.fetch(
                "SELECT id, seq, source, kind, severity, occurred_at, received_at, details,"
                " evidence_id, review FROM violations WHERE attempt_id = $1",
                aid,
            )
            answers = await conn.fetch(
                "SELECT question_id, value, seq, saved_at FROM answers WHERE attempt_id = $1", aid
            )
            controls = await conn.fetch(
                "SELECT actor, action, params, created_at FROM controls WHERE attempt_id = $1"
                " OR (attempt_id IS NULL AND room_id = (SELECT room_id FROM attempts WHERE id = $1))",
                aid,
            )
            log = await conn.fetch("SELECT kind, at, details FROM attempt_log WHERE attempt_id = $1", aid)
        assert attempt is not None
        entries: list[dict[str, Any]] = []
        for v in violations:
            weight = float(v["severity"])
            entries.append(
                {
                    "type": "violation",
                    "at": _iso(v["occurred_at"]),
                    "id": v["id"],
                    "seq": v["seq"],
                    "source": v["source"],
                    "kind": v["kind"],
                    "severity": weight,
                    "received_at": _iso(v["received_at"]),
                    "details": json.loads(v["details"]),
                    "evidence_id": str(v["evidence_id"]) if v["evidence_id"] else None,
                    "review": v["review"],
                    "reason": f"{v['kind']} ({v['source']}) adds {weight:g} to the score",
                }
            )
        for a in answers:
            entries.append(
                {
                    "type": "answer",
                    "at": _iso(a["saved_at"]),
                    "question_id": a["question_id"],
                    "value": json.loads(a["value"]),
                    "seq": a["seq"],
                }
            )
        for c in controls:
            entries.append(
                {
                    "type": "control",
                    "at": _iso(c["created_at"]),
                    "actor": c["actor"],
                    "action": c["action"],
                    "params": json.loads(c["params"]),
                }
            )
        for e in log:
            entries.append(
                {
                    "type": e["kind"],
                    "at": _iso(e["at"]),
                    "details": json.loads(e["details"]),
                }
            )
        entries.sort(key=lambda e: e["at"] or "")
        return {"attempt": attempt_summary(attempt), "entries": entries}


class EvidenceStore:
    """Evidence JPEGs: readable by the room's teachers and admins until they expire."""

    def __init__(self, pool: Pool, review: Review) -> None:
        self._pool = pool
        self._review = review

    async def read(self, claims: Claims, evidence_id: str) -> tuple[bytes, str, str]:
        """(data, content type, attempt id); students never read evidence."""
        if claims.role == "student":
            raise Forbidden("evidence is for the room's teachers")
        row = await self._pool.fetchrow(
            "SELECT attempt_id, content_type, data FROM evidence WHERE id = $1 AND expires_at > now()",
            parse_uuid(evidence_id, "evidence"),
        )
        if row is None:
            raise NotFound(f"no evidence {evidence_id} (or it has expired)")
        attempt_id, _ = await self._review.attempt_room(claims, str(row["attempt_id"]), "room.evidence")
        return bytes(row["data"]), row["content_type"], attempt_id

    async def set_review(self, claims: Claims, violation_id: int, decision: str) -> str:
        """Confirm or dismiss a flag; returns the attempt id."""
        if claims.role == "student":
            raise Forbidden("only teachers review flags")
        row = await self._pool.fetchrow("SELECT attempt_id FROM violations WHERE id = $1", violation_id)
        if row is None:
            raise NotFound(f"no violation {violation_id}")
        attempt_id, _ = await self._review.attempt_room(claims, str(row["attempt_id"]), "room.review")
        await self._pool.execute("UPDATE violations SET review = $2 WHERE id = $1", violation_id, decision)
        return attempt_id
