"""Windows and accommodations in Postgres: an exam's and a room's schedule, a room's
per-student accommodations, and the terms a first join reads (rooms/accommodations.py).

An exam's window is kept with its other settings (`exams.settings->'schedule'`, migration
0011), on every version of the exam alike; a room's own (`rooms.schedule`, 0012) replaces it as
a whole (a room is one sitting: "Monday 9:00 group"); neither set means no window. Access is
decided by the caller (`rooms/scheduling.py`).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from rooms.accommodations import NO_ACCOMMODATION, Accommodation, Terms
from rooms.exam import Schedule

from .database import Pool

# The room's window (its own, else its exam's) and the student's accommodation, in one read.
_TERMS = """
SELECT coalesce(r.schedule, e.settings->'schedule') AS window,
       ra.extra_percent, ra.extra_minutes, ra.rules_off
FROM rooms r JOIN exams e ON e.id = r.exam_id
LEFT JOIN room_accommodations ra ON ra.room_id = r.id AND ra.student_id = $2
WHERE r.id = $1
"""

_ACCOMMODATIONS = """
SELECT ra.student_id, ra.extra_percent, ra.extra_minutes, ra.rules_off, ra.note, ra.updated_by, ra.updated_at,
       a.id AS attempt_id, a.student_name, a.status, a.deadline, a.extra_seconds
FROM room_accommodations ra
LEFT JOIN attempts a ON a.room_id = ra.room_id AND a.student_id = ra.student_id
WHERE ra.room_id = $1
ORDER BY ra.student_id
"""

_UPSERT = """
INSERT INTO room_accommodations (room_id, student_id, extra_percent, extra_minutes, rules_off, note, updated_by)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)
ON CONFLICT (room_id, student_id) DO UPDATE
SET extra_percent = excluded.extra_percent, extra_minutes = excluded.extra_minutes, rules_off = excluded.rules_off,
    note = excluded.note, updated_by = excluded.updated_by, updated_at = now()
RETURNING student_id, extra_percent, extra_minutes, rules_off, note, updated_by, updated_at
"""


def schedule_from(value: str | None) -> Schedule | None:
    """A stored window; None for none (NULL, or one without any limit)."""
    if value is None:
        return None
    schedule = Schedule.model_validate_json(value)
    return None if schedule == Schedule() else schedule


# Every version of the exam (rooms move to the newest one; attempts keep theirs).
_FAMILY = "SELECT family_id FROM exams WHERE id = $1"


def _accommodation(row: asyncpg.Record) -> Accommodation:
    return Accommodation(
        extra_percent=row["extra_percent"],
        extra_minutes=row["extra_minutes"],
        rules_off=tuple(json.loads(row["rules_off"])),
        note=row["note"] if "note" in row.keys() else "",
    )


def accommodation_json(row: asyncpg.Record) -> dict[str, Any]:
    data: dict[str, Any] = {
        "student_id": row["student_id"],
        "extra_percent": row["extra_percent"],
        "extra_minutes": row["extra_minutes"],
        "rules_off": json.loads(row["rules_off"]),
        "note": row["note"],
        "updated_by": row["updated_by"],
        "updated_at": row["updated_at"].isoformat(),
    }
    if "attempt_id" in row.keys():
        data["attempt"] = (
            None
            if row["attempt_id"] is None
            else {
                "id": str(row["attempt_id"]),
                "student_name": row["student_name"],
                "status": row["status"],
                "deadline": row["deadline"].isoformat(),
                "extra_seconds": row["extra_seconds"],
            }
        )
    return data


async def terms_of(conn: asyncpg.Connection, room_id: str, student_id: str) -> Terms:
    """The room's window and the student's accommodation, inside the join's transaction."""
    row = await conn.fetchrow(_TERMS, uuid.UUID(room_id), student_id)
    if row is None:
        return Terms()
    window = schedule_from(row["window"]) or Schedule()
    accommodation = _accommodation(row) if row["extra_percent"] is not None else NO_ACCOMMODATION
    return Terms(window=window, accommodation=accommodation)


class ScheduleStore:
    """The `ScheduleRepository` of rooms/scheduling.py, in Postgres."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def exam_schedule(self, exam_id: str) -> Schedule | None:
        value = await self._pool.fetchval("SELECT settings->'schedule' FROM exams WHERE id = $1", uuid.UUID(exam_id))
        return schedule_from(value)

    async def room_schedule(self, room_id: str) -> Schedule | None:
        return schedule_from(await self._pool.fetchval("SELECT schedule FROM rooms WHERE id = $1", uuid.UUID(room_id)))

    async def set_exam_schedule(self, exam_id: str, schedule: Schedule | None) -> None:
        # Not a new version: a window is when the exam is taken, not what it asks.
        await self._pool.execute(
            "UPDATE exams SET settings = jsonb_set(settings, '{schedule}', $2::jsonb), updated_at = now()"
            f" WHERE family_id = ({_FAMILY})",
            uuid.UUID(exam_id),
            (schedule or Schedule()).model_dump_json(),
        )

    async def set_room_schedule(self, room_id: str, schedule: Schedule | None) -> None:
        # A window without any limit is stored as none: the room follows its exam's again.
        await self._pool.execute(
            "UPDATE rooms SET schedule = $2::jsonb WHERE id = $1",
            uuid.UUID(room_id),
            schedule.model_dump_json() if schedule is not None and schedule != Schedule() else None,
        )

    async def windows(self, exam_id: str) -> dict[str, Schedule]:
        """room id -> its window (its own, else the exam's; empty: none), for every room of the
        exam's versions."""
        rows = await self._pool.fetch(
            "SELECT r.id::text AS id, coalesce(r.schedule, e.settings->'schedule') AS window"
            f" FROM rooms r JOIN exams e ON e.id = r.exam_id WHERE e.family_id = ({_FAMILY})",
            uuid.UUID(exam_id),
        )
        return {r["id"]: schedule_from(r["window"]) or Schedule() for r in rows}

    async def running(self, room_id: str, student_id: str | None = None) -> list[str]:
        """Ids of the room's running attempts (one student's, when named)."""
        rows = await self._pool.fetch(
            "SELECT id::text FROM attempts WHERE room_id = $1 AND status IN ('active', 'paused')"
            " AND ($2::text IS NULL OR student_id = $2::text)",
            uuid.UUID(room_id),
            student_id,
        )
        return [r["id"] for r in rows]

    async def accommodations(self, room_id: str) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(_ACCOMMODATIONS, uuid.UUID(room_id))
        return [accommodation_json(r) for r in rows]

    async def accommodation(self, room_id: str, student_id: str) -> Accommodation | None:
        row = await self._pool.fetchrow(
            "SELECT * FROM room_accommodations WHERE room_id = $1 AND student_id = $2", uuid.UUID(room_id), student_id
        )
        return _accommodation(row) if row is not None else None

    async def put_accommodation(
        self, room_id: str, student_id: str, accommodation: Accommodation, by: str
    ) -> dict[str, Any]:
        row = await self._pool.fetchrow(
            _UPSERT,
            uuid.UUID(room_id),
            student_id,
            accommodation.extra_percent,
            accommodation.extra_minutes,
            json.dumps(list(accommodation.rules_off)),
            accommodation.note,
            by,
        )
        assert row is not None
        return accommodation_json(row)

    async def delete_accommodation(self, room_id: str, student_id: str) -> bool:
        result: str = await self._pool.execute(
            "DELETE FROM room_accommodations WHERE room_id = $1 AND student_id = $2", uuid.UUID(room_id), student_id
        )
        return result.split()[-1] != "0"
