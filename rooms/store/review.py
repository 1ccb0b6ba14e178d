"""After-the-fact views and decisions: a room's attempts (the rows of the room report), one
attempt's timeline, and a reviewer's decisions (a flag confirmed or dismissed with a note, the
attempt's verdict). The rules of a decision are the domain's (rooms/review.py).

The two views read the review columns of 0009 through `to_jsonb(row)`: a node that meets the
schema before 0009 (docs/upgrades.md) reads them as absent instead of failing.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from core.vocabulary import KINDS
from rooms.errors import Forbidden, NotFound
from rooms.review import VERDICT_LABELS, FlagCounts, FlagDecision, Verdict, answer_text, check_verdict, flag_explanation
from rooms.roles import Action
from rooms.tokens import Claims

from .catalog import Catalog, parse_uuid
from .database import Pool

# The flags of an attempt by review state; `unreviewed_weight` is the sum of the weights of the
# flags nobody has decided yet: a signal for the reviewer, never the student's score.
_FLAG_COUNTS = """
SELECT count(*) AS violations,
       count(*) FILTER (WHERE v.review IS NULL) AS unreviewed,
       count(*) FILTER (WHERE v.review = 'confirmed') AS confirmed,
       count(*) FILTER (WHERE v.review = 'dismissed') AS dismissed,
       coalesce(sum(v.severity) FILTER (WHERE v.review IS NULL), 0) AS unreviewed_weight,
       max(v.occurred_at) AS last_violation_at
FROM violations v WHERE v.attempt_id = a.id
"""

_ATTEMPT_SUMMARY = f"""
SELECT a.id, a.exam_id, a.student_id, a.student_name, a.status, a.started_at, a.deadline,
       a.submitted_at, a.end_reason, a.extension_seconds,
       (SELECT count(*) FROM answers x WHERE x.attempt_id = a.id) AS answered,
       f.violations, f.unreviewed, f.confirmed, f.dismissed, f.unreviewed_weight, f.last_violation_at,
       to_jsonb(a) AS review_columns
FROM attempts a CROSS JOIN LATERAL ({_FLAG_COUNTS}) f
"""
_ROOM_ATTEMPTS = _ATTEMPT_SUMMARY + "WHERE a.room_id = $1 ORDER BY a.student_name, a.student_id"
_ONE_ATTEMPT = _ATTEMPT_SUMMARY + "WHERE a.id = $1"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def attempt_summary(row: asyncpg.Record) -> dict[str, Any]:
    """The fields every view of an attempt shares (the live roster adds its own)."""
    return {
        "id": str(row["id"]),
        "student_id": row["student_id"],
        "student_name": row["student_name"],
        "status": row["status"],
        "started_at": _iso(row["started_at"]),
        "deadline": _iso(row["deadline"]),
        "submitted_at": _iso(row["submitted_at"]),
        "end_reason": row["end_reason"],
        "extension_seconds": row["extension_seconds"],
        "answered": row["answered"],
        "violations": row["violations"],
        "last_violation_at": _iso(row["last_violation_at"]),
    }


def review_summary(row: asyncpg.Record) -> dict[str, Any]:
    """An attempt with its flags by review state and its verdict (no raw score: flags count only
    once confirmed, and the sum of unreviewed weights is named for what it is)."""
    extra = json.loads(row["review_columns"])
    verdict = extra.get("verdict")
    return {
        **attempt_summary(row),
        "flags": {"unreviewed": row["unreviewed"], "confirmed": row["confirmed"], "dismissed": row["dismissed"]},
        "unreviewed_signal_weight": round(float(row["unreviewed_weight"]), 2),
        "verdict": verdict,
        "verdict_label": VERDICT_LABELS.get(verdict) if verdict else None,
        "verdict_note": extra.get("verdict_note") or "",
        "verdict_by": extra.get("verdict_by"),
        "verdict_at": extra.get("verdict_at"),
    }


def _violation_entry(v: asyncpg.Record) -> dict[str, Any]:
    details = json.loads(v["details"])
    extra = json.loads(v["review_columns"])
    known = KINDS.get(v["kind"])
    return {
        "type": "violation",
        "at": _iso(v["occurred_at"]),
        "id": v["id"],
        "seq": v["seq"],
        "source": v["source"],
        "kind": v["kind"],
        "label": known.label if known is not None else v["kind"],
        "severity": float(v["severity"]),
        "received_at": _iso(v["received_at"]),
        "details": details,
        "explanation": flag_explanation(v["kind"], details),
        "evidence_id": str(v["evidence_id"]) if v["evidence_id"] else None,
        "review": v["review"],
        "review_note": extra.get("review_note") or "",
        "reviewed_by": extra.get("reviewed_by"),
        "reviewed_at": extra.get("reviewed_at"),
    }


class Review:
    def __init__(self, pool: Pool, catalog: Catalog) -> None:
        self._pool = pool
        self._catalog = catalog

    async def attempts(self, claims: Claims, room_id: str, action: Action = "room.attempts") -> list[dict[str, Any]]:
        room, _ = await self._catalog.room_for(claims, room_id, action)
        rows = await self._pool.fetch(_ROOM_ATTEMPTS, uuid.UUID(room.id))
        return [review_summary(r) for r in rows]

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
            attempt = await conn.fetchrow(_ONE_ATTEMPT, aid)
            violations = await conn.fetch(
                "SELECT id, seq, source, kind, severity, occurred_at, received_at, details,"
                " evidence_id, review, to_jsonb(v) AS review_columns FROM violations v WHERE attempt_id = $1",
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
        exam = await self._catalog.exam(str(attempt["exam_id"]))
        entries: list[dict[str, Any]] = [_violation_entry(v) for v in violations]
        for a in answers:
            value = json.loads(a["value"])
            question = exam.question(a["question_id"])
            entries.append(
                {
                    "type": "answer",
                    "at": _iso(a["saved_at"]),
                    "question_id": a["question_id"],
                    "question_text": question.text if question is not None else None,
                    "value": value,
                    # The option's text, not its index (several: joined); the stored value maps
                    # to the exam's own option order whatever order the student saw.
                    "answer_text": answer_text(question.kind, question.options, value)
                    if question is not None
                    else answer_text("", (), value),
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
        summary = review_summary(attempt)
        summary["exam_duration_seconds"] = exam.duration_seconds
        summary["exam_title"] = exam.title
        return {"attempt": summary, "entries": entries}

    # ------------------------------------------------------------------------ decisions

    async def decide_flag(self, claims: Claims, violation_id: int, decision: FlagDecision, note: str) -> dict[str, Any]:
        """Confirm or dismiss a flag with a note; who and when are stored with it."""
        if claims.role == "student":
            raise Forbidden("only teachers review flags")
        row = await self._pool.fetchrow("SELECT attempt_id FROM violations WHERE id = $1", violation_id)
        if row is None:
            raise NotFound(f"no violation {violation_id}")
        attempt_id, _ = await self.attempt_room(claims, str(row["attempt_id"]), "room.review")
        async with self._pool.acquire() as conn, conn.transaction():
            previous = await conn.fetchrow("SELECT review FROM violations WHERE id = $1 FOR UPDATE", violation_id)
            if previous is None:  # erased in between
                raise NotFound(f"no violation {violation_id}")
            reviewed_at = await conn.fetchval(
                "UPDATE violations SET review = $2, review_note = $3, reviewed_by = $4, reviewed_at = now()"
                " WHERE id = $1 RETURNING reviewed_at",
                violation_id,
                decision,
                note,
                claims.sub,
            )
        return {
            "violation_id": violation_id,
            "attempt_id": attempt_id,
            "review": decision,
            "review_note": note,
            "reviewed_by": claims.sub,
            "reviewed_at": reviewed_at.isoformat(),
            "previous": previous["review"],
        }

    async def set_verdict(self, claims: Claims, attempt_id: str, verdict: Verdict, note: str) -> dict[str, Any]:
        """Close the attempt's review with a verdict (rooms.review.check_verdict says when)."""
        if claims.role == "student":
            raise Forbidden("only teachers give verdicts")
        attempt_id, _ = await self.attempt_room(claims, attempt_id, "room.review")
        aid = uuid.UUID(attempt_id)
        async with self._pool.acquire() as conn, conn.transaction():
            # The row lock keeps a flag decision and the verdict from crossing (decide_flag
            # locks the violation, this the attempt; the counts are read under it).
            current = await conn.fetchrow("SELECT status, verdict FROM attempts WHERE id = $1 FOR UPDATE", aid)
            if current is None:
                raise NotFound(f"no attempt {attempt_id}")
            counts = await conn.fetchrow(_FLAG_COUNTS.replace("a.id", "$1"), aid)
            assert counts is not None
            flags = FlagCounts(counts["unreviewed"], counts["confirmed"], counts["dismissed"])
            check_verdict(verdict, note, current["status"], flags)
            at = await conn.fetchval(
                "UPDATE attempts SET verdict = $2, verdict_note = $3, verdict_by = $4, verdict_at = now()"
                " WHERE id = $1 RETURNING verdict_at",
                aid,
                verdict,
                note,
                claims.sub,
            )
        return {
            "attempt_id": attempt_id,
            "verdict": verdict,
            "verdict_label": VERDICT_LABELS[verdict],
            "verdict_note": note,
            "verdict_by": claims.sub,
            "verdict_at": at.isoformat(),
            "previous": current["verdict"],
            "flags": {"unreviewed": flags.unreviewed, "confirmed": flags.confirmed, "dismissed": flags.dismissed},
        }


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
