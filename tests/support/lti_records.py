"""LTI records for the services' tests, written with SQL into the tables of 0008_lti.sql: a
registered platform, the tool's signing key, a resource link bound to a room, a platform user,
and an attempt. THE MERGE SEAM: the registration part's store (rooms/store/lti.py) replaces
these inserts once both parts are in main; the `tool_jwks` fixture then becomes the node's own
JWKS URL. Kept apart so that switch touches this file only."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from rooms.lti import CLAIM, Launch, student_id_for
from server.embedded_pg import free_port
from server.settings import Settings

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
AGS_SCOPES = (
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
)


async def insert_tool_key(conn: asyncpg.Connection | asyncpg.Pool) -> str:
    """A fresh RSA key, now the tool's newest (so the one that signs); its kid."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    kid = "test-" + uuid.uuid4().hex[:12]
    await conn.execute(
        "INSERT INTO lti_keys (kid, private_pem, created_at) VALUES ($1, $2, clock_timestamp())", kid, pem.decode()
    )
    return kid


async def tool_jwks_of(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, Any]:
    """The JWKS the tool publishes: the public half of every unretired key."""
    rows = await conn.fetch("SELECT kid, private_pem FROM lti_keys WHERE retired_at IS NULL")
    keys = []
    for row in rows:
        private = serialization.load_pem_private_key(row["private_pem"].encode(), password=None)
        assert isinstance(private, rsa.RSAPrivateKey)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
        keys.append({**jwk, "kid": row["kid"], "alg": "RS256", "use": "sig"})
    return {"keys": keys}


async def insert_platform(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    issuer: str,
    client_id: str,
    token_url: str,
    deployment_id: str = "d1",
    auth_login_url: str = "",
) -> str:
    platform_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO lti_platforms (id, name, issuer, client_id, deployment_ids, auth_login_url, access_token_url,"
        " jwks_url, created_by) VALUES ($1, 'Test platform', $2, $3, $4, $5, $6, $7, 'admin')",
        platform_id,
        issuer,
        client_id,
        [deployment_id],
        auth_login_url or issuer + "/auth",
        token_url,
        issuer + "/jwks",
    )
    return str(platform_id)


async def insert_link(
    conn: asyncpg.Connection | asyncpg.Pool,
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
    link_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO lti_links (id, platform_id, deployment_id, resource_link_id, context_id, title, room_id,"
        " lineitems_url, lineitem_url, ags_scopes, memberships_url)"
        " VALUES ($1, $2, $3, $4, $5, 'Algebra (LTI)', $6, $7, $8, $9, $10)",
        link_id,
        uuid.UUID(platform_id),
        deployment_id,
        resource_link_id or "rl-" + uuid.uuid4().hex[:8],
        context_id,
        uuid.UUID(room_id) if room_id else None,
        lineitems_url,
        lineitem_url,
        list(ags_scopes),
        memberships_url,
    )
    return str(link_id)


async def insert_lti_user(
    conn: asyncpg.Connection | asyncpg.Pool,
    platform_id: str,
    subject: str,
    *,
    roles: tuple[str, ...] = (LEARNER,),
    account_id: str | None = None,
) -> str:
    student_id = student_id_for(platform_id, subject)
    await conn.execute(
        "INSERT INTO lti_users (platform_id, subject, student_id, name, roles, account_id)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        uuid.UUID(platform_id),
        subject,
        student_id,
        subject.title(),
        list(roles),
        uuid.UUID(account_id) if account_id else None,
    )
    return student_id


async def insert_attempt(conn: asyncpg.Connection | asyncpg.Pool, exam_id: str, room_id: str, student_id: str) -> str:
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
    passed (rooms.lti.Launch). Until both parts are merged the services' tests build it here."""
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
    """A node whose `/lti/test-launch/{name}` (under `/lti/`, framed as `/lti/launch` is) hands `launches[name]` to the services' message
    handlers, as the launch part's `/lti/launch` will once it has checked the id_token."""

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
