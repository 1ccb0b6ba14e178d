"""Accounts on a real node (real Postgres): helpers to add people and sign them in."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import socketio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from rooms.accounts import Account, AccountRole
from rooms.tokens import ADMIN_STATIC
from server.keys import ACCOUNTS

ORIGIN = "http://proctor.test"  # tests/support/node.py's public URL
PASSWORD = "correct horse battery staple"


def app_of(client: TestClient[Any, Any]) -> web.Application:
    server = client.server
    assert isinstance(server, TestServer)
    return server.app


@dataclass
class SignedIn:
    account: Account
    cookie: str
    csrf: str
    session_id: str

    def headers(self, *, csrf: bool = True, origin: str | None = ORIGIN) -> dict[str, str]:
        headers = {"Cookie": f"proctor_session={self.cookie}"}
        if csrf:
            headers["X-CSRF-Token"] = self.csrf
        if origin is not None:
            headers["Origin"] = origin
        return headers


async def add_account(
    client: TestClient[Any, Any], role: AccountRole = "teacher", password: str | None = PASSWORD, email: str = ""
) -> Account:
    email = email or f"{role}-{uuid.uuid4().hex[:10]}@example.org"
    return await app_of(client)[ACCOUNTS].create(ADMIN_STATIC, email, f"A {role}", role, password)


async def sign_in(client: TestClient[Any, Any], email: str, password: str = PASSWORD) -> SignedIn:
    resp = await client.post("/auth/signin", json={"email": email, "password": password}, headers={"Origin": ORIGIN})
    body = await resp.json()
    assert resp.status == 200, body
    cookie = resp.cookies["proctor_session"].value
    # Every later request names its cookie explicitly (or not at all).
    client.session.cookie_jar.clear()
    account = await app_of(client)[ACCOUNTS].by_email(email)
    return SignedIn(account, cookie, body["csrf_token"], body["session"]["id"])


async def socket_connect(
    url: str, *, cookie: str | None = None, token: str | None = None
) -> tuple[socketio.AsyncClient, asyncio.Event, list[Any]]:
    """A /teacher socket on a cookie or a token: (client, set when it disconnects, connect errors)."""
    sio = socketio.AsyncClient(reconnection=False)
    gone = asyncio.Event()
    refused: list[Any] = []
    sio.on("disconnect", lambda *a: gone.set(), namespace="/teacher")
    sio.on("connect_error", lambda data=None: refused.append(data), namespace="/teacher")
    headers = {"Cookie": f"proctor_session={cookie}"} if cookie else {}
    auth = {"token": token} if token else None
    try:
        await sio.connect(url, namespaces=["/teacher"], headers=headers, auth=auth, transports=["websocket"])
    except socketio.exceptions.ConnectionError:
        await sio.disconnect()
    return sio, gone, refused
