"""The words of the server-rendered LTI pages (launch errors, "not set up yet", the binding form,
the deep-linking choice, the proctoring check) in the reader's language.

gettext's own way: the English sentence in the code is the `msgid`, and
`server/locale/<lang>/LC_MESSAGES/lti.po` (read with Babel, like errors.po) holds each
language's `msgstr`; English needs no catalog, and a sentence a catalog lacks stays English.
A launch error is said by its stable reason (`msgid "launch.<reason>"`), else by the server's
message. The language: the launch's `locale` claim (the platform's setting for this person),
then the request's Accept-Language (server/http/messages.py), then English.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

from aiohttp import web
from babel import Locale, UnknownLocaleError

from server.http.messages import catalogs, negotiate

DOMAIN = "lti"


def _base(tag: str) -> str | None:
    try:
        return Locale.parse(tag.strip().replace("-", "_")).language
    except (ValueError, TypeError, UnknownLocaleError):
        return None


def page_language(request: web.Request, locale: str | None = None) -> str:
    """The launch's locale when this server ships it, else what the request negotiates."""
    shipped = catalogs()
    base = _base(locale) if locale else None
    return base if base in shipped else negotiate(request)


def direction(lang: str) -> str:
    try:
        return "rtl" if Locale.parse(lang).character_order == "right-to-left" else "ltr"
    except (ValueError, UnknownLocaleError):
        return "ltr"


def word(lang: str, text: str, **params: object) -> str:
    """`text` in `lang` with `{name}`s filled: plain text (the caller escapes it)."""
    translated = catalogs(DOMAIN).get(lang, {}).get(text, text)
    return translated.format(**params) if params else translated


def say(lang: str, text: str, *, raw: Mapping[str, str] | None = None, **params: object) -> str:
    """`text` in `lang` as HTML: the sentence and every parameter escaped; `raw` parameters are
    markup the caller built (and escaped) itself, e.g. a `<bdi>` around a title."""
    translated = catalogs(DOMAIN).get(lang, {}).get(text, text)
    filled = {name: html.escape(str(value)) for name, value in params.items()} | dict(raw or {})
    return html.escape(translated).format(**filled) if filled else html.escape(translated)


def launch_error_text(lang: str, reason: str, message: str) -> str:
    """A refused launch in the reader's words: the catalog's text of the reason, or the message."""
    return catalogs(DOMAIN).get(lang, {}).get(f"launch.{reason}", message)


__all__ = ["direction", "launch_error_text", "page_language", "say", "word"]
