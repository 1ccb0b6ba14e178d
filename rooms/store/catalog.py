"""Exams and rooms in Postgres: create, read, and the access check that needs the owner."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from rooms.errors import Forbidden, NotFound
from rooms.exam import ExamSpec, Question, Rules
from rooms.tokens import Claims

from .database import Pool


@dataclass(frozen=True, slots=True)
class Exam:
    id: str
    title: str
    duration_seconds: int
    questions: tuple[Question, ...]
    rules: Rules
    created_by: str
    created_at: datetime

    def question(self, question_id: str) -> Question | None:
        for q in self.questions:
            if q.id == question_id:
                return q
        return None

    def to_json(self, *, for_student: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "duration_minutes": self.duration_seconds // 60,
            "duration_seconds": self.duration_seconds,
            "questions": [q.model_dump(mode="json") for q in self.questions],
        }
        # Students may know how long evidence about them is kept (the consent notice says so).
        data["evidence_retention_days"] = self.rules.evidence_retention_days
        data["analysis_enabled"] = self.rules.analysis.enabled
        data["speaking_enabled"] = self.rules.analysis.speaking_for()  # the consent names the microphone
        if not for_student:
            data["rules"] = self.rules.model_dump(mode="json")
            data["created_by"] = self.created_by
            data["created_at"] = self.created_at.isoformat()
        return data


@dataclass(frozen=True, slots=True)
class Room:
    id: str
    exam_id: str
    name: str
    seats: int
    host_node: str | None
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "exam_id": self.exam_id, "name": self.name, "seats": self.seats,
            "host_node": self.host_node, "created_at": self.created_at.isoformat(),
        }


def parse_uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise NotFound(f"no {what} {value!r}", code="not_found") from None


def _exam(row: asyncpg.Record) -> Exam:
    questions = json.loads(row["questions"])
    return Exam(
        id=str(row["id"]),
        title=row["title"],
        duration_seconds=row["duration_seconds"],
        questions=tuple(Question.model_validate(q) for q in questions),
        rules=Rules.model_validate(json.loads(row["rules"])),
        created_by=row["created_by"],
        created_at=row["created_at"],
    )


def _room(row: asyncpg.Record) -> Room:
    return Room(
        id=str(row["id"]), exam_id=str(row["exam_id"]), name=row["name"], seats=row["seats"],
        host_node=row["host_node"], created_at=row["created_at"],
    )


class Catalog:
    """Reads and writes exams and rooms; every read by a caller is scope-checked here."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def create_exam(self, spec: ExamSpec, created_by: str) -> Exam:
        row = await self._pool.fetchrow(
            "INSERT INTO exams (id, title, duration_seconds, questions, rules, created_by)"
            " VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6) RETURNING *",
            uuid.uuid4(), spec.title, spec.duration_minutes * 60,
            json.dumps([q.model_dump(mode="json") for q in spec.questions]),
            spec.rules.model_dump_json(), created_by,
        )
        assert row is not None
        return _exam(row)

    async def exam(self, exam_id: str) -> Exam:
        row = await self._pool.fetchrow(
            "SELECT * FROM exams WHERE id = $1", parse_uuid(exam_id, "exam")
        )
        if row is None:
            raise NotFound(f"no exam {exam_id}")
        return _exam(row)

    async def exam_for(self, claims: Claims, exam_id: str) -> Exam:
        exam = await self.exam(exam_id)
        if claims.role == "admin" or (claims.role == "teacher" and exam.created_by == claims.sub):
            return exam
        if claims.role == "teacher" and claims.rooms:
            allowed = await self._pool.fetchval(
                "SELECT count(*) FROM rooms WHERE exam_id = $1 AND id::text = ANY($2::text[])",
                uuid.UUID(exam.id), list(claims.rooms),
            )
            if allowed:
                return exam
        if claims.role == "student" and claims.exam_id == exam.id:
            return exam
        raise Forbidden("this token does not give access to that exam")

    async def create_room(self, exam: Exam, name: str, seats: int) -> Room:
        row = await self._pool.fetchrow(
            "INSERT INTO rooms (id, exam_id, name, seats) VALUES ($1, $2, $3, $4) RETURNING *",
            uuid.uuid4(), uuid.UUID(exam.id), name, seats,
        )
        assert row is not None
        return _room(row)

    async def room(self, room_id: str) -> Room:
        row = await self._pool.fetchrow("SELECT * FROM rooms WHERE id = $1", parse_uuid(room_id, "room"))
        if row is None:
            raise NotFound(f"no room {room_id}")
        return _room(row)

    async def room_for(self, claims: Claims, room_id: str) -> tuple[Room, Exam]:
        """The room and its exam, if `claims` may see them (403 otherwise, 404 if absent)."""
        room = await self.room(room_id)
        exam = await self.exam(room.exam_id)
        claims.check_room(room.id, exam.created_by)
        return room, exam

    async def set_host(self, room_id: str, node_id: str | None) -> None:
        await self._pool.execute(
            "UPDATE rooms SET host_node = $2 WHERE id = $1", uuid.UUID(room_id), node_id
        )
