"""The durable writer against a real Postgres: batching, idempotence, poison isolation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from rooms.errors import RoomsError
from rooms.store.event_writer import AnswerRecord, EventWriter, ViolationRecord
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


async def an_attempt(pool: asyncpg.Pool) -> uuid.UUID:
    exam = await pool.fetchval(
        "INSERT INTO exams (id, title, duration_seconds, questions, rules, created_by)"
        " VALUES (gen_random_uuid(), 't', 60, '[]', '{}', 'a') RETURNING id"
    )
    room = await pool.fetchval(
        "INSERT INTO rooms (id, exam_id, name, seats) VALUES (gen_random_uuid(), $1, 'r', 9) RETURNING id", exam
    )
    attempt: uuid.UUID = await pool.fetchval(
        "INSERT INTO attempts (id, exam_id, room_id, student_id, deadline)"
        " VALUES (gen_random_uuid(), $1, $2, 's', now()) RETURNING id",
        exam,
        room,
    )
    return attempt


def violation(attempt: uuid.UUID, seq: int, details: dict[str, object] | None = None) -> ViolationRecord:
    return ViolationRecord(attempt, seq, "client", "copy", 2.0, datetime.now(UTC), details or {})


async def test_batch_is_idempotent(pool: asyncpg.Pool) -> None:
    attempt = await an_attempt(pool)
    writer = EventWriter(pool, flush_ms=5)
    writer.start()
    try:
        records = [violation(attempt, seq) for seq in range(1, 51)] * 2  # everything sent twice
        results = await asyncio.gather(*[writer.submit(r) for r in records])
        assert sum(r.stored for r in results) == 50
        answers = [AnswerRecord(attempt, "q1", v, seq) for seq, v in ((101, "a"), (103, "c"), (102, "b"))]
        await asyncio.gather(*[writer.submit(a) for a in answers])
    finally:
        await writer.close()
    assert await pool.fetchval("SELECT count(*) FROM violations WHERE attempt_id = $1", attempt) == 50
    assert await pool.fetchval("SELECT value FROM answers WHERE attempt_id = $1", attempt) == '"c"'


async def test_a_poisonous_row_fails_alone(pool: asyncpg.Pool) -> None:
    attempt = await an_attempt(pool)
    gone = uuid.uuid4()  # an attempt that does not exist (erased meanwhile)
    writer = EventWriter(pool, flush_ms=20)
    writer.start()
    try:
        results = await asyncio.gather(
            writer.submit(violation(attempt, 1)),
            writer.submit(violation(attempt, 2, {"blob": b"\x00binary"})),
            writer.submit(violation(gone, 1)),
            writer.submit(violation(attempt, 3)),
            return_exceptions=True,
        )
    finally:
        await writer.close()
    assert [type(r).__name__ for r in results] == ["WriteResult", "Invalid", "Invalid", "WriteResult"]
    assert all(isinstance(r, RoomsError) and r.code == "rejected" for r in results[1:3])
    rows = await pool.fetch("SELECT seq FROM violations WHERE attempt_id = $1 ORDER BY seq", attempt)
    seqs = [r["seq"] for r in rows]
    assert seqs == [1, 3]


async def test_overlapping_flushers_store_each_event_once(pool: asyncpg.Pool) -> None:
    # Small batches, so the overlapping flusher writes full batches while the first one is
    # in Postgres, and re-sends of one event land in concurrent batches.
    attempt = await an_attempt(pool)
    writer = EventWriter(pool, flush_ms=1, batch_size=10)
    writer.start()
    try:
        records = [violation(attempt, seq) for seq in range(1, 301)]
        results = await asyncio.gather(*[writer.submit(r) for r in records + records[::-1]])
        assert writer.depth == 0
    finally:
        await writer.close()
    assert sum(r.stored for r in results) == 300
    assert await pool.fetchval("SELECT count(*) FROM violations WHERE attempt_id = $1", attempt) == 300
    assert len(writer._tasks) == 2 and writer.committed == 600


async def test_close_fails_what_it_could_not_write(pool: asyncpg.Pool) -> None:
    attempt = await an_attempt(pool)
    writer = EventWriter(pool, flush_ms=1, batch_size=5)
    writer.start()
    await writer.close()
    with pytest.raises(RoomsError):
        await writer.submit(violation(attempt, 1))


class _ResetFails(asyncpg.Connection):  # type: ignore[misc]
    """A real connection whose reset, when the pool takes it back, fails as it does while
    Postgres shuts down ("another operation is in progress") — after the batch committed."""

    armed = False
    failures = 0

    async def reset(self, *, timeout: float | None = None) -> None:
        await super().reset(timeout=timeout)
        if not type(self).armed:
            return
        type(self).failures += 1
        raise asyncpg.exceptions.InternalClientError("cannot switch to state 15; another operation (2) is in progress")


async def test_a_release_failing_after_the_commit_still_acknowledges_stored(postgres: PostgresServer) -> None:
    dsn = await postgres.create_database()
    conn = await asyncpg.connect(dsn)
    await migrate(conn)
    await conn.close()
    async with asyncpg.create_pool(dsn, min_size=1, max_size=2, connection_class=_ResetFails) as pool:
        attempt = await an_attempt(pool)
        _ResetFails.armed, _ResetFails.failures = True, 0
        writer = EventWriter(pool, flush_ms=1)
        writer.start()
        try:
            record = ViolationRecord(
                attempt_id=attempt,
                seq=1,
                source="client",
                kind="paste",
                severity=1.0,
                occurred_at=datetime.now(UTC),
                details={},
            )
            result = await asyncio.wait_for(writer.submit(record), timeout=10)
        finally:
            await writer.close(timeout=5)
            _ResetFails.armed = False
        assert _ResetFails.failures >= 1
        assert result.stored, "a committed event must be acknowledged as stored, not re-written as a duplicate"
        assert await pool.fetchval("SELECT count(*) FROM violations WHERE attempt_id = $1", attempt) == 1
