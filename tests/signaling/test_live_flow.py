"""Student and teacher full flow on one node: every ack, every live delta."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.support.live import Live


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


async def test_full_flow(live: Live) -> None:
    room = await live.room()
    [token] = await live.invites(room["id"], 1)
    teacher, watched = await live.teacher(await live.teacher_token([room["id"]]), room["id"])
    assert watched["students"] == []

    student, joined = await live.student(token)
    assert joined["resumed"] is False
    assert joined["last_seq"] == 0
    assert joined["attempt"]["status"] == "active"
    assert 1790 < joined["attempt"]["remaining_seconds"] <= 1800
    assert "rules" not in joined["exam"]
    attempt_id = joined["attempt"]["attempt_id"]
    await teacher.received.wait_for("joined", lambda d: d["attempt_id"] == attempt_id)
    await teacher.received.wait_for("presence", lambda d: d["presence"] == "online")

    ack = await student.call("answer", {"question_id": "q1", "value": 1, "seq": 1})
    assert ack == {"ok": True, "seq": 1, "stored": True}
    progress = await teacher.received.wait_for("progress")
    assert progress == {"attempt_id": attempt_id, "answered": 1, "total": 3}

    ack = await student.call(
        "event", {"seq": 2, "kind": "tab_hidden", "occurred_at": now_iso(), "details": {"ms": 1200}}
    )
    assert ack == {"ok": True, "seq": 2, "stored": True}
    violation = await teacher.received.wait_for("violation")
    assert violation["kind"] == "tab_hidden" and violation["severity"] == 3.0 and violation["score"] == 3.0
    # The human text is `explanation` (the kind's own line for a browser signal); `reason` is only why an attempt ended.
    assert violation["explanation"].startswith("The exam tab was hidden") and "reason" not in violation

    assert (await student.call("hand", {"text": "May I have paper?"}))["ok"]
    hand = await teacher.received.wait_for("hand")
    assert hand["text"] == "May I have paper?"

    ack = await teacher.call("control", {"attempt_id": attempt_id, "action": "warn", "text": "Eyes on your screen"})
    assert ack["ok"], ack
    warn = await student.received.wait_for("control")
    assert warn["action"] == "warn" and warn["text"] == "Eyes on your screen"

    assert (await teacher.call("announce", {"text": "10 minutes left"}))["ok"]
    announce = await student.received.wait_for("announce")
    assert announce["text"] == "10 minutes left"

    ack = await student.call("submit")
    assert ack["ok"] and ack["attempt"]["status"] == "submitted"
    await teacher.received.wait_for("submitted", lambda d: d["attempt_id"] == attempt_id)
    after = await student.call("answer", {"question_id": "q1", "value": 0, "seq": 3})
    assert after["ok"] is False and after["error"]["code"] == "attempt_closed"

    roster = await teacher.call("watch", {"room_id": room["id"]})
    [entry] = roster["students"]
    assert entry["presence"] == "submitted"
    assert entry["answered"] == 1 and entry["violations"] == 1 and entry["score"] == 3.0
    assert entry["last_violation_kind"] == "tab_hidden"

    timeline = await live.rest("GET", f"/api/attempts/{attempt_id}/timeline")
    types = [e["type"] for e in timeline["entries"]]
    for expected in ("join", "answer", "violation", "hand", "control", "submit"):
        assert expected in types, (expected, types)
    assert any(e["type"] == "control" and e["action"] == "announce" for e in timeline["entries"])


async def test_rejoin_resumes_same_attempt_with_answers(live: Live) -> None:
    room = await live.room()
    [token] = await live.invites(room["id"], 1)
    student, first = await live.student(token)
    await student.call("answer", {"question_id": "q3", "value": "because", "seq": 5})
    await student.close()
    _, second = await live.student(token)
    assert second["resumed"] is True
    assert second["attempt"]["attempt_id"] == first["attempt"]["attempt_id"]
    assert second["attempt"]["deadline"] == first["attempt"]["deadline"]
    assert second["answers"] == {"q3": "because"}
    assert second["last_seq"] == 5


async def test_last_write_wins_by_seq(live: Live) -> None:
    room = await live.room()
    [token] = await live.invites(room["id"], 1)
    student, _ = await live.student(token)
    assert (await student.call("answer", {"question_id": "q2", "value": [0, 2], "seq": 7}))["ok"]
    # An older write arriving late is acknowledged but does not overwrite.
    assert (await student.call("answer", {"question_id": "q2", "value": [1], "seq": 6}))["ok"]
    await student.close()
    _, again = await live.student(token)
    assert again["answers"]["q2"] == [0, 2]


async def test_invalid_answers_are_refused(live: Live) -> None:
    room = await live.room()
    [token] = await live.invites(room["id"], 1)
    student, _ = await live.student(token)
    for body, field in (
        ({"question_id": "q1", "value": 7, "seq": 1}, "value"),
        ({"question_id": "q2", "value": [0, 0], "seq": 1}, "value"),
        ({"question_id": "nope", "value": 1, "seq": 1}, "question_id"),
        ({"question_id": "q1", "value": 1, "seq": 0}, "seq"),
    ):
        ack = await student.call("answer", body)
        assert ack["ok"] is False and ack["error"]["code"] == "invalid", ack
        assert field in ack["error"]["fields"], ack


async def test_dashboard_opened_mid_exam_gets_recent_violations(live: Live) -> None:
    room = await live.room()
    [token] = await live.invites(room["id"], 1)
    student, joined = await live.student(token)
    for seq, kind in ((1, "copy"), (2, "tab_hidden")):
        assert (await student.call("event", {"seq": seq, "kind": kind, "occurred_at": now_iso()}))["ok"]
    _, roster = await live.teacher(await live.teacher_token([room["id"]]), room["id"])
    recent = roster["recent_violations"]
    assert [v["kind"] for v in recent] == ["copy", "tab_hidden"]  # oldest first, like a live feed
    assert recent[-1]["attempt_id"] == joined["attempt"]["attempt_id"] and recent[-1]["score"] == 5.0
