"""Hypothesis strategies for hostile input: JSON of every shape, nasty strings and numbers,
mutations of a valid payload (one field wrong, one missing, one extra)."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

# Strings that have broken servers before: NUL (Postgres text/jsonb reject it), lone
# surrogates (not encodable as UTF-8), direction overrides, formula and SQL fragments,
# path climbing, and sizes just over the limits.
NASTY_STRINGS = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\u202eevil",
    "\ufeff",
    "💥" * 50,
    "' OR '1'='1' --",
    '"; DROP TABLE attempts; --',
    "=cmd|' /C calc'!A0",
    "+1",
    "@SUM(A1)",
    "../../../../etc/passwd",
    "%00",
    "%2e%2e%2f",
    "<script>alert(1)</script>",
    "${jndi:ldap://x}",
    "null",
    "NaN",
    "-0",
    "1e309",
    "9" * 40,
    "\n\r\t",
    "\\",
    "\\u0000",
)
NASTY_NUMBERS: tuple[Any, ...] = (
    0,
    -1,
    1,
    2**31,
    2**53 + 1,
    2**63,
    -(2**63) - 1,
    10**30,
    0.5,
    -0.0,
    1e-320,
    1e308,
    float("nan"),
    float("inf"),
    float("-inf"),
    True,
    False,
)

any_text = st.one_of(
    st.sampled_from(NASTY_STRINGS),
    # Every code point, surrogates included (Hypothesis leaves category Cs out by default).
    st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=40),
    st.text(max_size=20),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(NASTY_NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True),
    any_text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(any_text, inner, max_size=5),
    ),
    max_leaves=15,
)
big_text = st.integers(min_value=1, max_value=4).map(lambda k: "x" * (1 << (10 + 2 * k)))  # 4 KiB .. 256 KiB


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key/index path into a JSON value (the value itself is the empty path)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


def _set(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    value = copy.deepcopy(value)
    target = value
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return value


def _drop(value: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return value
    value = copy.deepcopy(value)
    target = value
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return value


@st.composite
def mutated(
    draw: st.DrawFn,
    valid: Any,
    *,
    extra_values: st.SearchStrategy[Any] = json_values,
    big: st.SearchStrategy[str] = big_text,
) -> Any:
    """A valid payload with one part replaced, removed, or an unknown key added."""
    where = draw(st.sampled_from(paths(valid)))
    action = draw(st.sampled_from(["replace", "replace", "drop", "extra", "big"]))
    if action == "replace":
        return _set(valid, where, draw(extra_values))
    if action == "drop":
        return _drop(valid, where)
    if action == "big":
        return _set(valid, where, draw(big))
    parent = valid
    container_paths = [p for p in paths(valid) if isinstance(_get(valid, p), dict)]
    if not container_paths:
        return valid
    parent_path = draw(st.sampled_from(container_paths))
    parent = copy.deepcopy(_get(valid, parent_path))
    parent[draw(any_text)] = draw(extra_values)
    return _set(valid, parent_path, parent)


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def to_json_bytes(value: Any) -> bytes:
    """JSON as a hostile client writes it: NaN/Infinity as bare words, surrogates escaped."""
    return json.dumps(value, allow_nan=True).encode()


# Raw bodies no JSON encoder would produce.
RAW_BODIES: tuple[bytes, ...] = (
    b"",
    b"null",
    b"[]",
    b"0",
    b'"text"',
    b"{",
    b"}",
    b"\xff\xfe\x00",
    b"\xef\xbb\xbf{}",
    b'{"a": NaN}',
    b'{"a": Infinity, "b": -Infinity}',
    b"NaN",
    b'{"a": 1, "a": 2}',
    b'{"a": 1e999999}',
    b'{"a": ' + b"9" * 5000 + b"}",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b'{"title": "\\u0000"}',
    b'{"title": "\\ud800"}',
    b'{"a": "\x00"}',
)
raw_bodies = st.one_of(st.sampled_from(RAW_BODIES), st.binary(max_size=200))
