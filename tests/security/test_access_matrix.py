"""A generated access matrix: every role against every REST route and every Socket.IO event.

The expected policy is written down here, once, as tables of who may do what. The tests
iterate `server.http.api.ROUTES` and the namespaces' `handlers`, so a new route or event without
a policy row fails until someone decides who may use it. Each check asserts both halves:
no unauthorised success, and the authorised call succeeds.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import cv2
import numpy as np
import pytest
import socketio

from server.http.api import ROUTES
from server.keys import POOL
from signaling.student import StudentNamespace
from signaling.teacher import TeacherNamespace
from tests.support.access import (
    FIGURES,
    ROLES,
    STUDENT_ROLES,
    TEACHER_ROLES,
    World,
    ack_shape_problem,
    error_shape_problem,
)
from tests.support.live import Client, Live
from tests.support.node import ADMIN, bearer

pytestmark = pytest.mark.timeout(90)

# Room X's roles (rooms/roles.py): owners (the exam's creator, an added owner, the admin);
# the live side adds proctors (teacher_x's token names the room: a proctor); reviewers read.
_OWNERS_X = frozenset({"admin", "owner", "owner_x"})
_LIVE_X = _OWNERS_X | {"teacher_x", "proctor_x"}
_ROOM_X = _LIVE_X | {"reviewer_x"}  # may see room X and student A's attempt
_ANY_TEACHER = frozenset(TEACHER_ROLES)

# (method, path) -> roles that may call it with room X / student A's ids. Everyone else gets
# 401 (no or bad token) or 403/404.
REST_POLICY: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/api/exams"): _ANY_TEACHER,
    ("GET", "/api/exams/{exam_id}"): _ROOM_X | {"student_a", "student_b"},
    # A proctor or reviewer who sees the exam through a room may not open more rooms on it.
    ("POST", "/api/exams/{exam_id}/rooms"): _OWNERS_X,
    ("POST", "/api/rooms/{room_id}/invites"): _LIVE_X,
    ("GET", "/api/rooms/{room_id}/attempts"): _ROOM_X,
    ("GET", "/api/attempts/{attempt_id}/timeline"): _ROOM_X | {"student_a"},
    ("GET", "/api/rooms/{room_id}/report.csv"): _ROOM_X,
    ("GET", "/api/evidence/{evidence_id}"): _ROOM_X,
    ("POST", "/api/violations/{violation_id}/review"): _ROOM_X,
    # Step 12, review and results: every room role reviews; the queue lists each teacher's own rooms.
    ("POST", "/api/attempts/{attempt_id}/verdict"): _ROOM_X,
    ("GET", "/api/review/queue"): _ANY_TEACHER,
    ("GET", "/api/rooms/{room_id}/results"): _ROOM_X,
    ("GET", "/api/rooms/{room_id}/statistics"): _ROOM_X,
    # Only owners see or change who else holds a role (and may ask whether an email exists).
    ("GET", "/api/rooms/{room_id}/members"): _OWNERS_X,
    ("POST", "/api/rooms/{room_id}/members"): _OWNERS_X,
    ("DELETE", "/api/rooms/{room_id}/members"): _OWNERS_X,
    # Everyone's own list (what it holds is checked in test_my_rooms_lists_my_rooms_only).
    ("GET", "/api/me/rooms"): _ANY_TEACHER,
    ("POST", "/api/tokens"): frozenset({"admin"}),
    ("POST", "/api/tokens/revoke"): frozenset({"admin"}),
    ("GET", "/api/students/{student_id}/export"): frozenset({"admin"}),
    ("DELETE", "/api/students/{student_id}"): frozenset({"admin"}),
    # An account's own tokens: accounts only (a signed or static token has none).
    ("GET", "/api/me/tokens"): frozenset({"teacher_session", "teacher_token"}),
    ("POST", "/api/me/tokens"): frozenset({"teacher_session", "teacher_token"}),
    # The id is a spare token of teacher_token's account: nobody else may revoke it.
    ("DELETE", "/api/me/tokens/{token_id}"): frozenset({"teacher_token"}),
    # Managing people: admins only (the world's admin is the static token; admin accounts are
    # covered in tests/accounts/test_admin_accounts.py). The id is a spare account's.
    ("GET", "/api/accounts"): frozenset({"admin"}),
    ("POST", "/api/accounts"): frozenset({"admin"}),
    ("POST", "/api/accounts/{account_id}/state"): frozenset({"admin"}),
    # Any teacher may import (the example is a dry run); the export carries the keys: owners only.
    ("POST", "/api/exams/import"): _ANY_TEACHER,
    ("GET", "/api/exams/{exam_id}/export"): _OWNERS_X,
    # Exams with a life (docs/exams.md): everyone's own list; edits, versions, archive, delete
    # by owners (on exam Z, which has room X's members and no attempt); grading by the room.
    ("GET", "/api/exams"): _ANY_TEACHER,
    ("PUT", "/api/exams/{exam_id}"): _OWNERS_X,
    ("PATCH", "/api/exams/{exam_id}"): _OWNERS_X,
    ("POST", "/api/exams/{exam_id}/duplicate"): _OWNERS_X,
    ("POST", "/api/exams/{exam_id}/archive"): _OWNERS_X,
    ("GET", "/api/exams/{exam_id}/versions"): _OWNERS_X,
    ("GET", "/api/exams/{exam_id}/rooms"): _ROOM_X,
    ("PATCH", "/api/rooms/{room_id}"): _OWNERS_X,
    ("GET", "/api/attempts/{attempt_id}/grading"): _ROOM_X,
    ("PUT", "/api/attempts/{attempt_id}/grades/{question_id}"): _ROOM_X,
    ("GET", "/api/rooms/{room_id}/questions/{question_id}/answers"): _ROOM_X,
    ("DELETE", "/api/exams/{exam_id}"): _OWNERS_X,
    # LTI platforms (server/lti/registration.py): admins only.
    ("POST", "/api/lti/platforms"): frozenset({"admin"}),
    ("GET", "/api/lti/platforms"): frozenset({"admin"}),
    ("GET", "/api/lti/tool"): frozenset({"admin"}),
    ("GET", "/api/lti/platforms/{platform_id}"): frozenset({"admin"}),
    ("PATCH", "/api/lti/platforms/{platform_id}"): frozenset({"admin"}),
    ("DELETE", "/api/lti/platforms/{platform_id}"): frozenset({"admin"}),
    # LTI services (step 11 B): the grade outbox is the admins'; a room's roster its live staff's.
    ("GET", "/api/lti/outbox"): frozenset({"admin"}),
    ("POST", "/api/lti/outbox/{delivery_id}/retry"): frozenset({"admin"}),
    ("POST", "/api/rooms/{room_id}/lti/roster"): _LIVE_X,
    ("GET", "/api/rooms/{room_id}/lti/roster"): _LIVE_X,
    # Windows: owners set them; anyone of the room reads the room's (rooms/roles.py).
    ("GET", "/api/exams/{exam_id}/schedule"): _ROOM_X,
    ("PUT", "/api/exams/{exam_id}/schedule"): _OWNERS_X,
    ("DELETE", "/api/exams/{exam_id}/schedule"): _OWNERS_X,
    ("GET", "/api/rooms/{room_id}/schedule"): _ROOM_X,
    ("PUT", "/api/rooms/{room_id}/schedule"): _OWNERS_X,
    ("DELETE", "/api/rooms/{room_id}/schedule"): _OWNERS_X,
    # Accommodations: the people who run the sitting (owners and proctors), not reviewers.
    ("GET", "/api/rooms/{room_id}/accommodations"): _LIVE_X,
    ("PUT", "/api/rooms/{room_id}/accommodations/{student_id}"): _LIVE_X,
    ("DELETE", "/api/rooms/{room_id}/accommodations/{student_id}"): _LIVE_X,
}
# Path parameters that must not be student A's: erasing A would end the matrix early.
ROUTE_IDS: dict[tuple[str, str], dict[str, str]] = {
    ("DELETE", "/api/students/{student_id}"): {"student_id": "s-erase"},
    # "@name": the world's id of that name.
    **{
        (method, path): {"exam_id": "@exam_z"}
        for method, path in (
            ("PUT", "/api/exams/{exam_id}"),
            ("PATCH", "/api/exams/{exam_id}"),
            ("POST", "/api/exams/{exam_id}/duplicate"),
            ("POST", "/api/exams/{exam_id}/archive"),
            ("GET", "/api/exams/{exam_id}/versions"),
            ("DELETE", "/api/exams/{exam_id}"),
        )
    },
    ("PUT", "/api/attempts/{attempt_id}/grades/{question_id}"): {"attempt_id": "@done_attempt"},
    ("POST", "/api/lti/outbox/{delivery_id}/retry"): {"delivery_id": "00000000-0000-4000-8000-000000000000"},
}

# What an authorised call answers where it is not the route's success: student A's attempt is
# still running, so a verdict passes the role check and is then refused as a conflict.
AUTHORISED_STATUS: dict[tuple[str, str], int] = {
    ("POST", "/api/attempts/{attempt_id}/verdict"): 409,
    # Room X is not linked to a course (no roster to import), and the delivery id names no failed
    # delivery: the role check passes, then these answer; tests/lti covers their success.
    ("POST", "/api/rooms/{room_id}/lti/roster"): 409,
    ("POST", "/api/lti/outbox/{delivery_id}/retry"): 404,
}

# Routes registered outside `ROUTES`: (method, path) -> roles allowed. The admin's own call
# to /admin/drain is not made here (it drains the node under test; tests/cluster covers it).
EXTRA_ROUTES: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/admin/drain"): frozenset({"admin"}),
}
NOT_EXERCISED_FOR = {
    ("POST", "/admin/drain"): frozenset({"admin"}),
    # The first owner deletes exam Z; the other owners would find it gone (404).
    ("DELETE", "/api/exams/{exam_id}"): frozenset({"admin", "owner_x"}),
}

# The browser's /auth routes (server/http/accounts_api.py AUTH_ROUTES): (method, path) ->
# roles whose call succeeds. Sign-in and setup are public (tests/accounts covers them). The
# calls that end a session are made only by roles they cannot harm here (the others would
# sign the matrix's own session roles out); tests/accounts checks them for accounts.
_AUTHENTICATED = frozenset(STUDENT_ROLES + TEACHER_ROLES)
_ACCOUNT_ROLES = frozenset({"teacher_session", "teacher_token"})
AUTH_POLICY: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/auth/me"): _AUTHENTICATED,  # anyone's own claims
    ("GET", "/auth/sessions"): _ACCOUNT_ROLES,
    ("POST", "/auth/signout"): _AUTHENTICATED,  # without a session: nothing to end, answered ok
    ("DELETE", "/auth/sessions/{session_id}"): frozenset(),  # the id is another account's session
    ("POST", "/auth/signout-everywhere"): _ACCOUNT_ROLES,
}
AUTH_NOT_EXERCISED_FOR = {
    ("POST", "/auth/signout"): frozenset({"teacher_session"}),
    ("POST", "/auth/signout-everywhere"): _ACCOUNT_ROLES,
}
AUTH_PUBLIC = {("POST", "/auth/signin"), ("POST", "/auth/setup")}

# Public by design: health, metrics, the API description, the browser pages and the single
# sign-on routes (tests/accounts/test_oidc.py covers them; AUTH_POLICY above the others).
PUBLIC_PREFIXES = (
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/openapi.json",
    "/exam",
    "/teacher",
    "/static/",
    "/vendor/",
    "/app-config.json",
    "/i18n/",  # the error texts of each language, as public as the pages that show them
    "/socket.io",
    "/auth/config",
    "/auth/oidc/",
    # LTI: the platform's browser posts (every check is the launch's; tests/server/test_lti_launch.py).
    "/lti/",
)
PUBLIC_EXACT = ("/",)

UNAUTHENTICATED = frozenset({"anonymous", "forged", "expired"})
_AUTH_CODES = {"anonymous": {"unauthorized"}, "forged": {"invalid_token"}, "expired": {"token_expired"}}


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def example_body(route: Any) -> Any:
    if route.body is None:
        return None
    extra = route.body.model_config.get("json_schema_extra") or {}
    example = extra.get("example") if isinstance(extra, dict) else None
    assert example is not None, f"{route.body.__name__} has no example; add one (json_schema_extra)"
    return example


def fill(path: str, ids: dict[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in ids, f"no valid id for path parameter {name!r} of {path}; add it to World.ids"
        return ids[name]

    return re.sub(r"{(\w+)}", sub, path)


def test_policy_names_every_route_and_event() -> None:
    routes = {(r.method, r.path) for r in ROUTES}
    assert routes == set(REST_POLICY), (
        f"routes without a policy row: {routes - set(REST_POLICY)}; stale rows: {set(REST_POLICY) - routes}"
    )
    for route in ROUTES:
        allowed = REST_POLICY[(route.method, route.path)]
        kinds = {"admin" if r == "admin" else "student" if r.startswith("student") else "teacher" for r in allowed}
        assert kinds <= set(route.roles), (route.path, kinds, route.roles)
    student_events = {label.split(":")[0] for label in STUDENT_POLICY}
    teacher_events = {label.split(":")[0] for label in TEACHER_POLICY}
    assert set(StudentNamespace.handlers) <= student_events, set(StudentNamespace.handlers) - student_events
    assert set(TeacherNamespace.handlers) <= teacher_events, set(TeacherNamespace.handlers) - teacher_events


async def test_every_registered_route_is_in_a_policy(live: Live) -> None:
    app = live.app  # type: ignore[attr-defined]
    unknown = []
    for resource in app.router.resources():
        path = resource.canonical
        for route in resource:
            if route.method == "HEAD":
                continue
            key = (route.method, path)
            if key in REST_POLICY or key in EXTRA_ROUTES or key in AUTH_POLICY or key in AUTH_PUBLIC:
                continue
            if path in PUBLIC_EXACT or path.startswith(PUBLIC_PREFIXES):
                continue
            unknown.append(key)
    assert not unknown, f"routes with no access policy in tests/security/test_access_matrix.py: {unknown}"


# ------------------------------------------------------------------------------------- REST


async def rest_matrix(world: World) -> tuple[int, list[str]]:
    live = world.live
    ids = world.ids
    checks, failures = 0, []
    table = [(r.method, r.path, r.status, example_body(r)) for r in ROUTES]
    table += [(m, p, 202, None) for (m, p) in EXTRA_ROUTES]
    for method, template, ok_status, body in table:
        allowed = REST_POLICY.get((method, template)) or EXTRA_ROUTES[(method, template)]
        skip = NOT_EXERCISED_FOR.get((method, template), frozenset())
        ok_status = AUTHORISED_STATUS.get((method, template), ok_status)
        overrides = {
            k: ids[v[1:]] if v.startswith("@") else v for k, v in ROUTE_IDS.get((method, template), {}).items()
        }
        path = fill(template, {**ids, **overrides})
        if template == "/admin/drain":
            path += "?exit=0"
        for role in ROLES:
            if role in skip:
                continue
            kwargs: dict[str, Any] = {"headers": world.headers(role)}
            if body is not None:
                kwargs["json"] = body
            async with live.http.request(method, live.url + path, **kwargs) as resp:
                raw = await resp.read()
                status = resp.status
                ctype = resp.content_type
            checks += 1
            where = f"{role:10} {method} {template} -> {status}"
            if role in allowed:
                if status != ok_status:
                    failures.append(f"AUTHORISED CALL FAILED: {where} (want {ok_status}) {raw[:200]!r}")
                continue
            if 200 <= status < 300:
                failures.append(f"UNAUTHORISED SUCCESS: {where} {raw[:200]!r}")
                continue
            want = {401} if role in UNAUTHENTICATED else {403, 404}
            try:
                data = json.loads(raw)
            except ValueError:
                data = raw
            problem = error_shape_problem(data) if ctype == "application/json" else f"content type {ctype}"
            if status not in want:
                failures.append(f"WRONG REFUSAL: {where} (want {sorted(want)}) {raw[:200]!r}")
            elif problem:
                failures.append(f"BAD ERROR SHAPE: {where}: {problem}")
            elif role in UNAUTHENTICATED and data["error"]["code"] not in _AUTH_CODES[role]:
                failures.append(f"WRONG 401 CODE: {where}: {data['error']['code']}")
    return checks, failures


async def test_auth_routes_matrix(world: World) -> None:
    from server.http.accounts_api import AUTH_ROUTES

    assert {(r.method, r.path) for r in AUTH_ROUTES} == set(AUTH_POLICY) | AUTH_PUBLIC
    live = world.live
    # A session of an account outside the world: its id is what DELETE /auth/sessions/{id} names.
    from rooms.tokens import ADMIN_STATIC
    from server.keys import ACCOUNTS
    from tests.support.access import ACCOUNT_PASSWORD, PUBLIC_ORIGIN

    email = f"outsider-{uuid.uuid4().hex[:8]}@example.org"
    await live.app[ACCOUNTS].create(ADMIN_STATIC, email, "Outsider", "teacher", ACCOUNT_PASSWORD)  # type: ignore[attr-defined]
    async with live.http.post(
        live.url + "/auth/signin",
        json={"email": email, "password": ACCOUNT_PASSWORD},
        headers={"Origin": PUBLIC_ORIGIN},
    ) as resp:
        outsider = (await resp.json())["session"]["id"]
    checks, failures = 0, []
    for (method, template), allowed in AUTH_POLICY.items():
        path = template.replace("{session_id}", outsider)
        for role in ROLES:
            if role in AUTH_NOT_EXERCISED_FOR.get((method, template), frozenset()):
                continue
            async with live.http.request(method, live.url + path, headers=world.headers(role)) as resp:
                status, raw = resp.status, await resp.read()
            checks += 1
            where = f"{role:15} {method} {template} -> {status}"
            if role in allowed:
                if status != 200:
                    failures.append(f"AUTHORISED CALL FAILED: {where} {raw[:200]!r}")
            elif 200 <= status < 300:
                failures.append(f"UNAUTHORISED SUCCESS: {where} {raw[:200]!r}")
            elif status not in ({401} if role in UNAUTHENTICATED else {403, 404}):
                failures.append(f"WRONG REFUSAL: {where} {raw[:200]!r}")
    FIGURES["access checks: /auth (role x route)"] += checks
    assert not failures, f"{len(failures)} of {checks} /auth access checks failed:\n" + "\n".join(failures)


async def test_rest_access_matrix(world: World) -> None:
    checks, failures = await rest_matrix(world)
    FIGURES["access checks: REST (role x route)"] += checks
    assert not failures, f"{len(failures)} of {checks} REST access checks failed:\n" + "\n".join(failures)


# --------------------------------------------------------------------------------- Socket.IO

# label -> roles whose call must succeed ({ok: true}); everyone else must get {ok: false}
# with a refusal code. "event:variant" labels are variants of one event.
STUDENTS = frozenset(STUDENT_ROLES)
TEACHERS_OF_X = _LIVE_X  # the live side: no reviewer
# A real JPEG (the frame event refuses anything else), small enough for the event's limit.
TINY_JPEG = bytes(cv2.imencode(".jpg", np.full((24, 32, 3), 128, np.uint8))[1])
FRAME_OK = frozenset({"analysis_off"})
STUDENT_POLICY: dict[str, frozenset[str]] = {
    "join": STUDENTS,
    "answer": STUDENTS,
    "answer:naming A's attempt": frozenset(),  # no payload can name another attempt
    "event": STUDENTS,
    "hand": STUDENTS,
    "rtc:answer to teacher_x's live view of A": frozenset({"student_a"}),
    # A camera snapshot goes to the analysis of one's own attempt only (docs/protocol.md); this
    # world's exam has no server analysis, so a joined student gets as far as `analysis_off`
    # (FRAME_OK); tests/analysis/test_snapshot_e2e.py takes frames of an analysed exam.
    "frame": STUDENTS,
    "submit": STUDENTS,  # final pass only: it ends the attempt
}
TEACHER_POLICY: dict[str, frozenset[str]] = {
    "watch": TEACHERS_OF_X,
    "unwatch": frozenset(TEACHER_ROLES),  # leaving a room you do not watch is a harmless no-op
    "control:warn": TEACHERS_OF_X,
    "control:message": TEACHERS_OF_X,
    "control:extend": TEACHERS_OF_X,
    "control:pause": TEACHERS_OF_X,
    "control:resume": TEACHERS_OF_X,
    "control:terminate": TEACHERS_OF_X,  # on a fresh attempt per role
    "announce": TEACHERS_OF_X,
    "rtc:offer": TEACHERS_OF_X,
    "rtc:candidate on teacher_x's view": frozenset({"teacher_x"}),
}
REFUSALS = {"forbidden", "not_found", "unknown_event", "invalid"}


async def connect_outcome(
    live: Live, namespace: str, token: str | None, headers: dict[str, str] | None = None
) -> tuple[str, Client | None]:
    """('connected', client) or (refusal code, None)."""
    sio = socketio.AsyncClient(reconnection=False)
    reasons: list[Any] = []

    async def on_error(data: Any = None) -> None:
        reasons.append(data)

    sio.on("connect_error", on_error, namespace=namespace)
    client = Client(sio, namespace)
    from tests.support.live import EVENTS, forward

    for event in EVENTS:
        sio.on(event, forward(client.received, event), namespace=namespace)
    auth = {"token": token} if token is not None else None
    try:
        await sio.connect(live.url, namespaces=[namespace], auth=auth, headers=headers or {}, transports=["websocket"])
    except socketio.exceptions.ConnectionError:
        await sio.disconnect()
        data = reasons[0] if reasons else None
        code = (
            data.get("data", {}).get("code") if isinstance(data, dict) and isinstance(data.get("data"), dict) else None
        )
        return str(code or f"refused without a code: {data!r}"), None
    live.clients.append(client)
    return "connected", client


async def connect_matrix(world: World) -> tuple[dict[str, Client], int, list[str]]:
    clients: dict[str, Client] = {}
    checks, failures = 0, []
    for role in ROLES:
        for namespace in ("/student", "/teacher"):
            may = role in STUDENT_ROLES if namespace == "/student" else role in TEACHER_ROLES
            cookie = {"Cookie": world.headers(role)["Cookie"]} if role in world.cookies else None
            outcome, client = await connect_outcome(world.live, namespace, world.tokens[role], cookie)
            checks += 1
            if may and client is None:
                failures.append(f"AUTHORISED CONNECT FAILED: {role} {namespace}: {outcome}")
            elif not may and client is not None:
                failures.append(f"UNAUTHORISED CONNECT: {role} {namespace}")
                await client.close()
            elif not may:
                want = {"anonymous": "unauthorized", "forged": "invalid_token", "expired": "token_expired"}.get(
                    role, "wrong_role"
                )
                if outcome != want:
                    failures.append(f"WRONG CONNECT REFUSAL: {role} {namespace}: {outcome} (want {want})")
            if client is not None:
                clients[role] = client
    return clients, checks, failures


class SocketPass:
    """One pass of every event by every role that can connect, teacher side first."""

    def __init__(self, world: World, clients: dict[str, Client], *, final: bool) -> None:
        self.world = world
        self.clients = clients
        self.final = final
        self.checks = 0
        self.failures: list[str] = []
        self.views: dict[str, str] = {}  # teacher role -> live view session on attempt A
        self.seq: dict[str, int] = {}

    def judge(
        self, role: str, label: str, allowed: frozenset[str], ack: Any, ok_codes: frozenset[str] = frozenset()
    ) -> None:
        self.checks += 1
        where = f"{role:10} {label}"
        problem = ack_shape_problem(ack)
        if problem:
            self.failures.append(f"BAD ACK SHAPE: {where}: {problem}")
            return
        if role in allowed:
            if not ack["ok"] and ack["error"]["code"] not in ok_codes:
                self.failures.append(f"AUTHORISED CALL FAILED: {where}: {ack['error']}")
        elif ack["ok"]:
            self.failures.append(f"UNAUTHORISED SUCCESS: {where}: {ack!r:.300}")
        elif ack["error"]["code"] not in REFUSALS:
            self.failures.append(f"WRONG REFUSAL: {where}: {ack['error']}")

    async def fresh_attempt(self, tag: str) -> str:
        live = self.world.live
        [token] = await live.invites(self.world.room_x["id"], 1, prefix=f"victim-{tag}-{uuid.uuid4().hex[:6]}")
        client, ack = await live.student(token)
        await client.close()
        return str(ack["attempt"]["attempt_id"])

    async def teacher_side(self) -> None:
        room_x = self.world.room_x["id"]
        attempt_a = self.world.attempts["student_a"]
        for role in TEACHER_ROLES:
            client = self.clients[role]
            calls: list[tuple[str, str, dict[str, Any]]] = [
                ("watch", "watch", {"room_id": room_x}),
                ("unwatch", "unwatch", {"room_id": room_x}),
                ("control:warn", "control", {"attempt_id": attempt_a, "action": "warn", "text": "eyes on screen"}),
                ("control:message", "control", {"attempt_id": attempt_a, "action": "message", "text": "hello"}),
                ("control:extend", "control", {"attempt_id": attempt_a, "action": "extend", "minutes": 1}),
                ("control:pause", "control", {"attempt_id": attempt_a, "action": "pause"}),
                ("control:resume", "control", {"attempt_id": attempt_a, "action": "resume"}),
                ("announce", "announce", {"room_id": room_x, "text": f"announce by {role}"}),
                (
                    "rtc:offer",
                    "rtc",
                    {
                        "target": "peer",
                        "type": "offer",
                        "attempt_id": attempt_a,
                        "sdp": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n",
                    },
                ),
            ]
            for label, event, payload in calls:
                ack = await client.call(event, payload)
                self.judge(role, label, TEACHER_POLICY[label], ack)
                if label == "rtc:offer" and ack.get("ok"):
                    self.views[role] = ack["session"]
            # Another teacher's view session must not be usable (session hijack).
            hijack = {
                "target": "peer",
                "type": "candidate",
                "attempt_id": attempt_a,
                "session": self.views.get("teacher_x", "none"),
                "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"},
            }
            label = "rtc:candidate on teacher_x's view"
            self.judge(role, label, TEACHER_POLICY[label], await client.call("rtc", hijack))
            # Terminate a fresh attempt of room X, and check a refused terminate changed nothing.
            victim = await self.fresh_attempt(role)
            ack = await client.call("control", {"attempt_id": victim, "action": "terminate"})
            self.judge(role, "control:terminate", TEACHER_POLICY["control:terminate"], ack)
            status = await self.world.live.app[POOL].fetchval(  # type: ignore[attr-defined]
                "SELECT status FROM attempts WHERE id = $1::uuid", victim
            )
            want = "terminated" if role in TEACHER_POLICY["control:terminate"] else "active"
            self.checks += 1
            if status != want:
                self.failures.append(f"EFFECT: {role} terminate left the attempt {status} (want {want})")
            # The other namespace's events are unknown here.
            for event in StudentNamespace.handlers:
                if event in TeacherNamespace.handlers:
                    continue
                self.judge(role, f"/teacher {event} (student event)", frozenset(), await client.call(event, {}))

    async def student_side(self) -> None:
        attempt_a = self.world.attempts["student_a"]
        events = list(STUDENT_POLICY)
        if not self.final:
            events.remove("submit")
        for role in STUDENT_ROLES:
            client = self.clients[role]
            for label in events:
                payload: dict[str, Any]
                event = label.split(":")[0]
                if event == "join":
                    payload = {}
                elif event in ("answer", "event"):
                    self.seq[role] = self.seq.get(role, 0) + 1
                    if event == "answer":
                        # A answers 1, everyone else 0: A's stored answer shows who wrote it.
                        payload = {"question_id": "q1", "value": 1 if role == "student_a" else 0, "seq": self.seq[role]}
                        if "naming" in label:
                            payload["attempt_id"] = attempt_a
                    else:
                        payload = {"seq": self.seq[role], "kind": "copy", "occurred_at": now_iso()}
                elif event == "hand":
                    payload = {"text": f"help from {role}"}
                elif event == "frame":
                    payload = {"jpeg": TINY_JPEG}
                elif event == "rtc":
                    payload = {
                        "target": "peer",
                        "type": "answer",
                        "session": self.views.get("teacher_x", "none"),
                        "sdp": "v=0\r\n",
                    }
                else:
                    payload = {}
                ack = await client.call(event, payload)
                self.judge(role, label, STUDENT_POLICY[label], ack, FRAME_OK if event == "frame" else frozenset())
                if event == "join" and ack.get("ok"):
                    self.seq[role] = max(self.seq.get(role, 0), int(ack["last_seq"]))
            for event in TeacherNamespace.handlers:
                if event in StudentNamespace.handlers:
                    continue
                self.judge(role, f"/student {event} (teacher event)", frozenset(), await client.call(event, {}))

    async def effects(self) -> None:
        """What the refused calls must not have done, seen from the other side."""
        pool = self.world.live.app[POOL]  # type: ignore[attr-defined]
        value = await pool.fetchval(
            "SELECT value::text FROM answers WHERE attempt_id = $1::uuid AND question_id = 'q1'",
            self.world.attempts["student_a"],
        )
        self.checks += 1
        if value != "1":
            self.failures.append(f"EFFECT: student A's answer to q1 is {value} (someone else wrote it)")
        # Live-view offers reached student A only, and only from teachers of room X.
        for role in STUDENT_ROLES:
            offers = [d for d in self.clients[role].received.events.get("rtc", []) if d.get("type") == "offer"]
            want = len(TEACHER_POLICY["rtc:offer"]) if role == "student_a" else 0
            self.checks += 1
            if len(offers) != want:
                self.failures.append(f"EFFECT: {role} received {len(offers)} live-view offers (want {want})")
        # Student A's answer on the view reached teacher_x only.
        for role in TEACHER_ROLES:
            answers = [d for d in self.clients[role].received.events.get("rtc", []) if d.get("type") == "answer"]
            want = 1 if role == "teacher_x" else 0
            self.checks += 1
            if len(answers) != want:
                self.failures.append(f"EFFECT: {role} received {len(answers)} live-view answers (want {want})")
        # Room Y's teachers and room X's reviewer watched nothing of room X: none of its
        # attempts' deltas may reach them.
        room_x = self.world.room_x["id"]
        x_attempts = {self.world.attempts["student_a"], self.world.attempts["student_b"]}
        for role in ("teacher_y", "owner_y", "proctor_y", "reviewer_y", "reviewer_x"):
            leaked = [
                (e, d)
                for e, items in self.clients[role].received.events.items()
                for d in items
                if isinstance(d, dict) and (d.get("attempt_id") in x_attempts or d.get("room_id") == room_x)
            ]
            self.checks += 1
            if leaked:
                self.failures.append(f"LEAK: {role} received room X events: {leaked[:3]}")
        # Room X announcements reach room X's students only.
        for role in ("student_c", "student_d"):
            got = [d for d in self.clients[role].received.events.get("announce", []) if d.get("room_id") == room_x]
            self.checks += 1
            if got:
                self.failures.append(f"LEAK: {role} (room Y) received room X announcements: {got[:2]}")

    async def run(self) -> None:
        await self.teacher_side()
        await self.student_side()
        await self.effects()


async def socket_round(world: World, *, final: bool) -> tuple[int, list[str]]:
    clients, checks, failures = await connect_matrix(world)
    missing = [r for r in STUDENT_ROLES + TEACHER_ROLES if r not in clients]
    if missing:
        return checks, [*failures, f"cannot run the event pass: {missing} could not connect"]
    # Students join before the teachers act, so live-view relays have someone to reach.
    for role in STUDENT_ROLES:
        ack = await clients[role].call("join")
        assert ack["ok"], (role, ack)
    one = SocketPass(world, clients, final=final)
    await one.run()
    for client in clients.values():
        await client.close()
    return checks + one.checks, failures + one.failures


async def test_socket_access_matrix_and_after_reconnect(world: World) -> None:
    checks, failures = await socket_round(world, final=False)
    # Everyone disconnects and comes back with the same tokens: the same policy holds.
    again, more = await socket_round(world, final=True)
    total = checks + again
    FIGURES["access checks: Socket.IO (role x event, connect, effects; 2 rounds)"] += total
    failures += [f"after reconnect: {f}" for f in more]
    assert not failures, f"{len(failures)} of {total} socket access checks failed:\n" + "\n".join(failures)


async def test_live_view_needs_target_peer_and_attempt(world: World) -> None:
    """Live view signaling refuses what it cannot scope: no attempt, wrong target, unknown ids."""
    live = world.live
    teacher = await live.connect("/teacher", world.tokens["teacher_x"])
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"target": "peer", "type": "offer", "sdp": "v=0"}, {"invalid"}),
        ({"target": "server", "type": "offer", "attempt_id": world.attempts["student_a"], "sdp": "v=0"}, {"invalid"}),
        ({"target": "peer", "type": "offer", "attempt_id": str(uuid.uuid4()), "sdp": "v=0"}, {"not_found"}),
        ({"target": "peer", "type": "offer", "attempt_id": world.attempts["student_c"], "sdp": "v=0"}, {"forbidden"}),
        (
            {"target": "peer", "type": "answer", "attempt_id": world.attempts["student_a"], "session": "guess"},
            {"not_found"},
        ),
    ]
    failures = []
    for payload, codes in cases:
        ack = await teacher.call("rtc", payload)
        FIGURES["access checks: live-view signaling"] += 1
        if ack.get("ok") or ack["error"]["code"] not in codes:
            failures.append(f"{payload} -> {ack}")
    assert not failures, failures


# role -> (its role in room X, in room Y) as GET /api/me/rooms must report them (None: absent).
MY_ROOMS: dict[str, tuple[str | None, str | None]] = {
    "admin": ("admin", "admin"),
    "owner": ("owner", None),
    "owner_x": ("owner", None),
    "teacher_x": ("proctor", None),
    "proctor_x": ("proctor", None),
    "reviewer_x": ("reviewer", None),
    "teacher_y": (None, "proctor"),
    "owner_y": (None, "owner"),
    "proctor_y": (None, "proctor"),
    "reviewer_y": (None, "reviewer"),
    # Accounts that own nothing and were given no role: they list no room of this world.
    "teacher_session": (None, None),
    "teacher_token": (None, None),
}


async def test_my_rooms_lists_my_rooms_only(world: World) -> None:
    assert set(MY_ROOMS) == set(TEACHER_ROLES)
    failures = []
    for role, (in_x, in_y) in MY_ROOMS.items():
        async with world.live.http.get(f"{world.live.url}/api/me/rooms", headers=world.headers(role)) as resp:
            assert resp.status == 200, (role, await resp.text())
            mine = {r["id"]: r["role"] for r in (await resp.json())["rooms"]}
        FIGURES["access checks: my rooms"] += 2
        for room, want in ((world.room_x["id"], in_x), (world.room_y["id"], in_y)):
            if mine.get(room) != want:
                failures.append(f"{role}: room {room} listed as {mine.get(room)!r} (want {want!r})")
        # The admin lists every room; `owner`'s sub is the same in every world of the session
        # (OWNER_SUB) and owns all rooms of its exams, so only the fresh accounts list exactly two.
        # Room X's members also hold their roles in room Z (the exam edit routes' exam).
        if role not in ("admin", "owner") and set(mine) - {world.room_x["id"], world.room_y["id"], world.room_z}:
            failures.append(f"{role}: lists rooms it holds no role in: {set(mine)}")
    assert not failures, failures


async def test_evidence_is_not_served_after_expiry(world: World) -> None:
    pool = world.live.app[POOL]  # type: ignore[attr-defined]
    expired = uuid.uuid4()
    await pool.execute(
        "INSERT INTO evidence (id, attempt_id, data, expires_at) VALUES ($1, $2::uuid, 'x', now() - interval '1 s')",
        expired,
        world.attempts["student_a"],
    )
    async with world.live.http.get(f"{world.live.url}/api/evidence/{expired}", headers=bearer(ADMIN)) as resp:
        FIGURES["access checks: REST (role x route)"] += 1
        assert resp.status == 404
