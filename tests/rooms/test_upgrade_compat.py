"""Rolling upgrades (docs/upgrades.md): the previous release's statements run on the new
schema (old nodes keep working while new ones have migrated), and the new code's read paths
run on the previous schema (a new node reading before its migration is applied)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from rooms.exam import ExamSpec
from rooms.store import erasures
from rooms.store.audit import AuditLog
from rooms.store.catalog import Catalog
from rooms.store.members import RoomAccess
from rooms.store.migrate import NO_TRANSACTION, Migration, available, migrate
from rooms.store.privacy import StudentData
from rooms.store.review import Review
from rooms.tokens import Claims
from tests.support.node import EXAM_BODY
from tests.support.postgres import PostgresServer

# The previous release is commit 040eaa7; its schema ends at this migration.
PREVIOUS_SCHEMA = 4

# The previous release's key statements, copied verbatim from `git show 040eaa7:<file>`
# (rooms/store/catalog.py, rooms/attempts.py, rooms/store/event_writer.py, rooms/store/review.py,
# rooms/store/privacy.py, rooms/store/audit.py). Do not edit them to make a test pass: a
# failure here means the new schema breaks nodes still running that release.
OLD_CREATE_EXAM = (
    "INSERT INTO exams (id, title, duration_seconds, questions, rules, created_by)"
    " VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6) RETURNING *"
)
OLD_CREATE_ROOM = "INSERT INTO rooms (id, exam_id, name, seats) VALUES ($1, $2, $3, $4) RETURNING *"
OLD_CREATE_ATTEMPT = (
    "INSERT INTO attempts (id, exam_id, room_id, student_id, student_name, deadline)"
    " VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6)) RETURNING *"
)
OLD_JOIN_STATE = """
WITH consent AS (
    INSERT INTO consents (attempt_id, exam_id, room_id, student_id, notice_version)
    SELECT $1, $2, $3, $4, $5::text
    WHERE $5::text IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM consents WHERE attempt_id = $1 AND notice_version = $5::text)
), entry AS (
    INSERT INTO attempt_log (attempt_id, kind, details) VALUES ($1, $6, '{}')
)
SELECT
    (SELECT coalesce(json_object_agg(question_id, value), '{}') FROM answers WHERE attempt_id = $1) AS answers,
    greatest((SELECT max(seq) FROM violations WHERE attempt_id = $1 AND source = 'client'),
             (SELECT max(seq) FROM answers WHERE attempt_id = $1)) AS last_seq,
    (SELECT coalesce(sum(severity), 0) FROM violations WHERE attempt_id = $1) AS score
"""
OLD_INSERT_EVIDENCE = """
INSERT INTO evidence (id, attempt_id, content_type, data, taken_at, expires_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bytea[], $5::timestamptz[], $6::timestamptz[])
ON CONFLICT (id) DO NOTHING
"""
OLD_INSERT_VIOLATIONS = """
INSERT INTO violations (attempt_id, seq, source, kind, severity, occurred_at, details, evidence_id)
SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::float8[],
                     $6::timestamptz[], $7::jsonb[], $8::uuid[])
ON CONFLICT (attempt_id, source, seq) DO NOTHING
RETURNING id, attempt_id, source, seq
"""
OLD_UPSERT_ANSWERS = """
INSERT INTO answers (attempt_id, question_id, value, seq)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::bigint[])
ON CONFLICT (attempt_id, question_id) DO UPDATE
SET value = excluded.value, seq = excluded.seq, saved_at = now()
WHERE answers.seq < excluded.seq
"""
OLD_ATTEMPT_SUMMARY = """
SELECT a.id, a.student_id, a.student_name, a.status, a.started_at, a.deadline,
       a.submitted_at, a.end_reason, a.extension_seconds,
       (SELECT coalesce(sum(v.severity), 0) FROM violations v WHERE v.attempt_id = a.id) AS score,
       (SELECT count(*) FROM answers x WHERE x.attempt_id = a.id) AS answered,
       (SELECT count(*) FROM violations v WHERE v.attempt_id = a.id) AS violations,
       (SELECT max(v.occurred_at) FROM violations v WHERE v.attempt_id = a.id) AS last_violation_at
FROM attempts a
WHERE a.room_id = $1
ORDER BY a.student_name, a.student_id
"""
OLD_SUBMIT = (
    "UPDATE attempts SET status = 'submitted', submitted_at = now(), end_reason = $2,"
    " paused_at = NULL WHERE id = $1 AND status IN ('active', 'paused') RETURNING *"
)
OLD_EXPIRE_DUE = (
    "UPDATE attempts SET status = 'submitted', submitted_at = deadline, end_reason = 'deadline'"
    " WHERE status = 'active' AND deadline <= now() RETURNING *"
)
OLD_AUDIT = (
    "INSERT INTO audit_log (actor_role, actor_id, action, target_type, target_id, details)"
    " VALUES ($1, $2, $3, $4, $5, $6::jsonb)"
)
OLD_REVOKE = (
    "INSERT INTO revoked_tokens (token_id, expires_at, revoked_by) VALUES ($1, $2, $3)"
    " ON CONFLICT (token_id) DO NOTHING"
)
OLD_REVOKED = "SELECT token_id FROM revoked_tokens WHERE expires_at IS NULL OR expires_at > now()"
OLD_ERASE = (
    ("SELECT id, status FROM attempts WHERE student_id = $1 FOR UPDATE", 1),
    ("DELETE FROM consents WHERE student_id = $1", 1),
    ("DELETE FROM attempts WHERE student_id = $1", 1),  # (the old code passes the ids it selected)
)
OLD_PURGE = "DELETE FROM evidence WHERE expires_at <= $1"


def previous_release() -> list[Migration]:
    return [m for m in available() if m.version <= PREVIOUS_SCHEMA]


@pytest.fixture
async def pool(postgres: PostgresServer) -> AsyncIterator[asyncpg.Pool]:
    dsn = await postgres.create_database()
    async with asyncpg.create_pool(dsn, min_size=1, max_size=3) as pool:
        yield pool


async def old_node_writes(conn: asyncpg.Connection, student: str) -> dict[str, Any]:
    """One student's exam, written with nothing but the previous release's statements."""
    spec = ExamSpec.model_validate(EXAM_BODY)
    exam = await conn.fetchrow(
        OLD_CREATE_EXAM,
        uuid.uuid4(),
        spec.title,
        1800,
        json.dumps([q.model_dump(mode="json") for q in spec.questions]),
        spec.rules.model_dump_json(),
        "t-old",
    )
    room = await conn.fetchrow(OLD_CREATE_ROOM, uuid.uuid4(), exam["id"], "Hall", 30)
    attempt = await conn.fetchrow(OLD_CREATE_ATTEMPT, uuid.uuid4(), exam["id"], room["id"], student, "Old", 1800.0)
    aid = attempt["id"]
    state = await conn.fetchrow(OLD_JOIN_STATE, aid, exam["id"], room["id"], student, "v1", "join")
    assert state["score"] == 0
    await conn.execute(OLD_UPSERT_ANSWERS, [aid], ["q3"], [json.dumps("old")], [1])
    now = datetime.now(UTC)
    evidence = uuid.uuid4()
    await conn.execute(
        OLD_INSERT_EVIDENCE, [evidence], [aid], ["image/jpeg"], [b"\xff\xd8"], [now], [now + timedelta(days=1)]
    )
    stored = await conn.fetch(
        OLD_INSERT_VIOLATIONS,
        [aid, aid],
        [2, 3],
        ["client", "server"],
        ["paste", "no_face"],
        [1.0, 3.0],
        [now, now],
        [json.dumps({}), json.dumps({"reason": "r"})],
        [None, evidence],
    )
    assert len(stored) == 2
    [summary] = await conn.fetch(OLD_ATTEMPT_SUMMARY, room["id"])
    assert summary["score"] == 4.0 and summary["answered"] == 1
    await conn.execute(OLD_AUDIT, "admin", "a", "evidence.view", "attempt", str(aid), "{}")
    await conn.execute(OLD_REVOKE, uuid.uuid4().hex, None, "a")
    assert await conn.fetch(OLD_REVOKED)
    assert (await conn.fetchrow(OLD_SUBMIT, aid, "student"))["status"] == "submitted"
    await conn.fetch(OLD_EXPIRE_DUE)
    assert await conn.execute(OLD_PURGE, now - timedelta(days=1)) == "DELETE 0"
    return {"exam": str(exam["id"]), "room": str(room["id"]), "attempt": str(aid)}


async def test_previous_release_statements_work_on_the_new_schema(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await migrate(conn, previous_release())
        await old_node_writes(conn, "before-upgrade")
        applied = await migrate(conn)  # the first new node starts while old ones run
        assert applied == [m.name for m in available() if m.version > PREVIOUS_SCHEMA]
        await old_node_writes(conn, "after-upgrade")
        # The old erase still erases on the new schema (it does not log the erasure: see
        # docs/upgrades.md, erase only once every node runs the new release).
        async with conn.transaction():
            for sql, _ in OLD_ERASE:
                await conn.execute(sql, "after-upgrade")
        assert await conn.fetchval("SELECT count(*) FROM attempts WHERE student_id = 'after-upgrade'") == 0
    # And the new code reads what old nodes wrote.
    catalog = Catalog(pool, RoomAccess(pool, AuditLog(pool)))
    admin = Claims(role="admin", sub="admin")
    export = await StudentData(pool).export("before-upgrade")
    assert [a["student_id"] for a in export["attempts"]] == ["before-upgrade"]
    room_id = export["attempts"][0]["room_id"]
    [row] = await Review(pool, catalog).attempts(admin, room_id)
    # Undecided flags are a weight for the reviewer, not the student's score (flags count once confirmed).
    assert row["unreviewed_signal_weight"] == 4.0 and row["answered"] == 1 and "score" not in row


async def test_new_read_paths_work_on_the_previous_schema(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await migrate(conn, previous_release())
        ids = await old_node_writes(conn, "s-1")
        # The erasure log reads as empty before its migration (a restore of an old backup).
        assert await erasures.read(conn) == []
    catalog = Catalog(pool, RoomAccess(pool, AuditLog(pool)))
    admin = Claims(role="admin", sub="admin")
    exam = await catalog.exam(ids["exam"])
    assert exam.title == EXAM_BODY["title"]
    [row] = await Review(pool, catalog).attempts(admin, ids["room"])
    assert row["id"] == ids["attempt"] and row["violations"] == 2
    timeline = await Review(pool, catalog).timeline(admin, ids["attempt"])
    assert {"violation", "answer", "join"} <= {e["type"] for e in timeline["entries"]}
    export = await StudentData(pool).export("s-1")
    assert len(export["evidence"]) == 1


async def test_a_no_transaction_migration_builds_an_index_concurrently(pool: asyncpg.Pool) -> None:
    concurrent = Migration(
        9001,
        "9001_concurrent_index.sql",
        f"{NO_TRANSACTION}\nCREATE INDEX CONCURRENTLY IF NOT EXISTS answers_saved ON answers (saved_at);\n",
    )
    async with pool.acquire() as conn:
        assert (await migrate(conn, [*available(), concurrent]))[-1] == concurrent.name
        valid = await conn.fetchval("SELECT indisvalid FROM pg_index WHERE indexrelid = 'answers_saved'::regclass")
        assert valid is True
        assert await migrate(conn, [*available(), concurrent]) == []
