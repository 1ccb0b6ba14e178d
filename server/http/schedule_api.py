"""REST for windows and accommodations: an exam's and a room's schedule, a room's
per-student accommodations. Thin: parse, hand to `rooms.scheduling.Scheduling`, answer JSON.

`SCHEDULE_ROUTES` is appended to `api.ROUTES`, so the OpenAPI document and the access matrix
see these routes like every other.
"""

from __future__ import annotations

import re

from aiohttp import web

from rooms.accommodations import Accommodation
from rooms.exam import Schedule
from rooms.scheduling import Scheduling
from server.wire import NODE

from .credentials import claims_of
from .errors import parse_body
from .route import Route
from .schemas import ScheduleBody

# A student id as invites accept it (server/http/schemas.py `_Id`).
_STUDENT_ID = re.compile(r"[A-Za-z0-9_.@+-]{1,128}")


def _scheduling(request: web.Request) -> Scheduling:
    return request.app[NODE].scheduling


def _student_id(request: web.Request) -> str:
    student_id = request.match_info["student_id"]
    if not _STUDENT_ID.fullmatch(student_id):
        raise web.HTTPNotFound()
    return student_id


async def _schedule(request: web.Request) -> Schedule:
    return await parse_body(request, ScheduleBody)


async def get_exam_schedule(request: web.Request) -> web.Response:
    claims = claims_of(request)
    claims.require_role("admin", "teacher")
    return web.json_response(await _scheduling(request).exam_schedule(claims, request.match_info["exam_id"]))


async def put_exam_schedule(request: web.Request) -> web.Response:
    claims = claims_of(request)
    claims.require_role("admin", "teacher")
    schedule = await _schedule(request)
    data = await _scheduling(request).set_exam_schedule(claims, request.match_info["exam_id"], schedule)
    return web.json_response(data)


async def delete_exam_schedule(request: web.Request) -> web.Response:
    claims = claims_of(request)
    claims.require_role("admin", "teacher")
    data = await _scheduling(request).set_exam_schedule(claims, request.match_info["exam_id"], None)
    return web.json_response(data)


async def get_room_schedule(request: web.Request) -> web.Response:
    claims = claims_of(request)
    claims.require_role("admin", "teacher")
    return web.json_response(await _scheduling(request).room_schedule(claims, request.match_info["room_id"]))


async def put_room_schedule(request: web.Request) -> web.Response:
    claims = claims_of(request)
    claims.require_role("admin", "teacher")
    schedule = await _schedule(request)
    data = await _scheduling(request).set_room_schedule(claims, request.match_info["room_id"], schedule)
    return web.json_response(data)


async def delete_room_schedule(request: web.Request) -> web.Response:
    claims = claims_of(request)
    claims.require_role("admin", "teacher")
    data = await _scheduling(request).set_room_schedule(claims, request.match_info["room_id"], None)
    return web.json_response(data)


async def list_accommodations(request: web.Request) -> web.Response:
    claims = claims_of(request)
    claims.require_role("admin", "teacher")
    return web.json_response(await _scheduling(request).accommodations(claims, request.match_info["room_id"]))


async def put_accommodation(request: web.Request) -> web.Response:
    claims = claims_of(request)
    claims.require_role("admin", "teacher")
    student_id = _student_id(request)
    body = await parse_body(request, Accommodation)
    data = await _scheduling(request).put_accommodation(claims, request.match_info["room_id"], student_id, body)
    return web.json_response(data)


async def delete_accommodation(request: web.Request) -> web.Response:
    claims = claims_of(request)
    claims.require_role("admin", "teacher")
    student_id = _student_id(request)
    data = await _scheduling(request).delete_accommodation(claims, request.match_info["room_id"], student_id)
    return web.json_response(data)


_TEACHERS = ("admin", "teacher")
_ACCOMMODATION = "/api/rooms/{room_id}/accommodations/{student_id}"
SCHEDULE_ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/exams/{exam_id}/schedule", get_exam_schedule, "The exam's window", _TEACHERS),
    Route(
        "PUT",
        "/api/exams/{exam_id}/schedule",
        put_exam_schedule,
        "Set the exam's window (rooms without their own follow it; audited)",
        _TEACHERS,
        ScheduleBody,
    ),
    Route("DELETE", "/api/exams/{exam_id}/schedule", delete_exam_schedule, "Clear the exam's window", _TEACHERS),
    Route(
        "GET",
        "/api/rooms/{room_id}/schedule",
        get_room_schedule,
        "The room's own window, its exam's, and the one joins are checked against",
        _TEACHERS,
    ),
    Route(
        "PUT",
        "/api/rooms/{room_id}/schedule",
        put_room_schedule,
        "Set the room's own window, replacing its exam's (audited)",
        _TEACHERS,
        ScheduleBody,
    ),
    Route(
        "DELETE",
        "/api/rooms/{room_id}/schedule",
        delete_room_schedule,
        "Clear the room's own window (its exam's applies again)",
        _TEACHERS,
    ),
    Route(
        "GET",
        "/api/rooms/{room_id}/accommodations",
        list_accommodations,
        "The room's per-student accommodations (owners and proctors)",
        _TEACHERS,
    ),
    Route(
        "PUT",
        _ACCOMMODATION,
        put_accommodation,
        "Set a student's extra time and rule switches, before or during the exam (audited)",
        _TEACHERS,
        Accommodation,
    ),
    Route(
        "DELETE",
        _ACCOMMODATION,
        delete_accommodation,
        "Remove a student's accommodation (a running attempt loses the extra time; audited)",
        _TEACHERS,
    ),
)
