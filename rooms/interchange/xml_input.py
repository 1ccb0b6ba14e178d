"""XML from teachers' files, parsed only through `defusedxml`: no entities, no DTDs, no
external references. A refused or broken document is an `Invalid` with its own code, never
an exception from the parser."""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from rooms.errors import Invalid

from .html_text import local


def parse_xml(data: bytes, what: str) -> Element:
    """The root element of `data`, or `Invalid` (`xml_refused` for entities/DTDs, `xml_invalid`)."""
    try:
        return SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        # Billion laughs, external entities and DTDs: refused before anything is expanded.
        raise Invalid(
            f"{what} declares a DTD or entities ({type(exc).__name__}); such XML is refused",
            code="xml_refused",
            fields={"file": "DTDs and entity declarations are not accepted"},
        ) from None
    except (ParseError, ValueError, UnicodeError) as exc:
        raise Invalid(f"{what} is not well-formed XML: {exc}", code="xml_invalid", fields={"file": str(exc)}) from None


def child(element: Element, name: str) -> Element | None:
    """The first child called `name` (any namespace)."""
    for node in element:
        if local(node.tag) == name:
            return node
    return None


def children(element: Element, name: str) -> list[Element]:
    return [node for node in element if local(node.tag) == name]


def descendants(element: Element, name: str) -> list[Element]:
    return [node for node in element.iter() if local(node.tag) == name]


def text_of(element: Element | None, name: str | None = None) -> str:
    """The text of `element` (or of its child `name`, or of that child's `<text>`); '' if absent.

    Moodle wraps most strings as `<name><text>…</text></name>`; both shapes read the same.
    """
    node = element if name is None or element is None else child(element, name)
    if node is None:
        return ""
    inner = child(node, "text")
    if inner is not None:
        node = inner
    return "".join(node.itertext()).strip()
