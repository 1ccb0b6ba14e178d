"""The message types the tool answers, one line each: `/lti/launch` verifies the id_token
(server/lti/id_token.py) and then calls the handler registered here for its message type; a
type missing here is refused as `unknown_message` before anything is created.

A handler is `async def handler(request: web.Request, launch: rooms.lti.Launch) ->
web.StreamResponse` (server/lti/tool.py `MessageHandler`); it reads what it needs from
`request.app` (`LTI`, `CATALOG`, `TOKENS`, ...). A refusal is a `LaunchError` (or a
`RoomsError`): the launch route turns it into the error page and the audit entry.

The services' handlers (deep linking, proctoring: server/lti/services.py) come in as `extra`;
before any of them runs, the launch's platform user is recorded and an instructor's account is
linked, as for a resource-link launch, so a deep-linking instructor owns what they pick.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from rooms.lti import RESOURCE_LINK_REQUEST, Launch
from server.keys import ACCOUNTS

from .landing import lti_account, resource_link
from .tool import LTI, MessageHandler


def _with_platform_user(handler: MessageHandler) -> MessageHandler:
    async def handle(request: web.Request, launch: Launch) -> web.StreamResponse:
        tool = request.app[LTI]
        await tool.store.upsert_user(
            launch.platform.id, launch.subject, name=launch.name, email=launch.email, roles=launch.roles
        )
        if launch.is_instructor:
            await lti_account(request.app[ACCOUNTS], tool, launch)
        return await handler(request, launch)

    return handle


def message_handlers(extra: Mapping[str, MessageHandler] = {}) -> dict[str, MessageHandler]:
    return {
        RESOURCE_LINK_REQUEST: resource_link,
        **{message_type: _with_platform_user(handler) for message_type, handler in extra.items()},
    }
