"""A handle on a Postgres pool that is opened at start-up.

The node is built in one pass before anything starts (server/wire.py), but the pool can
only open once the server is there: the embedded Postgres picks its port when it starts.
Repositories therefore take this handle; it forwards the pool's query methods, and answers
`unavailable` (not an AttributeError) when used before start-up or after the stop.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from asyncpg.pool import PoolAcquireContext

from ..errors import Unavailable


class Database:
    def __init__(self, name: str = "main") -> None:
        self.name = name
        self._pool: asyncpg.Pool | None = None

    def __repr__(self) -> str:
        return f"Database({self.name!r}, {'open' if self._pool is not None else 'closed'})"

    def open(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise Unavailable(f"the {self.name} database is not open", code="unavailable", retry_after=5)
        return self._pool

    async def fetch(self, query: str, *args: Any, timeout: float | None = None) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.pool.fetch(query, *args, timeout=timeout)
        return rows

    async def fetchrow(self, query: str, *args: Any, timeout: float | None = None) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self.pool.fetchrow(query, *args, timeout=timeout)
        return row

    async def fetchval(self, query: str, *args: Any, column: int = 0, timeout: float | None = None) -> Any:
        return await self.pool.fetchval(query, *args, column=column, timeout=timeout)

    async def execute(self, query: str, *args: Any, timeout: float | None = None) -> str:
        status: str = await self.pool.execute(query, *args, timeout=timeout)
        return status

    async def executemany(self, command: str, args: Any, *, timeout: float | None = None) -> None:
        await self.pool.executemany(command, args, timeout=timeout)

    def acquire(self, *, timeout: float | None = None) -> PoolAcquireContext:
        return self.pool.acquire(timeout=timeout)

    async def release(self, connection: asyncpg.Connection, *, timeout: float | None = None) -> None:
        await self.pool.release(connection, timeout=timeout)


# What a repository queries through: the node's handle, or a pool a test or tool opened.
Pool = asyncpg.Pool | Database
