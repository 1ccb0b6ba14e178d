"""The proctoring vocabulary, declared once: signal kinds and the bounds of the analysis rules.

Every other place reads these tables: `rooms/exam.py` builds its pydantic models (the exam's
weights and `rules.analysis`) from them, `detection/settings.py` validates the same bounds,
`signaling/messages.py` accepts exactly the client kinds, and the pages load the labels from
`/app-config.json`. Adding a signal kind is one entry in `SIGNAL_KINDS`; a client kind also
needs the page code that notices it (`server/static/js/lockdown.js`), a server kind the rule
that raises it (`detection/rules.py`).

Plain frozen dataclasses: this module imports nothing of ours and no third-party package.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeGuard

Source = Literal["client", "server"]


@dataclass(frozen=True, slots=True)
class SignalKind:
    """One kind of signal a student's attempt can raise."""

    id: str
    label: str  # the words a teacher reads on the dashboard, the review timeline and the editor
    source: Source  # "client": the student's page reports it; "server": frame analysis raises it
    default_weight: float  # suspicion added per occurrence when an exam sets no weights
    explanation: str  # one line, plain words: what happened

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


SIGNAL_KINDS: tuple[SignalKind, ...] = (
    SignalKind(
        "tab_hidden",
        "Tab hidden",
        "client",
        3.0,
        "The exam tab was hidden: the student switched tabs or minimised the browser.",
    ),
    SignalKind(
        "window_blur",
        "Left the window",
        "client",
        1.0,
        "The browser window lost focus while the exam tab stayed visible.",
    ),
    SignalKind("fullscreen_exit", "Left full screen", "client", 2.0, "The exam page left full-screen mode."),
    SignalKind("copy", "Copy", "client", 2.0, "Text was copied from the exam page."),
    SignalKind("paste", "Paste", "client", 3.0, "Text was pasted into the exam page."),
    SignalKind("cut", "Cut", "client", 2.0, "Text was cut from the exam page."),
    SignalKind("context_menu", "Context menu", "client", 0.5, "The right-click menu was opened on the exam page."),
    SignalKind("devtools", "Developer tools", "client", 5.0, "The browser's developer tools appear to be open."),
    SignalKind(
        "screen_extended",
        "Second screen",
        "client",
        5.0,
        "The browser reports a second screen attached to the computer.",
    ),
    SignalKind("print_screen", "Print screen", "client", 3.0, "The Print Screen key was pressed."),
    SignalKind(
        "multiple_tabs", "Several tabs", "client", 3.0, "The exam was open in more than one tab at the same time."
    ),
    SignalKind("no_face", "No face", "server", 3.0, "No face was seen on the camera for a while."),
    SignalKind(
        "multiple_faces", "Several faces", "server", 5.0, "More than one face was seen on the camera for a while."
    ),
    # Step 13 (frame signals): `looking_away` is no longer raised: `head_turned` and `looking_down`
    # replace it. It stays declared so stored exams (weights, `disabled`, accommodations,
    # `looking_away_seconds`) and stored violations keep loading; naming it in `disabled` or an
    # accommodation switches off both rules that replace it. The three "unable to judge"
    # kinds are states, not misconduct: weight 0, `details.state == "unable_to_judge"`.
    SignalKind(
        "looking_away",
        "Looking away (older exams)",
        "server",
        1.0,
        "Older flag for a face turned away; now raised as 'Head turned' or 'Looking down'.",
    ),
    SignalKind(
        "head_turned",
        "Head turned",
        "server",
        1.0,
        "The student's head was turned to the side, away from the screen, for a while.",
    ),
    SignalKind(
        "looking_down",
        "Looking down",
        "server",
        1.0,
        "The student's head was tilted down, below the screen, for a while.",
    ),
    SignalKind(
        "too_dark",
        "Too dark to judge",
        "server",
        0.0,
        "The camera picture was too dark to tell whether the student is there.",
    ),
    SignalKind(
        "face_too_small",
        "Face too far to judge",
        "server",
        0.0,
        "The face was too small in the picture (too far away) to judge where the student looks.",
    ),
    SignalKind(
        "too_blurred", "Too blurred to judge", "server", 0.0, "The camera picture was too blurred to judge it reliably."
    ),
    SignalKind(
        "camera_blocked",
        "Camera blocked",
        "server",
        4.0,
        "The camera picture was dark or flat, as if covered or pointed at a wall.",
    ),
    # Step 13 B (speaking): only exams with `rules.analysis.speaking` send a microphone track.
    SignalKind(
        "speaking",
        "Speaking",
        "server",
        2.0,
        "Speech was heard on the student's microphone for a while (the audio is not kept).",
    ),
)

KINDS: dict[str, SignalKind] = {kind.id: kind for kind in SIGNAL_KINDS}
CLIENT_KINDS: tuple[str, ...] = tuple(kind.id for kind in SIGNAL_KINDS if kind.source == "client")
SERVER_KINDS: tuple[str, ...] = tuple(kind.id for kind in SIGNAL_KINDS if kind.source == "server")
DEFAULT_WEIGHTS: dict[str, float] = {kind.id: kind.default_weight for kind in SIGNAL_KINDS}


@dataclass(frozen=True, slots=True)
class Bound:
    """The allowed range of one numeric setting; ``maximum=None`` means no upper bound."""

    name: str
    type: Literal["number", "integer"]  # JSON Schema's words
    minimum: float
    maximum: float | None
    default: float
    unit: str  # "" for a plain number
    description: str
    min_exclusive: bool = False
    max_exclusive: bool = False

    def refusal(self, value: float) -> str | None:
        """Why ``value`` (already known to be a finite number) is out of range, or None."""
        too_low = value <= self.minimum if self.min_exclusive else value < self.minimum
        too_high = self.maximum is not None and (value >= self.maximum if self.max_exclusive else value > self.maximum)
        return f"must be in {self.interval()}" if too_low or too_high else None

    def interval(self) -> str:
        """The range in interval notation: ``(0, 1]``, ``[0, inf)``."""
        low = f"{'(' if self.min_exclusive else '['}{self.minimum:g}"
        if self.maximum is None:
            return f"{low}, inf)"
        return f"{low}, {self.maximum:g}{')' if self.max_exclusive else ']'}"

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "min_exclusive": self.min_exclusive,
            "max_exclusive": self.max_exclusive,
            "default": self.default,
            "unit": self.unit,
            "description": self.description,
        }


def _hold(kind: str, default: float) -> Bound:
    # No upper bound: a very long hold time is legal (it all but disables the rule, which
    # `disabled` does explicitly); only finite numbers are accepted.
    return Bound(
        f"{kind}_seconds",
        "number",
        0.0,
        None,
        default,
        "s",
        f"how long the condition must last before '{KINDS[kind].label}' is raised",
    )


# The numeric settings of an exam's `rules.analysis`, in the order the editor shows them.
ANALYSIS_BOUNDS: tuple[Bound, ...] = (
    Bound(
        "sample_interval_seconds",
        "number",
        0.2,
        30.0,
        1.0,
        "s",
        "how often one camera frame of each student is analysed",
    ),
    Bound(
        "threshold",
        "number",
        0.0,
        1.0,
        0.5,
        "",
        "face-detector confidence at or above which a face counts as seen",
        min_exclusive=True,
    ),
    _hold("no_face", 3.0),
    _hold("multiple_faces", 2.0),
    # Step 13 (frame signals): head pose and "unable to judge"; defaults chosen from
    # docs/analysis-quality.md. `looking_away_seconds` is kept only so older exams load.
    Bound(
        "looking_away_seconds",
        "number",
        0.0,
        None,
        5.0,
        "s",
        "unused: older exams' hold for 'Looking away' (see head_turned_seconds, looking_down_seconds)",
    ),
    _hold("head_turned", 3.0),
    _hold("looking_down", 3.0),
    Bound(
        "yaw_ratio",
        "number",
        0.0,
        2.0,
        0.3,
        "",
        "nose offset from the eye midpoint, in eye distances, above which the head counts as turned",
        min_exclusive=True,
    ),
    Bound(
        "pitch_ratio",
        "number",
        0.0,
        2.0,
        0.75,
        "",
        "nose position from the eye line (0) to the mouth line (1) above which the head counts as down",
        min_exclusive=True,
    ),
    Bound(
        "unable_to_judge_seconds",
        "number",
        0.0,
        None,
        3.0,
        "s",
        "how long a frame must stay too dark, too blurred or show a too small face before it is reported",
    ),
    Bound(
        "too_dark_mean",
        "number",
        0.0,
        255.0,
        30.0,
        "",
        "mean luminance (0-255) below which a frame without a face is too dark to judge (no 'No face')",
    ),
    Bound(
        "min_face_height",
        "number",
        0.0,
        1.0,
        0.16,
        "",
        "face height, as a fraction of the frame height, below which the face is too far to judge",
    ),
    Bound(
        "min_sharpness",
        "number",
        0.0,
        None,
        0.03,
        "",
        "Laplacian variance per unit luminance variance (80-px grey copy) below which a frame is too blurred",
    ),
    _hold("camera_blocked", 2.0),
    Bound(
        "dark_mean",
        "number",
        0.0,
        255.0,
        25.0,
        "",
        "mean luminance (0-255) below which a frame counts as dark (camera blocked)",
    ),
    Bound(
        "uniform_stddev",
        "number",
        0.0,
        255.0,
        8.0,
        "",
        "luminance standard deviation (0-255) below which a frame counts as flat (camera blocked)",
    ),
    # Step 13 B (speaking): speech adding up to `speaking_seconds` within the last
    # `speaking_window_seconds` raises it (a window shorter than the speech needed is widened to it).
    Bound(
        "speaking_seconds",
        "number",
        0.5,
        600.0,
        3.0,
        "s",
        "seconds of speech within the window before 'Speaking' is raised",
    ),
    Bound(
        "speaking_window_seconds", "number", 1.0, 600.0, 10.0, "s", "the sliding window over which speech is added up"
    ),
)
BOUNDS: dict[str, Bound] = {bound.name: bound for bound in ANALYSIS_BOUNDS}

# One occurrence's weight in an exam's `rules.weights`.
WEIGHT = Bound(
    "weight", "number", 0.0, 100.0, 0.0, "points", "suspicion added to the attempt's score per occurrence of the kind"
)


def finite_number(value: object) -> TypeGuard[int | float]:
    """A JSON number that is neither a bool (an int subclass) nor NaN/infinite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def app_vocabulary() -> dict[str, Any]:
    """The part of `/app-config.json` the pages read labels and bounds from."""
    return {
        "kinds": [kind.as_json() for kind in SIGNAL_KINDS],
        "analysis_bounds": [bound.as_json() for bound in ANALYSIS_BOUNDS],
        "weight": WEIGHT.as_json(),
    }


__all__ = [
    "ANALYSIS_BOUNDS",
    "BOUNDS",
    "CLIENT_KINDS",
    "DEFAULT_WEIGHTS",
    "KINDS",
    "SERVER_KINDS",
    "SIGNAL_KINDS",
    "WEIGHT",
    "Bound",
    "SignalKind",
    "Source",
    "app_vocabulary",
    "finite_number",
]
