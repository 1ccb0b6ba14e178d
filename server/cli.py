"""The `proctor` command: serve, migrate, token."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from .settings import Settings, SettingsError

logger = logging.getLogger("proctor")


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "data_dir"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = Path(value) if name == "data_dir" else value
    return Settings.load(**overrides)


def tune_gc() -> None:
    """Move start-up objects out of the collector's reach and collect young objects less often.

    With the default thresholds a full collection walks every connection's objects; at
    thousands of sockets that is a pause of hundreds of milliseconds (see docs/performance.md).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


async def _serve(settings: Settings) -> None:
    from aiohttp import web

    from .app import create_app
    from .keys import PLACEMENT, SETTINGS
    from .lifecycle import ensure_admin_token_file

    app = create_app(settings)
    settings = app[SETTINGS]
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=10)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, backlog=2048)
    await site.start()
    token_path = ensure_admin_token_file(app)
    if token_path is not None:
        print(f"admin token: {token_path}", flush=True)
    else:
        print("admin token: from PROCTOR_ADMIN_TOKEN", flush=True)
    print(f"proctor node {settings.node_id} listening on http://{settings.host}:{settings.port}", flush=True)
    if settings.gc_tuning:
        tune_gc()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logger.info("shutting down")
    app[PLACEMENT].draining = True
    # Order (uvicorn's): stop accepting, tell clients, flush writers, then the cleanup contexts.
    await runner.cleanup()


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(_serve(settings))
    else:
        uvloop.run(_serve(settings))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    import asyncpg

    from rooms.migrate import migrate

    from .embedded_pg import EmbeddedPostgres

    settings = _settings(args)

    async def run() -> list[str]:
        embedded = None
        dsn = settings.database_url
        if not dsn:
            embedded = EmbeddedPostgres(settings.data_dir / "postgres")
            await asyncio.to_thread(embedded.start)
            dsn = embedded.dsn
        try:
            conn = await asyncpg.connect(dsn)
            try:
                return await migrate(conn)
            finally:
                await conn.close()
        finally:
            if embedded is not None:
                await asyncio.to_thread(embedded.stop)

    applied = asyncio.run(run())
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from rooms.auth import TokenService

    settings = _settings(args).with_runtime_defaults()
    tokens = TokenService(settings.secret, admin_token=settings.admin_token)
    ttl = None if args.ttl_hours <= 0 else args.ttl_hours * 3600
    rooms = tuple(r for r in (args.room or []) if r)
    if args.role == "teacher" and not args.sub:
        print("a teacher token needs --sub (the teacher's id)", file=sys.stderr)
        return 2
    print(tokens.mint(args.role, args.sub or "admin", name=args.name or "", rooms=rooms, ttl_seconds=ttl))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="proctor", description="Proctor server: real-time proctoring and classroom node."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run a node (embedded Postgres unless PROCTOR_DATABASE_URL is set)")
    serve.add_argument("--host", help="listen address (PROCTOR_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (PROCTOR_PORT, default 8080)")
    serve.add_argument("--data-dir", help="data directory (PROCTOR_DATA_DIR)")
    serve.set_defaults(func=cmd_serve)

    mig = sub.add_parser("migrate", help="apply database migrations and exit")
    mig.add_argument("--data-dir", help="data directory (PROCTOR_DATA_DIR)")
    mig.set_defaults(func=cmd_migrate)

    tok = sub.add_parser("token", help="mint an admin or teacher token")
    tok.add_argument("--role", choices=["admin", "teacher"], default="admin")
    tok.add_argument("--sub", help="who the token is for (teacher id)")
    tok.add_argument("--name", help="display name")
    tok.add_argument("--room", action="append", help="a room the teacher may see (repeatable)")
    tok.add_argument("--ttl-hours", type=float, default=12, help="lifetime; 0 means no expiry")
    tok.add_argument("--data-dir", help="data directory holding the signing secret")
    tok.set_defaults(func=cmd_token)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
