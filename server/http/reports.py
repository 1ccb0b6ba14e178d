"""The room report as CSV: presentation of the rows the review repository returns.

Rendering lives at the edge; rooms/store/review.py only reads the attempts' summaries.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

REPORT_COLUMNS = (
    "id",
    "student_id",
    "student_name",
    "status",
    "started_at",
    "deadline",
    "submitted_at",
    "end_reason",
    "answered",
    "violations",
    "score",
    "extension_seconds",
    "last_violation_at",
)

# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
_FORMULA_STARTS = "=+-@"


def render_csv(rows: Iterable[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=REPORT_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        # Spreadsheet formula injection: a name starting with = + - @ would be evaluated.
        safe = {k: (f"'{v}" if isinstance(v, str) and v[:1] in _FORMULA_STARTS else v) for k, v in row.items()}
        writer.writerow(safe)
    return out.getvalue()
