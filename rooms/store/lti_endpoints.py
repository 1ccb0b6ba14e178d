"""A resource link's service endpoints and its platform, as the LTI services read them
(lti_links and lti_platforms of 0008_lti.sql), and the line item the tool found or created."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from rooms.lti import Platform, ResourceLink

from .database import Pool


@dataclass(frozen=True, slots=True)
class LinkedPlatform:
    link: ResourceLink
    platform: Platform


def platform_from(row: asyncpg.Record, prefix: str = "") -> Platform:
    return Platform(
        id=str(row[prefix + "id"]),
        name=row[prefix + "name"],
        issuer=row[prefix + "issuer"],
        client_id=row[prefix + "client_id"],
        deployment_ids=tuple(row[prefix + "deployment_ids"]),
        auth_login_url=row[prefix + "auth_login_url"],
        access_token_url=row[prefix + "access_token_url"],
        jwks_url=row[prefix + "jwks_url"],
        created_by=row[prefix + "created_by"],
        created_at=row[prefix + "created_at"],
    )


def link_from(row: asyncpg.Record) -> ResourceLink:
    return ResourceLink(
        id=str(row["id"]),
        platform_id=str(row["platform_id"]),
        deployment_id=row["deployment_id"],
        resource_link_id=row["resource_link_id"],
        context_id=row["context_id"],
        context_title=row["context_title"],
        title=row["title"],
        room_id=str(row["room_id"]) if row["room_id"] is not None else None,
        lineitems_url=row["lineitems_url"],
        lineitem_url=row["lineitem_url"],
        ags_scopes=tuple(row["ags_scopes"]),
        memberships_url=row["memberships_url"],
    )


_JOINED = """
SELECT l.*, p.id AS p_id, p.name AS p_name, p.issuer AS p_issuer, p.client_id AS p_client_id,
       p.deployment_ids AS p_deployment_ids, p.auth_login_url AS p_auth_login_url,
       p.access_token_url AS p_access_token_url, p.jwks_url AS p_jwks_url,
       p.created_by AS p_created_by, p.created_at AS p_created_at
FROM lti_links l JOIN lti_platforms p ON p.id = l.platform_id
"""


class LinkEndpoints:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def by_id(self, link_id: str) -> LinkedPlatform | None:
        row = await self._pool.fetchrow(_JOINED + " WHERE l.id = $1", uuid.UUID(link_id))
        return LinkedPlatform(link_from(row), platform_from(row, "p_")) if row is not None else None

    async def of_room(self, room_id: str) -> LinkedPlatform | None:
        """The room's most recently launched link (a room may be linked from several courses;
        the roster follows the latest)."""
        row = await self._pool.fetchrow(
            _JOINED + " WHERE l.room_id = $1 ORDER BY l.updated_at DESC LIMIT 1", uuid.UUID(room_id)
        )
        return LinkedPlatform(link_from(row), platform_from(row, "p_")) if row is not None else None

    async def platform(self, platform_id: str) -> Platform | None:
        row = await self._pool.fetchrow("SELECT * FROM lti_platforms WHERE id = $1", uuid.UUID(platform_id))
        return platform_from(row) if row is not None else None

    async def set_lineitem(self, link_id: str, lineitem_url: str) -> None:
        # Only where the launch gave none: a launch's own `lineitem` claim stays the truth.
        await self._pool.execute(
            "UPDATE lti_links SET lineitem_url = $2 WHERE id = $1 AND lineitem_url IS NULL",
            uuid.UUID(link_id),
            lineitem_url,
        )
