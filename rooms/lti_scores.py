"""Grades for the platform (LTI Assignment and Grade Services) as the domain sees them: what a
score says about the attempt's progress, the outbox row that carries it, and the retry rule.

The HTTP side (the token, the line item, the POST) is server/lti/ags.py; the table is
lti_grade_outbox (rooms/store/migrations/0010_lti_services.sql); docs/lti.md "Grades (AGS)".
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

# The AGS vocabulary (https://www.imsglobal.org/spec/lti-ags/v2p0#score-publish-service).
ActivityProgress = Literal["Initialized", "Started", "InProgress", "Submitted", "Completed"]
GradingProgress = Literal["FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"]
DeliveryState = Literal["pending", "delivered", "failed"]

SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_LINEITEM_READONLY = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
SCORE_MEDIA_TYPE = "application/vnd.ims.lis.v1.score+json"
LINEITEM_MEDIA_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS_MEDIA_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"


@dataclass(frozen=True, slots=True)
class Progress:
    activity: ActivityProgress
    grading: GradingProgress


def progress_of(score_given: float | None, *, final: bool) -> Progress:
    """What a score says: final is the whole grade (auto and manual parts); a score that is not
    final is the automatically graded part with manual grading still to come; no score yet is
    a submitted attempt whose grading has not started."""
    if final:
        return Progress("Completed", "FullyGraded")
    if score_given is None:
        return Progress("Submitted", "Pending")
    return Progress("Submitted", "PendingManual")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row as a worker claimed it: the score to publish for one attempt."""

    id: str
    attempt_id: str
    link_id: str
    user_id: str
    score_given: float | None
    score_maximum: float | None
    activity_progress: ActivityProgress
    grading_progress: GradingProgress
    scored_at: datetime
    version: int
    tries: int

    def score_json(self) -> dict[str, object]:
        """The body of `POST {lineitem}/scores`; scoreGiven only with its maximum (the spec)."""
        body: dict[str, object] = {
            "userId": self.user_id,
            "activityProgress": self.activity_progress,
            "gradingProgress": self.grading_progress,
            "timestamp": self.scored_at.isoformat(timespec="milliseconds"),
        }
        if self.score_given is not None and self.score_maximum is not None:
            body["scoreGiven"] = self.score_given
            body["scoreMaximum"] = self.score_maximum
        return body


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped exponential back-off with jitter; after `max_tries` a delivery is `failed`."""

    base_seconds: float = 10.0
    cap_seconds: float = 3600.0
    max_tries: int = 12

    def delay(self, tries: int, rng: random.Random | None = None) -> float:
        """Seconds before try `tries + 1`, after `tries` failed: base · 2^(tries-1), capped,
        then drawn from its upper half so that many rows failed at once spread out."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2.0 ** max(0, tries - 1))
        return float(ceiling * (0.5 + 0.5 * (rng or random).random()))

    def exhausted(self, tries: int) -> bool:
        return tries >= self.max_tries
