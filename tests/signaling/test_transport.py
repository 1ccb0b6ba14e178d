"""signaling/transport.py against real python-socketio clients: order, acks, upgrade, disconnects."""

from __future__ import annotations

import asyncio
import contextlib
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


async def raw_socket(http: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(url.replace("http", "ws") + "socket.io/?EIO=4&transport=websocket")
    opened = await ws.receive_str(timeout=5)
    assert opened.startswith("0{")
    await ws.send_str("40/t,")
    assert (await ws.receive_str(timeout=5)).startswith("40/t,")
    return ws


async def closed_by_server(ws: aiohttp.ClientWebSocketResponse, seconds: float = 3.0) -> bool:
    """Read until the server closes `ws` or `seconds` pass; pings are answered, so only
    the server's refusal can end the connection."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                if msg.data == "2":
                    await ws.send_str("3")
    return ws.closed


async def until(check: Any, what: str) -> None:
    for _ in range(250):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within 5 s: {what}")


async def test_a_binary_packet_announcing_many_attachments_closes_the_connection(node: Node) -> None:
    # Upstream would keep every attachment until a billion had arrived.
    async with aiohttp.ClientSession() as http:
        ws = await raw_socket(http, node.url)
        await ws.send_str('45999999999-/t,["burst",{"_placeholder":true,"num":0}]')
        for _ in range(3):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_bytes(b"x" * 1000)
        assert await closed_by_server(ws), "the server kept a connection announcing a billion attachments"
    await until(lambda: not node.sio.eio.sockets and len(node.disconnected) == 1, "the connection ended")
    assert not node.sio._binary_packet


async def test_an_incomplete_binary_packet_is_released_with_its_connection(node: Node) -> None:
    async with aiohttp.ClientSession() as http:
        ws = await raw_socket(http, node.url)
        other, _ = await client(node.url, ["websocket"])
        try:
            await ws.send_str('452-/t,["burst",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
            await ws.send_bytes(b"first of two")
            await until(lambda: len(node.sio._binary_packet) == 1, "the partial packet is held")
            await ws.close()
            await until(lambda: not node.sio._binary_packet and len(node.disconnected) == 1,
                        "the partial packet is dropped with its connection")
            # nobody else was affected
            assert await other.call("burst", {"n": 1}, namespace="/t", timeout=5) == {"ok": True, "sent": 1}
        finally:
            await other.disconnect()


async def test_binary_attachments_larger_than_a_message_close_the_connection(node: Node) -> None:
    limit = node.sio.eio.max_http_buffer_size
    async with aiohttp.ClientSession() as http:
        ws = await raw_socket(http, node.url)
        await ws.send_str('453-/t,["burst",' + ",".join(f'{{"_placeholder":true,"num":{i}}}' for i in range(3)) + "]")
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_bytes(b"x" * (limit // 2 + 1))
            await ws.send_bytes(b"x" * (limit // 2 + 1))
        assert await closed_by_server(ws), f"the server kept more than {limit} bytes of attachments"
    await until(lambda: not node.sio.eio.sockets and not node.sio._binary_packet, "the connection ended")
