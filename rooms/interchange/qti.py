"""QTI 2.1 content packages (a zip with `imsmanifest.xml` and one XML file per item) into
`Question`s.

Each item's interaction decides the kind: choiceInteraction → single or multiple choice
(the response declaration's `correctResponse`; a `mapping` means partial credit),
textEntryInteraction → numeric (float/integer responses) or short answer (string),
extendedTextInteraction → essay. Other interactions become essays (changed), an item with
several interactions is refused; every refusal names the item and why.
"""

from __future__ import annotations

import posixpath
from typing import Any
from urllib.parse import unquote
from xml.etree.ElementTree import Element

from rooms.errors import Invalid

from .html_text import element_text, local, media_note
from .keys import number
from .report import ImportCollector, ImportResult, Refused
from .xml_input import child, children, descendants, parse_xml, text_of
from .zipsafe import SafeZip

_SUPPORTED = {"choiceInteraction", "textEntryInteraction", "extendedTextInteraction"}
_OTHER = {
    "orderInteraction": "ordering",
    "associateInteraction": "association",
    "matchInteraction": "matching",
    "gapMatchInteraction": "gap-match",
    "inlineChoiceInteraction": "inline choice",
    "hottextInteraction": "hot-text",
    "hotspotInteraction": "hotspot",
    "selectPointInteraction": "select-point",
    "graphicOrderInteraction": "graphic ordering",
    "graphicAssociateInteraction": "graphic association",
    "graphicGapMatchInteraction": "graphic gap-match",
    "positionObjectInteraction": "position-object",
    "sliderInteraction": "slider",
    "drawingInteraction": "drawing",
    "uploadInteraction": "file upload",
    "mediaInteraction": "media",
    "customInteraction": "custom",
    "endAttemptInteraction": "end-attempt",
}
_INTERACTIONS = _SUPPORTED | set(_OTHER)
_BLANK = "_____"


def read_qti_package(data: bytes, title: str | None = None) -> ImportResult:
    archive = SafeZip(data)
    names = archive.names()
    manifest_name = next((n for n in names if n.lower() == "imsmanifest.xml"), None)
    if manifest_name is None:
        raise Invalid(
            "a QTI content package has imsmanifest.xml at its root; this archive does not",
            code="not_qti_package",
            fields={"file": "imsmanifest.xml missing"},
        )
    manifest = parse_xml(archive.read(manifest_name), "imsmanifest.xml")
    collector = ImportCollector("qti", title)
    if collector.title is None:
        found = [t for t in descendants(manifest, "title") if "".join(t.itertext()).strip()]
        if found:
            collector.title = " ".join("".join(found[0].itertext()).split())[:200]
    others: dict[str, int] = {}
    for resource in descendants(manifest, "resource"):
        kind = (resource.get("type") or "").lower()
        href = resource.get("href") or ""
        if kind.startswith("imsqti_test"):
            collector.note(f"the assessment test {href!r} is not imported (its order and sections); its items are")
            continue
        if not kind.startswith("imsqti_item"):
            others[kind or "untyped"] = others.get(kind or "untyped", 0) + 1
            continue
        name = resource.get("identifier") or href or "item"
        path = posixpath.normpath(href) if href else ""
        if path and path not in names:
            path = posixpath.normpath(unquote(href))  # hrefs are URIs: "item%201.xml"
        if not path or path not in names:
            collector.refuse(name, f"the manifest names {href!r}, which is not in the archive")
            continue
        try:
            item = parse_xml(archive.read(path), path)
        except Invalid as exc:
            collector.refuse(name, exc.message)
            continue
        _item(collector, item, name)
    for kind, count in sorted(others.items()):
        what = "QTI 1.2 is not supported" if kind.startswith("imsqti_xmlv1") else "not questions"
        collector.note(f"{count} resource(s) of type {kind!r} not imported ({what})")
    if not collector.next_number() > 1:
        collector.note("the manifest lists no QTI 2.x item (resources of type imsqti_item_xmlv2p1)")
    return collector.result()


def _item(collector: ImportCollector, item: Element, fallback: str) -> None:
    name = item.get("title") or item.get("identifier") or fallback
    if local(item.tag) != "assessmentItem":
        collector.refuse(name, f"an item file holds <assessmentItem>, this one <{local(item.tag)}>")
        return
    body = child(item, "itemBody")
    if body is None:
        collector.refuse(name, "the item has no itemBody")
        return
    interactions = [node for node in body.iter() if local(node.tag) in _INTERACTIONS]
    if not interactions:
        collector.refuse(name, "the item has no interaction: it asks nothing")
        return
    if len(interactions) > 1:
        collector.refuse(name, f"the item has {len(interactions)} interactions; one question holds one")
        return
    interaction = interactions[0]
    kind = local(interaction.tag)
    notes: list[str] = []
    # The body's text with the interaction left out (or, inline, as a blank); its prompt follows.
    inline = kind == "textEntryInteraction"
    text, media = element_text(body, {kind: _BLANK if inline else ""})
    prompt = child(interaction, "prompt")
    if prompt is not None:
        prompt_text, prompt_media = element_text(prompt)
        text = "\n\n".join(p for p in (text, prompt_text) if p)
        media += prompt_media
    if media:
        notes.append(media_note(media, "the item body"))
    fields: dict[str, Any] = {"text": text}
    points = _points(item)
    if points is not None:
        fields["points"] = points
    declaration = _declaration(item, interaction.get("responseIdentifier") or "")
    try:
        if kind == "choiceInteraction":
            fields.update(_choice(interaction, declaration, notes))
        elif kind == "textEntryInteraction":
            fields.update(_text_entry(item, declaration, notes))
        elif kind == "extendedTextInteraction":
            fields["kind"] = "essay"
        else:
            what = _OTHER[kind]
            notes.insert(0, f"{what} interaction turned into an essay (graded by hand): its key is not imported")
            fields["kind"] = "essay"
    except Refused as exc:
        collector.refuse(name, str(exc), *notes)
        return
    collector.add(name, fields, notes)


def _declaration(item: Element, identifier: str) -> Element | None:
    for declaration in children(item, "responseDeclaration"):
        if declaration.get("identifier") == identifier:
            return declaration
    return None


def _points(item: Element) -> float | None:
    for outcome in children(item, "outcomeDeclaration"):
        if outcome.get("identifier") == "SCORE":
            value = number(outcome.get("normalMaximum") or "")
            if value is not None and 0 <= value <= 1000:
                return value
    return None


def _values(node: Element | None) -> list[str]:
    if node is None:
        return []
    return [text_of(value) for value in children(node, "value") if text_of(value)]


def _mapping(declaration: Element) -> list[tuple[str, float]]:
    mapping = child(declaration, "mapping")
    if mapping is None:
        return []
    entries = []
    for entry in children(mapping, "mapEntry"):
        value = number(entry.get("mappedValue") or "")
        if value is not None:
            entries.append((entry.get("mapKey") or "", value))
    return entries


def _choice(interaction: Element, declaration: Element | None, notes: list[str]) -> dict[str, Any]:
    choices = children(interaction, "simpleChoice")
    if len(choices) < 2:
        raise Refused(f"a choice interaction needs at least two choices; this one has {len(choices)}")
    ids = [c.get("identifier") or "" for c in choices]
    options = []
    for position, choice in enumerate(choices, start=1):
        option, media = element_text(choice)
        if media:
            notes.append(media_note(media, f"choice {position}"))
        options.append(option)
    cardinality = (declaration.get("cardinality") if declaration is not None else None) or (
        "single" if interaction.get("maxChoices") == "1" else "multiple"
    )
    single = cardinality == "single"
    if declaration is None:
        notes.append("the item declares no response: imported without a key (graded by hand)")
        return {"kind": "single" if single else "multiple", "options": options}
    right = _values(child(declaration, "correctResponse"))
    mapped = _mapping(declaration)
    if not right:
        right = [key for key, value in mapped if value > 0]
    unknown = [r for r in right if r not in ids]
    if unknown:
        raise Refused(f"the correct response names {unknown[0][:40]!r}, which is not one of the choices")
    if not right:
        notes.append("the item has no correct response: imported without a key (graded by hand)")
        return {"kind": "single" if single else "multiple", "options": options}
    correct = sorted({ids.index(r) for r in right})
    if single:
        if len(correct) > 1:
            raise Refused("a single-cardinality response lists several correct choices")
        return {"kind": "single", "options": options, "correct": correct}
    scoring = "partial" if mapped else "all_or_nothing"
    if mapped and len({v for k, v in mapped if k in right}) > 1:
        notes.append("the right choices had different weights; here each counts the same (partial credit)")
    return {"kind": "multiple", "options": options, "correct": correct, "scoring": scoring}


def _tolerance(item: Element, notes: list[str]) -> float:
    """The absolute tolerance of the response processing's `<equal>`, if it has one."""
    for equal in descendants(item, "equal"):
        mode = equal.get("toleranceMode") or "exact"
        if mode == "absolute":
            tolerance = number((equal.get("tolerance") or "0").split()[0] if equal.get("tolerance") else "0")
            if tolerance is not None and tolerance >= 0:
                return tolerance
        elif mode == "relative":
            notes.append("a relative tolerance is not imported: the answer must be exact")
    return 0.0


def _text_entry(item: Element, declaration: Element | None, notes: list[str]) -> dict[str, Any]:
    if declaration is None:
        notes.append("the item declares no response: imported without a key (graded by hand)")
        return {"kind": "short"}
    base = (declaration.get("baseType") or "string").lower()
    right = _values(child(declaration, "correctResponse"))
    mapped = _mapping(declaration)
    if base in ("float", "integer"):
        candidates = right or [key for key, value in mapped if value > 0]
        if not candidates:
            raise Refused("the numeric response has no correct value")
        value = number(candidates[0])
        if value is None:
            raise Refused(f"the correct value {candidates[0][:40]!r} is not a number")
        return {"kind": "numeric", "answer": value, "tolerance": _tolerance(item, notes)}
    if base != "string":
        raise Refused(f"a text entry of base type {base!r} is not supported (string, float or integer are)")
    accepted = list(dict.fromkeys([*right, *(key for key, value in mapped if value > 0)]))
    if not accepted:
        raise Refused("the text entry has no correct response")
    mapping = child(declaration, "mapping")
    if mapping is not None and any(e.get("caseSensitive") == "true" for e in children(mapping, "mapEntry")):
        notes.append("the item compared case; here case and spacing are ignored")
    return {"kind": "short", "accepted": accepted}
