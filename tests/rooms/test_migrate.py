"""Migrations are idempotent, and two processes migrating at once agree (advisory lock)."""

from __future__ import annotations

import asyncio
import sys

import asyncpg

from rooms.store.migrate import available, migrate
from tests.support.postgres import PostgresServer

_CHILD = """
import asyncio, sys, asyncpg
from rooms.store.migrate import migrate
async def main():
    conn = await asyncpg.connect(sys.argv[1])
    try:
        print(",".join(await migrate(conn)))
    finally:
        await conn.close()
asyncio.run(main())
"""


async def test_migrate_twice_is_a_no_op(postgres: PostgresServer) -> None:
    dsn = await postgres.create_database()
    conn = await asyncpg.connect(dsn)
    try:
        first = await migrate(conn)
        assert first == [m.name for m in available()]
        assert await migrate(conn) == []
        versions = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in versions] == [m.version for m in available()]
    finally:
        await conn.close()


async def test_concurrent_migrations_from_two_processes(postgres: PostgresServer) -> None:
    dsn = await postgres.create_database()
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _CHILD,
            dsn,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = [await p.communicate() for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
    applied = [out.decode().strip() for out, _ in outputs]
    # Exactly one process applied everything; the other found it done.
    assert sorted(applied) == ["", ",".join(m.name for m in available())]
    conn = await asyncpg.connect(dsn)
    try:
        count = await conn.fetchval("SELECT count(*) FROM schema_migrations")
        assert count == len(available())
    finally:
        await conn.close()
