"""Per-student rules that turn frame statistics and detected faces into violations.

Pure logic: no I/O, no clock of its own. Each rule watches one condition; a condition that
has held for its hold time raises one violation, and the rule re-arms only once the
condition has cleared, so a student who stays out of frame for a minute gets one
"no_face" violation, not twenty.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from detection.face_detector import Face
from detection.settings import (
    CAMERA_BLOCKED,
    FACE_TOO_SMALL,
    HEAD_TURNED,
    LOOKING_DOWN,
    MULTIPLE_FACES,
    NO_FACE,
    TOO_BLURRED,
    TOO_DARK,
    UNABLE_TO_JUDGE,
    RuleSettings,
)
from detection.signals import FrameStats, head_pitch, head_turn

# A longer silence between two frames (camera off, connection lost) ends every episode:
# nothing was seen in between, so that time must not count towards a hold time.
DEFAULT_MAX_GAP = 10.0
# A rule fires at the sample nearest to the moment its hold time is reached, not at the first
# one after it: frames arrive with jitter (~0.2 s at 1 s), and "first sample at or past the
# hold" made a 3 s hold read "4.0 s" whenever a tick landed just short of it. The slack is
# this fraction of the typical sample interval (under a half, so a tie goes to the later
# sample) and never more than half the hold itself.
SLACK_OF_INTERVAL = 0.4
_INTERVALS_KEPT = 8  # the typical interval is the median of the last few


@dataclass(frozen=True, slots=True)
class RuleViolation:
    """A condition that held long enough to be reported."""

    kind: str  # one of detection.settings.RAISED
    started_at: float  # first frame where the condition held, on the caller's clock
    duration: float  # the rule's hold time: the condition held that long when raised
    confidence: float  # 0..1
    explanation: str  # plain words for the teacher: the live feed, the dashboard's drawer and the review
    # Kind-specific measures (ratios, thresholds); the "unable to judge" kinds carry
    # {"state": "unable_to_judge"}. JSON-ready: str and float values only.
    details: dict[str, str | float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Reading:
    """What one frame says about one condition that holds in it."""

    confidence: float  # 0..1, averaged over the episode
    value: float  # kind-specific measure quoted in the explanation


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

    * ``camera_blocked``: no confident face, and mean luminance below ``dark_mean`` or its
      std-dev below ``uniform_stddev`` (lens covered, camera pointed at a wall). A face
      seen in a dark frame means the camera is not blocked. Confidence grows from 0.5 at
      the threshold to 1.0 for a black or perfectly flat frame.
    * ``no_face``: no face scored at least ``threshold`` in a frame sharp and bright
      enough to judge (mean luminance at least ``dark_mean`` and ``too_dark_mean``,
      sharpness at least ``min_sharpness``): there an absent face proves nothing. A uniform
      (wall-like) frame raises it together with ``camera_blocked``. Confidence is 1 minus
      the best (sub-threshold) score.
    * ``multiple_faces``: two or more faces at or above ``threshold``; confidence is the
      second-best score.
    * ``head_turned`` / ``looking_down``: exactly one face, large enough to judge, whose
      ``head_turn`` exceeds ``yaw_ratio`` / whose ``head_pitch`` exceeds ``pitch_ratio``;
      confidence is the face's score. Faces without landmarks are never judged.
    * "unable to judge" states (weight 0 by default): ``too_dark`` (no face, mean luminance
      in [``dark_mean``, ``too_dark_mean``): darker is ``camera_blocked``), ``face_too_small``
      (the best face is shorter than ``min_face_height`` of the frame: head pose is not
      judged on it), ``too_blurred`` (no face, ``FrameStats.sharpness`` under
      ``min_sharpness`` in a frame that is not already blocked).

    Confidences are averaged over the frames of the episode. Frames older than the last
    one are dropped, and a silence longer than ``max_gap`` seconds between two frames
    ends every episode (re-arming fired rules), since nothing was seen in between.
    """

    def __init__(self, settings: RuleSettings, *, max_gap: float | None = DEFAULT_MAX_GAP) -> None:
        self._settings = settings
        self._max_gap = max_gap
        self._episodes: dict[str, _Episode] = {}
        self._last_ts: float | None = None
        self._intervals: deque[float] = deque(maxlen=_INTERVALS_KEPT)

    @property
    def settings(self) -> RuleSettings:
        return self._settings

    def reset(self) -> None:
        """Forget every episode, e.g. when the student's camera track restarts."""
        self._episodes.clear()
        self._last_ts = None
        self._intervals.clear()

    def observe(self, ts: float, stats: FrameStats, faces: Sequence[Face]) -> list[RuleViolation]:
        """Feed one frame seen at ``ts`` seconds; returns the violations raised by it."""
        if self._last_ts is not None:
            if ts < self._last_ts:
                # An out-of-order frame would make durations run backwards; drop it.
                return []
            if self._max_gap is not None and ts - self._last_ts > self._max_gap:
                self._episodes.clear()
                self._intervals.clear()
            else:
                self._intervals.append(ts - self._last_ts)
        self._last_ts = ts
        interval = statistics.median(self._intervals) if self._intervals else 0.0

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
            elapsed = ts - episode.started_at
            hold = self._settings.seconds(kind)
            slack = min(SLACK_OF_INTERVAL * interval, hold / 2)
            if not episode.fired and elapsed >= hold - slack:
                episode.fired = True
                details = self._details(kind, episode)
                details["observed_seconds"] = round(elapsed, 2)
                raised.append(
                    RuleViolation(
                        kind=kind,
                        started_at=episode.started_at,
                        duration=hold,
                        confidence=episode.confidence,
                        explanation=self._explanation(kind, episode, hold, stats),
                        details=details,
                    )
                )
        return raised

    def _read(self, stats: FrameStats, faces: Sequence[Face]) -> dict[str, _Reading | None]:
        settings = self._settings
        confident = sorted((f for f in faces if f.score >= settings.threshold), key=lambda f: -f.score)
        best_score = max((f.score for f in faces), default=0.0)
        # A face the detector is sure of proves the camera sees the room, however dark the
        # frame (CenterFace finds faces down to mean luminance 8, docs/analysis-quality.md).
        blocked = None if confident else self._blocked(stats)
        # Without a face, a dark or very blurred frame proves nothing: no "No face" then.
        dark = stats.mean < max(settings.dark_mean, settings.too_dark_mean)
        blurred = blocked is None and stats.sharpness < settings.min_sharpness
        small = self._too_small(stats, confident)
        judged = confident[0] if len(confident) == 1 and small is None else None
        return {
            CAMERA_BLOCKED: blocked,
            NO_FACE: (
                None if confident or dark or blurred else _Reading(confidence=1.0 - best_score, value=best_score)
            ),
            MULTIPLE_FACES: (
                _Reading(confidence=confident[1].score, value=float(len(confident))) if len(confident) >= 2 else None
            ),
            HEAD_TURNED: self._pose(judged, head_turn, settings.yaw_ratio),
            LOOKING_DOWN: self._pose(judged, head_pitch, settings.pitch_ratio),
            TOO_DARK: (
                _Reading(confidence=1.0 - stats.mean / settings.too_dark_mean, value=stats.mean)
                if not confident and settings.dark_mean <= stats.mean < settings.too_dark_mean
                else None
            ),
            FACE_TOO_SMALL: small,
            TOO_BLURRED: (
                _Reading(confidence=1.0 - stats.sharpness / settings.min_sharpness, value=stats.sharpness)
                if blurred and not confident
                else None
            ),
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

    def _too_small(self, stats: FrameStats, confident: Sequence[Face]) -> _Reading | None:
        if not confident or stats.height <= 0:
            return None
        fraction = confident[0].height / stats.height
        if fraction >= self._settings.min_face_height:
            return None
        return _Reading(confidence=confident[0].score, value=fraction)

    @staticmethod
    def _pose(face: Face | None, measure: Callable[[Face], float | None], limit: float) -> _Reading | None:
        if face is None:
            return None
        ratio = measure(face)
        if ratio is None or ratio <= limit:
            return None
        return _Reading(confidence=face.score, value=ratio)

    def _details(self, kind: str, episode: _Episode) -> dict[str, str | float]:
        settings = self._settings
        if kind == HEAD_TURNED:
            return {
                "yaw_ratio": round(episode.value_mean, 3),
                "yaw_ratio_max": round(episode.value_max, 3),
                "threshold": settings.yaw_ratio,
            }
        if kind == LOOKING_DOWN:
            return {
                "pitch_ratio": round(episode.value_mean, 3),
                "pitch_ratio_max": round(episode.value_max, 3),
                "threshold": settings.pitch_ratio,
            }
        if kind in UNABLE_TO_JUDGE:
            threshold = {
                TOO_DARK: settings.too_dark_mean,
                FACE_TOO_SMALL: settings.min_face_height,
                TOO_BLURRED: settings.min_sharpness,
            }[kind]
            return {
                "state": "unable_to_judge",
                "cause": kind,
                "value": round(episode.value_mean, 3),
                "threshold": threshold,
            }
        return {}

    def _explanation(self, kind: str, episode: _Episode, duration: float, stats: FrameStats) -> str:
        settings = self._settings
        if kind == NO_FACE:
            return f"No face seen for {duration:.1f} s (best score {episode.value_max:.2f} < {settings.threshold:.2f})"
        if kind == MULTIPLE_FACES:
            return (
                f"{int(episode.value_max)} faces seen for {duration:.1f} s "
                f"(second face score {episode.confidence:.2f} >= {settings.threshold:.2f})"
            )
        if kind == HEAD_TURNED:
            return (
                f"Head turned to the side for {duration:.1f} s "
                f"(yaw ratio {episode.value_mean:.2f} > {settings.yaw_ratio:.2f})"
            )
        if kind == LOOKING_DOWN:
            return (
                f"Head tilted down for {duration:.1f} s "
                f"(pitch ratio {episode.value_mean:.2f} > {settings.pitch_ratio:.2f})"
            )
        if kind == TOO_DARK:
            return (
                f"Too dark to judge for {duration:.1f} s (mean luminance {episode.value_mean:.0f} "
                f"< {settings.too_dark_mean:.0f}); not counted as 'No face'"
            )
        if kind == FACE_TOO_SMALL:
            return (
                f"Face too far to judge for {duration:.1f} s (face height {episode.value_mean:.0%} "
                f"of the frame < {settings.min_face_height:.0%})"
            )
        if kind == TOO_BLURRED:
            return (
                f"Picture too blurred to judge for {duration:.1f} s "
                f"(sharpness {episode.value_mean:.2f} < {settings.min_sharpness:.2f})"
            )
        causes = []
        if stats.mean < settings.dark_mean:
            causes.append(f"mean luminance {stats.mean:.0f} < {settings.dark_mean:.0f}")
        if stats.stddev < settings.uniform_stddev:
            causes.append(f"luminance std-dev {stats.stddev:.1f} < {settings.uniform_stddev:.1f}")
        return f"Camera blocked or covered for {duration:.1f} s ({'; '.join(causes)})"
