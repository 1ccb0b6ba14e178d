"""Moodle XML import: every supported type, the broken items each refused with a reason,
HTML made plain, entities and DTDs refused; and the export read back unchanged."""

from __future__ import annotations

import pytest

from rooms.errors import Invalid
from rooms.exam import Question
from rooms.interchange import draft_exam, import_questions, to_moodle_xml
from tests.support.interchange_files import BILLION_LAUGHS, MOODLE_EXPECTED, moodle_quiz


def test_every_item_is_reported_in_file_order() -> None:
    result = import_questions("moodle", moodle_quiz())
    got = [(item.name, item.status, item.kind) for item in result.items]
    assert got == MOODLE_EXPECTED
    # Every refusal and every change says why.
    assert all(item.notes for item in result.items if item.status != "imported")
    assert result.title == "Geography quiz"
    assert len(result.questions) == sum(1 for _, status, _ in MOODLE_EXPECTED if status != "refused")


def by_id(questions: tuple[Question, ...]) -> dict[str, Question]:
    return {q.id: q for q in questions}


def test_keys_become_ours() -> None:
    q = by_id(import_questions("moodle", moodle_quiz()).questions)
    assert q["Capital"].text == "What is the capital of France & its heart?"
    assert q["Capital"].options == ("Paris", "Lyon", "Nice") and q["Capital"].correct == (0,)
    assert q["Capital"].points == 2
    assert q["Primes"].correct == (0, 1) and q["Primes"].scoring == "partial"
    assert q["Weighted"].correct == (0, 1) and q["Weighted"].scoring == "partial"
    assert q["AllOrNothing"].correct == (0, 1) and q["AllOrNothing"].scoring == "all_or_nothing"
    assert q["Sun"].options == ("True", "False") and q["Sun"].correct == (0,)
    assert q["River"].accepted == ("Seine",)
    assert q["Pi"].answer == 3.14 and q["Pi"].tolerance == 0.005
    assert q["Essay"].kind == "essay" and not q["Essay"].auto_graded
    # Cloze answers travel inside the text: they must not reach the student's page.
    assert "Paris" not in q["Cloze"].text and "Berlin" not in q["Cloze"].text
    assert "_____" in q["Cloze"].text
    # Script content is dropped; escaped markup stays text.
    assert q["Script"].text == "Safe <b> text"
    assert {"Twin", "Twin-2"} <= set(q)


def test_refusals_name_the_reason() -> None:
    items = {item.name: item for item in import_questions("moodle", moodle_quiz()).items}
    assert "description" in items["Intro"].notes[0]
    assert "foobar" in items["Mystery"].notes[0]
    assert "'abc'" in items["BadFraction"].notes[0]
    assert "at least two answers" in items["NoAnswers"].notes[0]
    assert "not a number" in items["BadNumber"].notes[0]
    assert "map.png" in items["Capital"].notes[0]
    assert "essay" in items["Pairs"].notes[0]


def test_billion_laughs_is_refused_not_expanded() -> None:
    with pytest.raises(Invalid) as caught:
        import_questions("moodle", BILLION_LAUGHS)
    assert caught.value.code == "xml_refused"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"<quiz><question", "xml_invalid"),
        (b"<html><body/></html>", "not_moodle_xml"),
        (b"   ", "empty_file"),
        (b'<?xml version="1.0"?><!DOCTYPE quiz SYSTEM "http://example.org/x.dtd"><quiz/>', "xml_refused"),
        (b'<!DOCTYPE q [<!ENTITY x SYSTEM "file:///etc/passwd">]><quiz>&x;</quiz>', "xml_refused"),
    ],
)
def test_unreadable_files_are_refused_with_a_code(data: bytes, code: str) -> None:
    with pytest.raises(Invalid) as caught:
        import_questions("moodle", data)
    assert caught.value.code == code


def test_draft_needs_one_question() -> None:
    result = import_questions(
        "moodle", b'<quiz><question type="description"><name><text>x</text></name></question></quiz>'
    )
    assert [item.status for item in result.items] == ["refused"]
    with pytest.raises(Invalid) as caught:
        draft_exam(result)
    assert caught.value.code == "nothing_imported"
    assert "description" in caught.value.fields["items.1"]


def test_export_reads_back_as_the_same_questions() -> None:
    original = import_questions("moodle", moodle_quiz()).questions
    exported = to_moodle_xml("Geography", original)
    again = import_questions("moodle", exported)
    assert again.title == "Geography"
    assert again.questions == original
    assert all(item.status == "imported" for item in again.items), [i for i in again.items if i.notes]


def test_export_writes_keys_as_fractions() -> None:
    questions = (
        Question(
            id="m", kind="multiple", text="Pick", options=("a", "b", "c", "d"), correct=(0, 1, 2), scoring="partial"
        ),
        Question(id="n", kind="numeric", text="N", answer=-2.5, tolerance=0.1, points=3),
        Question(id="k", kind="single", text="No key", options=("x", "y")),
        Question(id="-odd.id-", kind="essay", text="An id a slug would change"),
    )
    xml = to_moodle_xml("T", questions).decode()
    assert xml.count('fraction="33.33333"') == 3 and 'fraction="-33.33333"' in xml
    assert "<tolerance>0.1</tolerance>" in xml and "<defaultgrade>3</defaultgrade>" in xml
    again = import_questions("moodle", xml.encode())
    assert again.questions == questions
    # The keyless question comes back keyless, and the report says so.
    assert [item.status for item in again.items] == ["imported", "imported", "changed", "imported"]


def test_a_missing_single_reads_as_single_choice() -> None:
    quiz = (
        b'<quiz><question type="multichoice"><name><text>M</text></name><questiontext format="plain_text">'
        b'<text>Pick</text></questiontext><answer fraction="100"><text>a</text></answer>'
        b'<answer fraction="0"><text>b</text></answer></question></quiz>'
    )
    (question,) = import_questions("moodle", quiz).questions
    assert question.kind == "single" and question.correct == (0,)
