"""What an exam is: its questions and rules, as frozen, validated objects.

These types are the domain's; REST bodies embed them, so one validation serves both.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

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


QuestionKind = Literal["single", "multiple", "numeric", "short", "essay"]
# Fields of a question that make up its answer key: never sent to a student (`Question.for_student`).
KEY_FIELDS = ("correct", "scoring", "answer", "tolerance", "accepted", "feedback")


class Question(BaseModel):
    """One question and its answer key (docs/exams.md).

    - ``single``: ``options``, ``correct`` = the one right option's index.
    - ``multiple``: ``options``, ``correct`` = the right options' indexes, ``scoring``
      all-or-nothing or partial credit.
    - ``numeric``: ``answer`` within ``tolerance`` (absolute).
    - ``short``: ``accepted`` answers, compared with case and spacing ignored.
    - ``essay``: graded by hand (``text``, the kind stored before step 12, reads as ``essay``).

    A question without a key (``correct``/``answer``/``accepted`` absent) is graded by hand.
    """

    model_config = _FROZEN

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: QuestionKind
    text: str = Field(min_length=1, max_length=5000)
    options: tuple[Annotated[str, Field(min_length=1, max_length=500)], ...] = Field(default=(), max_length=20)
    points: float = Field(default=1.0, ge=0, le=1000, allow_inf_nan=False)
    max_length: int = Field(default=2000, ge=1, le=20000, description="for essay and short answers")
    # The answer key (KEY_FIELDS).
    correct: tuple[Annotated[int, Field(ge=0, lt=20)], ...] | None = Field(
        default=None, description="single/multiple: index(es) of the right option(s)"
    )
    scoring: Literal["all_or_nothing", "partial"] = Field(default="all_or_nothing", description="multiple only")
    answer: float | None = Field(default=None, allow_inf_nan=False, description="numeric: the right value")
    tolerance: float = Field(default=0.0, ge=0, allow_inf_nan=False, description="numeric: accepted |error|")
    accepted: tuple[Annotated[str, Field(min_length=1, max_length=500)], ...] = Field(
        default=(), max_length=50, description="short: accepted answers (case and spacing ignored)"
    )
    feedback: str = Field(default="", max_length=5000, description="shown to teachers with the key")

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        # Exams stored before step 12 say "text" for what is now an essay; a single-choice key
        # may be given as a bare index.
        if isinstance(data, dict):
            if data.get("kind") == "text":
                data = {**data, "kind": "essay"}
            if isinstance(data.get("correct"), int) and not isinstance(data.get("correct"), bool):
                data = {**data, "correct": (data["correct"],)}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Question:
        choice = self.kind in ("single", "multiple")
        if choice and len(self.options) < 2:
            raise ValueError("a choice question needs at least two options")
        if not choice and self.options:
            raise ValueError(f"a {self.kind} question takes no options")
        if self.correct is not None:
            if not choice:
                raise ValueError(f"`correct` is for choice questions; a {self.kind} question uses another key")
            if any(i >= len(self.options) for i in self.correct) or len(set(self.correct)) != len(self.correct):
                raise ValueError("`correct` must list distinct option indexes")
            if self.kind == "single" and len(self.correct) != 1:
                raise ValueError("a single-choice question has exactly one correct option")
        if self.answer is not None and self.kind != "numeric":
            raise ValueError("`answer` is for numeric questions")
        if self.accepted and self.kind != "short":
            raise ValueError("`accepted` is for short-answer questions")
        return self

    @property
    def auto_graded(self) -> bool:
        """Whether the server grades this question at submit (it has a key); else a person does."""
        if self.kind in ("single", "multiple"):
            return self.correct is not None
        if self.kind == "numeric":
            return self.answer is not None
        if self.kind == "short":
            return bool(self.accepted)
        return False

    def for_student(self) -> dict[str, Any]:
        """The question as a student's page gets it: no key."""
        return self.model_dump(mode="json", exclude=set(KEY_FIELDS))

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
        elif self.kind == "numeric":
            # A number, or the text a student typed (a decimal comma is a number too).
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                return "expected a number"
            if isinstance(value, str) and len(value) > 64:
                return "expected a number of at most 64 characters"
        elif not isinstance(value, str) or len(value) > self.max_length:
            return f"expected text of at most {self.max_length} characters"
        return None


class Pool(BaseModel):
    """Draw ``draw`` of ``questions`` for each attempt (deterministic per attempt)."""

    model_config = _FROZEN

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    questions: tuple[str, ...] = Field(min_length=1, max_length=500)
    draw: int = Field(ge=1, le=500)

    @model_validator(mode="after")
    def _draw_fits(self) -> Pool:
        if self.draw > len(self.questions):
            raise ValueError(f"pool {self.id} draws {self.draw} of only {len(self.questions)} questions")
        if len(set(self.questions)) != len(self.questions):
            raise ValueError(f"pool {self.id} lists a question twice")
        return self


class Schedule(BaseModel):
    """When attempts may start and must end (docs/exams.md). Times are timezone-aware."""

    model_config = _FROZEN

    opens_at: AwareDatetime | None = None
    closes_at: AwareDatetime | None = None
    latest_start: AwareDatetime | None = Field(default=None, description="no attempt starts after this")
    hard_close: bool = Field(default=False, description="submit every attempt at closes_at, time left or not")

    @model_validator(mode="after")
    def _ordered(self) -> Schedule:
        if self.opens_at and self.closes_at and self.closes_at <= self.opens_at:
            raise ValueError("closes_at must be after opens_at")
        if self.latest_start and self.opens_at and self.latest_start < self.opens_at:
            raise ValueError("latest_start must not be before opens_at")
        if self.latest_start and self.closes_at and self.latest_start > self.closes_at:
            raise ValueError("latest_start must not be after closes_at")
        if self.hard_close and self.closes_at is None:
            raise ValueError("hard_close needs closes_at")
        return self


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
                    {"id": "q1", "kind": "single", "text": "2 + 2 = ?", "options": ["3", "4", "5"], "correct": [1]},
                    {
                        "id": "q2",
                        "kind": "multiple",
                        "text": "Primes?",
                        "options": ["2", "4", "7"],
                        "correct": [0, 2],
                        "scoring": "partial",
                    },
                    {
                        "id": "q3",
                        "kind": "numeric",
                        "text": "1 / 3 = ? (2 decimals)",
                        "answer": 0.33,
                        "tolerance": 0.005,
                    },
                    {"id": "q4", "kind": "short", "text": "Capital of France?", "accepted": ["Paris"]},
                    {"id": "q5", "kind": "essay", "text": "Explain a prime number."},
                ],
                "rules": {"weights": {"tab_hidden": 3, "paste": 4}, "evidence_retention_days": 14},
            }
        },
    )

    title: str = Field(min_length=1, max_length=200)
    duration_minutes: int = Field(ge=1, le=24 * 60)
    questions: tuple[Question, ...] = Field(min_length=1, max_length=500)
    rules: Rules = Field(default_factory=Rules)
    shuffle_questions: bool = Field(default=False, description="each attempt sees the questions in its own order")
    shuffle_options: bool = Field(default=False, description="each attempt sees choice options in its own order")
    pools: tuple[Pool, ...] = Field(default=(), max_length=100, description="draw N of these questions per attempt")
    schedule: Schedule = Field(default_factory=Schedule)

    @model_validator(mode="after")
    def _unique_ids(self) -> ExamSpec:
        ids = [q.id for q in self.questions]
        if len(set(ids)) != len(ids):
            raise ValueError("question ids must be unique")
        pooled = [qid for pool in self.pools for qid in pool.questions]
        if len(set(pooled)) != len(pooled):
            raise ValueError("a question belongs to at most one pool")
        unknown = set(pooled) - set(ids)
        if unknown:
            raise ValueError(f"pools name unknown questions: {', '.join(sorted(unknown))}")
        return self

    def question(self, question_id: str) -> Question | None:
        for q in self.questions:
            if q.id == question_id:
                return q
        return None
