"""What each fault test measured, printed at the end of the run (and as JSON when
`PROCTOR_FAULT_FIGURES=path` is set) so docs/reliability.md "Faults" can cite a real run."""

from __future__ import annotations

import json
import math
from typing import Any

FIGURES: dict[str, dict[str, Any]] = {}


def record(fault: str, **figures: Any) -> None:
    """Keep one fault's figures and print them (visible with `-s`, and in the summary)."""
    FIGURES.setdefault(fault, {}).update(figures)
    print(f"[fault figures] {fault}: {json.dumps(figures, sort_keys=True, default=str)}")


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (nearest rank); 0 for no samples."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
