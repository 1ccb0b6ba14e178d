"""Retention, per-student export and erasure, and revocation — each recorded in the audit log."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from rooms.store.privacy import purge_expired_evidence
from server.keys import POOL
from tests.support.live import Live


async def evidence_for(pool: asyncpg.Pool, attempt_id: str, expires_at: datetime) -> str:
    evidence_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO evidence (id, attempt_id, data, expires_at) VALUES ($1, $2, $3, $4)",
        evidence_id,
        uuid.UUID(attempt_id),
        b"\xff\xd8jpeg",
        expires_at,
    )
    return str(evidence_id)


async def test_retention_purges_only_expired_evidence(live: Live) -> None:
    room = await live.room()
    [token] = await live.invites(room["id"], 1)
    _, joined = await live.student(token)
    attempt_id = joined["attempt"]["attempt_id"]
    pool = live.app[POOL]  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    old = await evidence_for(pool, attempt_id, now + timedelta(days=1))
    young = await evidence_for(pool, attempt_id, now + timedelta(days=30))
    # A clock we control: two days from now, the first image is past its retention.
    await purge_expired_evidence(pool, now=now + timedelta(days=2))
    rows = await pool.fetch("SELECT id FROM evidence WHERE attempt_id = $1", uuid.UUID(attempt_id))
    left = {str(r["id"]) for r in rows}
    assert old not in left and young in left
    resp = await live.http.get(
        f"{live.url}/api/evidence/{old}", headers={"Authorization": "Bearer test-admin-token-0123456789"}
    )
    assert resp.status == 404


async def test_export_then_erase_a_student(live: Live) -> None:
    room = await live.room()
    prefix = "erase-" + uuid.uuid4().hex[:8]
    student_id = f"{prefix}-0"
    [token] = await live.invites(room["id"], 1, prefix=prefix)
    student, joined = await live.student(token)
    attempt_id = joined["attempt"]["attempt_id"]
    await student.call("answer", {"question_id": "q3", "value": "mine", "seq": 1})
    await student.call("event", {"seq": 2, "kind": "paste", "occurred_at": datetime.now(UTC).isoformat()})
    pool = live.app[POOL]  # type: ignore[attr-defined]
    await evidence_for(pool, attempt_id, datetime.now(UTC) + timedelta(days=3))

    # Not while the exam runs: 409, and nothing is erased.
    resp = await live.http.delete(
        f"{live.url}/api/students/{student_id}", headers={"Authorization": "Bearer test-admin-token-0123456789"}
    )
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "conflict"
    assert (await student.call("submit"))["ok"]
    await student.close()
    export = await live.rest("GET", f"/api/students/{student_id}/export")
    assert [a["id"] for a in export["attempts"]] == [attempt_id]
    assert export["answers"][0]["value"] == "mine"
    assert export["violations"][0]["kind"] == "paste"
    assert len(export["evidence"]) == 1
    erased = await live.rest("DELETE", f"/api/students/{student_id}")
    assert erased["erased"]["attempts"] == 1
    for table in ("attempts", "answers", "violations", "evidence", "attempt_log"):
        column = "id" if table == "attempts" else "attempt_id"
        assert await pool.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = $1", uuid.UUID(attempt_id)) == 0
    actions = [
        r["action"]
        for r in await pool.fetch(
            "SELECT action FROM audit_log WHERE target_type = 'student' AND target_id = $1 ORDER BY id", student_id
        )
    ]
    assert actions[-2:] == ["student.export", "student.erase"]
    resp = await live.http.get(
        f"{live.url}/api/students/{student_id}/export", headers={"Authorization": "Bearer test-admin-token-0123456789"}
    )
    assert resp.status == 404


async def test_revoked_teacher_loses_access_within_seconds(live: Live) -> None:
    room = await live.room()
    token = await live.teacher_token([room["id"]])
    teacher, _ = await live.teacher(token, room["id"])
    started = asyncio.get_running_loop().time()
    await live.rest("POST", "/api/tokens/revoke", {"token": token})
    # The client's `connected` flag is what is being timed; the client offers no event for it.
    while teacher.sio.connected and asyncio.get_running_loop().time() - started < 6:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    assert not teacher.sio.connected, "a revoked teacher's socket must close within 5 s"
    assert asyncio.get_running_loop().time() - started < 5
    resp = await live.http.get(
        f"{live.url}/api/rooms/{room['id']}/attempts", headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "token_revoked"
    import pytest
    import socketio

    with pytest.raises(socketio.exceptions.ConnectionError):
        await live.connect("/teacher", token)


async def test_expired_token_session_is_closed(live: Live) -> None:
    from rooms.tokens import TokenService
    from tests.support.node import SECRET

    room = await live.room()
    short = TokenService(SECRET).mint("teacher", "t-short", rooms=[room["id"]], ttl_seconds=1)
    teacher = await live.connect("/teacher", short)
    for _ in range(60):
        if not teacher.sio.connected:
            break
        await asyncio.sleep(0.1)
    assert not teacher.sio.connected
