"""Error answers say what went wrong for a person, in their language (Babel catalogs keyed by the
error codes): the token's `locale` first, then Accept-Language, then English; codes unchanged."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from rooms.errors import RoomsError
from server.http import messages
from server.keys import TOKENS

ROOT = Path(__file__).resolve().parents[2]


def codes_in_source() -> set[str]:
    """Every error code the server can answer with: the categories and each explicit code=."""
    found = {"invalid", "unauthorized", "forbidden", "not_found", "conflict", "too_large", "rate_limited"}
    found |= {"unavailable", "capacity", "internal", "method_not_allowed", "http_error"}
    for package in ("server", "rooms", "signaling"):
        for path in (ROOT / package).rglob("*.py"):
            found |= set(re.findall(r'\bcode="([a-z_]+)"', path.read_text(encoding="utf-8")))
    return found


def test_every_error_code_has_a_text_in_every_language() -> None:
    shipped = messages.catalogs()
    assert set(shipped) >= {"en", "he"}
    codes = codes_in_source()
    assert len(codes) > 25
    for lang, texts in shipped.items():
        assert sorted(codes - set(texts)) == [], f"{lang}/LC_MESSAGES/errors.po lacks these codes"
        assert set(texts) == set(shipped["en"]), lang
    assert all(re.search("[\u0590-\u05ff]", text) for text in shipped["he"].values())
    assert RoomsError("x").code == "invalid"  # a code defaults to its category, which is listed


def test_accept_language_is_read_by_quality() -> None:
    assert messages.accept_language("en;q=0.5, he-IL, fr;q=0.8, *;q=0.1") == ["he-IL", "fr", "en"]
    assert messages.accept_language("") == [] and messages.accept_language("de;q=x, ,") == []


async def get(client: TestClient[Any, Any], path: str, **headers: str) -> tuple[int, dict[str, Any], str]:
    async with client.get(path, headers=headers) as resp:
        return resp.status, (await resp.json())["error"], resp.headers.get("Content-Language", "")


async def test_error_answers_carry_a_text_in_the_negotiated_language(client: TestClient[Any, Any]) -> None:
    status, error, lang = await get(
        client, "/api/rooms/nope/attempts", **{"Accept-Language": "he-IL,he;q=0.9,en;q=0.5"}
    )
    assert status == 401 and error["code"] == "unauthorized" and lang == "he"
    assert error["text"] == messages.catalogs()["he"]["unauthorized"]
    assert error["message"]  # the developer's English text is still there

    status, error, lang = await get(client, "/api/rooms/nope/attempts", **{"Accept-Language": "fr, en;q=0.3"})
    assert lang == "en" and error["text"] == "Please sign in first."
    _, error, lang = await get(client, "/api/rooms/nope/attempts")
    assert lang == "en" and error["code"] == "unauthorized"

    # An explicit choice wins over the browser's: the token's locale claim (LTI launch, account).
    token = client.app[TOKENS].mint("teacher", "t-he", locale="he")
    assert client.app[TOKENS].verify(token).locale == "he"
    _, error, lang = await get(
        client, "/api/exams/not-a-uuid", Authorization=f"Bearer {token}", **{"Accept-Language": "en"}
    )
    assert lang == "he" and error["text"] in messages.catalogs()["he"].values()


def test_a_malformed_locale_claim_is_ignored(client: TestClient[Any, Any]) -> None:
    tokens = client.app[TOKENS]
    assert tokens.verify(tokens.mint("teacher", "t", locale="he; DROP")).locale is None
    assert tokens.verify(tokens.mint("teacher", "t", locale="pt-BR")).locale == "pt-BR"


async def test_the_pages_get_the_error_texts_of_their_language(client: TestClient[Any, Any]) -> None:
    async with client.get("/i18n/errors/he.json") as resp:
        assert resp.status == 200 and "Content-Security-Policy" in resp.headers
        assert await resp.json() == messages.catalogs()["he"]
    for bad in ("/i18n/errors/xx.json", "/i18n/errors/..%2fen.json", "/i18n/errors/EN.json"):
        async with client.get(bad) as resp:
            assert resp.status == 404, bad
