"""LTI Proctoring Services sessions in Postgres (lti_proctoring_sessions): one per
LtiStartProctoring, from the consent and system check to the assessment's end."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import asyncpg

from .database import Pool

SESSION_TTL = timedelta(hours=6)
State = Literal["checking", "started", "ended", "terminated"]


@dataclass(frozen=True, slots=True)
class ProctoringSession:
    id: str
    platform_id: str
    deployment_id: str
    subject: str
    resource_link_id: str
    attempt_number: str
    session_data: str
    start_assessment_url: str
    acs_url: str | None
    room_id: str | None
    state: State


def _session(row: asyncpg.Record) -> ProctoringSession:
    return ProctoringSession(
        id=row["id"],
        platform_id=str(row["platform_id"]),
        deployment_id=row["deployment_id"],
        subject=row["subject"],
        resource_link_id=row["resource_link_id"],
        attempt_number=row["attempt_number"],
        session_data=row["session_data"],
        start_assessment_url=row["start_assessment_url"],
        acs_url=row["acs_url"],
        room_id=str(row["room_id"]) if row["room_id"] is not None else None,
        state=row["state"],
    )


class ProctoringStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def room_of_link(self, platform_id: str, deployment_id: str, resource_link_id: str) -> str | None:
        value = await self._pool.fetchval(
            "SELECT room_id FROM lti_links WHERE platform_id = $1 AND deployment_id = $2 AND resource_link_id = $3",
            uuid.UUID(platform_id),
            deployment_id,
            resource_link_id,
        )
        return str(value) if value is not None else None

    async def open(
        self,
        platform_id: str,
        deployment_id: str,
        subject: str,
        resource_link_id: str,
        attempt_number: str,
        session_data: str,
        start_assessment_url: str,
        acs_url: str | None,
        room_id: str | None,
    ) -> str:
        session_id = secrets.token_urlsafe(32)
        await self._pool.execute(
            "INSERT INTO lti_proctoring_sessions (id, platform_id, deployment_id, subject, resource_link_id,"
            " attempt_number, session_data, start_assessment_url, acs_url, room_id, expires_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now() + $11::interval)",
            session_id,
            uuid.UUID(platform_id),
            deployment_id,
            subject,
            resource_link_id,
            attempt_number,
            session_data,
            start_assessment_url,
            acs_url,
            uuid.UUID(room_id) if room_id else None,
            SESSION_TTL,
        )
        return session_id

    async def start(self, session_id: str) -> ProctoringSession | None:
        """checking → started, once, before the session expires."""
        row = await self._pool.fetchrow(
            "UPDATE lti_proctoring_sessions SET state = 'started', updated_at = now()"
            " WHERE id = $1 AND state = 'checking' AND expires_at > now() RETURNING *",
            session_id,
        )
        return _session(row) if row is not None else None

    async def finish(
        self, platform_id: str, subject: str, resource_link_id: str, attempt_number: str | None, state: State
    ) -> ProctoringSession | None:
        """The newest started session of this user and link (and attempt, if named) → `state`."""
        row = await self._pool.fetchrow(
            "UPDATE lti_proctoring_sessions SET state = $5, updated_at = now() WHERE id = ("
            " SELECT id FROM lti_proctoring_sessions WHERE platform_id = $1 AND subject = $2"
            " AND resource_link_id = $3 AND ($4::text IS NULL OR attempt_number = $4) AND state = 'started'"
            " ORDER BY created_at DESC LIMIT 1) RETURNING *",
            uuid.UUID(platform_id),
            subject,
            resource_link_id,
            attempt_number,
            state,
        )
        return _session(row) if row is not None else None

    async def started_for_attempt(self, attempt_id: str) -> ProctoringSession | None:
        """The started session of an attempt's student in the attempt's room (for a termination)."""
        row = await self._pool.fetchrow(
            "SELECT s.* FROM attempts a JOIN lti_users u ON u.student_id = a.student_id"
            " JOIN lti_proctoring_sessions s ON s.platform_id = u.platform_id AND s.subject = u.subject"
            " AND s.room_id = a.room_id WHERE a.id = $1 AND s.state = 'started' ORDER BY s.created_at DESC LIMIT 1",
            uuid.UUID(attempt_id),
        )
        return _session(row) if row is not None else None
