"""What a person decides after the exam, and the words a reviewer reads. Pure rules, no SQL.

A flag is evidence for a reviewer, never a finding: it counts against a student only once a
person has confirmed it (the EU AI Act treats exam proctoring as high-risk and asks for human
oversight). A reviewer confirms or dismisses each flag with a note and closes the attempt with a
verdict. The rules of that decision (which verdict may be given when) are here; the store
(rooms/store/review.py) writes what they allow.

One field name, one meaning: `explanation` is the human text of a flag everywhere (the live
`violation` event, the dashboard's feed and drawer, the review timeline, the exports); `reason`
is only ever why an attempt ended.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from core.vocabulary import KINDS

from .errors import Conflict, Invalid

FlagDecision = Literal["confirmed", "dismissed"]
Verdict = Literal["cleared", "follow_up", "misconduct"]

# id -> the words on the pages and in the CSV (the ids are what the API and the database keep).
VERDICT_LABELS: dict[Verdict, str] = {
    "cleared": "Cleared",
    "follow_up": "Follow-up needed",
    "misconduct": "Misconduct confirmed",
}
FLAG_DECISION_LABELS: dict[FlagDecision, str] = {"confirmed": "Confirmed", "dismissed": "Dismissed"}


def flag_explanation(kind: str, details: Mapping[str, Any]) -> str:
    """The detector's own words for a flag, or the kind's one-line explanation.

    Server flags store the rule's text in `details.explanation` ("No face seen for 4.0 s (best
    score 0.00 < 0.50)"); flags stored before step 12 carried it as `details.reason`. A client
    signal has no measurement, so its explanation is the vocabulary's line for its kind."""
    for key in ("explanation", "reason"):
        text = details.get(key)
        if isinstance(text, str) and text.strip():
            return text
    known = KINDS.get(kind)
    return known.explanation if known is not None else f"Signal {kind!r} (no explanation recorded)."


def plural(count: int, one: str, many: str | None = None) -> str:
    """A count as people write it: "1 student", "3 students", "0 flags"."""
    return f"{count} {one if count == 1 else (many or one + 's')}"


def answer_text(kind: str, options: Sequence[str], value: Any) -> str:
    """An answer as a reviewer reads it: the chosen option's text, not its index."""
    if kind in ("single", "multiple"):
        chosen = value if isinstance(value, list) else [value]
        texts = [
            options[i] if isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(options) else f"option {i}"
            for i in chosen
        ]
        return "; ".join(texts) if texts else "(nothing chosen)"
    if value is None:
        return "(no answer)"
    return str(value)


@dataclass(frozen=True, slots=True)
class FlagCounts:
    """An attempt's flags by review state."""

    unreviewed: int
    confirmed: int
    dismissed: int

    @property
    def total(self) -> int:
        return self.unreviewed + self.confirmed + self.dismissed


def check_verdict(verdict: Verdict, note: str, status: str, flags: FlagCounts) -> None:
    """Raise unless `verdict` may close an attempt in this state.

    - the attempt has ended (a verdict on a running exam would judge half of it);
    - every flag has been confirmed or dismissed (the verdict rests on decided flags only);
    - "misconduct confirmed" rests on at least one confirmed flag;
    - "follow-up needed" and "misconduct confirmed" say why in the note."""
    if status in ("active", "paused"):
        raise Conflict("the attempt is still running; give a verdict once it has ended", code="attempt_running")
    if flags.unreviewed:
        raise Conflict(
            f"{plural(flags.unreviewed, 'flag')} still to be confirmed or dismissed before a verdict",
            code="unreviewed_flags",
        )
    if verdict == "misconduct" and not flags.confirmed:
        raise Conflict("misconduct can be confirmed only on a confirmed flag", code="no_confirmed_flag")
    if verdict != "cleared" and not note.strip():
        raise Invalid(f"say why in the note ({VERDICT_LABELS[verdict]})", fields={"note": "required for this verdict"})


def vocabulary() -> dict[str, object]:
    """The verdicts and flag decisions for the pages (/app-config.json)."""
    return {
        "verdicts": [{"id": k, "label": v} for k, v in VERDICT_LABELS.items()],
        "flag_decisions": [{"id": k, "label": v} for k, v in FLAG_DECISION_LABELS.items()],
    }
