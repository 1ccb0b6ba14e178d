"""REST and form routes of the LTI services: the admins' view of the grade outbox (list,
retry), a linked room's roster (import, read), and the two forms the services' pages post
(the deep-linking choice, the proctoring consent). The REST routes are in `server/http/api.py`'s
`ROUTES` through `LTI_SERVICE_ROUTES` (OpenAPI, access matrix, fuzzer); the form routes are
authenticated by the one-time id in their path (docs/lti.md)."""

from __future__ import annotations

from typing import cast

from aiohttp import web

from rooms.catalog import parse_uuid
from rooms.errors import Invalid, NotFound, Unavailable
from rooms.lti_scores import DeliveryState
from server.http.credentials import claims_of
from server.http.route import Route
from server.keys import AUDIT, CATALOG

from .platform_client import PlatformError
from .services import LTI_SERVICES

_STATES = ("pending", "delivered", "failed")


async def list_outbox(request: web.Request) -> web.Response:
    claims_of(request).require_role("admin")
    state = request.query.get("state")
    if state is not None and state not in _STATES:
        raise Invalid("state must be pending, delivered or failed", fields={"state": "unknown"})
    rows = await request.app[LTI_SERVICES].outbox.listing(cast(DeliveryState | None, state))
    return web.json_response({"deliveries": rows})


async def retry_delivery(request: web.Request) -> web.Response:
    claims = claims_of(request)
    claims.require_role("admin")
    delivery_id = parse_uuid(request.match_info["delivery_id"], "delivery")
    services = request.app[LTI_SERVICES]
    row = await services.outbox.retry(delivery_id)
    if row is None:
        raise NotFound("no failed delivery with that id")
    await request.app[AUDIT].record(claims, "lti.grade.retry", "lti_delivery", row["id"])
    services.grades.wake()
    return web.json_response(row)


async def import_roster(request: web.Request) -> web.Response:
    claims = claims_of(request)
    room, _ = await request.app[CATALOG].room_for(claims, request.match_info["room_id"], "room.watch")
    try:
        count = await request.app[LTI_SERVICES].roster.run(room.id)
    except PlatformError as exc:
        raise Unavailable(f"the platform's roster could not be read: {exc.reason}", code="lti_platform") from None
    await request.app[AUDIT].record(claims, "lti.roster.import", "room", room.id, {"students": count})
    return web.json_response({"room_id": room.id, "imported": count})


async def read_roster(request: web.Request) -> web.Response:
    claims = claims_of(request)
    room, _ = await request.app[CATALOG].room_for(claims, request.match_info["room_id"], "room.watch")
    services = request.app[LTI_SERVICES]
    linked = await services.roster.linked(room.id)
    members = await services.roster_store.read(room.id)
    not_joined = [m for m in members if not m["joined"]]
    return web.json_response({"room_id": room.id, "linked": linked, "members": members, "not_joined": len(not_joined)})


async def deep_linking_choice(request: web.Request) -> web.Response:
    return await request.app[LTI_SERVICES].deep_linking.choose(request)


async def proctoring_start(request: web.Request) -> web.Response:
    return await request.app[LTI_SERVICES].proctoring.begin(request)


_ADMIN = ("admin",)
_TEACHERS = ("admin", "teacher")

LTI_SERVICE_ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/lti/outbox", list_outbox, "List grade deliveries to LTI platforms (?state=failed)", _ADMIN),
    Route(
        "POST",
        "/api/lti/outbox/{delivery_id}/retry",
        retry_delivery,
        "Queue a failed grade delivery again",
        _ADMIN,
        responses={404: "no failed delivery with that id"},
    ),
    Route(
        "POST",
        "/api/rooms/{room_id}/lti/roster",
        import_roster,
        "Import a linked room's students from the platform (NRPS)",
        _TEACHERS,
        responses={409: "the room is not linked to a course with a roster", 503: "the platform failed"},
    ),
    Route("GET", "/api/rooms/{room_id}/lti/roster", read_roster, "A linked room's imported roster", _TEACHERS),
)


def add_lti_form_routes(app: web.Application) -> None:
    app.router.add_post("/lti/deep-linking/{request_id}", deep_linking_choice)
    app.router.add_post("/lti/proctoring/{session_id}/start", proctoring_start)
