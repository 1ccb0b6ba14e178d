"""Deep linking (https://www.imsglobal.org/spec/lti-dl/v2p0): an instructor adding the tool to a
course picks one of their exams and a room (or creates them), and the tool answers with an
`LtiDeepLinkingResponse` JWT holding one `ltiResourceLink`, auto-posted to the platform.

The request's context stays server-side (lti_deep_link_requests): the choice page's form names
only a one-time id that expires, so nothing the browser holds can change the platform, the
deployment or the return URL. The content item's custom parameter `proctor_binding` names a
binding (lti_bindings) that the first launch of the new resource link reads with
`DeepLinkStore.bound_room(platform_id, binding)` to bind the link to the room.
"""

from __future__ import annotations

import html
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Literal

import jwt
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rooms.catalog import Exam
from rooms.errors import RoomsError
from rooms.exam import ExamSpec
from rooms.lti import CLAIM, DEEP_LINKING_RESPONSE, DL_CLAIM, VERSION, Launch
from rooms.store.catalog import Catalog
from rooms.store.lti_deep_links import DeepLinkStore
from rooms.store.lti_endpoints import LinkEndpoints

from .page_texts import page_language, say
from .platform_client import SigningKey
from .service_pages import autopost, error_page, lti_page

logger = logging.getLogger(__name__)

SETTINGS_CLAIM = DL_CLAIM + "deep_linking_settings"
BINDING_PARAM = "proctor_binding"
RESPONSE_SECONDS = 300
TITLE = "Add a proctored exam"

# Who owns the exams an instructor lists and creates: their linked account (None: not linked).
OwnerOf = Callable[[Launch], Awaitable[str | None]]


class DeepLinkingSettings(BaseModel):
    model_config = ConfigDict(extra="allow")

    deep_link_return_url: str = Field(min_length=8, max_length=2048, pattern=r"^https?://")
    accept_types: list[str] = Field(min_length=1, max_length=20)
    data: str | None = Field(default=None, max_length=4096)


class DeepLinkChoice(BaseModel):
    """The choice page's form (validated like any other input from a browser)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    exam: str = Field(min_length=1, max_length=64)  # an exam id, or "new"
    room: str = Field(default="new", max_length=64)  # a room id of that exam, or "new"
    title: str = Field(default="", max_length=200)
    duration_minutes: int = Field(default=60, ge=1, le=24 * 60)
    question: str = Field(default="", max_length=5000)
    room_name: str = Field(default="", max_length=200)
    seats: int = Field(default=50, ge=1, le=10_000)


def score_maximum(exam: Exam) -> float:
    return float(sum(q.points for q in exam.questions)) or 1.0


class DeepLinking:
    def __init__(
        self,
        store: DeepLinkStore,
        catalog: Catalog,
        endpoints: LinkEndpoints,
        signing_key: SigningKey,
        *,
        launch_url: str,
        owner_of: OwnerOf,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._endpoints = endpoints
        self._signing_key = signing_key
        self._launch_url = launch_url
        self._owner_of = owner_of

    async def bound_room(self, launch: Launch) -> str | None:
        """The room a deep-linked activity names (its `custom.proctor_binding`), for this platform."""
        custom = launch.claim("custom")
        binding = custom.get(BINDING_PARAM) if isinstance(custom, dict) else None
        if not isinstance(binding, str) or not 0 < len(binding) <= 128:
            return None
        return await self._store.bound_room(launch.platform.id, binding)

    async def handle(self, request: web.Request, launch: Launch) -> web.Response:
        """THE REGISTRY'S HANDLER for `LtiDeepLinkingRequest`."""
        lang = page_language(request, launch.locale)
        try:
            dl = DeepLinkingSettings.model_validate(launch.claims.get(SETTINGS_CLAIM))
        except ValidationError:
            return error_page(TITLE, "The platform sent no usable deep-linking settings.", lang=lang)
        if "ltiResourceLink" not in dl.accept_types:
            return error_page(TITLE, "The platform does not accept LTI resource links here.", lang=lang)
        if not launch.is_instructor:
            return error_page(TITLE, "Only instructors add exams to a course.", status=403, lang=lang)
        owner = await self._owner_of(launch)
        if owner is None:
            message = "Your platform account is not linked to a Proctor account yet."
            return error_page(TITLE, message, status=403, lang=lang)
        request_id = await self._store.open_request(
            launch.platform.id, launch.deployment_id, launch.subject, owner, dl.deep_link_return_url, dl.data
        )
        exams = await self._store.exams_of(owner)
        return lti_page(TITLE, _choice_form(request_id, exams, lang), lang=lang)

    async def choose(self, request: web.Request) -> web.Response:
        """POST /lti/deep-linking/{request_id}: the instructor's choice; answers the auto-post."""
        pending = await self._store.peek(request.match_info["request_id"])
        lang = page_language(request)
        if pending is None:
            return error_page(
                TITLE, "This page has expired or was already used; add the tool again.", status=410, lang=lang
            )
        platform = await self._endpoints.platform(pending.platform_id)
        try:
            choice = DeepLinkChoice.model_validate(dict(await request.post()))
            exam, room_id = await self._exam_and_room(choice, pending.owner)
        except ValidationError as exc:
            fields = ", ".join(str(e["loc"][0]) for e in exc.errors(include_url=False))
            return error_page(TITLE, "Please check these fields: {fields}.", lang=lang, fields=fields)
        except RoomsError as exc:
            return error_page(TITLE, exc.message, status=400, lang=lang)
        consumed = await self._store.consume(pending.id)
        if consumed is None or platform is None:
            return error_page(
                TITLE, "This page has expired or was already used; add the tool again.", status=410, lang=lang
            )
        binding = await self._store.bind(platform.id, consumed.deployment_id, room_id, consumed.owner)
        kid, key = await self._signing_key()
        now = int(time.time())
        claims: dict[str, object] = {
            "iss": platform.client_id,
            "aud": platform.issuer,
            "iat": now,
            "exp": now + RESPONSE_SECONDS,
            "nonce": uuid.uuid4().hex,
            CLAIM + "message_type": DEEP_LINKING_RESPONSE,
            CLAIM + "version": VERSION,
            CLAIM + "deployment_id": consumed.deployment_id,
            DL_CLAIM + "content_items": [
                {
                    "type": "ltiResourceLink",
                    "title": exam.title,
                    "url": self._launch_url,
                    "custom": {BINDING_PARAM: binding, "proctor_room": room_id},
                    "lineItem": {"scoreMaximum": score_maximum(exam), "label": exam.title, "resourceId": room_id},
                }
            ],
            DL_CLAIM + "msg": f"Added the proctored exam {exam.title!r}.",
        }
        if consumed.data is not None:
            claims[DL_CLAIM + "data"] = consumed.data  # echoed unchanged, as the spec requires
        token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
        logger.info("deep linking: room %s returned to platform %s", room_id, platform.id)
        return autopost(TITLE, consumed.return_url, {"JWT": token}, lang=lang)

    async def _exam_and_room(self, choice: DeepLinkChoice, owner: str) -> tuple[Exam, str]:
        if choice.exam == "new":
            spec = ExamSpec.model_validate(
                {
                    "title": choice.title or "Proctored exam",
                    "duration_minutes": choice.duration_minutes,
                    "questions": [{"id": "q1", "kind": "essay", "text": choice.question or "Your answer"}],
                }
            )
            exam = await self._catalog.create_exam(spec, created_by=owner)
        else:
            exam = await self._catalog.exam(choice.exam)
            if exam.created_by != owner:
                raise _NotYours("That exam is not one of yours.")
        if choice.room != "new":
            room = await self._catalog.room(choice.room)
            if room.exam_id != exam.id:
                raise _NotYours("That room belongs to another exam.")
            return exam, room.id
        room = await self._catalog.create_room(exam, choice.room_name or exam.title, choice.seats)
        return exam, room.id


class _NotYours(RoomsError):
    category: Literal["forbidden"] = "forbidden"


def _choice_form(request_id: str, exams: list[dict[str, object]], lang: str = "en") -> str:
    esc = html.escape

    def _(text: str) -> str:
        return say(lang, text)

    radios = []
    options = [f'<option value="new">{_("A new room")}</option>']
    for exam in exams:
        exam_id = esc(str(exam["id"]))
        radios.append(
            f'<div><input type="radio" name="exam" id="exam-{exam_id}" value="{exam_id}">'
            f' <label for="exam-{exam_id}" translate="no" dir="auto">{esc(str(exam["title"]))}</label></div>'
        )
        rooms = exam["rooms"]
        assert isinstance(rooms, list)
        if rooms:
            items = "".join(
                f'<option value="{esc(str(r["id"]))}" translate="no">{esc(str(r["name"]))}</option>' for r in rooms
            )
            options.append(f'<optgroup label="{esc(str(exam["title"]))}">{items}</optgroup>')
    radios.append(
        '<div><input type="radio" name="exam" id="exam-new" value="new" checked>'
        f' <label for="exam-new">{_("A new exam")}</label></div>'
    )
    return f"""<form method="post" action="/lti/deep-linking/{esc(request_id)}" class="stack">
<fieldset><legend>{_("Exam")}</legend>
{"".join(radios)}
</fieldset>
<fieldset><legend>{_("A new exam (if chosen above)")}</legend>
<label for="title">{_("Title")}</label> <input id="title" name="title" maxlength="200" dir="auto">
<label for="duration">{_("Duration (minutes)")}</label>
<input id="duration" name="duration_minutes" type="number" min="1" max="1440" value="60">
<label for="question">{_("First question (edit the rest in the exam editor)")}</label>
<textarea id="question" name="question" maxlength="5000" dir="auto"></textarea>
</fieldset>
<fieldset><legend>{_("Room")}</legend>
<label for="room">{_("Room")}</label> <select id="room" name="room">{"".join(options)}</select>
<label for="room-name">{_("Name of a new room")}</label>
<input id="room-name" name="room_name" maxlength="200" dir="auto">
<label for="seats">{_("Seats of a new room")}</label>
<input id="seats" name="seats" type="number" min="1" max="10000" value="50">
</fieldset>
<button type="submit">{_("Add to the course")}</button>
</form>"""
