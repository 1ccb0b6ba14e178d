"""Rule settings for one student: an exam's ``rules["analysis"]`` plus accommodations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from core.vocabulary import BOUNDS, SERVER_KINDS, finite_number
from detection.errors import InvalidRules

# The kinds the rules raise, by name (detection/rules.py emits them); the list itself and the
# bounds of every number below come from core/vocabulary.py, which rooms/exam.py reads too.
NO_FACE = "no_face"
MULTIPLE_FACES = "multiple_faces"
LOOKING_AWAY = "looking_away"  # no longer raised: an alias that switches off the two below
HEAD_TURNED = "head_turned"
LOOKING_DOWN = "looking_down"
CAMERA_BLOCKED = "camera_blocked"
# States, not misconduct: the frame cannot be judged (weight 0, details.state "unable_to_judge").
TOO_DARK = "too_dark"
FACE_TOO_SMALL = "face_too_small"
TOO_BLURRED = "too_blurred"
SPEAKING = "speaking"  # raised by detection/speaking.py, from the microphone track
UNABLE_TO_JUDGE = frozenset({TOO_DARK, FACE_TOO_SMALL, TOO_BLURRED})
RAISED = frozenset({NO_FACE, MULTIPLE_FACES, HEAD_TURNED, LOOKING_DOWN, CAMERA_BLOCKED, SPEAKING}) | UNABLE_TO_JUDGE
# What a legacy name in `disabled` or in the accommodations switches off.
_ALIASES = {LOOKING_AWAY: frozenset({HEAD_TURNED, LOOKING_DOWN})}
KINDS = frozenset(SERVER_KINDS)
if KINDS != RAISED | _ALIASES.keys():
    raise RuntimeError(
        f"detection/rules.py and detection/speaking.py raise {sorted(RAISED)} (and accept {sorted(_ALIASES)});"
        f" core.vocabulary declares the server kinds {sorted(KINDS)}"
    )


def _expand(kinds: frozenset[str]) -> frozenset[str]:
    return kinds.union(*(_ALIASES.get(kind, frozenset()) for kind in kinds))


def _number(name: str, value: object) -> float:
    bound = BOUNDS[name]
    # bool is an int subclass; `"no_face_seconds": true` is a mistake, not 1 second.
    if not finite_number(value):
        raise InvalidRules(f"analysis.{name} must be a finite number, got {value!r}")
    refusal = bound.refusal(value)
    if refusal is not None:
        raise InvalidRules(f"analysis.{name} {refusal}, got {value!r}")
    return float(value)


def _kinds(name: str, value: object) -> frozenset[str]:
    # A bare string is iterable too; "looking_away" must not become its letters.
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidRules(f"analysis.{name} must be a list of rule names, got {value!r}")
    kinds = frozenset(value)
    unknown = sorted(repr(kind) for kind in kinds if kind not in KINDS)
    if unknown:
        raise InvalidRules(
            f"analysis.{name} holds unknown rule(s) {', '.join(unknown)}; known: {', '.join(sorted(KINDS))}"
        )
    return kinds


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """Thresholds and hold times of the analysis rules; validated on construction."""

    threshold: float = BOUNDS["threshold"].default  # face confidence
    no_face_seconds: float = BOUNDS["no_face_seconds"].default
    multiple_faces_seconds: float = BOUNDS["multiple_faces_seconds"].default
    looking_away_seconds: float = BOUNDS["looking_away_seconds"].default
    camera_blocked_seconds: float = BOUNDS["camera_blocked_seconds"].default
    dark_mean: float = BOUNDS["dark_mean"].default  # mean luminance below this: dark frame
    uniform_stddev: float = BOUNDS["uniform_stddev"].default  # luminance std-dev below this: uniform frame
    head_turned_seconds: float = BOUNDS["head_turned_seconds"].default
    looking_down_seconds: float = BOUNDS["looking_down_seconds"].default
    yaw_ratio: float = BOUNDS["yaw_ratio"].default  # see detection.signals.head_turn
    pitch_ratio: float = BOUNDS["pitch_ratio"].default  # see detection.signals.head_pitch
    unable_to_judge_seconds: float = BOUNDS["unable_to_judge_seconds"].default  # too_dark, face_too_small, too_blurred
    too_dark_mean: float = BOUNDS["too_dark_mean"].default
    min_face_height: float = BOUNDS["min_face_height"].default  # fraction of the frame height
    min_sharpness: float = BOUNDS["min_sharpness"].default  # see detection.signals.FrameStats.sharpness
    disabled: frozenset[str] = frozenset()  # rule kinds that never fire
    speaking_seconds: float = BOUNDS["speaking_seconds"].default  # speech within the window
    speaking_window_seconds: float = BOUNDS["speaking_window_seconds"].default
    speaking: bool = False  # the exam analyses the microphone (rooms/exam.py: analysis.speaking)

    def __post_init__(self) -> None:
        # Coerce in place (ints from JSON become floats, lists become frozensets) so the
        # annotations hold whatever the caller passed.
        for name in _NUMBERS:
            object.__setattr__(self, name, _number(name, getattr(self, name)))
        object.__setattr__(self, "disabled", _expand(_kinds("disabled", self.disabled)))
        if not isinstance(self.speaking, bool):
            raise InvalidRules(f"analysis.speaking must be true or false, got {self.speaking!r}")

    @property
    def listens(self) -> bool:
        """Whether the microphone is analysed: asked for, and the speaking rule not disabled."""
        return self.speaking and SPEAKING not in self.disabled

    def seconds(self, kind: str) -> float:
        """How long condition ``kind`` must hold before it is raised."""
        value: float = getattr(self, "unable_to_judge_seconds" if kind in UNABLE_TO_JUDGE else f"{kind}_seconds")
        return value

    @classmethod
    def from_rules(cls, rules: Mapping[str, Any], accommodations: Iterable[str] = ()) -> RuleSettings:
        """Settings from an exam's rules dict and one student's accommodations.

        ``rules["analysis"]`` may hold any field of this class; other keys are ignored
        (the rules dict is shared with other packages). ``accommodations`` is the
        student's whole list: names of rule kinds disable those rules, other names belong
        to other packages (e.g. extra time) and are ignored.
        """
        if not isinstance(rules, Mapping):
            raise InvalidRules(f"exam rules must be an object, got {type(rules).__name__}")
        analysis = rules.get("analysis")
        if analysis is None:
            analysis = {}
        if not isinstance(analysis, Mapping):
            raise InvalidRules(f"rules.analysis must be an object, got {type(analysis).__name__}")
        known = {field.name for field in fields(cls)}
        # Every bounded setting is checked, also those other packages read (the sample
        # interval), so this accepts exactly what the exam's pydantic model accepts.
        for name in BOUNDS.keys() - known:
            if name in analysis:
                _number(name, analysis[name])
        values = {name: value for name, value in analysis.items() if name in known}
        disabled = _kinds("disabled", values.pop("disabled", ()))
        if isinstance(accommodations, str | bytes):
            raise InvalidRules(f"accommodations must be a list of names, got {accommodations!r}")
        accommodated = {name for name in accommodations if isinstance(name, str) and name in KINDS}
        return cls(**values, disabled=disabled | accommodated)


# The numeric fields; each must have a bound in the vocabulary (checked at import).
_NUMBERS = tuple(field.name for field in fields(RuleSettings) if field.name not in ("disabled", "speaking"))
if not set(_NUMBERS) <= BOUNDS.keys():
    raise RuntimeError(f"RuleSettings fields without a bound in core.vocabulary: {set(_NUMBERS) - BOUNDS.keys()}")
