"""The LTI tool's parts, built once by server/wire.py and kept behind one AppKey, and the HTML
pages every LTI route answers with (errors, "not set up yet", the binding form)."""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from rooms.lti import Launch
from rooms.store.lti import LtiStore
from rooms.store.lti_keys import ToolKeys
from rooms.tokens import Claims, Role
from server.keys import AUDIT

from .errors import LaunchError
from .frames import FrameAncestors
from .login import LoginStates
from .page_texts import direction, launch_error_text, say, word
from .platform_keys import PlatformKeys

if TYPE_CHECKING:
    from server.settings import Settings

logger = logging.getLogger(__name__)

MessageHandler = Callable[[web.Request, Launch], Awaitable[web.StreamResponse]]
"""What a message type is answered by: the request (for `request.app`'s keys) and the verified
launch. Registered in server/lti/messages.py `message_handlers()`."""


@dataclass(frozen=True)
class LtiTool:
    store: LtiStore
    keys: ToolKeys
    platform_keys: PlatformKeys
    states: LoginStates
    frames: FrameAncestors
    handlers: Mapping[str, MessageHandler]
    base_url: str
    session_seconds: float
    leeway_seconds: float

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path


LTI: web.AppKey[LtiTool] = web.AppKey("lti", LtiTool)


def build_tool(settings: Settings, store: LtiStore, keys: ToolKeys, handlers: Mapping[str, MessageHandler]) -> LtiTool:
    return LtiTool(
        store=store,
        keys=keys,
        platform_keys=PlatformKeys(settings.lti_jwks_cache_seconds, settings.lti_jwks_refetch_seconds),
        states=LoginStates(settings.secret.get_secret_value()),
        frames=FrameAncestors(store),
        handlers=handlers,
        base_url=settings.base_url,
        session_seconds=settings.lti_session_seconds,
        leeway_seconds=settings.lti_leeway_seconds,
    )


def page(title: str, body_html: str, status: int = 200, lang: str = "en") -> web.Response:
    """A small page in the teacher pages' style, in `lang` (the title already in it); `body_html`
    is already escaped by the caller. Its headers (CSP with the platforms as frame ancestors)
    are set by server/lti/frames.py."""
    text = (
        f'<!doctype html>\n<html lang="{lang}" dir="{direction(lang)}">\n<head>\n  <meta charset="utf-8">\n'
        '  <meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'  <title>{html.escape(title)}</title>\n  <link rel="icon" href="data:,">\n'
        '  <link rel="stylesheet" href="/static/css/app.css">\n</head>\n'
        '<body class="teacher">\n  <main id="main" class="card">\n'
        f"    <h1>{html.escape(title)}</h1>\n{body_html}  </main>\n</body>\n</html>\n"
    )
    return web.Response(status=status, text=text, content_type="text/html", headers={"Cache-Control": "no-store"})


_TITLES = {400: "Launch failed", 401: "Launch refused", 403: "Launch refused", 413: "Launch failed"}


def error_page(reason: str, message: str, status: int, lang: str = "en") -> web.Response:
    """A refused launch: said by its reason in `lang` (page_texts.py), the reason kept as a reference."""
    title = word(lang, _TITLES.get(status, "The tool is unavailable" if status >= 500 else "Launch failed"))
    reference = f'<code id="lti-reason">{html.escape(reason)}</code>'
    body = (
        f'    <p id="lti-error" role="alert">{html.escape(launch_error_text(lang, reason, message))}</p>\n'
        f'    <p class="muted">{say(lang, "Reference: {code}", raw={"code": reference})}</p>\n'
    )
    return page(title, body, status, lang)


def lti_actor(subject: str) -> Claims:
    # The audit log's actor for what a launch did: the platform user, not an account.
    return Claims(role=cast(Role, "lti"), sub=subject[:255] or "anonymous")


async def audit(request: web.Request, subject: str, action: str, platform_id: str, details: dict[str, Any]) -> None:
    try:
        await request.app[AUDIT].record(
            lti_actor(subject), action, "lti_platform", platform_id, {**details, "address": request.remote or ""}
        )
    except Exception:  # the page must still say what went wrong
        logger.exception("could not audit an LTI %s", action)


async def form_fields(request: web.Request) -> dict[str, str]:
    """The query and (for a POST) the form, as strings; a body that is no form counts as empty."""
    fields = {k: v for k, v in request.query.items()}
    if request.method == "POST":
        try:
            form = await request.post()
        except web.HTTPRequestEntityTooLarge:
            raise LaunchError("too_large", "The request is larger than this server accepts.", 413) from None
        except (ValueError, UnicodeDecodeError, AssertionError, HttpProcessingError):
            # A garbled multipart body (aiohttp's parser raises these), or undecodable bytes.
            raise LaunchError("bad_form", "The request's form could not be read.") from None
        fields.update({k: v for k, v in form.items() if isinstance(v, str)})
    return fields
