"""What an exam is: its questions and rules, as frozen, validated objects.

These types are the domain's; REST bodies embed them, so one validation serves both.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.vocabulary import BOUNDS, CLIENT_KINDS, DEFAULT_WEIGHTS, KINDS, SERVER_KINDS, SIGNAL_KINDS, WEIGHT, Bound

# Read from the one vocabulary (core/vocabulary.py); kept under these names for importers.
CLIENT_SIGNALS: tuple[str, ...] = CLIENT_KINDS
SERVER_SIGNALS: tuple[str, ...] = SERVER_KINDS

_FROZEN = ConfigDict(frozen=True, extra="forbid")


def _constraints(bound: Bound) -> dict[str, Any]:
    limits: dict[str, Any] = {"gt" if bound.min_exclusive else "ge": bound.minimum}
    if bound.maximum is not None:
        limits["lt" if bound.max_exclusive else "le"] = bound.maximum
    return limits


def _bounded(name: str) -> Any:
    """The pydantic field of analysis setting ``name``, its range and default from the vocabulary.

    Strict and finite, as `detection.settings` checks them: a JSON string or a bool is not a
    number here, and NaN/inf are refused even where there is no upper bound.
    """
    bound = BOUNDS[name]
    unit = f" ({bound.unit})" if bound.unit else ""
    return Field(
        default=bound.default,
        description=bound.description + unit,
        strict=True,
        allow_inf_nan=False,
        **_constraints(bound),
    )


Weight = Annotated[float, Field(**_constraints(WEIGHT))]
ServerKind = Literal[SERVER_KINDS]  # type: ignore[valid-type]

# The weights object as the OpenAPI document shows it: one optional property per kind, titled
# by its label, so a client sees every kind without reading the validator.
_WEIGHTS_SCHEMA: dict[str, Any] = {
    "properties": {
        kind.id: {
            "type": "number",
            "minimum": WEIGHT.minimum,
            "maximum": WEIGHT.maximum,
            "title": kind.label,
            "description": f"{kind.source} signal: {kind.explanation}",
            "default": kind.default_weight,
        }
        for kind in SIGNAL_KINDS
    },
    "additionalProperties": False,
}


class Question(BaseModel):
    model_config = _FROZEN

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["single", "multiple", "text"]
    text: str = Field(min_length=1, max_length=5000)
    options: tuple[Annotated[str, Field(min_length=1, max_length=500)], ...] = Field(default=(), max_length=20)
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
    """An exam's ``rules.analysis``; `detection.settings.RuleSettings` reads the same section."""

    model_config = _FROZEN

    enabled: bool = False
    speaking: bool = Field(
        default=False,
        strict=True,
        description="also analyse the student's microphone for speech (in memory, no audio stored); "
        "needs `enabled`, and the page then asks for the microphone",
    )
    disabled: tuple[ServerKind, ...] = Field(
        default=(), max_length=len(SERVER_KINDS), description="server rules that never fire in this exam"
    )
    sample_interval_seconds: float = _bounded("sample_interval_seconds")
    threshold: float = _bounded("threshold")
    no_face_seconds: float = _bounded("no_face_seconds")
    multiple_faces_seconds: float = _bounded("multiple_faces_seconds")
    looking_away_seconds: float = _bounded("looking_away_seconds")
    camera_blocked_seconds: float = _bounded("camera_blocked_seconds")
    dark_mean: float = _bounded("dark_mean")
    uniform_stddev: float = _bounded("uniform_stddev")
    # Step 13 (frame signals): head pose and "unable to judge".
    head_turned_seconds: float = _bounded("head_turned_seconds")
    looking_down_seconds: float = _bounded("looking_down_seconds")
    yaw_ratio: float = _bounded("yaw_ratio")
    pitch_ratio: float = _bounded("pitch_ratio")
    unable_to_judge_seconds: float = _bounded("unable_to_judge_seconds")
    too_dark_mean: float = _bounded("too_dark_mean")
    min_face_height: float = _bounded("min_face_height")
    min_sharpness: float = _bounded("min_sharpness")
    speaking_seconds: float = _bounded("speaking_seconds")
    speaking_window_seconds: float = _bounded("speaking_window_seconds")

    @model_validator(mode="after")
    def _speaking_needs_analysis(self) -> AnalysisRules:
        # The microphone track rides on the analysis peer connection, which carries the camera.
        if self.speaking and not self.enabled:
            raise ValueError("analysis.speaking needs analysis.enabled")
        return self

    def speaking_for(self, accommodations: Iterable[str] = ()) -> bool:
        """Whether this student's microphone is analysed: the exam asks for it and neither the
        exam's `disabled` list nor the student's accommodations switch the speaking rule off."""
        off = {*self.disabled, *accommodations}
        return self.enabled and self.speaking and "speaking" not in off

    def for_student(self, accommodations: Iterable[str] = ()) -> dict[str, Any]:
        """The section as the student's page gets it at join: `speaking` says whether *this*
        student's microphone is sent (their accommodations may switch it off)."""
        return {**self.model_dump(mode="json"), "speaking": self.speaking_for(accommodations)}


# A bound without a field (or a field the vocabulary lacks) would split the two validators.
_numeric = {name for name in AnalysisRules.model_fields if name not in ("enabled", "disabled", "speaking")}
if _numeric != set(BOUNDS):
    raise RuntimeError(f"AnalysisRules and core.vocabulary.ANALYSIS_BOUNDS differ: {sorted(_numeric ^ set(BOUNDS))}")


class Rules(BaseModel):
    model_config = _FROZEN

    weights: dict[str, Weight] = Field(
        default_factory=lambda: dict(DEFAULT_WEIGHTS),
        description="signal kind -> severity weight; a kind absent here is recorded with weight 0",
        json_schema_extra=_WEIGHTS_SCHEMA,
    )
    analysis: AnalysisRules = Field(default_factory=AnalysisRules)
    evidence_retention_days: int = Field(default=30, ge=1, le=3650)

    @model_validator(mode="after")
    def _known_kinds(self) -> Rules:
        unknown = set(self.weights) - set(KINDS)
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
