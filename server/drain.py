"""Draining a node: take no new rooms, hand rooms over, send clients elsewhere, then exit.

Two ways in: `POST /admin/drain` (admin token; `proctor drain` sends it) and SIGTERM
(`on_shutdown`). While draining, a new Socket.IO handshake is answered 503, which Nginx
(`proxy_next_upstream ... http_503`) turns into a retry on the next node; existing
connections are disconnected, and the clients reconnect through Nginx and resume their
attempts there. The node exits when no client is left or after
`PROCTOR_DRAIN_TIMEOUT_SECONDS`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from rooms.tokens import Claims

from .backends import BACKENDS
from .keys import HUB, PLACEMENT, SETTINGS

logger = logging.getLogger(__name__)

_DRAINING: web.AppKey[asyncio.Event] = web.AppKey("drain_started")
_DRAINED: web.AppKey[asyncio.Event] = web.AppKey("drain_done")
_TASKS: web.AppKey[set[asyncio.Task[None]]] = web.AppKey("drain_tasks")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def install_drain(app: web.Application) -> None:
    """The drain endpoint, the 503 for new live connections while draining, and SIGTERM."""
    app[_DRAINING] = asyncio.Event()
    app[_DRAINED] = asyncio.Event()
    app[_TASKS] = set()
    app.middlewares.append(_refuse_new_connections)
    app.router.add_post("/admin/drain", drain_handler)
    app.on_shutdown.append(_drain_on_shutdown)


@web.middleware
async def _refuse_new_connections(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.app[PLACEMENT].draining and request.path.startswith("/socket.io") and "sid" not in request.query:
        return web.json_response(
            {"error": {"code": "unavailable", "message": "this node is draining; connect again"}},
            status=503,
            headers={"Retry-After": "1"},
        )
    return await handler(request)


def _admin(request: web.Request) -> Claims:
    # The one credential lookup (signed token, personal token or admin session + CSRF).
    from server.http.credentials import claims_of

    claims = claims_of(request)
    claims.require_role("admin")
    return claims


async def drain_handler(request: web.Request) -> web.Response:
    """Start draining; `?exit=0` keeps the process after (default: it exits when drained)."""
    _admin(request)
    app = request.app
    exit_after = request.query.get("exit", "1") != "0"
    if not app[_DRAINING].is_set():
        task = asyncio.get_running_loop().create_task(_drain_then_exit(app, exit_after))
        app[_TASKS].add(task)
        task.add_done_callback(app[_TASKS].discard)
    hub = app[HUB]
    return web.json_response(
        {
            "status": "draining",
            "node": app[SETTINGS].node_id,
            "clients": len(hub.students.sessions) + len(hub.teachers.sessions),
        },
        status=202,
    )


async def _drain_then_exit(app: web.Application, exit_after: bool) -> None:
    try:
        await drain(app)
    except Exception:
        logger.exception("drain failed; exiting anyway" if exit_after else "drain failed")
    if exit_after:
        logger.info("drained; exiting")
        os.kill(os.getpid(), signal.SIGTERM)


async def _drain_on_shutdown(app: web.Application) -> None:
    await drain(app)


async def drain(app: web.Application) -> None:
    """Idempotent: the second caller waits for the first to finish."""
    if app[_DRAINING].is_set():
        await app[_DRAINED].wait()
        return
    app[_DRAINING].set()
    settings = app[SETTINGS]
    placement = app[PLACEMENT]
    hub = app[HUB]
    try:
        placement.draining = True
        cluster = app[BACKENDS].cluster
        if cluster is not None:
            await cluster.placement.handover()
            cluster.registry.wake()
        await hub.disconnect_all()
        # A Socket.IO disconnect leaves the Engine.IO transport open; close it too, so the
        # clients reconnect now and the server's shutdown has no connection to wait for.
        await _close_transports(hub.sio.eio, timeout=2)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.drain_timeout_seconds
        while hub.students.sessions or hub.teachers.sessions:
            if loop.time() >= deadline:
                logger.warning(
                    "drain: timed out with %d clients left", len(hub.students.sessions) + len(hub.teachers.sessions)
                )
                break
            await asyncio.sleep(0.05)
        logger.info("drain: %s has no clients and no rooms", settings.node_id)
    finally:
        app[_DRAINED].set()


async def _close_transports(eio: Any, timeout: float) -> None:
    """Close every Engine.IO socket, waiting at most `timeout` seconds.

    Not `eio.disconnect()`: it calls `asyncio.wait` on the sockets it finds, which raises
    when the last one closed on its own in the meantime (seen in the cluster drain test),
    and a socket whose client already vanished waits forever for its send queue to drain
    (engineio `AsyncSocket.close` -> `queue.join`).
    """
    closing = [
        asyncio.ensure_future(sock.close(reason=eio.reason.SERVER_DISCONNECT)) for sock in list(eio.sockets.values())
    ]
    if not closing:
        return
    _, pending = await asyncio.wait(closing, timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        logger.warning("drain: %d Engine.IO sockets did not close in time", len(pending))
