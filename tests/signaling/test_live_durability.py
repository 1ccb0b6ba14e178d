"""Nothing acknowledged is lost; re-sends are stored once; the server's clock rules."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from server.embedded_pg import EmbeddedPostgres, free_port
from server.keys import POOL
from server.settings import Settings
from tests.support.live import Live, running_node


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def event(seq: int, kind: str = "copy") -> dict[str, object]:
    return {"seq": seq, "kind": kind, "occurred_at": now_iso()}


async def test_disconnect_with_unacknowledged_events_then_resend(live: Live) -> None:
    room = await live.room()
    [token] = await live.invites(room["id"], 1)
    teacher, _ = await live.teacher(await live.teacher_token([room["id"]]), room["id"])
    student, joined = await live.student(token)
    attempt_id = joined["attempt"]["attempt_id"]
    # Fire 30 events without waiting for any ack, then vanish.
    for seq in range(1, 31):
        await student.emit("event", event(seq))
    await student.sio.eio.disconnect(abort=True)

    again, rejoined = await live.student(token)
    assert rejoined["attempt"]["attempt_id"] == attempt_id
    # The client re-sends everything it never saw acknowledged: here, all of it.
    acks = [await again.call("event", event(seq)) for seq in range(1, 31)]
    assert all(a["ok"] and a["seq"] == i for i, a in enumerate(acks, start=1))
    pool = live.app[POOL]  # type: ignore[attr-defined]
    rows = await pool.fetch("SELECT seq FROM violations WHERE attempt_id = $1 ORDER BY seq", uuid.UUID(attempt_id))
    assert [r["seq"] for r in rows] == list(range(1, 31))
    score = await pool.fetchval(
        "SELECT coalesce(sum(severity), 0) FROM violations WHERE attempt_id = $1", uuid.UUID(attempt_id)
    )
    assert score == 30 * 2.0  # copy weighs 2; counted once per stored event
    await asyncio.sleep(0.3)
    seen = [v["seq"] for v in teacher.received.events["violation"]]
    assert sorted(seen) == list(range(1, 31)), "each violation reaches the teacher exactly once"
    # The live score the teacher saw last and the roster's agree with what is stored.
    assert max(v["score"] for v in teacher.received.events["violation"]) == 60.0
    [entry] = (await live.rest("GET", f"/api/rooms/{room['id']}/attempts"))["attempts"]
    # The REST list names the same sum for what it is: the weight of flags nobody has decided yet.
    assert entry["unreviewed_signal_weight"] == 60.0 and entry["flags"]["unreviewed"] == 30


async def test_reconnect_is_a_network_gap_not_a_violation(live: Live) -> None:
    room = await live.room()
    [token] = await live.invites(room["id"], 1)
    teacher, _ = await live.teacher(await live.teacher_token([room["id"]]), room["id"])
    student, joined = await live.student(token)
    attempt_id = joined["attempt"]["attempt_id"]
    await student.close()
    await teacher.received.wait_for("presence", lambda d: d["presence"] == "reconnecting")
    await teacher.received.wait_for("presence", lambda d: d["presence"] == "offline", timeout=5)
    await live.student(token)
    online = [d for d in teacher.received.events["presence"] if d["presence"] == "online"]
    assert len(online) >= 2
    timeline = await live.rest("GET", f"/api/attempts/{attempt_id}/timeline")
    gaps = [e for e in timeline["entries"] if e["type"] == "network_gap"]
    assert len(gaps) == 1 and gaps[0]["details"]["seconds"] >= 1.0
    assert not [e for e in timeline["entries"] if e["type"] == "violation"]


async def test_pause_resume_extend_and_deadline(live: Live) -> None:
    room = await live.room()
    [token] = await live.invites(room["id"], 1)
    teacher, _ = await live.teacher(await live.teacher_token([room["id"]]), room["id"])
    student, joined = await live.student(token)
    attempt_id = joined["attempt"]["attempt_id"]
    deadline0 = datetime.fromisoformat(joined["attempt"]["deadline"])

    ack = await teacher.call("control", {"attempt_id": attempt_id, "action": "extend", "minutes": 5})
    assert ack["ok"], ack
    assert datetime.fromisoformat(ack["attempt"]["deadline"]) - deadline0 == (
        datetime.fromisoformat("2000-01-01T00:05:00") - datetime.fromisoformat("2000-01-01T00:00:00")
    )
    clock = await student.received.wait_for("deadline")
    assert clock["deadline"] == ack["attempt"]["deadline"]

    paused = await teacher.call("control", {"attempt_id": attempt_id, "action": "pause"})
    assert paused["attempt"]["status"] == "paused"
    remaining = paused["attempt"]["remaining_seconds"]
    refused = await student.call("answer", {"question_id": "q1", "value": 1, "seq": 1})
    assert refused["error"]["code"] == "paused"
    await asyncio.sleep(1.2)
    # While paused the clock does not run.
    rejoin = await student.call("join")
    assert abs(rejoin["attempt"]["remaining_seconds"] - remaining) < 0.05
    resumed = await teacher.call("control", {"attempt_id": attempt_id, "action": "resume"})
    pushed = datetime.fromisoformat(resumed["attempt"]["deadline"]) - datetime.fromisoformat(
        paused["attempt"]["deadline"]
    )
    assert 1.1 < pushed.total_seconds() < 3
    wrong = await teacher.call("control", {"attempt_id": attempt_id, "action": "resume"})
    assert wrong["error"]["code"] == "invalid_state"

    # Auto-submit at the deadline, with the student gone.
    await student.close()
    pool = live.app[POOL]  # type: ignore[attr-defined]
    await pool.execute(
        "UPDATE attempts SET deadline = now() + interval '1 second' WHERE id = $1", uuid.UUID(attempt_id)
    )
    submitted = await teacher.received.wait_for("submitted", lambda d: d["attempt_id"] == attempt_id, timeout=6)
    assert submitted["reason"] == "deadline"
    _, after = await live.student(token)
    assert after["attempt"]["status"] == "submitted"


async def test_terminate_ends_the_attempt(live: Live) -> None:
    room = await live.room()
    [token] = await live.invites(room["id"], 1)
    teacher, _ = await live.teacher(await live.teacher_token([room["id"]]), room["id"])
    student, joined = await live.student(token)
    attempt_id = joined["attempt"]["attempt_id"]
    ack = await teacher.call("control", {"attempt_id": attempt_id, "action": "terminate", "text": "Phone use"})
    assert ack["attempt"]["status"] == "terminated"
    control = await student.received.wait_for("control", lambda d: d["action"] == "terminate")
    assert control["text"] == "Phone use"
    # Access ends within seconds: the socket is closed, and a reconnect can only read the end.
    for _ in range(50):
        if not student.sio.connected:
            break
        await asyncio.sleep(0.1)
    assert not student.sio.connected
    again, joined_again = await live.student(token)
    assert joined_again["attempt"]["status"] == "terminated"
    refused = await again.call("event", event(1))
    assert refused["error"]["code"] == "attempt_closed"


async def test_postgres_down_means_no_ack_until_it_is_back(tmp_path: Path, settings: Settings) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg", port=free_port())
    pg.start()
    try:
        dsn = f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
        async with running_node(settings.replace(database_url=dsn, writer_flush_ms=5.0)) as live:
            room = await live.room()
            [token] = await live.invites(room["id"], 1)
            student, joined = await live.student(token)
            attempt_id = joined["attempt"]["attempt_id"]
            assert (await student.call("event", event(1)))["ok"]

            await asyncio.to_thread(pg.stop, "fast")
            pending = [asyncio.ensure_future(student.call("event", event(seq), timeout=60)) for seq in range(2, 12)]
            await asyncio.sleep(3)
            assert not any(p.done() for p in pending), "nothing may be acknowledged while Postgres is down"
            await asyncio.to_thread(pg.start)
            acks = await asyncio.wait_for(asyncio.gather(*pending), 30)
            assert all(a["ok"] for a in acks), acks
        conn = await asyncpg.connect(dsn)
        try:
            seqs = await conn.fetch(
                "SELECT seq FROM violations WHERE attempt_id = $1 ORDER BY seq", uuid.UUID(attempt_id)
            )
        finally:
            await conn.close()
        assert [r["seq"] for r in seqs] == list(range(1, 12))
    finally:
        pg.stop(mode="immediate")
