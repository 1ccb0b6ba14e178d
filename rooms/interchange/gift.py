"""GIFT, Moodle's plain-text question format, into `Question`s; a small parser of our own.

The maintained Python GIFT parsers were not sound enough to put between a teacher's file and
an exam (docs/exams.md says why), so this one follows Moodle's own reader
(`question/format/gift/format.php`): questions are separated by blank lines, `//` lines are
comments, `::title::` names a question, `{…}` holds the answers, `\\` escapes `~ = # { } :`.

  {}                         essay
  {T} {FALSE}                true/false (a single choice of True/False)
  {=right ~wrong ~wrong}     single choice (several answers when no `=`, `~%50%` weights)
  {=a =b}                    short answer (accepted answers)
  {#3.14:0.01} {#1..5}       numeric (answer and tolerance, or a range)
  {=x -> 1 =y -> 2}          matching: an essay, reported as changed
  text {…} more text         the answers stand for a blank in the text ("missing word")
  no braces                  a description: refused, it asks nothing
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rooms.errors import Invalid

from .html_text import html_to_text, media_note
from .keys import choice_fields, fraction, number
from .report import ImportCollector, ImportResult, Refused

# Escaped characters stand in private-use code points while the markup is read.
_ESCAPES = {"~": "\ue000", "=": "\ue001", "#": "\ue002", "{": "\ue003", "}": "\ue004", ":": "\ue005", "\\": "\ue006"}
_RESTORE = str.maketrans({v: k for k, v in _ESCAPES.items()})
_ESCAPE = re.compile(r"\\([~=#{}:\\n])")
_TITLE = re.compile(r"^\s*::(.*?)::", re.S)
_FORMAT = re.compile(r"^\s*\[(html|moodle|plain|markdown)\]", re.I)
_WEIGHT = re.compile(r"^\s*%([^%]*)%")
_TRUE_FALSE = re.compile(r"^(T|TRUE|F|FALSE)\b(.*)$", re.I | re.S)
_MISSING_WORD = "_____"


def _escape(text: str) -> str:
    return _ESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else _ESCAPES[m.group(1)], text)


def _restore(text: str) -> str:
    return text.translate(_RESTORE)


@dataclass(frozen=True, slots=True)
class _Block:
    line: int  # where the question starts in the file (1-based)
    text: str


def _blocks(source: str) -> list[_Block]:
    blocks: list[_Block] = []
    current: list[str] = []
    start = 1
    for number_, line in enumerate(source.splitlines(), start=1):
        if line.lstrip().startswith("//"):
            continue
        if line.strip():
            if not current:
                start = number_
            current.append(line)
        elif current:
            blocks.append(_Block(start, "\n".join(current)))
            current = []
    if current:
        blocks.append(_Block(start, "\n".join(current)))
    return blocks


def read_gift(data: bytes, title: str | None = None) -> ImportResult:
    try:
        source = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid(
            f"a GIFT file is UTF-8 text; byte {exc.start} is not", code="not_utf8", fields={"file": "not UTF-8"}
        ) from None
    collector = ImportCollector("gift", title)
    category = ""
    for block in _blocks(_escape(source)):
        text = block.text
        if text.lstrip().startswith("$CATEGORY:"):
            first, _, rest = text.lstrip().partition("\n")
            category = _restore(first.removeprefix("$CATEGORY:")).strip().rstrip("/").rsplit("/", 1)[-1].strip()
            if category and category not in ("top", "$course$", "$system$") and collector.title is None:
                collector.title = category
            if not rest.strip():
                continue
            text = rest
        _question(collector, block.line, text)
    return collector.result()


def _question(collector: ImportCollector, line: int, text: str) -> None:
    name = f"line {line}"
    title = _TITLE.match(text)
    if title:
        name = _restore(title.group(1)).strip() or name
        text = text[title.end() :]
    fmt = "moodle"
    found = _FORMAT.match(text)
    if found:
        fmt = found.group(1).lower()
        text = text[found.end() :]
    opening = text.find("{")
    if opening < 0:
        collector.refuse(name, "a description is not a question (it has no {…} answers)")
        return
    closing = text.find("}", opening)
    if closing < 0:
        collector.refuse(name, "the answers' '{' is never closed by '}'")
        return
    after = text[closing + 1 :]
    if "{" in after or "}" in after or "}" in text[:opening]:
        collector.refuse(name, "the question has more than one {…} answer block (or a stray brace)")
        return
    notes: list[str] = []
    before = _plain(text[:opening], fmt, notes, "the question text")
    rest = _plain(after, fmt, notes, "the question text")
    question_text = f"{before} {_MISSING_WORD} {rest}".strip() if rest else before
    try:
        fields = _answers(text[opening + 1 : closing], fmt, notes)
    except Refused as exc:
        collector.refuse(name, str(exc), *notes)
        return
    collector.add(name, {"text": question_text, **fields}, notes)


def _plain(text: str, fmt: str, notes: list[str], where: str) -> str:
    text = _restore(text).strip()
    if fmt in ("html", "moodle"):
        text, media = html_to_text(text)
        if media:
            notes.append(media_note(media, where))
    return text


def _split_feedback(text: str) -> tuple[str, str]:
    """(text, its `#feedback`), the feedback being what follows the first `#`."""
    head, _, feedback = text.partition("#")
    return head, feedback


def _answers(body: str, fmt: str, notes: list[str]) -> dict[str, Any]:
    body, _, general = body.partition("####")
    fields: dict[str, Any] = {}
    if general.strip():
        fields["feedback"] = _plain(general, fmt, notes, "the feedback")
    body = body.strip()
    if not body:
        return {**fields, "kind": "essay"}
    if body.startswith("#"):
        return {**fields, **_numeric(body[1:])}
    truth = _TRUE_FALSE.match(body)
    if truth and not re.search(r"[=~]", truth.group(2)):
        value = truth.group(1).upper().startswith("T")
        return {**fields, "kind": "single", "options": ["True", "False"], "correct": [0 if value else 1]}
    head = re.split(r"[=~]", body, maxsplit=1)[0]
    if head.strip():
        raise Refused(f"the answers start with {_restore(head).strip()[:40]!r}, not with '=' or '~'")
    tokens = re.findall(r"([=~])([^=~]*)", body)
    if any("->" in answer for marker, answer in tokens if marker == "="):
        notes.insert(0, "matching question turned into an essay (graded by hand): its pairs are not imported")
        return {**fields, "kind": "essay"}
    options: list[str] = []
    fractions: list[float] = []
    for position, (marker, raw) in enumerate(tokens, start=1):
        weight = _WEIGHT.match(raw)
        if weight:
            value = fraction(weight.group(1), position)
            raw = raw[weight.end() :]
        else:
            value = 100.0 if marker == "=" else 0.0
        answer, _ = _split_feedback(raw)
        option = _plain(answer, fmt, notes, f"answer {position}")
        if not option:
            raise Refused(f"answer {position} is empty")
        options.append(option)
        fractions.append(value)
    if all(marker == "=" for marker, _ in tokens):
        return {**fields, **_short(options, fractions, notes)}
    # Moodle's rule: one answer allowed when any is marked `=`, several otherwise.
    single = any(marker == "=" for marker, _ in tokens)
    return {**fields, **choice_fields(options, fractions, single=single, all_or_nothing=False, notes=notes)}


def _short(options: list[str], fractions: list[float], notes: list[str]) -> dict[str, Any]:
    accepted = [o for o, f in zip(options, fractions, strict=True) if f >= 100]
    if not accepted:
        raise Refused("no short answer gives full credit")
    if len(accepted) < len(options):
        notes.append(f"{len(options) - len(accepted)} answer(s) with partial credit left out")
    return {"kind": "short", "accepted": accepted}


def _numeric(body: str) -> dict[str, Any]:
    body = body.strip()
    if not body:
        raise Refused("the numeric answer is empty")
    if body.startswith("="):
        # Several answers: `=%100%3.14:0.01 =%50%3:0.5`; the first fully right one is the key.
        candidates = []
        for position, raw in enumerate(re.findall(r"=([^=]*)", body), start=1):
            weight = _WEIGHT.match(raw)
            credit = fraction(weight.group(1), position) if weight else 100.0
            if weight:
                raw = raw[weight.end() :]
            if credit >= 100:
                candidates.append(raw)
        if not candidates:
            raise Refused("no numeric answer gives full credit")
        body = candidates[0]
    answer, _ = _split_feedback(body)
    answer = _restore(answer).strip()
    if ".." in answer:
        low_raw, _, high_raw = answer.partition("..")
        low, high = number(low_raw), number(high_raw)
        if low is None or high is None or high < low:
            raise Refused(f"the range {answer[:40]!r} is not two numbers, low..high")
        return {"kind": "numeric", "answer": (low + high) / 2, "tolerance": (high - low) / 2}
    value_raw, _, tolerance_raw = answer.partition(":")
    value = number(value_raw)
    if value is None:
        raise Refused(f"the numeric answer {value_raw.strip()[:40]!r} is not a number")
    tolerance: float | None = number(tolerance_raw) if tolerance_raw.strip() else 0.0
    if tolerance is None or tolerance < 0:
        raise Refused(f"the tolerance {tolerance_raw.strip()[:40]!r} is not a number ≥ 0")
    return {"kind": "numeric", "answer": value, "tolerance": tolerance}
