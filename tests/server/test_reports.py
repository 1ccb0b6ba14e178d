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
        {"id": "a", "student_name": name, "score": 2.5, "answered": 3, "deadline": None, "internal": "x"}
        for name in ("=cmd()", "+1", "-1", "@SUM(A1)", "Ada", "a=b")
    ]
    parsed = list(csv.DictReader(io.StringIO(render_csv(rows))))
    assert [r["student_name"] for r in parsed] == ["'=cmd()", "'+1", "'-1", "'@SUM(A1)", "Ada", "a=b"]
    assert parsed[0]["score"] == "2.5" and parsed[0]["answered"] == "3" and parsed[0]["deadline"] == ""
    assert "internal" not in parsed[0]  # only the report's columns
