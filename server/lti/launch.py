"""The two routes every LTI message comes through, `/lti/login` and `/lti/launch`, and the
dispatch of a verified launch to its message type's handler (`LtiTool.handlers`, filled by
server/lti/messages.py).

Every refusal is an HTML page (400, 401, 403, 413 or 502/503 — never a 500), creates nothing,
and leaves an audit entry with its reason, the platform and the client address; no token or
state is ever logged or audited.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rooms.errors import RoomsError
from rooms.lti import Launch, Platform
from server.http.errors import STATUS
from server.http.pages import secure
from server.keys import SETTINGS

from .errors import LaunchError
from .id_token import verify
from .login import LAUNCH_PATH, LOGIN_PATH, authorization_redirect, parse_login
from .page_texts import page_language
from .tool import LTI, audit, error_page, form_fields

logger = logging.getLogger(__name__)

_MAX_FORM_VALUE = 64 << 10


class LaunchForm(BaseModel):
    """The form_post the platform's authorization endpoint makes the browser send."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id_token: str = Field(min_length=1, max_length=_MAX_FORM_VALUE)
    state: str = Field(min_length=1, max_length=4096)


async def login(request: web.Request) -> web.StreamResponse:
    tool = request.app[LTI]
    platform: Platform | None = None
    try:
        fields = await form_fields(request)
        hint = parse_login(fields)
        platform = await tool.store.platform_by(hint.iss, hint.client_id)
        if platform is None:
            raise LaunchError(
                "unknown_platform",
                "This learning platform is not registered with the tool. An administrator must register it.",
                403,
            )
        if hint.lti_deployment_id is not None and hint.lti_deployment_id not in platform.deployment_ids:
            raise LaunchError(
                "unknown_deployment",
                "This deployment of the tool is not registered here. An administrator must add its deployment id.",
                403,
            )
        state, sealed = tool.states.new(platform.id)
        location = authorization_redirect(
            platform.auth_login_url,
            hint,
            client_id=platform.client_id,
            redirect_uri=tool.url(LAUNCH_PATH),
            state=state,
            nonce=sealed.nonce,
        )
    except LaunchError as exc:
        await audit(request, "anonymous", "lti.login.refused", platform.id if platform else "unknown", _why(exc))
        return _error(request, exc)
    except RoomsError as exc:  # Postgres unavailable
        return _error(request, LaunchError(exc.code, exc.message, STATUS.get(exc.category, 400)))
    response = web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})
    return secure(response, request.app[SETTINGS])


async def launch(request: web.Request) -> web.StreamResponse:
    tool = request.app[LTI]
    seen: dict[str, Any] = {}
    platform_id = "unknown"
    try:
        try:
            form = LaunchForm.model_validate(await form_fields(request))
        except ValidationError:
            raise LaunchError("bad_form", "The launch has no id_token and state (a form post is expected).") from None
        login = tool.states.open(form.state)
        platform_id = login.platform_id
        try:
            platform = await tool.store.platform(login.platform_id)
        except RoomsError:
            raise LaunchError(
                "unknown_platform", "The learning platform of this launch is no longer registered.", 403
            ) from None
        claims, payload = await verify(
            form.id_token,
            platform,
            tool.platform_keys,
            nonce=login.nonce,
            known_messages=frozenset(tool.handlers),
            leeway=tool.leeway_seconds,
        )
        seen.update(subject=claims.sub, message_type=claims.message_type, deployment_id=claims.deployment_id)
        # Kept until the id_token could no longer pass the exp check (plus the leeway).
        until = datetime.fromtimestamp(max(claims.exp, login.expires_at), UTC) + timedelta(seconds=tool.leeway_seconds)
        if not await tool.store.use_nonce(platform.id, claims.nonce, until):
            raise LaunchError("replayed_nonce", "This launch was used already. Open the activity again.", 401)
        verified = Launch(
            platform=platform,
            deployment_id=claims.deployment_id,
            message_type=claims.message_type,
            subject=claims.sub,
            name=claims.name or _full_name(payload) or "",
            email=claims.email,
            roles=tuple(claims.roles),
            locale=claims.locale,
            claims=payload,
        )
        handler = tool.handlers[claims.message_type]
        response = await handler(request, verified)
    except (LaunchError, RoomsError) as exc:
        # A RoomsError comes from a handler: a room gone, Postgres unavailable, a refusal.
        failure = (
            exc if isinstance(exc, LaunchError) else LaunchError(exc.code, exc.message, STATUS.get(exc.category, 400))
        )
        subject = str(seen.get("subject", "anonymous"))
        await audit(request, subject, "lti.launch.refused", platform_id, {**_why(failure), **seen})
        return _error(request, failure)
    await audit(request, claims.sub, "lti.launch", platform.id, seen)
    return secure(response, request.app[SETTINGS])


def _full_name(payload: dict[str, Any]) -> str:
    parts = [payload.get("given_name"), payload.get("family_name")]
    return " ".join(p for p in parts if isinstance(p, str) and p)[:500]


def _why(exc: LaunchError) -> dict[str, Any]:
    logger.info("LTI refused: %s (%s)", exc.reason, exc.message)
    return {"reason": exc.reason, "status": exc.status}


def _error(request: web.Request, exc: LaunchError) -> web.StreamResponse:
    return secure(error_page(exc.reason, exc.message, exc.status, page_language(request)), request.app[SETTINGS])


def add_launch_routes(app: web.Application) -> None:
    app.router.add_get(LOGIN_PATH, login)
    app.router.add_post(LOGIN_PATH, login)
    app.router.add_post(LAUNCH_PATH, launch)
