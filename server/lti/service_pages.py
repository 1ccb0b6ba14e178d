"""The small server-rendered pages of the LTI services (the deep-linking choice, the proctoring
check, the auto-posted forms back to a platform) and the headers they are served with.

They differ from the node's other pages in two ways, both on purpose: they are shown inside
the platform's iframe, so `frame-ancestors` names the platform (and only it), and their forms
post to the platform, so `form-action` names that URL's origin too. Scripts stay in files
(static/js/lti-autopost.js), so `script-src 'self'` still holds.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from aiohttp import web

from server.http.pages import SECURITY_HEADERS

from .page_texts import direction, say, word


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else ""


def lti_page(
    title: str, body: str, *, frame_ancestors: Iterable[str], form_targets: Iterable[str] = (), lang: str = "en"
) -> web.Response:
    """A page in `lang`: `title` is English (translated here), `body` is HTML already in `lang`."""
    title = word(lang, title)
    ancestors = " ".join(sorted({o for o in map(origin, frame_ancestors) if o})) or "'none'"
    targets = " ".join(sorted({o for o in map(origin, form_targets) if o}))
    csp = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"frame-ancestors {ancestors}; base-uri 'none'; form-action 'self' {targets}".rstrip()
    )
    headers = {k: v for k, v in SECURITY_HEADERS.items() if k != "X-Frame-Options"}  # CSP governs framing here
    headers["Content-Security-Policy"] = csp
    headers["Cache-Control"] = "no-store"
    document = (
        f'<!doctype html>\n<html lang="{lang}" dir="{direction(lang)}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n"
        '<link rel="icon" href="data:,">\n<link rel="stylesheet" href="/static/css/app.css">\n'
        '<script type="module" src="/static/js/lti-autopost.js"></script>\n'
        f'</head>\n<body class="teacher">\n<main id="main">\n<h1>{html.escape(title)}</h1>\n'
        f"{body}\n</main>\n</body>\n</html>\n"
    )
    return web.Response(text=document, content_type="text/html", headers=headers)


def autopost(
    title: str, action: str, fields: Mapping[str, str], *, frame_ancestors: Iterable[str], lang: str = "en"
) -> web.Response:
    """A form that posts itself to the platform (a script in a file does it; without script the
    button does)."""
    inputs = "\n".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in fields.items()
    )
    body = (
        f'<form method="post" action="{html.escape(action)}" data-autopost>\n{inputs}\n'
        f"<p>{say(lang, 'Returning to your learning platform…')}</p>\n"
        f'<button type="submit">{say(lang, "Continue")}</button>\n</form>'
    )
    return lti_page(title, body, frame_ancestors=frame_ancestors, form_targets=[action], lang=lang)


def error_page(
    title: str,
    message: str,
    *,
    status: int = 400,
    frame_ancestors: Iterable[str] = (),
    lang: str = "en",
    **params: str,
) -> web.Response:
    """`message` is an English sentence (translated here, `params` filled in)."""
    response = lti_page(
        title,
        f'<p role="alert">{html.escape(word(lang, message, **params))}</p>',
        frame_ancestors=frame_ancestors,
        lang=lang,
    )
    response.set_status(status)
    return response
