"""The vocabulary is declared once: both validators of `rules.analysis` agree on every bound,
and no module outside core/vocabulary.py spells out the list of signal kinds or their labels."""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from core.vocabulary import ANALYSIS_BOUNDS, CLIENT_KINDS, KINDS, SIGNAL_KINDS, Bound
from detection import InvalidRules, RuleSettings
from rooms.exam import AnalysisRules

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "rooms", "detection", "media", "signaling", "server", "nginx")
STATIC = ROOT / "server" / "static"
LABELS = {kind.label for kind in SIGNAL_KINDS}

# Places that *use* a kind by name (not list it). Each entry: file -> kinds allowed there, why.
PYTHON_USES: dict[str, tuple[frozenset[str], str]] = {
    "core/vocabulary.py": (frozenset(KINDS), "the declaration itself"),
    "detection/settings.py": (
        frozenset(
            {
                "no_face",
                "multiple_faces",
                "looking_away",
                "camera_blocked",
                "head_turned",
                "looking_down",
                "too_dark",
                "face_too_small",
                "too_blurred",
                "speaking",
            }
        ),
        "the names detection/rules.py and detection/speaking.py raise; checked at import against the vocabulary's "
        "server kinds (and `speaking`, the exam's switch of the same name)",
    ),
    "rooms/exam.py": (
        frozenset({"tab_hidden", "paste", "speaking"}),
        "the exam body's OpenAPI example (tests/server/test_openapi.py posts it, so it cannot go stale); "
        "`speaking`: the switch analysis.speaking, named after the kind it turns on",
    ),
    "signaling/student.py": (
        frozenset({"speaking"}),
        "the join ack reads the exam's switch analysis.speaking (a speaking exam's camera rides its WebRTC peer)",
    ),
}
JS_USES: dict[str, tuple[frozenset[str], str]] = {
    "js/lockdown.js": (frozenset(CLIENT_KINDS), "the page code that notices each client signal and sends it"),
    "js/editor.js": (
        frozenset({"copy", "speaking"}),
        "document.execCommand('copy'), the clipboard command, not the kind; `speaking`: the exam's switch "
        "rules.analysis.speaking, named after the kind it turns on",
    ),
    "js/exam-form.js": (
        frozenset({"speaking"}),
        "the exam's switch rules.analysis.speaking (the editor's question form builds the rules)",
    ),
}


def _just_outside(bound: Bound) -> list[tuple[float, bool]]:
    """(value, should be accepted) at and just beyond both ends of ``bound``."""
    low = bound.minimum
    cases = [
        (low, not bound.min_exclusive),
        (math.nextafter(low, math.inf), True),
        (math.nextafter(low, -math.inf), False),
        (low - 1, False),
        (bound.default, True),
    ]
    if bound.maximum is None:
        cases += [(1e300, True), (math.inf, False)]
    else:
        high = bound.maximum
        cases += [
            (high, not bound.max_exclusive),
            (math.nextafter(high, -math.inf), True),
            (math.nextafter(high, math.inf), False),
            (high + 1, False),
        ]
    if float(int(low)) == low and not bound.min_exclusive:
        cases.append((int(low), True))  # a JSON integer is a number too
    return cases


def _pydantic_accepts(name: str, value: object) -> bool:
    try:
        AnalysisRules.model_validate({name: value})
    except ValidationError:
        return False
    return True


def _detection_accepts(name: str, value: object) -> bool:
    try:
        RuleSettings.from_rules({"analysis": {name: value}})
    except InvalidRules:
        return False
    return True


@pytest.mark.parametrize("bound", ANALYSIS_BOUNDS, ids=lambda bound: bound.name)
def test_pydantic_and_detection_agree_at_every_bound(bound: Bound) -> None:
    for value, expected in _just_outside(bound):
        assert _pydantic_accepts(bound.name, value) is expected, (bound.name, value, "rooms.exam")
        assert _detection_accepts(bound.name, value) is expected, (bound.name, value, "detection")
    for wrong in (True, False, "1", None, math.nan, -math.inf, [1]):
        assert not _pydantic_accepts(bound.name, wrong), (bound.name, wrong)
        assert not _detection_accepts(bound.name, wrong), (bound.name, wrong)


@pytest.mark.parametrize("bound", ANALYSIS_BOUNDS, ids=lambda bound: bound.name)
def test_defaults_agree(bound: Bound) -> None:
    assert getattr(AnalysisRules(), bound.name) == bound.default
    if hasattr(RuleSettings, bound.name):
        assert getattr(RuleSettings(), bound.name) == bound.default


def test_the_schema_shows_the_same_bounds() -> None:
    properties: dict[str, Any] = AnalysisRules.model_json_schema()["properties"]
    for bound in ANALYSIS_BOUNDS:
        schema = properties[bound.name]
        assert schema["type"] == bound.type
        assert schema["default"] == bound.default
        assert schema["exclusiveMinimum" if bound.min_exclusive else "minimum"] == bound.minimum
        if bound.maximum is None:
            assert "maximum" not in schema and "exclusiveMaximum" not in schema
        else:
            assert schema["exclusiveMaximum" if bound.max_exclusive else "maximum"] == bound.maximum


def test_disabled_rules_agree() -> None:
    for disabled, ok in ((["no_face", "camera_blocked"], True), (["copy"], False), ("no_face", False)):
        assert _pydantic_accepts("disabled", disabled) is ok, disabled
        assert _detection_accepts("disabled", disabled) is ok, disabled


def test_kinds_are_unique_and_complete() -> None:
    assert len(KINDS) == len(SIGNAL_KINDS)
    assert len(LABELS) == len(SIGNAL_KINDS), "two kinds share a label"
    for kind in SIGNAL_KINDS:
        assert re.fullmatch(r"[a-z][a-z_]*", kind.id), kind.id
        assert kind.source in ("client", "server")
        assert 0 <= kind.default_weight <= 100
        assert kind.label and kind.explanation.endswith("."), kind.id


def _python_literals(path: Path) -> list[tuple[int, str]]:
    """Every string constant and keyword-argument name (``dict(no_face=1)``) in one module."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node.lineno, node.value))
        elif isinstance(node, ast.keyword) and node.arg is not None:
            found.append((node.value.lineno, node.arg))
    return found


def test_no_python_module_redeclares_the_kinds() -> None:
    offences: list[str] = []
    checked = 0
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            allowed, _why = PYTHON_USES.get(relative, (frozenset(), ""))
            checked += 1
            for line, text in _python_literals(path):
                if (text in KINDS and text not in allowed) or (text in LABELS and relative != "core/vocabulary.py"):
                    offences.append(f"{relative}:{line}: {text!r}")
    assert checked > 50  # the walk really went through the packages
    assert not offences, "read kinds and labels from core.vocabulary instead:\n" + "\n".join(offences)


def _js_mentions(source: str) -> list[tuple[int, str]]:
    """Kind ids and labels a page's code spells out: as string literals or as object keys."""
    names = "|".join(sorted(map(re.escape, KINDS), key=len, reverse=True))
    labels = "|".join(sorted(map(re.escape, LABELS), key=len, reverse=True))
    patterns = (
        rf"([\"'`])({names})\1",  # "no_face"
        rf"(?<![\w.$])()({names})\s*:(?!:)",  # { no_face: ... }
        rf"([\"'`])({labels})\1",  # "No face"
    )
    found: list[tuple[int, str]] = []
    for pattern in patterns:
        for match in re.finditer(pattern, source):
            found.append((source.count("\n", 0, match.start()) + 1, match.group(2)))
    return found


def test_no_page_redeclares_the_kinds() -> None:
    offences: list[str] = []
    files = sorted([*STATIC.rglob("*.js"), *STATIC.rglob("*.html")])
    assert len(files) > 10
    for path in files:
        relative = path.relative_to(STATIC).as_posix()
        allowed, _why = JS_USES.get(relative, (frozenset(), ""))
        for line, text in _js_mentions(path.read_text()):
            if text not in allowed:
                offences.append(f"server/static/{relative}:{line}: {text!r}")
    assert not offences, "load kinds and labels with appConfig() from common.js instead:\n" + "\n".join(offences)


def test_the_page_check_finds_a_label_table() -> None:
    """The checker itself: the old hard-coded table in common.js is caught."""
    old_table = 'export const KIND_LABELS = {\n  tab_hidden: "Tab hidden", copy: "Copy", no_face: "No face",\n};'
    found = {text for _line, text in _js_mentions(old_table)}
    assert found == {"tab_hidden", "copy", "no_face", "Tab hidden", "Copy", "No face"}


def _table_rows(markdown: str, header: str) -> list[list[str]]:
    lines = markdown.splitlines()
    start = lines.index(header) + 2  # skip the header and its |---| line
    rows: list[list[str]] = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_docs_api_tables_match_the_vocabulary() -> None:
    doc = (ROOT / "docs" / "api.md").read_text()
    kinds = _table_rows(doc, "| kind | label | source | default weight | what happened |")
    assert kinds == [[f"`{k.id}`", k.label, k.source, f"{k.default_weight:g}", k.explanation] for k in SIGNAL_KINDS]
    bounds = _table_rows(doc, "| setting | range | default | unit | what |")
    assert bounds == [
        [f"`{b.name}`", f"`{b.interval()}`", f"{b.default:g}", b.unit or "—", b.description] for b in ANALYSIS_BOUNDS
    ]


def test_the_socket_schema_takes_exactly_the_client_kinds() -> None:
    from signaling.messages import ClientEvent

    for kind in SIGNAL_KINDS:
        event = {"seq": 1, "kind": kind.id, "occurred_at": "2026-01-01T10:00:00Z"}
        if kind.source == "client":
            assert ClientEvent.model_validate(event).kind == kind.id
        else:  # the server raises these itself; a page may not claim one
            with pytest.raises(ValidationError):
                ClientEvent.model_validate(event)
