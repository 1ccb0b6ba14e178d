"""Accounts and room roles for tests: an account row (the directory colleagues are added
from, `rooms.accounts.AccountService.find_by_email`) and a teacher token for it."""

from __future__ import annotations

import uuid
from typing import Any

from server.keys import POOL
from tests.support.live import Live

# The address in the OpenAPI examples of the members routes (server/http/schemas.py).
EXAMPLE_EMAIL = "colleague@example.org"


async def create_account(live: Live, email: str, name: str = "", state: str = "active") -> str:
    """A new account row; returns its id (the `sub` of its tokens)."""
    account = uuid.uuid4()
    await live.app[POOL].execute(  # type: ignore[attr-defined]
        "INSERT INTO accounts (id, email, display_name, role, state) VALUES ($1, $2, $3, 'teacher', $4)",
        account,
        email,
        name,
        state,
    )
    return str(account)


async def example_account(pool: Any) -> None:
    """The examples' colleague exists once in the shared database (the matrix and the OpenAPI
    examples add and remove it); `pool` is the node's `Database`."""
    await pool.execute(
        "INSERT INTO accounts (id, email, display_name, role, state) SELECT $1, $2, 'A colleague', 'teacher', 'active'"
        " WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE lower(email) = lower($2))",
        uuid.uuid4(),
        EXAMPLE_EMAIL,
    )


async def member(live: Live, room_id: str, role: str, by: str, tag: str = "m") -> tuple[str, str]:
    """A new account given `role` in the room by `by` (an owner's token) through the API: (sub, token)."""
    email = f"{tag}-{uuid.uuid4().hex[:10]}@example.org"
    sub = await create_account(live, email, name=f"{tag} {role}")
    added: Any = await live.rest("POST", f"/api/rooms/{room_id}/members", {"email": email, "role": role}, token=by)
    assert added["subject"] == sub and added["role"] == role, added
    return sub, await live.teacher_token([], sub=sub)
