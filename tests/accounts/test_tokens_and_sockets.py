"""Personal API tokens, the first-admin setup link, and teachers' sockets on a session."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio
from aiohttp.test_utils import TestClient

from rooms.tokens import ADMIN_STATIC
from server.keys import ACCOUNTS, POOL
from tests.support.accounts import ORIGIN, PASSWORD, SignedIn, add_account, app_of, sign_in, socket_connect
from tests.support.node import EXAM_BODY, bearer

Client = TestClient[Any, Any]


async def test_personal_tokens_mint_list_use_revoke(client: Client, teacher: SignedIn) -> None:
    resp = await client.post("/api/me/tokens", json={"name": "grading"}, headers=teacher.headers())
    assert resp.status == 201, await resp.text()
    minted = await resp.json()
    secret = minted["token"]
    assert secret.startswith("pt_") and len(secret) > 40
    # Stored hashed: the secret is nowhere in the table.
    rows = await app_of(client)[POOL].fetch(
        "SELECT token_hash::text, prefix FROM personal_tokens WHERE id = $1::uuid", minted["id"]
    )
    assert rows and secret not in rows[0]["token_hash"] and rows[0]["prefix"] == secret[:10]
    # Usable as a bearer token, no CSRF header needed; it acts as the account.
    exam = await client.post("/api/exams", json=EXAM_BODY, headers=bearer(secret))
    assert exam.status == 201, await exam.text()
    me = await (await client.get("/auth/me", headers=bearer(secret))).json()
    assert me["sub"] == teacher.account.id and me["via"] == "personal_token"
    listed = await (await client.get("/api/me/tokens", headers=bearer(secret))).json()
    assert [t["id"] for t in listed["tokens"]] == [minted["id"]] and "token" not in listed["tokens"][0]
    # Another account neither sees nor revokes it.
    other = await sign_in(client, (await add_account(client)).email)
    assert (await (await client.get("/api/me/tokens", headers=other.headers())).json())["tokens"] == []
    assert (await client.delete(f"/api/me/tokens/{minted['id']}", headers=other.headers())).status == 404
    # A signed (non-account) token has no personal tokens.
    assert (await client.get("/api/me/tokens", headers=bearer())).status == 403
    resp = await client.delete(f"/api/me/tokens/{minted['id']}", headers=teacher.headers())
    assert resp.status == 200
    refused = await client.get("/auth/me", headers=bearer(secret))
    assert refused.status == 401 and (await refused.json())["error"]["code"] == "token_revoked"
    actions = [
        r["action"]
        for r in await app_of(client)[POOL].fetch(
            "SELECT action FROM audit_log WHERE target_id = $1 ORDER BY id", minted["id"]
        )
    ]
    assert actions == ["personal_token.create", "personal_token.revoke"]


async def test_a_made_up_personal_token_and_bad_bodies(client: Client, teacher: SignedIn) -> None:
    resp = await client.get("/api/me/tokens", headers=bearer("pt_" + "A" * 43))
    assert resp.status == 401
    for body in ({}, {"name": ""}, {"name": "x", "ttl_days": 0}, {"name": "x", "extra": 1}, {"name": "x" * 101}):
        resp = await client.post("/api/me/tokens", json=body, headers=teacher.headers())
        assert resp.status == 400, (body, await resp.text())
    assert (await client.delete("/api/me/tokens/not-a-uuid", headers=teacher.headers())).status == 404


async def test_first_admin_setup_code_is_single_use(client: Client) -> None:
    accounts = app_of(client)[ACCOUNTS]
    pool = app_of(client)[POOL]
    # The shared test database has accounts from other tests: start from none, in a transaction-free way.
    await pool.execute("DELETE FROM accounts")
    code = await accounts.new_setup_code()
    assert code is not None
    assert await pool.fetchval("SELECT count(*) FROM setup_codes WHERE code_hash = $1", code.encode()) == 0
    body = {"code": code, "email": "root@example.org", "name": "Root", "password": PASSWORD}
    resp = await client.post("/auth/setup", json={**body, "code": "guess"}, headers={"Origin": ORIGIN})
    assert resp.status == 403
    resp = await client.post("/auth/setup", json=body, headers={"Origin": ORIGIN})
    assert resp.status == 201, await resp.text()
    data = await resp.json()
    assert data["account"]["role"] == "admin" and "proctor_session" in resp.cookies
    again = await client.post("/auth/setup", json={**body, "email": "second@example.org"}, headers={"Origin": ORIGIN})
    assert again.status == 403 and (await again.json())["error"]["code"] == "setup_invalid"
    assert await accounts.new_setup_code() is None  # accounts exist: no more links


async def test_a_teacher_socket_connects_with_the_cookie_and_closes_when_revoked(
    client: Client, teacher: SignedIn
) -> None:
    url = str(client.server.make_url("")).rstrip("/")
    sio, gone, _ = await socket_connect(url, cookie=teacher.cookie)
    assert sio.connected
    # The socket acts as the account: watching a room it may not see is refused, not unauthorised.
    ack = await sio.call("watch", {"room_id": "00000000-0000-0000-0000-000000000000"}, namespace="/teacher")
    assert ack["ok"] is False and ack["error"]["code"] in ("not_found", "forbidden")
    other = await sign_in(client, teacher.account.email)
    started = asyncio.get_running_loop().time()
    resp = await client.delete(f"/auth/sessions/{teacher.session_id}", headers=other.headers())
    assert resp.status == 200
    await asyncio.wait_for(gone.wait(), timeout=5)
    assert asyncio.get_running_loop().time() - started < 5
    await sio.disconnect()
    # And the revoked cookie cannot connect again.
    sio, _, refused = await socket_connect(url, cookie=teacher.cookie)
    assert not sio.connected and refused
    await sio.disconnect()


async def test_disabling_an_account_closes_its_sockets_and_tokens_connect_too(
    client: Client, teacher: SignedIn
) -> None:
    url = str(client.server.make_url("")).rstrip("/")
    minted = await (await client.post("/api/me/tokens", json={"name": "bot"}, headers=teacher.headers())).json()
    by_cookie, cookie_gone, _ = await socket_connect(url, cookie=teacher.cookie)
    by_token, token_gone, _ = await socket_connect(url, token=minted["token"])
    assert by_cookie.connected and by_token.connected
    await app_of(client)[ACCOUNTS].set_state(ADMIN_STATIC, teacher.account.email, "disabled")
    await asyncio.wait_for(asyncio.gather(cookie_gone.wait(), token_gone.wait()), timeout=5)
    for sio in (by_cookie, by_token):
        await sio.disconnect()


async def test_no_cookie_and_a_bad_cookie_are_refused(client: Client) -> None:
    url = str(client.server.make_url("")).rstrip("/")
    for cookie in (None, "made-up-cookie"):
        sio, _, refused = await socket_connect(url, cookie=cookie)
        assert not sio.connected and refused, cookie
        await sio.disconnect()


async def test_another_sites_page_cannot_open_a_socket_with_the_cookie(client: Client, teacher: SignedIn) -> None:
    # Cross-site WebSocket hijacking: the browser would send the cookie; engine.io's Origin check refuses.
    url = str(client.server.make_url("")).rstrip("/")
    sio = socketio.AsyncClient(reconnection=False)
    try:
        await sio.connect(
            url,
            namespaces=["/teacher"],
            transports=["websocket"],
            headers={"Cookie": f"proctor_session={teacher.cookie}", "Origin": "https://evil.example"},
        )
    except socketio.exceptions.ConnectionError:
        pass
    assert not sio.connected
    await sio.disconnect()
