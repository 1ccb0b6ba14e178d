"""Every REST route, every error code, and token scope, against a real Postgres."""

from __future__ import annotations

import csv
import io
from typing import Any

from aiohttp.test_utils import TestClient

from rooms.tokens import TokenService
from tests.support.node import ADMIN, EXAM_BODY, SECRET, bearer

Client = TestClient[Any, Any]


async def make_exam(client: Client, token: str = ADMIN) -> dict[str, Any]:
    resp = await client.post("/api/exams", json=EXAM_BODY, headers=bearer(token))
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def make_room(client: Client, exam_id: str, token: str = ADMIN, seats: int = 30) -> dict[str, Any]:
    resp = await client.post(
        f"/api/exams/{exam_id}/rooms", json={"name": "Hall", "seats": seats}, headers=bearer(token)
    )
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def teacher_token(client: Client, rooms: list[str], sub: str = "t-1") -> str:
    resp = await client.post("/api/tokens", json={"role": "teacher", "sub": sub, "rooms": rooms}, headers=bearer())
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["token"])


async def test_health_ready_metrics(client: Client) -> None:
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["status"] == "ready"
    metrics = await client.get("/metrics")
    assert metrics.status == 200
    assert "proctor_live_rooms" in await metrics.text()


async def test_exam_created_and_read_back(client: Client) -> None:
    exam = await make_exam(client)
    resp = await client.get(f"/api/exams/{exam['id']}", headers=bearer())
    assert resp.status == 200
    got = await resp.json()
    assert got["title"] == "Algebra"
    assert [q["id"] for q in got["questions"]] == ["q1", "q2", "q3"]
    assert got["duration_seconds"] == 1800
    assert got["rules"]["weights"]["tab_hidden"] == 3.0


async def test_bad_input_names_each_field(client: Client) -> None:
    body = {
        "title": "",
        "duration_minutes": 0,
        "questions": [{"id": "q 1", "kind": "single", "text": "x", "options": ["only"]}],
        "rules": {"weights": {"levitation": 1}},
    }
    resp = await client.post("/api/exams", json=body, headers=bearer())
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "invalid"
    fields = error["fields"]
    assert "title" in fields and "duration_minutes" in fields
    assert any(k.startswith("questions.0") for k in fields)
    assert "rules" in fields


async def test_malformed_bodies(client: Client) -> None:
    for raw in (b"", b"{not json", b"[1,2]", b"\xff\xfe"):
        resp = await client.post("/api/exams", data=raw, headers=bearer())
        assert resp.status == 400, raw
        assert (await resp.json())["error"]["code"] == "invalid"


async def test_body_too_large(client: Client) -> None:
    big = b'{"title": "' + b"x" * (2 << 20) + b'"}'
    resp = await client.post("/api/exams", data=io.BytesIO(big), headers=bearer())
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "too_large"


async def test_unauthorised_and_forbidden(client: Client) -> None:
    resp = await client.post("/api/exams", json=EXAM_BODY)
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "unauthorized"
    resp = await client.post("/api/exams", json=EXAM_BODY, headers=bearer("garbage"))
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "invalid_token"
    expired = TokenService(SECRET).mint("admin", "a", ttl_seconds=-10)
    resp = await client.post("/api/exams", json=EXAM_BODY, headers=bearer(expired))
    assert (await resp.json())["error"]["code"] == "token_expired"
    forged = TokenService("another-secret-of-enough-length-for-hs256").mint("admin", "a")
    assert (await client.post("/api/exams", json=EXAM_BODY, headers=bearer(forged))).status == 401
    # A teacher may not mint tokens.
    teacher = await teacher_token(client, [])
    resp = await client.post("/api/tokens", json={"role": "admin", "sub": "x"}, headers=bearer(teacher))
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "forbidden"


async def test_not_found(client: Client) -> None:
    for path in (
        "/api/exams/00000000-0000-0000-0000-000000000000",
        "/api/exams/not-a-uuid",
        "/api/attempts/00000000-0000-0000-0000-000000000000/timeline",
        "/api/nope",
    ):
        resp = await client.get(path, headers=bearer())
        assert resp.status == 404, path
        assert (await resp.json())["error"]["code"] == "not_found"
    resp = await client.delete("/api/exams", headers=bearer())
    assert resp.status == 405


async def test_teacher_scope(client: Client) -> None:
    exam = await make_exam(client)
    room_a = await make_room(client, exam["id"])
    room_b = await make_room(client, exam["id"])
    token_a = await teacher_token(client, [room_a["id"]])
    assert (await client.get(f"/api/rooms/{room_a['id']}/attempts", headers=bearer(token_a))).status == 200
    for path in (
        f"/api/rooms/{room_b['id']}/attempts",
        f"/api/rooms/{room_b['id']}/report.csv",
    ):
        resp = await client.get(path, headers=bearer(token_a))
        assert resp.status == 403, path
    resp = await client.post(
        f"/api/rooms/{room_b['id']}/invites", json={"students": [{"id": "s1"}]}, headers=bearer(token_a)
    )
    assert resp.status == 403
    # The teacher sees the exam through room A but may not open more rooms on it.
    assert (await client.get(f"/api/exams/{exam['id']}", headers=bearer(token_a))).status == 200
    resp = await client.post(f"/api/exams/{exam['id']}/rooms", json={"name": "x", "seats": 3}, headers=bearer(token_a))
    assert resp.status == 403


async def test_teacher_owns_what_they_create(client: Client) -> None:
    teacher = await teacher_token(client, [], sub="t-owner")
    exam = await make_exam(client, token=teacher)
    room = await make_room(client, exam["id"], token=teacher)
    resp = await client.get(f"/api/rooms/{room['id']}/attempts", headers=bearer(teacher))
    assert resp.status == 200
    other = await teacher_token(client, [], sub="t-other")
    assert (await client.get(f"/api/exams/{exam['id']}", headers=bearer(other))).status == 403


async def test_invites_are_student_tokens(client: Client) -> None:
    exam = await make_exam(client)
    room = await make_room(client, exam["id"])
    resp = await client.post(
        f"/api/rooms/{room['id']}/invites",
        json={"students": [{"id": "s-1", "name": "Ada"}, {"id": "s-2", "name": "Alan"}], "ttl_hours": 1},
        headers=bearer(),
    )
    assert resp.status == 201
    invites = (await resp.json())["invites"]
    assert [i["student_id"] for i in invites] == ["s-1", "s-2"]
    assert invites[0]["url"].startswith("http://proctor.test/exam/#token=")
    claims = TokenService(SECRET).verify(invites[0]["token"])
    assert (claims.role, claims.sub, claims.room_id, claims.exam_id) == ("student", "s-1", room["id"], exam["id"])
    # The student reads the exam without rules, and cannot list attempts or mint tokens.
    student = invites[0]["token"]
    got = await (await client.get(f"/api/exams/{exam['id']}", headers=bearer(student))).json()
    assert "rules" not in got
    assert (await client.get(f"/api/rooms/{room['id']}/attempts", headers=bearer(student))).status == 403
    assert (await client.post("/api/exams", json=EXAM_BODY, headers=bearer(student))).status == 403


async def test_attempts_timeline_and_report(client: Client) -> None:
    exam = await make_exam(client)
    room = await make_room(client, exam["id"])
    app = client.app
    from server.keys import POOL

    pool = app[POOL]
    # An attempt with one answer and one violation, written as the live path writes them.
    attempt_id = await pool.fetchval(
        "INSERT INTO attempts (id, exam_id, room_id, student_id, student_name, deadline)"
        " VALUES (gen_random_uuid(), $1::uuid, $2::uuid, 's-9', '=cmd()', now() + interval '30 min')"
        " RETURNING id::text",
        exam["id"],
        room["id"],
    )
    await pool.execute(
        "INSERT INTO answers (attempt_id, question_id, value, seq) VALUES ($1::uuid, 'q1', '1', 1)", attempt_id
    )
    await pool.execute(
        "INSERT INTO violations (attempt_id, seq, source, kind, severity, occurred_at)"
        " VALUES ($1::uuid, 2, 'client', 'tab_hidden', 3, now())",
        attempt_id,
    )
    resp = await client.get(f"/api/rooms/{room['id']}/attempts", headers=bearer())
    attempts = (await resp.json())["attempts"]
    assert len(attempts) == 1
    assert attempts[0]["answered"] == 1 and attempts[0]["violations"] == 1

    resp = await client.get(f"/api/attempts/{attempt_id}/timeline", headers=bearer())
    assert resp.status == 200
    timeline = await resp.json()
    kinds = [e["type"] for e in timeline["entries"]]
    assert "answer" in kinds and "violation" in kinds

    resp = await client.get(f"/api/rooms/{room['id']}/report.csv", headers=bearer())
    assert resp.status == 200
    assert resp.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert rows[0]["student_id"] == "s-9"
    assert rows[0]["student_name"] == "'=cmd()"  # formula injection neutralised
    audit = await pool.fetch("SELECT action FROM audit_log WHERE target_id = $1 ORDER BY id", attempt_id)
    assert [r["action"] for r in audit] == ["timeline.view"]


async def test_room_creation_refused_when_node_full(client: Client) -> None:
    from server.keys import PLACEMENT

    placement = client.app[PLACEMENT]
    for i in range(placement.capacity):
        await placement.acquire(f"r{i}")
    exam = await make_exam(client)
    resp = await client.post(f"/api/exams/{exam['id']}/rooms", json={"name": "x", "seats": 3}, headers=bearer())
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "30"
    assert (await resp.json())["error"]["code"] == "capacity"
