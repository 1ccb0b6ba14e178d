"""The room report's CSV (server/http/reports.py), rendered from the review repository's rows."""

from __future__ import annotations

import csv
import io

from server.http.reports import REPORT_COLUMNS, render_csv


def test_header_and_column_order_are_the_reports() -> None:
    text = render_csv([])
    assert text == ",".join(REPORT_COLUMNS) + "\r\n"
    assert REPORT_COLUMNS[:3] == ("id", "student_id", "student_name")


def test_formula_starts_are_neutralised_and_other_cells_kept() -> None:
    rows = [
        {
            "id": "a",
            "student_name": name,
            "grade": 2.5,
            "answered": 3,
            "submitted_at": None,
            "verdict_note": "-x",
            "score": 9,
        }
        for name in ("=cmd()", "+1", "-1", "@SUM(A1)", "Ada", "a=b")
    ]
    parsed = list(csv.DictReader(io.StringIO(render_csv(rows))))
    assert [r["student_name"] for r in parsed] == ["'=cmd()", "'+1", "'-1", "'@SUM(A1)", "Ada", "a=b"]
    assert parsed[0]["grade"] == "2.5" and parsed[0]["answered"] == "3" and parsed[0]["submitted_at"] == ""
    assert parsed[0]["verdict_note"] == "'-x"  # a reviewer's note is text a student may have provoked, too
    assert "score" not in parsed[0]  # only the report's columns: a raw flag score is never one of them


def test_the_report_carries_the_verdict_and_decided_flags_and_no_raw_score() -> None:
    assert {"verdict", "verdict_note", "confirmed_flags", "unreviewed_flags", "grade", "grade_final"} <= set(
        REPORT_COLUMNS
    )
    assert not [c for c in REPORT_COLUMNS if "score" in c or "severity" in c or "weight" in c]
