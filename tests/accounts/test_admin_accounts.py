"""The admins' accounts routes on a real node (real Postgres): list, create, disable, enable."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.keys import POOL
from tests.support.accounts import PASSWORD, SignedIn, add_account, app_of, sign_in, socket_connect
from tests.support.node import bearer

Client = TestClient[Any, Any]


@pytest.fixture
async def admin(client: Client) -> SignedIn:
    account = await add_account(client, "admin")
    return await sign_in(client, account.email)


def new_email() -> str:
    return f"made-{uuid.uuid4().hex[:10]}@example.org"


async def audit_actions(client: Client, account_id: str) -> list[str]:
    rows = await app_of(client)[POOL].fetch(
        "SELECT action FROM audit_log WHERE target_type = 'account' AND target_id = $1 ORDER BY id", account_id
    )
    return [r["action"] for r in rows]


async def test_an_admin_lists_creates_disables_and_enables(client: Client, admin: SignedIn) -> None:
    email = new_email()
    resp = await client.post(
        "/api/accounts",
        json={"email": email, "name": "Grace", "role": "teacher", "password": PASSWORD},
        headers=admin.headers(),
    )
    assert resp.status == 201, await resp.text()
    made = await resp.json()
    assert made["email"] == email and made["role"] == "teacher" and made["state"] == "active"
    assert made["has_password"] is True and made["sso_identities"] == 0 and "password_hash" not in made
    # An SSO-only account: no password, so password sign-in can never work for it.
    sso = await (
        await client.post("/api/accounts", json={"email": new_email(), "role": "admin"}, headers=admin.headers())
    ).json()
    assert sso["has_password"] is False and sso["role"] == "admin"
    await app_of(client)[POOL].execute(
        "INSERT INTO account_identities (issuer, subject, account_id) VALUES ('https://idp.test', $1, $2::uuid)",
        uuid.uuid4().hex,
        sso["id"],
    )
    resp = await client.get("/api/accounts", headers=admin.headers())
    assert resp.status == 200
    listed = {a["id"]: a for a in (await resp.json())["accounts"]}
    assert listed[made["id"]]["name"] == "Grace" and listed[made["id"]]["created_at"]
    assert listed[sso["id"]]["sso_identities"] == 1 and listed[admin.account.id]["role"] == "admin"
    # The new teacher signs in, then is disabled: the session dies, sign-in is refused.
    grace = await sign_in(client, email)
    resp = await client.post(f"/api/accounts/{made['id']}/state", json={"state": "disabled"}, headers=admin.headers())
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["state"] == "disabled"
    assert (await client.get("/auth/me", headers=grace.headers())).status == 401
    refused = await client.post("/auth/signin", json={"email": email, "password": PASSWORD}, headers=grace.headers())
    assert refused.status == 403 and (await refused.json())["error"]["code"] == "account_disabled"
    listed = {
        a["id"]: a for a in (await (await client.get("/api/accounts", headers=admin.headers())).json())["accounts"]
    }
    assert listed[made["id"]]["state"] == "disabled"
    # Enabled again, it may sign in once more (its old sessions stay revoked).
    resp = await client.post(f"/api/accounts/{made['id']}/state", json={"state": "active"}, headers=admin.headers())
    assert resp.status == 200 and (await resp.json())["state"] == "active"
    assert (await client.get("/auth/me", headers=grace.headers())).status == 401
    await sign_in(client, email)
    # (A sign-in is audited against its session, not the account.)
    assert await audit_actions(client, made["id"]) == [
        "account.create",
        "account.disable",
        "signin.refused",
        "account.enable",
    ]


async def test_a_static_admin_token_may_manage_accounts_too(client: Client) -> None:
    # Automation (the static or a signed admin token) has no account but is an admin.
    resp = await client.post("/api/accounts", json={"email": new_email()}, headers=bearer())
    assert resp.status == 201, await resp.text()
    made = await resp.json()
    assert made["role"] == "teacher"
    resp = await client.post(f"/api/accounts/{made['id']}/state", json={"state": "disabled"}, headers=bearer())
    assert resp.status == 200


async def test_teachers_are_refused_by_session_and_by_personal_token(
    client: Client, teacher: SignedIn, admin: SignedIn
) -> None:
    minted = await (await client.post("/api/me/tokens", json={"name": "t"}, headers=teacher.headers())).json()
    target = admin.account.id
    for headers in (teacher.headers(), bearer(minted["token"])):
        calls = (
            ("GET", "/api/accounts", None),
            ("POST", "/api/accounts", {"email": new_email()}),
            ("POST", f"/api/accounts/{target}/state", {"state": "disabled"}),
        )
        for method, path, body in calls:
            resp = await client.request(method, path, json=body, headers=headers)
            data = await resp.json()
            assert resp.status == 403, (method, path, data)
            assert data["error"]["code"] == "forbidden", data
    # Nothing happened: the admin is still active.
    assert (await client.get("/auth/me", headers=admin.headers())).status == 200
    # And no credential at all is a 401.
    assert (await client.get("/api/accounts")).status == 401


async def test_disabling_closes_the_accounts_open_socket_within_5_s(
    client: Client, teacher: SignedIn, admin: SignedIn
) -> None:
    url = str(client.server.make_url("")).rstrip("/")
    sio, gone, _ = await socket_connect(url, cookie=teacher.cookie)
    assert sio.connected
    started = asyncio.get_running_loop().time()
    resp = await client.post(
        f"/api/accounts/{teacher.account.id}/state", json={"state": "disabled"}, headers=admin.headers()
    )
    assert resp.status == 200, await resp.text()
    await asyncio.wait_for(gone.wait(), timeout=5)
    assert asyncio.get_running_loop().time() - started < 5
    await sio.disconnect()
    again, _, refused = await socket_connect(url, cookie=teacher.cookie)
    assert not again.connected and refused
    await again.disconnect()


async def test_bad_bodies_unknown_ids_duplicates_and_disabling_oneself(client: Client, admin: SignedIn) -> None:
    bad_creates: list[Any] = [
        {},
        {"email": ""},
        {"email": new_email(), "role": "owner"},
        {"email": new_email(), "extra": 1},
        {"email": new_email(), "password": "short"},
        {"email": new_email(), "password": "x" * 1025},
        {"email": new_email(), "name": "n" * 201},
        {"email": "x" * 250 + "@example.org"},
        {"email": "not an email"},
        ["a list"],
    ]
    for body in bad_creates:
        resp = await client.post("/api/accounts", json=body, headers=admin.headers())
        data = await resp.json()
        assert resp.status == 400, (body, data)
        assert data["error"]["code"] and data["error"]["message"], data
    resp = await client.post("/api/accounts", data=b"{not json", headers=admin.headers())
    assert resp.status == 400
    target = (await add_account(client)).id
    for body in ({}, {"state": "gone"}, {"state": "active", "extra": True}, {"state": None}):
        resp = await client.post(f"/api/accounts/{target}/state", json=body, headers=admin.headers())
        assert resp.status == 400, (body, await resp.text())
    for unknown in (str(uuid.uuid4()), "not-a-uuid"):
        resp = await client.post(f"/api/accounts/{unknown}/state", json={"state": "active"}, headers=admin.headers())
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    taken = admin.account.email.upper()  # unique regardless of case
    resp = await client.post("/api/accounts", json={"email": taken}, headers=admin.headers())
    assert resp.status == 409 and (await resp.json())["error"]["fields"] == {"email": "taken"}
    resp = await client.post(
        f"/api/accounts/{admin.account.id}/state", json={"state": "disabled"}, headers=admin.headers()
    )
    assert resp.status == 409, await resp.text()
    assert (await client.get("/auth/me", headers=admin.headers())).status == 200
    # A cookie request without the CSRF token is refused before anything is created.
    email = new_email()
    resp = await client.post("/api/accounts", json={"email": email}, headers=admin.headers(csrf=False))
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "csrf"
    assert await app_of(client)[POOL].fetchval("SELECT count(*) FROM accounts WHERE email = $1", email) == 0
