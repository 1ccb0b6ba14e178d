"""Whatever a file holds, an import answers with a report or a `RoomsError`, never another
exception (which the HTTP edge would have to answer with a 500)."""

from __future__ import annotations

import io
import zipfile

from hypothesis import given, settings
from hypothesis import strategies as st

from rooms.errors import RoomsError
from rooms.interchange import import_questions
from rooms.interchange.html_text import html_to_text
from tests.support.interchange_files import GIFT, qti_items

# Fragments that steer the generators into the parsers' branches.
GIFT_BITS = st.sampled_from(
    ["{", "}", "=", "~", "#", "->", "::", "%50%", "%x%", "\\", "\n\n", "..", ":", "T", "[html]"]
)
HTML_BITS = st.sampled_from(["<", ">", "</", "<![", "<!--", "&", "&#", "&#x110000;", "<img src=", "<script>", "]]>"])
mixed_gift = st.lists(st.one_of(GIFT_BITS, st.text(max_size=8)), max_size=40).map("".join)
mixed_html = st.lists(st.one_of(HTML_BITS, st.text(max_size=8)), max_size=40).map("".join)


def imports_or_refuses(fmt: str, data: bytes) -> None:
    try:
        result = import_questions(fmt, data)  # type: ignore[arg-type]
    except RoomsError:
        return
    assert len(result.items) >= len(result.questions)


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(mixed_gift)
def test_gift_never_crashes(source: str) -> None:
    imports_or_refuses("gift", source.encode("utf-8", "surrogatepass"))


@settings(max_examples=100, deadline=None, database=None, derandomize=True)
@given(st.integers(0, len(GIFT)), st.integers(0, 40), mixed_gift)
def test_gift_edits_never_crash(at: int, cut: int, insert: str) -> None:
    source = GIFT[:at] + insert + GIFT[at + cut :]
    imports_or_refuses("gift", source.encode("utf-8", "surrogatepass"))


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(mixed_html)
def test_html_to_text_never_crashes(html: str) -> None:
    # What comes out is shown as text (the pages never use innerHTML); it must only not raise.
    text, media = html_to_text(html + "<script>alert(1)</script>")
    assert isinstance(text, str) and all(isinstance(m, str) for m in media)


@settings(max_examples=150, deadline=None, database=None, derandomize=True)
@given(mixed_html, st.sampled_from(["multichoice", "truefalse", "shortanswer", "numerical", "essay", "matching"]))
def test_moodle_never_crashes(html: str, kind: str) -> None:
    cdata = html.replace("]]>", "")
    body = (
        f'<quiz><question type="{kind}"><name><text>n</text></name><questiontext format="html">'
        f"<text><![CDATA[{cdata}]]></text></questiontext>"
        f'<answer fraction="100"><text><![CDATA[{cdata}]]></text></answer>'
        '<answer fraction="0"><text>b</text></answer></question></quiz>'
    )
    imports_or_refuses("moodle", body.encode("utf-8", "surrogatepass"))


@settings(max_examples=100, deadline=None, database=None, derandomize=True)
@given(st.sampled_from(sorted(qti_items())), st.integers(0, 2000), st.binary(max_size=20))
def test_qti_items_edited_never_crash(name: str, at: int, insert: bytes) -> None:
    data = qti_items()[name]
    edited = data[:at] + insert + data[at + 1 :]
    manifest = (
        '<manifest><resources><resource identifier="x" type="imsqti_item_xmlv2p1" href="item.xml"/>'
        "</resources></manifest>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("imsmanifest.xml", manifest)
        archive.writestr("item.xml", edited)
    imports_or_refuses("qti", buffer.getvalue())


@settings(max_examples=100, deadline=None, database=None, derandomize=True)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    for fmt in ("moodle", "gift", "qti"):
        imports_or_refuses(fmt, data)
