"""LTI Proctoring Services 1.0 (1EdTech), the proctoring tool's side.

1. The platform launches `LtiStartProctoring` (attempt number, `start_assessment_url`,
   `session_data`, optionally the Assessment Control Service): the tool shows its consent and
   the student page's system check (static/js/lti-proctoring.js runs check.js's `runChecks`).
2. On consent the tool answers with `LtiStartAssessment`, a JWT signed with the tool key and
   auto-posted to `start_assessment_url`: the same attempt number, resource link and
   `session_data` echoed, and `end_assessment_return: true`, so that
3. the platform launches `LtiEndAssessment` when the student finishes; the tool ends the
   proctoring session and submits the student's attempt in the linked room, if one runs.
4. A proctor terminating the attempt is reported through the Assessment Control Service
   (action `terminate`) when the platform offered it.
"""

from __future__ import annotations

import html
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import jwt
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rooms.lti import CLAIM, PROCTORING_CLAIM, START_ASSESSMENT, VERSION, Launch, student_id_for
from rooms.store.lti_endpoints import LinkEndpoints
from rooms.store.lti_proctoring import ProctoringStore
from rooms.timer import Attempt

from .page_texts import page_language, say
from .platform_client import PlatformClient, PlatformError, SigningKey
from .service_pages import autopost, error_page, lti_page

logger = logging.getLogger(__name__)

TITLE = "Proctored assessment"
SCOPE_CONTROL = "https://purl.imsglobal.org/spec/lti-ap/scope/control.all"
CONTROL_MEDIA_TYPE = "application/vnd.ims.lti-ap.v1.control+json"
MESSAGE_SECONDS = 300
CONSENT = (
    "While you take this assessment, your camera picture is analysed on the exam server to check that you are "
    "present and alone; events (such as leaving the page or another face) and, where a rule asks for it, still "
    "pictures are stored for your instructor's review. Nothing is recorded before you agree."
)

# Submits the student's running attempt in a room (AttemptService through the composition root).
EndAttempt = Callable[[str, str], Awaitable[None]]


class ResourceLinkClaim(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(min_length=1, max_length=255)


class AcsClaim(BaseModel):
    model_config = ConfigDict(extra="allow")
    assessment_control_url: str = Field(min_length=8, max_length=2048, pattern=r"^https?://")
    actions: list[str] = Field(default_factory=list, max_length=20)


class StartProctoring(BaseModel):
    model_config = ConfigDict(extra="ignore")

    attempt_number: str = Field(min_length=1, max_length=64)
    start_assessment_url: str = Field(min_length=8, max_length=2048, pattern=r"^https?://")
    session_data: str = Field(default="", max_length=8192)
    resource_link: ResourceLinkClaim
    acs: AcsClaim | None = None


def _claims_of(launch: Launch) -> dict[str, object]:
    # attempt_number is a number in some platforms' messages and a string in others.
    number = launch.claims.get(PROCTORING_CLAIM + "attempt_number")
    return {
        "attempt_number": str(number) if isinstance(number, int | str) else None,
        "start_assessment_url": launch.claims.get(PROCTORING_CLAIM + "start_assessment_url"),
        "session_data": launch.claims.get(PROCTORING_CLAIM + "session_data", ""),
        "resource_link": launch.claim("resource_link"),
        "acs": launch.claims.get(PROCTORING_CLAIM + "acs"),
    }


class Proctoring:
    def __init__(
        self,
        store: ProctoringStore,
        endpoints: LinkEndpoints,
        client: PlatformClient,
        signing_key: SigningKey,
        end_attempt: EndAttempt,
    ) -> None:
        self._store = store
        self._endpoints = endpoints
        self._client = client
        self._signing_key = signing_key
        self._end_attempt = end_attempt

    async def start_proctoring(self, request: web.Request, launch: Launch) -> web.Response:
        """THE REGISTRY'S HANDLER for `LtiStartProctoring`: consent and system check."""
        lang = page_language(request, launch.locale)
        try:
            start = StartProctoring.model_validate(_claims_of(launch))
        except ValidationError:
            return error_page(TITLE, "The platform's proctoring request is incomplete.", lang=lang)
        room_id = await self._store.room_of_link(launch.platform.id, launch.deployment_id, start.resource_link.id)
        session_id = await self._store.open(
            launch.platform.id,
            launch.deployment_id,
            launch.subject,
            start.resource_link.id,
            start.attempt_number,
            start.session_data,
            start.start_assessment_url,
            start.acs.assessment_control_url if start.acs is not None else None,
            room_id,
        )
        body = f"""<p id="consent-text">{say(lang, CONSENT)}</p>
<section aria-labelledby="check-h"><h2 id="check-h">{say(lang, "System check")}</h2>
<ul id="checks" aria-live="polite"></ul>
<video id="preview" autoplay muted playsinline aria-label="{say(lang, "Your camera picture")}"></video>
<button type="button" id="check-again" class="secondary">{say(lang, "Check again")}</button></section>
<form method="post" action="/lti/proctoring/{html.escape(session_id)}/start" id="start-form" class="stack">
<div><input type="checkbox" id="consent" name="consent" value="yes" required aria-describedby="consent-text">
<label for="consent">{say(lang, "I agree to be proctored as described above")}</label></div>
<button type="submit" id="start">{say(lang, "Start the assessment")}</button>
</form>
<script type="module" src="/static/js/lti-proctoring.js"></script>"""
        return lti_page(TITLE, body, lang=lang)

    async def begin(self, request: web.Request) -> web.Response:
        """POST /lti/proctoring/{session_id}/start: consent given → LtiStartAssessment."""
        form = await request.post()
        lang = page_language(request)
        if form.get("consent") != "yes":
            return error_page(TITLE, "The assessment starts only once you agree to be proctored.", lang=lang)
        session = await self._store.start(request.match_info["session_id"])
        if session is None:
            return error_page(TITLE, "This page has expired or was already used; start again.", status=410, lang=lang)
        platform = await self._endpoints.platform(session.platform_id)
        if platform is None:
            return error_page(TITLE, "The platform is no longer registered.", status=410, lang=lang)
        kid, key = await self._signing_key()
        now = int(time.time())
        claims = {
            "iss": platform.client_id,
            "aud": platform.issuer,
            "sub": session.subject,
            "iat": now,
            "exp": now + MESSAGE_SECONDS,
            "nonce": uuid.uuid4().hex,
            CLAIM + "message_type": START_ASSESSMENT,
            CLAIM + "version": VERSION,
            CLAIM + "deployment_id": session.deployment_id,
            CLAIM + "resource_link": {"id": session.resource_link_id},
            PROCTORING_CLAIM + "attempt_number": session.attempt_number,
            PROCTORING_CLAIM + "session_data": session.session_data,
            PROCTORING_CLAIM + "end_assessment_return": True,
        }
        token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
        return autopost(TITLE, session.start_assessment_url, {"JWT": token}, lang=lang)

    async def end_assessment(self, request: web.Request, launch: Launch) -> web.Response:
        """THE REGISTRY'S HANDLER for `LtiEndAssessment`: the platform says the student finished."""
        link = launch.claim("resource_link")
        link_id = link.get("id") if isinstance(link, dict) else None
        number = launch.claims.get(PROCTORING_CLAIM + "attempt_number")
        lang = page_language(request, launch.locale)
        if not isinstance(link_id, str):
            return error_page(TITLE, "The platform named no resource link.", lang=lang)
        session = await self._store.finish(
            launch.platform.id, launch.subject, link_id, str(number) if number is not None else None, "ended"
        )
        if session is None:
            return error_page(TITLE, "No proctoring session of yours is running here.", lang=lang)
        if session.room_id is not None:
            await self._end_attempt(session.room_id, student_id_for(launch.platform.id, launch.subject))
        body = f"<p>{say(lang, 'Proctoring has ended. You may close this page.')}</p>"
        return lti_page(TITLE, body, lang=lang)

    async def attempt_terminated(self, attempt: Attempt) -> bool:
        """Report a proctor's termination through the Assessment Control Service, where offered."""
        session = await self._store.started_for_attempt(attempt.id)
        if session is None or session.acs_url is None:
            return False
        platform = await self._endpoints.platform(session.platform_id)
        if platform is None:
            return False
        await self._store.finish(
            session.platform_id, session.subject, session.resource_link_id, session.attempt_number, "terminated"
        )
        body = {
            "user": {"iss": platform.issuer, "sub": session.subject},
            "resource_link": {"id": session.resource_link_id},
            "attempt_number": session.attempt_number,
            "action": "terminate",
            "incident_time": datetime.now(UTC).isoformat(timespec="seconds"),
            "incident_severity": 1.0,
            "reason_code": "proctor_terminated",
            "reason_msg": "A proctor ended the attempt.",
        }
        try:
            answer = await self._client.call(
                platform,
                frozenset({SCOPE_CONTROL}),
                "POST",
                session.acs_url,
                accept=CONTROL_MEDIA_TYPE,
                content_type=CONTROL_MEDIA_TYPE,
                body=body,
            )
        except PlatformError as exc:
            logger.warning("proctoring: reporting the termination of %s failed: %s", attempt.id, exc.reason)
            return False
        if not 200 <= answer.status < 300:
            logger.warning("proctoring: the control service answered %d for %s", answer.status, attempt.id)
            return False
        return True
