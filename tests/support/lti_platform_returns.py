"""What the test platform (tests/support/lti_platform.py) does with the messages the tool posts
back to it, written from the 1EdTech specifications around lti1p3platform's verification:

- `POST /deep-link-return`: the tool's LtiDeepLinkingResponse (LTI Deep Linking 2.0 §4.2).
  lti1p3platform's `validate_deeplinking_resp` verifies its signature with the tool's JWKS (it
  fetches `/lti/jwks`) and its message type; the claims it skips (`aud`, `iss`, deployment,
  version, nonce, the `data` the request sent echoed) are checked here. Each `ltiResourceLink`
  becomes a course activity with the custom parameters to send back in its launches and, when
  the item has a `lineItem`, a line item of its own (AGS §3.2.3), as Moodle and Canvas do.
- `POST /start-assessment`: the tool's LtiStartAssessment (LTI Proctoring Services 1.0 §5),
  signature through lti1p3platform's `tool_validate_and_decode`, its `session_data`, `sub` and
  attempt number checked against the LtiStartProctoring the platform sent.
"""

from __future__ import annotations

import asyncio
import html
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from lti1p3platform.exceptions import LtiDeepLinkingResponseException, LtiException

from tests.support.lti_services import PlatformServices

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"
AP_CLAIM = "https://purl.imsglobal.org/spec/lti-ap/claim/"
COURSE = "course-1"


@dataclass
class PlatformLink:
    """A course activity the platform made from a deep-linking content item."""

    id: str
    title: str
    custom: dict[str, str]
    lineitem: str | None  # the line item made for it from the item's `lineItem`


class ToolMessageRefused(Exception):
    """A JWT the tool posted back failed the platform's checks."""


@dataclass
class ToolReturns:
    config: Callable[[], Any]  # a fresh lti1p3platform platform configuration
    url: str  # the platform's issuer and origin
    client_id: str
    deployment_id: str
    services: PlatformServices
    links: dict[str, PlatformLink] = field(default_factory=dict)
    # What the tool posted back, once verified (their claims); the reasons of those refused.
    deep_link_responses: list[dict[str, Any]] = field(default_factory=list)
    start_assessments: list[dict[str, Any]] = field(default_factory=list)
    refused_messages: list[str] = field(default_factory=list)
    # What the platform sent and expects echoed: deep-linking `data`, proctoring `session_data`.
    _sent_data: set[str] = field(default_factory=set)
    _sessions: dict[str, tuple[str, str]] = field(default_factory=dict)  # session_data -> (sub, attempt)

    def expect_data(self) -> str:
        """A deep-linking request's opaque `data`, to come back in the response."""
        data = "dl-" + secrets.token_hex(6)
        self._sent_data.add(data)
        return data

    def expect_session(self, sub: str, attempt: str) -> str:
        """A start-proctoring message's `session_data`, to come back in LtiStartAssessment."""
        session = "session-" + secrets.token_hex(6)
        self._sessions[session] = (sub, attempt)
        return session

    def _verify_tool_message(self, token: str, message_type: str) -> dict[str, Any]:
        """lti1p3platform verifies the signature (the tool's JWKS, fetched from its URL) and the
        expiry; the claims it leaves unchecked (it skips `aud`) are checked here. Blocking (the
        package fetches with `requests`): called in a thread."""
        config = self.config()
        if message_type == "LtiDeepLinkingResponse":
            config.validate_deeplinking_resp({"JWT": token})  # also checks the message type
        claims: dict[str, Any] = config.tool_validate_and_decode(token)
        aud = claims.get("aud")
        checks = {
            "iss": claims.get("iss") == self.client_id,
            "aud": aud == self.url or (isinstance(aud, list) and self.url in aud),
            "message_type": claims.get(CLAIM + "message_type") == message_type,
            "version": claims.get(CLAIM + "version") == "1.3.0",
            "deployment_id": claims.get(CLAIM + "deployment_id") == self.deployment_id,
            "nonce": isinstance(claims.get("nonce"), str) and bool(claims["nonce"]),
            "iat": isinstance(claims.get("iat"), int) and claims["iat"] <= time.time() + 30,
        }
        failed = [name for name, ok in checks.items() if not ok]
        if failed:
            raise ToolMessageRefused(f"{message_type}: wrong {', '.join(failed)}")
        return claims

    async def _tool_message(self, request: web.Request, message_type: str) -> dict[str, Any] | None:
        form = await request.post()
        try:
            return await asyncio.to_thread(self._verify_tool_message, str(form.get("JWT", "")), message_type)
        except (LtiException, LtiDeepLinkingResponseException, jwt.PyJWTError, ToolMessageRefused) as exc:
            self.refused_messages.append(f"{type(exc).__name__}: {exc}")
            return None

    async def deep_link_return(self, request: web.Request) -> web.Response:
        """LTI Deep Linking 2.0 §4.2: each resource link item becomes an activity of the course."""
        claims = await self._tool_message(request, "LtiDeepLinkingResponse")
        if claims is None or claims.get(DL_CLAIM + "data") not in self._sent_data:
            if claims is not None:
                self.refused_messages.append("LtiDeepLinkingResponse: data not echoed")
            return _platform_page("Not added", '<p role="alert">The tool\'s answer was refused.</p>', 400)
        self._sent_data.discard(claims[DL_CLAIM + "data"])
        self.deep_link_responses.append(claims)
        added = []
        for item in claims.get(DL_CLAIM + "content_items", []):
            if item.get("type") != "ltiResourceLink":
                continue
            link_id = f"dl-{len(self.links) + 1}"
            lineitem = None
            if isinstance(item.get("lineItem"), dict):
                lineitem = f"{self.services.lineitems_url(COURSE)}/{len(self.services.line_items) + 1}"
                self.services.line_items[lineitem] = {**item["lineItem"], "id": lineitem, "resourceLinkId": link_id}
            custom = {str(k): str(v) for k, v in (item.get("custom") or {}).items()}
            self.links[link_id] = PlatformLink(link_id, str(item.get("title", "")), custom, lineitem)
            added.append(f'<li data-link="{html.escape(link_id)}">{html.escape(str(item.get("title", "")))}</li>')
        return _platform_page("Added", f'<ul id="added" aria-label="Added activities">{"".join(added)}</ul>')

    async def start_assessment(self, request: web.Request) -> web.Response:
        """LTI Proctoring Services 1.0 §5: the tool's LtiStartAssessment, its echoes checked."""
        claims = await self._tool_message(request, "LtiStartAssessment")
        sent = self._sessions.get(str(claims.get(AP_CLAIM + "session_data"))) if claims is not None else None
        if claims is None or sent != (claims.get("sub"), str(claims.get(AP_CLAIM + "attempt_number"))):
            if claims is not None:
                self.refused_messages.append("LtiStartAssessment: session_data, sub or attempt not echoed")
            return _platform_page("Not started", '<p role="alert">The proctoring tool\'s answer was refused.</p>', 400)
        self.start_assessments.append(claims)
        return _platform_page("Assessment", '<p id="assessment-started">The assessment has started.</p>')


def _platform_page(title: str, body: str, status: int = 200) -> web.Response:
    document = (
        f'<!doctype html><html lang="en"><head><title>{html.escape(title)}</title></head><body>{body}</body></html>'
    )
    return web.Response(text=document, status=status, content_type="text/html")
