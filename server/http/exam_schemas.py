"""REST bodies and queries of the exam lifecycle and grading routes (server/http/exams_api.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rooms.exam import Pool, Question, Rules, Schedule


class ExamPatch(BaseModel):
    """Some top-level fields of an exam; the rest stay as they are (then validated as a whole)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"example": {"title": "Algebra midterm (resit)", "shuffle_questions": True}},
    )

    title: str | None = Field(default=None, min_length=1, max_length=200)
    duration_minutes: int | None = Field(default=None, ge=1, le=24 * 60)
    questions: tuple[Question, ...] | None = Field(default=None, min_length=1, max_length=500)
    rules: Rules | None = None
    shuffle_questions: bool | None = None
    shuffle_options: bool | None = None
    pools: tuple[Pool, ...] | None = Field(default=None, max_length=100)
    schedule: Schedule | None = None

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(mode="json", exclude_unset=True).items() if v is not None}


class ExamDuplicate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra={"example": {"title": "Algebra B"}})

    title: str | None = Field(default=None, min_length=1, max_length=200, description="default: Copy of …")


class ExamArchive(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra={"example": {"archived": False}})

    archived: bool = Field(strict=True)


class ExamListQuery(BaseModel):
    """`GET /api/exams?q=&limit=&offset=&archived=`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    q: str = Field(default="", max_length=200, description="part of the title, case ignored")
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=1_000_000)
    archived: bool = Field(default=False, description="also list archived exams")


class RoomUpdate(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_extra={"example": {"name": "Hall B", "seats": 40, "closed": False}}
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)
    seats: int | None = Field(default=None, ge=1, le=1000)
    closed: bool | None = Field(default=None, strict=True, description="a closed room takes no new students")

    @model_validator(mode="after")
    def _something(self) -> RoomUpdate:
        if self.name is None and self.seats is None and self.closed is None:
            raise ValueError("name, seats or closed")
        return self


class GradeSet(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"example": {"points": 1, "comment": "Clear definition, no example."}},
    )

    points: float = Field(ge=0, le=1000, allow_inf_nan=False, description="0 .. the question's points")
    comment: str = Field(default="", max_length=5000)
