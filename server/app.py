"""The app factory: `create_app(settings)` builds one node; nothing lives in module globals."""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from server.http.accounts_api import add_auth_routes
from server.http.api import ROUTES, add_routes
from server.http.credentials import credentials_middleware
from server.http.errors import error_middleware
from server.http.observability import observability_middleware, readiness
from server.http.oidc import add_oidc
from server.http.pages import add_pages

from .analysis import ANALYSIS, PEERS, RELAY, analysis_ctx
from .backends import BACKENDS, backends_ctx
from .collector import gc_ctx
from .drain import install_drain
from .http import openapi
from .keys import (
    ACCOUNTS,
    ATTEMPTS,
    AUDIT,
    CATALOG,
    CLASSROOM,
    EVIDENCE,
    HUB,
    METRICS,
    PLACEMENT,
    POOL,
    REVIEW,
    REVOCATIONS,
    SETTINGS,
    STUDENT_DATA,
    TOKENS,
    WRITER,
    WRITER_POOL,
)
from .lifecycle import database_ctx, loop_lag_ctx
from .live import live_ctx
from .lti import add_lti
from .lti.services import LTI_SERVICES, lti_services_ctx
from .lti.services_api import add_lti_form_routes
from .settings import Settings
from .speaking import speaking_ctx
from .tls import socketio_sees_https
from .wire import NODE, build_node

logger = logging.getLogger(__name__)


def _version() -> str:
    try:
        return version("proctor-server")
    except PackageNotFoundError:  # running from a source tree
        return "0.0.0"


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive", "node": request.app[SETTINGS].node_id})


async def readyz(request: web.Request) -> web.Response:
    reason = await readiness(request.app)
    if reason is not None:
        return web.json_response({"status": reason.split(" (")[0], "reason": reason}, status=503)
    return web.json_response({"status": "ready", "node": request.app[PLACEMENT].node_id})


async def metrics_handler(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(settings: Settings) -> web.Application:
    settings = settings.with_runtime_defaults()
    node = build_node(settings)
    middlewares = [observability_middleware, error_middleware, credentials_middleware]
    if settings.tls_cert:
        # python-engineio learns the scheme only from X-Forwarded-Proto (server/tls.py).
        middlewares.append(socketio_sees_https)
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=middlewares)
    app[NODE] = node
    # What the HTTP handlers read (each key next to the type it holds, in server/keys.py).
    app[SETTINGS] = settings
    app[METRICS] = node.metrics
    app[TOKENS] = node.tokens
    app[POOL] = node.database
    app[WRITER_POOL] = node.writer_database
    app[CATALOG] = node.catalog
    app[REVIEW] = node.review
    app[EVIDENCE] = node.evidence
    app[STUDENT_DATA] = node.student_data
    app[REVOCATIONS] = node.revocations
    app[AUDIT] = node.audit
    app[BACKENDS] = node.backends
    app[PLACEMENT] = node.backends.placement
    app[HUB] = node.hub
    app[WRITER] = node.writer
    app[ATTEMPTS] = node.attempts
    app[CLASSROOM] = node.classroom
    app[ACCOUNTS] = node.accounts
    app[ANALYSIS] = node.analysis
    app[RELAY] = node.relay
    if node.analysis is not None:
        app[PEERS] = node.analysis.peers
    if node.lti_services is not None:
        app[LTI_SERVICES] = node.lti_services
    node.hub.attach(app)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    document = openapi.build(ROUTES, _version())
    app.router.add_get("/api/openapi.json", openapi.handler(document))
    add_routes(app)
    add_auth_routes(app)  # /auth/*: sign-in, sessions (server/http/accounts_api.py)
    install_drain(app)  # POST /admin/drain, SIGTERM drain (docs/cluster.md)
    add_pages(app)
    add_oidc(app, node.oidc)  # /auth/config, /auth/oidc/login and callback (docs/accounts.md)
    add_lti(app, node.lti)  # /lti/login, /lti/launch, /lti/bind, /lti/jwks (docs/lti.md)
    add_lti_form_routes(app)  # the LTI services' one-time forms (server/lti/services_api.py)

    # Started in this order, stopped in the reverse (aiohttp cleanup contexts).
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(loop_lag_ctx)
    app.cleanup_ctx.append(backends_ctx)
    app.cleanup_ctx.append(live_ctx)
    app.cleanup_ctx.append(gc_ctx)
    app.cleanup_ctx.append(analysis_ctx)
    app.cleanup_ctx.append(speaking_ctx)  # Step 13 B: after the peers it listens to
    app.cleanup_ctx.append(lti_services_ctx)  # Step 11 B: the grade outbox worker
    return app
