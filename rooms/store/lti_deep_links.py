"""Deep linking in Postgres: the request kept between the platform's LtiDeepLinkingRequest and
the instructor's choice (one-time, expiring), the binding the response promised, and the
exams and rooms an instructor may choose from."""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .database import Pool

REQUEST_TTL = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class DeepLinkRequest:
    id: str
    platform_id: str
    deployment_id: str
    subject: str
    owner: str
    return_url: str
    data: str | None


class DeepLinkStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def open_request(
        self, platform_id: str, deployment_id: str, subject: str, owner: str, return_url: str, data: str | None
    ) -> str:
        request_id = secrets.token_urlsafe(32)
        await self._pool.execute(
            "INSERT INTO lti_deep_link_requests (id, platform_id, deployment_id, subject, owner, return_url, data,"
            " expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, now() + $8::interval)",
            request_id,
            uuid.UUID(platform_id),
            deployment_id,
            subject,
            owner,
            return_url,
            data,
            REQUEST_TTL,
        )
        return request_id

    async def peek(self, request_id: str) -> DeepLinkRequest | None:
        row = await self._pool.fetchrow(
            "SELECT * FROM lti_deep_link_requests WHERE id = $1 AND used_at IS NULL AND expires_at > now()",
            request_id,
        )
        return _request(row) if row is not None else None

    async def consume(self, request_id: str) -> DeepLinkRequest | None:
        """The request, once: a second submit of the same form (or a replay) gets None."""
        row = await self._pool.fetchrow(
            "UPDATE lti_deep_link_requests SET used_at = now()"
            " WHERE id = $1 AND used_at IS NULL AND expires_at > now() RETURNING *",
            request_id,
        )
        # Expired and used requests are of no use to anyone: drop them as we go.
        await self._pool.execute("DELETE FROM lti_deep_link_requests WHERE expires_at < now() - interval '1 day'")
        return _request(row) if row is not None else None

    async def bind(self, platform_id: str, deployment_id: str, room_id: str, created_by: str) -> str:
        binding_id = secrets.token_urlsafe(18)
        await self._pool.execute(
            "INSERT INTO lti_bindings (id, platform_id, deployment_id, room_id, created_by)"
            " VALUES ($1, $2, $3, $4, $5)",
            binding_id,
            uuid.UUID(platform_id),
            deployment_id,
            uuid.UUID(room_id),
            created_by,
        )
        return binding_id

    async def bound_room(self, platform_id: str, binding_id: str) -> str | None:
        """THE LAUNCH'S READ: the room a resource link's `custom.proctor_binding` names, if that
        binding was made for this same platform (a binding id copied to another platform's
        activity binds nothing)."""
        room = await self._pool.fetchval(
            "SELECT room_id FROM lti_bindings WHERE id = $1 AND platform_id = $2", binding_id, uuid.UUID(platform_id)
        )
        return str(room) if room is not None else None

    async def exams_of(self, owner: str) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(
            "SELECT e.id, e.title, coalesce(json_agg(json_build_object('id', r.id, 'name', r.name)"
            " ORDER BY r.created_at) FILTER (WHERE r.id IS NOT NULL), '[]')::text AS rooms"
            " FROM exams e LEFT JOIN rooms r ON r.exam_id = e.id WHERE e.created_by = $1"
            " GROUP BY e.id ORDER BY max(e.created_at) DESC LIMIT 200",
            owner,
        )
        return [{"id": str(r["id"]), "title": r["title"], "rooms": json.loads(r["rooms"])} for r in rows]


def _request(row: Any) -> DeepLinkRequest:
    return DeepLinkRequest(
        id=row["id"],
        platform_id=str(row["platform_id"]),
        deployment_id=row["deployment_id"],
        subject=row["subject"],
        owner=row["owner"],
        return_url=row["return_url"],
        data=row["data"],
    )


async def account_of(pool: Pool, platform_id: str, subject: str) -> str | None:
    """The account a platform user is linked to (lti_users.account_id; the launch links
    instructors, step 10), or None."""
    value = await pool.fetchval(
        "SELECT account_id FROM lti_users WHERE platform_id = $1 AND subject = $2", uuid.UUID(platform_id), subject
    )
    return str(value) if value is not None else None
