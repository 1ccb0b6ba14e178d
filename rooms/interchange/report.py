"""What an import did with each item: imported, changed (what and why) or refused (why).

Every parser hands each item it finds to an `ImportCollector`, which validates the fields as a
`rooms.exam.Question`, gives it a unique id made from its name, and records the outcome, so no
item is dropped without a line in the report.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from rooms.exam import Question

Status = Literal["imported", "changed", "refused"]

# An exam holds at most this many questions (rooms.exam.ExamSpec); more are refused, each named.
MAX_QUESTIONS = 500
_MAX_TEXT = 5000
_MAX_OPTION = 500
_ID_LENGTH = 64
# At least one letter or digit: ".." is a valid id to the model but not one a URL keeps.
_VALID_ID = re.compile(r"(?=.*[A-Za-z0-9])[A-Za-z0-9_.-]{1,64}")


class Refused(Exception):
    """This item cannot become a question; the message is the report's reason."""


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    """One item of the file: its position (1-based), its name, what happened and why."""

    number: int
    name: str
    status: Status
    notes: tuple[str, ...] = ()
    question_id: str | None = None
    kind: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "name": self.name,
            "status": self.status,
            "notes": list(self.notes),
            "question_id": self.question_id,
            "kind": self.kind,
        }


@dataclass(frozen=True, slots=True)
class ImportResult:
    """The questions an import produced, the report of every item, and a title for the exam."""

    format: str
    questions: tuple[Question, ...]
    items: tuple[ItemOutcome, ...]
    title: str | None = None
    notes: tuple[str, ...] = ()  # about the file as a whole (a category ignored, a test structure skipped)

    def counts(self) -> dict[str, int]:
        counts = {"imported": 0, "changed": 0, "refused": 0}
        for item in self.items:
            counts[item.status] += 1
        return counts

    def report_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "title": self.title,
            "counts": self.counts(),
            "notes": list(self.notes),
            "items": [item.to_json() for item in self.items],
        }


def slug(name: str) -> str:
    """An id fragment from a free-text name: ASCII letters, digits, `_.-`; may be empty."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", ascii_name).strip("-.")
    return cleaned[:_ID_LENGTH].strip("-.")


def shorten(text: str, limit: int, what: str, notes: list[str]) -> str:
    """`text` cut to `limit` characters, with a note saying so when it was longer."""
    if len(text) <= limit:
        return text
    notes.append(f"{what} shortened from {len(text)} to {limit} characters")
    return text[: limit - 1].rstrip() + "…"


@dataclass
class ImportCollector:
    """Builds an `ImportResult` item by item."""

    format: str
    title: str | None = None
    _items: list[ItemOutcome] = field(default_factory=list)
    _questions: list[Question] = field(default_factory=list)
    _ids: set[str] = field(default_factory=set)
    _notes: list[str] = field(default_factory=list)

    def next_number(self) -> int:
        return len(self._items) + 1

    def note(self, text: str) -> None:
        self._notes.append(text)

    def refuse(self, name: str, reason: str, *more: str) -> None:
        number = self.next_number()
        self._items.append(ItemOutcome(number, _label(name, number), "refused", (reason, *more)))

    def add(self, name: str, fields: dict[str, Any], notes: list[str] | None = None) -> None:
        """Validate `fields` (a `Question` without its id) and record the outcome.

        `notes` says what was changed on the way (a type turned into an essay, an image left
        out...); an item with notes is `changed`, one whose fields do not make a question is
        `refused` with the validator's reasons.
        """
        number = self.next_number()
        label = _label(name, number)
        notes = list(notes or ())
        if len(self._questions) >= MAX_QUESTIONS:
            self.refuse(name, f"an exam holds at most {MAX_QUESTIONS} questions")
            return
        fields = dict(fields)
        fields["text"] = shorten(str(fields.get("text", "")).strip(), _MAX_TEXT, "the question text", notes)
        if not fields["text"]:
            self.refuse(name, "the question has no text (once HTML and images are removed)", *notes)
            return
        if "options" in fields:
            options = []
            for i, option in enumerate(fields["options"], start=1):
                option = shorten(str(option).strip(), _MAX_OPTION, f"option {i}", notes)
                if not option:
                    self.refuse(name, f"option {i} has no text (once HTML and images are removed)", *notes)
                    return
                options.append(option)
            fields["options"] = tuple(options)
        if "feedback" in fields:
            fields["feedback"] = shorten(str(fields["feedback"]).strip(), _MAX_TEXT, "the feedback", notes)
        fields["id"] = self._unique_id(name, number)
        try:
            question = Question.model_validate(fields)
        except ValidationError as exc:
            reasons = [_reason(err) for err in exc.errors(include_url=False)]
            self.refuse(name, *reasons, *notes)
            return
        self._ids.add(question.id)
        self._questions.append(question)
        status: Status = "changed" if notes else "imported"
        self._items.append(ItemOutcome(number, label, status, tuple(notes), question.id, question.kind))

    def _unique_id(self, name: str, number: int) -> str:
        # A name that is already an id (our own export names questions by id) is kept as it is.
        base = name if _VALID_ID.fullmatch(name) else (slug(name) or f"q{number}")
        candidate, n = base, 2
        while candidate in self._ids:
            suffix = f"-{n}"
            candidate = base[: _ID_LENGTH - len(suffix)] + suffix  # still within the id's 64 characters
            n += 1
        return candidate

    def result(self) -> ImportResult:
        return ImportResult(self.format, tuple(self._questions), tuple(self._items), self.title, tuple(self._notes))


def _label(name: str, number: int) -> str:
    name = " ".join(name.split())
    return name[:120] if name else f"item {number}"


def _reason(error: Any) -> str:
    where = ".".join(str(p) for p in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
