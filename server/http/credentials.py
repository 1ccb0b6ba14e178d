"""Who is calling: the one place a request's credential becomes `Claims`, and the CSRF rules.

Three credentials, one answer (`claims_of`):
- `Authorization: Bearer <signed token or static admin token>` (as before),
- `Authorization: Bearer pt_…`: an account's personal API token,
- the `proctor_session` cookie of a signed-in browser.

Looking a session or personal token up needs Postgres, and `claims_of` is synchronous (every
handler calls it first), so `credentials_middleware` resolves them before the handler runs
and leaves the result on the request. A cookie is a credential the browser sends by itself,
so an unsafe method authenticated by it must also carry `X-CSRF-Token` (the session's token,
read from `GET /auth/me`), come from our own origin (`Origin`, when sent, equals the public
URL's) and not be cross-site (`Sec-Fetch-Site`). Bearer tokens are never sent by a browser on
its own, so they need none of that.
"""

from __future__ import annotations

import hmac
import urllib.parse
from dataclasses import dataclass

from aiohttp import web

from rooms.accounts import TOKEN_PREFIX, Account, AccountService, SessionInfo
from rooms.errors import Forbidden, RoomsError, Unauthorized
from rooms.tokens import Claims
from server.keys import ACCOUNTS, SETTINGS, TOKENS

from .route import Handler

SESSION_COOKIE = "proctor_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Paths whose handlers call claims_of; pages and static files never look at credentials.
_AUTHENTICATED = ("/api/", "/auth/", "/admin/")


@dataclass(frozen=True, slots=True)
class Resolved:
    """What the middleware found: claims (or why not), and the session when by cookie."""

    claims: Claims | None
    error: RoomsError | None = None
    session: SessionInfo | None = None


RESOLVED: web.RequestKey[Resolved] = web.RequestKey("proctor_credentials", Resolved)


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send 'Authorization: Bearer <token>'", code="unauthorized")
    return token.strip()


def claims_of(request: web.Request) -> Claims:
    """The caller's claims, whichever credential they came with; 401 without one."""
    resolved: Resolved | None = request.get(RESOLVED)
    if resolved is not None:
        if resolved.error is not None:
            raise resolved.error
        if resolved.claims is not None:
            return resolved.claims
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("send 'Authorization: Bearer <token>' or sign in", code="unauthorized")
    return request.app[TOKENS].verify(token)


def session_of(request: web.Request) -> SessionInfo | None:
    """The browser session the request came with (None for bearer tokens)."""
    resolved: Resolved | None = request.get(RESOLVED)
    return resolved.session if resolved is not None else None


def public_origin(request: web.Request) -> str:
    parts = urllib.parse.urlsplit(request.app[SETTINGS].base_url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_same_origin(request: web.Request) -> None:
    """Refuse an unsafe request another site's page made the browser send."""
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        raise Forbidden("cross-site requests are refused", code="csrf")
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() != public_origin(request):
        raise Forbidden("the request's Origin is not this server's public URL", code="csrf")


def check_csrf(request: web.Request, session: SessionInfo) -> None:
    check_same_origin(request)
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent or not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
        raise Forbidden(f"send the session's {CSRF_HEADER} header (from GET /auth/me)", code="csrf")


async def _resolve(request: web.Request) -> Resolved | None:
    accounts = request.app[ACCOUNTS]
    try:
        token = bearer_token(request)
    except Unauthorized as exc:
        return Resolved(None, exc)
    if token is not None:
        if not token.startswith(TOKEN_PREFIX):
            return None  # a signed token: claims_of verifies it
        try:
            return Resolved(await accounts.token_claims(token))
        except RoomsError as exc:
            return Resolved(None, exc)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie is None:
        return None
    try:
        session, account = await accounts.session(cookie)
    except RoomsError as exc:
        return Resolved(None, exc)
    from rooms.accounts import SESSION_PREFIX, claims_of_account

    claims = claims_of_account(account, SESSION_PREFIX + session.id, session.expires_at)
    if request.method in UNSAFE:
        try:
            check_csrf(request, session)
        except RoomsError as exc:
            return Resolved(None, exc, session)
    return Resolved(claims, None, session)


@web.middleware
async def credentials_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(_AUTHENTICATED):
        resolved = await _resolve(request)
        if resolved is not None:
            request[RESOLVED] = resolved
    return await handler(request)


def set_session_cookie(request: web.Request, response: web.StreamResponse, secret: str, max_age: float) -> None:
    secure = request.app[SETTINGS].base_url.startswith("https://")
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(max_age),
        path="/",
        httponly=True,
        samesite="Lax",
        secure=secure,
    )


def clear_session_cookie(request: web.Request, response: web.StreamResponse) -> None:
    secure = request.app[SETTINGS].base_url.startswith("https://")
    response.del_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="Lax")


class AccountSessions:
    """server.http.oidc.SessionOpener over the accounts service: a single-sign-on callback
    opens the same server-side session a password sign-in does, and sets the same cookie."""

    def __init__(self, accounts: AccountService) -> None:
        self._accounts = accounts

    async def open_session(self, account: Account, request: web.Request, response: web.StreamResponse) -> None:
        new = await self._accounts.open_session(
            account, method="oidc", address=request.remote or "", user_agent=request.headers.get("User-Agent", "")
        )
        set_session_cookie(request, response, new.secret, self._accounts.absolute_seconds)
