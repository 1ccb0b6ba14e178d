"""What operations see of each HTTP request: its id, and readiness as a metric.

- Request ids: a client's (or Nginx's) `X-Request-Id` is kept when it is sane (1–64 of
  `[A-Za-z0-9._-]`; anything else could forge log lines or bloat them), otherwise one is
  made. It is set in `server.logs.REQUEST_ID` for the request's code and every task it
  starts (tasks copy the context), so each log line of the request carries it, and it is
  echoed in the response's `X-Request-Id`.
- `proctor_ready` (0/1): refreshed by the same check as `/readyz` on every scrape of
  `/metrics`, so the alert "not ready" needs no probe beside Prometheus and is never staler
  than the scrape itself.

Outermost middleware: it also sees the errors `error_middleware` lets through.
"""

from __future__ import annotations

import asyncio
import re
import uuid

from aiohttp import web

from server.backends import BACKENDS
from server.keys import METRICS, PLACEMENT, POOL
from server.logs import REQUEST_ID

from .errors import Handler

HEADER = "X-Request-Id"
_SANE = re.compile(r"[A-Za-z0-9._-]{1,64}")
READY_TIMEOUT_SECONDS = 2.0


def request_id_of(request: web.Request) -> str:
    offered = request.headers.get(HEADER, "")
    if _SANE.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


async def readiness(app: web.Application) -> str | None:
    """None when the node is ready; else why not (the `/readyz` rule: not draining, Postgres
    answers `SELECT 1` within 2 s, and in a cluster the last heartbeat reached Redis)."""
    if app[PLACEMENT].draining:
        return "draining"
    pool = app.get(POOL)
    if pool is None:
        return "database not open"
    try:
        await asyncio.wait_for(pool.fetchval("SELECT 1"), timeout=READY_TIMEOUT_SECONDS)
    except Exception as exc:  # any failure means "not ready"
        return f"database unreachable ({type(exc).__name__})"
    cluster = app[BACKENDS].cluster
    if cluster is not None and not cluster.registry.healthy:
        # No heartbeat got through (Redis down, or its certificate not trusted): the node
        # cannot take part in placement or presence, so a balancer should not send it students.
        return "redis unreachable"
    return None


@web.middleware
async def observability_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request_id_of(request)
    token = REQUEST_ID.set(request_id)
    try:
        if request.path == "/metrics":
            request.app[METRICS].ready.set(0 if await readiness(request.app) else 1)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers[HEADER] = request_id
            raise
        if not response.prepared:  # a WebSocket or streamed response has sent its headers
            response.headers[HEADER] = request_id
        return response
    finally:
        REQUEST_ID.reset(token)
