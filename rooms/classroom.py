"""What teachers do in a live room: watch the roster, and control attempts or the room.

Every control and announce is recorded (controls table) before anyone is told, so the
timeline and the audit log hold exactly what students saw.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Literal

import asyncpg

from rooms.store.audit import AuditLog
from rooms.store.catalog import Catalog
from rooms.store.review import attempt_summary

from .attempts import Attempt, AttemptService, attempt_from
from .errors import Conflict, Invalid
from .protocols import Notifier, Presence
from .store.database import Pool
from .tokens import Claims

Action = Literal["warn", "message", "pause", "resume", "extend", "terminate"]

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
LIMIT 50
"""


def _violation_json(row: asyncpg.Record) -> dict[str, Any]:
    details = json.loads(row["details"])
    return {
        "attempt_id": str(row["attempt_id"]), "student_id": row["student_id"], "id": row["id"],
        "seq": row["seq"], "source": row["source"], "kind": row["kind"], "severity": row["severity"],
        "score": row["score"], "occurred_at": row["occurred_at"].isoformat(), "details": details,
        "evidence_id": str(row["evidence_id"]) if row["evidence_id"] else None,
        "reason": str(details.get("reason") or f"{row['kind']} ({row['source']}) adds {row['severity']:g}"),
    }


_STATE_CHANGES: dict[str, tuple[str, str]] = {
    # action -> (SQL SET clause, allowed current statuses)
    "pause": ("status = 'paused', paused_at = now()", "('active')"),
    "resume": (
        "status = 'active', deadline = deadline + (now() - paused_at), paused_at = NULL",
        "('paused')",
    ),
    "extend": (
        "deadline = deadline + make_interval(mins => $2),"
        " extension_seconds = extension_seconds + $2 * 60",
        "('active', 'paused')",
    ),
    "terminate": (
        "status = 'terminated', submitted_at = now(), end_reason = 'terminated', paused_at = NULL",
        "('active', 'paused')",
    ),
}


class Classroom:
    def __init__(
        self,
        pool: Pool,
        catalog: Catalog,
        attempts: AttemptService,
        presence: Presence,
        notifier: Notifier,
        audit: AuditLog,
    ) -> None:
        self._pool = pool
        self._catalog = catalog
        self._attempts = attempts
        self._presence = presence
        self._notifier = notifier
        self._audit = audit

    async def roster(self, claims: Claims, room_id: str) -> dict[str, Any]:
        room, exam = await self._catalog.room_for(claims, room_id, "room.watch")
        rows = await self._pool.fetch(_ROSTER, uuid.UUID(room.id))
        states = await self._presence.room(room.id)
        students = []
        for row in rows:
            entry = attempt_summary(row)
            entry["last_violation_kind"] = row["last_violation_kind"]
            entry["total_questions"] = len(exam.questions)
            if row["status"] in ("submitted", "terminated"):
                entry["presence"] = "submitted"
            else:
                entry["presence"] = states.get(entry["id"], "offline")
            students.append(entry)
        recent = await self._pool.fetch(_RECENT, uuid.UUID(room.id))
        await self._audit.record(claims, "room.watch", "room", room.id)
        return {
            "room": room.to_json(), "exam": {"id": exam.id, "title": exam.title}, "students": students,
            # The feed of a dashboard opened mid-exam starts with what already happened.
            "recent_violations": [_violation_json(r) for r in reversed(recent)],
        }

    async def control(
        self, claims: Claims, attempt_id: str, action: Action, *, minutes: int | None = None,
        text: str | None = None,
    ) -> Attempt:
        attempt = await self._attempts.attempt(attempt_id, fresh=True)
        await self._catalog.room_for(claims, attempt.room_id, "room.control")
        params: dict[str, Any] = {}
        if action == "extend":
            if minutes is None or not 1 <= minutes <= 600:
                raise Invalid("extend needs minutes between 1 and 600", fields={"minutes": "1..600"})
            params["minutes"] = minutes
        if text:
            params["text"] = text
        if action in ("warn", "message") and not text:
            raise Invalid(f"{action} needs a text", fields={"text": "required"})
        async with self._pool.acquire() as conn, conn.transaction():
            if action in _STATE_CHANGES:
                set_clause, allowed = _STATE_CHANGES[action]
                args: list[Any] = [uuid.UUID(attempt_id)]
                if action == "extend":
                    args.append(minutes)
                row = await conn.fetchrow(
                    f"UPDATE attempts SET {set_clause} WHERE id = $1 AND status IN {allowed} RETURNING *",
                    *args,
                )
                if row is None:
                    raise Conflict(f"cannot {action} an attempt that is {attempt.status}", code="invalid_state")
                attempt = attempt_from(row)
            elif attempt.closed:
                raise Conflict(f"the attempt is {attempt.status}", code="attempt_closed")
            await conn.execute(
                "INSERT INTO controls (room_id, attempt_id, actor, action, params)"
                " VALUES ($1, $2, $3, $4, $5::jsonb)",
                uuid.UUID(attempt.room_id), uuid.UUID(attempt_id), claims.sub, action, json.dumps(params),
            )
        self._attempts.updated(attempt)
        await self._audit.record(claims, f"control.{action}", "attempt", attempt_id, params)
        clock = attempt.clock()
        await self._notifier.student(attempt_id, "control", {"action": action, **params, **clock})
        if action in _STATE_CHANGES:
            await self._notifier.student(attempt_id, "deadline", clock)
        await self._notifier.teachers(attempt.room_id, "control", {
            "attempt_id": attempt_id, "action": action, "by": claims.sub, **params, **clock,
        })
        if action == "terminate":
            await self._notifier.teachers(attempt.room_id, "submitted", {
                "attempt_id": attempt_id, "status": attempt.status, "reason": attempt.end_reason,
            })
            await self._attempts.ended(attempt)
        return attempt

    async def announce(self, claims: Claims, room_id: str, text: str) -> None:
        room, _ = await self._catalog.room_for(claims, room_id, "room.announce")
        await self._pool.execute(
            "INSERT INTO controls (room_id, actor, action, params) VALUES ($1, $2, 'announce', $3::jsonb)",
            uuid.UUID(room.id), claims.sub, json.dumps({"text": text}),
        )
        await self._audit.record(claims, "room.announce", "room", room.id, {"text": text})
        data = {"room_id": room.id, "text": text, "by": claims.name or claims.sub}
        await self._notifier.room_students(room.id, "announce", data)
        await self._notifier.teachers(room.id, "announce", data)
