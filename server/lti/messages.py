"""The message types the tool answers, one line each: `/lti/launch` verifies the id_token
(server/lti/id_token.py) and then calls the handler registered here for its message type; a
type missing here is refused as `unknown_message` before anything is created.

A handler is `async def handler(request: web.Request, launch: rooms.lti.Launch) ->
web.StreamResponse` (server/lti/tool.py `MessageHandler`); it reads what it needs from
`request.app` (`LTI`, `CATALOG`, `TOKENS`, ...). A refusal is a `LaunchError` (or a
`RoomsError`): the launch route turns it into the error page and the audit entry.
"""

from __future__ import annotations

from rooms.lti import RESOURCE_LINK_REQUEST

from .landing import resource_link
from .tool import MessageHandler


def message_handlers() -> dict[str, MessageHandler]:
    return {
        RESOURCE_LINK_REQUEST: resource_link,
        # DEEP_LINKING_REQUEST: deep_linking.request,   (lti-services)
        # START_PROCTORING: proctoring.start,           (lti-services)
    }
