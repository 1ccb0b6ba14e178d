"""One node in process against the session Postgres: its settings, an aiohttp `TestClient`,
the admin and signing credentials it runs with, and the exam most tests create."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.settings import Settings

SECRET = "test-secret-" + "x" * 32
ADMIN = "test-admin-token-0123456789"


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
