"""Windows, hard close and accommodations on a real node (real Postgres, real Socket.IO clients):
a join outside the window is refused saying when, a hard close submits with time left, and an
accommodation set before the join or while the attempt runs moves the server's deadline and
reaches the student's page on the deadline path."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server.keys import POOL
from tests.support.live import Live
from tests.support.node import bearer

pytestmark = pytest.mark.timeout(60)

MINUTE = timedelta(minutes=1)


def at(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


async def call(live: Live, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    headers = bearer(token) if token is not None else bearer()
    async with live.http.request(method, live.url + path, json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def refused_join(live: Live, token: str) -> dict[str, Any]:
    client = await live.connect("/student", token)
    ack = await client.call("join")
    await client.close()
    assert ack["ok"] is False, ack
    return dict(ack["error"])


async def test_a_join_outside_the_window_is_refused_with_when_and_a_running_attempt_rejoins(live: Live) -> None:
    room = await live.room()
    tokens = await live.invites(room["id"], 4)
    opens = at(timedelta(hours=1))
    status, data = await call(live, "PUT", f"/api/rooms/{room['id']}/schedule", {"opens_at": opens})
    assert status == 200, data
    assert data["schedule"]["opens_at"] == data["effective"]["opens_at"]
    error = await refused_join(live, tokens[0])
    assert error["code"] == "not_open_yet"
    assert datetime.fromisoformat(error["details"]["opens_at"]) == datetime.fromisoformat(opens)
    assert "opens at" in error["message"]

    # Open now, latest start in the past-but-one-minute: the first student starts...
    window = {"opens_at": at(-2 * MINUTE), "latest_start": at(MINUTE), "closes_at": at(timedelta(hours=2))}
    assert (await call(live, "PUT", f"/api/rooms/{room['id']}/schedule", window))[0] == 200
    first, joined = await live.student(tokens[0])
    await first.close()
    # ...then the latest start passes: a newcomer is too late, the started attempt rejoins.
    late = {"opens_at": at(-2 * MINUTE), "latest_start": at(-MINUTE), "closes_at": at(timedelta(hours=2))}
    assert (await call(live, "PUT", f"/api/rooms/{room['id']}/schedule", late))[0] == 200
    error = await refused_join(live, tokens[1])
    assert error["code"] == "too_late" and "latest_start" in error["details"]
    again, resumed = await live.student(tokens[0])
    assert resumed["resumed"] is True and resumed["attempt"]["attempt_id"] == joined["attempt"]["attempt_id"]
    await again.close()

    # The exam's window applies to rooms without their own; the room's replaces it.
    exam_id = room["exam"]["id"]
    closed = {"opens_at": at(-timedelta(hours=3)), "closes_at": at(-timedelta(hours=1))}
    assert (await call(live, "PUT", f"/api/exams/{exam_id}/schedule", closed))[0] == 200
    assert (await call(live, "GET", f"/api/exams/{exam_id}"))[1]["schedule"]["closes_at"] is not None
    error = await refused_join(live, tokens[2])  # the room's own window still applies: too late
    assert error["code"] == "too_late"
    status, data = await call(live, "DELETE", f"/api/rooms/{room['id']}/schedule")
    assert status == 200 and data["schedule"] is None and data["effective"] == data["exam_schedule"]
    error = await refused_join(live, tokens[2])
    assert error["code"] == "closed" and "closes_at" in error["details"]
    assert (await call(live, "DELETE", f"/api/exams/{exam_id}/schedule"))[0] == 200
    late_joiner, _ = await live.student(tokens[3])
    await late_joiner.close()


async def test_a_hard_close_submits_at_the_window_end_with_time_left(live: Live) -> None:
    room = await live.room()  # 30 minutes
    [active_token, paused_token] = await live.invites(room["id"], 2)
    closes = datetime.now(UTC) + timedelta(seconds=8)
    window = {"opens_at": at(-MINUTE), "closes_at": closes.isoformat(), "hard_close": True}
    assert (await call(live, "PUT", f"/api/rooms/{room['id']}/schedule", window))[0] == 200
    teacher, _ = await live.teacher(await live.teacher_token([room["id"]]), room["id"])

    student, joined = await live.student(active_token)
    clock = joined["attempt"]
    assert datetime.fromisoformat(clock["deadline"]) == closes
    assert datetime.fromisoformat(clock["hard_close_at"]) == closes
    assert clock["remaining_seconds"] <= 8
    other, other_joined = await live.student(paused_token)
    other_id = other_joined["attempt"]["attempt_id"]
    ack = await teacher.call("control", {"attempt_id": other_id, "action": "pause"})
    assert ack["ok"], ack

    end = await student.received.wait_for("deadline", lambda c: c["status"] == "submitted", timeout=15)
    assert end["end_reason"] == "window_closed"
    paused_end = await other.received.wait_for("deadline", lambda c: c["status"] == "submitted", timeout=15)
    assert paused_end["end_reason"] == "window_closed"
    await teacher.received.wait_for("submitted", lambda d: d["attempt_id"] == other_id)
    pool = live.app[POOL]  # type: ignore[attr-defined]
    rows = await pool.fetch(
        "SELECT status, submitted_at, deadline, end_reason FROM attempts WHERE room_id = $1", uuid.UUID(room["id"])
    )
    assert {(r["status"], r["end_reason"]) for r in rows} == {("submitted", "window_closed")}
    # Submitted as of the window's end, well before the 30 minutes were up.
    assert all(r["submitted_at"] == closes for r in rows)


async def test_a_hard_close_set_while_running_reaches_the_page(live: Live) -> None:
    room = await live.room()
    [token] = await live.invites(room["id"], 1)
    student, joined = await live.student(token)
    assert joined["attempt"]["remaining_seconds"] > 1700
    closes = datetime.now(UTC) + timedelta(minutes=10)
    window = {"closes_at": closes.isoformat(), "hard_close": True}
    assert (await call(live, "PUT", f"/api/exams/{room['exam']['id']}/schedule", window))[0] == 200
    clock = await student.received.wait_for("deadline", lambda c: c.get("hard_close_at") is not None)
    assert datetime.fromisoformat(clock["deadline"]) == closes and 590 < clock["remaining_seconds"] <= 600


async def test_accommodations_set_before_the_join_extend_the_deadline(live: Live) -> None:
    room = await live.room()  # 30 minutes
    [percent, minutes, none] = await live.invites(room["id"], 3)
    base = f"/api/rooms/{room['id']}/accommodations"
    body = {"extra_percent": 50, "rules_off": ["tab_hidden", "no_face"], "note": "reader, dyslexia"}
    status, data = await call(live, "PUT", f"{base}/s-0", body)
    assert status == 200, data
    assert data["applied_to"] == [] and data["updated_by"] == "admin"
    assert (await call(live, "PUT", f"{base}/s-1", {"extra_minutes": 10}))[0] == 200

    _, joined = await live.student(percent)
    assert 2690 < joined["attempt"]["remaining_seconds"] <= 2700  # 30 min + 50 %
    told = joined["accommodations"]
    assert told["extra_minutes"] == 15 and [r["id"] for r in told["rules_off"]] == ["tab_hidden", "no_face"]
    assert "reader" not in str(joined)  # the note is for colleagues only
    _, joined = await live.student(minutes)
    assert 2390 < joined["attempt"]["remaining_seconds"] <= 2400
    _, joined = await live.student(none)
    assert joined["accommodations"] == {"extra_seconds": 0, "extra_minutes": 0.0, "rules_off": []}

    listed = (await call(live, "GET", base))[1]
    assert [(a["student_id"], a["attempt"]["extra_seconds"]) for a in listed["accommodations"]] == [
        ("s-0", 900),
        ("s-1", 600),
    ]


async def test_an_accommodation_edited_while_running_moves_the_deadline_on_the_page(live: Live) -> None:
    room = await live.room()
    [token] = await live.invites(room["id"], 1)
    teacher, _ = await live.teacher(await live.teacher_token([room["id"]]), room["id"])
    student, joined = await live.student(token)
    attempt_id = joined["attempt"]["attempt_id"]
    deadline = datetime.fromisoformat(joined["attempt"]["deadline"])
    base = f"/api/rooms/{room['id']}/accommodations/s-0"

    status, data = await call(live, "PUT", base, {"extra_minutes": 15, "rules_off": ["paste"]})
    assert status == 200 and data["applied_to"] == [attempt_id], data
    clock = await student.received.wait_for("deadline", lambda c: c["deadline"] != deadline.isoformat())
    assert datetime.fromisoformat(clock["deadline"]) == deadline + timedelta(minutes=15)
    told = await student.received.wait_for("control", lambda c: c["action"] == "accommodation")
    assert told["extra_minutes"] == 15 and told["rules_off"] == [{"id": "paste", "label": "Paste"}]
    await student.received.wait_for("rtc", lambda m: m.get("reason") == "rules_changed")
    await teacher.received.wait_for("control", lambda c: c["action"] == "accommodation")

    # The switched-off signal is kept and counts nothing; the others count as before.
    now = datetime.now(UTC).isoformat()
    assert (await student.call("event", {"seq": 1, "kind": "paste", "occurred_at": now, "details": {}}))["ok"]
    assert (await student.call("event", {"seq": 2, "kind": "tab_hidden", "occurred_at": now, "details": {}}))["ok"]
    flags = [
        await teacher.received.wait_for("violation", lambda v, k=k: v["kind"] == k) for k in ("paste", "tab_hidden")
    ]
    assert [f["severity"] for f in flags] == [0.0, 3.0]

    # The timeline shows the change as a control; deleting gives the time back.
    timeline = await live.rest("GET", f"/api/attempts/{attempt_id}/timeline")
    assert any(e.get("action") == "accommodation" for e in timeline["entries"])
    status, data = await call(live, "DELETE", base)
    assert status == 200 and data["deleted"] is True
    await student.received.wait_for("deadline", lambda c: c["deadline"] == deadline.isoformat())
    pool = live.app[POOL]  # type: ignore[attr-defined]
    row = await pool.fetchrow(
        "SELECT extra_seconds, accommodations::text FROM attempts WHERE id = $1::uuid", attempt_id
    )
    assert (row["extra_seconds"], row["accommodations"]) == (0, "[]")
    assert (await call(live, "DELETE", base))[1]["deleted"] is False  # again: nothing to delete


async def test_who_may_set_schedules_and_accommodations(live: Live) -> None:
    room = await live.room()
    other = await live.room()
    [student] = await live.invites(room["id"], 1)
    proctor = await live.teacher_token([room["id"]], sub="t-here")
    elsewhere = await live.teacher_token([other["id"]], sub="t-there")
    base = f"/api/rooms/{room['id']}/accommodations"
    body = {"extra_minutes": 5, "note": "broken arm"}

    assert (await call(live, "PUT", f"{base}/s-0", body, proctor))[0] == 200
    assert (await call(live, "GET", base, token=proctor))[0] == 200
    for token in (elsewhere, student):
        for method, path, payload in (
            ("PUT", f"{base}/s-0", body),
            ("GET", base, None),
            ("DELETE", f"{base}/s-0", None),
        ):
            status, data = await call(live, method, path, payload, token)
            assert status == 403 and data["error"]["code"] == "forbidden", (method, path, data)
    # A proctor runs the sitting; its window is the owners' (rooms/roles.py).
    window = {"opens_at": at(-MINUTE)}
    status, data = await call(live, "PUT", f"/api/rooms/{room['id']}/schedule", window, proctor)
    assert status == 403 and "owner" in data["error"]["message"]
    status, _ = await call(live, "PUT", f"/api/exams/{room['exam']['id']}/schedule", window, elsewhere)
    assert status == 403
    audit = await live.app[POOL].fetch(  # type: ignore[attr-defined]
        "SELECT actor_id, action, details::text FROM audit_log WHERE target_id = $1 AND action LIKE 'accommodation.%'",
        room["id"],
    )
    assert [(r["actor_id"], r["action"]) for r in audit] == [("t-here", "accommodation.set")]
    assert "note" not in audit[0]["details"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"opens_at": "2026-03-02T09:00:00"}, "opens_at"),  # naive: which timezone?
        ({"opens_at": "tomorrow"}, "opens_at"),
        ({"opens_at": "2026-03-02T10:00:00Z", "closes_at": "2026-03-02T09:00:00Z"}, "body"),
        ({"hard_close": True}, "body"),
        ({"latest_start": "2026-03-02T11:00:00Z", "closes_at": "2026-03-02T10:00:00Z"}, "body"),
        ({"opens_at": "2026-03-02T10:00:00Z", "later": 1}, "later"),
    ],
)
async def test_a_bad_schedule_is_refused_with_the_error_shape(live: Live, body: dict[str, Any], field: str) -> None:
    room = await live.room()
    for path in (f"/api/rooms/{room['id']}/schedule", f"/api/exams/{room['exam']['id']}/schedule"):
        status, data = await call(live, "PUT", path, body)
        assert status == 400, data
        assert data["error"]["code"] == "invalid"
        assert any(key == field or key.startswith(field) for key in data["error"]["fields"]), data


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"extra_minutes": -5}, "extra_minutes"),
        ({"extra_minutes": 1441}, "extra_minutes"),
        ({"extra_percent": 401}, "extra_percent"),
        ({"extra_percent": -1}, "extra_percent"),
        ({"extra_minutes": "15"}, "extra_minutes"),
        ({"rules_off": ["no_such_rule"]}, "rules_off.0"),
        ({"rules_off": ["paste", "paste"]}, "rules_off"),
        ({"note": "x" * 501}, "note"),
    ],
)
async def test_a_bad_accommodation_is_refused_with_the_error_shape(
    live: Live, body: dict[str, Any], field: str
) -> None:
    room = await live.room()
    status, data = await call(live, "PUT", f"/api/rooms/{room['id']}/accommodations/s-0", body)
    assert status == 400, data
    assert data["error"]["code"] == "invalid" and field in data["error"]["fields"], data
    assert (await call(live, "GET", f"/api/rooms/{room['id']}/accommodations"))[1]["accommodations"] == []


async def test_an_exam_created_with_a_schedule_keeps_it(live: Live) -> None:
    from tests.support.node import EXAM_BODY

    window = {"opens_at": at(timedelta(days=1)), "closes_at": at(timedelta(days=2))}
    room = await live.room(exam={**EXAM_BODY, "schedule": window})
    assert datetime.fromisoformat(room["exam"]["schedule"]["opens_at"]) == datetime.fromisoformat(window["opens_at"])
    [token] = await live.invites(room["id"], 1)
    assert (await refused_join(live, token))["code"] == "not_open_yet"


async def test_an_accommodation_is_part_of_the_students_export_and_erasure(live: Live) -> None:
    room = await live.room()
    student_id = "s-priv-" + uuid.uuid4().hex[:8]
    path = f"/api/rooms/{room['id']}/accommodations/{student_id}"
    assert (await call(live, "PUT", path, {"extra_percent": 25, "note": "medical certificate"}))[0] == 200
    # Stored before any attempt: the student still has data to export and erase.
    export = await live.rest("GET", f"/api/students/{student_id}/export")
    assert [(a["note"], a["rules_off"]) for a in export["accommodations"]] == [("medical certificate", [])]
    erased = await live.rest("DELETE", f"/api/students/{student_id}")
    assert erased["erased"]["accommodations"] == 1
    assert (await call(live, "GET", f"/api/rooms/{room['id']}/accommodations"))[1]["accommodations"] == []
