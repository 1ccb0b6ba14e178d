"""Moodle XML (`<quiz><question type="…">`) into `Question`s, item by item.

Supported: multichoice (single or several answers), multichoiceset (the all-or-nothing
plugin), truefalse, shortanswer, numerical, essay. Types we cannot grade the Moodle way
(matching, cloze, drag and drop, calculated...) become essays graded by hand, reported as
*changed*; description, random and unknown types are *refused*, each with its reason.
docs/exams.md ("Import and export") lists every rule.
"""

from __future__ import annotations

import re
from typing import Any
from xml.etree.ElementTree import Element

from rooms.errors import Invalid

from .html_text import html_to_text, local, media_note
from .keys import choice_fields, fraction, number
from .report import ImportCollector, ImportResult, Refused
from .xml_input import child, children, parse_xml, text_of

# Moodle types that hold a question text we can keep, graded by hand here.
TO_ESSAY: dict[str, str] = {
    "match": "matching question",
    "matching": "matching question",
    "randomsamatch": "random short-answer matching question",
    "multianswer": "cloze (embedded answers) question",
    "cloze": "cloze (embedded answers) question",
    "ddwtos": "drag-and-drop into text question",
    "gapselect": "select-missing-words question",
    "ddimageortext": "drag-and-drop onto image question",
    "ddmarker": "drag-and-drop markers question",
    "calculated": "calculated question",
    "calculatedsimple": "simple calculated question",
    "calculatedmulti": "calculated multichoice question",
    "ordering": "ordering question",
}
REFUSED: dict[str, str] = {
    "description": "a description is not a question (it has nothing to answer)",
    "random": "a random question draws from a Moodle category, which the file does not carry",
}
# Cloze markup carries its answers inside the text: `{1:SHORTANSWER:=Paris}`. Shown as a blank.
_CLOZE = re.compile(r"\{\d*:[A-Z_]+:[^{}]*\}")


def read_moodle_xml(data: bytes, title: str | None = None) -> ImportResult:
    root = parse_xml(data, "the Moodle XML file")
    if local(root.tag) != "quiz":
        raise Invalid(
            f"a Moodle XML file starts with <quiz>, this one with <{local(root.tag)}>",
            code="not_moodle_xml",
            fields={"file": "expected <quiz>"},
        )
    collector = ImportCollector("moodle", title)
    for element in root:
        if local(element.tag) != "question":
            continue
        kind = (element.get("type") or "").strip().lower()
        if kind == "category":
            path = text_of(element, "category") or text_of(element, "info")
            name = path.rstrip("/").rsplit("/", 1)[-1].strip()
            if name and name not in ("top", "$course$", "$system$") and collector.title is None:
                collector.title = name
            continue
        _question(collector, element, kind)
    return collector.result()


def _question(collector: ImportCollector, q: Element, kind: str) -> None:
    name = text_of(q, "name") or f"{kind or 'untyped'} question"
    if kind in REFUSED:
        collector.refuse(name, REFUSED[kind])
        return
    notes: list[str] = []
    text = _rich_text(child(q, "questiontext"), notes, "the question text")
    if kind in ("multianswer", "cloze"):
        text, blanks = _CLOZE.subn("_____", text)
        if blanks:
            notes.append(f"its {blanks} embedded answer(s) are shown as blanks")
    fields: dict[str, Any] = {"text": text, "feedback": _rich_text(child(q, "generalfeedback"), notes, "the feedback")}
    points = _points(q, notes)
    if points is not None:
        fields["points"] = points
    try:
        if kind in ("multichoice", "multichoiceset"):
            fields.update(_choice(q, kind, notes))
        elif kind == "truefalse":
            fields.update(_truefalse(q, notes))
        elif kind == "shortanswer":
            fields.update(_short(q, notes))
        elif kind == "numerical":
            fields.update(_numerical(q, notes))
        elif kind == "essay":
            fields["kind"] = "essay"
            grader = _rich_text(child(q, "graderinfo"), notes, "the grader information")
            if grader:
                fields["feedback"] = "\n\n".join(p for p in (fields["feedback"], grader) if p)
        elif kind in TO_ESSAY:
            fields["kind"] = "essay"
            notes.insert(0, f"{TO_ESSAY[kind]} turned into an essay (graded by hand): its answers are not imported")
        else:
            collector.refuse(name, f"unknown question type {kind!r}" if kind else "the question has no type")
            return
    except Refused as exc:
        collector.refuse(name, str(exc), *notes)
        return
    collector.add(name, fields, notes)


def _rich_text(element: Element | None, notes: list[str], where: str) -> str:
    if element is None:
        return ""
    raw = text_of(element)
    fmt = (element.get("format") or "html").lower()
    media = [f.get("name") or "file" for f in children(element, "file")]
    if fmt in ("html", "moodle_auto_format"):
        text, referenced = html_to_text(raw)
        media += [m for m in referenced if not any(m.endswith(f) for f in media)]
    else:
        text = raw.strip()
    if media:
        notes.append(media_note(media, where))
    return text


def _points(q: Element, notes: list[str]) -> float | None:
    raw = text_of(q, "defaultgrade")
    if not raw:
        return None
    value = number(raw)
    if value is None or not 0 <= value <= 1000:
        notes.append(f"defaultgrade {raw!r} is not a number of points from 0 to 1000; 1 point used")
        return 1.0
    return value


def _answers(q: Element, notes: list[str]) -> list[tuple[str, float, Element]]:
    """(text, fraction in %, element) per `<answer>`; a bad fraction refuses the item."""
    found = []
    for i, answer in enumerate(children(q, "answer"), start=1):
        value = fraction(answer.get("fraction") or "0", i)
        fmt = (answer.get("format") or "plain_text").lower()
        raw_text = text_of(answer)
        if fmt in ("html", "moodle_auto_format"):
            text, media = html_to_text(raw_text)
            media += [f.get("name") or "file" for f in children(answer, "file")]
            if media:
                notes.append(media_note(media, f"answer {i}"))
        else:
            text = raw_text.strip()
        found.append((text, value, answer))
    return found


def _choice(q: Element, kind: str, notes: list[str]) -> dict[str, Any]:
    answers = _answers(q, notes)
    # Moodle reads a missing <single> as true.
    single = (text_of(q, "single") or "true").lower() in ("true", "1") and kind == "multichoice"
    return choice_fields(
        [text for text, _, _ in answers],
        [f for _, f, _ in answers],
        single=single,
        all_or_nothing=kind == "multichoiceset",
        notes=notes,
    )


def _truefalse(q: Element, notes: list[str]) -> dict[str, Any]:
    answers = _answers(q, notes)
    truth: bool | None = None
    for text, value, _ in answers:
        answer_text = text.strip().lower()
        if answer_text not in ("true", "false"):
            raise Refused(f"a true/false answer reads {text[:40]!r}, not true or false")
        if value >= 100:
            truth = answer_text == "true"
    if truth is None:
        raise Refused("neither true nor false gives full credit")
    return {"kind": "single", "options": ["True", "False"], "correct": [0 if truth else 1]}


def _short(q: Element, notes: list[str]) -> dict[str, Any]:
    answers = _answers(q, notes)
    accepted = [text for text, f, _ in answers if f >= 100 and text]
    partial = [text for text, f, _ in answers if 0 < f < 100]
    if not accepted:
        raise Refused("no answer gives full credit" if answers else "the question has no answers")
    if partial:
        notes.append(f"{len(partial)} answer(s) with partial credit left out (here an answer is right or wrong)")
    if text_of(q, "usecase") == "1":
        notes.append("Moodle compared case; here case and spacing are ignored")
    if any("*" in a for a in accepted):
        notes.append("'*' is a wildcard in Moodle; here it is matched literally")
    return {"kind": "short", "accepted": accepted}


def _numerical(q: Element, notes: list[str]) -> dict[str, Any]:
    answers = _answers(q, notes)
    full = [(text, a) for text, f, a in answers if f >= 100 and text != "*"]
    if not full:
        raise Refused("no numeric answer gives full credit" if answers else "the question has no answers")
    text, element = full[0]
    value = number(text)
    if value is None:
        raise Refused(f"the answer {text[:40]!r} is not a number")
    tolerance = number(text_of(element, "tolerance") or "0")
    if tolerance is None or tolerance < 0:
        raise Refused(f"the tolerance {text_of(element, 'tolerance')[:40]!r} is not a number ≥ 0")
    if len(full) > 1 or any(0 < f < 100 for _, f, _ in answers):
        notes.append("only the first fully right answer is kept (others and partial credit left out)")
    units = child(q, "units")
    if units is not None and len(units):
        notes.append("units are not imported: the answer is the number alone")
    return {"kind": "numeric", "answer": value, "tolerance": tolerance}
