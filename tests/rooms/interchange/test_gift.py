"""GIFT import: every supported type and the broken items, each with a reason."""

from __future__ import annotations

import pytest

from rooms.errors import Invalid
from rooms.interchange import import_questions
from tests.support.interchange_files import GIFT_EXPECTED, gift_file


def test_every_item_is_reported_in_file_order() -> None:
    result = import_questions("gift", gift_file())
    assert [(item.name, item.status, item.kind) for item in result.items] == GIFT_EXPECTED
    assert all(item.notes for item in result.items if item.status != "imported")
    assert result.title == "Mixed GIFT"


def test_keys_become_ours() -> None:
    q = {q.id: q for q in import_questions("gift", gift_file()).questions}
    assert q["Capital"].accepted == ("Paris", "Paris, France")
    assert q["Sun"].correct == (0,)
    assert q["Primes"].correct == (0, 1) and q["Primes"].scoring == "partial"
    assert q["Sum"].text == "2 + 2 = ?" and q["Sum"].options == ("4", "3", "5") and q["Sum"].correct == (0,)
    assert q["Sum"].feedback == "general"
    assert (q["Pi"].answer, q["Pi"].tolerance) == (3.14, 0.005)
    assert (q["Range"].answer, q["Range"].tolerance) == (3.0, 2.0)
    assert q["line-21"].text == "Moodle costs _____ to download."
    assert q["line-21"].correct == (1,)
    assert q["Html"].text == "Which shape?"


def test_refusals_name_the_reason() -> None:
    items = {item.name: item for item in import_questions("gift", gift_file()).items}
    assert "description" in items["Intro"].notes[0]
    assert "never closed" in items["Unclosed"].notes[0]
    assert "'many'" in items["BadNumber"].notes[0]
    assert "'abc'" in items["BadWeight"].notes[0]
    assert "empty" in items["Empty"].notes[0]


@pytest.mark.parametrize(
    ("source", "kind", "key"),
    [
        ("Q {TRUE}", "single", {"correct": (0,)}),
        ("Q {F#no#yes}", "single", {"correct": (1,)}),
        ("Q {#=%100%2:0 =%50%3:1}", "numeric", {"answer": 2.0, "tolerance": 0.0}),
        ("Q {~%100%a ~%-50%b}", "multiple", {"correct": (0,)}),
        ("Q {=only}", "short", {"accepted": ("only",)}),
        ("Q \\{x\\} {}", "essay", {"text": "Q {x}"}),
    ],
)
def test_small_cases(source: str, kind: str, key: dict[str, object]) -> None:
    result = import_questions("gift", source.encode())
    assert [item.status for item in result.items] == ["imported"], result.items
    question = result.questions[0]
    assert question.kind == kind
    for name, value in key.items():
        assert getattr(question, name) == value


def test_not_utf8_is_refused() -> None:
    with pytest.raises(Invalid) as caught:
        import_questions("gift", b"\xff\xfe\x00Q {}")
    assert caught.value.code == "not_utf8"


def test_ids_are_valid_and_unique_whatever_the_names() -> None:
    long = "::" + "x" * 100 + "::D {}\n\n"
    source = "::Frage Ä/ö?::A {}\n\n::問題::B {}\n\n::Frage Ä/ö?::C {}\n\n" + long * 2 + "::..::E {}"
    result = import_questions("gift", source.encode())
    assert [item.status for item in result.items] == ["imported"] * 6
    assert [q.id for q in result.questions] == ["Frage-A-o", "q2", "Frage-A-o-2", "x" * 64, "x" * 62 + "-2", "q6"]
    assert [item.name for item in result.items][:2] == ["Frage Ä/ö?", "問題"]
