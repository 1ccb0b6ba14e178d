"""LTI records for the services' tests (tests/lti/), made through the production stores: the
tool's signing key (rooms/store/lti_keys.py `ToolKeys`), a registered platform, a resource link
bound to a room and a platform user (rooms/store/lti.py `LtiStore`, as registration and a launch
write them); an attempt is inserted with SQL as a join creates it.

`lti_node` adds the shortcut route `/lti/test-launch/{name}`: it hands a `rooms.lti.Launch` built
here straight to a services' message handler, skipping the OIDC login and the id_token checks.
The tests that use it exercise a handler's answers and refusals (claims a real platform would not
send: files instead of resource links, a learner deep linking, incomplete proctoring claims);
the flows themselves run through real launches in tests/e2e/test_lti_passback.py,
tests/e2e/test_lti.py and tests/lti/test_proctoring_launch.py (docs/lti.md, "The tests")."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from rooms.lti import CLAIM, Launch, Platform
from rooms.store.lti import LtiStore
from rooms.store.lti_keys import ToolKeys
from server.embedded_pg import free_port
from server.settings import Settings

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
KEY_OVERLAP = timedelta(days=7)
AGS_SCOPES = (
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
)


def _store(pool: asyncpg.Pool) -> LtiStore:
    return LtiStore(pool)


async def insert_tool_key(pool: asyncpg.Pool) -> str:
    """A new signing key, as `proctor lti rotate-key` makes it (ToolKeys.rotate); its kid."""
    return await ToolKeys(pool, overlap=KEY_OVERLAP).rotate()


async def tool_jwks_of(pool: asyncpg.Pool) -> dict[str, Any]:
    """The JWKS the tool publishes at /lti/jwks (ToolKeys.jwks)."""
    return await ToolKeys(pool, overlap=KEY_OVERLAP).jwks()


async def insert_platform(
    pool: asyncpg.Pool,
    *,
    issuer: str,
    client_id: str,
    token_url: str,
    deployment_id: str = "d1",
    auth_login_url: str = "",
) -> str:
    """A registered platform, through the registration's store (LtiStore.create_platform)."""
    platform = Platform(
        id="",
        name="Test platform",
        issuer=issuer,
        client_id=client_id,
        deployment_ids=(deployment_id,),
        auth_login_url=auth_login_url or issuer + "/auth",
        access_token_url=token_url,
        jwks_url=issuer + "/jwks",
        created_by="admin",
        created_at=datetime.now(UTC),
    )
    return (await _store(pool).create_platform(platform)).id


async def insert_link(
    pool: asyncpg.Pool,
    platform_id: str,
    room_id: str | None,
    *,
    resource_link_id: str = "",
    context_id: str = "course-1",
    lineitems_url: str | None = None,
    lineitem_url: str | None = None,
    ags_scopes: tuple[str, ...] = AGS_SCOPES,
    memberships_url: str | None = None,
    deployment_id: str = "d1",
) -> str:
    """A resource link as a launch records it (LtiStore.upsert_link), bound to `room_id`."""
    store = _store(pool)
    link = await store.upsert_link(
        platform_id,
        deployment_id,
        resource_link_id or "rl-" + uuid.uuid4().hex[:8],
        context_id=context_id,
        title="Algebra (LTI)",
        lineitems_url=lineitems_url,
        lineitem_url=lineitem_url,
        ags_scopes=ags_scopes,
        memberships_url=memberships_url,
    )
    if room_id is not None:
        link = await store.bind(link.id, room_id)
    return link.id


async def insert_lti_user(
    pool: asyncpg.Pool,
    platform_id: str,
    subject: str,
    *,
    roles: tuple[str, ...] = (LEARNER,),
    account_id: str | None = None,
) -> str:
    """A platform user as a launch records them (LtiStore.upsert_user, link_account)."""
    store = _store(pool)
    student_id = await store.upsert_user(
        platform_id, subject, name=subject.title(), email=f"{subject}@example.org", roles=roles
    )
    if account_id is not None:
        await store.link_account(platform_id, subject, account_id)
    return student_id


async def insert_attempt(conn: asyncpg.Pool, exam_id: str, room_id: str, student_id: str) -> str:
    """A running attempt, as a join creates it (rooms/store/attempts.py)."""
    attempt_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO attempts (id, exam_id, room_id, student_id, student_name, status, deadline)"
        " VALUES ($1, $2, $3, $4, $4, 'active', $5)",
        attempt_id,
        uuid.UUID(exam_id),
        uuid.UUID(room_id),
        student_id,
        datetime.now(UTC) + timedelta(hours=1),
    )
    return str(attempt_id)


@pytest.fixture
async def lti_db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the session's database (the node's own migrates it when it starts; so does this);
    the LTI records the test made are deleted afterwards."""
    from rooms.store.migrate import migrate

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    assert pool is not None
    async with pool.acquire() as conn:
        await migrate(conn)
    started = await pool.fetchval("SELECT clock_timestamp()")
    try:
        yield pool
    finally:
        # The session shares one database: what this test registered goes (its links, outbox
        # rows, rosters and sessions cascade), so no later node's worker retries a dead platform
        # and no later test signs with this test's key.
        await pool.execute("DELETE FROM lti_platforms WHERE created_at >= $1", started)
        await pool.execute("DELETE FROM lti_keys WHERE created_at >= $1", started)
        await pool.close()


@pytest.fixture
async def tool_jwks(lti_db: asyncpg.Pool) -> AsyncIterator[str]:
    """The URL of the tool's JWKS, served from lti_keys by a small server of its own."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(await tool_jwks_of(lti_db))

    app = web.Application()
    app.router.add_get("/jwks.json", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/jwks.json"
    finally:
        await runner.cleanup()


async def launch_for(
    conn: asyncpg.Pool,
    platform_id: str,
    message_type: str,
    subject: str,
    claims: dict[str, Any],
    *,
    roles: tuple[str, ...] = (LEARNER,),
    deployment_id: str = "d1",
) -> Launch:
    """A launch as the launch part hands it to a message handler once every id_token check
    passed (rooms.lti.Launch), for the shortcut route."""
    from rooms.store.lti_endpoints import LinkEndpoints

    platform = await LinkEndpoints(conn).platform(platform_id)
    assert platform is not None
    payload = {
        "iss": platform.issuer,
        "aud": platform.client_id,
        "sub": subject,
        CLAIM + "message_type": message_type,
        CLAIM + "version": "1.3.0",
        CLAIM + "deployment_id": deployment_id,
        CLAIM + "roles": list(roles),
        **claims,
    }
    return Launch(
        platform=platform,
        deployment_id=deployment_id,
        message_type=message_type,
        subject=subject,
        name=subject.title(),
        email=f"{subject}@example.org",
        roles=roles,
        locale="en",
        claims=payload,
    )


@dataclass
class LtiNode:
    """A node whose `/lti/test-launch/{name}` hands `launches[name]` to the services' message
    handlers, as `/lti/launch` does once it has checked the id_token (under `/lti/`, so its pages
    get the framing policy of server/lti/frames.py as the real ones do)."""

    client: TestClient[Any, Any]
    launches: dict[str, Launch]


@pytest.fixture
async def lti_node(settings: Settings) -> AsyncIterator[LtiNode]:
    from server.app import create_app
    from server.lti.services import LTI_SERVICES

    launches: dict[str, Launch] = {}
    app = create_app(settings)
    handlers = app[LTI_SERVICES].handlers()

    async def dispatch(request: web.Request) -> web.Response:
        launch = launches[request.match_info["name"]]
        return await handlers[launch.message_type](request, launch)

    app.router.add_post("/lti/test-launch/{name}", dispatch)
    async with TestClient(TestServer(app)) as client:
        yield LtiNode(client, launches)
