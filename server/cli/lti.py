"""`proctor lti register|list|remove|rotate-key`: LTI platforms and the tool's key from the shell.

Like `proctor user`, it works on the database directly (migrating it first) and audits every
change with the actor `cli`. `register` takes the same values as `POST /api/lti/platforms`
(validated by the same schema, so http:// is refused except for a loopback host).
`rotate-key` makes a new signing key; the previous one stays in `/lti/jwks` for
`PROCTOR_LTI_KEY_OVERLAP_DAYS` (docs/lti.md, "Key rotation").
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from rooms.errors import RoomsError
from rooms.lti import Platform
from rooms.tokens import Claims

OPERATOR = Claims(role="admin", sub="cli", name="proctor lti")


async def _with_store(args: argparse.Namespace, work: Callable[[Any, Any, Any], Awaitable[int]]) -> int:
    import asyncpg

    from rooms.store.audit import AuditLog
    from rooms.store.lti import LtiStore
    from rooms.store.lti_keys import ToolKeys
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
        try:
            keys = ToolKeys(pool, overlap=timedelta(days=settings.lti_key_overlap_days))
            return await work(LtiStore(pool), keys, AuditLog(pool))
        finally:
            await pool.close()


def cmd_lti(args: argparse.Namespace) -> int:
    from server.lti.registration import PlatformSpec

    async def work(store: Any, keys: Any, audit: Any) -> int:
        if args.action == "register":
            spec = PlatformSpec(
                name=args.name,
                issuer=args.issuer,
                client_id=args.client_id,
                deployment_ids=args.deployment_id,
                auth_login_url=args.auth_login_url,
                access_token_url=args.access_token_url,
                jwks_url=args.jwks_url,
                link_by_email=args.link_by_email,
            )
            platform = await store.create_platform(
                Platform(
                    "",
                    spec.name,
                    spec.issuer,
                    spec.client_id,
                    tuple(dict.fromkeys(spec.deployment_ids)),
                    spec.auth_login_url,
                    spec.access_token_url,
                    spec.jwks_url,
                    OPERATOR.sub,
                    datetime.now(UTC),
                    spec.link_by_email,
                )
            )
            await audit.record(
                OPERATOR, "lti.platform.create", "lti_platform", platform.id, {"issuer": platform.issuer}
            )
            print(f"registered {platform.issuer} client {platform.client_id} ({platform.id})")
        elif args.action == "list":
            for p in await store.platforms():
                print(f"{p.id}\t{p.issuer}\t{p.client_id}\t{','.join(p.deployment_ids)}\t{p.name}")
        elif args.action == "remove":
            platform = await store.platform(args.platform_id)
            await store.delete_platform(platform.id)
            await audit.record(
                OPERATOR, "lti.platform.delete", "lti_platform", platform.id, {"issuer": platform.issuer}
            )
            print(f"removed {platform.issuer} client {platform.client_id}")
        else:
            kid = await keys.rotate()
            await audit.record(OPERATOR, "lti.key.rotate", "lti_key", kid, {})
            published = [k["kid"] for k in (await keys.jwks())["keys"]]
            print(f"new signing key {kid}; published: {', '.join(published)}")
        return 0

    try:
        return asyncio.run(_with_store(args, work))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False))
        print(f"lti {args.action}: {problems}", file=sys.stderr)
        return 2
    except RoomsError as exc:
        print(f"lti {args.action}: {exc.message}", file=sys.stderr)
        return 1


def add_lti_commands(sub: Any) -> None:
    lti = sub.add_parser("lti", help="LTI 1.3: registered platforms and the tool's signing key")
    actions = lti.add_subparsers(dest="action", required=True)
    register = actions.add_parser("register", help="register a learning platform (docs/lti.md)")
    register.add_argument("--issuer", required=True, help="the platform's issuer (iss)")
    register.add_argument("--client-id", required=True, help="the client id the platform gave the tool")
    register.add_argument("--deployment-id", action="append", default=[], help="a deployment id (repeat for several)")
    register.add_argument("--auth-login-url", required=True, help="the platform's OIDC authorization URL")
    register.add_argument("--access-token-url", required=True, help="the platform's OAuth 2 token URL")
    register.add_argument("--jwks-url", required=True, help="the platform's public keyset URL")
    register.add_argument("--name", default="", help="a name to recognise it by")
    register.add_argument(
        "--link-by-email",
        action="store_true",
        help="link an instructor's first launch to the teacher account with the platform's email "
        "(only if the platform verifies emails)",
    )
    remove = actions.add_parser("remove", help="remove a platform with its links and users")
    remove.add_argument("platform_id")
    leaves = [register, remove, actions.add_parser("list", help="list the registered platforms")]
    leaves.append(actions.add_parser("rotate-key", help="a new signing key; the old one stays published a while"))
    for parser in leaves:
        parser.add_argument("--data-dir", help="data directory (PROCTOR_DATA_DIR)")
    lti.set_defaults(func=cmd_lti)
