"""Roles per room in Postgres: who holds which role in a room, and the one access decision.

A teacher's role in a room is the strongest of (docs/accounts.md, "Roles"):
- owner, if they created the room's exam (always; it cannot be removed);
- the role stored in `room_members` (added by an owner, by email);
- proctor, if their token's `rooms` claim names the room (minted teacher tokens).
`RoomAccess.authorize` is the only place that turns claims into a room role and asks
`rooms.roles` whether it suffices; the catalog, classroom, review, live view and REST routes
all come through it.
"""

from __future__ import annotations

import uuid
from typing import Any

from rooms.errors import Conflict
from rooms.roles import ROOM_ROLES, Action, RoomRole, require, strongest
from rooms.tokens import Claims

from .audit import AuditLog
from .database import Pool

_MEMBERS = """
SELECT m.subject, m.role, m.added_by, m.added_at, a.email, a.display_name AS name
FROM room_members m LEFT JOIN accounts a ON a.id::text = m.subject
WHERE m.room_id = $1
ORDER BY m.added_at, m.subject
"""

# Rooms with their exam and the counts a home page shows; presence (online) is not in Postgres.
_ROOMS = """
SELECT r.id, r.name, r.seats, r.exam_id, r.created_at, e.title AS exam_title, e.created_by,
       (SELECT count(*) FROM attempts a WHERE a.room_id = r.id) AS attempts,
       (SELECT count(*) FROM attempts a WHERE a.room_id = r.id
         AND a.status IN ('submitted', 'terminated')) AS submitted,
       (SELECT count(DISTINCT v.attempt_id) FROM violations v JOIN attempts a ON a.id = v.attempt_id
         WHERE a.room_id = r.id) AS flagged,
       (SELECT array_agg(a.id::text) FROM attempts a WHERE a.room_id = r.id
         AND a.status NOT IN ('submitted', 'terminated')) AS open_attempts
FROM rooms r JOIN exams e ON e.id = r.exam_id
WHERE {where}
ORDER BY r.created_at DESC, r.id
LIMIT 1000
"""


def _role(value: str | None) -> RoomRole | None:
    for role in ROOM_ROLES:
        if value == role:
            return role
    return None


class RoomAccess:
    """Room roles: read them, decide with them, and let owners change them (audited)."""

    def __init__(self, pool: Pool, audit: AuditLog) -> None:
        self._pool = pool
        self._audit = audit

    async def role_in(self, claims: Claims, room_id: str, exam_created_by: str) -> RoomRole | None:
        if claims.role != "teacher":
            return None
        stored = await self._pool.fetchval(
            "SELECT role FROM room_members WHERE room_id = $1 AND subject = $2", uuid.UUID(room_id), claims.sub
        )
        return strongest(
            (
                "owner" if exam_created_by == claims.sub else None,
                _role(stored),
                "proctor" if room_id in claims.rooms else None,
            )
        )

    async def role_in_exam(self, claims: Claims, exam_id: str, exam_created_by: str) -> RoomRole | None:
        """The strongest role the teacher holds in any room of the exam."""
        if claims.role != "teacher":
            return None
        if exam_created_by == claims.sub:
            return "owner"
        rows = await self._pool.fetch(
            # Any room of any version of the exam: rooms move to a family's newest version.
            "WITH fam AS (SELECT id FROM exams WHERE family_id = (SELECT family_id FROM exams WHERE id = $1))"
            " SELECT m.role FROM room_members m JOIN rooms r ON r.id = m.room_id"
            " WHERE r.exam_id IN (SELECT id FROM fam) AND m.subject = $2"
            " UNION ALL SELECT 'proctor' FROM rooms r WHERE r.exam_id IN (SELECT id FROM fam)"
            " AND r.id::text = ANY($3::text[])",
            uuid.UUID(exam_id),
            claims.sub,
            list(claims.rooms),
        )
        return strongest(_role(r[0]) for r in rows)

    async def authorize(self, claims: Claims, action: Action, room_id: str, exam_created_by: str) -> RoomRole | None:
        """The caller's role in the room if it allows `action` (Forbidden otherwise; None for admins)."""
        role = await self.role_in(claims, room_id, exam_created_by)
        require(claims, action, role)
        return role

    async def authorize_exam(
        self, claims: Claims, action: Action, exam_id: str, exam_created_by: str
    ) -> RoomRole | None:
        role = await self.role_in_exam(claims, exam_id, exam_created_by)
        require(claims, action, role)
        return role

    # ------------------------------------------------------------------------- members

    async def members(self, room_id: str, exam_created_by: str) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(_MEMBERS, uuid.UUID(room_id))
        listed = [
            {
                "subject": r["subject"],
                "role": r["role"],
                "email": r["email"],
                "name": r["name"],
                "added_by": r["added_by"],
                "added_at": r["added_at"].isoformat(),
                "source": "member",
            }
            for r in rows
        ]
        # The exam's creator owns its rooms without a row; shown so nobody wonders who else can.
        creator = {
            "subject": exam_created_by,
            "role": "owner",
            "email": None,
            "name": None,
            "added_by": None,
            "added_at": None,
            "source": "exam creator",
        }
        return [creator, *listed]

    async def set_role(
        self, claims: Claims, room_id: str, subject: str, role: RoomRole, *, email: str | None = None
    ) -> None:
        """Give `subject` `role` in the room (replacing a previous one); audited."""
        previous = await self._pool.fetchval(
            "INSERT INTO room_members AS m (room_id, subject, role, added_by) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (room_id, subject) DO UPDATE SET role = EXCLUDED.role, added_by = EXCLUDED.added_by,"
            " added_at = now()"
            " RETURNING (SELECT role FROM room_members WHERE room_id = $1 AND subject = $2)",
            uuid.UUID(room_id),
            subject,
            role,
            claims.sub,
        )
        details: dict[str, Any] = {"subject": subject, "role": role, "previous": previous}
        if email is not None:
            details["email"] = email
        await self._audit.record(claims, "room.member.set", "room", room_id, details)

    async def remove(self, claims: Claims, room_id: str, subject: str, exam_created_by: str) -> bool:
        """Remove `subject`'s stored role; audited. False if they held none (idempotent)."""
        if subject == exam_created_by:
            raise Conflict("the exam's creator always owns its rooms", code="invalid_state")
        previous = await self._pool.fetchval(
            "DELETE FROM room_members WHERE room_id = $1 AND subject = $2 RETURNING role",
            uuid.UUID(room_id),
            subject,
        )
        if previous is not None:
            await self._audit.record(
                claims, "room.member.remove", "room", room_id, {"subject": subject, "previous": previous}
            )
        return previous is not None

    # ---------------------------------------------------------------------------- mine

    async def rooms_of(self, claims: Claims) -> list[dict[str, Any]]:
        """Rooms where the caller holds a role (admins: every room), with my role and counts.

        Each entry carries `open_attempts` (ids of attempts not yet ended) for the caller to
        count who is online from presence, which is not stored here."""
        if claims.role == "admin":
            rows = await self._pool.fetch(_ROOMS.format(where="true"))
        elif claims.role == "teacher":
            rows = await self._pool.fetch(
                _ROOMS.format(
                    where=(
                        "e.created_by = $1 OR r.id::text = ANY($2::text[])"
                        " OR r.id IN (SELECT room_id FROM room_members WHERE subject = $1)"
                    )
                ),
                claims.sub,
                list(claims.rooms),
            )
        else:
            return []
        stored: dict[str, RoomRole | None] = {}
        if claims.role == "teacher" and rows:
            found = await self._pool.fetch(
                "SELECT room_id::text, role FROM room_members WHERE subject = $1 AND room_id = ANY($2::uuid[])",
                claims.sub,
                [r["id"] for r in rows],
            )
            stored = {r[0]: _role(r[1]) for r in found}
        result = []
        for r in rows:
            room_id = str(r["id"])
            if claims.role == "admin":
                role: str | None = "admin"
            else:
                role = strongest(
                    (
                        "owner" if r["created_by"] == claims.sub else None,
                        stored.get(room_id),
                        "proctor" if room_id in claims.rooms else None,
                    )
                )
            result.append(
                {
                    "id": room_id,
                    "name": r["name"],
                    "seats": r["seats"],
                    "exam_id": str(r["exam_id"]),
                    "exam_title": r["exam_title"],
                    "created_at": r["created_at"].isoformat(),
                    "role": role,
                    "attempts": r["attempts"],
                    "submitted": r["submitted"],
                    "flagged": r["flagged"],
                    "open_attempts": list(r["open_attempts"] or []),
                }
            )
        return result
