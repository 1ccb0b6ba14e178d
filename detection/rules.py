"""Per-student rules that turn frame statistics and detected faces into violations.

Pure logic: no I/O, no clock of its own. Each rule watches one condition; a condition that
has held for its hold time raises one violation, and the rule re-arms only once the
condition has cleared, so a student who stays out of frame for a minute gets one
"no_face" violation, not twenty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from detection.face_detector import Face
from detection.settings import CAMERA_BLOCKED, LOOKING_AWAY, MULTIPLE_FACES, NO_FACE, RuleSettings
from detection.signals import HEAD_TURN_LIMIT, FrameStats, head_turn

# A longer silence between two frames (camera off, connection lost) ends every episode:
# nothing was seen in between, so that time must not count towards a hold time.
DEFAULT_MAX_GAP = 10.0


@dataclass(frozen=True, slots=True)
class RuleViolation:
    """A condition that held long enough to be reported."""

    kind: str  # "no_face" | "multiple_faces" | "looking_away" | "camera_blocked"
    started_at: float  # first frame where the condition held, on the caller's clock
    duration: float  # seconds the condition had held when raised
    confidence: float  # 0..1
    reason: str  # plain words for the teacher


@dataclass(frozen=True, slots=True)
class _Reading:
    """What one frame says about one condition that holds in it."""

    confidence: float  # 0..1, averaged over the episode
    value: float  # kind-specific measure quoted in the reason


@dataclass(slots=True)
class _Episode:
    """One unbroken run of frames in which a condition held."""

    started_at: float
    fired: bool = False
    frames: int = 0
    confidence_sum: float = 0.0
    value_sum: float = 0.0
    value_max: float = 0.0

    def add(self, reading: _Reading) -> None:
        self.value_max = reading.value if self.frames == 0 else max(self.value_max, reading.value)
        self.frames += 1
        self.confidence_sum += reading.confidence
        self.value_sum += reading.value

    @property
    def confidence(self) -> float:
        return min(1.0, max(0.0, self.confidence_sum / self.frames))

    @property
    def value_mean(self) -> float:
        return self.value_sum / self.frames


class StudentRules:
    """Per-student state machine; pure logic, no I/O; time is passed in.

    Conditions, each judged on every observed frame:

    * ``camera_blocked``: mean luminance below ``dark_mean`` or its std-dev below
      ``uniform_stddev`` (lens covered, camera pointed at a wall). Confidence grows from
      0.5 at the threshold to 1.0 for a black or perfectly flat frame.
    * ``no_face``: no face scored at least ``threshold``. A blocked camera shows no face,
      so it raises both. Confidence is 1 minus the best (sub-threshold) score.
    * ``multiple_faces``: two or more faces at or above ``threshold``; confidence is the
      second-best score.
    * ``looking_away``: exactly one face, and its ``head_turn`` exceeds
      ``HEAD_TURN_LIMIT``; confidence is the face's score. Faces without landmarks are
      never judged to look away.

    Confidences are averaged over the frames of the episode. Frames older than the last
    one are dropped, and a silence longer than ``max_gap`` seconds between two frames
    ends every episode (re-arming fired rules), since nothing was seen in between.
    """

    def __init__(self, settings: RuleSettings, *, max_gap: float | None = DEFAULT_MAX_GAP) -> None:
        self._settings = settings
        self._max_gap = max_gap
        self._episodes: dict[str, _Episode] = {}
        self._last_ts: float | None = None

    @property
    def settings(self) -> RuleSettings:
        return self._settings

    def reset(self) -> None:
        """Forget every episode, e.g. when the student's camera track restarts."""
        self._episodes.clear()
        self._last_ts = None

    def observe(self, ts: float, stats: FrameStats, faces: Sequence[Face]) -> list[RuleViolation]:
        """Feed one frame seen at ``ts`` seconds; returns the violations raised by it."""
        if self._last_ts is not None:
            if ts < self._last_ts:
                # An out-of-order frame would make durations run backwards; drop it.
                return []
            if self._max_gap is not None and ts - self._last_ts > self._max_gap:
                self._episodes.clear()
        self._last_ts = ts

        readings = self._read(stats, faces)
        raised: list[RuleViolation] = []
        for kind, reading in readings.items():
            if kind in self._settings.disabled:
                continue
            if reading is None:
                # Condition cleared: the rule re-arms.
                self._episodes.pop(kind, None)
                continue
            episode = self._episodes.setdefault(kind, _Episode(started_at=ts))
            episode.add(reading)
            duration = ts - episode.started_at
            if not episode.fired and duration >= self._settings.seconds(kind):
                episode.fired = True
                raised.append(
                    RuleViolation(
                        kind=kind,
                        started_at=episode.started_at,
                        duration=duration,
                        confidence=episode.confidence,
                        reason=self._reason(kind, episode, duration, stats),
                    )
                )
        return raised

    def _read(self, stats: FrameStats, faces: Sequence[Face]) -> dict[str, _Reading | None]:
        settings = self._settings
        confident = sorted((f for f in faces if f.score >= settings.threshold), key=lambda f: -f.score)
        best_score = max((f.score for f in faces), default=0.0)
        return {
            CAMERA_BLOCKED: self._blocked(stats),
            NO_FACE: None if confident else _Reading(confidence=1.0 - best_score, value=best_score),
            MULTIPLE_FACES: (
                _Reading(confidence=confident[1].score, value=float(len(confident)))
                if len(confident) >= 2
                else None
            ),
            LOOKING_AWAY: self._looking_away(confident),
        }

    def _blocked(self, stats: FrameStats) -> _Reading | None:
        settings = self._settings
        depth = 0.0  # how far below a threshold, 0 at the threshold, 1 at zero
        if stats.mean < settings.dark_mean:
            depth = max(depth, 1.0 - stats.mean / settings.dark_mean)
        if stats.stddev < settings.uniform_stddev:
            depth = max(depth, 1.0 - stats.stddev / settings.uniform_stddev)
        blocked = stats.mean < settings.dark_mean or stats.stddev < settings.uniform_stddev
        return _Reading(confidence=0.5 + 0.5 * depth, value=stats.mean) if blocked else None

    @staticmethod
    def _looking_away(confident: Sequence[Face]) -> _Reading | None:
        if len(confident) != 1:
            return None
        turn = head_turn(confident[0])
        if turn is None or turn <= HEAD_TURN_LIMIT:
            return None
        return _Reading(confidence=confident[0].score, value=turn)

    def _reason(self, kind: str, episode: _Episode, duration: float, stats: FrameStats) -> str:
        settings = self._settings
        if kind == NO_FACE:
            return (
                f"No face seen for {duration:.1f} s "
                f"(best score {episode.value_max:.2f} < {settings.threshold:.2f})"
            )
        if kind == MULTIPLE_FACES:
            return (
                f"{int(episode.value_max)} faces seen for {duration:.1f} s "
                f"(second face score {episode.confidence:.2f} >= {settings.threshold:.2f})"
            )
        if kind == LOOKING_AWAY:
            return (
                f"Head turned away for {duration:.1f} s (nose {episode.value_mean:.2f} eye distances "
                f"off the eye midpoint > {HEAD_TURN_LIMIT:.2f})"
            )
        causes = []
        if stats.mean < settings.dark_mean:
            causes.append(f"mean luminance {stats.mean:.0f} < {settings.dark_mean:.0f}")
        if stats.stddev < settings.uniform_stddev:
            causes.append(f"luminance std-dev {stats.stddev:.1f} < {settings.uniform_stddev:.1f}")
        return f"Camera blocked or covered for {duration:.1f} s ({'; '.join(causes)})"
