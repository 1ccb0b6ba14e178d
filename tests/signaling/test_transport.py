"""signaling/transport.py against real python-socketio clients: order, acks, upgrade, disconnects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp import web
from aiohttp.test_utils import TestServer

from signaling.transport import DirectManager, LeanSocket, ProctorServer


class Node:
    def __init__(self, sio: ProctorServer, url: str) -> None:
        self.sio = sio
        self.url = url
        self.disconnected: list[str] = []


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    sio = ProctorServer(async_mode="aiohttp", client_manager=DirectManager(), ping_interval=0.3, ping_timeout=0.3)
    app = web.Application()
    sio.attach(app)
    server = TestServer(app)
    await server.start_server()
    n = Node(sio, str(server.make_url("/")))

    class Ns(socketio.AsyncNamespace):  # type: ignore[misc]
        async def on_connect(self, sid: str, environ: Any, auth: Any = None) -> None:
            await self.enter_room(sid, "all")

        async def on_disconnect(self, sid: str, reason: Any = None) -> None:
            await asyncio.sleep(0.01)  # handlers that await must still run to the end
            n.disconnected.append(sid)

        async def on_burst(self, sid: str, data: Any) -> dict[str, Any]:
            for i in range(int(data["n"])):
                await sio.emit("item", i, room="all", namespace="/t")
            return {"ok": True, "sent": data["n"]}

    sio.register_namespace(Ns("/t"))
    try:
        yield n
    finally:
        await server.close()


async def client(url: str, transports: list[str]) -> tuple[socketio.AsyncClient, list[Any]]:
    c = socketio.AsyncClient(reconnection=False)
    got: list[Any] = []

    async def item(data: Any) -> None:
        got.append(data)

    c.on("item", item, namespace="/t")
    await c.connect(url, namespaces=["/t"], transports=transports)
    return c, got


@pytest.mark.parametrize("transports", [["websocket"], ["polling", "websocket"]])
async def test_messages_arrive_in_order_with_their_ack(node: Node, transports: list[str]) -> None:
    c, got = await client(node.url, transports)
    try:
        for _ in range(50):  # let an upgrade from polling finish
            if c.transport() == "websocket":
                break
            await asyncio.sleep(0.05)
        assert c.transport() == "websocket"
        assert all(type(s) is LeanSocket for s in node.sio.eio.sockets.values())
        ack = await c.call("burst", {"n": 500}, namespace="/t", timeout=10)
        assert ack == {"ok": True, "sent": 500}
        for _ in range(100):
            if len(got) == 500:
                break
            await asyncio.sleep(0.02)
        assert got == list(range(500))
    finally:
        await c.disconnect()


async def test_a_client_disconnect_runs_the_whole_handler(node: Node) -> None:
    c, _ = await client(node.url, ["websocket"])
    sid = c.get_sid("/t")
    await c.disconnect()
    for _ in range(100):
        if sid in node.disconnected and not node.sio.eio.sockets:
            break
        await asyncio.sleep(0.02)
    assert node.disconnected == [sid]
    assert not node.sio.eio.sockets


async def test_a_silent_client_is_closed(node: Node) -> None:
    # Engine.IO over a raw WebSocket that opens the namespace and then never answers a ping.
    url = node.url.replace("http", "ws") + "socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        opened = await ws.receive_str(timeout=5)
        assert opened.startswith("0{")
        await ws.send_str("40/t,")
        closed = False
        async with asyncio.timeout(5):
            async for msg in ws:  # pings arrive and go unanswered
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
            closed = True
        assert closed
    for _ in range(100):
        if node.disconnected and not node.sio.eio.sockets:
            break
        await asyncio.sleep(0.02)
    assert len(node.disconnected) == 1 and not node.sio.eio.sockets
