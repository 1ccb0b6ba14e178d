"""A lean Socket.IO v5 / Engine.IO v4 client over one aiohttp WebSocket.

python-socketio's AsyncClient costs more CPU per message than the server it measures; this
speaks just the text protocol the benchmark needs (connect with auth, emit with ack,
receive events, answer pings), so one generator core can drive thousands of sockets.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp

EventHandler = Callable[[str, Any], None]


class ConnectRefused(Exception):
    pass


class LeanSocket:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, namespace: str) -> None:
        self._session = session
        self._url = base_url.replace("http://", "ws://").rstrip("/") + "/socket.io/?EIO=4&transport=websocket"
        self.namespace = namespace
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._next_id = 1
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.on_event: EventHandler | None = None
        self.closed = asyncio.Event()

    async def connect(self, auth: dict[str, Any], timeout: float = 30) -> None:
        self._ws = await self._session.ws_connect(self._url, timeout=aiohttp.ClientWSTimeout(ws_close=timeout),
                                                  autoping=True, max_msg_size=1 << 22)
        opened = await asyncio.wait_for(self._ws.receive(), timeout)
        if opened.type != aiohttp.WSMsgType.TEXT or not opened.data.startswith("0"):
            raise ConnectRefused(f"no engine.io open: {opened.data!r}")
        await self._ws.send_str(f"40{self.namespace},{json.dumps(auth)}")
        while True:
            msg = await asyncio.wait_for(self._ws.receive(), timeout)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise ConnectRefused(f"closed during connect: {msg.type}")
            data: str = msg.data
            if data == "2":
                await self._ws.send_str("3")
                continue
            if data.startswith(f"40{self.namespace},"):
                break
            if data.startswith(f"44{self.namespace},"):
                raise ConnectRefused(data[len(self.namespace) + 3 :])
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._ws is not None
        prefix_event = f"42{self.namespace},"
        prefix_ack = f"43{self.namespace},"
        try:
            async for msg in self._ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                data: str = msg.data
                if data == "2":
                    await self._ws.send_str("3")
                elif data.startswith(prefix_ack):
                    body = data[len(prefix_ack):]
                    bracket = body.index("[")
                    future = self._acks.pop(int(body[:bracket]), None)
                    if future is not None and not future.done():
                        future.set_result(json.loads(body[bracket:])[0])
                elif data.startswith(prefix_event):
                    body = data[len(prefix_event):]
                    bracket = body.index("[")
                    event, *args = json.loads(body[bracket:])
                    if self.on_event is not None:
                        self.on_event(event, args[0] if args else None)
                elif data.startswith("41"):
                    break
        finally:
            self.closed.set()
            for future in self._acks.values():
                if not future.done():
                    future.set_exception(ConnectionError("socket closed"))
            self._acks.clear()

    async def call(self, event: str, data: Any, timeout: float | None = None) -> Any:
        """Emit with an ack and wait for it. Without `timeout` no timer is armed: the
        benchmark's own deadline bounds the run, and wait_for's task per call would cost
        the generator more than the server spends on the message."""
        assert self._ws is not None
        ack_id = self._next_id
        self._next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = future
        await self._ws.send_str(f"42{self.namespace},{ack_id}{json.dumps([event, data])}")
        if timeout is None:
            return await future
        return await asyncio.wait_for(future, timeout)

    async def close(self) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass
