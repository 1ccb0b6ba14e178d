"""The attempt and classroom repositories against a real Postgres: they apply the domain's
timer rules with the database's now(), once per operation, and never overwrite a change
another node made between their read and their write."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from rooms import timer
from rooms.protocols import ControlRecord
from rooms.store.attempts import AttemptStore, attempt_from, write_changed
from rooms.store.classroom import ClassroomStore
from rooms.store.migrate import migrate
from tests.support.postgres import PostgresServer

DURATION = 2700.0


@pytest.fixture
async def pool(postgres: PostgresServer) -> AsyncIterator[asyncpg.Pool]:
    dsn = await postgres.create_database()
    conn = await asyncpg.connect(dsn)
    await migrate(conn)
    await conn.close()
    async with asyncpg.create_pool(dsn) as p:
        yield p


async def a_room(pool: asyncpg.Pool, seats: int = 5) -> tuple[str, str]:
    exam = await pool.fetchval(
        "INSERT INTO exams (id, title, duration_seconds, questions, rules, created_by)"
        " VALUES (gen_random_uuid(), 't', $1, '[]', '{}', 'a') RETURNING id",
        int(DURATION),
    )
    room = await pool.fetchval(
        "INSERT INTO rooms (id, exam_id, name, seats) VALUES (gen_random_uuid(), $1, 'r', $2) RETURNING id", exam, seats
    )
    return str(exam), str(room)


async def joined(store: AttemptStore, exam: str, room: str, student: str = "s1", seats: int = 5) -> timer.Attempt:
    opening = functools.partial(timer.first_join, exam, room, student, student.upper(), int(DURATION))
    result = await store.join(room, student, seats, opening, "v1")
    assert result is not None
    return result.attempt


async def test_a_first_join_starts_at_the_database_now_and_a_second_resumes(pool: asyncpg.Pool) -> None:
    store = AttemptStore(pool)
    exam, room = await a_room(pool)
    before = await pool.fetchval("SELECT now()")
    opening = functools.partial(timer.first_join, exam, room, "s1", "Ada", int(DURATION))
    first = await store.join(room, "s1", 5, opening, "v1")
    after = await pool.fetchval("SELECT now()")
    assert first is not None and not first.resumed
    a = first.attempt
    assert before <= a.started_at <= after
    assert a.deadline - a.started_at == timedelta(seconds=DURATION)
    again = await store.join(room, "s1", 5, opening, "v1")
    assert again is not None and again.resumed and again.attempt == a
    kinds = await pool.fetch("SELECT kind FROM attempt_log WHERE attempt_id = $1 ORDER BY id", uuid.UUID(a.id))
    assert [r["kind"] for r in kinds] == ["join", "resume"]
    assert await pool.fetchval("SELECT count(*) FROM consents WHERE attempt_id = $1", uuid.UUID(a.id)) == 1


async def test_no_seat_is_given_twice(pool: asyncpg.Pool) -> None:
    store = AttemptStore(pool)
    exam, room = await a_room(pool, seats=3)
    results = await asyncio.gather(
        *(
            store.join(
                room, f"s{i}", 3, functools.partial(timer.first_join, exam, room, f"s{i}", "", int(DURATION)), None
            )
            for i in range(8)
        )
    )
    assert sum(r is not None for r in results) == 3
    assert await pool.fetchval("SELECT count(*) FROM attempts WHERE room_id = $1", uuid.UUID(room)) == 3


async def test_a_change_is_applied_at_the_transaction_now(pool: asyncpg.Pool) -> None:
    store = AttemptStore(pool)
    exam, room = await a_room(pool)
    a = await joined(store, exam, room)
    before = await pool.fetchval("SELECT now()")
    result = await store.change(a.id, timer.pause)
    after = await pool.fetchval("SELECT now()")
    assert result is not None
    paused, applied = result
    assert applied and paused.status == "paused" and paused.paused_at is not None
    assert before <= paused.paused_at <= after
    stored = await store.get(a.id)
    assert stored == paused
    await asyncio.sleep(0.05)
    before = await pool.fetchval("SELECT now()")
    result = await store.change(a.id, timer.resume)
    after = await pool.fetchval("SELECT now()")
    assert result is not None
    resumed, applied = result
    assert applied and resumed.status == "active" and resumed.paused_at is None
    # Pushed by the paused time, measured to the resume's own now().
    assert before - paused.paused_at <= resumed.deadline - a.deadline <= after - paused.paused_at


async def test_a_refused_change_writes_nothing(pool: asyncpg.Pool) -> None:
    store = AttemptStore(pool)
    exam, room = await a_room(pool)
    a = await joined(store, exam, room)
    assert await store.change(a.id, timer.resume) == (a, False)
    assert await store.get(a.id) == a
    assert await store.change(str(uuid.uuid4()), timer.pause) is None


async def test_the_sweeper_submits_as_of_the_deadline(pool: asyncpg.Pool) -> None:
    store = AttemptStore(pool)
    exam, room = await a_room(pool)
    due = await joined(store, exam, room, "s1")
    running = await joined(store, exam, room, "s2")
    paused = await joined(store, exam, room, "s3")
    await store.change(paused.id, timer.pause)
    await pool.execute(
        "UPDATE attempts SET deadline = now() - interval '3 seconds' WHERE id = ANY($1::uuid[])",
        [uuid.UUID(due.id), uuid.UUID(paused.id)],
    )
    [done] = await store.expire_due(timer.expire)
    assert done.id == due.id and done.status == "submitted" and done.end_reason == "deadline"
    assert done.submitted_at == done.deadline
    assert (await store.get(running.id)) == running
    still = await store.get(paused.id)
    assert still is not None and still.status == "paused"  # a paused clock does not run out
    assert await store.expire_due(timer.expire) == []


async def test_two_sweepers_submit_an_attempt_once(pool: asyncpg.Pool) -> None:
    stores = [AttemptStore(pool), AttemptStore(pool)]
    exam, room = await a_room(pool)
    ids = [(await joined(stores[0], exam, room, f"s{i}")).id for i in range(4)]
    await pool.execute("UPDATE attempts SET deadline = now() - interval '1 second'")
    first, second = await asyncio.gather(*(s.expire_due(timer.expire) for s in stores))
    assert sorted(a.id for a in first + second) == sorted(ids)


async def test_a_change_made_after_the_read_is_not_overwritten(pool: asyncpg.Pool) -> None:
    store = AttemptStore(pool)
    exam, room = await a_room(pool)
    a = await joined(store, exam, room)
    await pool.execute("UPDATE attempts SET deadline = now() - interval '1 second' WHERE id = $1", uuid.UUID(a.id))
    read = attempt_from(await pool.fetchrow("SELECT * FROM attempts WHERE id = $1", uuid.UUID(a.id)))
    expired = timer.expire(read, read.deadline)
    assert expired is not None
    # Between the sweeper's read and its write a teacher extends the attempt on another node.
    extended = await store.change(a.id, timer.extend(10))
    assert extended is not None and extended[1]
    async with pool.acquire() as conn:
        assert await write_changed(conn, [(read, expired)]) == []
    assert await store.get(a.id) == extended[0]


async def test_a_control_is_recorded_only_with_its_change(pool: asyncpg.Pool) -> None:
    attempts, classroom = AttemptStore(pool), ClassroomStore(pool)
    exam, room = await a_room(pool)
    a = await joined(attempts, exam, room)
    pause = ControlRecord(room, a.id, "t1", "pause", {})
    result = await classroom.control(pause, timer.pause)
    assert result is not None and result[1] and result[0].status == "paused"
    assert await classroom.control(pause, timer.pause) == (result[0], False)
    await classroom.record(ControlRecord(room, a.id, "t1", "warn", {"text": "eyes on the screen"}))
    rows = await pool.fetch("SELECT action, params FROM controls WHERE attempt_id = $1 ORDER BY id", uuid.UUID(a.id))
    assert [(r["action"], r["params"]) for r in rows] == [("pause", "{}"), ("warn", '{"text": "eyes on the screen"}')]
    [entry] = await classroom.roster(room)
    assert entry["id"] == a.id and entry["status"] == "paused" and entry["last_violation_kind"] is None


async def test_terminated_attempts_are_found_by_room(pool: asyncpg.Pool) -> None:
    store = AttemptStore(pool)
    exam, room = await a_room(pool)
    _, other_room = await a_room(pool)
    ended = await joined(store, exam, room, "s1")
    await joined(store, exam, room, "s2")
    await store.change(ended.id, timer.terminate)
    assert await store.terminated_in({room}) == {ended.id}
    assert await store.terminated_in({other_room}) == set()
