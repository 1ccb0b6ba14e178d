"""The exam lifecycle and grading routes (docs/exams.md): list, edit or version, duplicate,
archive, delete; rooms listed and changed; grading by attempt and by question.

Thin handlers: parse, authorise (inside the stores, through `RoomAccess`), call, audit, answer.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from rooms.errors import Invalid, NotFound
from rooms.exam import ExamSpec
from rooms.store.exam_versions import ExamVersions
from rooms.store.grades import GradeStore
from rooms.versions import merge
from server.keys import AUDIT, CATALOG
from server.wire import NODE

from .credentials import claims_of
from .errors import parse_body, validation_fields
from .exam_schemas import ExamArchive, ExamDuplicate, ExamListQuery, ExamPatch, GradeSet, RoomUpdate
from .route import Route


def _versions(request: web.Request) -> ExamVersions:
    versions = request.app[NODE].exam_versions
    assert versions is not None
    return versions


def _grades(request: web.Request) -> GradeStore:
    grades = request.app[NODE].grades
    assert grades is not None
    return grades


def _query(request: web.Request) -> ExamListQuery:
    try:
        return ExamListQuery.model_validate(dict(request.query))
    except ValidationError as exc:
        raise Invalid("the query has invalid parameters", fields=validation_fields(exc)) from None


def _question_id(request: web.Request) -> str:
    value = request.match_info["question_id"]
    if not 1 <= len(value) <= 64:
        raise NotFound(f"no question {value!r}")
    return value


async def list_exams(request: web.Request) -> web.Response:
    claims = claims_of(request)
    query = _query(request)
    page = await _versions(request).page(
        claims, q=query.q, limit=query.limit, offset=query.offset, archived=query.archived
    )
    return web.json_response(page)


async def _apply_edit(request: web.Request, spec: ExamSpec) -> web.Response:
    claims = claims_of(request)
    exam_id = request.match_info["exam_id"]
    outcome = await _versions(request).edit(claims, exam_id, spec)
    regraded = []
    if outcome.kind != "unchanged":
        request.app[NODE].attempts.forget_rooms()  # new attempts here take the edit at once
    if outcome.kind == "keys":
        regraded = await _grades(request).regrade_version(claims, outcome.exam_id)
    await request.app[AUDIT].record(
        claims,
        f"exam.edit.{outcome.kind}",
        "exam",
        outcome.exam_id,
        {"previous_id": outcome.previous_id, "regraded": len(regraded)},
    )
    exam = await request.app[CATALOG].exam(outcome.exam_id)
    return web.json_response(
        {"outcome": outcome.kind, "previous_id": outcome.previous_id, "regraded": regraded, "exam": exam.to_json()}
    )


async def replace_exam(request: web.Request) -> web.Response:
    return await _apply_edit(request, await parse_body(request, ExamSpec))


async def patch_exam(request: web.Request) -> web.Response:
    claims = claims_of(request)
    body = await parse_body(request, ExamPatch)
    current = await request.app[CATALOG].exam_for(claims, request.match_info["exam_id"], "exam.edit")
    try:
        spec = merge(current.spec(), body.changes())
    except ValidationError as exc:
        raise Invalid("the edited exam is invalid", fields=validation_fields(exc)) from None
    return await _apply_edit(request, spec)


async def delete_exam(request: web.Request) -> web.Response:
    claims = claims_of(request)
    exam_id = request.match_info["exam_id"]
    counts = await _versions(request).delete(claims, exam_id)
    await request.app[AUDIT].record(claims, "exam.delete", "exam", exam_id, counts)
    return web.json_response({"id": exam_id, "deleted": counts})


async def duplicate_exam(request: web.Request) -> web.Response:
    claims = claims_of(request)
    body = await parse_body(request, ExamDuplicate)
    exam_id = request.match_info["exam_id"]
    copy = await _versions(request).duplicate(claims, exam_id, body.title)
    await request.app[AUDIT].record(claims, "exam.duplicate", "exam", copy.id, {"from": exam_id})
    return web.json_response(copy.to_json(), status=201)


async def archive_exam(request: web.Request) -> web.Response:
    claims = claims_of(request)
    body = await parse_body(request, ExamArchive)
    exam = await _versions(request).set_archived(claims, request.match_info["exam_id"], body.archived)
    await request.app[AUDIT].record(claims, "exam.archive" if body.archived else "exam.unarchive", "exam", exam.id)
    return web.json_response(exam.to_json())


async def exam_versions(request: web.Request) -> web.Response:
    claims = claims_of(request)
    exam = await request.app[CATALOG].exam_for(claims, request.match_info["exam_id"], "exam.edit")
    return web.json_response({"family_id": exam.family, "versions": await _versions(request).versions(exam)})


async def exam_rooms(request: web.Request) -> web.Response:
    claims = claims_of(request)
    rooms = await _versions(request).rooms(claims, request.match_info["exam_id"])
    return web.json_response({"rooms": rooms})


async def update_room(request: web.Request) -> web.Response:
    claims = claims_of(request)
    body = await parse_body(request, RoomUpdate)
    room = await _versions(request).update_room(
        claims, request.match_info["room_id"], name=body.name, seats=body.seats, closed=body.closed
    )
    request.app[NODE].attempts.forget_rooms()  # other nodes see the change within ROOM_CACHE_SECONDS
    await request.app[AUDIT].record(claims, "room.update", "room", room.id, body.model_dump(exclude_none=True))
    return web.json_response(room.to_json())


async def attempt_grading(request: web.Request) -> web.Response:
    claims = claims_of(request)
    sheet = await _grades(request).attempt_sheet(claims, request.match_info["attempt_id"])
    return web.json_response(sheet)


async def set_grade(request: web.Request) -> web.Response:
    claims = claims_of(request)
    body = await parse_body(request, GradeSet)
    result = await _grades(request).set_grade(
        claims, request.match_info["attempt_id"], _question_id(request), body.points, body.comment
    )
    return web.json_response(result)


async def question_answers(request: web.Request) -> web.Response:
    claims = claims_of(request)
    sheet = await _grades(request).question_sheet(claims, request.match_info["room_id"], _question_id(request))
    return web.json_response(sheet)


_TEACHERS = ("admin", "teacher")
_EXAM = "/api/exams/{exam_id}"
EXAM_ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/exams",
        list_exams,
        "List exams, newest version of each (mine; admins: all): ?q= title search, ?limit= ?offset=, ?archived=",
        _TEACHERS,
    ),
    Route(
        "PUT",
        _EXAM,
        replace_exam,
        "Edit an exam: in place before any attempt; a key correction re-grades; else a new version",
        _TEACHERS,
        ExamSpec,
        responses={409: "not the newest version"},
    ),
    Route("PATCH", _EXAM, patch_exam, "Edit some fields of an exam (as PUT)", _TEACHERS, ExamPatch),
    Route("POST", _EXAM + "/duplicate", duplicate_exam, "Copy an exam as a new one", _TEACHERS, ExamDuplicate, 201),
    Route("POST", _EXAM + "/archive", archive_exam, "Archive (or restore) an exam", _TEACHERS, ExamArchive),
    Route("GET", _EXAM + "/versions", exam_versions, "An exam's versions and their attempt counts", _TEACHERS),
    Route("GET", _EXAM + "/rooms", exam_rooms, "The rooms of every version of an exam", _TEACHERS),
    Route(
        "PATCH", "/api/rooms/{room_id}", update_room, "Rename a room, change its seats, close it", _TEACHERS, RoomUpdate
    ),
    Route(
        "GET",
        "/api/attempts/{attempt_id}/grading",
        attempt_grading,
        "An attempt for grading: each question, its key, the answer (as text) and grade",
        _TEACHERS,
    ),
    Route(
        "PUT",
        "/api/attempts/{attempt_id}/grades/{question_id}",
        set_grade,
        "Grade one question of a submitted attempt by hand (audited)",
        _TEACHERS,
        GradeSet,
        responses={409: "the attempt is still running"},
    ),
    Route(
        "GET",
        "/api/rooms/{room_id}/questions/{question_id}/answers",
        question_answers,
        "One question across every submitted attempt of a room, for grading",
        _TEACHERS,
    ),
    # Last: the access matrix deletes its exam with it.
    Route(
        "DELETE",
        _EXAM,
        delete_exam,
        "Delete an exam, every version, room and attempt (refused while attempts run)",
        _TEACHERS,
        responses={409: "attempts are running"},
    ),
)
