"""Teachers sign in with single sign-on: OpenID Connect's authorization code flow with PKCE.

- `GET /auth/config` — public: whether the sign-in page shows the SSO button (js/sso.js).
- `GET /auth/oidc/login` — a fresh state, nonce and PKCE verifier, kept in a short-lived
  HttpOnly, SameSite=Lax cookie signed with the node secret (any node of a cluster can read
  it back; nothing is stored), then a redirect to the provider's authorization endpoint.
- `GET /auth/oidc/callback` — the state checked against the cookie, the code exchanged with
  the verifier and the client's credentials, the id_token validated (server/oidc_client.py),
  the email verified and its domain allowed; then the accounts service signs the teacher in
  (found by issuer and subject, linked by verified email, or created), a session is opened
  and the browser goes to `/teacher/`.

Every failure is an HTML page with a 400, 403 or 502 (never a 500), opens no session, and is
audited like every success (actor: the provider's subject, `anonymous` before one is known).
The accounts and sessions come in through one constructor argument (`TeacherSignIn`), wired
in server/wire.py; without it single sign-on stays off.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from aiohttp import web

from rooms.errors import RoomsError
from rooms.tokens import Claims

from ..oidc_client import OidcClient, SignInError, is_admin, refusal
from ..settings import Settings
from .errors import STATUS
from .pages import secure

logger = logging.getLogger(__name__)

LOGIN_COOKIE = "proctor_oidc_login"
LOGIN_PATH = "/auth/oidc/login"
CALLBACK_PATH = "/auth/oidc/callback"
SIGNIN_PAGE = "/teacher/signin.html"
AFTER_SIGNIN = "/teacher/"
# Long enough to type a password and pass a second factor, short enough that a stolen cookie dies.
LOGIN_SECONDS = 600

AccountT = TypeVar("AccountT")
AccountOut = TypeVar("AccountOut", covariant=True)
AccountIn = TypeVar("AccountIn", contravariant=True)


class SsoAccounts(Protocol[AccountOut]):
    """The accounts service (rooms/accounts.py): finds, links or creates the teacher."""

    async def sign_in_sso(self, issuer: str, subject: str, email: str, name: str, admin: bool) -> AccountOut:
        """`email` is verified. Raises rooms.errors.Forbidden for a disabled account."""
        ...


class SessionOpener(Protocol[AccountIn]):
    """Opens a server-side session for `account` and sets its cookies on `response`."""

    async def open_session(self, account: AccountIn, request: web.Request, response: web.StreamResponse) -> None: ...


@dataclass(frozen=True)
class TeacherSignIn(Generic[AccountT]):
    accounts: SsoAccounts[AccountT]
    sessions: SessionOpener[AccountT]


class Auditor(Protocol):
    """rooms/store/audit.py AuditLog."""

    async def record(
        self,
        claims: Claims,
        action: str,
        target_type: str,
        target_id: str,
        details: dict[str, Any] | None = None,
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class LoginState:
    state: str
    nonce: str
    verifier: str
    expires_at: float


class LoginCookie:
    """The login's state, nonce and verifier in one HMAC-signed cookie value."""

    def __init__(self, secret: str) -> None:
        # A key of its own: a login cookie can never pass for a token or a live-view session.
        self._key = hmac.new(secret.encode(), b"proctor oidc login cookie v1", hashlib.sha256).digest()

    def seal(self, login: LoginState) -> str:
        payload = _b64(json.dumps([login.state, login.nonce, login.verifier, login.expires_at]).encode())
        return payload + "." + _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def open(self, value: str | None) -> LoginState:
        payload, _, mac = (value or "").partition(".")
        expected = _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())
        if not value or not hmac.compare_digest(mac.encode(), expected.encode()):
            raise SignInError(
                "no_login", "This sign-in was not started here, or its cookie is gone. Start the sign-in again."
            )
        state, nonce, verifier, expires_at = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        if time.time() > float(expires_at):
            raise SignInError("login_expired", "This sign-in took too long. Start it again.")
        return LoginState(str(state), str(nonce), str(verifier), float(expires_at))


def _printable(text: str, limit: int) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in text[:limit])


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class OidcRoutes:
    """The three routes; enabled when the provider is configured and accounts are wired."""

    def __init__(
        self,
        settings: Settings,
        client: OidcClient | None,
        audit: Auditor,
        sign_in: TeacherSignIn[Any] | None,
    ) -> None:
        self.client = client
        self._sign_in = sign_in
        self._audit = audit
        self._settings = settings
        self._cookie = LoginCookie(settings.secret.get_secret_value())
        self._secure = settings.base_url.startswith("https://")
        self._domains = settings.oidc_allowed_domains
        self._admin_rule = settings.oidc_admin_rule

    @property
    def enabled(self) -> bool:
        return self.client is not None and self._sign_in is not None

    async def config(self, request: web.Request) -> web.Response:
        body = {"sso": {"enabled": self.enabled, "login_url": LOGIN_PATH if self.enabled else None}}
        response = web.json_response(body, headers={"Cache-Control": "no-cache"})
        secure(response, self._settings)
        return response

    async def login(self, request: web.Request) -> web.StreamResponse:
        try:
            client = self._client()
            login = LoginState(
                secrets.token_urlsafe(32),
                secrets.token_urlsafe(32),
                secrets.token_urlsafe(64),
                time.time() + LOGIN_SECONDS,
            )
            location = await client.authorization_url(login.state, login.nonce, login.verifier)
        except SignInError as exc:
            await self._record_failure(request, exc, {})
            return _error_page(exc, self._settings)
        response = web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})
        response.set_cookie(
            LOGIN_COOKIE,
            self._cookie.seal(login),
            max_age=LOGIN_SECONDS,
            path="/auth/oidc",
            httponly=True,
            samesite="Lax",
            secure=self._secure,
        )
        return secure(response, self._settings)

    async def callback(self, request: web.Request) -> web.StreamResponse:
        seen: dict[str, Any] = {}
        try:
            response = await self._finish(request, seen)
        except SignInError as exc:
            await self._record_failure(request, exc, seen)
            response = _error_page(exc, self._settings)
        except RoomsError as exc:  # from the accounts service: a disabled account is Forbidden
            failure = SignInError(f"account_{exc.code}", exc.message, STATUS.get(exc.category, 400))
            await self._record_failure(request, failure, seen)
            response = _error_page(failure, self._settings)
        # Used once, whatever happened: the next attempt starts with a fresh state.
        response.del_cookie(LOGIN_COOKIE, path="/auth/oidc")
        return response

    async def _finish(self, request: web.Request, seen: dict[str, Any]) -> web.StreamResponse:
        client = self._client()
        login = self._cookie.open(request.cookies.get(LOGIN_COOKIE))
        query = request.query
        if not hmac.compare_digest(query.get("state", "").encode(), login.state.encode()):
            raise SignInError(
                "state_mismatch",
                "This answer from the identity provider belongs to another sign-in. Start the sign-in again.",
            )
        if "error" in query:
            # The provider's words, but they come through the address bar: printable and short.
            error = _printable(query["error"], 80)
            seen["provider_error"] = error
            description = _printable(query.get("error_description", ""), 300)
            raise SignInError(
                "provider_error",
                f"The identity provider answered “{error}”" + (f": {description}" if description else "."),
                403 if error in ("access_denied", "consent_required", "login_required") else 400,
            )
        metadata = await client.metadata()
        # RFC 9207: a callback meant for another provider (a mix-up) carries its issuer.
        if ("iss" in query or metadata.iss_parameter) and query.get("iss") != metadata.issuer:
            raise SignInError("wrong_issuer", "This answer comes from another identity provider.")
        code = query.get("code", "")
        if not code:
            raise SignInError("no_code", "The identity provider's answer has no sign-in code.")
        identity = await client.identity(await client.exchange(code, login.verifier), login.nonce)
        seen.update(subject=identity.subject, email=identity.email)
        refused = refusal(identity, self._domains)
        if refused is not None:
            raise refused
        admin = is_admin(identity.claims, self._admin_rule)
        assert self._sign_in is not None  # _client() checked
        account = await self._sign_in.accounts.sign_in_sso(
            identity.issuer, identity.subject, identity.email, identity.name, admin
        )
        response = web.Response(status=302, headers={"Location": AFTER_SIGNIN, "Cache-Control": "no-store"})
        try:
            await self._record(
                request,
                identity.subject,
                "signin.oidc",
                {"subject": identity.subject, "email": identity.email, "admin": admin},
            )
        except Exception:
            # No sign-in without its audit entry (and Postgres down would stop the accounts anyway).
            logger.exception("could not audit an OIDC sign-in")
            raise SignInError("unavailable", "The sign-in could not be recorded. Try again in a moment.", 503) from None
        await self._sign_in.sessions.open_session(account, request, response)
        return secure(response, self._settings)

    def _client(self) -> OidcClient:
        if self.client is None or self._sign_in is None:
            raise SignInError("not_configured", "Single sign-on is not configured on this server.", 404)
        return self.client

    async def _record_failure(self, request: web.Request, exc: SignInError, seen: dict[str, Any]) -> None:
        logger.info("OIDC sign-in refused: %s (%s)", exc.reason, exc.message)
        try:
            await self._record(
                request, str(seen.get("subject") or "anonymous"), "signin.oidc.refused", {"reason": exc.reason, **seen}
            )
        except Exception:  # the page must still say what went wrong
            logger.exception("could not audit a refused OIDC sign-in")

    async def _record(self, request: web.Request, subject: str, action: str, details: dict[str, Any]) -> None:
        issuer = self.client.issuer if self.client is not None else ""
        actor = Claims(role="teacher", sub=subject, name=str(details.get("email", "")))
        await self._audit.record(actor, action, "oidc", issuer, {**details, "address": request.remote or ""})


_TITLES = {
    400: "Sign-in failed",
    403: "Sign-in refused",
    404: "Single sign-on is off",
    502: "Identity provider unavailable",
    503: "Sign-in unavailable",
}


def _error_page(exc: SignInError, settings: Settings) -> web.Response:
    title = _TITLES.get(exc.status, "Sign-in failed")
    body = (
        '<!doctype html>\n<html lang="en">\n<head>\n  <meta charset="utf-8">\n'
        '  <meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'  <title>{title}</title>\n  <link rel="icon" href="data:,">\n'
        '  <link rel="stylesheet" href="/static/css/app.css">\n</head>\n'
        '<body class="teacher">\n  <main id="main" class="card">\n'
        f'    <h1>{title}</h1>\n    <p id="sso-error" role="alert">{html.escape(exc.message)}</p>\n'
        f'    <p><a href="{SIGNIN_PAGE}">Back to sign-in</a></p>\n'
        f'    <p class="muted">Reference: <code id="sso-reason">{html.escape(exc.reason)}</code></p>\n'
        "  </main>\n</body>\n</html>\n"
    )
    response = web.Response(
        status=exc.status, text=body, content_type="text/html", headers={"Cache-Control": "no-store"}
    )
    secure(response, settings)
    return response


def oidc_routes(settings: Settings, audit: Auditor, sign_in: TeacherSignIn[Any] | None) -> OidcRoutes:
    """Built by server/wire.py: a client when PROCTOR_OIDC_ISSUER is set."""
    client = None
    if settings.oidc_issuer:
        client = OidcClient(
            settings.oidc_issuer,
            settings.oidc_client_id,
            settings.oidc_client_secret.get_secret_value(),
            settings.base_url.rstrip("/") + CALLBACK_PATH,
        )
        if sign_in is None:
            logger.warning("PROCTOR_OIDC_ISSUER is set, but this build has no teacher accounts: single sign-on is off")
    return OidcRoutes(settings, client, audit, sign_in)


OIDC: web.AppKey[OidcRoutes] = web.AppKey("oidc", OidcRoutes)


async def oidc_ctx(app: web.Application) -> AsyncIterator[None]:
    """The provider's HTTP client session lives as long as the node."""
    client = app[OIDC].client
    if client is not None:
        await client.start()
    try:
        yield
    finally:
        if client is not None:
            await client.close()


def add_oidc(app: web.Application, routes: OidcRoutes) -> None:
    """The routes and the client's lifecycle; handlers read `app[OIDC]` (tests may swap it before start)."""
    app[OIDC] = routes

    def route(name: str) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await getattr(request.app[OIDC], name)(request)  # type: ignore[no-any-return]

        return handler

    app.router.add_get("/auth/config", route("config"))
    app.router.add_get(LOGIN_PATH, route("login"))
    app.router.add_get(CALLBACK_PATH, route("callback"))
    app.cleanup_ctx.append(oidc_ctx)
