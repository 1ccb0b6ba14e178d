"""The REST API under /api: thin handlers that parse, authorise, call rooms/, answer JSON.

Every route is declared once in `ROUTES`, which both registers it and describes it in the
OpenAPI document (server/http/openapi.py), so the two cannot drift apart.
"""

from __future__ import annotations

import re
import urllib.parse
from datetime import UTC, datetime

from aiohttp import web

from rooms.errors import Invalid, NoCapacity
from server.keys import AUDIT, CATALOG, EVIDENCE, PLACEMENT, REVIEW, REVOCATIONS, SETTINGS, STUDENT_DATA, TOKENS
from server.lti.registration import LTI_ROUTES
from server.lti.services_api import LTI_SERVICE_ROUTES
from server.wire import NODE

from .accounts_api import ACCOUNT_ROUTES
from .admin_accounts import ADMIN_ACCOUNT_ROUTES
from .credentials import claims_of
from .errors import parse_body
from .exams_api import EXAM_ROUTES
from .interchange import INTERCHANGE_ROUTES
from .review_api import REVIEW_ROUTES
from .route import Route
from .schedule_api import SCHEDULE_ROUTES
from .schemas import (
    ExamSpec,
    InviteRequest,
    MemberAdd,
    MemberRemove,
    RevokeRequest,
    RoomCreate,
    TokenRequest,
)

# The same shape invites accept for student ids (server/http/schemas.py).
STUDENT_ID = re.compile(r"[A-Za-z0-9_.@+-]{1,128}")


async def create_exam(request: web.Request) -> web.Response:
    claims = claims_of(request)
    claims.require_role("admin", "teacher")
    spec = await parse_body(request, ExamSpec)
    exam = await request.app[CATALOG].create_exam(spec, created_by=claims.sub)
    await request.app[AUDIT].record(claims, "exam.create", "exam", exam.id)
    return web.json_response(exam.to_json(), status=201)


async def get_exam(request: web.Request) -> web.Response:
    claims = claims_of(request)
    exam = await request.app[CATALOG].exam_for(claims, request.match_info["exam_id"])
    return web.json_response(exam.to_json(for_student=claims.role == "student"))


async def create_room(request: web.Request) -> web.Response:
    claims = claims_of(request)
    catalog = request.app[CATALOG]
    # Seeing an exam through one room (as proctor or reviewer) does not entitle a teacher to
    # open more rooms on it: that needs an owner (rooms/roles.py).
    exam = await catalog.exam_for(claims, request.match_info["exam_id"], "exam.add_room")
    body = await parse_body(request, RoomCreate)
    if not request.app[PLACEMENT].can_open():
        raise NoCapacity("no node has a free room slot; try again shortly", code="capacity", retry_after=30)
    room = await catalog.create_room(exam, body.name, body.seats)
    await request.app[AUDIT].record(claims, "room.create", "room", room.id, {"exam_id": exam.id})
    if claims.role == "teacher" and claims.sub != exam.created_by:
        # The exam's creator owns every room of it anyway; another owner who opens a room owns it too.
        await catalog.access.set_role(claims, room.id, claims.sub, "owner")
    return web.json_response(room.to_json(), status=201)


async def create_invites(request: web.Request) -> web.Response:
    claims = claims_of(request)
    room, exam = await request.app[CATALOG].room_for(claims, request.match_info["room_id"], "room.invite")
    body = await parse_body(request, InviteRequest)
    tokens = request.app[TOKENS]
    settings = request.app[SETTINGS]
    ttl = body.ttl_hours * 3600
    expires = datetime.fromtimestamp(datetime.now(UTC).timestamp() + ttl, UTC)
    invites = []
    for student in body.students:
        token = tokens.mint(
            "student",
            student.id,
            name=student.name,
            exam_id=exam.id,
            room_id=room.id,
            ttl_seconds=ttl,
        )
        url = f"{settings.base_url.rstrip('/')}/exam/#token={urllib.parse.quote(token)}"
        invites.append(
            {
                "student_id": student.id,
                "name": student.name,
                "token": token,
                "url": url,
                "expires_at": expires.isoformat(),
            }
        )
    await request.app[AUDIT].record(
        claims, "invites.create", "room", room.id, {"students": [s.id for s in body.students]}
    )
    return web.json_response({"room_id": room.id, "invites": invites}, status=201)


async def list_attempts(request: web.Request) -> web.Response:
    claims = claims_of(request)
    attempts = await request.app[REVIEW].attempts(claims, request.match_info["room_id"])
    return web.json_response({"attempts": attempts})


async def attempt_timeline(request: web.Request) -> web.Response:
    claims = claims_of(request)
    attempt_id = request.match_info["attempt_id"]
    timeline = await request.app[REVIEW].timeline(claims, attempt_id)
    if claims.role != "student":
        await request.app[AUDIT].record(claims, "timeline.view", "attempt", timeline["attempt"]["id"])
    return web.json_response(timeline)


async def create_token(request: web.Request) -> web.Response:
    claims = claims_of(request)
    claims.require_role("admin")
    body = await parse_body(request, TokenRequest)
    ttl = body.ttl_hours * 3600
    token = request.app[TOKENS].mint(body.role, body.sub, name=body.name, rooms=body.rooms, ttl_seconds=ttl)
    expires = datetime.fromtimestamp(datetime.now(UTC).timestamp() + ttl, UTC)
    await request.app[AUDIT].record(claims, "token.create", body.role, body.sub, {"rooms": list(body.rooms)})
    return web.json_response(
        {
            "token": token,
            "role": body.role,
            "sub": body.sub,
            "rooms": list(body.rooms),
            "expires_at": expires.isoformat(),
        },
        status=201,
    )


async def get_evidence(request: web.Request) -> web.Response:
    claims = claims_of(request)
    evidence_id = request.match_info["evidence_id"]
    data, content_type, attempt_id = await request.app[EVIDENCE].read(claims, evidence_id)
    # Every view of evidence is recorded: who, when, what.
    await request.app[AUDIT].record(claims, "evidence.view", "evidence", evidence_id, {"attempt_id": attempt_id})
    return web.Response(
        body=data,
        content_type=content_type,
        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
    )


async def revoke_token(request: web.Request) -> web.Response:
    claims = claims_of(request)
    claims.require_role("admin")
    body = await parse_body(request, RevokeRequest)
    expires: float | None = None
    token_id = body.token_id
    if body.token:
        # Verify signature (not expiry) so only our own tokens can be named.
        target = request.app[TOKENS].inspect(body.token)
        token_id, expires = target.token_id, target.expires_at
    if not token_id:
        raise Invalid("name the token or its token_id", fields={"token_id": "required"})
    await request.app[REVOCATIONS].revoke(claims, token_id, expires)
    await request.app[AUDIT].record(claims, "token.revoke", "token", token_id)
    return web.json_response({"token_id": token_id, "revoked": True})


def _student_id(request: web.Request) -> str:
    student_id = request.match_info["student_id"]
    if not STUDENT_ID.fullmatch(student_id):
        raise web.HTTPNotFound()
    return student_id


async def export_student(request: web.Request) -> web.Response:
    claims = claims_of(request)
    claims.require_role("admin")
    student_id = _student_id(request)
    data = await request.app[STUDENT_DATA].export(student_id)
    await request.app[AUDIT].record(claims, "student.export", "student", student_id)
    return web.json_response(data, headers={"Cache-Control": "no-store"})


async def erase_student(request: web.Request) -> web.Response:
    claims = claims_of(request)
    claims.require_role("admin")
    student_id = _student_id(request)
    counts = await request.app[STUDENT_DATA].erase(student_id)
    await request.app[AUDIT].record(claims, "student.erase", "student", student_id, counts)
    return web.json_response({"student_id": student_id, "erased": counts})


async def list_members(request: web.Request) -> web.Response:
    return await request.app[NODE].members_api.list(request, claims_of(request))


async def add_member(request: web.Request) -> web.Response:
    return await request.app[NODE].members_api.add(request, claims_of(request))


async def remove_member(request: web.Request) -> web.Response:
    return await request.app[NODE].members_api.remove(request, claims_of(request))


async def my_rooms(request: web.Request) -> web.Response:
    return await request.app[NODE].members_api.mine(request, claims_of(request))


_TEACHERS = ("admin", "teacher")
ROUTES: tuple[Route, ...] = (
    Route("POST", "/api/exams", create_exam, "Create an exam", _TEACHERS, ExamSpec, 201),
    Route("GET", "/api/exams/{exam_id}", get_exam, "Read an exam", ("admin", "teacher", "student")),
    Route(
        "POST",
        "/api/exams/{exam_id}/rooms",
        create_room,
        "Create a room for an exam",
        _TEACHERS,
        RoomCreate,
        201,
        responses={503: "no room slot free (Retry-After)"},
    ),
    Route(
        "POST",
        "/api/rooms/{room_id}/invites",
        create_invites,
        "Issue signed, expiring student invite links",
        _TEACHERS,
        InviteRequest,
        201,
    ),
    Route("GET", "/api/rooms/{room_id}/attempts", list_attempts, "List a room's attempts", _TEACHERS),
    Route(
        "GET",
        "/api/attempts/{attempt_id}/timeline",
        attempt_timeline,
        "An attempt's timeline: answers, violations, controls, network gaps",
        ("admin", "teacher", "student"),
    ),
    Route(
        "GET",
        "/api/evidence/{evidence_id}",
        get_evidence,
        "An evidence JPEG (audited; teachers of the room only)",
        _TEACHERS,
        content_type="image/jpeg",
    ),
    Route(
        "POST",
        "/api/tokens/revoke",
        revoke_token,
        "Revoke a token (ends its sessions within seconds)",
        ("admin",),
        RevokeRequest,
    ),
    Route(
        "GET",
        "/api/students/{student_id}/export",
        export_student,
        "Everything stored about one student, as JSON (audited)",
        ("admin",),
    ),
    Route(
        "DELETE",
        "/api/students/{student_id}",
        erase_student,
        "Erase everything stored about one student (audited)",
        ("admin",),
    ),
    Route(
        "GET",
        "/api/rooms/{room_id}/members",
        list_members,
        "A room's colleagues and their roles (owners only)",
        _TEACHERS,
    ),
    Route(
        "POST",
        "/api/rooms/{room_id}/members",
        add_member,
        "Give a colleague (by account email) a role in the room (owners only; audited)",
        _TEACHERS,
        MemberAdd,
        responses={404: "no account with that email"},
    ),
    Route(
        "DELETE",
        "/api/rooms/{room_id}/members",
        remove_member,
        "Take a colleague's role in the room away (owners only; audited)",
        _TEACHERS,
        MemberRemove,
        responses={404: "no account with that email"},
    ),
    Route(
        "GET",
        "/api/me/rooms",
        my_rooms,
        "Rooms where I hold a role (admins: all), with my role and live counts",
        _TEACHERS,
    ),
    Route("POST", "/api/tokens", create_token, "Mint an admin or teacher token", ("admin",), TokenRequest, 201),
    *ACCOUNT_ROUTES,  # an account's own personal tokens (server/http/accounts_api.py)
    *ADMIN_ACCOUNT_ROUTES,  # the admins' accounts list, create, disable (server/http/admin_accounts.py)
    *INTERCHANGE_ROUTES,  # exams imported from Moodle XML, GIFT, QTI; exported as Moodle XML (interchange.py)
    *REVIEW_ROUTES,  # review queue, flag decisions, verdicts, results and statistics (server/http/review_api.py)
    *EXAM_ROUTES,  # exam lifecycle, versions, rooms changed, grading (server/http/exams_api.py)
    *LTI_ROUTES,  # registered LTI platforms, the tool's values (server/lti/registration.py)
    *LTI_SERVICE_ROUTES,  # the grade outbox and the NRPS roster (server/lti/services_api.py)
    *SCHEDULE_ROUTES,  # windows and accommodations (server/http/schedule_api.py)
)


def add_routes(app: web.Application, routes: tuple[Route, ...] = ROUTES) -> None:
    for route in routes:
        app.router.add_route(route.method, route.path, route.handler)
