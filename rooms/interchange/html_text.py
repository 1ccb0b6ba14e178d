"""Question text as plain text: HTML tags stripped, entities unescaped, images noted.

Imported question text is shown to students as text, never as markup, so nothing in a file
can put a script or a tracking image on the exam page. Moodle stores HTML in strings (parsed
here with the standard library's tolerant `html.parser`); QTI writes XHTML as XML elements
(`element_text`).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from xml.etree.ElementTree import Element

# Elements whose content is never text a student should read.
_SKIPPED = {"script", "style", "head", "title", "template", "math", "svg"}
# Elements that end a line of text.
_BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "table", "ul", "ol"}
_MEDIA = {"img", "object", "video", "audio", "embed", "iframe", "picture", "source"}


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.media: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skip += 1
        elif tag in _MEDIA:
            found = dict(attrs)
            self.media.append(found.get("src") or found.get("data") or found.get("alt") or tag)
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _SKIPPED:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def tidy(text: str) -> str:
    """Spaces collapsed within lines, at most one empty line in a row, no trailing space."""
    lines = [" ".join(line.split()) for line in text.replace("\r\n", "\n").replace("\u00a0", " ").split("\n")]
    joined = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", joined).strip()


def html_to_text(html: str) -> tuple[str, list[str]]:
    """(plain text, the images and other media it referenced), from an HTML fragment."""
    try:
        parser = _parsed(html)
    except AssertionError:
        # The standard library's declaration scanner asserts on malformed `<!…` markup
        # ("<![<"); read such text again with every declaration as literal text.
        parser = _parsed(html.replace("<!", "&lt;!"))
    return tidy("".join(parser.parts)), parser.media


def _parsed(html: str) -> _TextParser:
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    return parser


def local(tag: str) -> str:
    """An element's name without its namespace."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def element_text(element: Element, replace: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """(plain text, media referenced) of an XHTML element tree, as `html_to_text` reads a string.

    `replace` maps element names (without namespace) to the text that stands for them (a QTI
    text entry becomes a blank); their own content is skipped.
    """
    replace = replace or {}
    parts: list[str] = []
    media: list[str] = []

    def walk(node: Element) -> None:
        name = local(node.tag)
        if name in replace:
            parts.append(replace[name])
            parts.append(node.tail or "")
            return
        if name in _SKIPPED:
            parts.append(node.tail or "")
            return
        if name in _MEDIA:
            media.append(node.get("src") or node.get("data") or node.get("alt") or name)
        block = name in _BLOCKS
        if block:
            parts.append("\n")
        parts.append(node.text or "")
        for child in node:
            walk(child)
        if block:
            parts.append("\n")
        parts.append(node.tail or "")

    parts.append(element.text or "")
    for child in element:
        walk(child)
    return tidy("".join(parts)), media


def media_note(media: list[str], where: str = "") -> str:
    """The report's note for images (and other media) left out."""
    names = ", ".join(sorted({m.rsplit("/", 1)[-1][:80] for m in media}))
    count = len(media)
    noun = "image or media file" if count == 1 else "images or media files"
    place = f" in {where}" if where else ""
    return f"{count} {noun}{place} not imported ({names}); the text says nothing in its place"
