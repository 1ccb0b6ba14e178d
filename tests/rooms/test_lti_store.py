"""rooms/store/lti.py and lti_keys.py on a fresh database of the session's Postgres: platforms
by issuer and client id, one-time nonces, links and their room, and the tool's keys with
rotation and overlap."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import jwt
import pytest

from rooms.errors import Conflict, NotFound
from rooms.lti import Platform, student_id_for
from rooms.store.lti import LtiStore
from rooms.store.lti_keys import ToolKeys
from rooms.store.migrate import migrate
from tests.support.postgres import PostgresServer


@pytest.fixture
async def pool(postgres: PostgresServer) -> AsyncIterator[asyncpg.Pool]:
    dsn = await postgres.create_database()
    conn = await asyncpg.connect(dsn)
    await migrate(conn)
    await conn.close()
    async with asyncpg.create_pool(dsn) as p:
        yield p


def platform(issuer: str = "https://moodle.example.edu", client_id: str = "c1") -> Platform:
    return Platform(
        "",
        "Moodle",
        issuer,
        client_id,
        ("1", "2"),
        issuer + "/mod/lti/auth.php",
        issuer + "/mod/lti/token.php",
        issuer + "/mod/lti/certs.php",
        "admin",
        datetime.now(UTC),
    )


async def test_platforms_by_issuer_and_client_id(pool: asyncpg.Pool) -> None:
    store = LtiStore(pool)
    first = await store.create_platform(platform())
    with pytest.raises(Conflict):
        await store.create_platform(platform())
    second = await store.create_platform(platform(client_id="c2"))
    assert await store.platform_by(first.issuer, "c1") == first
    assert await store.platform_by(first.issuer, "c3") is None
    # Without a client id, an issuer registered twice is ambiguous.
    assert await store.platform_by(first.issuer, None) is None
    other = await store.create_platform(platform("https://canvas.example.edu"))
    assert await store.platform_by(other.issuer, None) == other
    changed = await store.update_platform(second.id, {"deployment_ids": ["9"], "name": "Moodle 2"})
    assert changed.deployment_ids == ("9",) and changed.name == "Moodle 2" and changed.issuer == first.issuer
    with pytest.raises(Conflict):
        await store.update_platform(second.id, {"client_id": "c1"})
    assert [p.id for p in await store.platforms()] == [first.id, second.id, other.id]
    assert set(await store.platform_urls()) >= {first.issuer, first.auth_login_url}
    assert await store.delete_platform(second.id) is True
    assert await store.delete_platform(second.id) is False
    with pytest.raises(NotFound):
        await store.platform(second.id)
    with pytest.raises(NotFound):
        await store.platform("not-a-uuid")


async def test_a_nonce_is_used_once_and_expired_ones_are_purged(pool: asyncpg.Pool) -> None:
    store = LtiStore(pool)
    p = await store.create_platform(platform())
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert await store.use_nonce(p.id, "n1", later) is True
    assert await store.use_nonce(p.id, "n1", later) is False
    assert await store.use_nonce(p.id, "n2", datetime.now(UTC) - timedelta(seconds=1)) is True
    await store.use_nonce(p.id, "n3", later)  # purges n2
    assert await pool.fetchval("SELECT count(*) FROM lti_nonces WHERE nonce = 'n2'") == 0
    assert await pool.fetchval("SELECT count(*) FROM lti_nonces WHERE nonce = 'n1'") == 1


async def test_links_keep_their_room_and_users_their_student_id(pool: asyncpg.Pool) -> None:
    store = LtiStore(pool)
    p = await store.create_platform(platform())
    link = await store.upsert_link(p.id, "1", "rl-1", title="Quiz", lineitems_url="https://m/li", ags_scopes=("s",))
    exam = await pool.fetchval(
        "INSERT INTO exams (id, title, duration_seconds, questions, rules, created_by)"
        " VALUES (gen_random_uuid(), 'E', 60, '[]', '{}', 'x') RETURNING id::text"
    )
    room = await pool.fetchval(
        "INSERT INTO rooms (id, exam_id, name, seats) VALUES (gen_random_uuid(), $1::uuid, 'R', 5) RETURNING id::text",
        exam,
    )
    bound = await store.bind(link.id, room)
    again = await store.upsert_link(p.id, "1", "rl-1", title="Quiz (renamed)")
    assert again.id == link.id and again.room_id == room == bound.room_id
    assert again.lineitems_url == "https://m/li" and again.ags_scopes == ("s",)  # kept when not re-announced
    assert await store.link(p.id, "1", "rl-1") == again
    assert [x.id for x in await store.links_of_room(room)] == [link.id]
    assert await store.link(p.id, "2", "rl-1") is None
    student = await store.upsert_user(p.id, "sub-1", name="Ada", email="a@x", roles=("Learner",))
    assert student == student_id_for(p.id, "sub-1")
    assert await store.upsert_user(p.id, "sub-1", name="Ada L", email="", roles=()) == student


async def test_tool_keys_rotate_with_an_overlap(pool: asyncpg.Pool) -> None:
    keys = ToolKeys(pool, overlap=timedelta(days=7))
    kid, key = await keys.signing_key()
    assert (await keys.signing_key())[0] == kid
    published = await keys.jwks()
    assert [k["kid"] for k in published["keys"]] == [kid]
    assert set(published["keys"][0]) == {"kty", "kid", "alg", "use", "n", "e"}  # no private part ("d", "p", ...)
    # A signature by the current key verifies with the published JWK.
    token = jwt.encode({"x": 1}, key, algorithm="RS256", headers={"kid": kid})
    public = jwt.PyJWK(published["keys"][0]).key
    assert jwt.decode(token, public, algorithms=["RS256"]) == {"x": 1}

    new = await keys.rotate()
    assert new != kid and (await keys.signing_key())[0] == new
    assert {k["kid"] for k in (await keys.jwks())["keys"]} == {kid, new}
    # Past the overlap the retired key is no longer published (and is deleted).
    await pool.execute("UPDATE lti_keys SET retired_at = now() - interval '8 days' WHERE kid = $1", kid)
    assert [k["kid"] for k in (await keys.jwks())["keys"]] == [new]
    assert await pool.fetchval("SELECT count(*) FROM lti_keys") == 1
