"""`/readyz` says why a node should get no students: draining, Postgres, and in a cluster Redis."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.embedded_pg import free_port
from server.settings import Settings


async def test_a_cluster_node_without_redis_is_not_ready(settings: Settings) -> None:
    # Nothing listens there: the heartbeat never gets through (as with an untrusted TLS certificate).
    app = create_app(settings.replace(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/readyz")
        assert resp.status == 503
        body = await resp.json()
        assert body == {"status": "redis unreachable", "reason": "redis unreachable"}
        assert (await client.get("/healthz")).status == 200  # alive, just not ready


async def test_a_single_node_is_ready_then_draining(settings: Settings) -> None:
    async with TestClient(TestServer(create_app(settings))) as client:
        resp = await client.get("/readyz")
        assert resp.status == 200 and (await resp.json())["status"] == "ready"
        assert client.app is not None
        from server.keys import PLACEMENT

        client.app[PLACEMENT].draining = True
        await asyncio.sleep(0)
        resp = await client.get("/readyz")
        assert resp.status == 503 and (await resp.json())["status"] == "draining"
