"""Baseline (b): a raw aiohttp WebSocket server — the practical ceiling.

It speaks just enough of Engine.IO / Socket.IO, with fixed strings and slicing, for the
load generator to run unchanged: the open packet, namespace connects, `watch` and `join`
acks, and for a student's `event` it forwards the frame's payload to the room's teacher as
`violation` and acks — no JSON decoding, no Socket.IO machinery. It pings every socket
every 10 s like the other servers (one sweeping task, not a timer per socket). What is
left is aiohttp's WebSocket framing and the event loop: no Python server speaking this
protocol can do much better on the same core.

    python -m benchmarks.baselines.ws_echo --port 8002
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
from collections.abc import AsyncIterator

from aiohttp import WSMsgType, web

OPEN = '0{"sid":"s","upgrades":[],"pingInterval":10000,"pingTimeout":10000,"maxPayload":1000000}'
PING_INTERVAL = 10.0

SOCKETS = web.AppKey("sockets", set[web.WebSocketResponse])
TEACHERS = web.AppKey("teachers", dict[str, web.WebSocketResponse])


def _quoted_after(data: str, key: str) -> str:
    at = data.find(key)
    if at < 0:
        return ""
    start = at + len(key)
    return data[start : data.find('"', start)]


async def socket_io(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20)
    await ws.prepare(request)
    sockets = request.app[SOCKETS]
    teachers = request.app[TEACHERS]
    sockets.add(ws)
    room = ""
    ids = itertools.count(1)
    try:
        await ws.send_str(OPEN)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            data: str = msg.data
            if data.startswith("42/student,"):
                bracket = data.index("[", 11)
                ack_id = data[11:bracket]
                if data.startswith('["event",', bracket):
                    teacher = teachers.get(room)
                    if teacher is not None and not teacher.closed:
                        await teacher.send_str('42/teacher,["violation",' + data[bracket + 9 :])
                    await ws.send_str(f'43/student,{ack_id}[{{"ok":true,"stored":true}}]')
                else:  # join
                    await ws.send_str(f'43/student,{ack_id}[{{"ok":true,"last_seq":0}}]')
            elif data == "3":
                continue
            elif data.startswith("40/student,"):
                room = _quoted_after(data, '"token":"')
                await ws.send_str(f'40/student,{{"sid":"{next(ids)}"}}')
            elif data.startswith("40/teacher,"):
                await ws.send_str(f'40/teacher,{{"sid":"{next(ids)}"}}')
            elif data.startswith("42/teacher,"):  # watch
                bracket = data.index("[", 11)
                teachers[_quoted_after(data, '"room_id":"')] = ws
                await ws.send_str(f'43/teacher,{data[11:bracket]}[{{"ok":true}}]')
    finally:
        sockets.discard(ws)
    return ws


async def pinger(app: web.Application) -> AsyncIterator[None]:
    async def sweep() -> None:
        # A tenth of the sockets every second: each is pinged every ~10 s, like Engine.IO.
        step = 0
        while True:
            await asyncio.sleep(PING_INTERVAL / 10)
            for i, ws in enumerate(list(app[SOCKETS])):  # type: ignore[index]
                if i % 10 == step and not ws.closed:
                    try:
                        await ws.send_str("2")
                    except ConnectionError:
                        pass
            step = (step + 1) % 10

    task = asyncio.create_task(sweep())
    yield
    task.cancel()


def create_app() -> web.Application:
    app = web.Application()
    app[SOCKETS] = set()
    app[TEACHERS] = {}
    app.router.add_get("/socket.io/", socket_io)

    async def ready(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    app.router.add_get("/readyz", ready)
    app.cleanup_ctx.append(pinger)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--no-gc-tuning", action="store_true")
    args = parser.parse_args()
    import uvloop

    if not args.no_gc_tuning:
        # The same process tuning as `proctor serve` (server/collector.py tune_gc), so that the
        # comparison measures the application, not the collector's thresholds.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)

    uvloop.install()
    web.run_app(create_app(), host="127.0.0.1", port=args.port, access_log=None, print=None, backlog=2048)


if __name__ == "__main__":
    main()
