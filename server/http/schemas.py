"""REST request bodies: frozen, validated, each with a working example for the OpenAPI file."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from rooms.exam import ExamSpec, Schedule

__all__ = [
    "ExamSpec",
    "InviteRequest",
    "MemberAdd",
    "MemberRemove",
    "ReviewDecision",
    "RevokeRequest",
    "RoomCreate",
    "ScheduleBody",
    "StudentRef",
    "TokenRequest",
]

_Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@+-]+$")]


class RoomCreate(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_extra={"example": {"name": "Hall A", "seats": 30}}
    )

    name: str = Field(min_length=1, max_length=200)
    seats: int = Field(ge=1, le=1000)


class StudentRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: _Id
    name: str = Field(default="", max_length=200)


class InviteRequest(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "example": {
                "students": [{"id": "s-001", "name": "Ada Lovelace"}, {"id": "s-002", "name": "Alan Turing"}],
                "ttl_hours": 48,
            }
        },
    )

    students: tuple[StudentRef, ...] = Field(min_length=1, max_length=1000)
    ttl_hours: float = Field(default=72, gt=0, le=24 * 90)


class TokenRequest(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "example": {"role": "teacher", "sub": "t-42", "name": "Ms Rivera", "rooms": [], "ttl_hours": 12}
        },
    )

    role: Literal["teacher", "admin"]
    sub: _Id
    name: str = Field(default="", max_length=200)
    rooms: tuple[Annotated[str, Field(min_length=1, max_length=64)], ...] = Field(default=(), max_length=500)
    ttl_hours: float = Field(default=12, gt=0, le=24 * 365)


class ReviewDecision(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_extra={"example": {"decision": "dismissed", "note": "glare"}}
    )

    decision: Literal["confirmed", "dismissed"]
    note: str = Field(default="", max_length=1000)


class RevokeRequest(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"example": {"token_id": "5b1f0c9e2d7a4c3b8e6f1a2b3c4d5e6f"}},
    )

    token: str | None = Field(default=None, max_length=4096, description="the token itself, or")
    token_id: str | None = Field(default=None, max_length=64, description="its jti claim")


# An address as accounts store it; the directory, not this pattern, decides whether it exists.
_Email = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]


class MemberAdd(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"example": {"email": "colleague@example.org", "role": "reviewer"}},
    )

    email: _Email
    role: Literal["owner", "proctor", "reviewer"]


class MemberRemove(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"example": {"email": "colleague@example.org"}},
    )

    email: _Email | None = Field(default=None, description="the colleague's account email, or")
    subject: str | None = Field(default=None, min_length=1, max_length=128, description="their account id")


class ScheduleBody(Schedule):
    """The body of `PUT …/schedule`: `rooms.exam.Schedule`, times with their offset."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "example": {
                "opens_at": "2026-01-05T09:00:00+01:00",
                "closes_at": "2099-12-31T12:00:00+01:00",
                "latest_start": "2099-12-31T11:00:00+01:00",
                "hard_close": True,
            }
        },
    )
