"""Typed Socket.IO payloads: every inbound message is parsed into one of these first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBytes, field_validator

from core.vocabulary import CLIENT_KINDS

_FROZEN = ConfigDict(frozen=True, extra="forbid")
Seq = Annotated[int, Field(ge=1, le=2**62)]
Text = Annotated[str, Field(min_length=1, max_length=2000)]


class Empty(BaseModel):
    model_config = _FROZEN


class Join(BaseModel):
    model_config = _FROZEN

    consent_version: str | None = Field(default=None, max_length=64)


class Answer(BaseModel):
    model_config = _FROZEN

    question_id: str = Field(min_length=1, max_length=64)
    value: int | list[int] | str
    seq: Seq


class ClientEvent(BaseModel):
    model_config = _FROZEN

    seq: Seq
    kind: Literal[CLIENT_KINDS]  # type: ignore[valid-type]
    occurred_at: datetime
    details: dict[str, Any] = Field(default_factory=dict)

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("occurred_at needs a time zone (ISO 8601 with Z or an offset)")
        return value

    @field_validator("details")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > 20:
            raise ValueError("at most 20 detail fields")
        return value


class Hand(BaseModel):
    model_config = _FROZEN

    text: str = Field(default="", max_length=500)
    raised: bool = True


class Rtc(BaseModel):
    """WebRTC signaling: to the server's analysis peer, or between a teacher and a student."""

    model_config = _FROZEN

    target: Literal["server", "peer"] = "server"
    type: Literal["offer", "answer", "candidate", "bye"]
    sdp: str | None = Field(default=None, max_length=12_000)
    candidate: dict[str, Any] | None = None
    attempt_id: str | None = Field(default=None, max_length=64)
    session: str | None = Field(default=None, max_length=128)


# The Engine.IO bound of one message (4 x the default PROCTOR_MAX_MESSAGE_BYTES); the
# node's own, smaller limit (PROCTOR_ANALYSIS_SNAPSHOT_MAX_BYTES) is checked by media/.
MAX_FRAME_BYTES = 64 << 10


class Frame(BaseModel):
    """One camera snapshot for analysis: the JPEG as a Socket.IO binary attachment."""

    model_config = _FROZEN

    # Strict: a string is not a frame (lax pydantic would encode it to bytes).
    jpeg: StrictBytes = Field(min_length=4, max_length=MAX_FRAME_BYTES)


class Watch(BaseModel):
    model_config = _FROZEN

    room_id: str = Field(min_length=1, max_length=64)


class Control(BaseModel):
    model_config = _FROZEN

    attempt_id: str = Field(min_length=1, max_length=64)
    action: Literal["warn", "message", "pause", "resume", "extend", "terminate"]
    minutes: int | None = Field(default=None, ge=1, le=600)
    text: str | None = Field(default=None, max_length=2000)


class Announce(BaseModel):
    model_config = _FROZEN

    text: Text
    room_id: str | None = Field(default=None, max_length=64)


class Review(BaseModel):
    model_config = _FROZEN

    violation_id: int = Field(ge=1)
    decision: Literal["confirmed", "dismissed"]
