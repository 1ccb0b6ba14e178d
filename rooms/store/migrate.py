"""Ordered SQL migrations applied under a Postgres advisory lock.

Two processes starting at once both call `migrate`; the advisory lock makes the second
wait, and it then finds every version already applied. Each file runs in one transaction,
except a file that starts with `NO_TRANSACTION`: it holds ONE statement that Postgres refuses
inside a transaction (`CREATE INDEX CONCURRENTLY`, the way to add an index to a live table;
docs/upgrades.md) and is written to be re-run (`IF NOT EXISTS`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

logger = logging.getLogger(__name__)

# An arbitrary, fixed 64-bit key: "proctor" in ASCII.
_LOCK_KEY = 0x70726F63746F72
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
NO_TRANSACTION = "-- migrate: no transaction"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    found: list[Migration] = []
    for entry in resources.files("rooms.store").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version: {versions}")
    return found


async def migrate(conn: asyncpg.Connection, migrations: list[Migration] | None = None) -> list[str]:
    """Apply what is missing of `migrations` (default: all); return the names applied by this call."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for migration in available() if migrations is None else migrations:
            if migration.version in done:
                continue
            if migration.sql.startswith(NO_TRANSACTION):
                # If the process dies between these two, the next start runs the file again.
                await conn.execute(migration.sql)
                await _record(conn, migration)
            else:
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await _record(conn, migration)
            logger.info("applied migration %s", migration.name)
            applied_now.append(migration.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now


async def _record(conn: asyncpg.Connection, migration: Migration) -> None:
    await conn.execute(
        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
        migration.version,
        migration.name,
    )
