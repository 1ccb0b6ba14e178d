"""An exam's questions as Moodle XML, which `moodle_xml.read_moodle_xml` reads back unchanged.

single → multichoice (single), multiple → multichoice (several answers, partial credit) or
multichoiceset (the all-or-nothing plugin), numeric → numerical, short → shortanswer,
essay → essay. Keys are written as Moodle's fractions (percent of the question's points).
"""

from __future__ import annotations

from collections.abc import Iterable
from xml.etree.ElementTree import Element, SubElement, indent, tostring

from rooms.exam import Question


def _fraction(value: float) -> str:
    # Moodle writes fractions with up to 7 decimals ("33.33333"); an integer stays an integer.
    text = f"{value:.5f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _text(parent: Element, tag: str, value: str, fmt: str | None = None) -> Element:
    node = SubElement(parent, tag)
    if fmt is not None:
        node.set("format", fmt)
    SubElement(node, "text").text = value
    return node


def _answer(parent: Element, fraction: float, text: str) -> Element:
    node = SubElement(parent, "answer", {"fraction": _fraction(fraction), "format": "plain_text"})
    SubElement(node, "text").text = text
    SubElement(node, "feedback", {"format": "plain_text"}).append(Element("text"))
    return node


def _moodle_type(q: Question) -> str:
    if q.kind in ("single", "multiple"):
        return "multichoiceset" if q.kind == "multiple" and q.scoring == "all_or_nothing" else "multichoice"
    if q.kind == "numeric":
        return "numerical" if q.answer is not None else "essay"
    if q.kind == "short":
        return "shortanswer" if q.accepted else "essay"
    return "essay"


def _question(quiz: Element, q: Question) -> None:
    kind = _moodle_type(q)
    node = SubElement(quiz, "question", {"type": kind})
    _text(node, "name", q.id)
    # Plain text in, plain text out: the question text is never HTML here.
    _text(node, "questiontext", q.text, "plain_text")
    _text(node, "generalfeedback", q.feedback, "plain_text")
    SubElement(node, "defaultgrade").text = _number(q.points)
    SubElement(node, "penalty").text = "0"
    SubElement(node, "hidden").text = "0"
    if kind in ("multichoice", "multichoiceset"):
        SubElement(node, "single").text = "true" if q.kind == "single" else "false"
        SubElement(node, "shuffleanswers").text = "false"
        SubElement(node, "answernumbering").text = "abc"
        right = set(q.correct or ())
        wrong = len(q.options) - len(right)
        for i, option in enumerate(q.options):
            if kind == "multichoiceset":
                fraction = 100.0 if i in right else 0.0
            elif q.kind == "single" or not right:
                fraction = 100.0 if i in right else 0.0
            else:
                # Partial credit: each right option adds 1/n, each wrong one takes 1/n away.
                fraction = 100.0 / len(right) if i in right else (-100.0 / len(right) if wrong else 0.0)
            _answer(node, fraction, option)
    elif kind == "numerical":
        assert q.answer is not None
        answer = _answer(node, 100, _number(q.answer))
        SubElement(answer, "tolerance").text = _number(q.tolerance)
    elif kind == "shortanswer":
        SubElement(node, "usecase").text = "0"
        for accepted in q.accepted:
            _answer(node, 100, accepted)
    else:
        SubElement(node, "responseformat").text = "plain"
        SubElement(node, "responserequired").text = "1"
        SubElement(node, "responsefieldlines").text = "10"
        SubElement(node, "attachments").text = "0"
        _text(node, "graderinfo", "", "plain_text")
        _text(node, "responsetemplate", "", "plain_text")


def to_moodle_xml(title: str, questions: Iterable[Question]) -> bytes:
    """The questions as a Moodle XML document, in a category named after the exam."""
    quiz = Element("quiz")
    category = SubElement(quiz, "question", {"type": "category"})
    _text(category, "category", f"$course$/top/{title.replace('/', '-')}")
    for q in questions:
        _question(quiz, q)
    indent(quiz)
    document: bytes = tostring(quiz, encoding="utf-8", xml_declaration=True)
    return document + b"\n"
