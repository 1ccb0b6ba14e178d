"""Real Postgres for the whole test session: pgserver's binaries on a free loopback port in a
temporary directory, and one migrated database that the tests share (they isolate by UUIDs)."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from server.embedded_pg import EmbeddedPostgres, free_port


class PostgresServer:
    def __init__(self, root: Path) -> None:
        self.pg = EmbeddedPostgres(root / "pgdata", port=free_port())

    @property
    def port(self) -> int:
        assert self.pg.port is not None
        return self.pg.port

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    async def create_database(self, name: str | None = None) -> str:
        name = name or "t_" + uuid.uuid4().hex[:12]
        conn = await asyncpg.connect(self.dsn())
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.dsn(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    root = Path(tempfile.mkdtemp(prefix="proctor-test-pg-"))
    server = PostgresServer(root)
    try:
        server.pg.start()
    except FileNotFoundError as exc:  # the binaries come with the pgserver package
        pytest.fail(f"Postgres binaries missing ({exc}); install the dev set-up: pip install -e '.[dev]'")
    try:
        yield server
    finally:
        server.pg.stop(mode="immediate")


@pytest.fixture(scope="session")
def database_url(postgres: PostgresServer) -> str:
    """One migrated database shared by the session; tests isolate by fresh UUIDs."""
    return asyncio.run(postgres.create_database("proctor_test"))
