"""`proctor user add|passwd|disable|enable|list`: accounts from the operator's shell.

Works on the database directly (migrating it first, so a fresh install can add its first
admin before the first `proctor serve`), and records every change in the audit log with the
actor `cli`. Passwords are read from stdin (`--password-stdin`, or when stdin is not a
terminal) or typed twice at a prompt; they are never arguments (a process list shows those).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from rooms.accounts import AccountService
from rooms.errors import RoomsError
from rooms.tokens import Claims

OPERATOR = Claims(role="admin", sub="cli", name="proctor user")


def _read_password(args: argparse.Namespace) -> str:
    if getattr(args, "password_stdin", False) or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise SystemExit("the passwords differ")
    return first


async def _with_accounts(args: argparse.Namespace, work: Callable[[AccountService], Awaitable[int]]) -> int:
    import asyncpg

    from rooms.passwords import Passwords
    from rooms.store.accounts import AccountRepository
    from rooms.store.audit import AuditLog
    from rooms.store.migrate import migrate
    from server.embedded_pg import database_dsn

    from .main import _settings

    settings = _settings(args)
    async with database_dsn(settings.database_url.get_secret_value(), settings.data_dir) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        passwords = Passwords(workers=1)
        try:
            return await work(AccountService(AccountRepository(pool), AuditLog(pool), passwords))
        finally:
            passwords.close()
            await pool.close()


def cmd_user(args: argparse.Namespace) -> int:
    password = _read_password(args) if args.action == "passwd" or getattr(args, "password_stdin", False) else None

    async def work(accounts: AccountService) -> int:
        if args.action == "add":
            account = await accounts.create(OPERATOR, args.email, args.name or "", args.role, password)
            print(f"added {account.role} {account.email} ({account.id})")
        elif args.action == "passwd":
            assert password is not None
            account = await accounts.set_password(OPERATOR, args.email, password)
            print(f"password set for {account.email}")
        elif args.action in ("disable", "enable"):
            state: Any = "disabled" if args.action == "disable" else "active"
            account = await accounts.set_state(OPERATOR, args.email, state)
            revoked = " (its sessions and tokens are revoked)" if state == "disabled" else ""
            print(f"{account.email} is {state}{revoked}")
        else:
            for account in await accounts.accounts():
                login = "password" if account.password_hash else "sso only"
                print(f"{account.email}\t{account.role}\t{account.state}\t{login}\t{account.name}")
        return 0

    try:
        return asyncio.run(_with_accounts(args, work))
    except RoomsError as exc:
        detail = "".join(f"; {k}: {v}" for k, v in exc.fields.items())
        print(f"user {args.action}: {exc.message}{detail}", file=sys.stderr)
        return 1


async def print_setup_link(app: Any) -> None:
    """On a database without accounts: a one-time link (code stored hashed, 24 h) that opens
    the page creating the first admin. The static admin token stays, for automation."""
    from server.keys import ACCOUNTS, SETTINGS

    code = await app[ACCOUNTS].new_setup_code()
    if code is not None:
        base = app[SETTINGS].base_url.rstrip("/")
        print(
            f"no accounts yet: create the first admin at {base}/teacher/setup#code={code} (single use, valid 24 h)",
            flush=True,
        )


def add_user_commands(sub: Any) -> None:
    user = sub.add_parser("user", help="manage admin and teacher accounts")
    actions = user.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add an account")
    add.add_argument("email")
    add.add_argument("--name", default="", help="display name")
    add.add_argument("--role", choices=["admin", "teacher"], required=True)
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read a password from stdin (else the account signs in by SSO only)",
    )
    passwd = actions.add_parser("passwd", help="set an account's password (read from stdin or a prompt)")
    passwd.add_argument("email")
    passwd.add_argument("--password-stdin", action="store_true")
    leaves = [add, passwd]
    for name, text in (
        ("disable", "disable an account: its sessions and tokens end within seconds"),
        ("enable", "enable a disabled account"),
    ):
        state = actions.add_parser(name, help=text)
        state.add_argument("email")
        leaves.append(state)
    leaves.append(actions.add_parser("list", help="list accounts"))
    for parser in leaves:
        parser.add_argument("--data-dir", help="data directory (PROCTOR_DATA_DIR)")
    user.set_defaults(func=cmd_user)
