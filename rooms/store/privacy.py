"""Privacy duties: evidence retention, per-student export and erasure, token revocation."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from rooms.errors import Conflict, NotFound
from rooms.tokens import Claims

from . import erasures
from .database import Pool

logger = logging.getLogger(__name__)


async def purge_expired_evidence(pool: Pool, now: datetime | None = None) -> int:
    """Delete evidence past its retention deadline; the violation rows stay (without image)."""
    now = now or datetime.now(UTC)
    result: str = await pool.execute("DELETE FROM evidence WHERE expires_at <= $1", now)
    deleted = int(result.split()[-1])
    if deleted:
        logger.info("retention: purged %d evidence images", deleted)
    return deleted


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _rows(rows: list[asyncpg.Record]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        item: dict[str, Any] = {}
        for key, value in r.items():
            if isinstance(value, uuid.UUID):
                value = str(value)
            elif isinstance(value, bytes):
                value = base64.b64encode(value).decode()
            elif isinstance(value, str) and key in (
                "value",
                "details",
                "params",
                "questions",
                "accommodations",
                "rules_off",
            ):
                value = json.loads(value)
            item[key] = _iso(value)
        out.append(item)
    return out


async def _has_accommodations(conn: asyncpg.Connection) -> bool:
    return await conn.fetchval("SELECT to_regclass('public.room_accommodations')") is not None


class StudentData:
    """Everything stored about one student: exported as JSON, or erased. Both are audited."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def export(self, student_id: str) -> dict[str, Any]:
        async with self._pool.acquire() as conn:
            attempts = await conn.fetch("SELECT * FROM attempts WHERE student_id = $1 ORDER BY started_at", student_id)
            consents = await conn.fetch("SELECT * FROM consents WHERE student_id = $1 ORDER BY accepted_at", student_id)
            # Set by teachers, possibly before any attempt; the note may say why (health data).
            accommodations = (
                await conn.fetch(
                    "SELECT * FROM room_accommodations WHERE student_id = $1 ORDER BY updated_at", student_id
                )
                if await _has_accommodations(conn)
                else []  # a database from before 0012 (docs/upgrades.md)
            )
            if not attempts and not consents and not accommodations:
                raise NotFound(f"nothing is stored about student {student_id!r}")
            ids = [a["id"] for a in attempts]
            answers = await conn.fetch("SELECT * FROM answers WHERE attempt_id = ANY($1) ORDER BY saved_at", ids)
            violations = await conn.fetch(
                "SELECT * FROM violations WHERE attempt_id = ANY($1) ORDER BY occurred_at", ids
            )
            evidence = await conn.fetch("SELECT * FROM evidence WHERE attempt_id = ANY($1) ORDER BY taken_at", ids)
            controls = await conn.fetch("SELECT * FROM controls WHERE attempt_id = ANY($1) ORDER BY created_at", ids)
            log = await conn.fetch("SELECT * FROM attempt_log WHERE attempt_id = ANY($1) ORDER BY at", ids)
            # Grades since migration 0009; a new node may export before it is applied (docs/upgrades.md).
            grades = (
                await conn.fetch(
                    "SELECT * FROM answer_grades WHERE attempt_id = ANY($1) ORDER BY attempt_id, question_id", ids
                )
                if await conn.fetchval("SELECT to_regclass('answer_grades') IS NOT NULL")
                else []
            )
            audit = await conn.fetch(
                "SELECT * FROM audit_log WHERE target_type = 'attempt' AND target_id = ANY($1::text[]) ORDER BY at",
                [str(i) for i in ids],
            )
        return {
            "student_id": student_id,
            "exported_at": datetime.now(UTC).isoformat(),
            "attempts": _rows(attempts),
            "answers": _rows(answers),
            "grades": _rows(grades),  # points per question, who graded by hand, their comment
            "violations": _rows(violations),
            "evidence": _rows(evidence),
            "controls": _rows(controls),
            "timeline": _rows(log),
            "consents": _rows(consents),
            "accommodations": _rows(accommodations),
            "access_log": _rows(audit),
        }

    async def erase(self, student_id: str) -> dict[str, int]:
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch("SELECT id, status FROM attempts WHERE student_id = $1 FOR UPDATE", student_id)
            running = [str(r["id"]) for r in rows if r["status"] in ("active", "paused")]
            if running:
                # Erasing mid-exam would pull the attempt out from under a connected student.
                raise Conflict(
                    f"student {student_id!r} has a running attempt; terminate it or let it end first",
                    code="conflict",
                    fields={"attempts": ", ".join(running)},
                )
            ids = [r["id"] for r in rows]
            consents = await conn.execute("DELETE FROM consents WHERE student_id = $1", student_id)
            # answers, violations, evidence, controls and timeline rows go with the attempts (ON DELETE CASCADE)
            attempts = await conn.execute("DELETE FROM attempts WHERE id = ANY($1)", ids)
            accommodations = (
                await conn.execute("DELETE FROM room_accommodations WHERE student_id = $1", student_id)
                if await _has_accommodations(conn)
                else "DELETE 0"
            )
            counts = {
                "attempts": int(attempts.split()[-1]),
                "consents": int(consents.split()[-1]),
                "accommodations": int(accommodations.split()[-1]),
            }
            if any(counts.values()):
                # With the deletes, so a restore of an older backup erases them again.
                await erasures.record(conn, student_id)
        if not any(counts.values()):
            raise NotFound(f"nothing is stored about student {student_id!r}")
        return counts


class Revocations:
    """Revoked token ids, cached and refreshed so every node sees a revocation within seconds."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._revoked: frozenset[str] = frozenset()

    def is_revoked(self, claims: Claims) -> bool:
        return bool(claims.token_id) and claims.token_id in self._revoked

    async def revoke(self, by: Claims, token_id: str, expires_at: float | None) -> None:
        await self._pool.execute(
            "INSERT INTO revoked_tokens (token_id, expires_at, revoked_by) VALUES ($1, $2, $3)"
            " ON CONFLICT (token_id) DO NOTHING",
            token_id,
            datetime.fromtimestamp(expires_at, UTC) if expires_at else None,
            by.sub,
        )
        self._revoked = self._revoked | {token_id}

    async def refresh(self) -> frozenset[str]:
        rows = await self._pool.fetch(
            "SELECT token_id FROM revoked_tokens WHERE expires_at IS NULL OR expires_at > now()"
        )
        self._revoked = frozenset(r["token_id"] for r in rows)
        return self._revoked
