"""Typed application keys: every shared resource lives behind one, never in a module global."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from rooms.accounts import AccountService
    from rooms.attempts import AttemptService
    from rooms.classroom import Classroom
    from rooms.protocols import Placement
    from rooms.store.audit import AuditLog
    from rooms.store.catalog import Catalog
    from rooms.store.database import Database
    from rooms.store.event_writer import EventWriter
    from rooms.store.privacy import Revocations, StudentData
    from rooms.store.review import EvidenceStore, Review
    from rooms.tokens import TokenService
    from signaling.hub import Hub

    from .metrics import Metrics
    from .settings import Settings

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
POOL: web.AppKey[Database] = web.AppKey("pool")
# The durable writer's own connections: a storm of joins must not queue acknowledgements.
WRITER_POOL: web.AppKey[Database] = web.AppKey("writer_pool")
TOKENS: web.AppKey[TokenService] = web.AppKey("tokens")
CATALOG: web.AppKey[Catalog] = web.AppKey("catalog")
REVIEW: web.AppKey[Review] = web.AppKey("review")
EVIDENCE: web.AppKey[EvidenceStore] = web.AppKey("evidence")
STUDENT_DATA: web.AppKey[StudentData] = web.AppKey("student_data")
REVOCATIONS: web.AppKey[Revocations] = web.AppKey("revocations")
AUDIT: web.AppKey[AuditLog] = web.AppKey("audit")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
PLACEMENT: web.AppKey[Placement] = web.AppKey("placement")
HUB: web.AppKey[Hub] = web.AppKey("hub")
WRITER: web.AppKey[EventWriter] = web.AppKey("writer")
ATTEMPTS: web.AppKey[AttemptService] = web.AppKey("attempts")
CLASSROOM: web.AppKey[Classroom] = web.AppKey("classroom")
ACCOUNTS: web.AppKey[AccountService] = web.AppKey("accounts")
