"""The texts people read in the server's answers, in their language: gettext catalogs
(`server/locale/<lang>/LC_MESSAGES/errors.po`, read with Babel) keyed by the stable error codes.

Every error answer keeps `code` (what programs branch on) and `message` (the developer's text,
in English, unchanged) and gains `text`: the same error said for a person, in the language
negotiated here, with `Content-Language` naming it. The order: an explicit choice (the `locale`
claim a token carries, e.g. from an LTI launch or the account's setting), then the request's
`Accept-Language`, then English. The .po files are read as they are (no compile step): adding a
language is adding its folder with one errors.po (docs/accessibility.md).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from aiohttp import web
from babel import Locale, UnknownLocaleError
from babel.messages.pofile import read_po

from server.http.credentials import RESOLVED, Resolved, bearer_token
from server.keys import TOKENS

LOCALES = Path(__file__).resolve().parents[1] / "locale"
DEFAULT = "en"
DOMAIN = "errors"
logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def catalogs(domain: str = DOMAIN) -> dict[str, dict[str, str]]:
    """code -> text for each shipped language, read once from the .po files (`errors`, or the
    LTI pages' `lti`: server/lti/page_texts.py)."""
    found: dict[str, dict[str, str]] = {}
    for path in sorted(LOCALES.glob(f"*/LC_MESSAGES/{domain}.po")):
        with path.open("rb") as po:
            catalog = read_po(po, locale=path.parents[1].name)
        found[path.parents[1].name] = {
            str(message.id): str(message.string) for message in catalog if message.id and message.string
        }
    return found


def _base(tag: str) -> str | None:
    try:
        return Locale.parse(tag.strip().replace("-", "_")).language
    except (ValueError, TypeError, UnknownLocaleError):
        return None


def accept_language(header: str) -> list[str]:
    """The languages of an Accept-Language header, best first (RFC 9110 §12.5.4 q-values)."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and tag != "*" and quality > 0:
            weighted.append((-quality, index, tag))
    return [tag for _, _, tag in sorted(weighted)]


def claimed_locale(request: web.Request) -> str | None:
    """The explicit choice: the `locale` of the caller's session or token, if it has one."""
    resolved: Resolved | None = request.get(RESOLVED)
    claims = resolved.claims if resolved is not None else None
    if claims is None:
        try:
            token = bearer_token(request)
            claims = request.app[TOKENS].verify(token) if token else None
        except Exception:  # an invalid token is the error being answered; it names no language
            claims = None
    return getattr(claims, "locale", None)


def negotiate(request: web.Request) -> str:
    shipped = catalogs()
    wanted = [claimed_locale(request), *accept_language(request.headers.get("Accept-Language", ""))]
    for tag in wanted:
        base = _base(tag) if tag else None
        if base in shipped:
            return base
    return DEFAULT


def error_text(lang: str, code: str, category: str | None = None) -> str | None:
    """The person's text for an error code; the category's when the code has none of its own."""
    shipped = catalogs()
    for table in (shipped.get(lang, {}), shipped.get(DEFAULT, {})):
        text = table.get(code) or (table.get(category) if category else None)
        if text:
            return text
    return None


__all__ = ["accept_language", "catalogs", "error_text", "negotiate"]
