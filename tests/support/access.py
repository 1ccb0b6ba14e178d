"""Shared ground for the security tests: a small world of rooms and roles on a live node,
a way to drive Hypothesis from a worker thread against that node's event loop, the shapes a
reply must have, and the figures (checks and fuzz cases run) that tests/security's conftest
prints at the end of the session."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from rooms.tokens import TokenService
from server.http.credentials import SESSION_COOKIE
from server.keys import POOL
from tests.support.live import Live
from tests.support.members import example_account, member
from tests.support.node import ADMIN, EXAM_BODY, SECRET, bearer

T = TypeVar("T")

# Every access check and fuzz case adds to these; `pytest_terminal_summary` prints them so
# docs/reliability.md can cite the numbers of a real run.
FIGURES: Counter[str] = Counter()

# Loggers of our own packages: an ERROR from any of them during a fuzz run is a finding.
OUR_LOGGERS = ("server", "signaling", "rooms", "media", "detection")


def require(module: str, install: str) -> Any:
    """Import a test dependency or FAIL (never skip) saying what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"{module} is missing ({exc}); install it: {install}", pytrace=False)


def fuzz_settings(max_examples: int) -> dict[str, Any]:
    """Bounded, reproducible Hypothesis settings (PROCTOR_FUZZ_RANDOM=1 explores anew)."""
    from hypothesis import HealthCheck

    return {
        "max_examples": max_examples,
        "deadline": None,
        "database": None,
        "derandomize": os.environ.get("PROCTOR_FUZZ_RANDOM") != "1",
        "suppress_health_check": list(HealthCheck),
        "print_blob": True,
    }


class LoopBridge:
    """Run coroutines on the test's event loop from a Hypothesis worker thread.

    Hypothesis drives a synchronous test function; the server lives on the pytest-asyncio
    loop. The async test hands the whole Hypothesis run to a thread (`asyncio.to_thread`),
    which keeps the loop free to serve, and each example submits its requests back here.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float = 30.0) -> None:
        self.loop = loop
        self.timeout = timeout

    def run(self, make: Callable[[], Awaitable[T]]) -> T:
        async def wrapped() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(self.timeout)


@pytest.fixture
async def bridge() -> LoopBridge:
    return LoopBridge(asyncio.get_running_loop())


@dataclass
class World:
    """Room X (exam X, created by the `owner` teacher) and room Y (exam Y), with:

    student_a, student_b: room X, two attempts; student_c: room Y;
    student_d: room Y, but with the student id equal to the owner's `sub`;
    teacher_x: token lists room X; teacher_y: token lists room Y; owner: created exam X;
    owner_x, proctor_x, reviewer_x (and _y): accounts given that role in room X (Y) through
    the members API, tokens naming no room;
    admin; anonymous (no token); forged (right claims, wrong key); expired (admin, past exp).
    """

    live: Live
    tokens: dict[str, str | None]
    exam_x: dict[str, Any]
    room_x: dict[str, Any]
    exam_y: dict[str, Any]
    room_y: dict[str, Any]
    attempts: dict[str, str] = field(default_factory=dict)  # student role -> attempt id
    evidence_id: str = ""
    violation_id: int = 0
    # Roles that call with a browser session: role -> (cookie, CSRF token).
    cookies: dict[str, tuple[str, str]] = field(default_factory=dict)
    personal_token_id: str = ""  # a spare personal token of teacher_token's account
    spare_account_id: str = ""  # an account nobody signs in with (the admins' state route names it)
    # Exam Z: owned like exam X (room Z, the same members) but never taken, for the edit routes
    # (an edit of X, which has attempts, would make a new version); a submitted attempt in X.
    exam_z: str = ""
    room_z: str = ""
    done_attempt: str = ""
    lti_platform_id: str = ""  # a registered LTI platform (the admins' /api/lti/platforms/{id} routes)

    def headers(self, role: str) -> dict[str, str]:
        """The role's credential as request headers: a session cookie (with its CSRF token and
        our Origin, as the browser sends them) or a bearer token."""
        if role in self.cookies:
            cookie, csrf = self.cookies[role]
            return {"Cookie": f"{SESSION_COOKIE}={cookie}", "X-CSRF-Token": csrf, "Origin": PUBLIC_ORIGIN}
        token = self.tokens[role]
        return bearer(token) if token is not None else {}

    @property
    def ids(self) -> dict[str, str]:
        """Valid path parameters, all belonging to room X / student A."""
        return {
            "exam_id": self.exam_x["id"],
            "room_id": self.room_x["id"],
            "attempt_id": self.attempts["student_a"],
            "evidence_id": self.evidence_id,
            "violation_id": str(self.violation_id),
            "student_id": "s-a",
            "token_id": self.personal_token_id,
            "account_id": self.spare_account_id,
            "question_id": "q3",
            "exam_z": self.exam_z,
            "done_attempt": self.done_attempt,
            "platform_id": self.lti_platform_id,
        }


OWNER_SUB = "t-owner"
STUDENT_ROLES = ("student_a", "student_b", "student_c", "student_d")
# teacher_session and teacher_token are accounts (signed in with a cookie, or calling with a
# personal `pt_` token) that own no exam: teachers of nothing in this world.
MEMBER_ROLES = ("owner_x", "proctor_x", "reviewer_x", "owner_y", "proctor_y", "reviewer_y")
TEACHER_ROLES = ("teacher_x", "teacher_y", "owner", "admin", "teacher_session", "teacher_token", *MEMBER_ROLES)
BAD_ROLES = ("anonymous", "forged", "expired")
ROLES = BAD_ROLES + STUDENT_ROLES + TEACHER_ROLES


async def _post(live: Live, path: str, body: Any, token: str) -> Any:
    async with live.http.post(live.url + path, json=body, headers=bearer(token)) as resp:
        data = await resp.json()
        assert resp.status < 300, (path, resp.status, data)
        return data


async def build_world(live: Live) -> World:
    owner = await live.teacher_token([], sub=OWNER_SUB)
    exam_x = await _post(live, "/api/exams", EXAM_BODY, owner)
    room_x = await _post(live, f"/api/exams/{exam_x['id']}/rooms", {"name": "X", "seats": 30}, owner)
    exam_y = await _post(live, "/api/exams", EXAM_BODY, ADMIN)
    room_y = await _post(live, f"/api/exams/{exam_y['id']}/rooms", {"name": "Y", "seats": 30}, ADMIN)
    invites_x = await _post(
        live,
        f"/api/rooms/{room_x['id']}/invites",
        {"students": [{"id": "s-a", "name": "Ada"}, {"id": "s-b", "name": "Bob"}, {"id": "s-erase", "name": "Eve"}]},
        ADMIN,
    )
    invites_y = await _post(
        live,
        f"/api/rooms/{room_y['id']}/invites",
        {"students": [{"id": "s-c", "name": "Cy"}, {"id": OWNER_SUB, "name": "Dee"}]},
        ADMIN,
    )
    foreign = TokenService("a-different-secret-of-at-least-32-bytes!!")
    tokens: dict[str, str | None] = {
        "anonymous": None,
        "forged": foreign.mint("admin", "admin"),
        "expired": TokenService(SECRET).mint("admin", "admin", ttl_seconds=-60),
        "student_a": invites_x["invites"][0]["token"],
        "student_b": invites_x["invites"][1]["token"],
        "student_c": invites_y["invites"][0]["token"],
        "student_d": invites_y["invites"][1]["token"],
        "teacher_x": await live.teacher_token([room_x["id"]], sub="t-x"),
        "teacher_y": await live.teacher_token([room_y["id"]], sub="t-y"),
        "owner": owner,
        "admin": ADMIN,
    }
    # Roles per room, given through the members API: the exam's creator adds an owner of X,
    # who adds the rest (an added owner may); the admin adds room Y's owner.
    await example_account(live.app[POOL])  # type: ignore[attr-defined]
    subs: dict[str, str] = {}
    for room, first_by in ((room_x, owner), (room_y, ADMIN)):
        suffix = "x" if room is room_x else "y"
        subs[f"owner_{suffix}"], tokens[f"owner_{suffix}"] = await member(
            live, room["id"], "owner", first_by, f"owner-{suffix}"
        )
        added_owner = tokens[f"owner_{suffix}"]
        assert added_owner is not None
        for role in ("proctor", "reviewer"):
            subs[f"{role}_{suffix}"], tokens[f"{role}_{suffix}"] = await member(
                live, room["id"], role, added_owner, f"{role}-{suffix}"
            )
    world = World(live, tokens, exam_x, room_x, exam_y, room_y)
    exam_z = await _post(live, "/api/exams", EXAM_BODY, owner)
    room_z = await _post(live, f"/api/exams/{exam_z['id']}/rooms", {"name": "Z", "seats": 5}, owner)
    world.exam_z = exam_z["id"]
    world.room_z = room_z["id"]
    for role in ("owner", "proctor", "reviewer"):
        await live.app[POOL].execute(  # type: ignore[attr-defined]
            "INSERT INTO room_members (room_id, subject, role, added_by) VALUES ($1, $2, $3, 'matrix')",
            uuid.UUID(room_z["id"]),
            subs[f"{role}_x"],
            role,
        )
    await add_account_roles(world)
    # Student E (room X) exists only to be erased by the matrix's DELETE /api/students/{id};
    # their attempt is over (a running one is refused with 409).
    client, _ = await live.student(invites_x["invites"][2]["token"])
    assert (await client.call("submit"))["ok"]
    await client.close()
    for role in STUDENT_ROLES:
        token = tokens[role]
        assert token is not None
        client, ack = await live.student(token)
        world.attempts[role] = ack["attempt"]["attempt_id"]
        await client.close()
    # Evidence and a server violation on student A's attempt, as the analysis path writes them.
    pool = live.app[POOL]  # type: ignore[attr-defined]
    evidence = uuid.uuid4()
    attempt_a = uuid.UUID(world.attempts["student_a"])
    await pool.execute(
        "INSERT INTO evidence (id, attempt_id, data, expires_at) VALUES ($1, $2, $3, now() + interval '1 day')",
        evidence,
        attempt_a,
        b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9",
    )
    world.violation_id = await pool.fetchval(
        "INSERT INTO violations (attempt_id, seq, source, kind, severity, occurred_at, evidence_id)"
        " VALUES ($1, 1, 'server', 'no_face', 3, now(), $2) RETURNING id",
        attempt_a,
        evidence,
    )
    world.evidence_id = str(evidence)
    world.done_attempt = str(
        await pool.fetchval(
            "INSERT INTO attempts (id, exam_id, room_id, student_id, deadline, status, submitted_at)"
            " VALUES (gen_random_uuid(), $1::uuid, $2::uuid, 's-done', now(), 'submitted', now()) RETURNING id",
            exam_x["id"],
            room_x["id"],
        )
    )
    return world


PUBLIC_ORIGIN = "http://proctor.test"  # tests/conftest.py's public URL
ACCOUNT_PASSWORD = "matrix password 1"


async def add_account_roles(world: World) -> None:
    from rooms.tokens import ADMIN_STATIC
    from server.keys import ACCOUNTS

    live = world.live
    accounts = live.app[ACCOUNTS]  # type: ignore[attr-defined]
    signed_in: dict[str, tuple[str, str]] = {}
    for role in ("teacher_session", "teacher_token"):
        email = f"{role}-{uuid.uuid4().hex[:8]}@example.org"
        await accounts.create(ADMIN_STATIC, email, role, "teacher", ACCOUNT_PASSWORD)
        async with live.http.post(
            live.url + "/auth/signin",
            json={"email": email, "password": ACCOUNT_PASSWORD},
            headers={"Origin": PUBLIC_ORIGIN},
        ) as resp:
            body = await resp.json()
            assert resp.status == 200, body
            signed_in[role] = (resp.cookies[SESSION_COOKIE].value, body["csrf_token"])
    world.cookies["teacher_session"] = signed_in["teacher_session"]
    cookie, csrf = signed_in["teacher_token"]
    session = {"Cookie": f"{SESSION_COOKIE}={cookie}", "X-CSRF-Token": csrf, "Origin": PUBLIC_ORIGIN}
    minted = []
    for name in ("matrix", "spare"):
        async with live.http.post(live.url + "/api/me/tokens", json={"name": name}, headers=session) as resp:
            body = await resp.json()
            assert resp.status == 201, body
            minted.append(body)
    world.tokens["teacher_session"] = None
    world.tokens["teacher_token"] = minted[0]["token"]
    world.personal_token_id = minted[1]["id"]
    spare = await accounts.create(ADMIN_STATIC, f"spare-{uuid.uuid4().hex[:8]}@example.org", "spare", "teacher")
    world.spare_account_id = spare.id
    # POST /api/accounts's example creates this address: free it for this world's admin call.
    from server.http.admin_accounts import EXAMPLE_NEW_ACCOUNT

    await live.app[POOL].execute("DELETE FROM accounts WHERE lower(email) = $1", EXAMPLE_NEW_ACCOUNT)  # type: ignore[attr-defined]
    world.lti_platform_id = await lti_platform_for_examples(live.app)  # type: ignore[attr-defined]


async def lti_platform_for_examples(app: Any) -> str:
    """A registered platform for the /api/lti/platforms/{id} routes; the POST example's issuer is freed."""
    from datetime import UTC, datetime

    from rooms.lti import Platform
    from server.lti import LTI
    from server.lti.registration import EXAMPLE_PLATFORM as example

    await app[POOL].execute(
        "DELETE FROM lti_platforms WHERE issuer = $1 AND client_id = $2", example["issuer"], example["client_id"]
    )
    issuer = f"https://lms-{uuid.uuid4().hex[:8]}.example.edu"
    platform = await app[LTI].store.create_platform(
        Platform("", "", issuer, "c", ("1",), issuer + "/a", issuer + "/t", issuer + "/k", "admin", datetime.now(UTC))
    )
    return str(platform.id)


@pytest.fixture
async def world(live: Live) -> World:
    return await build_world(live)


def our_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    found = []
    for record in caplog.records:
        if record.levelno >= logging.ERROR and record.name.split(".")[0] in (*OUR_LOGGERS, "engineio", "socketio"):
            cause = record.exc_info[1] if record.exc_info else None
            found.append(
                f"{record.name}: {record.getMessage()}"
                + (f" [{type(cause).__name__}: {cause}]" if cause is not None else "")
            )
    return found


def error_shape_problem(data: Any) -> str | None:
    """Why `data` is not the REST error shape
    {"error": {"code", "message", "fields"?, "retry_after"?, "text"?, "details"?}}."""
    if not isinstance(data, dict) or set(data) != {"error"} or not isinstance(data["error"], dict):
        return f"not {{'error': {{...}}}}: {data!r:.200}"
    err = data["error"]
    if not isinstance(err.get("code"), str) or not err["code"]:
        return f"no code: {err!r:.200}"
    if not isinstance(err.get("message"), str):
        return f"no message: {err!r:.200}"
    if "fields" in err and not (
        isinstance(err["fields"], dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in err["fields"].items())
    ):
        return f"fields not a str->str map: {err['fields']!r:.200}"
    if "retry_after" in err and not (isinstance(err["retry_after"], (int, float)) and err["retry_after"] > 0):
        return f"bad retry_after: {err!r:.200}"
    if "text" in err and not (isinstance(err["text"], str) and err["text"]):
        return f"bad text (the person's words, server/http/messages.py): {err!r:.200}"
    if "details" in err and not isinstance(err["details"], dict):
        return f"details not an object: {err['details']!r:.200}"
    extra = set(err) - {"code", "message", "fields", "retry_after", "text", "details"}
    if extra:
        return f"unexpected keys {extra}"
    return None


def ack_shape_problem(ack: Any) -> str | None:
    """Why `ack` is not {ok: true, ...} or {ok: false, error: {code, message, retry_after?, fields?, details?}}."""
    if not isinstance(ack, dict) or not isinstance(ack.get("ok"), bool):
        return f"no boolean ok: {ack!r:.200}"
    if ack["ok"]:
        return None
    if set(ack) != {"ok", "error"} or not isinstance(ack["error"], dict):
        return f"error ack without error object: {ack!r:.200}"
    err = ack["error"]
    if not isinstance(err.get("code"), str) or not err["code"] or not isinstance(err.get("message"), str):
        return f"error without code/message: {err!r:.200}"
    if "retry_after" in err and not (isinstance(err["retry_after"], (int, float)) and err["retry_after"] > 0):
        return f"bad retry_after: {err!r:.200}"
    if "fields" in err and not isinstance(err["fields"], dict):
        return f"bad fields: {err!r:.200}"
    if "details" in err and not isinstance(err["details"], dict):
        return f"bad details: {err!r:.200}"
    extra = set(err) - {"code", "message", "retry_after", "fields", "details"}
    if extra:
        return f"unexpected error keys {extra}"
    return None


# The codes docs/protocol.md documents; anything else seen is reported as a doc gap.
DOCUMENTED_ACK_CODES = frozenset(
    {
        "invalid",
        "too_large",
        "unknown_event",
        "rate_limited",
        "unavailable",
        "busy",
        "internal",
        "not_joined",
        "attempt_closed",
        "paused",
        "capacity",
        "forbidden",
        "not_found",
        "invalid_state",
        "not_open_yet",
        "closed",
        "too_late",
    }
)
