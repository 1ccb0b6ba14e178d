"""Signing in and what an account manages itself: sessions (`/auth/*`) and personal tokens.

`/auth/*` is the browser's side (the sign-in page posts JSON here; the answer sets the
session cookie); `/api/me/tokens` is in `ROUTES` like every API route, so the OpenAPI file,
the access matrix and the REST fuzzer see it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from rooms.accounts import MAX_EMAIL, MAX_NAME, NewSession
from rooms.passwords import MAX_PASSWORD
from server.keys import ACCOUNTS

from .credentials import (
    check_same_origin,
    claims_of,
    clear_session_cookie,
    session_of,
    set_session_cookie,
)
from .errors import parse_body
from .route import Route

_Email = Annotated[str, Field(min_length=3, max_length=MAX_EMAIL)]


class SignIn(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"example": {"email": "ada@example.org", "password": "correct horse battery"}},
    )

    email: _Email
    password: str = Field(min_length=1, max_length=MAX_PASSWORD)


class Setup(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "example": {
                "code": "from-the-start-up-link",
                "email": "root@example.org",
                "name": "Root",
                "password": "correct horse battery",
            }
        },
    )

    code: str = Field(min_length=1, max_length=128)
    email: _Email
    name: str = Field(default="", max_length=MAX_NAME)
    password: str = Field(min_length=8, max_length=MAX_PASSWORD)


class TokenCreate(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"example": {"name": "grading script", "ttl_days": 30}},
    )

    name: str = Field(min_length=1, max_length=100)
    ttl_days: float | None = Field(default=90, gt=0, le=3650, description="null: never expires")


def _address(request: web.Request) -> str:
    return request.remote or ""


def _signed_in(request: web.Request, new: NewSession, status: int = 200) -> web.Response:
    response = web.json_response(
        {
            "account": new.account.to_json(),
            "csrf_token": new.session.csrf_token,
            "session": new.session.to_json(new.session.id),
        },
        status=status,
        headers={"Cache-Control": "no-store"},
    )
    set_session_cookie(request, response, new.secret, request.app[ACCOUNTS].absolute_seconds)
    return response


async def sign_in(request: web.Request) -> web.Response:
    check_same_origin(request)  # login CSRF: another site must not sign a browser into its account
    body = await parse_body(request, SignIn)
    new = await request.app[ACCOUNTS].sign_in_password(
        body.email,
        body.password,
        address=_address(request),
        user_agent=request.headers.get("User-Agent", ""),
    )
    return _signed_in(request, new)


async def setup_first_admin(request: web.Request) -> web.Response:
    check_same_origin(request)
    body = await parse_body(request, Setup)
    new = await request.app[ACCOUNTS].complete_setup(
        body.code,
        body.email,
        body.name,
        body.password,
        address=_address(request),
    )
    return _signed_in(request, new, status=201)


async def me(request: web.Request) -> web.Response:
    claims = claims_of(request)
    session = session_of(request)
    body: dict[str, object] = {"role": claims.role, "sub": claims.sub, "name": claims.name, "via": "token"}
    if session is not None:
        body.update(
            via="session",
            csrf_token=session.csrf_token,
            session_id=session.id,
            expires_at=session.expires_at.isoformat(),
        )
    elif claims.token_id.startswith("token:"):
        body["via"] = "personal_token"
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def sign_out(request: web.Request) -> web.Response:
    claims = claims_of(request)
    session = session_of(request)
    if session is not None:
        await request.app[ACCOUNTS].revoke_session(claims, session.id)
    response = web.json_response({"signed_out": True})
    clear_session_cookie(request, response)
    return response


async def list_sessions(request: web.Request) -> web.Response:
    claims = claims_of(request)
    current = session_of(request)
    sessions = await request.app[ACCOUNTS].sessions(claims)
    return web.json_response({"sessions": [s.to_json(current.id if current else None) for s in sessions]})


async def revoke_session(request: web.Request) -> web.Response:
    claims = claims_of(request)
    session_id = request.match_info["session_id"]
    await request.app[ACCOUNTS].revoke_session(claims, session_id)
    return web.json_response({"session_id": session_id, "revoked": True})


async def sign_out_everywhere(request: web.Request) -> web.Response:
    claims = claims_of(request)
    count = await request.app[ACCOUNTS].sign_out_everywhere(claims)
    response = web.json_response({"revoked": count})
    clear_session_cookie(request, response)
    return response


async def list_tokens(request: web.Request) -> web.Response:
    claims = claims_of(request)
    tokens = await request.app[ACCOUNTS].tokens(claims)
    return web.json_response({"tokens": [t.to_json() for t in tokens]})


async def create_personal_token(request: web.Request) -> web.Response:
    claims = claims_of(request)
    claims.require_role("admin", "teacher")
    body = await parse_body(request, TokenCreate)
    info, secret = await request.app[ACCOUNTS].mint_token(claims, body.name, body.ttl_days)
    # Shown once: only its hash is stored.
    return web.json_response({**info.to_json(), "token": secret}, status=201, headers={"Cache-Control": "no-store"})


async def revoke_personal_token(request: web.Request) -> web.Response:
    claims = claims_of(request)
    token_id = request.match_info["token_id"]
    await request.app[ACCOUNTS].revoke_token(claims, token_id)
    return web.json_response({"token_id": token_id, "revoked": True, "at": datetime.now(UTC).isoformat()})


_ACCOUNT_ROLES = ("admin", "teacher")
ACCOUNT_ROUTES: tuple[Route, ...] = (
    Route(
        "GET",
        "/api/me/tokens",
        list_tokens,
        "List my personal API tokens (an account's session or token)",
        _ACCOUNT_ROLES,
    ),
    Route(
        "POST",
        "/api/me/tokens",
        create_personal_token,
        "Mint a personal API token (shown once; use as Authorization: Bearer pt_…)",
        _ACCOUNT_ROLES,
        TokenCreate,
        201,
    ),
    Route(
        "DELETE", "/api/me/tokens/{token_id}", revoke_personal_token, "Revoke one of my personal tokens", _ACCOUNT_ROLES
    ),
)
# The browser's side: public (sign-in, setup) or about the caller's own sessions.
AUTH_ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/auth/signin",
        sign_in,
        "Sign in with email and password (sets the session cookie)",
        ("anyone",),
        SignIn,
        responses={429: "too many attempts (Retry-After)"},
    ),
    Route(
        "POST",
        "/auth/setup",
        setup_first_admin,
        "Create the first admin with the start-up link's code",
        ("anyone",),
        Setup,
        201,
    ),
    Route("GET", "/auth/me", me, "Who I am, and my session's CSRF token", _ACCOUNT_ROLES),
    Route("POST", "/auth/signout", sign_out, "Sign out (revokes this session)", _ACCOUNT_ROLES),
    Route("GET", "/auth/sessions", list_sessions, "List my sessions", _ACCOUNT_ROLES),
    Route("DELETE", "/auth/sessions/{session_id}", revoke_session, "Revoke one of my sessions", _ACCOUNT_ROLES),
    Route("POST", "/auth/signout-everywhere", sign_out_everywhere, "Revoke all my sessions", _ACCOUNT_ROLES),
)


def add_auth_routes(app: web.Application) -> None:
    for route in AUTH_ROUTES:
        app.router.add_route(route.method, route.path, route.handler)


__all__ = ["ACCOUNT_ROUTES", "AUTH_ROUTES", "add_auth_routes"]
