"""Postgres side of accounts: accounts, identities, sessions, personal tokens, setup codes.

Revoking a session or token also inserts its id into `revoked_tokens` (as `session:<id>` /
`token:<id>`, until it would have expired) in the same transaction: that table is what every
node's session guard re-reads every 2 seconds, so sockets opened with it close within seconds.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from rooms.accounts import PERSONAL_PREFIX, SESSION_PREFIX, Account, AccountRole, AccountState, SessionInfo, TokenInfo
from rooms.errors import Conflict

from .database import Pool

_ACCOUNT = "a.id, a.email, a.display_name, a.role, a.state, a.password_hash, a.created_at"
_SESSION = (
    "s.id AS s_id, s.account_id, s.csrf_token, s.created_at AS s_created, s.last_seen_at, s.expires_at,"
    " s.user_agent, s.address"
)
_TOKEN = (
    "t.id AS t_id, t.account_id, t.name, t.prefix, t.created_at AS t_created, t.expires_at AS t_expires, t.last_used_at"
)


def _account(r: Any) -> Account:
    return Account(
        id=str(r["id"]),
        email=r["email"],
        name=r["display_name"],
        role=r["role"],
        state=r["state"],
        password_hash=r["password_hash"],
        created_at=r["created_at"],
    )


def _session(r: Any) -> SessionInfo:
    return SessionInfo(
        id=str(r["s_id"]),
        account_id=str(r["account_id"]),
        csrf_token=r["csrf_token"],
        created_at=r["s_created"],
        last_seen_at=r["last_seen_at"],
        expires_at=r["expires_at"],
        user_agent=r["user_agent"],
        address=r["address"],
    )


def _token(r: Any) -> TokenInfo:
    return TokenInfo(
        id=str(r["t_id"]),
        account_id=str(r["account_id"]),
        name=r["name"],
        prefix=r["prefix"],
        created_at=r["t_created"],
        expires_at=r["t_expires"],
        last_used_at=r["last_used_at"],
    )


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


class AccountRepository:
    """rooms.accounts.AccountStore on Postgres."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def insert_account(self, email: str, name: str, role: AccountRole, password_hash: str | None) -> Account:
        try:
            row = await self._pool.fetchrow(
                "INSERT INTO accounts AS a (id, email, display_name, role, password_hash) VALUES ($1, $2, $3, $4, $5)"
                f" RETURNING {_ACCOUNT}",
                uuid.uuid4(),
                email,
                name,
                role,
                password_hash,
            )
        except asyncpg.UniqueViolationError:
            raise Conflict("an account with that email exists", code="conflict", fields={"email": "taken"}) from None
        assert row is not None
        return _account(row)

    async def account_by_email(self, email: str) -> Account | None:
        row = await self._pool.fetchrow(f"SELECT {_ACCOUNT} FROM accounts a WHERE lower(a.email) = lower($1)", email)
        return _account(row) if row else None

    async def account_by_id(self, account_id: str) -> Account | None:
        key = _uuid(account_id)
        row = await self._pool.fetchrow(f"SELECT {_ACCOUNT} FROM accounts a WHERE a.id = $1", key) if key else None
        return _account(row) if row else None

    async def account_by_identity(self, issuer: str, subject: str) -> Account | None:
        row = await self._pool.fetchrow(
            f"SELECT {_ACCOUNT} FROM account_identities i JOIN accounts a ON a.id = i.account_id"
            " WHERE i.issuer = $1 AND i.subject = $2",
            issuer,
            subject,
        )
        return _account(row) if row else None

    async def link_identity(self, issuer: str, subject: str, account_id: str) -> None:
        await self._pool.execute(
            "INSERT INTO account_identities (issuer, subject, account_id) VALUES ($1, $2, $3)"
            " ON CONFLICT (issuer, subject) DO NOTHING",
            issuer,
            subject,
            uuid.UUID(account_id),
        )

    async def update_password(self, account_id: str, password_hash: str) -> None:
        await self._pool.execute(
            "UPDATE accounts SET password_hash = $2, updated_at = now() WHERE id = $1",
            uuid.UUID(account_id),
            password_hash,
        )

    async def update_state(self, account_id: str, state: AccountState, by: str) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE accounts SET state = $2, updated_at = now() WHERE id = $1", uuid.UUID(account_id), state
            )
            if state == "disabled":
                await _revoke_sessions(conn, uuid.UUID(account_id), None, by)
                await _revoke_tokens(conn, uuid.UUID(account_id), None, by)

    async def all_accounts(self) -> list[Account]:
        rows = await self._pool.fetch(f"SELECT {_ACCOUNT} FROM accounts a ORDER BY lower(a.email)")
        return [_account(r) for r in rows]

    async def identity_counts(self) -> dict[str, int]:
        rows = await self._pool.fetch("SELECT account_id, count(*) AS n FROM account_identities GROUP BY account_id")
        return {str(r["account_id"]): int(r["n"]) for r in rows}

    async def count_accounts(self) -> int:
        return int(await self._pool.fetchval("SELECT count(*) FROM accounts"))

    # -- sessions --------------------------------------------------------------------------

    async def insert_session(
        self, account_id: str, token_hash: bytes, csrf_token: str, expires_at: datetime, user_agent: str, address: str
    ) -> SessionInfo:
        row = await self._pool.fetchrow(
            "INSERT INTO account_sessions AS s"
            " (id, token_hash, account_id, csrf_token, expires_at, user_agent, address)"
            f" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_SESSION}",
            uuid.uuid4(),
            token_hash,
            uuid.UUID(account_id),
            csrf_token,
            expires_at,
            user_agent,
            address,
        )
        assert row is not None
        return _session(row)

    async def touch_session(self, token_hash: bytes, idle_seconds: float) -> tuple[SessionInfo, Account] | None:
        # One statement: find the live session and move its idle deadline (at most once a
        # minute, so a page polling the API does not write a row version per request).
        row = await self._pool.fetchrow(
            "UPDATE account_sessions s SET last_seen_at = CASE WHEN s.last_seen_at < now() - interval '60 seconds'"
            " THEN now() ELSE s.last_seen_at END FROM accounts a"
            " WHERE s.token_hash = $1 AND a.id = s.account_id AND s.revoked_at IS NULL AND s.expires_at > now()"
            " AND s.last_seen_at > now() - make_interval(secs => $2)"
            f" RETURNING {_SESSION}, {_ACCOUNT}",
            token_hash,
            idle_seconds,
        )
        return (_session(row), _account(row)) if row else None

    async def sessions_of(self, account_id: str) -> list[SessionInfo]:
        rows = await self._pool.fetch(
            f"SELECT {_SESSION} FROM account_sessions s WHERE s.account_id = $1 AND s.revoked_at IS NULL"
            " AND s.expires_at > now() ORDER BY s.created_at DESC",
            uuid.UUID(account_id),
        )
        return [_session(r) for r in rows]

    async def revoke_sessions(self, account_id: str, session_id: str | None, by: str) -> int:
        key = _uuid(session_id) if session_id is not None else None
        if session_id is not None and key is None:
            return 0
        async with self._pool.acquire() as conn, conn.transaction():
            return await _revoke_sessions(conn, uuid.UUID(account_id), key, by)

    # -- personal tokens -------------------------------------------------------------------

    async def insert_token(
        self, account_id: str, name: str, token_hash: bytes, prefix: str, expires_at: datetime | None
    ) -> TokenInfo:
        row = await self._pool.fetchrow(
            "INSERT INTO personal_tokens AS t (id, token_hash, account_id, name, prefix, expires_at)"
            f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_TOKEN}",
            uuid.uuid4(),
            token_hash,
            uuid.UUID(account_id),
            name,
            prefix,
            expires_at,
        )
        assert row is not None
        return _token(row)

    async def token_by_hash(self, token_hash: bytes) -> tuple[TokenInfo, Account] | None:
        row = await self._pool.fetchrow(
            "UPDATE personal_tokens t SET last_used_at = now() FROM accounts a"
            " WHERE t.token_hash = $1 AND a.id = t.account_id AND t.revoked_at IS NULL"
            " AND (t.expires_at IS NULL OR t.expires_at > now())"
            f" RETURNING {_TOKEN}, {_ACCOUNT}",
            token_hash,
        )
        return (_token(row), _account(row)) if row else None

    async def tokens_of(self, account_id: str) -> list[TokenInfo]:
        rows = await self._pool.fetch(
            f"SELECT {_TOKEN} FROM personal_tokens t WHERE t.account_id = $1 AND t.revoked_at IS NULL"
            " AND (t.expires_at IS NULL OR t.expires_at > now()) ORDER BY t.created_at DESC",
            uuid.UUID(account_id),
        )
        return [_token(r) for r in rows]

    async def revoke_tokens(self, account_id: str, token_id: str | None, by: str) -> int:
        key = _uuid(token_id) if token_id is not None else None
        if token_id is not None and key is None:
            return 0
        async with self._pool.acquire() as conn, conn.transaction():
            return await _revoke_tokens(conn, uuid.UUID(account_id), key, by)

    # -- first-admin setup -----------------------------------------------------------------

    async def replace_setup_code(self, code_hash: bytes, expires_at: datetime) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            # One code at a time: a new start-up's link replaces an unused older one.
            await conn.execute("DELETE FROM setup_codes WHERE used_at IS NULL")
            await conn.execute("INSERT INTO setup_codes (code_hash, expires_at) VALUES ($1, $2)", code_hash, expires_at)

    async def use_setup_code(self, code_hash: bytes) -> bool:
        status: str = await self._pool.execute(
            "UPDATE setup_codes SET used_at = now() WHERE code_hash = $1 AND used_at IS NULL AND expires_at > now()",
            code_hash,
        )
        return status.endswith(" 1")


async def _revoke_sessions(conn: Any, account_id: uuid.UUID, session_id: uuid.UUID | None, by: str) -> int:
    rows = await conn.fetch(
        "UPDATE account_sessions SET revoked_at = now() WHERE account_id = $1 AND revoked_at IS NULL"
        " AND ($2::uuid IS NULL OR id = $2) RETURNING id, expires_at",
        account_id,
        session_id,
    )
    await _name_revoked(conn, [(SESSION_PREFIX + str(r["id"]), r["expires_at"]) for r in rows], by)
    return len(rows)


async def _revoke_tokens(conn: Any, account_id: uuid.UUID, token_id: uuid.UUID | None, by: str) -> int:
    rows = await conn.fetch(
        "UPDATE personal_tokens SET revoked_at = now() WHERE account_id = $1 AND revoked_at IS NULL"
        " AND ($2::uuid IS NULL OR id = $2) RETURNING id, expires_at",
        account_id,
        token_id,
    )
    await _name_revoked(conn, [(PERSONAL_PREFIX + str(r["id"]), r["expires_at"]) for r in rows], by)
    return len(rows)


async def _name_revoked(conn: Any, items: list[tuple[str, datetime | None]], by: str) -> None:
    if items:
        await conn.executemany(
            "INSERT INTO revoked_tokens (token_id, expires_at, revoked_by) VALUES ($1, $2, $3)"
            " ON CONFLICT (token_id) DO NOTHING",
            [(token_id, expires, by) for token_id, expires in items],
        )
