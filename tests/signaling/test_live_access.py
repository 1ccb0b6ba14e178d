"""Who may connect where and act on what; bad input harms nobody else."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import socketio

from rooms.tokens import TokenService
from server.settings import Settings
from tests.support.live import Live, running_node
from tests.support.node import SECRET


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


async def refused(live: Live, namespace: str, token: str | None) -> str:
    """Connect and return the refusal's code (the client's connect_error data)."""
    sio = socketio.AsyncClient(reconnection=False)
    reasons: list[object] = []

    async def on_error(data: object = None) -> None:
        reasons.append(data)

    sio.on("connect_error", on_error, namespace=namespace)
    auth = {"token": token} if token is not None else None
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(live.url, namespaces=[namespace], auth=auth, transports=["websocket"])
    await sio.disconnect()
    assert reasons, "the refusal carries a reason"
    data = reasons[0]
    assert isinstance(data, dict) and "message" in data, data
    return str(data["data"]["code"])


async def test_connect_refusals(live: Live) -> None:
    room = await live.room()
    [student] = await live.invites(room["id"], 1)
    teacher = await live.teacher_token([room["id"]])
    assert "unauthorized" == await refused(live, "/student", None)
    assert "invalid_token" == await refused(live, "/student", "garbage")
    assert "wrong_role" == await refused(live, "/teacher", student)
    assert "wrong_role" == await refused(live, "/student", teacher)
    expired = TokenService(SECRET).mint("student", "s", exam_id=room["exam_id"], room_id=room["id"], ttl_seconds=-5)
    assert "token_expired" == await refused(live, "/student", expired)


async def test_teacher_of_room_a_cannot_watch_or_control_room_b(live: Live) -> None:
    room_a = await live.room()
    room_b = await live.room()
    [student_b] = await live.invites(room_b["id"], 1)
    _, joined = await live.student(student_b)
    teacher = await live.connect("/teacher", await live.teacher_token([room_a["id"]]))
    ack = await teacher.call("watch", {"room_id": room_b["id"]})
    assert ack["ok"] is False and ack["error"]["code"] == "forbidden"
    ack = await teacher.call("control", {"attempt_id": joined["attempt"]["attempt_id"], "action": "terminate"})
    assert ack["ok"] is False and ack["error"]["code"] == "forbidden"
    ack = await teacher.call("announce", {"room_id": room_b["id"], "text": "hi"})
    assert ack["ok"] is False and ack["error"]["code"] == "forbidden"


async def test_student_acts_only_on_own_attempt(live: Live) -> None:
    room = await live.room()
    a, b = await live.invites(room["id"], 2)
    _, joined_a = await live.student(a)
    student_b, _ = await live.student(b)
    # Messages name no attempt: the session's own attempt is implied, another cannot be named.
    ack = await student_b.call(
        "answer", {"question_id": "q1", "value": 1, "seq": 1, "attempt_id": joined_a["attempt"]["attempt_id"]}
    )
    assert ack["ok"] is False and ack["error"]["code"] == "invalid"
    # A student cannot drive the teacher namespace's events either.
    ack = await student_b.call("control", {"attempt_id": joined_a["attempt"]["attempt_id"], "action": "terminate"})
    assert ack["ok"] is False and ack["error"]["code"] == "unknown_event"
    resp = await live.http.get(
        f"{live.url}/api/attempts/{joined_a['attempt']['attempt_id']}/timeline",
        headers={"Authorization": f"Bearer {b}"},
    )
    assert resp.status == 403


async def test_bad_payloads_get_error_acks_and_others_keep_working(live: Live) -> None:
    room = await live.room()
    bad, good = await live.invites(room["id"], 2)
    attacker, _ = await live.student(bad)
    victim, _ = await live.student(good)
    cases = [
        ("event", "not an object", "invalid"),
        ("event", {"seq": "x", "kind": "tab_hidden", "occurred_at": now_iso()}, "invalid"),
        ("event", {"seq": 1, "kind": "levitation", "occurred_at": now_iso()}, "invalid"),
        ("event", {"seq": 1, "kind": "copy", "occurred_at": "2026-01-01T00:00:00"}, "invalid"),
        ("event", {"seq": 1, "kind": "copy", "occurred_at": now_iso(), "details": {"x": "y" * 20000}}, "too_large"),
        ("answer", {"question_id": "q3", "value": {"nested": [1, 2]}, "seq": 1}, "invalid"),
        ("event", {"seq": 1, "kind": "copy", "occurred_at": now_iso(), "details": {"x": b"binary"}}, "invalid"),
        ("nonsense", {}, "unknown_event"),
        ("join", {"consent_version": "v" * 500}, "invalid"),
    ]
    for event, payload, code in cases:
        ack = await attacker.call(event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == code, (event, payload, ack)
    ok = await victim.call("event", {"seq": 1, "kind": "copy", "occurred_at": now_iso()})
    assert ok == {"ok": True, "seq": 1, "stored": True}
    # The attacker's connection itself survives its own bad input.
    ok = await attacker.call("event", {"seq": 1, "kind": "copy", "occurred_at": now_iso()})
    assert ok["ok"] is True


async def test_huge_message_closes_only_that_connection(live: Live) -> None:
    room = await live.room()
    bad, good = await live.invites(room["id"], 2)
    attacker, _ = await live.student(bad)
    victim, _ = await live.student(good)
    await attacker.emit("event", {"seq": 1, "kind": "copy", "occurred_at": now_iso(), "details": {"x": "y" * 200_000}})
    for _ in range(50):
        if not attacker.sio.connected:
            break
        await asyncio.sleep(0.1)
    assert not attacker.sio.connected
    ok = await victim.call("event", {"seq": 1, "kind": "copy", "occurred_at": now_iso()})
    assert ok["ok"] is True


async def test_rate_limit_answers_with_retry_hint(live: Live) -> None:
    room = await live.room()
    [token] = await live.invites(room["id"], 1)
    student, _ = await live.student(token)
    acks = await asyncio.gather(
        *[student.call("event", {"seq": i, "kind": "copy", "occurred_at": now_iso()}) for i in range(1, 101)]
    )
    limited = [a for a in acks if not a["ok"]]
    assert limited, "a burst of 100 must hit the limit"
    assert all(a["error"]["code"] == "rate_limited" and a["error"]["retry_after"] > 0 for a in limited), limited
    assert sum(1 for a in acks if a["ok"]) >= 50


async def test_room_seats_and_node_rooms_are_capped(live: Live) -> None:
    room = await live.room(seats=1)
    first, second = await live.invites(room["id"], 2)
    await live.student(first)
    client = await live.connect("/student", second)
    ack = await client.call("join")
    assert ack["ok"] is False and ack["error"]["code"] == "capacity" and ack["error"]["retry_after"] > 0

    from server.keys import PLACEMENT

    other = await live.room()
    placement = live.app[PLACEMENT]  # type: ignore[attr-defined]
    placement.capacity = len(placement.hosted())
    [token] = await live.invites(other["id"], 1)
    client = await live.connect("/student", token)
    ack = await client.call("join")
    assert ack["ok"] is False and ack["error"]["code"] == "capacity"
    resp = await live.http.post(
        f"{live.url}/api/exams/{other['exam_id']}/rooms",
        json={"name": "x", "seats": 2},
        headers={"Authorization": "Bearer test-admin-token-0123456789"},
    )
    assert resp.status == 503 and "Retry-After" in resp.headers


async def test_cross_origin_browsers_are_refused(live: Live) -> None:
    room = await live.room()
    [token] = await live.invites(room["id"], 1)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await live.connect("/student", token, headers={"Origin": "http://evil.example"})
    # The page's own origin is accepted.
    client = await live.connect("/student", token, headers={"Origin": live.url})
    assert client.sio.connected


async def test_admission_caps_connections_and_per_address_rate(live_settings: Settings) -> None:
    async with running_node(live_settings.replace(max_connections=2)) as node:
        room = await node.room()
        tokens = await node.invites(room["id"], 3)
        await node.connect("/student", tokens[0])
        await node.connect("/student", tokens[1])
        assert "capacity" == await refused(node, "/student", tokens[2])
    async with running_node(live_settings.replace(connect_burst_per_ip=3, connects_per_ip_per_second=0.01)) as node:
        room = await node.room()
        tokens = await node.invites(room["id"], 4)
        for token in tokens[:3]:
            await node.connect("/student", token)
        assert "rate_limited" == await refused(node, "/student", tokens[3])
