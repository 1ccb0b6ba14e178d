"""The speaking rule: speech adding up to `speaking_seconds` within the last
`speaking_window_seconds` of a student's microphone raises one `speaking` violation.

Pure logic, like detection/rules.py: no I/O, no clock of its own. It is fed the speech
probability of every 32 ms chunk (detection/voice.py) with the wall-clock time the last
chunk ended. Speech is added up over a sliding window rather than required unbroken,
because speech pauses between words and sentences; a violation carries how much speech
the window held. The rule re-arms only once a whole window has passed without speech, so
a student reading a question aloud for a minute gets one flag, not twenty.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from detection.rules import RuleViolation
from detection.settings import SPEAKING, RuleSettings
from detection.voice import CHUNK_SECONDS

SPEECH_PROBABILITY = 0.5  # Silero's own default threshold
# A longer pause in the audio itself (track stalled, reconnect) ends the episode: nothing was
# heard in between, so the window must not join speech from before and after it.
MAX_GAP = 10.0


class SpeakingRule:
    """One student's speaking state; `observe` returns a violation when one is due."""

    def __init__(self, settings: RuleSettings) -> None:
        self._seconds = settings.speaking_seconds
        # A window shorter than the speech it must hold could never fire: widen it.
        self._window = max(settings.speaking_window_seconds, settings.speaking_seconds)
        self._enabled = settings.listens
        self._chunks: deque[tuple[float, float]] = deque(maxlen=math.ceil(self._window / CHUNK_SECONDS))
        self._speech = 0  # speech chunks in the window
        self._fired = False
        self._last_at: float | None = None

    @property
    def speech_seconds(self) -> float:
        """Speech in the current window."""
        return self._speech * CHUNK_SECONDS

    def reset(self) -> None:
        self._chunks.clear()
        self._speech = 0
        self._fired = False
        self._last_at = None

    def observe(self, ended_at: float, probabilities: Sequence[float]) -> RuleViolation | None:
        """Feed consecutive chunks whose last one ended at `ended_at` (seconds, wall clock)."""
        if not self._enabled or not len(probabilities):
            return None
        first_at = ended_at - len(probabilities) * CHUNK_SECONDS
        if self._last_at is not None and first_at - self._last_at > MAX_GAP:
            self.reset()
        self._last_at = ended_at
        raised: RuleViolation | None = None
        for index, probability in enumerate(probabilities):
            at = first_at + index * CHUNK_SECONDS
            if len(self._chunks) == self._chunks.maxlen and self._chunks[0][1] >= SPEECH_PROBABILITY:
                self._speech -= 1  # the oldest chunk leaves the window
            self._chunks.append((at, float(probability)))
            if probability >= SPEECH_PROBABILITY:
                self._speech += 1
            if self._speech == 0:
                self._fired = False  # a whole window of silence: the next speech is a new episode
            elif not self._fired and self.speech_seconds >= self._seconds - 1e-9:
                self._fired = True
                raised = raised or self._violation()
        return raised

    def _violation(self) -> RuleViolation:
        speech = [(at, p) for at, p in self._chunks if p >= SPEECH_PROBABILITY]
        duration = len(speech) * CHUNK_SECONDS
        return RuleViolation(
            kind=SPEAKING,
            started_at=speech[0][0],
            duration=duration,
            confidence=min(1.0, sum(p for _, p in speech) / len(speech)),
            explanation=f"Speech heard for {duration:.1f} s within {self._window:g} s",
        )
