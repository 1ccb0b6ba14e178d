"""An exam's life in Postgres: list, edit (in place, keys corrected, or a new version),
duplicate, archive, delete; its rooms listed, renamed, resized, closed (docs/exams.md).

The rules of an edit are the domain's (rooms/versions.py); this module applies them in one
transaction with the family's rows locked, so two editors never both create version 3.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from rooms.catalog import Exam, Room, parse_uuid
from rooms.errors import Conflict, Invalid
from rooms.exam import ExamSpec
from rooms.tokens import Claims
from rooms.versions import EditOutcome, edit_kind, require_latest

from .catalog import Catalog, exam_from, questions_json, room_from, settings_json
from .database import Pool

RUNNING = ("active", "paused")

_LIST = """
SELECT e.*, count(*) OVER () AS total,
       (SELECT count(*) FROM attempts a JOIN exams f ON f.id = a.exam_id WHERE f.family_id = e.family_id) AS attempts,
       (SELECT count(*) FROM rooms r JOIN exams f ON f.id = r.exam_id WHERE f.family_id = e.family_id) AS rooms
FROM exams e
WHERE e.version = (SELECT max(version) FROM exams f WHERE f.family_id = e.family_id)
  AND ($1::text IS NULL OR e.created_by = $1)
  AND ($2::text = '' OR lower(e.title) LIKE '%' || lower($2) || '%')
  AND ($3::boolean OR e.archived_at IS NULL)
ORDER BY e.updated_at DESC, e.id
LIMIT $4 OFFSET $5
"""


def summary(row: asyncpg.Record) -> dict[str, Any]:
    exam = exam_from(row)
    return {
        "id": exam.id,
        "title": exam.title,
        "version": exam.version,
        "family_id": exam.family,
        "archived": exam.archived,
        "questions": len(exam.questions),
        "duration_minutes": exam.duration_seconds // 60,
        "created_by": exam.created_by,
        "created_at": exam.created_at.isoformat(),
        "updated_at": row["updated_at"].isoformat(),
        "attempts": row["attempts"],
        "rooms": row["rooms"],
    }


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class ExamVersions:
    def __init__(self, pool: Pool, catalog: Catalog) -> None:
        self._pool = pool
        self._catalog = catalog

    async def page(
        self, claims: Claims, *, q: str = "", limit: int = 20, offset: int = 0, archived: bool = False
    ) -> dict[str, Any]:
        """The newest version of each exam family: the caller's own (admins: every one)."""
        claims.require_role("admin", "teacher")
        owner = None if claims.role == "admin" else claims.sub
        rows = await self._pool.fetch(_LIST, owner, _escape_like(q), archived, limit, offset)
        total = rows[0]["total"] if rows else await self._count(owner, q, archived)
        return {"exams": [summary(r) for r in rows], "total": total, "limit": limit, "offset": offset}

    async def _count(self, owner: str | None, q: str, archived: bool) -> int:
        # An offset past the end returns no row to carry the window's total.
        count = await self._pool.fetchval(
            "SELECT count(*) FROM (" + _LIST.replace("LIMIT $4 OFFSET $5", "") + ") s",
            owner,
            _escape_like(q),
            archived,
        )
        return int(count)

    async def versions(self, exam: Exam) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(
            "SELECT e.id::text, e.version, e.created_at, (SELECT count(*) FROM attempts a WHERE a.exam_id = e.id)"
            " AS attempts FROM exams e WHERE e.family_id = $1 ORDER BY e.version",
            uuid.UUID(exam.family),
        )
        return [
            {
                "id": r["id"],
                "version": r["version"],
                "created_at": r["created_at"].isoformat(),
                "attempts": r["attempts"],
            }
            for r in rows
        ]

    async def edit(self, claims: Claims, exam_id: str, spec: ExamSpec) -> EditOutcome:
        """Apply an edit (rooms/versions.py decides how); the caller re-grades on `keys`."""
        exam = await self._catalog.exam_for(claims, exam_id, "exam.edit")
        async with self._pool.acquire() as conn, conn.transaction():
            # The family's rows, locked: one edit at a time per exam.
            family = await conn.fetch(
                "SELECT id, version FROM exams WHERE family_id = $1 ORDER BY version FOR UPDATE",
                uuid.UUID(exam.family),
            )
            started = await conn.fetchval("SELECT count(*) FROM attempts WHERE exam_id = $1", uuid.UUID(exam.id))
            kind = edit_kind(exam.spec(), spec, has_attempts=started > 0)
            if kind in ("in_place", "version"):
                # A key may be corrected on any version (its attempts are re-graded); anything
                # else goes to the newest, so a family never forks.
                require_latest(exam.version, family[-1]["version"])
            if kind in ("in_place", "keys"):
                await conn.execute(
                    "UPDATE exams SET title = $2, duration_seconds = $3, questions = $4::jsonb, rules = $5::jsonb,"
                    " settings = $6::jsonb, updated_at = now() WHERE id = $1",
                    uuid.UUID(exam.id),
                    spec.title,
                    spec.duration_minutes * 60,
                    questions_json(spec),
                    spec.rules.model_dump_json(),
                    settings_json(spec),
                )
                return EditOutcome(kind, exam.id, exam.id)
            if kind == "unchanged":
                return EditOutcome(kind, exam.id, exam.id)
            new_id = uuid.uuid4()
            await conn.execute(
                "INSERT INTO exams (id, title, duration_seconds, questions, rules, created_by, settings,"
                " family_id, version, parent_id, archived_at)"
                " VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7::jsonb, $8, $9, $10, $11)",
                new_id,
                spec.title,
                spec.duration_minutes * 60,
                questions_json(spec),
                spec.rules.model_dump_json(),
                exam.created_by,  # the family's owner stays the owner
                settings_json(spec),
                uuid.UUID(exam.family),
                exam.version + 1,
                uuid.UUID(exam.id),
                None,
            )
            # New attempts take the new version; started ones keep theirs (attempts.exam_id).
            await conn.execute(
                "UPDATE rooms SET exam_id = $2 WHERE exam_id IN (SELECT id FROM exams WHERE family_id = $1)",
                uuid.UUID(exam.family),
                new_id,
            )
            return EditOutcome("version", str(new_id), exam.id)

    async def duplicate(self, claims: Claims, exam_id: str, title: str | None) -> Exam:
        """A new exam (its own family, version 1) with this one's questions and settings."""
        exam = await self._catalog.exam_for(claims, exam_id, "exam.edit")
        spec = exam.spec().model_copy(update={"title": title or f"Copy of {exam.title}"[:200]})
        return await self._catalog.create_exam(spec, created_by=claims.sub)

    async def set_archived(self, claims: Claims, exam_id: str, archived: bool) -> Exam:
        exam = await self._catalog.exam_for(claims, exam_id, "exam.edit")
        await self._pool.execute(
            "UPDATE exams SET archived_at = CASE WHEN $2 THEN coalesce(archived_at, now()) END, updated_at = now()"
            " WHERE family_id = $1",
            uuid.UUID(exam.family),
            archived,
        )
        return await self._catalog.exam(exam.id)

    async def delete(self, claims: Claims, exam_id: str) -> dict[str, int]:
        """Delete every version of the exam with its rooms and attempts; refused while one runs."""
        exam = await self._catalog.exam_for(claims, exam_id, "exam.edit")
        async with self._pool.acquire() as conn, conn.transaction():
            family = uuid.UUID(exam.family)
            await conn.execute("SELECT id FROM exams WHERE family_id = $1 FOR UPDATE", family)
            counts = await conn.fetchrow(
                "SELECT count(*) FILTER (WHERE a.status = ANY($2::text[])) AS running, count(a.id) AS attempts,"
                " (SELECT count(*) FROM exams WHERE family_id = $1) AS versions,"
                " (SELECT count(*) FROM rooms r JOIN exams f ON f.id = r.exam_id WHERE f.family_id = $1) AS rooms"
                " FROM attempts a JOIN exams f ON f.id = a.exam_id WHERE f.family_id = $1",
                family,
                list(RUNNING),
            )
            assert counts is not None
            if counts["running"]:
                raise Conflict(
                    f"{counts['running']} attempt(s) of this exam are running; delete it once they end",
                    code="attempts_running",
                    fields={"count": str(counts["running"])},  # the pages' text says how many
                )
            # Rooms first: attempts reference rooms and exams, both ON DELETE CASCADE.
            await conn.execute("DELETE FROM rooms WHERE exam_id IN (SELECT id FROM exams WHERE family_id = $1)", family)
            await conn.execute("UPDATE exams SET parent_id = NULL WHERE family_id = $1", family)
            await conn.execute("DELETE FROM exams WHERE family_id = $1", family)
        return {"versions": counts["versions"], "rooms": counts["rooms"], "attempts": counts["attempts"]}

    # ---------------------------------------------------------------------------- rooms

    async def rooms(self, claims: Claims, exam_id: str) -> list[dict[str, Any]]:
        """The rooms of every version of the exam, with their attempt counts."""
        claims.require_role("admin", "teacher")  # a student reads their exam, not its rooms
        exam = await self._catalog.exam_for(claims, exam_id, "exam.read")
        rows = await self._pool.fetch(
            "SELECT r.*, (SELECT count(*) FROM attempts a WHERE a.room_id = r.id) AS attempts"
            " FROM rooms r JOIN exams f ON f.id = r.exam_id WHERE f.family_id = $1 ORDER BY r.created_at, r.id",
            uuid.UUID(exam.family),
        )
        return [{**room_from(r).to_json(), "attempts": r["attempts"]} for r in rows]

    async def update_room(
        self, claims: Claims, room_id: str, *, name: str | None, seats: int | None, closed: bool | None
    ) -> Room:
        room, _ = await self._catalog.room_for(claims, room_id, "room.edit")
        async with self._pool.acquire() as conn, conn.transaction():
            # The joins' lock (rooms/store/attempts.py): no first join slips past a lower seat count.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", room.id)
            if seats is not None:
                taken = await conn.fetchval("SELECT count(*) FROM attempts WHERE room_id = $1", uuid.UUID(room.id))
                if seats < taken:
                    raise Invalid(
                        f"{taken} seats are taken already; the room needs at least that many",
                        fields={"seats": f"at least {taken}"},
                    )
            row = await conn.fetchrow(
                "UPDATE rooms SET name = coalesce($2, name), seats = coalesce($3, seats),"
                " closed_at = CASE WHEN $4::boolean IS NULL THEN closed_at WHEN $4 THEN coalesce(closed_at, now())"
                " END WHERE id = $1 RETURNING *",
                parse_uuid(room.id, "room"),
                name,
                seats,
                closed,
            )
        assert row is not None
        return room_from(row)
