"""Exams and rooms in Postgres: create, and read them for a caller (through `RoomAccess`).

Versions, edits, archive and delete are in rooms/store/exam_versions.py."""

from __future__ import annotations

import json
import uuid

import asyncpg

from rooms.catalog import SETTINGS_FIELDS, Exam, Room, parse_uuid
from rooms.errors import Conflict, Forbidden, NotFound
from rooms.exam import ExamSpec, Question, Rules, Schedule
from rooms.exam import Pool as QuestionPool
from rooms.roles import Action
from rooms.tokens import Claims

from .database import Pool
from .members import RoomAccess
from .schedule import schedule_from

# Exam, Room and parse_uuid are the domain's (rooms/catalog.py); importers of this module keep them.
__all__ = ["Catalog", "Exam", "Room", "parse_uuid"]


def exam_from(row: asyncpg.Record) -> Exam:
    questions = json.loads(row["questions"])
    # .get: a new node may read before migration 0011 is applied (tests/rooms/test_upgrade_compat.py).
    settings = json.loads(row.get("settings") or "{}")
    return Exam(
        id=str(row["id"]),
        title=row["title"],
        duration_seconds=row["duration_seconds"],
        questions=tuple(Question.model_validate(q) for q in questions),
        rules=Rules.model_validate(json.loads(row["rules"])),
        created_by=row["created_by"],
        created_at=row["created_at"],
        shuffle_questions=bool(settings.get("shuffle_questions", False)),
        shuffle_options=bool(settings.get("shuffle_options", False)),
        pools=tuple(QuestionPool.model_validate(p) for p in settings.get("pools", ())),
        schedule=Schedule.model_validate(settings.get("schedule") or {}),
        family_id=str(row.get("family_id") or row["id"]),
        version=row.get("version") or 1,
        parent_id=str(row["parent_id"]) if row.get("parent_id") is not None else None,
        archived=row.get("archived_at") is not None,
    )


def settings_json(spec: ExamSpec) -> str:
    """The spec's fields stored in the `settings` jsonb column."""
    return json.dumps(spec.model_dump(mode="json", include=set(SETTINGS_FIELDS)))


def questions_json(spec: ExamSpec) -> str:
    return json.dumps([q.model_dump(mode="json") for q in spec.questions])


# Kept for importers of the previous name.
_exam = exam_from


def _room(row: asyncpg.Record) -> Room:
    return Room(
        id=str(row["id"]),
        exam_id=str(row["exam_id"]),
        name=row["name"],
        seats=row["seats"],
        host_node=row["host_node"],
        created_at=row["created_at"],
        closed=row.get("closed_at") is not None,
        schedule=schedule_from(row.get("schedule")),  # absent before 0012
    )


room_from = _room


class Catalog:
    """Reads and writes exams and rooms; every read by a caller is scope-checked here."""

    def __init__(self, pool: Pool, access: RoomAccess) -> None:
        self._pool = pool
        self.access = access

    async def create_exam(self, spec: ExamSpec, created_by: str) -> Exam:
        row = await self._pool.fetchrow(
            "INSERT INTO exams (id, title, duration_seconds, questions, rules, created_by, settings)"
            " VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7::jsonb) RETURNING *",
            uuid.uuid4(),
            spec.title,
            spec.duration_minutes * 60,
            questions_json(spec),
            spec.rules.model_dump_json(),
            created_by,
            settings_json(spec),
        )
        assert row is not None
        return _exam(row)

    async def exam(self, exam_id: str) -> Exam:
        row = await self._pool.fetchrow("SELECT * FROM exams WHERE id = $1", parse_uuid(exam_id, "exam"))
        if row is None:
            raise NotFound(f"no exam {exam_id}")
        return _exam(row)

    async def exam_for(self, claims: Claims, exam_id: str, action: Action = "exam.read") -> Exam:
        """The exam, if `claims` may do `action` on it (403 otherwise, 404 if absent)."""
        exam = await self.exam(exam_id)
        if claims.role == "student":
            # A student reads their own exam, and nothing else of it.
            if action == "exam.read" and claims.exam_id == exam.id:
                return exam
            raise Forbidden("this token does not give access to that exam")
        await self.access.authorize_exam(claims, action, exam.id, exam.created_by)
        return exam

    async def create_room(self, exam: Exam, name: str, seats: int) -> Room:
        if exam.archived:
            raise Conflict("this exam is archived: it takes no new rooms", code="archived")
        # A room always opens on the family's newest version (new attempts take that one).
        row = await self._pool.fetchrow(
            "INSERT INTO rooms (id, exam_id, name, seats)"
            " SELECT $1, e.id, $3, $4 FROM exams e WHERE e.family_id = $2 ORDER BY e.version DESC LIMIT 1"
            " RETURNING *",
            uuid.uuid4(),
            uuid.UUID(exam.family),
            name,
            seats,
        )
        assert row is not None
        return _room(row)

    async def room(self, room_id: str) -> Room:
        row = await self._pool.fetchrow("SELECT * FROM rooms WHERE id = $1", parse_uuid(room_id, "room"))
        if row is None:
            raise NotFound(f"no room {room_id}")
        return _room(row)

    async def room_for(self, claims: Claims, room_id: str, action: Action) -> tuple[Room, Exam]:
        """The room and its exam, if `claims` may do `action` there (403 otherwise, 404 if absent)."""
        room = await self.room(room_id)
        exam = await self.exam(room.exam_id)
        await self.access.authorize(claims, action, room.id, exam.created_by)
        return room, exam

    async def set_host(self, room_id: str, node_id: str | None) -> None:
        await self._pool.execute("UPDATE rooms SET host_node = $2 WHERE id = $1", uuid.UUID(room_id), node_id)
