"""What an exam is: its questions and rules, as frozen, validated objects.

These types are the domain's; REST bodies embed them, so one validation serves both.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

CLIENT_SIGNALS: tuple[str, ...] = (
    "tab_hidden", "window_blur", "fullscreen_exit", "copy", "paste", "cut",
    "context_menu", "devtools", "screen_extended", "print_screen", "multiple_tabs",
)
SERVER_SIGNALS: tuple[str, ...] = ("no_face", "multiple_faces", "looking_away", "camera_blocked")

# Severity weights: how much one occurrence adds to the attempt's suspicion score.
DEFAULT_WEIGHTS: dict[str, float] = {
    "tab_hidden": 3.0, "window_blur": 1.0, "fullscreen_exit": 2.0, "copy": 2.0,
    "paste": 3.0, "cut": 2.0, "context_menu": 0.5, "devtools": 5.0,
    "screen_extended": 5.0, "print_screen": 3.0, "multiple_tabs": 3.0,
    "no_face": 3.0, "multiple_faces": 5.0, "looking_away": 1.0, "camera_blocked": 4.0,
}

_FROZEN = ConfigDict(frozen=True, extra="forbid")
Weight = Annotated[float, Field(ge=0, le=100)]


class Question(BaseModel):
    model_config = _FROZEN

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["single", "multiple", "text"]
    text: str = Field(min_length=1, max_length=5000)
    options: tuple[Annotated[str, Field(min_length=1, max_length=500)], ...] = Field(
        default=(), max_length=20
    )
    points: float = Field(default=1.0, ge=0, le=1000)
    max_length: int = Field(default=2000, ge=1, le=20000, description="for text answers")

    @model_validator(mode="after")
    def _options_match_kind(self) -> Question:
        if self.kind in ("single", "multiple") and len(self.options) < 2:
            raise ValueError("a choice question needs at least two options")
        if self.kind == "text" and self.options:
            raise ValueError("a text question takes no options")
        return self

    def check_answer(self, value: Any) -> str | None:
        """Return why `value` is not an answer to this question, or None."""
        if self.kind == "single":
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < len(self.options):
                return f"expected an option index 0..{len(self.options) - 1}"
        elif self.kind == "multiple":
            if (
                not isinstance(value, list)
                or len(value) > len(self.options)
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
                or not all(0 <= v < len(self.options) for v in value)
                or len(set(value)) != len(value)
            ):
                return f"expected a list of distinct option indexes 0..{len(self.options) - 1}"
        elif not isinstance(value, str) or len(value) > self.max_length:
            return f"expected text of at most {self.max_length} characters"
        return None


class AnalysisRules(BaseModel):
    model_config = _FROZEN

    enabled: bool = False
    sample_interval_seconds: float = Field(default=1.0, ge=0.2, le=30)
    threshold: float = Field(default=0.5, gt=0, lt=1)
    no_face_seconds: float = Field(default=3.0, ge=0, le=600)
    multiple_faces_seconds: float = Field(default=2.0, ge=0, le=600)
    looking_away_seconds: float = Field(default=5.0, ge=0, le=600)
    camera_blocked_seconds: float = Field(default=2.0, ge=0, le=600)


class Rules(BaseModel):
    model_config = _FROZEN

    weights: dict[str, Weight] = Field(
        default_factory=lambda: dict(DEFAULT_WEIGHTS),
        description="signal kind -> severity weight; a kind absent here is recorded with weight 0",
    )
    analysis: AnalysisRules = Field(default_factory=AnalysisRules)
    evidence_retention_days: int = Field(default=30, ge=1, le=3650)

    @model_validator(mode="after")
    def _known_kinds(self) -> Rules:
        unknown = set(self.weights) - set(CLIENT_SIGNALS) - set(SERVER_SIGNALS)
        if unknown:
            raise ValueError(f"unknown signal kinds: {', '.join(sorted(unknown))}")
        return self

    def weight(self, kind: str) -> float:
        return float(self.weights.get(kind, 0.0))


class ExamSpec(BaseModel):
    """The body of `POST /api/exams`."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "example": {
                "title": "Algebra midterm",
                "duration_minutes": 45,
                "questions": [
                    {"id": "q1", "kind": "single", "text": "2 + 2 = ?", "options": ["3", "4", "5"]},
                    {"id": "q2", "kind": "multiple", "text": "Primes?", "options": ["2", "4", "7"]},
                    {"id": "q3", "kind": "text", "text": "Explain a prime number."},
                ],
                "rules": {"weights": {"tab_hidden": 3, "paste": 4}, "evidence_retention_days": 14},
            }
        },
    )

    title: str = Field(min_length=1, max_length=200)
    duration_minutes: int = Field(ge=1, le=24 * 60)
    questions: tuple[Question, ...] = Field(min_length=1, max_length=500)
    rules: Rules = Field(default_factory=Rules)

    @model_validator(mode="after")
    def _unique_ids(self) -> ExamSpec:
        ids = [q.id for q in self.questions]
        if len(set(ids)) != len(ids):
            raise ValueError("question ids must be unique")
        return self

    def question(self, question_id: str) -> Question | None:
        for q in self.questions:
            if q.id == question_id:
                return q
        return None
