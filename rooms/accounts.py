"""People: admin and teacher accounts, how they sign in, their sessions and personal tokens.

The domain only: SQL lives behind `AccountStore` (rooms/store/accounts.py), HTTP and cookies
at the edges (server/http/accounts_api.py, signaling/guard.py). Every credential — a browser
session or a personal API token — becomes the same `Claims(role, sub=account id, name)` the
signed tokens give, so every existing scope check applies unchanged (docs/accounts.md).

Secrets are random (32 bytes), handed out once and stored only as their SHA-256, so a read of
the database gives no usable credential. Revoking one (or disabling its account) also names
it in `revoked_tokens` as `session:<id>` / `token:<id>`: the node's 2-second session guard
then closes any socket opened with it (server/live.py, rooms/store/privacy.py Revocations).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol, cast

from .errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from .passwords import Passwords, check_length
from .signin_limits import SignInLimits
from .tokens import Claims, Role

AccountRole = Literal["admin", "teacher"]
AccountState = Literal["active", "disabled"]
MAX_EMAIL = 254  # RFC 5321's path limit
MAX_NAME = 200
TOKEN_PREFIX = "pt_"
SESSION_PREFIX = "session:"
PERSONAL_PREFIX = "token:"


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    email: str
    name: str
    role: AccountRole
    state: AccountState
    password_hash: str | None = field(default=None, repr=False)
    created_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "role": self.role,
            "state": self.state,
            "has_password": self.password_hash is not None,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    account_id: str
    csrf_token: str = field(repr=False)
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    user_agent: str = ""
    address: str = ""

    def to_json(self, current: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "last_seen_at": self.last_seen_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "user_agent": self.user_agent,
            "address": self.address,
            "current": self.id == current,
        }


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    account_id: str
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
        }


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just opened: `secret` goes into the cookie and is never seen again."""

    account: Account
    session: SessionInfo
    secret: str = field(repr=False)


class AccountStore(Protocol):
    async def insert_account(self, email: str, name: str, role: AccountRole, password_hash: str | None) -> Account: ...
    async def account_by_email(self, email: str) -> Account | None: ...
    async def account_by_id(self, account_id: str) -> Account | None: ...
    async def account_by_identity(self, issuer: str, subject: str) -> Account | None: ...
    async def link_identity(self, issuer: str, subject: str, account_id: str) -> None: ...
    async def update_password(self, account_id: str, password_hash: str) -> None: ...
    async def update_state(self, account_id: str, state: AccountState, by: str) -> None: ...
    async def all_accounts(self) -> list[Account]: ...
    async def identity_counts(self) -> dict[str, int]: ...
    async def count_accounts(self) -> int: ...
    async def insert_session(
        self, account_id: str, token_hash: bytes, csrf_token: str, expires_at: datetime, user_agent: str, address: str
    ) -> SessionInfo: ...
    async def touch_session(self, token_hash: bytes, idle_seconds: float) -> tuple[SessionInfo, Account] | None: ...
    async def sessions_of(self, account_id: str) -> list[SessionInfo]: ...
    async def revoke_sessions(self, account_id: str, session_id: str | None, by: str) -> int: ...
    async def insert_token(
        self, account_id: str, name: str, token_hash: bytes, prefix: str, expires_at: datetime | None
    ) -> TokenInfo: ...
    async def token_by_hash(self, token_hash: bytes) -> tuple[TokenInfo, Account] | None: ...
    async def tokens_of(self, account_id: str) -> list[TokenInfo]: ...
    async def revoke_tokens(self, account_id: str, token_id: str | None, by: str) -> int: ...
    async def replace_setup_code(self, code_hash: bytes, expires_at: datetime) -> None: ...
    async def use_setup_code(self, code_hash: bytes) -> bool: ...


class Auditor(Protocol):
    async def record(
        self, claims: Claims, action: str, target_type: str, target_id: str, details: dict[str, Any] | None = None
    ) -> None: ...


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def normalise_email(email: str) -> str:
    email = email.strip()
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain or len(email) > MAX_EMAIL or any(ch.isspace() for ch in email):
        raise Invalid("not an email address", fields={"email": f"an address of at most {MAX_EMAIL} characters"})
    return email


def claims_of_account(account: Account, token_id: str = "", expires_at: datetime | None = None) -> Claims:
    return Claims(
        role=account.role,
        sub=account.id,
        name=account.name or account.email,
        token_id=token_id,
        expires_at=expires_at.timestamp() if expires_at else None,
    )


def _anonymous(address: str) -> Claims:
    # The audit log's actor for a sign-in that named no (or the wrong) account.
    return Claims(role=cast(Role, "anonymous"), sub=address or "unknown")


class AccountService:
    def __init__(
        self,
        store: AccountStore,
        audit: Auditor,
        passwords: Passwords,
        *,
        limits: SignInLimits | None = None,
        idle_seconds: float = 8 * 3600,
        absolute_seconds: float = 7 * 86400,
    ) -> None:
        self.store = store
        self.audit = audit
        self.passwords = passwords
        self.limits = limits or SignInLimits()
        self.idle_seconds = idle_seconds
        self.absolute_seconds = absolute_seconds

    # -- accounts --------------------------------------------------------------------------

    async def create(
        self, by: Claims, email: str, name: str, role: AccountRole, password: str | None = None
    ) -> Account:
        email = normalise_email(email)
        if len(name) > MAX_NAME:
            raise Invalid("the name is too long", fields={"name": f"at most {MAX_NAME} characters"})
        hashed = await self.passwords.hash(password) if password is not None else None
        account = await self.store.insert_account(email, name.strip(), role, hashed)
        await self.audit.record(by, "account.create", "account", account.id, {"email": email, "role": role})
        return account

    async def find_by_email(self, email: str) -> tuple[str, str] | None:
        """`rooms.roles.AccountDirectory`: the active account with this email, as (id, name)."""
        account = await self.store.account_by_email(normalise_email(email))
        if account is None or account.state != "active":
            return None
        return account.id, account.name

    async def by_email(self, email: str) -> Account:
        account = await self.store.account_by_email(normalise_email(email))
        if account is None:
            raise NotFound(f"no account has the email {email!r}")
        return account

    async def set_password(self, by: Claims, email: str, password: str) -> Account:
        account = await self.by_email(email)
        await self.store.update_password(account.id, await self.passwords.hash(password))
        await self.audit.record(by, "account.password", "account", account.id)
        return account

    async def set_state(self, by: Claims, email: str, state: AccountState) -> Account:
        account = await self.by_email(email)
        # Disabling also revokes every session and token of the account (store, one transaction).
        await self.store.update_state(account.id, state, by.sub)
        await self.audit.record(by, f"account.{'disable' if state == 'disabled' else 'enable'}", "account", account.id)
        return account

    async def accounts(self) -> list[Account]:
        return await self.store.all_accounts()

    async def directory(self) -> list[tuple[Account, int]]:
        """Every account with its number of single-sign-on identities (the admins' list)."""
        counts = await self.store.identity_counts()
        return [(account, counts.get(account.id, 0)) for account in await self.store.all_accounts()]

    async def by_id(self, account_id: str) -> Account:
        account = await self.store.account_by_id(account_id)
        if account is None:
            raise NotFound("no such account")
        return account

    async def set_state_by_id(self, by: Claims, account_id: str, state: AccountState) -> Account:
        """`set_state` for the admins' page, which names accounts by id; the account as it is now."""
        account = await self.by_id(account_id)
        if account.id == by.sub and state == "disabled":
            # Would end the very session asking, and could leave no admin able to undo it.
            raise Conflict("you cannot disable your own account", code="conflict")
        await self.set_state(by, account.email, state)
        return replace(account, state=state)

    async def count(self) -> int:
        return await self.store.count_accounts()

    # -- signing in ------------------------------------------------------------------------

    async def sign_in_password(
        self, email: str, password: str, *, address: str = "", user_agent: str = ""
    ) -> NewSession:
        """Check a password and open a session. One answer for every failure, whatever the cause."""
        key = email.strip().lower()[:MAX_EMAIL]
        self.limits.check(key, address)
        try:
            account = await self.store.account_by_email(normalise_email(email))
        except Invalid:
            account = None
        stored = account.password_hash if account is not None else None
        # Unknown account or no password: verify against a dummy hash so the time is the same.
        ok = await self.passwords.verify(stored, password[:1024])
        if not ok or account is None:
            self.limits.failed(key)
            actor = claims_of_account(account) if account is not None else _anonymous(address)
            await self.audit.record(
                actor,
                "signin.failed",
                "account",
                account.id if account else "-",
                {"address": address, "method": "password"},
            )
            raise Unauthorized("the email or password is wrong", code="bad_credentials")
        if account.state != "active":
            self.limits.failed(key)
            await self.audit.record(
                claims_of_account(account),
                "signin.refused",
                "account",
                account.id,
                {"address": address, "reason": "disabled"},
            )
            # Only after the password matched: a disabled account says so to its owner alone.
            raise Forbidden("this account is disabled", code="account_disabled")
        self.limits.succeeded(key)
        if stored is not None and self.passwords.needs_rehash(stored):
            await self.store.update_password(account.id, await self.passwords.hash(password))
        return await self._open(account, "password", address=address, user_agent=user_agent)

    async def sign_in_sso(self, issuer: str, subject: str, email: str, name: str, admin: bool) -> Account:
        """The account of a verified single-sign-on identity: linked by (issuer, subject), else by
        the verified email, else a new teacher (an admin if `admin`) created just in time."""
        account = await self.store.account_by_identity(issuer, subject)
        how = "identity"
        if account is None:
            email = normalise_email(email)
            account = await self.store.account_by_email(email)
            how = "email"
            if account is None:
                role: AccountRole = "admin" if admin else "teacher"
                account = await self.store.insert_account(email, name.strip()[:MAX_NAME], role, None)
                how = "created"
                await self.audit.record(
                    claims_of_account(account),
                    "account.create",
                    "account",
                    account.id,
                    {"email": email, "role": role, "issuer": issuer},
                )
            await self.store.link_identity(issuer, subject, account.id)
            await self.audit.record(
                claims_of_account(account),
                "account.link",
                "account",
                account.id,
                {"issuer": issuer, "subject": subject},
            )
        if account.state != "active":
            await self.audit.record(
                claims_of_account(account),
                "signin.refused",
                "account",
                account.id,
                {"issuer": issuer, "reason": "disabled"},
            )
            raise Forbidden("this account is disabled", code="account_disabled")
        await self.audit.record(
            claims_of_account(account),
            "signin",
            "account",
            account.id,
            {"method": "sso", "issuer": issuer, "found_by": how},
        )
        return account

    async def open_session(
        self, account: Account, *, method: str, address: str = "", user_agent: str = ""
    ) -> NewSession:
        """A session for an account that signed in some other way (part B's OIDC callback)."""
        return await self._open(account, method, address=address, user_agent=user_agent)

    async def _open(self, account: Account, method: str, *, address: str, user_agent: str) -> NewSession:
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
        expires = datetime.now(UTC) + timedelta(seconds=self.absolute_seconds)
        session = await self.store.insert_session(
            account.id, digest(secret), secrets.token_urlsafe(32), expires, user_agent[:300], address[:64]
        )
        await self.audit.record(
            claims_of_account(account), "signin", "session", session.id, {"method": method, "address": address}
        )
        return NewSession(account, session, secret)

    # -- using a session -------------------------------------------------------------------

    async def session(self, secret: str) -> tuple[SessionInfo, Account]:
        """The live session a cookie names (idle and absolute timeouts, account active)."""
        if not secret or len(secret) > 128:
            raise Unauthorized("sign in again", code="session_invalid")
        found = await self.store.touch_session(digest(secret), self.idle_seconds)
        if found is None:
            raise Unauthorized("the session has expired or was revoked; sign in again", code="session_invalid")
        session, account = found
        if account.state != "active":
            raise Unauthorized("this account is disabled", code="account_disabled")
        return session, account

    async def session_claims(self, secret: str) -> Claims:
        session, account = await self.session(secret)
        return claims_of_account(account, SESSION_PREFIX + session.id, session.expires_at)

    async def sessions(self, claims: Claims) -> list[SessionInfo]:
        return await self.store.sessions_of(_account_id(claims))

    async def revoke_session(self, claims: Claims, session_id: str) -> None:
        if not await self.store.revoke_sessions(_account_id(claims), session_id, claims.sub):
            raise NotFound("no such session of yours")
        await self.audit.record(claims, "session.revoke", "session", session_id)

    async def sign_out_everywhere(self, claims: Claims) -> int:
        count = await self.store.revoke_sessions(_account_id(claims), None, claims.sub)
        await self.audit.record(claims, "session.revoke_all", "account", claims.sub, {"sessions": count})
        return count

    # -- personal API tokens ---------------------------------------------------------------

    async def mint_token(self, claims: Claims, name: str, ttl_days: float | None) -> tuple[TokenInfo, str]:
        account_id = _account_id(claims)
        secret = TOKEN_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
        expires = datetime.now(UTC) + timedelta(days=ttl_days) if ttl_days else None
        info = await self.store.insert_token(account_id, name, digest(secret), secret[:10], expires)
        await self.audit.record(claims, "personal_token.create", "personal_token", info.id, {"name": name})
        return info, secret

    async def tokens(self, claims: Claims) -> list[TokenInfo]:
        return await self.store.tokens_of(_account_id(claims))

    async def revoke_token(self, claims: Claims, token_id: str) -> None:
        if not await self.store.revoke_tokens(_account_id(claims), token_id, claims.sub):
            raise NotFound("no such token of yours")
        await self.audit.record(claims, "personal_token.revoke", "personal_token", token_id)

    async def token_claims(self, secret: str) -> Claims:
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 128:
            raise Unauthorized("not a personal token", code="invalid_token")
        found = await self.store.token_by_hash(digest(secret))
        if found is None:
            raise Unauthorized("the token has expired or was revoked", code="token_revoked")
        info, account = found
        if account.state != "active":
            raise Unauthorized("this account is disabled", code="account_disabled")
        return claims_of_account(account, PERSONAL_PREFIX + info.id, info.expires_at)

    # -- the first admin -------------------------------------------------------------------

    async def new_setup_code(self, ttl_seconds: float = 24 * 3600) -> str | None:
        """A one-time code to create the first admin, or None once any account exists."""
        if await self.count():
            return None
        code = secrets.token_urlsafe(24)
        await self.store.replace_setup_code(digest(code), datetime.now(UTC) + timedelta(seconds=ttl_seconds))
        return code

    async def complete_setup(self, code: str, email: str, name: str, password: str, *, address: str = "") -> NewSession:
        check_length(password)
        normalise_email(email)
        self.limits.check("setup", address)
        if len(code) > 128 or await self.count() or not await self.store.use_setup_code(digest(code)):
            self.limits.failed("setup")
            raise Forbidden("this setup link is used, expired or unknown", code="setup_invalid")
        setup = Claims(role="admin", sub="setup", name="first-admin setup")
        account = await self.create(setup, email, name, "admin", password)
        return await self._open(account, "setup", address=address, user_agent="")


def _account_id(claims: Claims) -> str:
    # Sessions and personal tokens belong to accounts; a signed or static admin token has none.
    if not claims.token_id.startswith((SESSION_PREFIX, PERSONAL_PREFIX)):
        raise Forbidden("sign in with an account (a session or a personal token) for this", code="no_account")
    return claims.sub


def same_secret(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
