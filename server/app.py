"""The app factory: `create_app(settings)` builds one node; nothing lives in module globals."""

from __future__ import annotations

import asyncio
import logging
from importlib.metadata import PackageNotFoundError, version

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rooms.tokens import TokenService

from .http import openapi
from server.http.api import ROUTES, add_routes
from server.http.errors import error_middleware
from server.http.observability import observability_middleware
from .analysis import analysis_ctx
from .backends import backends_ctx, create_backends
from .collector import gc_ctx
from .drain import install_drain
from .keys import BACKENDS, HUB, METRICS, PLACEMENT, POOL, SETTINGS, TOKENS
from .lifecycle import database_ctx, loop_lag_ctx
from .live import create_hub, live_ctx
from .metrics import Metrics
from server.http.pages import add_pages
from .settings import Settings

logger = logging.getLogger(__name__)


def _version() -> str:
    try:
        return version("proctor-server")
    except PackageNotFoundError:  # running from a source tree
        return "0.0.0"


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive", "node": request.app[SETTINGS].node_id})


async def readyz(request: web.Request) -> web.Response:
    placement = request.app[PLACEMENT]
    if placement.draining:
        return web.json_response({"status": "draining"}, status=503)
    try:
        pool = request.app[POOL]
        await asyncio.wait_for(pool.fetchval("SELECT 1"), timeout=2)
    except Exception as exc:  # any failure means "not ready"; the reason helps the operator
        return web.json_response({"status": "database unreachable", "reason": type(exc).__name__}, status=503)
    return web.json_response({"status": "ready", "node": placement.node_id})


async def metrics_handler(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(settings: Settings) -> web.Application:
    settings = settings.with_runtime_defaults()
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[
        observability_middleware, error_middleware])
    app[SETTINGS] = settings
    app[TOKENS] = TokenService(settings.secret, admin_token=settings.admin_token)
    app[METRICS] = Metrics()
    app[BACKENDS] = backends = create_backends(settings)
    app[PLACEMENT] = backends.placement
    app[HUB] = create_hub(app)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    document = openapi.build(ROUTES, _version())
    app.router.add_get("/api/openapi.json", openapi.handler(document))
    add_routes(app)
    install_drain(app)  # POST /admin/drain, SIGTERM drain (docs/cluster.md)
    add_pages(app)

    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(loop_lag_ctx)
    app.cleanup_ctx.append(backends_ctx)
    app.cleanup_ctx.append(live_ctx)
    app.cleanup_ctx.append(gc_ctx)
    app.cleanup_ctx.append(analysis_ctx)
    return app
