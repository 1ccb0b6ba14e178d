"""The small server-rendered pages of the LTI services (the deep-linking choice, the proctoring
check, the auto-posted forms back to a platform) and the headers they are served with.

They differ from the node's other pages in two ways, both on purpose: they are shown inside
the platform's iframe, so they carry no X-Frame-Options and the launch part's frames policy
(server/lti/frames.py, the node's `on_response_prepare`: every page under `/lti/`) replaces
their `frame-ancestors 'none'` with the registered platforms' origins — their issuers' and
login URLs', as on the launch pages (an issuer such as Canvas's `canvas.instructure.com` is not
the host that frames the tool); and their forms post to the platform, so `form-action` names
that URL's origin too. Scripts stay in files
(static/js/lti-autopost.js), so `script-src 'self'` still holds.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping

from aiohttp import web

from server.http.pages import SECURITY_HEADERS

from .frames import origin_of
from .page_texts import direction, say, word


def lti_page(title: str, body: str, *, form_targets: Iterable[str] = (), lang: str = "en") -> web.Response:
    """A page in `lang`: `title` is English (translated here), `body` is HTML already in `lang`."""
    title = word(lang, title)
    targets = " ".join(sorted({o for o in map(origin_of, form_targets) if o}))
    csp = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"frame-ancestors 'none'; base-uri 'none'; form-action 'self' {targets}".rstrip()
    )
    # 'none' until server/lti/frames.py names the platforms (these pages are all under /lti/);
    # outside a node with that hook, unframeable. CSP governs framing here, not X-Frame-Options.
    headers = {k: v for k, v in SECURITY_HEADERS.items() if k != "X-Frame-Options"}
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


def autopost(title: str, action: str, fields: Mapping[str, str], *, lang: str = "en") -> web.Response:
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
    return lti_page(title, body, form_targets=[action], lang=lang)


def error_page(
    title: str,
    message: str,
    *,
    status: int = 400,
    lang: str = "en",
    **params: str,
) -> web.Response:
    """`message` is an English sentence (translated here, `params` filled in)."""
    response = lti_page(
        title,
        f'<p role="alert">{html.escape(word(lang, message, **params))}</p>',
        lang=lang,
    )
    response.set_status(status)
    return response
