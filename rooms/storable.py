"""What Postgres cannot store, refused at the edges with the field's name.

A NUL character or a lone UTF-16 surrogate in text, a NaN or infinite number, binary data,
or nesting deeper than any real payload would make Postgres reject the row — inside a batch of other
students' events. The edges call `check_storable` on every decoded body and payload first.
"""

from __future__ import annotations

import math
from typing import Any

from .errors import Invalid

MAX_DEPTH = 32


def _bad_text(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character"
    if text.isascii():  # no surrogate possible; skips the per-character loop below
        return None
    for ch in text:
        if "\ud800" <= ch <= "\udfff":
            return "contains an unpaired surrogate"
    return None


def find_unstorable(value: Any, path: str = "", depth: int = 0) -> tuple[str, str] | None:
    """(dotted path, reason) of the first value Postgres could not store, or None."""
    if depth > MAX_DEPTH:
        return path or "body", f"nested deeper than {MAX_DEPTH} levels"
    if isinstance(value, str):
        reason = _bad_text(value)
        return (path or "body", reason) if reason else None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path or "body", "is not a finite number")
    if isinstance(value, bytes | bytearray | memoryview):
        # Socket.IO binary attachments decode to bytes; no message of ours carries any.
        return path or "body", "is binary data, which no message accepts"
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _bad_text(key):
                return where, "has an unstorable key"
            found = find_unstorable(item, where, depth + 1)
            if found:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = find_unstorable(item, f"{path}.{index}" if path else str(index), depth + 1)
            if found:
                return found
    return None


def check_storable(value: Any) -> None:
    found = find_unstorable(value)
    if found is not None:
        field, reason = found
        raise Invalid(f"{field} {reason}", fields={field: reason})
