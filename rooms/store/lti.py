"""LTI 1.3 in Postgres: registered platforms, one-time nonces, resource links and platform users
(the tables of migrations/0008_lti.sql; the tool's own keys are rooms/store/lti_keys.py).

The launch (server/lti/) and the services (deep linking, grades, roster) read and write only
through `LtiStore`, so no SQL sits in their handlers.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from rooms.catalog import parse_uuid
from rooms.errors import Conflict, NotFound
from rooms.lti import Platform, ResourceLink, student_id_for

from .database import Pool

_PLATFORM = (
    "id::text, name, issuer, client_id, deployment_ids, auth_login_url, access_token_url, jwks_url,"
    " created_by, created_at, link_by_email"
)
_LINK = (
    "id::text, platform_id::text, deployment_id, resource_link_id, context_id, context_title, title,"
    " room_id::text, lineitems_url, lineitem_url, ags_scopes, memberships_url"
)
_FIELDS = (
    "name",
    "issuer",
    "client_id",
    "deployment_ids",
    "auth_login_url",
    "access_token_url",
    "jwks_url",
    "link_by_email",
)


def _platform(row: Any) -> Platform:
    return Platform(
        id=row["id"],
        name=row["name"],
        issuer=row["issuer"],
        client_id=row["client_id"],
        deployment_ids=tuple(row["deployment_ids"]),
        auth_login_url=row["auth_login_url"],
        access_token_url=row["access_token_url"],
        jwks_url=row["jwks_url"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        link_by_email=row["link_by_email"],
    )


def _link(row: Any) -> ResourceLink:
    return ResourceLink(
        id=row["id"],
        platform_id=row["platform_id"],
        deployment_id=row["deployment_id"],
        resource_link_id=row["resource_link_id"],
        context_id=row["context_id"],
        context_title=row["context_title"],
        title=row["title"],
        room_id=row["room_id"],
        lineitems_url=row["lineitems_url"],
        lineitem_url=row["lineitem_url"],
        ags_scopes=tuple(row["ags_scopes"]),
        memberships_url=row["memberships_url"],
    )


class LtiStore:
    """Platforms, nonces, links and users; every method is one statement (no transaction held)."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    # -- platforms ---------------------------------------------------------------------------

    async def create_platform(self, platform: Platform) -> Platform:
        row = await self._pool.fetchrow(
            "INSERT INTO lti_platforms (id, name, issuer, client_id, deployment_ids, auth_login_url,"
            " access_token_url, jwks_url, created_by, link_by_email) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            f" ON CONFLICT (issuer, client_id) DO NOTHING RETURNING {_PLATFORM}",
            uuid.uuid4(),
            platform.name,
            platform.issuer,
            platform.client_id,
            list(platform.deployment_ids),
            platform.auth_login_url,
            platform.access_token_url,
            platform.jwks_url,
            platform.created_by,
            platform.link_by_email,
        )
        if row is None:
            raise Conflict("this issuer and client id are registered already", code="exists")
        return _platform(row)

    async def platforms(self) -> list[Platform]:
        rows = await self._pool.fetch(f"SELECT {_PLATFORM} FROM lti_platforms ORDER BY created_at, id")
        return [_platform(r) for r in rows]

    async def platform(self, platform_id: str) -> Platform:
        row = await self._pool.fetchrow(
            f"SELECT {_PLATFORM} FROM lti_platforms WHERE id = $1", parse_uuid(platform_id, "platform")
        )
        if row is None:
            raise NotFound(f"no platform {platform_id!r}")
        return _platform(row)

    async def platform_by(self, issuer: str, client_id: str | None) -> Platform | None:
        """The platform of a login or launch. Without a client id (an older platform's login),
        only an issuer registered once identifies it."""
        if client_id:
            row = await self._pool.fetchrow(
                f"SELECT {_PLATFORM} FROM lti_platforms WHERE issuer = $1 AND client_id = $2", issuer, client_id
            )
            return _platform(row) if row is not None else None
        rows = await self._pool.fetch(f"SELECT {_PLATFORM} FROM lti_platforms WHERE issuer = $1 LIMIT 2", issuer)
        return _platform(rows[0]) if len(rows) == 1 else None

    async def update_platform(self, platform_id: str, changes: dict[str, Any]) -> Platform:
        current = await self.platform(platform_id)
        fields = {k: v for k, v in changes.items() if k in _FIELDS}
        if "deployment_ids" in fields:
            fields["deployment_ids"] = tuple(fields["deployment_ids"])
        updated = replace(current, **fields)
        row = await self._pool.fetchrow(
            "UPDATE lti_platforms SET name = $2, issuer = $3, client_id = $4, deployment_ids = $5,"
            " auth_login_url = $6, access_token_url = $7, jwks_url = $8, link_by_email = $9 WHERE id = $1"
            f" AND NOT EXISTS (SELECT 1 FROM lti_platforms o WHERE o.issuer = $3 AND o.client_id = $4 AND o.id <> $1)"
            f" RETURNING {_PLATFORM}",
            uuid.UUID(current.id),
            updated.name,
            updated.issuer,
            updated.client_id,
            list(updated.deployment_ids),
            updated.auth_login_url,
            updated.access_token_url,
            updated.jwks_url,
            updated.link_by_email,
        )
        if row is None:
            raise Conflict("another platform has this issuer and client id", code="exists")
        return _platform(row)

    async def delete_platform(self, platform_id: str) -> bool:
        """Its links, nonces and users go with it (ON DELETE CASCADE); rooms and attempts stay."""
        status = await self._pool.execute(
            "DELETE FROM lti_platforms WHERE id = $1", parse_uuid(platform_id, "platform")
        )
        return bool(status.endswith(" 1"))

    async def platform_urls(self) -> tuple[str, ...]:
        """Every registered platform's issuer and login URL: their origins may frame the LTI pages."""
        rows = await self._pool.fetch("SELECT DISTINCT issuer, auth_login_url FROM lti_platforms")
        return tuple(sorted({url for r in rows for url in (r["issuer"], r["auth_login_url"])}))

    # -- nonces ------------------------------------------------------------------------------

    async def use_nonce(self, platform_id: str, nonce: str, expires_at: datetime) -> bool:
        """True the first time; False for a replay. Expired nonces are purged on the way, so
        the table holds only those whose id_token could still be presented."""
        await self._pool.execute("DELETE FROM lti_nonces WHERE expires_at < now()")
        status = await self._pool.execute(
            "INSERT INTO lti_nonces (platform_id, nonce, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            uuid.UUID(platform_id),
            nonce,
            expires_at,
        )
        return bool(status.endswith(" 1"))

    # -- resource links ----------------------------------------------------------------------

    async def upsert_link(
        self,
        platform_id: str,
        deployment_id: str,
        resource_link_id: str,
        *,
        context_id: str = "",
        context_title: str = "",
        title: str = "",
        lineitems_url: str | None = None,
        lineitem_url: str | None = None,
        ags_scopes: tuple[str, ...] = (),
        memberships_url: str | None = None,
    ) -> ResourceLink:
        """The link a launch names, created on its first launch; the service endpoints are the
        latest launch's (a platform may move them). The room binding is never changed here."""
        row = await self._pool.fetchrow(
            "INSERT INTO lti_links AS l (id, platform_id, deployment_id, resource_link_id, context_id, context_title,"
            " title, lineitems_url, lineitem_url, ags_scopes, memberships_url)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            " ON CONFLICT (platform_id, deployment_id, resource_link_id) DO UPDATE SET"
            " context_id = EXCLUDED.context_id, context_title = EXCLUDED.context_title, title = EXCLUDED.title,"
            " lineitems_url = coalesce(EXCLUDED.lineitems_url, l.lineitems_url),"
            " lineitem_url = coalesce(EXCLUDED.lineitem_url, l.lineitem_url),"
            " ags_scopes = CASE WHEN cardinality(EXCLUDED.ags_scopes) > 0 THEN EXCLUDED.ags_scopes"
            " ELSE l.ags_scopes END,"
            " memberships_url = coalesce(EXCLUDED.memberships_url, l.memberships_url), updated_at = now()"
            f" RETURNING {_LINK}",
            uuid.uuid4(),
            uuid.UUID(platform_id),
            deployment_id,
            resource_link_id,
            context_id,
            context_title,
            title,
            lineitems_url,
            lineitem_url,
            list(ags_scopes),
            memberships_url,
        )
        assert row is not None  # an upsert always returns its row
        return _link(row)

    async def link(self, platform_id: str, deployment_id: str, resource_link_id: str) -> ResourceLink | None:
        row = await self._pool.fetchrow(
            f"SELECT {_LINK} FROM lti_links WHERE platform_id = $1 AND deployment_id = $2 AND resource_link_id = $3",
            uuid.UUID(platform_id),
            deployment_id,
            resource_link_id,
        )
        return _link(row) if row is not None else None

    async def link_by_id(self, link_id: str) -> ResourceLink:
        row = await self._pool.fetchrow(f"SELECT {_LINK} FROM lti_links WHERE id = $1", parse_uuid(link_id, "link"))
        if row is None:
            raise NotFound(f"no resource link {link_id!r}")
        return _link(row)

    async def links_of_room(self, room_id: str) -> list[ResourceLink]:
        rows = await self._pool.fetch(
            f"SELECT {_LINK} FROM lti_links WHERE room_id = $1 ORDER BY updated_at", parse_uuid(room_id, "room")
        )
        return [_link(r) for r in rows]

    async def bind(self, link_id: str, room_id: str) -> ResourceLink:
        """Bind the course activity to a room (deep linking, or an instructor on first launch)."""
        row = await self._pool.fetchrow(
            f"UPDATE lti_links SET room_id = $2, updated_at = now() WHERE id = $1 RETURNING {_LINK}",
            parse_uuid(link_id, "link"),
            parse_uuid(room_id, "room"),
        )
        if row is None:
            raise NotFound(f"no resource link {link_id!r}")
        return _link(row)

    # -- users -------------------------------------------------------------------------------

    async def upsert_user(
        self, platform_id: str, subject: str, *, name: str, email: str, roles: tuple[str, ...]
    ) -> str:
        """Record the platform user of a launch; returns their stable student id."""
        student_id = student_id_for(platform_id, subject)
        await self._pool.execute(
            "INSERT INTO lti_users (platform_id, subject, student_id, name, email, roles)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (platform_id, subject) DO UPDATE SET"
            " name = EXCLUDED.name, email = EXCLUDED.email, roles = EXCLUDED.roles, last_launch_at = now()",
            uuid.UUID(platform_id),
            subject,
            student_id,
            name,
            email,
            list(roles),
        )
        return student_id

    async def user_account(self, platform_id: str, subject: str) -> str | None:
        value = await self._pool.fetchval(
            "SELECT account_id::text FROM lti_users WHERE platform_id = $1 AND subject = $2",
            uuid.UUID(platform_id),
            subject,
        )
        return str(value) if value is not None else None

    async def link_account(self, platform_id: str, subject: str, account_id: str) -> None:
        await self._pool.execute(
            "UPDATE lti_users SET account_id = $3 WHERE platform_id = $1 AND subject = $2",
            uuid.UUID(platform_id),
            subject,
            uuid.UUID(account_id),
        )
