"""Real servers for the whole test session: Postgres (from pgserver's binaries) on a free
loopback port in a temporary directory, and a factory for app instances against it."""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.embedded_pg import EmbeddedPostgres, free_port
from server.settings import Settings

os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())

SECRET = "test-secret-" + "x" * 32
ADMIN = "test-admin-token-0123456789"


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


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings.load(
        environ={},
        env_file=None,
        database_url=database_url,
        secret=SECRET,
        admin_token=ADMIN,
        data_dir=tmp_path / "data",
        node_id="node-test",
        public_url="http://proctor.test",
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(settings)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def bearer(token: str = ADMIN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


EXAM_BODY: dict[str, Any] = {
    "title": "Algebra",
    "duration_minutes": 30,
    "questions": [
        {"id": "q1", "kind": "single", "text": "2+2?", "options": ["3", "4"]},
        {"id": "q2", "kind": "multiple", "text": "Primes?", "options": ["2", "4", "7"]},
        {"id": "q3", "kind": "text", "text": "Why?"},
    ],
}
