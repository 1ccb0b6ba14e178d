"""The admins' side of accounts: list every account, create one, disable or enable it.

Admins only (an admin account's session or personal token, or an admin's signed or static
token: automation may manage people too). The work is `AccountService`'s (rooms/accounts.py),
which audits every change (`account.create`, `account.disable`, `account.enable`); disabling
revokes the account's sessions and personal tokens in one transaction and names them in
`revoked_tokens`, so the node's session guard closes their sockets within about 2 s.
The routes are in `server/http/api.py`'s `ROUTES` through `ADMIN_ACCOUNT_ROUTES`, so the
OpenAPI document, the access matrix and the REST fuzzer see them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from rooms.accounts import MAX_EMAIL, MAX_NAME, Account
from rooms.passwords import MAX_PASSWORD
from server.keys import ACCOUNTS

from .credentials import claims_of
from .errors import parse_body
from .route import Route

# The example's address: tests/server/test_openapi.py and the access matrix create it once each.
EXAMPLE_NEW_ACCOUNT = "new.teacher@example.org"


class AccountCreate(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "example": {"email": EXAMPLE_NEW_ACCOUNT, "name": "New Teacher", "role": "teacher", "password": None}
        },
    )

    email: Annotated[str, Field(min_length=3, max_length=MAX_EMAIL)]
    name: str = Field(default="", max_length=MAX_NAME)
    role: Literal["admin", "teacher"] = "teacher"
    # No password: an account that signs in only through single sign-on (linked by its email).
    password: Annotated[str, Field(min_length=8, max_length=MAX_PASSWORD)] | None = None


class AccountStateChange(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra={"example": {"state": "active"}})

    state: Literal["active", "disabled"]


def _row(account: Account, identities: int) -> dict[str, object]:
    return {**account.to_json(), "sso_identities": identities}


async def list_accounts(request: web.Request) -> web.Response:
    claims_of(request).require_role("admin")
    directory = await request.app[ACCOUNTS].directory()
    return web.json_response(
        {"accounts": [_row(account, identities) for account, identities in directory]},
        headers={"Cache-Control": "no-store"},
    )


async def create_account(request: web.Request) -> web.Response:
    claims = claims_of(request)
    claims.require_role("admin")
    body = await parse_body(request, AccountCreate)
    account = await request.app[ACCOUNTS].create(claims, body.email, body.name, body.role, body.password)
    return web.json_response(_row(account, 0), status=201)


async def change_account_state(request: web.Request) -> web.Response:
    claims = claims_of(request)
    claims.require_role("admin")
    body = await parse_body(request, AccountStateChange)
    account = await request.app[ACCOUNTS].set_state_by_id(claims, request.match_info["account_id"], body.state)
    return web.json_response(account.to_json())


_ADMINS = ("admin",)
ADMIN_ACCOUNT_ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/accounts", list_accounts, "List every account (admins)", _ADMINS),
    Route(
        "POST",
        "/api/accounts",
        create_account,
        "Create an account (admins; no password: single sign-on only)",
        _ADMINS,
        AccountCreate,
        201,
        responses={409: "an account with that email exists"},
    ),
    Route(
        "POST",
        "/api/accounts/{account_id}/state",
        change_account_state,
        "Disable or enable an account (admins; disabling ends its sessions, tokens and sockets)",
        _ADMINS,
        AccountStateChange,
        responses={409: "an admin cannot disable their own account"},
    ),
)

__all__ = ["ADMIN_ACCOUNT_ROUTES", "EXAMPLE_NEW_ACCOUNT", "AccountCreate", "AccountStateChange"]
