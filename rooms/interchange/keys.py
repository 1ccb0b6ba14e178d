"""Answer keys as Moodle and GIFT write them (percent fractions per option) in our terms.

Both formats give each option a fraction of the question's points; `Question` has one right
option (single), a set of right options with all-or-nothing or partial credit (multiple),
and nothing in between, so each loss on the way is a note in the report.
"""

from __future__ import annotations

import math
from typing import Any

from .report import Refused


def number(raw: str) -> float | None:
    """A finite number from a file (a decimal comma accepted), or None."""
    try:
        value = float(raw.strip().replace(",", "."))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def fraction(raw: str, position: int) -> float:
    value = number(raw)
    if value is None or not -100 <= value <= 100:
        raise Refused(f"answer {position} has fraction {raw.strip()[:40]!r}, not a number from -100 to 100")
    return value


def choice_fields(
    options: list[str], fractions: list[float], *, single: bool, all_or_nothing: bool, notes: list[str]
) -> dict[str, Any]:
    """The `kind`, `options`, `correct` and `scoring` of a choice question."""
    if len(options) < 2:
        raise Refused(f"a choice question needs at least two answers; this one has {len(options)}")
    best = max(fractions)
    kind = "single" if single else "multiple"
    if best <= 0:
        notes.append("no answer gives credit: imported without a key (graded by hand)")
        return {"kind": kind, "options": options}
    if single:
        correct = fractions.index(best)
        others = [i + 1 for i, f in enumerate(fractions) if f > 0 and i != correct]
        if best < 100:
            notes.append(f"the best answer gave {best:g}%; here it is the one right answer")
        if others:
            listed = ", ".join(map(str, others))
            notes.append(f"answer(s) {listed} also gave credit; here only answer {correct + 1} is right")
        return {"kind": "single", "options": options, "correct": [correct]}
    right = [i for i, f in enumerate(fractions) if f > 0]
    if all_or_nothing:
        return {"kind": "multiple", "options": options, "correct": right, "scoring": "all_or_nothing"}
    if len({round(fractions[i], 3) for i in right}) > 1:
        notes.append("the right answers had different weights; here each counts the same (partial credit)")
    return {"kind": "multiple", "options": options, "correct": right, "scoring": "partial"}
