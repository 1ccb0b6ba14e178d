"""Hostile bodies and path parameters for every REST route: never a 5xx, and every 4xx is
the one JSON error shape. Bodies come from mutating each model's example (one field wrong,
one missing, one extra, one huge), from arbitrary JSON (NaN, huge numbers, NUL, lone
surrogates, deep nesting) and from raw bytes; path parameters are real ids or garbage.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.parse
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.http.api import ROUTES
from server.http.route import Route
from tests.security.strategies import RAW_BODIES, any_text, json_values, mutated, raw_bodies, to_json_bytes
from tests.support.access import FIGURES, LoopBridge, World, error_shape_problem, fuzz_settings
from tests.support.node import ADMIN, bearer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

MAX_EXAMPLES = 150
BODY_ROUTES = [r for r in ROUTES if r.body is not None]

PATH_GARBAGE = (
    "0",
    "-1",
    "99999999999999999999",
    "-99999999999999999999",
    "1e3",
    "١٢",
    " 1",
    "1_000",
    "00000000-0000-0000-0000-000000000000",
    "%2e%2e",
    "..",
    "x" * 300,
    "null",
    "true",
    "[]",
    "{}",
    "\x00",
    "a\x00b",
    "\ud800",
    "' OR 1=1 --",
    "s-a\n",
)
path_garbage = st.one_of(any_text.filter(bool), st.sampled_from(PATH_GARBAGE))


def route_id(route: Route) -> str:
    return f"{route.method} {route.path}"


def example(route: Route) -> Any:
    assert route.body is not None
    extra = route.body.model_config.get("json_schema_extra") or {}
    assert isinstance(extra, dict) and "example" in extra, f"{route.body.__name__} needs an example"
    return extra["example"]


def build_path(route: Route, ids: dict[str, str], garbage: dict[str, str] | None = None) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if garbage is not None and name in garbage:
            return urllib.parse.quote(garbage[name], safe="", errors="surrogatepass")
        return ids[name]

    return re.sub(r"{(\w+)}", sub, route.path)


async def send(
    world: World, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> tuple[int, str, bytes]:
    async with world.live.http.request(method, world.live.url + path, data=body, headers=headers) as resp:
        return resp.status, resp.content_type, await resp.read()


def verdict(status: int, ctype: str, raw: bytes) -> str | None:
    """Why this answer breaks the contract, or None."""
    if status >= 500:
        return f"server error {status}: {raw[:300]!r}"
    if status >= 400:
        if ctype != "application/json":
            return f"{status} with content type {ctype}: {raw[:200]!r}"
        try:
            data = json.loads(raw)
        except ValueError:
            return f"{status} body is not JSON: {raw[:200]!r}"
        return error_shape_problem(data)
    return None


def bodies(route: Route) -> st.SearchStrategy[tuple[bytes, str]]:
    """(raw body, what it is) for one route."""
    valid = example(route)
    return st.one_of(
        mutated(valid).map(lambda v: (to_json_bytes(v), "mutated example")),
        json_values.map(lambda v: (to_json_bytes(v), "arbitrary JSON")),
        raw_bodies.map(lambda b: (b, "raw bytes")),
    )


@pytest.mark.parametrize("route", BODY_ROUTES, ids=route_id)
async def test_fuzz_bodies(world: World, bridge: LoopBridge, route: Route) -> None:
    ids = world.ids
    path = build_path(route, ids)
    headers = {**bearer(ADMIN), "Content-Type": "application/json"}

    @settings(**fuzz_settings(MAX_EXAMPLES))
    @given(case=bodies(route))
    def run(case: tuple[bytes, str]) -> None:
        body, kind = case
        FIGURES["fuzz cases: REST bodies"] += 1
        status, ctype, raw = bridge.run(lambda: send(world, route.method, path, body, headers))
        problem = verdict(status, ctype, raw)
        assert problem is None, f"{route.method} {path} with {kind} {body[:300]!r}: {problem}"

    await asyncio.to_thread(run)


@pytest.mark.parametrize("route", [r for r in ROUTES if "{" in r.path], ids=route_id)
async def test_fuzz_path_params(world: World, bridge: LoopBridge, route: Route) -> None:
    names = re.findall(r"{(\w+)}", route.path)
    body = to_json_bytes(example(route)) if route.body is not None else None

    @settings(**fuzz_settings(MAX_EXAMPLES // 3))
    @given(
        garbage=st.fixed_dictionaries({n: path_garbage for n in names}),
        token=st.sampled_from([ADMIN, "", "Bearer", "garbage", "e30.e30.", "a" * 5000]),
    )
    def run(garbage: dict[str, str], token: str) -> None:
        FIGURES["fuzz cases: REST path params"] += 1
        path = build_path(route, world.ids, garbage)
        headers = {"Content-Type": "application/json", **(bearer(token) if token else {})}
        status, ctype, raw = bridge.run(lambda: send(world, route.method, path, body, headers))
        problem = verdict(status, ctype, raw)
        assert problem is None, f"{route.method} {path}: {problem}"

    await asyncio.to_thread(run)


# Deterministic regressions: each garbage path parameter, with the admin token and a valid body.
@pytest.mark.parametrize("route", [r for r in ROUTES if "{" in r.path], ids=route_id)
async def test_garbage_ids_never_5xx(world: World, route: Route) -> None:
    body = to_json_bytes(example(route)) if route.body is not None else None
    headers = {**bearer(ADMIN), "Content-Type": "application/json"}
    failures = []
    for garbage in PATH_GARBAGE:
        names = re.findall(r"{(\w+)}", route.path)
        path = build_path(route, world.ids, {n: garbage for n in names})
        FIGURES["fuzz cases: REST path params"] += 1
        problem = verdict(*await send(world, route.method, path, body, headers))
        if problem:
            failures.append(f"{route.method} {path}: {problem}")
    assert not failures, "\n".join(failures)


# Deterministic regressions: each known-hostile raw body against each route with a body.
@pytest.mark.parametrize("raw", RAW_BODIES, ids=lambda b: repr(b[:24]))
async def test_raw_bodies_never_5xx(world: World, raw: bytes) -> None:
    headers = {**bearer(ADMIN), "Content-Type": "application/json"}
    failures = []
    for route in BODY_ROUTES:
        path = build_path(route, world.ids)
        FIGURES["fuzz cases: REST raw bodies"] += 1
        problem = verdict(*await send(world, route.method, path, raw, headers))
        if problem:
            failures.append(f"{route.method} {route.path}: {problem}")
    assert not failures, "\n".join(failures)


# Deterministic regressions: a NUL or a lone surrogate in every string field of every example.
def string_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, str):
        return [prefix]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in string_paths(v, (*prefix, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in string_paths(v, (*prefix, i))]
    return []


def with_value(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: with_value(value[head], rest, new)}
    return [with_value(v, rest, new) if i == head else v for i, v in enumerate(value)]


def _kind(bad: str) -> str:
    return "NUL" if "\x00" in bad else "surrogate"


STRING_CASES = [
    (route, path, bad)
    for route in BODY_ROUTES
    for path in string_paths(example(route))
    for bad in ("a\x00b", "a\ud800b")
]


@pytest.mark.parametrize(
    ("route", "where", "bad"),
    STRING_CASES,
    ids=[f"{r.method} {r.path} {'.'.join(map(str, p))} {_kind(b)}" for r, p, b in STRING_CASES],
)
async def test_unstorable_strings_are_refused_not_500(
    world: World, route: Route, where: tuple[Any, ...], bad: str
) -> None:
    body = with_value(example(route), where, bad)
    if route.path == "/api/tokens/revoke":
        body = {"token_id": bad}
    headers = {**bearer(ADMIN), "Content-Type": "application/json"}
    FIGURES["fuzz cases: REST unstorable strings"] += 1
    status, ctype, raw = await send(world, route.method, build_path(route, world.ids), to_json_bytes(body), headers)
    problem = verdict(status, ctype, raw)
    assert problem is None, f"{route.method} {route.path} with {'.'.join(map(str, where))}={bad!r}: {problem}"
