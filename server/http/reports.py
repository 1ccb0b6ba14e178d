"""The room report (its results) as CSV: presentation of the rows the results repository returns.

Rendering lives at the edge; rooms/store/results.py only reads the rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

# The room's results (rooms/store/results.py). A flag counts against a student only once a
# person confirmed it, so the report carries the verdict and the decided flags and no raw sum of
# flag weights; undecided flags are a count, for the reviewer to see what is left.
REPORT_COLUMNS = (
    "id",
    "student_id",
    "student_name",
    "status",
    "started_at",
    "submitted_at",
    "end_reason",
    "time_taken_seconds",
    "answered",
    "grade",
    "grade_max",
    "grade_final",
    "verdict",
    "verdict_label",
    "verdict_note",
    "verdict_by",
    "verdict_at",
    "confirmed_flags",
    "dismissed_flags",
    "unreviewed_flags",
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
