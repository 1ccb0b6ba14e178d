"""After the exam over REST: the review queue, a reviewer's decisions (a flag confirmed or
dismissed with a note, the attempt's verdict), a room's results and per-question statistics,
and the results CSV.

Every decision is stored with who and when, and audited (`violation.confirmed` /
`violation.dismissed`, `attempt.verdict`). A flag never counts against a student until a
person confirmed it: the results, the CSV and the grade columns carry the verdict and the
decided flags, never a raw sum of weights (docs/exams.md, "Review and verdicts").
The routes join `server/http/api.py`'s `ROUTES` through `REVIEW_ROUTES`.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from server.keys import AUDIT, REVIEW
from server.wire import NODE

from .credentials import claims_of
from .errors import parse_body, parse_query
from .reports import render_csv
from .route import Route
from .schemas import ReviewDecision

_Uuid = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"


class VerdictRequest(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"example": {"verdict": "cleared", "note": "flags were glare and a cat"}},
    )

    verdict: Literal["cleared", "follow_up", "misconduct"]
    note: str = Field(default="", max_length=2000, description="required for follow_up and misconduct")


class QueueQuery(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    room: str | None = Field(default=None, pattern=_Uuid, description="only this room's attempts")
    unreviewed: bool = Field(default=False, description="only attempts with flags nobody has decided yet")
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=25, ge=1, le=100)


def _violation_id(request: web.Request) -> int:
    try:
        violation_id = int(request.match_info["violation_id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    if not 1 <= violation_id < 2**63:
        raise web.HTTPNotFound()
    return violation_id


async def review_violation(request: web.Request) -> web.Response:
    claims = claims_of(request)
    violation_id = _violation_id(request)
    body = await parse_body(request, ReviewDecision)
    decided = await request.app[REVIEW].decide_flag(claims, violation_id, body.decision, body.note)
    await request.app[AUDIT].record(
        claims,
        f"violation.{body.decision}",
        "attempt",
        decided["attempt_id"],
        {"violation_id": violation_id, "note": body.note, "previous": decided["previous"]},
    )
    return web.json_response(decided)


async def give_verdict(request: web.Request) -> web.Response:
    claims = claims_of(request)
    body = await parse_body(request, VerdictRequest)
    given = await request.app[REVIEW].set_verdict(claims, request.match_info["attempt_id"], body.verdict, body.note)
    await request.app[AUDIT].record(
        claims,
        "attempt.verdict",
        "attempt",
        given["attempt_id"],
        {"verdict": body.verdict, "note": body.note, "previous": given["previous"]},
    )
    return web.json_response(given)


async def review_queue(request: web.Request) -> web.Response:
    claims = claims_of(request)
    query = parse_query(request, QueueQuery)
    page = await request.app[NODE].review_queue.page(
        claims, room_id=query.room, unreviewed_only=query.unreviewed, page=query.page, per_page=query.per_page
    )
    return web.json_response(page, headers={"Cache-Control": "no-store"})


async def room_results(request: web.Request) -> web.Response:
    claims = claims_of(request)
    table = await request.app[NODE].results.table(claims, request.match_info["room_id"])
    return web.json_response(table, headers={"Cache-Control": "no-store"})


async def room_statistics(request: web.Request) -> web.Response:
    claims = claims_of(request)
    stats = await request.app[NODE].results.statistics(claims, request.match_info["room_id"])
    return web.json_response(stats, headers={"Cache-Control": "no-store"})


async def room_report(request: web.Request) -> web.Response:
    claims = claims_of(request)
    room_id = request.match_info["room_id"]
    table = await request.app[NODE].results.table(claims, room_id, "room.report")
    await request.app[AUDIT].record(claims, "report.download", "room", table["room"]["id"])
    return web.Response(
        text=render_csv(table["attempts"]),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="room-{table["room"]["id"]}.csv"'},
    )


_TEACHERS = ("admin", "teacher")
REVIEW_ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/review/queue",
        review_queue,
        "Flagged attempts across the rooms I may review, still-open and most suspicious first (paginated)",
        _TEACHERS,
        query=QueueQuery,
    ),
    Route(
        "POST",
        "/api/violations/{violation_id}/review",
        review_violation,
        "Confirm or dismiss a flag with a note (who and when stored; audited)",
        _TEACHERS,
        ReviewDecision,
    ),
    Route(
        "POST",
        "/api/attempts/{attempt_id}/verdict",
        give_verdict,
        "Close an ended attempt's review with a verdict and a note (audited)",
        _TEACHERS,
        VerdictRequest,
        responses={409: "the attempt is running, flags are undecided, or misconduct lacks a confirmed flag"},
    ),
    Route(
        "GET",
        "/api/rooms/{room_id}/results",
        room_results,
        "A room's attempts: grade, time taken, confirmed and undecided flags, verdict",
        _TEACHERS,
    ),
    Route(
        "GET",
        "/api/rooms/{room_id}/statistics",
        room_statistics,
        "Per question: answered, mean score, difficulty, discrimination",
        _TEACHERS,
    ),
    Route(
        "GET",
        "/api/rooms/{room_id}/report.csv",
        room_report,
        "The room's results as CSV (verdicts and decided flags; audited)",
        _TEACHERS,
        content_type="text/csv",
    ),
)

__all__ = ["REVIEW_ROUTES", "QueueQuery", "ReviewDecision", "VerdictRequest"]
