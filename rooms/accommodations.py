"""Per-student accommodations of a room: extra time and rule switches, and what a first join needs.

An accommodation is set by a room's owner or proctor for one student, before or during the
exam (docs/exams.md, "Schedule and accommodations"). Its extra time is a percentage of the
exam's duration, a number of minutes, or both (added); its `rules_off` are signal kinds
(camera rules and browser lockdown signals) that do not count against this student: they
join the attempt's `accommodations` list, which the analysis rules have read since step 9
(`AnalysisRules.for_student`, `detection.settings.RuleSettings.from_rules`) and by which a
browser signal is weighed 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.vocabulary import KINDS, SERVER_KINDS

from .exam import Schedule

# Bounds, also checked by the table (0013_schedule.sql): four times the time, or a day more,
# is beyond any accommodation a school grants; a larger value is a typing error.
MAX_EXTRA_PERCENT = 400
MAX_EXTRA_MINUTES = 1440

_KIND_IDS: tuple[str, ...] = tuple(KINDS)
EXAMPLE_RULE = SERVER_KINDS[0]  # the OpenAPI example names a real rule, read from the vocabulary
RuleKind = Literal[_KIND_IDS]  # type: ignore[valid-type]


class Accommodation(BaseModel):
    """The body of `PUT /api/rooms/{room_id}/accommodations/{student_id}`."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "example": {"extra_percent": 25, "extra_minutes": 0, "rules_off": [EXAMPLE_RULE], "note": "reader"}
        },
    )

    extra_percent: float = Field(
        default=0, ge=0, le=MAX_EXTRA_PERCENT, allow_inf_nan=False, description="extra time, % of the duration"
    )
    extra_minutes: int = Field(default=0, ge=0, le=MAX_EXTRA_MINUTES, strict=True, description="extra time, minutes")
    rules_off: tuple[RuleKind, ...] = Field(
        default=(), max_length=len(KINDS), description="signal kinds that do not count for this student"
    )
    note: str = Field(default="", max_length=500, description="for colleagues; never shown to the student")

    @field_validator("rules_off")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("list each rule once")
        return value

    def extra_seconds(self, duration_seconds: int) -> int:
        """The extra time on an exam of `duration_seconds`, in whole seconds (rounded up)."""
        return math.ceil(duration_seconds * self.extra_percent / 100) + self.extra_minutes * 60


NO_ACCOMMODATION = Accommodation()


def for_student(extra_seconds: int, rules_off: tuple[str, ...]) -> dict[str, Any]:
    """What the student's page is told at join, in plain data (never the note)."""
    return {
        "extra_seconds": extra_seconds,
        "extra_minutes": round(extra_seconds / 60, 1),
        "rules_off": [{"id": kind, "label": KINDS[kind].label} for kind in rules_off if kind in KINDS],
    }


@dataclass(frozen=True, slots=True)
class Terms:
    """What a first join needs besides the exam: the room's window and the student's accommodation."""

    window: Schedule = field(default_factory=Schedule)
    accommodation: Accommodation = NO_ACCOMMODATION
