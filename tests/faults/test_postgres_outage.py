"""Postgres stops for 10 s mid-exam under a single node: nothing is acknowledged while it is
down, every event is stored exactly once after it is back, and the node keeps serving."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from server.embedded_pg import EmbeddedPostgres, free_port
from server.settings import Settings
from tests.support.live import Live, running_node

from .figures import ms, percentile, record
from .resend import ResendingStudent, check_exactly_once, stored_rows

STUDENTS = 6
INTERVAL = 0.2  # one new event per student every 200 ms
OUTAGE = 10.0  # seconds Postgres is down
OUR_LOGGERS = ("server", "signaling", "rooms")


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A Postgres of this test's own, on a free port, that the test stops and starts."""
    pg = EmbeddedPostgres(tmp_path / "pg", port=free_port())
    try:
        pg.start()
    except FileNotFoundError as exc:
        pytest.fail(f"Postgres binaries missing ({exc}); install the dev set-up: pip install -e '.[dev]'")
    try:
        yield pg
    finally:
        pg.stop(mode="immediate")


@pytest.fixture
async def node(own_postgres: EmbeddedPostgres, settings: Settings) -> AsyncIterator[Live]:
    async with running_node(settings.replace(database_url=own_postgres.dsn, writer_flush_ms=5.0)) as live:
        yield live


async def status(live: Live, path: str) -> int:
    async with live.http.get(live.url + path) as resp:
        await resp.read()
        return resp.status


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_postgres_stopped_for_10s_mid_exam(
    node: Live, own_postgres: EmbeddedPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    live = node
    caplog.set_level(logging.WARNING)
    room = await live.room()
    tokens = await live.invites(room["id"], STUDENTS)
    teacher, _ = await live.teacher(await live.teacher_token([room["id"]]), room["id"])
    students: list[ResendingStudent] = []
    for token in tokens:
        client, joined = await live.student(token)
        students.append(ResendingStudent(client, joined["attempt"]["attempt_id"], seq=joined["last_seq"]))
    loop = asyncio.get_running_loop()
    producing = True

    async def produce(student: ResendingStudent) -> None:
        while producing:
            student.new_event()
            await asyncio.sleep(INTERVAL)

    producers = [asyncio.create_task(produce(s)) for s in students]
    try:
        await asyncio.sleep(2)
        assert await status(live, "/readyz") == 200
        stop_began = loop.time()
        await asyncio.to_thread(own_postgres.stop, "fast")
        stopped = loop.time()
        codes_down: Counter[int] = Counter()
        health_down: Counter[int] = Counter()
        while loop.time() < stopped + OUTAGE:
            codes_down[await status(live, "/readyz")] += 1
            health_down[await status(live, "/healthz")] += 1
            await asyncio.sleep(0.5)
        restart_began = loop.time()
        await asyncio.to_thread(own_postgres.start)
        restarted = loop.time()
        await asyncio.sleep(2)  # the exam goes on after the outage
    finally:
        producing = False
        await asyncio.gather(*producers)
    for s in students:
        await s.settle(30)

    codes_after: list[int] = []
    for _ in range(50):
        codes_after.append(await status(live, "/readyz"))
        if codes_after[-1] == 200:
            break
        await asyncio.sleep(0.2)

    acks = [a for s in students for a in s.acks]
    # Nothing sent after Postgres was gone can have been committed before it came back, and
    # no ack at all may arrive while it is down (in-flight acks of earlier commits land at once).
    impossible = [a for a in acks if a.ok and a.sent_at >= stopped and a.acked_at < restart_began]
    during = [a for a in acks if a.ok and stopped + 0.5 < a.acked_at < restart_began]
    waited = [
        a.acked_at - s.first_sent[a.seq]
        for s in students
        for a in s.acks
        if a.ok and a.stored and stop_began <= s.first_sent[a.seq] < restart_began
    ]
    rows_total = 0
    for s in students:
        rows = await stored_rows(own_postgres.dsn, s.attempt_id)
        check_exactly_once(s, rows, saw_every_ack=True)
        rows_total += len(rows)
    await asyncio.sleep(0.5)
    pushed = Counter((v["attempt_id"], v["seq"]) for v in teacher.received.events["violation"])
    errors_logged = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith(OUR_LOGGERS)]

    # A student who joins now is served: the node kept running.
    [late] = await live.invites(room["id"], 1, prefix="late")
    _, joined = await live.student(late)

    record(
        "postgres_outage",
        students=STUDENTS,
        interval_ms=ms(INTERVAL),
        outage_s=round(restart_began - stopped, 1),
        stop_took_s=round(stopped - stop_began, 2),
        restart_took_s=round(restarted - restart_began, 2),
        events=sum(s.seq for s in students),
        rows=rows_total,
        sends=sum(s.sends for s in students),
        client_timeouts=sum(s.timeouts for s in students),
        error_acks=dict(sum((s.errors for s in students), Counter())),
        acks_while_down=len(during),
        readyz_while_down=dict(codes_down),
        healthz_while_down=dict(health_down),
        readyz_after=codes_after[-1],
        readyz_polls_until_200=len(codes_after),
        backlog_acked_after_restart_s=round(
            max(
                (
                    a.acked_at
                    for s in students
                    for a in s.acks
                    if a.ok and stop_began <= s.first_sent[a.seq] < restart_began
                ),
                default=restarted,
            )
            - restarted,
            2,
        ),
        outage_event_wait_p50_s=round(percentile(waited, 50), 2),
        outage_event_wait_max_s=round(max(waited, default=0), 2),
        teacher_violations=sum(pushed.values()),
        error_log_entries=len(errors_logged),
        error_log_sources=dict(Counter(f"{r.name}: {r.getMessage()[:50]}" for r in errors_logged)),
    )
    assert not impossible, impossible[:5]
    assert not during, during[:5]
    assert set(codes_down) == {503}, codes_down
    assert set(health_down) == {200}, health_down
    assert codes_after[-1] == 200
    unexpected = {code for s in students for code in s.errors if code not in ("rate_limited", "unavailable", "busy")}
    assert not unexpected, [s.errors for s in students]
    expected = {(s.attempt_id, seq) for s in students for seq in range(1, s.seq + 1)}
    assert set(pushed) == expected and set(pushed.values()) == {1}, "each event reaches the teacher once"
    assert joined["ok"]
    for s in students:
        await s.close()


@pytest.mark.timeout(60)
async def test_join_while_postgres_is_down_says_unavailable(node: Live, own_postgres: EmbeddedPostgres) -> None:
    """A student (re)joining during the outage must be told to retry (`unavailable` with
    `retry_after`, docs/protocol.md), not `internal` (a bug), and get in once it is back."""
    live = node
    room = await live.room()
    [token] = await live.invites(room["id"], 1)
    await asyncio.to_thread(own_postgres.stop, "fast")
    try:
        client = await live.connect("/student", token)
        ack = await client.call("join", timeout=15)
    finally:
        await asyncio.to_thread(own_postgres.start)
    record("postgres_outage_join", ack=ack)
    assert ack["ok"] is False, ack
    assert ack["error"]["code"] == "unavailable" and ack["error"].get("retry_after"), ack

    async def joined() -> dict[str, object]:
        for _ in range(50):
            again = await client.call("join")
            if again["ok"]:
                return again
            await asyncio.sleep(0.2)
        raise AssertionError(again)

    assert (await joined())["ok"]
