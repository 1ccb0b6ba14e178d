"""Where an `LtiResourceLinkRequest` lands (docs/lti.md, "Landing").

- A learner lands in the exam of the room the resource link is bound to: a student token for
  (room, exam, `student_id_for(platform, sub)`, name) in the fragment of `/exam/?lti=1`, as an
  invite would; the attempt is created on join, so a second launch resumes the same attempt.
  An unbound link shows "not set up yet".
- An instructor gets an account linked to (platform, sub) and the owner role (Instructor,
  Administrator) or proctor role (TeachingAssistant, ContentDeveloper) on the bound room, then
  lands on its dashboard with a short-lived teacher token in the fragment (no cookie: see
  docs/lti.md, "Sessions in the iframe"). An unbound link first shows a form to bind it to a
  room the instructor owns, or to a new room of an exam they own (`/lti/bind`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import time
import urllib.parse
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rooms.accounts import Account, AccountService, claims_of_account
from rooms.errors import Forbidden, RoomsError
from rooms.lti import AGS_CLAIM, NRPS_CLAIM, Launch, ResourceLink
from rooms.roles import RoomRole, strongest
from rooms.tokens import Claims
from server.http.errors import STATUS
from server.http.pages import secure
from server.keys import ACCOUNTS, CATALOG, SETTINGS, TOKENS

from .errors import LaunchError
from .page_texts import page_language, say, word
from .services import LTI_SERVICES
from .tool import LTI, LtiTool, audit, error_page, form_fields, page

BIND_PATH = "/lti/bind"
BIND_SECONDS = 900
_OWNER_ROLES = ("#Instructor", "#Administrator")


class ResourceLinkClaim(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    id: str = Field(min_length=1, max_length=255)
    title: str = Field(default="", max_length=500)


class ContextClaim(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    id: str = Field(default="", max_length=255)
    title: str = Field(default="", max_length=500)


class AgsClaim(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    scope: list[str] = Field(default_factory=list, max_length=20)
    lineitems: str | None = Field(default=None, max_length=2048)
    lineitem: str | None = Field(default=None, max_length=2048)


class NrpsClaim(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    context_memberships_url: str | None = Field(default=None, max_length=2048)


def _claim(model: type[BaseModel], value: object, name: str, required: bool) -> Any:
    if value is None and not required:
        return None
    try:
        return model.model_validate(value)
    except ValidationError:
        raise LaunchError("missing_claims", f"The launch's {name} claim is missing or malformed.") from None


async def record_link(tool: LtiTool, launch: Launch) -> ResourceLink:
    """The resource link of a launch, created or refreshed (title, context, service endpoints)."""
    link: ResourceLinkClaim = _claim(ResourceLinkClaim, launch.claim("resource_link"), "resource_link", True)
    context: ContextClaim | None = _claim(ContextClaim, launch.claim("context"), "context", False)
    ags: AgsClaim | None = _claim(AgsClaim, launch.claims.get(AGS_CLAIM), "AGS endpoint", False)
    nrps: NrpsClaim | None = _claim(NrpsClaim, launch.claims.get(NRPS_CLAIM), "NRPS", False)
    return await tool.store.upsert_link(
        launch.platform.id,
        launch.deployment_id,
        link.id,
        context_id=context.id if context else "",
        context_title=context.title if context else "",
        title=link.title,
        lineitems_url=ags.lineitems if ags else None,
        lineitem_url=ags.lineitem if ags else None,
        ags_scopes=tuple(ags.scope) if ags else (),
        memberships_url=nrps.context_memberships_url if nrps else None,
    )


async def resource_link(request: web.Request, launch: Launch) -> web.StreamResponse:
    """The handler of `LtiResourceLinkRequest` (server/lti/messages.py)."""
    tool = request.app[LTI]
    link = await record_link(tool, launch)
    if link.room_id is None:
        # An activity made by deep linking names its room; its first launch binds it.
        room_id = await request.app[LTI_SERVICES].deep_linking.bound_room(launch)
        if room_id is not None:
            link = await tool.store.bind(link.id, room_id)
    student_id = await tool.store.upsert_user(
        launch.platform.id, launch.subject, name=launch.name, email=launch.email, roles=launch.roles
    )
    if launch.is_instructor:
        account = await lti_account(request.app[ACCOUNTS], tool, launch)
        if link.room_id is None:
            return await bind_page(tool, request, link, account, launch)
        return await instructor_lands(request, link.room_id, account, launch)
    if link.room_id is None:
        lang = page_language(request, launch.locale)
        text = say(lang, "This activity is not set up yet. Ask your instructor to open it once from the course.")
        body = f'    <p id="lti-not-ready" role="status">{text}</p>\n'
        return page(word(lang, "Not set up yet"), body, lang=lang)
    room = await request.app[CATALOG].room(link.room_id)
    exam = await request.app[CATALOG].exam(room.exam_id)
    token = request.app[TOKENS].mint(
        "student",
        student_id,
        name=(launch.name or "Student")[:200],
        exam_id=exam.id,
        room_id=room.id,
        # Long enough for a late reconnect during the exam itself.
        ttl_seconds=tool.session_seconds + exam.duration_seconds,
    )
    return _redirect(f"/exam/?lti=1#token={urllib.parse.quote(token)}")


async def lti_account(accounts: AccountService, tool: LtiTool, launch: Launch) -> Account:
    """The account of an instructor: linked by (platform, subject); else, if the platform is
    trusted for emails (`link_by_email`), the teacher account with its email (never an admin's:
    a platform must not make anyone an admin); else a new teacher account created just in time
    (with the platform's email when no account has it, so owners can add it to rooms)."""
    issuer = f"lti:{launch.platform.id}"
    store = accounts.store
    account = await store.account_by_identity(issuer, launch.subject)
    if account is None:
        email = launch.email.strip().lower()
        found = await store.account_by_email(email) if "@" in email else None
        if found is not None and found.role == "teacher" and launch.platform.link_by_email:
            account = found
        else:
            if found is not None or "@" not in email:
                digest = hashlib.sha256(f"{launch.platform.id}\x00{launch.subject}".encode()).hexdigest()[:20]
                email = f"lti-{digest}@lti.invalid"
            account = await store.insert_account(email, (launch.name or "Instructor")[:200], "teacher", None)
            await accounts.audit.record(
                claims_of_account(account), "account.create", "account", account.id, {"email": email, "via": "lti"}
            )
        await store.link_identity(issuer, launch.subject, account.id)
        await accounts.audit.record(
            claims_of_account(account), "account.link", "account", account.id, {"issuer": issuer}
        )
    if account.state != "active":
        raise Forbidden("this account is disabled", code="account_disabled")
    await tool.store.link_account(launch.platform.id, launch.subject, account.id)
    return account


def _role_for(launch: Launch) -> RoomRole:
    return "owner" if any(r.endswith(_OWNER_ROLES) for r in launch.roles) else "proctor"


async def instructor_lands(
    request: web.Request, room_id: str, account: Account, launch: Launch | None, role: RoomRole | None = None
) -> web.StreamResponse:
    """Give the account its role on the room (never lowering one it holds), then the dashboard."""
    tool = request.app[LTI]
    catalog = request.app[CATALOG]
    room = await catalog.room(room_id)
    exam = await catalog.exam(room.exam_id)
    claims = claims_of_account(account)
    wanted = role or (_role_for(launch) if launch is not None else "proctor")
    held = await catalog.access.role_in(claims, room.id, exam.created_by)
    if strongest((held, wanted)) != held:
        actor = Claims(role="teacher", sub=account.id, name=account.name)
        await catalog.access.set_role(actor, room.id, account.id, wanted)
    token = request.app[TOKENS].mint("teacher", account.id, name=account.name, ttl_seconds=tool.session_seconds)
    return _redirect(f"/teacher/?room={urllib.parse.quote(room.id)}&lti=1#token={urllib.parse.quote(token)}")


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


# -- binding an unbound link -----------------------------------------------------------------


def _ticket_key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"proctor lti bind ticket v1", hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def seal_ticket(secret: str, link_id: str, account_id: str, role: RoomRole) -> str:
    payload = _b64(json.dumps([link_id, account_id, role, time.time() + BIND_SECONDS]).encode())
    return payload + "." + _b64(hmac.new(_ticket_key(secret), payload.encode(), hashlib.sha256).digest())


def open_ticket(secret: str, ticket: str) -> tuple[str, str, RoomRole]:
    payload, _, mac = ticket.partition(".")
    expected = _b64(hmac.new(_ticket_key(secret), payload.encode(), hashlib.sha256).digest())
    if not payload or not hmac.compare_digest(mac.encode(), expected.encode()):
        raise LaunchError("bad_ticket", "This form was not made by this tool. Open the activity again.", 401)
    link_id, account_id, role, expires_at = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    if time.time() > float(expires_at):
        raise LaunchError("ticket_expired", "This form is too old. Open the activity again.", 401)
    return str(link_id), str(account_id), "owner" if role == "owner" else "proctor"


async def bind_page(
    tool: LtiTool, request: web.Request, link: ResourceLink, account: Account, launch: Launch
) -> web.Response:
    """Bind this course activity to a room the instructor owns, or to a new room of an exam."""
    ticket = seal_ticket(request.app[SETTINGS].secret.get_secret_value(), link.id, account.id, _role_for(launch))
    rooms = [r for r in await request.app[CATALOG].access.rooms_of(claims_of_account(account)) if r["role"] == "owner"]
    exams = {r["exam_id"]: r["exam_title"] for r in rooms}
    lang = page_language(request, launch.locale)
    title = word(lang, "Set up this activity")
    named = link.title or link.context_title
    what = f'<bdi translate="no">{html.escape(named)}</bdi>' if named else say(lang, "this activity")
    parts = [f"    <p>{say(lang, 'Choose the exam room that “{what}” opens.', raw={'what': what})}</p>\n"]
    if not rooms:
        text = say(
            lang,
            "You own no exam room on this server yet. Create an exam and a room (or ask an owner to add you), "
            "then open the activity again.",
        )
        parts.append(f'    <p id="lti-no-rooms" role="status">{text}</p>\n')
        return page(title, "".join(parts), lang=lang)
    hidden = f'<input type="hidden" name="ticket" value="{html.escape(ticket)}">'
    room_options = "".join(
        f'<option value="{html.escape(r["id"])}" translate="no">'
        f"{html.escape(r['name'])} — {html.escape(r['exam_title'])}</option>"
        for r in rooms
    )
    exam_options = "".join(
        f'<option value="{html.escape(k)}" translate="no">{html.escape(v)}</option>'
        for k, v in sorted(exams.items(), key=lambda kv: kv[1])
    )
    parts.append(
        f'    <form method="post" action="{BIND_PATH}" id="lti-bind-room">{hidden}\n'
        f'      <label for="lti-room">{say(lang, "An existing room")}</label>\n'
        f'      <select id="lti-room" name="room_id" required>{room_options}</select>\n'
        f'      <button type="submit">{say(lang, "Use this room")}</button>\n    </form>\n'
        f'    <form method="post" action="{BIND_PATH}" id="lti-bind-exam">{hidden}\n'
        f'      <label for="lti-exam">{say(lang, "Or a new room of the exam")}</label>\n'
        f'      <select id="lti-exam" name="exam_id" required>{exam_options}</select>\n'
        f'      <button type="submit">{say(lang, "Create a room for this activity")}</button>\n    </form>\n'
    )
    return page(title, "".join(parts), lang=lang)


class BindForm(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    ticket: str = Field(min_length=1, max_length=2048)
    room_id: str | None = Field(default=None, max_length=64)
    exam_id: str | None = Field(default=None, max_length=64)


async def bind(request: web.Request) -> web.StreamResponse:
    """POST /lti/bind: the form above. The ticket (sealed, 15 minutes) names the link, the
    account and the role; the account must own the room (or the exam, for a new room)."""
    tool = request.app[LTI]
    settings = request.app[SETTINGS]
    try:
        try:
            form = BindForm.model_validate(await form_fields(request))
        except ValidationError:
            raise LaunchError("bad_form", "The form could not be read. Open the activity again.") from None
        link_id, account_id, role = open_ticket(settings.secret.get_secret_value(), form.ticket)
        account = await request.app[ACCOUNTS].by_id(account_id)
        if account.state != "active":
            raise Forbidden("this account is disabled", code="account_disabled")
        claims = claims_of_account(account)
        catalog = request.app[CATALOG]
        link = await tool.store.link_by_id(link_id)
        if form.room_id:
            room, _ = await catalog.room_for(claims, form.room_id, "room.members")
            room_id = room.id
        elif form.exam_id:
            exam = await catalog.exam_for(claims, form.exam_id, "exam.add_room")
            name = (link.title or link.context_title or "LTI activity")[:200]
            room_id = (await catalog.create_room(exam, name, 500)).id
        else:
            raise LaunchError("bad_form", "Choose a room or an exam.")
        await tool.store.bind(link.id, room_id)
        await audit(request, account.id, "lti.link.bind", link.platform_id, {"link_id": link.id, "room_id": room_id})
        response = await instructor_lands(request, room_id, account, None, role)
    except LaunchError as exc:
        return secure(error_page(exc.reason, exc.message, exc.status, page_language(request)), settings)
    except RoomsError as exc:
        lang = page_language(request)
        return secure(error_page(exc.code, exc.message, STATUS.get(exc.category, 400), lang), settings)
    return secure(response, settings)
