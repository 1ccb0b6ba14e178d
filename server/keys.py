"""Typed application keys: every shared resource lives behind one, never in a module global."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    import asyncpg

    from rooms.audit import AuditLog
    from rooms.auth import TokenService
    from rooms.catalog import Catalog
    from rooms.review import Review

    from .lifecycle import NodeState
    from .metrics import Metrics
    from .settings import Settings

SETTINGS: web.AppKey["Settings"] = web.AppKey("settings")
POOL: web.AppKey["asyncpg.Pool"] = web.AppKey("pool")
TOKENS: web.AppKey["TokenService"] = web.AppKey("tokens")
CATALOG: web.AppKey["Catalog"] = web.AppKey("catalog")
REVIEW: web.AppKey["Review"] = web.AppKey("review")
AUDIT: web.AppKey["AuditLog"] = web.AppKey("audit")
METRICS: web.AppKey["Metrics"] = web.AppKey("metrics")
NODE: web.AppKey["NodeState"] = web.AppKey("node")
