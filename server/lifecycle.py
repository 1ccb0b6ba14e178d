"""Resources as cleanup contexts (aiohttp's pattern): each starts in order and stops in
reverse, and a cleanup runs only if its start finished."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from aiohttp import web

from core.tasks import stop_task
from rooms.store.migrate import migrate
from rooms.tokens import TokenService

from .embedded_pg import database_dsn
from .keys import METRICS, SETTINGS, TOKENS
from .settings import Settings
from .wire import NODE

logger = logging.getLogger(__name__)


async def _init_connection(conn: asyncpg.Connection) -> None:
    # Commits must be durable before we acknowledge; never let a session weaken that.
    await conn.execute("SET synchronous_commit = on")


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    """Postgres (embedded or configured), migrated, and the node's two pools opened."""
    node = app[NODE]
    settings = node.settings
    async with database_dsn(settings.database_url.get_secret_value(), settings.data_dir) as dsn:
        conn = await asyncpg.connect(dsn, timeout=30)
        try:
            applied = await migrate(conn)
            if applied:
                logger.info("migrations applied: %s", ", ".join(applied))
        finally:
            await conn.close()
        node.database.open(
            await asyncpg.create_pool(dsn, min_size=2, max_size=20, init=_init_connection, command_timeout=30)
        )
        try:
            node.writer_database.open(
                await asyncpg.create_pool(dsn, min_size=1, max_size=3, init=_init_connection, command_timeout=30)
            )
            try:
                await node.revocations.refresh()
                yield
            finally:
                await node.writer_database.close()
        finally:
            await node.database.close()


def ensure_admin_token_file(app: web.Application) -> Path | None:
    """Mint a non-expiring admin token into the data dir on first start (unless one is set)."""
    return admin_token_file(app[SETTINGS], app[TOKENS])


def admin_token_file(settings: Settings, tokens: TokenService) -> Path | None:
    """DATA_DIR/admin-token, minted (mode 600) if absent; None when PROCTOR_ADMIN_TOKEN is set.
    One node and the `--processes` supervisor share it."""
    if settings.admin_token.get_secret_value():
        return None
    path = settings.data_dir / "admin-token"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        token = tokens.mint("admin", "admin", name="admin", ttl_seconds=None)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
    return path


async def loop_lag_ctx(app: web.Application) -> AsyncIterator[None]:
    """Measure how late the loop wakes a 100 ms sleeper: the lag every client feels."""
    metrics = app[METRICS]

    async def watch() -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(0.1)
            lag = max(0.0, loop.time() - start - 0.1)
            metrics.loop_lag.observe(lag)
            node_lag.append(lag)
            if len(node_lag) > 600:
                del node_lag[:300]

    node_lag: list[float] = []
    task = asyncio.create_task(watch(), name="loop-lag")
    app[LAG_SAMPLES] = node_lag
    # The probe wakes every 100 ms or later, so the last 300 samples span at least 30 s.
    metrics.loop_lag_recent_max.set_function(lambda: max(node_lag[-300:], default=0.0))
    try:
        yield
    finally:
        await stop_task(task)


LAG_SAMPLES: web.AppKey[list[float]] = web.AppKey("lag_samples")
