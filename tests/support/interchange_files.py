"""Import files the tests write themselves (no binary fixture is checked in): a Moodle XML
quiz, a GIFT file and a QTI 2.1 content package with every supported type and broken items,
a billion-laughs document, a zip bomb and a path-traversal zip."""

from __future__ import annotations

import io
import stat
import zipfile
from xml.sax.saxutils import escape

# In file order: (name, status, kind) — kind None when refused.
MOODLE_EXPECTED: list[tuple[str, str, str | None]] = [
    ("Capital", "changed", "single"),  # HTML, an image left out
    ("Primes", "imported", "multiple"),
    ("Weighted", "changed", "multiple"),
    ("AllOrNothing", "imported", "multiple"),
    ("Sun", "imported", "single"),
    ("River", "changed", "short"),  # usecase=1
    ("Pi", "imported", "numeric"),
    ("Essay", "imported", "essay"),
    ("Intro", "refused", None),  # description
    ("Pairs", "changed", "essay"),  # matching
    ("Cloze", "changed", "essay"),
    ("Random", "refused", None),
    ("Mystery", "refused", None),  # unknown type
    ("NoAnswers", "refused", None),
    ("BadFraction", "refused", None),
    ("BadNumber", "refused", None),
    ("Script", "imported", "single"),
    ("Twin", "imported", "essay"),
    ("Twin", "imported", "essay"),  # the same name again: another id (Twin-2)
]


def _q(kind: str, name: str, text: str, body: str = "", fmt: str = "html") -> str:
    return (
        f'<question type="{kind}"><name><text>{escape(name)}</text></name>'
        f'<questiontext format="{fmt}"><text><![CDATA[{text}]]></text></questiontext>'
        f"<generalfeedback><text></text></generalfeedback><defaultgrade>2</defaultgrade>{body}</question>"
    )


def _a(fraction: str, text: str, extra: str = "") -> str:
    return f'<answer fraction="{fraction}" format="plain_text"><text>{escape(text)}</text>{extra}</answer>'


def moodle_quiz() -> bytes:
    items = [
        '<question type="category"><category><text>$course$/top/Geography quiz</text></category></question>',
        _q(
            "multichoice",
            "Capital",
            '<p>What is the <b>capital</b> of France &amp; its <i>heart</i>?</p><img src="@@PLUGINFILE@@/map.png">',
            "<single>true</single>" + _a("100", "Paris") + _a("0", "Lyon") + _a("0", "Nice"),
        ),
        _q(
            "multichoice",
            "Primes",
            "Which are prime?",
            "<single>false</single>" + _a("50", "2") + _a("50", "3") + _a("-100", "4"),
        ),
        _q(
            "multichoice",
            "Weighted",
            "Which are even?",
            "<single>false</single>" + _a("70", "2") + _a("30", "4") + _a("-100", "5"),
        ),
        _q("multichoiceset", "AllOrNothing", "Pick the vowels", _a("100", "a") + _a("100", "e") + _a("0", "x")),
        _q("truefalse", "Sun", "The sun is a star.", _a("100", "true") + _a("0", "false")),
        _q("shortanswer", "River", "The river of Paris?", "<usecase>1</usecase>" + _a("100", "Seine")),
        _q("numerical", "Pi", "Pi to two decimals?", _a("100", "3.14", "<tolerance>0.005</tolerance>")),
        _q("essay", "Essay", "Explain why.", "<responseformat>editor</responseformat>"),
        _q("description", "Intro", "Read carefully."),
        _q(
            "matching",
            "Pairs",
            "Match the capitals.",
            "<subquestion><text>France</text><answer><text>Paris</text></answer></subquestion>",
        ),
        _q("multianswer", "Cloze", "The capital is {1:SHORTANSWER:=Paris} and {1:MC:~Rome~=Berlin}."),
        _q("random", "Random", "0"),
        _q("foobar", "Mystery", "What?"),
        _q("multichoice", "NoAnswers", "Nothing to choose", "<single>true</single>"),
        _q("multichoice", "BadFraction", "Bad", "<single>true</single>" + _a("abc", "x") + _a("0", "y")),
        _q("numerical", "BadNumber", "Bad number", _a("100", "three")),
        _q(
            "multichoice",
            "Script",
            "<script>alert('x')</script>Safe &lt;b&gt; text",
            "<single>true</single>" + _a("100", "yes") + _a("0", "no"),
        ),
        _q("essay", "Twin", "One"),
        _q("essay", "Twin", "Two"),
    ]
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<quiz>\n' + "\n".join(items) + "\n</quiz>\n").encode()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<quiz><question type="essay"><name><text>&lol9;</text></name></question></quiz>
"""

GIFT_EXPECTED: list[tuple[str, str, str | None]] = [
    ("Capital", "imported", "short"),
    ("Sun", "imported", "single"),
    ("Primes", "imported", "multiple"),
    ("Sum", "imported", "single"),
    ("Pi", "imported", "numeric"),
    ("Range", "imported", "numeric"),
    ("Essay", "imported", "essay"),
    ("Pairs", "changed", "essay"),
    ("line 21", "imported", "single"),  # missing word
    ("Html", "changed", "single"),  # an image
    ("Intro", "refused", None),
    ("Unclosed", "refused", None),
    ("BadNumber", "refused", None),
    ("BadWeight", "refused", None),
    ("Empty", "refused", None),
]

GIFT = r"""// GIFT written by the tests
$CATEGORY: $course$/top/Mixed GIFT

::Capital::What is the capital of France? {=Paris =Paris, France}

::Sun::The sun is a star. {T#right#wrong}

::Primes::Which are prime? {~%50%2 ~%50%3 ~%-100%4}

::Sum::2 + 2 \= ? {=4 ~3#no ~5 ####general}

::Pi::Pi to two decimals? {#3.14:0.005}

::Range::A number from 1 to 5 {#1..5}

::Essay::Explain {}

::Pairs::Match {=France -> Paris =Italy -> Rome}

// a missing-word question without a title
Moodle costs {~lots of money =nothing ~a small amount} to download.

::Html::[html]<p>Which <b>shape</b>?</p><img src="tri.png"> {=triangle ~square}

::Intro::Read this first.

::Unclosed::Never closed {=a ~b

::BadNumber::How many? {#many}

::BadWeight::Weighted {~%abc%x ~%50%y}

::Empty::Which? {=  ~b}
"""


def gift_file() -> bytes:
    return GIFT.encode()


QTI_NS = "http://www.imsglobal.org/xsd/imsqti_v2p1"


def _item(identifier: str, title: str, declaration: str, body: str, extra: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<assessmentItem xmlns="{QTI_NS}" identifier="{identifier}"'
        f' title="{title}" adaptive="false" timeDependent="false">{declaration}'
        '<outcomeDeclaration identifier="SCORE" cardinality="single" baseType="float" normalMaximum="2"/>'
        f"<itemBody>{body}</itemBody>{extra}</assessmentItem>"
    ).encode()


def _choices(*pairs: tuple[str, str]) -> str:
    return "".join(f'<simpleChoice identifier="{i}">{t}</simpleChoice>' for i, t in pairs)


QTI_EXPECTED: list[tuple[str, str, str | None]] = [
    ("Capital", "imported", "single"),
    ("Primes", "imported", "multiple"),
    ("Vowels", "imported", "multiple"),
    ("River", "imported", "short"),
    ("Pi", "imported", "numeric"),
    ("Essay", "imported", "essay"),
    ("Order", "changed", "essay"),
    ("Two", "refused", None),
    ("broken", "refused", None),  # named by its manifest entry: the file has no title
    ("missing-item", "refused", None),
]


def qti_items() -> dict[str, bytes]:
    single = '<responseDeclaration identifier="RESPONSE" cardinality="single" baseType="identifier">'
    multiple = '<responseDeclaration identifier="RESPONSE" cardinality="multiple" baseType="identifier">'
    return {
        "items/capital.xml": _item(
            "capital",
            "Capital",
            single + "<correctResponse><value>B</value></correctResponse></responseDeclaration>",
            '<p>Capital of <em>France</em>?</p><choiceInteraction responseIdentifier="RESPONSE" maxChoices="1">'
            + _choices(("A", "Lyon"), ("B", "Paris"), ("C", "Nice"))
            + "</choiceInteraction>",
        ),
        "items/primes.xml": _item(
            "primes",
            "Primes",
            multiple + "<correctResponse><value>A</value><value>B</value></correctResponse>"
            '<mapping defaultValue="0"><mapEntry mapKey="A" mappedValue="1"/><mapEntry mapKey="B" mappedValue="1"/>'
            '<mapEntry mapKey="C" mappedValue="-1"/></mapping></responseDeclaration>',
            '<choiceInteraction responseIdentifier="RESPONSE" maxChoices="0"><prompt>Which are prime?</prompt>'
            + _choices(("A", "2"), ("B", "3"), ("C", "4"))
            + "</choiceInteraction>",
        ),
        "items/vowels.xml": _item(
            "vowels",
            "Vowels",
            multiple + "<correctResponse><value>A</value><value>E</value></correctResponse></responseDeclaration>",
            '<choiceInteraction responseIdentifier="RESPONSE" maxChoices="0"><prompt>Vowels?</prompt>'
            + _choices(("A", "a"), ("E", "e"), ("X", "x"))
            + "</choiceInteraction>",
        ),
        "items/river.xml": _item(
            "river",
            "River",
            '<responseDeclaration identifier="RESPONSE" cardinality="single" baseType="string">'
            "<correctResponse><value>Seine</value></correctResponse>"
            '<mapping defaultValue="0"><mapEntry mapKey="La Seine" mappedValue="1"/></mapping></responseDeclaration>',
            '<p>Paris lies on the <textEntryInteraction responseIdentifier="RESPONSE" expectedLength="10"/>.</p>',
        ),
        "items/pi.xml": _item(
            "pi",
            "Pi",
            '<responseDeclaration identifier="RESPONSE" cardinality="single" baseType="float">'
            "<correctResponse><value>3.14</value></correctResponse></responseDeclaration>",
            '<p>Pi is <textEntryInteraction responseIdentifier="RESPONSE"/></p>',
            '<responseProcessing><responseCondition><responseIf><equal toleranceMode="absolute" tolerance="0.01">'
            '<variable identifier="RESPONSE"/><correct identifier="RESPONSE"/></equal></responseIf>'
            "</responseCondition></responseProcessing>",
        ),
        "items/essay.xml": _item(
            "essay",
            "Essay",
            '<responseDeclaration identifier="RESPONSE" cardinality="single" baseType="string"/>',
            '<extendedTextInteraction responseIdentifier="RESPONSE"><prompt>Explain.</prompt>'
            "</extendedTextInteraction>",
        ),
        "items/order.xml": _item(
            "order",
            "Order",
            '<responseDeclaration identifier="RESPONSE" cardinality="ordered" baseType="identifier"/>',
            '<orderInteraction responseIdentifier="RESPONSE"><prompt>Order these.</prompt>'
            + _choices(("A", "one"), ("B", "two"))
            + "</orderInteraction>",
        ),
        "items/two.xml": _item(
            "two",
            "Two",
            single + "</responseDeclaration>",
            '<p>Two?</p><textEntryInteraction responseIdentifier="A"/><textEntryInteraction responseIdentifier="B"/>',
        ),
        "items/broken.xml": b"<assessmentItem><itemBody>not closed",
    }


def qti_package(extra: dict[str, bytes] | None = None) -> bytes:
    items = qti_items()
    resources = "".join(
        f'<resource identifier="{name.rsplit("/", 1)[-1][:-4]}" type="imsqti_item_xmlv2p1" href="{name}">'
        f'<file href="{name}"/></resource>'
        for name in items
    )
    resources += '<resource identifier="missing-item" type="imsqti_item_xmlv2p1" href="items/missing.xml"/>'
    resources += '<resource identifier="test" type="imsqti_test_xmlv2p1" href="test.xml"/>'
    resources += '<resource identifier="old" type="imsqti_xmlv1p2" href="old.xml"/>'
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest xmlns="http://www.imsglobal.org/xsd/imscp_v1p1"'
        ' identifier="pkg"><metadata><lom xmlns="http://ltsc.ieee.org/xsd/LOM"><general><title>'
        "<string>QTI sample</string></title></general></lom></metadata><organizations/>"
        f"<resources>{resources}</resources></manifest>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("imsmanifest.xml", manifest)
        for name, data in {**items, **(extra or {})}.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_bomb(megabytes: int = 200) -> bytes:
    """`megabytes` of zeros in one entry: about 200 KB compressed, over 1000:1."""
    buffer = io.BytesIO()
    chunk = b"\0" * (1 << 20)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("imsmanifest.xml", "<manifest/>")
        with archive.open("items/zeros.xml", "w", force_zip64=True) as member:
            for _ in range(megabytes):
                member.write(chunk)
    return buffer.getvalue()


def traversal_zip(name: str = "../../etc/evil.xml", symlink: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("imsmanifest.xml", "<manifest/>")
        info = zipfile.ZipInfo(name)
        if symlink:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd" if symlink else "<assessmentItem/>")
    return buffer.getvalue()
