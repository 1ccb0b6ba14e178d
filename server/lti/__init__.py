"""The LTI 1.3 tool (docs/lti.md): registration, the tool's keys, the OIDC login and the launch,
the landing of learners and instructors, and the frame-ancestors of the pages a platform frames.

`add_lti(app, tool)` (server/app.py) stores the tool behind `LTI`, adds the browser routes
(`/lti/login`, `/lti/launch`, `/lti/bind`, `/lti/jwks`), the CSP rewrite for framed pages and
the platform-keys HTTP client's lifecycle. The REST routes are `LTI_ROUTES` in server/http/api.py.
Message handlers are registered in server/lti/messages.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from .landing import BIND_PATH, bind
from .launch import add_launch_routes
from .registration import JWKS_PATH, jwks
from .tool import LTI, LtiTool, MessageHandler, build_tool

__all__ = ["LTI", "LtiTool", "MessageHandler", "add_lti", "build_tool"]


async def _platform_keys_ctx(app: web.Application) -> AsyncIterator[None]:
    keys = app[LTI].platform_keys
    await keys.start()
    try:
        yield
    finally:
        await keys.close()


def add_lti(app: web.Application, tool: LtiTool) -> None:
    app[LTI] = tool
    add_launch_routes(app)
    app.router.add_post(BIND_PATH, bind)
    app.router.add_get(JWKS_PATH, jwks)
    app.on_response_prepare.append(tool.frames.on_prepare)
    app.cleanup_ctx.append(_platform_keys_ctx)
