"""A real node on a loopback port (real Postgres), and real Socket.IO clients against it."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp.test_utils import TestServer

from server.app import create_app
from server.settings import Settings
from tests.support.node import ADMIN, EXAM_BODY, bearer


class Recorder:
    """Every event a client receives, with a way to wait for one."""

    def __init__(self) -> None:
        self.events: dict[str, list[Any]] = defaultdict(list)
        self._cond = asyncio.Condition()

    async def push(self, event: str, data: Any) -> None:
        async with self._cond:
            self.events[event].append(data)
            self._cond.notify_all()

    async def wait_for(self, event: str, predicate: Any = None, timeout: float = 5.0) -> Any:
        def find() -> Any:
            for item in self.events[event]:
                if predicate is None or predicate(item):
                    return item
            return None

        async with self._cond:
            await asyncio.wait_for(self._cond.wait_for(lambda: find() is not None), timeout)
            return find()


@dataclass
class Client:
    sio: socketio.AsyncClient
    namespace: str
    received: Recorder = field(default_factory=Recorder)

    async def call(self, event: str, data: Any = None, timeout: float = 10.0) -> dict[str, Any]:
        result = await self.sio.call(event, data if data is not None else {}, namespace=self.namespace, timeout=timeout)
        assert isinstance(result, dict), result
        return result

    async def emit(self, event: str, data: Any) -> None:
        await self.sio.emit(event, data, namespace=self.namespace)

    async def close(self) -> None:
        await self.sio.disconnect()


EVENTS = (
    "joined",
    "presence",
    "violation",
    "progress",
    "hand",
    "submitted",
    "control",
    "announce",
    "deadline",
    "thumbnail",
    "rtc",
    "resync",
)


class Live:
    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url = url
        self.http = http
        self.clients: list[Client] = []

    async def rest(self, method: str, path: str, body: Any = None, token: str = ADMIN) -> Any:
        async with self.http.request(method, self.url + path, json=body, headers=bearer(token)) as resp:
            data = await resp.json()
            assert resp.status < 300, (path, resp.status, data)
            return data

    async def room(self, *, seats: int = 30, exam: dict[str, Any] | None = None) -> dict[str, Any]:
        exam_data = await self.rest("POST", "/api/exams", exam or EXAM_BODY)
        room = await self.rest("POST", f"/api/exams/{exam_data['id']}/rooms", {"name": "Hall", "seats": seats})
        room["exam"] = exam_data
        return dict(room)

    async def invites(self, room_id: str, n: int, prefix: str = "s") -> list[str]:
        students = [{"id": f"{prefix}-{i}", "name": f"Student {i}"} for i in range(n)]
        data = await self.rest("POST", f"/api/rooms/{room_id}/invites", {"students": students})
        return [i["token"] for i in data["invites"]]

    async def teacher_token(self, rooms: list[str], sub: str = "t-1") -> str:
        data = await self.rest("POST", "/api/tokens", {"role": "teacher", "sub": sub, "rooms": rooms})
        return str(data["token"])

    async def connect(self, namespace: str, token: str | None, **kwargs: Any) -> Client:
        sio = socketio.AsyncClient(reconnection=False)
        client = Client(sio, namespace)
        for event in EVENTS:
            sio.on(event, forward(client.received, event), namespace=namespace)
        auth = {"token": token} if token is not None else None
        try:
            await sio.connect(self.url, namespaces=[namespace], auth=auth, transports=["websocket"], **kwargs)
        except socketio.exceptions.ConnectionError:
            # A refused client keeps its HTTP session; close it so the refusal leaks nothing.
            http = getattr(sio.eio, "http", None)
            if http is not None and not http.closed:
                await http.close()
            raise
        self.clients.append(client)
        return client

    async def student(self, token: str, join: bool = True) -> tuple[Client, dict[str, Any]]:
        client = await self.connect("/student", token)
        ack = await client.call("join") if join else {}
        if join:
            assert ack["ok"], ack
        return client, ack

    async def teacher(self, token: str, room_id: str) -> tuple[Client, dict[str, Any]]:
        client = await self.connect("/teacher", token)
        ack = await client.call("watch", {"room_id": room_id})
        assert ack["ok"], ack
        return client, ack


def forward(recorder: Recorder, event: str) -> Any:
    async def handler(data: Any = None) -> None:
        await recorder.push(event, data)

    return handler


@pytest.fixture
def live_settings(settings: Settings) -> Settings:
    return settings.replace(reconnect_grace_seconds=1.0, writer_flush_ms=5.0)


@contextlib.asynccontextmanager
async def running_node(settings: Settings) -> AsyncIterator[Live]:
    """A real node on a free loopback port, and a `Live` driver for it."""
    app = create_app(settings)
    server = TestServer(app)
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        env = Live(str(server.make_url("")).rstrip("/"), http)
        env.app = app  # type: ignore[attr-defined]
        try:
            yield env
        finally:
            for client in env.clients:
                if client.sio.connected:
                    await client.sio.disconnect()
            await server.close()


@pytest.fixture
async def live(live_settings: Settings) -> AsyncIterator[Live]:
    async with running_node(live_settings) as env:
        yield env
