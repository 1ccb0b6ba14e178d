"""Attempts in Postgres: find or create on join, the locked read-change-write of a timer rule,
the deadline sweep, and the counts the live path needs.

The rules are the domain's (rooms/timer.py): this module reads the attempt and the
database's `now()` once, applies the rule's pure function, and writes what it returned. A
change is written only if the row still holds what the rule saw (status, deadline, pause,
extension), so a racing change by another node is never overwritten.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from rooms.accommodations import Terms
from rooms.protocols import Joined
from rooms.timer import Attempt, Change

from .database import Pool
from .schedule import terms_of

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

# Writes the attempts a rule changed, each only if its row still holds what the rule read.
_WRITE_CHANGED = """
UPDATE attempts AS a
SET status = c.status, deadline = c.deadline, paused_at = c.paused_at,
    extension_seconds = c.extension_seconds, submitted_at = c.submitted_at, end_reason = c.end_reason,
    extra_seconds = c.extra_seconds, time_deadline = c.time_deadline, hard_close_at = c.hard_close_at,
    accommodations = c.accommodations::jsonb
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::int[], $6::timestamptz[],
            $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[], $11::int[],
            $12::int[], $13::timestamptz[], $14::timestamptz[], $15::text[], $16::timestamptz[])
     AS c(id, status, deadline, paused_at, extension_seconds, submitted_at, end_reason,
          read_status, read_deadline, read_paused_at, read_extension_seconds,
          extra_seconds, time_deadline, hard_close_at, accommodations, read_hard_close_at)
WHERE a.id = c.id AND a.status = c.read_status AND a.deadline = c.read_deadline
  AND a.paused_at IS NOT DISTINCT FROM c.read_paused_at AND a.extension_seconds = c.read_extension_seconds
  AND a.hard_close_at IS NOT DISTINCT FROM c.read_hard_close_at
RETURNING a.*
"""


def attempt_from(row: asyncpg.Record) -> Attempt:
    return Attempt(
        id=str(row["id"]),
        exam_id=str(row["exam_id"]),
        room_id=str(row["room_id"]),
        student_id=row["student_id"],
        student_name=row["student_name"],
        status=row["status"],
        started_at=row["started_at"],
        deadline=row["deadline"],
        paused_at=row["paused_at"],
        extension_seconds=row["extension_seconds"],
        end_reason=row["end_reason"],
        accommodations=tuple(json.loads(row["accommodations"])),
        submitted_at=row["submitted_at"],
        # Absent before 0012 (a new node reading before its migration ran).
        extra_seconds=row.get("extra_seconds") or 0,
        time_deadline=row.get("time_deadline"),
        hard_close_at=row.get("hard_close_at"),
    )


async def write_changed(conn: asyncpg.Connection, changes: Sequence[tuple[Attempt, Attempt]]) -> list[Attempt]:
    """Store each (as read, as changed) pair whose row is unchanged since it was read."""
    if not changes:
        return []
    rows = await conn.fetch(
        _WRITE_CHANGED,
        [uuid.UUID(new.id) for _, new in changes],
        [new.status for _, new in changes],
        [new.deadline for _, new in changes],
        [new.paused_at for _, new in changes],
        [new.extension_seconds for _, new in changes],
        [new.submitted_at for _, new in changes],
        [new.end_reason for _, new in changes],
        [old.status for old, _ in changes],
        [old.deadline for old, _ in changes],
        [old.paused_at for old, _ in changes],
        [old.extension_seconds for old, _ in changes],
        [new.extra_seconds for _, new in changes],
        [new.time_deadline for _, new in changes],
        [new.hard_close_at for _, new in changes],
        [json.dumps(list(new.accommodations)) for _, new in changes],
        [old.hard_close_at for old, _ in changes],
    )
    return [attempt_from(r) for r in rows]


async def change_locked(conn: asyncpg.Connection, attempt_id: str, change: Change) -> tuple[Attempt, bool] | None:
    """Inside a transaction: lock the attempt, apply `change` at the transaction's now()."""
    row = await conn.fetchrow("SELECT *, now() AS db_now FROM attempts WHERE id = $1 FOR UPDATE", uuid.UUID(attempt_id))
    if row is None:
        return None
    current = attempt_from(row)
    changed = change(current, row["db_now"])
    if changed is None:
        return current, False
    (written,) = await write_changed(conn, [(current, changed)])  # the lock guarantees the row
    return written, True


class AttemptStore:
    """The `AttemptRepository` of rooms/protocols.py, in Postgres."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def get(self, attempt_id: str) -> Attempt | None:
        row = await self._pool.fetchrow("SELECT * FROM attempts WHERE id = $1", uuid.UUID(attempt_id))
        return attempt_from(row) if row is not None else None

    async def join(
        self,
        room_id: str,
        student_id: str,
        seats: int,
        opening: Callable[[datetime, Terms], Attempt],
        consent_version: str | None,
    ) -> Joined | None:
        # One pooled connection for the whole join. A resume (most joins, and all of a
        # reconnect storm) needs no lock: two round trips.
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM attempts WHERE room_id = $1 AND student_id = $2", uuid.UUID(room_id), student_id
            )
            resumed = row is not None
            if row is None:
                row = await self._create(conn, room_id, student_id, seats, opening)
                if row is None:
                    return None
            attempt = attempt_from(row)
            state = await conn.fetchrow(
                _JOIN_STATE,
                uuid.UUID(attempt.id),
                uuid.UUID(attempt.exam_id),
                uuid.UUID(room_id),
                student_id,
                consent_version,
                "resume" if resumed else "join",
            )
        assert state is not None
        return Joined(
            attempt=attempt,
            answers=json.loads(state["answers"]),
            last_seq=int(state["last_seq"] or 0),
            score=float(state["score"]),
            resumed=resumed,
        )

    async def _create(
        self,
        conn: asyncpg.Connection,
        room_id: str,
        student_id: str,
        seats: int,
        opening: Callable[[datetime, Terms], Attempt],
    ) -> asyncpg.Record | None:
        async with conn.transaction():
            # Serialise first joins to one room so the seat count cannot be exceeded by a race.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", room_id)
            row = await conn.fetchrow(
                "SELECT * FROM attempts WHERE room_id = $1 AND student_id = $2", uuid.UUID(room_id), student_id
            )
            if row is not None:  # the same student's other tab won the race
                return row
            seat = await conn.fetchrow(
                "SELECT count(*) AS taken, now() AS db_now FROM attempts WHERE room_id = $1", uuid.UUID(room_id)
            )
            assert seat is not None
            if seat["taken"] >= seats:
                return None
            # The window and the accommodation as they are now: a change made before this join applies.
            new = opening(seat["db_now"], await terms_of(conn, room_id, student_id))
            row = await conn.fetchrow(
                "INSERT INTO attempts (id, exam_id, room_id, student_id, student_name, status, started_at, deadline,"
                " accommodations, extra_seconds, time_deadline, hard_close_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12) RETURNING *",
                uuid.UUID(new.id),
                uuid.UUID(new.exam_id),
                uuid.UUID(new.room_id),
                new.student_id,
                new.student_name,
                new.status,
                new.started_at,
                new.deadline,
                json.dumps(list(new.accommodations)),
                new.extra_seconds,
                new.time_deadline,
                new.hard_close_at,
            )
            assert row is not None
            return row

    async def change(self, attempt_id: str, change: Change) -> tuple[Attempt, bool] | None:
        async with self._pool.acquire() as conn, conn.transaction():
            return await change_locked(conn, attempt_id, change)

    async def expire_due(self, expire: Change) -> list[Attempt]:
        # The partial index (attempts_open_deadline) finds the candidates; the rule decides. A
        # candidate another node submitted, or a teacher paused or extended, since this read is
        # left alone by write_changed, and the next sweep looks again.
        async with self._pool.acquire() as conn:
            # Two partial indexes: the time is up, or the window closed hard (even while paused).
            rows = await conn.fetch(
                "SELECT *, now() AS db_now FROM attempts WHERE (status = 'active' AND deadline <= now())"
                " OR (status IN ('active', 'paused') AND hard_close_at IS NOT NULL AND hard_close_at <= now())"
            )
            changes = []
            for row in rows:
                current = attempt_from(row)
                changed = expire(current, row["db_now"])
                if changed is not None:
                    changes.append((current, changed))
            return await write_changed(conn, changes)

    async def answered(self, attempt_id: str) -> int:
        count = await self._pool.fetchval("SELECT count(*) FROM answers WHERE attempt_id = $1", uuid.UUID(attempt_id))
        return int(count)

    async def score(self, attempt_id: str) -> float:
        total = await self._pool.fetchval(
            "SELECT coalesce(sum(severity), 0) FROM violations WHERE attempt_id = $1", uuid.UUID(attempt_id)
        )
        return float(total)

    async def log(self, attempt_id: str, kind: str, details: dict[str, Any]) -> None:
        await self._pool.execute(
            "INSERT INTO attempt_log (attempt_id, kind, details) VALUES ($1, $2, $3::jsonb)",
            uuid.UUID(attempt_id),
            kind,
            json.dumps(details),
        )

    async def terminated_in(self, room_ids: set[str]) -> set[str]:
        # By room, not by attempt: at 10,000 students the list of attempt ids cost ~2 % of
        # the node's CPU to encode every 2 s (py-spy); (room_id, student_id) is indexed.
        rows = await self._pool.fetch(
            "SELECT id::text FROM attempts WHERE room_id = ANY($1::uuid[]) AND status = 'terminated'", list(room_ids)
        )
        return {r["id"] for r in rows}
