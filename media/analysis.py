"""What one analysed attempt is, as the peers and the sampler share it: its settings, its
frame slot, and the protocol through which results leave `media/`.

Kept apart from `peers.py` and `sampler.py` so that neither imports the other: the peers
produce `AnalysisSource`s, the sampler consumes anything that lists them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from detection import RuleSettings, RuleViolation

from .audio import AudioRing
from .errors import MediaError
from .frames import LatestFrame

# Below this the sampler would spend more time scheduling than the detector saves; above
# a minute "live" analysis stops meaning anything.
MIN_SAMPLE_INTERVAL = 0.05
MAX_INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class AnalysisSettings:
    """How one attempt is analysed; built by `server/` from the exam's rules.

    `sample_interval` is how often (seconds) the latest frame goes to the detector;
    `thumbnail_interval` how often the dashboard gets a thumbnail (it rides on a sample,
    so it is never more frequent than `sample_interval`).
    """

    rule_settings: RuleSettings
    enabled: bool = True
    sample_interval: float = 1.0
    thumbnail_interval: float = 5.0

    def __post_init__(self) -> None:
        if not MIN_SAMPLE_INTERVAL <= self.sample_interval <= MAX_INTERVAL:
            raise MediaError(
                "invalid",
                f"sample_interval must be {MIN_SAMPLE_INTERVAL}..{MAX_INTERVAL} s, got {self.sample_interval}",
            )
        if not MIN_SAMPLE_INTERVAL <= self.thumbnail_interval <= 10 * MAX_INTERVAL:
            raise MediaError(
                "invalid",
                f"thumbnail_interval must be {MIN_SAMPLE_INTERVAL}..{10 * MAX_INTERVAL} s, "
                f"got {self.thumbnail_interval}",
            )

    @property
    def listens(self) -> bool:
        """Whether the attempt's microphone track is analysed for speech (media/listener.py)."""
        return self.rule_settings.listens

    @classmethod
    def from_rules(
        cls,
        rules: Mapping[str, Any],
        accommodations: Iterable[str] = (),
        *,
        enabled: bool = True,
        sample_interval: float = 1.0,
        thumbnail_interval: float = 5.0,
    ) -> AnalysisSettings:
        """Build from an exam's rules and one student's accommodations (detection parses)."""
        return cls(
            rule_settings=RuleSettings.from_rules(rules, accommodations),
            enabled=enabled,
            sample_interval=sample_interval,
            thumbnail_interval=thumbnail_interval,
        )


@dataclass(frozen=True, slots=True)
class AnalysisSource:
    """One attempt's live video as the sampler sees it.

    A new peer for the same attempt (the student reconnected) comes with a new `slot`;
    the sampler notices by identity and keeps the attempt's rule state.

    `paced`: the sender already sends one frame per sample interval (the snapshot
    transport), so every frame that arrives is a sample and the sampler takes each one as
    it comes. Otherwise (a WebRTC track, several frames a second) the sampler reads the
    slot at its own clock, in the student's lane.
    """

    attempt_id: str
    settings: AnalysisSettings
    slot: LatestFrame
    audio: AudioRing | None = None  # the microphone's ring, only when `settings.listens`
    paced: bool = False


class AnalysisSources(Protocol):
    """Anything that lists the attempts currently sending video (`AnalysisPeers` does)."""

    def sources(self) -> list[AnalysisSource]: ...


class AnalysisSink(Protocol):
    """Where analysis results go; `server/` implements it (durable writer, dashboard).

    Both are awaited by the sampler's batch task: a slow sink delays the next batch and
    so shows up as dropped samples, never as a queue.
    """

    async def violation(self, attempt_id: str, violation: RuleViolation, evidence_jpeg: bytes) -> None: ...

    async def thumbnail(self, attempt_id: str, jpeg: bytes) -> None: ...
