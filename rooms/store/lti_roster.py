"""A linked room's expected students, as the platform's Names and Role Provisioning Service
listed them (lti_roster), and who of them has not joined the room yet."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from .database import Pool


@dataclass(frozen=True, slots=True)
class RosterMember:
    subject: str
    student_id: str
    name: str
    email: str
    roles: tuple[str, ...]
    status: str


class RosterStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def replace(self, room_id: str, platform_id: str, members: list[RosterMember]) -> int:
        """The import is the platform's whole list: students it no longer lists leave the roster."""
        room = uuid.UUID(room_id)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM lti_roster WHERE room_id = $1", room)
            await conn.executemany(
                "INSERT INTO lti_roster (room_id, platform_id, subject, student_id, name, email, roles, status)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (room_id, subject) DO NOTHING",
                [
                    (room, uuid.UUID(platform_id), m.subject, m.student_id, m.name, m.email, list(m.roles), m.status)
                    for m in members
                ],
            )
        return len(members)

    async def read(self, room_id: str) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(
            "SELECT r.student_id, r.name, r.email, r.status, r.imported_at,"
            " EXISTS (SELECT 1 FROM attempts a WHERE a.room_id = r.room_id AND a.student_id = r.student_id) AS joined"
            " FROM lti_roster r WHERE r.room_id = $1 ORDER BY r.name, r.student_id",
            uuid.UUID(room_id),
        )
        return [
            {
                "student_id": r["student_id"],
                "name": r["name"],
                "email": r["email"],
                "status": r["status"],
                "joined": r["joined"],
                "imported_at": r["imported_at"].isoformat(),
            }
            for r in rows
        ]
