"""A lean Socket.IO v5 / Engine.IO v4 client over one aiohttp WebSocket.

python-socketio's AsyncClient costs more CPU per message than the server it measures; this
speaks just the text protocol the benchmark needs (connect with auth, emit with ack,
receive events, answer pings), so one generator core can drive thousands of sockets.

The hot path avoids everything that costs per message but is not needed to measure:

- `send_event` arms no future and no timer: it records the send time under the ack id in
  a dict, and the reader turns the ack into a latency sample when it arrives;
- an ack is recognised as success by its first bytes (`[{"ok":true`) and parsed as JSON
  only when it is an error;
- a teacher's event is not decoded either: the student put its send time in the payload
  under a key no other field uses (`"bt":`), and the reader slices it out (`bench_time`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

TIME_KEY = '"bt":'


class ConnectRefused(Exception):
    pass


@dataclass(slots=True)
class Stats:
    """What one generator process measured during one phase (reset between phases)."""

    ack: list[float] = field(default_factory=list)  # event -> durable ack, seconds
    teacher: list[float] = field(default_factory=list)  # event -> teacher, seconds
    errors: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    delivered: int = 0  # every message the sockets received (acks, events), pings excluded

    def error(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1


def bench_time(body: str) -> float | None:
    """The send time a student put in `details.bt`, sliced out without decoding the JSON."""
    at = body.find(TIME_KEY)
    if at < 0:
        return None
    start = at + len(TIME_KEY)
    end = start
    n = len(body)
    while end < n and body[end] not in ",}]":
        end += 1
    try:
        return float(body[start:end])
    except ValueError:
        return None


class LeanSocket:
    __slots__ = (
        "_calls",
        "_local",
        "_next_id",
        "_reader",
        "_sent",
        "_session",
        "_stats",
        "_url",
        "_ws",
        "closed",
        "namespace",
        "on_event",
    )

    def __init__(self, session: aiohttp.ClientSession, base_url: str, namespace: str, stats: Stats) -> None:
        self._session = session
        self._url = (
            base_url.replace("http://", "ws://").replace("https://", "wss://").rstrip("/")
            + "/socket.io/?EIO=4&transport=websocket"
        )
        self.namespace = namespace
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._next_id = 1
        self._calls: dict[int, asyncio.Future[Any]] = {}  # acks someone awaits (join, watch)
        self._sent: dict[int, float] = {}  # fire-and-record events: perf_counter at send
        self._reader: asyncio.Task[None] | None = None
        self._stats = stats
        self.on_event: Callable[[str], None] | None = None  # gets the raw `["event",{...}]` text
        self.closed = False

    @property
    def in_flight(self) -> int:
        return len(self._sent)

    def use_stats(self, stats: Stats) -> None:
        self._stats = stats

    async def connect(self, auth: dict[str, Any], timeout: float = 30) -> None:
        self._ws = await self._session.ws_connect(
            self._url, timeout=aiohttp.ClientWSTimeout(ws_close=5), autoping=True, max_msg_size=1 << 22
        )
        opened = await asyncio.wait_for(self._ws.receive(), timeout)
        if opened.type != aiohttp.WSMsgType.TEXT or not opened.data.startswith("0"):
            raise ConnectRefused(f"no engine.io open: {opened.data!r}"[:200])
        await self._ws.send_str(f"40{self.namespace},{json.dumps(auth, separators=(',', ':'))}")
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
        ws = self._ws
        prefix_event = f"42{self.namespace},"
        prefix_ack = f"43{self.namespace},"
        n_ack = len(prefix_ack)
        n_event = len(prefix_event)
        perf = time.perf_counter
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                data: str = msg.data
                if data == "2":
                    await ws.send_str("3")
                    continue
                stats = self._stats
                if data.startswith(prefix_ack):
                    stats.delivered += 1
                    bracket = data.index("[", n_ack)
                    ack_id = int(data[n_ack:bracket])
                    start = self._sent.pop(ack_id, None)
                    if start is not None:
                        if data.startswith('[{"ok":true', bracket):
                            stats.ack.append(perf() - start)
                        else:
                            stats.error(_error_code(data[bracket:]))
                        continue
                    future = self._calls.pop(ack_id, None)
                    if future is not None and not future.done():
                        future.set_result(json.loads(data[bracket:])[0])
                elif data.startswith(prefix_event):
                    stats.delivered += 1
                    if self.on_event is not None:
                        self.on_event(data[n_event:])
                elif data.startswith("41"):
                    break
        except Exception as exc:  # a reset connection ends the reader; the caller sees `closed`
            self._stats.error(f"socket:{type(exc).__name__}")
        finally:
            self.closed = True
            for future in self._calls.values():
                if not future.done():
                    future.set_exception(ConnectionError("socket closed"))
            self._calls.clear()

    async def call(self, event: str, data: Any, timeout: float = 60) -> Any:
        """Emit with an ack and wait for the decoded ack (join, watch: not the hot path)."""
        assert self._ws is not None
        ack_id = self._next_id
        self._next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._calls[ack_id] = future
        await self._ws.send_str(f"42{self.namespace},{ack_id}{json.dumps([event, data], separators=(',', ':'))}")
        return await asyncio.wait_for(future, timeout)

    async def send_event(self, seq: int, occurred_at: str) -> None:
        """A client `event` whose ack latency the reader records; no future, no timer."""
        ws = self._ws
        assert ws is not None
        ack_id = self._next_id
        self._next_id += 1
        self._sent[ack_id] = time.perf_counter()
        self._stats.sent += 1
        await ws.send_str(
            f'42{self.namespace},{ack_id}["event",{{"seq":{seq},"kind":"copy","occurred_at":"{occurred_at}",'
            f'"details":{{"bt":{time.time():.6f}}}}}]'
        )

    def forget_in_flight(self) -> int:
        n = len(self._sent)
        self._sent.clear()
        return n

    def abort(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        self.closed = True

    async def close(self) -> None:
        if self._ws is not None and not self._ws.closed:
            try:
                await self._ws.close()
            except Exception:
                pass
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass
        self.closed = True


def _error_code(body: str) -> str:
    try:
        ack = json.loads(body)[0]
        return str(ack.get("error", {}).get("code", "error"))
    except (ValueError, AttributeError, IndexError):
        return "bad_ack"
