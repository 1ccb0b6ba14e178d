"""Signing in over HTTP against a real node: cookies, CSRF, limits, sessions, bad input."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.keys import ACCOUNTS, POOL
from server.settings import Settings
from tests.support.accounts import ORIGIN, PASSWORD, SignedIn, add_account, app_of, sign_in
from tests.support.node import EXAM_BODY, bearer

Client = TestClient[Any, Any]


def assert_error_shape(body: Any, code: str | None = None) -> None:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    # `text`: the person's words in their language (server/http/messages.py); `details`: facts.
    assert set(body["error"]) <= {"code", "message", "fields", "retry_after", "text", "details"}, body
    assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str), body
    if code is not None:
        assert body["error"]["code"] == code, body


async def test_sign_in_sets_a_strict_session_cookie_and_me_names_the_account(client: Client) -> None:
    account = await add_account(client)
    resp = await client.post(
        "/auth/signin", json={"email": account.email.upper(), "password": PASSWORD}, headers={"Origin": ORIGIN}
    )
    assert resp.status == 200, await resp.text()
    header = resp.headers["Set-Cookie"]
    assert "proctor_session=" in header and "HttpOnly" in header and "SameSite=Lax" in header
    assert "Path=/" in header and "Secure" not in header  # the public URL is http here
    assert len(resp.cookies["proctor_session"].value) >= 43  # 32 random bytes
    client.session.cookie_jar.clear()
    me = await client.get("/auth/me", headers={"Cookie": f"proctor_session={resp.cookies['proctor_session'].value}"})
    body = await me.json()
    assert me.status == 200 and body["sub"] == account.id and body["role"] == "teacher" and body["via"] == "session"
    assert body["csrf_token"]
    # Only the cookie's hash is stored.
    stored = await app_of(client)[POOL].fetchval(
        "SELECT count(*) FROM account_sessions WHERE token_hash = $1", resp.cookies["proctor_session"].value.encode()
    )
    assert stored == 0


async def test_cookie_is_secure_when_the_public_url_is_https(settings: Settings) -> None:
    app = create_app(settings.replace(public_url="https://proctor.test"))
    async with TestClient(TestServer(app)) as client:
        account = await add_account(client)
        resp = await client.post(
            "/auth/signin",
            json={"email": account.email, "password": PASSWORD},
            headers={"Origin": "https://proctor.test"},
        )
        assert resp.status == 200
        assert "Secure" in resp.headers["Set-Cookie"]


async def test_unknown_email_and_wrong_password_get_one_answer_and_both_hash(client: Client) -> None:
    account = await add_account(client)
    passwords = app_of(client)[ACCOUNTS].passwords
    answers, times = [], []
    for email, password in ((account.email, "wrong password!"), ("nobody-here@example.org", "wrong password!")):
        before = passwords.dummy_checks
        start = time.perf_counter()
        resp = await client.post(
            "/auth/signin", json={"email": email, "password": password}, headers={"Origin": ORIGIN}
        )
        times.append(time.perf_counter() - start)
        answers.append((resp.status, await resp.json()))
        ran_dummy = passwords.dummy_checks - before
        assert ran_dummy == (1 if email.startswith("nobody") else 0)
    assert answers[0] == answers[1]
    assert answers[0][0] == 401
    assert_error_shape(answers[0][1], "bad_credentials")
    # Both paths ran an Argon2 verification: neither answer is an order of magnitude faster.
    assert times[1] > times[0] / 5 and times[0] > times[1] / 5, times
    # An account without a password (SSO only) answers the same, through the dummy hash too.
    sso = await add_account(client, password=None)
    resp = await client.post(
        "/auth/signin", json={"email": sso.email, "password": "anything!!"}, headers={"Origin": ORIGIN}
    )
    assert (resp.status, await resp.json()) == answers[0]


@pytest.fixture
def settings_limited(settings: Settings) -> Settings:
    return settings.replace(signin_account_failures=3, signin_address_attempts=6)


async def test_failures_per_account_then_per_address_answer_429_with_retry(settings_limited: Settings) -> None:
    async with TestClient(TestServer(create_app(settings_limited))) as client:
        account = await add_account(client)
        statuses = []
        for _ in range(4):
            resp = await client.post(
                "/auth/signin", json={"email": account.email, "password": "nope nope"}, headers={"Origin": ORIGIN}
            )
            statuses.append(resp.status)
        assert statuses == [401, 401, 401, 429]
        body = await resp.json()
        assert_error_shape(body, "rate_limited")
        assert int(resp.headers["Retry-After"]) > 0 and 800 < body["error"]["retry_after"] <= 900
        # Even the right password waits now (the limit is checked before the password).
        resp = await client.post(
            "/auth/signin", json={"email": account.email, "password": PASSWORD}, headers={"Origin": ORIGIN}
        )
        assert resp.status == 429
        # Per address: 6 counted attempts a minute whatever the emails (3 counted above; refused
        # ones do not count), so 3 more are answered and the next is refused.
        statuses = []
        for i in range(4):
            resp = await client.post(
                "/auth/signin", json={"email": f"x{i}@example.org", "password": "nope nope"}, headers={"Origin": ORIGIN}
            )
            statuses.append(resp.status)
        assert statuses == [401, 401, 401, 429]
        assert "Retry-After" in resp.headers and (await resp.json())["error"]["code"] == "rate_limited"


async def test_csrf_refused_without_or_with_wrong_header_or_foreign_origin(client: Client, teacher: SignedIn) -> None:
    cases = [
        teacher.headers(csrf=False),
        {**teacher.headers(csrf=False), "X-CSRF-Token": "not-the-token"},
        teacher.headers(origin="https://evil.example"),
        {**teacher.headers(), "Sec-Fetch-Site": "cross-site"},
    ]
    for headers in cases:
        resp = await client.post("/api/exams", json=EXAM_BODY, headers=headers)
        assert resp.status == 403, (headers, await resp.text())
        assert_error_shape(await resp.json(), "csrf")
    # Safe methods need no CSRF token; the right header and our origin (or none) pass.
    assert (await client.get("/auth/me", headers=teacher.headers(csrf=False))).status == 200
    resp = await client.post("/api/exams", json=EXAM_BODY, headers=teacher.headers())
    assert resp.status == 201, await resp.text()
    resp = await client.post("/api/exams", json=EXAM_BODY, headers=teacher.headers(origin=None))
    assert resp.status == 201
    # A bearer token needs no CSRF header.
    assert (await client.post("/api/exams", json=EXAM_BODY, headers=bearer())).status == 201
    # Sign-in itself refuses another site's form (login CSRF).
    resp = await client.post(
        "/auth/signin",
        json={"email": teacher.account.email, "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert resp.status == 403


async def test_a_session_teacher_reaches_rooms_of_exams_they_created(client: Client, teacher: SignedIn) -> None:
    exam = await (await client.post("/api/exams", json=EXAM_BODY, headers=teacher.headers())).json()
    room = await client.post(
        f"/api/exams/{exam['id']}/rooms", json={"name": "A", "seats": 3}, headers=teacher.headers()
    )
    assert room.status == 201, await room.text()
    room_id = (await room.json())["id"]
    assert (await client.get(f"/api/rooms/{room_id}/attempts", headers=teacher.headers())).status == 200
    other = await sign_in(client, (await add_account(client)).email)
    assert (await client.get(f"/api/rooms/{room_id}/attempts", headers=other.headers())).status == 403


async def test_tampered_expired_and_revoked_cookies_are_refused(client: Client, teacher: SignedIn) -> None:
    tampered = teacher.cookie[:-2] + ("AA" if not teacher.cookie.endswith("AA") else "BB")
    for cookie in (tampered, "", "x" * 500):
        resp = await client.get("/auth/me", headers={"Cookie": f"proctor_session={cookie}"})
        assert resp.status == 401, cookie
        assert_error_shape(await resp.json())
    pool = app_of(client)[POOL]
    # Idle too long: past the idle timeout since the last request.
    idle = await sign_in(client, teacher.account.email)
    await pool.execute(
        "UPDATE account_sessions SET last_seen_at = now() - interval '9 hours' WHERE id = $1::uuid", idle.session_id
    )
    assert (await client.get("/auth/me", headers=idle.headers())).status == 401
    # Past the absolute timeout.
    old = await sign_in(client, teacher.account.email)
    await pool.execute(
        "UPDATE account_sessions SET expires_at = now() - interval '1 second' WHERE id = $1::uuid", old.session_id
    )
    assert (await client.get("/auth/me", headers=old.headers())).status == 401
    # Revoked by its owner from another session.
    resp = await client.delete(
        f"/auth/sessions/{teacher.session_id}", headers=(await sign_in(client, teacher.account.email)).headers()
    )
    assert resp.status == 200, await resp.text()
    assert (await client.get("/auth/me", headers=teacher.headers())).status == 401


async def test_list_revoke_and_sign_out_everywhere(client: Client, teacher: SignedIn) -> None:
    second = await sign_in(client, teacher.account.email)
    stranger = await sign_in(client, (await add_account(client)).email)
    listed = await (await client.get("/auth/sessions", headers=teacher.headers())).json()
    ids = {s["id"] for s in listed["sessions"]}
    assert {teacher.session_id, second.session_id} <= ids and stranger.session_id not in ids
    assert [s["current"] for s in listed["sessions"] if s["id"] == teacher.session_id] == [True]
    # Nobody revokes someone else's session.
    resp = await client.delete(f"/auth/sessions/{stranger.session_id}", headers=teacher.headers())
    assert resp.status == 404
    resp = await client.post("/auth/signout-everywhere", headers=second.headers())
    assert resp.status == 200 and (await resp.json())["revoked"] >= 2
    for session in (teacher, second):
        assert (await client.get("/auth/me", headers=session.headers())).status == 401
    assert (await client.get("/auth/me", headers=stranger.headers())).status == 200
    # Every step is in the audit log.
    actions = {
        r["action"]
        for r in await app_of(client)[POOL].fetch(
            "SELECT action FROM audit_log WHERE actor_id = $1", teacher.account.id
        )
    }
    assert {"signin", "session.revoke_all"} <= actions


async def test_sign_out_ends_the_session(client: Client, teacher: SignedIn) -> None:
    resp = await client.post("/auth/signout", headers=teacher.headers())
    assert resp.status == 200 and "proctor_session=" in resp.headers["Set-Cookie"]
    assert (await client.get("/auth/me", headers=teacher.headers())).status == 401


async def test_a_disabled_account_is_refused(client: Client, teacher: SignedIn) -> None:
    from rooms.tokens import ADMIN_STATIC

    await app_of(client)[ACCOUNTS].set_state(ADMIN_STATIC, teacher.account.email, "disabled")
    assert (await client.get("/auth/me", headers=teacher.headers())).status == 401
    resp = await client.post(
        "/auth/signin", json={"email": teacher.account.email, "password": PASSWORD}, headers={"Origin": ORIGIN}
    )
    assert resp.status == 403
    assert_error_shape(await resp.json(), "account_disabled")
    resp = await client.post(
        "/auth/signin", json={"email": teacher.account.email, "password": "wrong one!"}, headers={"Origin": ORIGIN}
    )
    assert resp.status == 401  # a wrong password learns nothing about the account's state


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'{"email": "a@b.example"}',
        b'{"email": 5, "password": "x"}',
        b'{"email": "a@b.example", "password": "pw", "admin": true}',
        ('{"email": "' + "a" * 300 + '@b.example", "password": "pw"}').encode(),
        ('{"email": "a@b.example", "password": "' + "p" * 1025 + '"}').encode(),
        b'{"email": "a@b.example", "password": "pw\\u0000"}',
    ],
)
async def test_bad_sign_in_bodies_are_400_in_the_error_shape(client: Client, body: bytes) -> None:
    resp = await client.post("/auth/signin", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 400, await resp.text()
    assert_error_shape(await resp.json(), "invalid")


async def test_an_oversized_sign_in_body_is_413_json(client: Client) -> None:
    import io

    resp = await client.post(
        "/auth/signin",
        data=io.BytesIO(b'{"email": "' + b"a" * (2 << 20) + b'"}'),
        headers={"Content-Type": "application/json"},
    )
    assert resp.status == 413
    assert_error_shape(await resp.json(), "too_large")


async def test_passwords_are_never_logged(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    account = await add_account(client)
    caplog.set_level("DEBUG")
    await client.post(
        "/auth/signin", json={"email": account.email, "password": "s3cret-wrong-value"}, headers={"Origin": ORIGIN}
    )
    await sign_in(client, account.email)
    assert "s3cret-wrong-value" not in caplog.text and PASSWORD not in caplog.text
