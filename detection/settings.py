"""Rule settings for one student: an exam's ``rules["analysis"]`` plus accommodations."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from detection.errors import InvalidRules

NO_FACE = "no_face"
MULTIPLE_FACES = "multiple_faces"
LOOKING_AWAY = "looking_away"
CAMERA_BLOCKED = "camera_blocked"
KINDS = frozenset({NO_FACE, MULTIPLE_FACES, LOOKING_AWAY, CAMERA_BLOCKED})

# name -> (lowest, highest, lowest allowed is exclusive)
_BOUNDS: dict[str, tuple[float, float, bool]] = {
    "threshold": (0.0, 1.0, True),
    "no_face_seconds": (0.0, math.inf, False),
    "multiple_faces_seconds": (0.0, math.inf, False),
    "looking_away_seconds": (0.0, math.inf, False),
    "camera_blocked_seconds": (0.0, math.inf, False),
    "dark_mean": (0.0, 255.0, False),
    "uniform_stddev": (0.0, 255.0, False),
}


def _number(name: str, value: object) -> float:
    lowest, highest, exclusive = _BOUNDS[name]
    # bool is an int subclass; `"no_face_seconds": true` is a mistake, not 1 second.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRules(f"analysis.{name} must be a finite number, got {value!r}")
    too_low = value <= lowest if exclusive else value < lowest
    if too_low or value > highest:
        low = "(" if exclusive else "["
        high = "inf)" if highest == math.inf else f"{highest:g}]"
        raise InvalidRules(f"analysis.{name} must be in {low}{lowest:g}, {high}, got {value!r}")
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

    threshold: float = 0.5  # face confidence
    no_face_seconds: float = 3.0
    multiple_faces_seconds: float = 2.0
    looking_away_seconds: float = 5.0
    camera_blocked_seconds: float = 2.0
    dark_mean: float = 25.0  # mean luminance below this: dark frame
    uniform_stddev: float = 8.0  # luminance std-dev below this: uniform frame
    disabled: frozenset[str] = frozenset()  # rule kinds that never fire

    def __post_init__(self) -> None:
        # Coerce in place (ints from JSON become floats, lists become frozensets) so the
        # annotations hold whatever the caller passed.
        for name in _BOUNDS:
            object.__setattr__(self, name, _number(name, getattr(self, name)))
        object.__setattr__(self, "disabled", _kinds("disabled", self.disabled))

    def seconds(self, kind: str) -> float:
        """How long condition ``kind`` must hold before it is raised."""
        value: float = getattr(self, f"{kind}_seconds")
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
        values = {name: value for name, value in analysis.items() if name in known}
        disabled = _kinds("disabled", values.pop("disabled", ()))
        if isinstance(accommodations, str | bytes):
            raise InvalidRules(f"accommodations must be a list of names, got {accommodations!r}")
        accommodated = {name for name in accommodations if isinstance(name, str) and name in KINDS}
        return cls(**values, disabled=disabled | accommodated)
