"""`/teacher` events by room role: a proctor watches, controls, announces and opens live
views; a reviewer does none of that; a role change applies to the next event of an open socket."""

from __future__ import annotations

import uuid
from typing import Any

from server.keys import POOL
from tests.support.live import Client, Live
from tests.support.members import member
from tests.support.node import EXAM_BODY


async def room_with_student(live: Live) -> tuple[dict[str, Any], str, str]:
    """A room owned by a fresh teacher, one student joined: (room, owner token, attempt id)."""
    owner = await live.teacher_token([], sub=f"t-{uuid.uuid4().hex[:8]}")
    exam = await live.rest("POST", "/api/exams", EXAM_BODY, token=owner)
    room = await live.rest("POST", f"/api/exams/{exam['id']}/rooms", {"name": "R", "seats": 5}, token=owner)
    [invite] = await live.invites(room["id"], 1, prefix=f"s-{uuid.uuid4().hex[:6]}")
    _, ack = await live.student(invite)
    assert ack["ok"]
    return room, owner, str(ack["attempt"]["attempt_id"])


def calls(room_id: str, attempt_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("watch", "watch", {"room_id": room_id}),
        ("control:warn", "control", {"attempt_id": attempt_id, "action": "warn", "text": "eyes up"}),
        ("control:extend", "control", {"attempt_id": attempt_id, "action": "extend", "minutes": 1}),
        ("announce", "announce", {"room_id": room_id, "text": "ten minutes left"}),
        (
            "rtc:offer (live view)",
            "rtc",
            {"target": "peer", "type": "offer", "attempt_id": attempt_id, "sdp": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n"},
        ),
    ]


async def outcomes(client: Client, room_id: str, attempt_id: str) -> dict[str, str]:
    result = {}
    for label, event, payload in calls(room_id, attempt_id):
        ack = await client.call(event, payload)
        result[label] = "ok" if ack["ok"] else ack["error"]["code"]
    return result


async def test_proctor_may_and_reviewer_may_not_use_the_live_side(live: Live) -> None:
    room, owner, attempt = await room_with_student(live)
    _, proctor = await member(live, room["id"], "proctor", owner, "p")
    _, reviewer = await member(live, room["id"], "reviewer", owner, "r")
    as_proctor = await outcomes(await live.connect("/teacher", proctor), room["id"], attempt)
    as_reviewer = await outcomes(await live.connect("/teacher", reviewer), room["id"], attempt)
    assert as_proctor == dict.fromkeys(as_proctor, "ok"), as_proctor
    assert as_reviewer == dict.fromkeys(as_proctor, "forbidden"), as_reviewer
    # The reviewer still reads the attempt's timeline over REST (its side of the room).
    timeline = await live.rest("GET", f"/api/attempts/{attempt}/timeline", token=reviewer)
    assert [e["action"] for e in timeline["entries"] if e["type"] == "control"] == ["warn", "extend", "announce"]


async def test_a_role_change_applies_to_the_next_event(live: Live) -> None:
    room, owner, attempt = await room_with_student(live)
    sub, token = await member(live, room["id"], "proctor", owner, "p")
    client = await live.connect("/teacher", token)
    warn = {"attempt_id": attempt, "action": "warn", "text": "eyes up"}
    assert (await client.call("control", warn))["ok"]
    # The owner makes them a reviewer: the open socket's next control is refused.
    demote = {"email": await email_of(live, sub), "role": "reviewer"}
    await live.rest("POST", f"/api/rooms/{room['id']}/members", demote, token=owner)
    ack = await client.call("control", warn)
    assert not ack["ok"] and ack["error"]["code"] == "forbidden", ack
    assert "reviewer" in ack["error"]["message"]
    # Removed altogether: not even the room is theirs any more.
    await live.rest("DELETE", f"/api/rooms/{room['id']}/members", {"subject": sub}, token=owner)
    ack = await client.call("watch", {"room_id": room["id"]})
    assert not ack["ok"] and ack["error"]["code"] == "forbidden", ack


async def email_of(live: Live, sub: str) -> str:
    value = await live.app[POOL].fetchval("SELECT email FROM accounts WHERE id = $1::uuid", sub)  # type: ignore[attr-defined]
    return str(value)
