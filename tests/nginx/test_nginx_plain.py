"""The plain (no TLS) site in a real Nginx in front of a real node: a browser's Socket.IO
connection passes the node's same-origin check.

Each location sets proxy headers of its own (Upgrade, Connection), and Nginx then inherits
none from the server level: the node saw `Host: proctor_nodes` and refused every browser
whose Origin is the page it loaded. Clients without an Origin (the other tests) never noticed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import socketio
from aiohttp.test_utils import TestServer

from nginx.render import Node, render_site
from server.app import create_app
from server.embedded_pg import free_port
from server.settings import Settings
from tests.support.nginx import running_nginx
from tests.support.node import ADMIN, EXAM_BODY, bearer

pytestmark = pytest.mark.slow


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
async def upstream(settings: Settings, port: int) -> AsyncIterator[int]:
    app = create_app(settings.replace(public_url=f"http://127.0.0.1:{port}"))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        assert server.port is not None
        yield server.port
    finally:
        await server.close()


@pytest.fixture
def front(upstream: int, port: int, tmp_path: Path) -> Iterator[str]:
    site = render_site([Node("127.0.0.1", upstream)], listen=f"127.0.0.1:{port}")
    with running_nginx(tmp_path / "nginx", site, port):
        yield f"http://127.0.0.1:{port}"


async def test_a_browser_origin_passes_through_plain_nginx(front: str) -> None:
    async with aiohttp.ClientSession() as http:
        headers = bearer(ADMIN)
        async with http.post(front + "/api/exams", json=EXAM_BODY, headers=headers) as resp:
            exam = await resp.json()
        async with http.post(
            front + f"/api/exams/{exam['id']}/rooms", json={"name": "Hall", "seats": 3}, headers=headers
        ) as resp:
            room = await resp.json()
        async with http.post(
            front + f"/api/rooms/{room['id']}/invites",
            json={"students": [{"id": "s-1", "name": "Ada"}]},
            headers=headers,
        ) as resp:
            invite = (await resp.json())["invites"][0]
        for transports in (["websocket"], ["polling"]):
            sio = socketio.AsyncClient(reconnection=False, http_session=http)
            try:
                await sio.connect(
                    front,
                    namespaces=["/student"],
                    auth={"token": invite["token"]},
                    headers={"Origin": front},
                    transports=transports,
                    wait_timeout=10,
                )
                ack = await sio.call("join", {}, namespace="/student", timeout=10)
                assert ack["ok"], ack
            finally:
                await sio.disconnect()
        other = socketio.AsyncClient(reconnection=False, http_session=http)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await other.connect(
                front,
                namespaces=["/student"],
                auth={"token": invite["token"]},
                headers={"Origin": "http://evil.example"},
                transports=["websocket"],
                wait_timeout=5,
            )
