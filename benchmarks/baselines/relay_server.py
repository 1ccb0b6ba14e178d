"""Baseline (a): a bare python-socketio relay — no auth, no storage, no schema.

The same two namespaces and events the load generator speaks: a teacher `watch`es a room,
a student `join`s (its room is its auth token), and on a student's `event` the server
emits `violation` to the room's teacher and acks. What remains is the cost of
python-socketio + python-engineio + aiohttp for the same traffic: the floor our server
can approach.

    python -m benchmarks.baselines.relay_server --port 8001
"""

from __future__ import annotations

import argparse
import gc
from typing import Any

import socketio
from aiohttp import web


def create_app(ping_interval: float = 10) -> web.Application:
    # Same Engine.IO settings as the proctor hub (signaling/hub.py): ping every 10 s.
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        cors_allowed_origins=None,
        ping_interval=ping_interval,
        ping_timeout=10,
        logger=False,
        engineio_logger=False,
    )
    rooms: dict[str, str] = {}

    class Student(socketio.AsyncNamespace):  # type: ignore[misc]
        async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
            rooms[sid] = str((auth or {}).get("token", ""))

        async def on_disconnect(self, sid: str, reason: Any = None) -> None:
            rooms.pop(sid, None)

        async def on_join(self, sid: str, data: Any) -> dict[str, Any]:
            return {"ok": True, "last_seq": 0}

        async def on_event(self, sid: str, data: Any) -> dict[str, Any]:
            await sio.emit("violation", data, room="t:" + rooms.get(sid, ""), namespace="/teacher")
            return {"ok": True, "seq": data.get("seq"), "stored": True}

    class Teacher(socketio.AsyncNamespace):  # type: ignore[misc]
        async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
            return None

        async def on_watch(self, sid: str, data: Any) -> dict[str, Any]:
            await self.enter_room(sid, "t:" + str(data.get("room_id")))
            return {"ok": True}

    sio.register_namespace(Student("/student"))
    sio.register_namespace(Teacher("/teacher"))
    app = web.Application()
    sio.attach(app, socketio_path="socket.io")

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    app.router.add_get("/readyz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--no-gc-tuning", action="store_true")
    parser.add_argument("--ping-interval", type=float, default=10, help="Engine.IO ping interval, seconds")
    args = parser.parse_args()
    import uvloop

    if not args.no_gc_tuning:
        # The same process tuning as `proctor serve` (server/collector.py tune_gc), so that the
        # comparison measures the application, not the collector's thresholds.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)

    uvloop.install()
    web.run_app(
        create_app(args.ping_interval), host="127.0.0.1", port=args.port, access_log=None, print=None, backlog=2048
    )


if __name__ == "__main__":
    main()
