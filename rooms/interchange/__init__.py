"""Questions in and out of the formats teachers already have: Moodle XML, GIFT, QTI 2.1.

Every import turns a file into `rooms.exam.Question`s and a report of each item (imported,
changed and why, refused and why); `draft_exam` makes the `ExamSpec` the catalog stores.
Pure domain code: no HTTP, no database (the REST edge is server/http/interchange.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from rooms.errors import Invalid, TooLarge
from rooms.exam import ExamSpec

from .gift import read_gift
from .moodle_export import to_moodle_xml
from .moodle_xml import read_moodle_xml
from .qti import read_qti_package
from .report import MAX_QUESTIONS, ImportResult, ItemOutcome
from .zipsafe import LIMITS, SafeZip, ZipLimits

Format = Literal["moodle", "gift", "qti"]
FORMATS: tuple[Format, ...] = ("moodle", "gift", "qti")
# The largest file an import reads (the HTTP edge stops reading the upload there too).
MAX_UPLOAD_BYTES = 10 << 20
DEFAULT_TITLE = "Imported questions"

_READERS: dict[Format, Callable[[bytes, str | None], ImportResult]] = {
    "moodle": read_moodle_xml,
    "gift": read_gift,
    "qti": read_qti_package,
}


def import_questions(fmt: Format, data: bytes, title: str | None = None) -> ImportResult:
    """Read `data` in format `fmt`; the report names every item. Raises `Invalid`/`TooLarge`
    when the file as a whole cannot be read (not XML, entities, an unsafe zip...)."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise TooLarge(f"the file is larger than {MAX_UPLOAD_BYTES} bytes", code="upload_too_large")
    if not data.strip():
        raise Invalid("the file is empty", code="empty_file", fields={"file": "empty"})
    return _READERS[fmt](data, title)


def draft_exam(result: ImportResult, *, title: str | None = None, duration_minutes: int = 60) -> ExamSpec:
    """The exam an import creates; `Invalid` when no item could be imported."""
    if not result.questions:
        refused = {f"items.{item.number}": f"{item.name}: {'; '.join(item.notes)}"[:500] for item in result.items}
        raise Invalid(
            "no question in the file could be imported",
            code="nothing_imported",
            fields=dict(list(refused.items())[:50]) or {"file": "no questions found"},
        )
    name = (title or result.title or DEFAULT_TITLE).strip()[:200] or DEFAULT_TITLE
    return ExamSpec(title=name, duration_minutes=duration_minutes, questions=result.questions)


__all__ = [
    "DEFAULT_TITLE",
    "FORMATS",
    "LIMITS",
    "MAX_QUESTIONS",
    "MAX_UPLOAD_BYTES",
    "Format",
    "ImportResult",
    "ItemOutcome",
    "SafeZip",
    "ZipLimits",
    "draft_exam",
    "import_questions",
    "to_moodle_xml",
]
