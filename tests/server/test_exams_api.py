"""Exams with a life over REST and Socket.IO, against a real node and Postgres: grading at
submit (shuffled), grading by hand, versions, key corrections, list/archive/duplicate/delete,
rooms renamed/resized/closed, and the grade signal."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest

from rooms.store.grades import GradeChange
from server.keys import POOL
from server.wire import NODE
from tests.support.live import Live
from tests.support.node import ADMIN, bearer

pytestmark = pytest.mark.timeout(60)

FULL_EXAM: dict[str, Any] = {
    "title": "Full marks",
    "duration_minutes": 30,
    "shuffle_questions": True,
    "shuffle_options": True,
    "questions": [
        {"id": "single", "kind": "single", "text": "2 + 2?", "options": ["3", "4", "5", "6"], "correct": [1]},
        {
            "id": "multi",
            "kind": "multiple",
            "text": "Primes?",
            "options": ["2", "4", "7", "9"],
            "correct": [0, 2],
            "scoring": "partial",
            "points": 2,
        },
        {"id": "num", "kind": "numeric", "text": "1/3?", "answer": 0.33, "tolerance": 0.005},
        {"id": "short", "kind": "short", "text": "Capital of France?", "accepted": ["Paris"]},
        {"id": "essay", "kind": "essay", "text": "Explain primes.", "points": 3},
    ],
}


async def call(live: Live, method: str, path: str, body: Any = None, token: str = ADMIN) -> tuple[int, Any]:
    async with live.http.request(method, live.url + path, json=body, headers=bearer(token)) as resp:
        text = await resp.text()
        return resp.status, json.loads(text) if text else None


def assert_error(data: Any, code: str | None = None) -> None:
    assert set(data) == {"error"} and {"code", "message"} <= set(data["error"]), data
    if code is not None:
        assert data["error"]["code"] == code, data


async def room_of(live: Live, exam: dict[str, Any] = FULL_EXAM, token: str = ADMIN) -> dict[str, Any]:
    created = await live.rest("POST", "/api/exams", exam, token)
    room = await live.rest("POST", f"/api/exams/{created['id']}/rooms", {"name": "Hall", "seats": 5}, token)
    room["exam"] = created
    return dict(room)


def shown(view: dict[str, Any], qid: str) -> dict[str, Any]:
    return next(q for q in view["exam"]["questions"] if q["id"] == qid)


async def answer_right(student: Any, view: dict[str, Any]) -> None:
    """Answer every auto-graded question right, by option *text* as the page shows it."""
    single = shown(view, "single")["options"].index("4")
    multi = [shown(view, "multi")["options"].index(t) for t in ("2", "7")]
    answers = [("single", single), ("multi", multi), ("num", " 0,33 "), ("short", "  paris "), ("essay", "Because.")]
    for seq, (qid, value) in enumerate(answers, 1):
        ack = await student.call("answer", {"question_id": qid, "value": value, "seq": seq})
        assert ack["ok"], ack


async def test_submit_grades_a_shuffled_attempt_and_an_essay_makes_it_final(live: Live) -> None:
    node = live.app[NODE]  # type: ignore[attr-defined]
    changes: list[GradeChange] = []

    async def heard(change: GradeChange) -> None:
        changes.append(change)

    node.grade_changed.connect(heard)
    room = await room_of(live)
    (token,) = await live.invites(room["id"], 1)
    student, view = await live.student(token)
    attempt_id = view["attempt"]["attempt_id"]
    for q in view["exam"]["questions"]:
        assert not {"correct", "answer", "accepted", "tolerance", "scoring", "feedback"} & set(q), q
    # The stored answer holds the original option indexes, whatever the student saw.
    await answer_right(student, view)
    stored = await live.app[POOL].fetchval(  # type: ignore[attr-defined]
        "SELECT value FROM answers WHERE attempt_id = $1 AND question_id = 'multi'", uuid.UUID(attempt_id)
    )
    assert json.loads(stored) == [0, 2]
    # On resume the page gets its answers back in displayed indexes.
    again = await student.call("join")
    assert again["answers"]["single"] == shown(view, "single")["options"].index("4")
    assert [q["id"] for q in again["exam"]["questions"]] == [q["id"] for q in view["exam"]["questions"]]

    ack = await student.call("submit")
    assert ack["ok"], ack
    status, sheet = await call(live, "GET", f"/api/attempts/{attempt_id}/grading")
    assert status == 200, sheet
    assert sheet["attempt"]["grade"] == 5.0 and sheet["attempt"]["grade_max"] == 8.0
    assert sheet["attempt"]["grade_final"] is False
    by_id = {q["id"]: q for q in sheet["questions"]}
    assert by_id["multi"]["answer_text"] == ["2", "7"]  # the options' text, not their indexes
    assert by_id["single"]["answer_text"] == "4"
    assert by_id["essay"]["grade"] is None and by_id["essay"]["answer_text"] == "Because."
    assert changes and changes[-1] == GradeChange(attempt_id, 5.0, 8.0, False)

    status, graded = await call(
        live, "PUT", f"/api/attempts/{attempt_id}/grades/essay", {"points": 2.5, "comment": "No example."}
    )
    assert status == 200, graded
    assert (graded["grade"], graded["grade_max"], graded["final"]) == (7.5, 8.0, True)
    assert changes[-1] == GradeChange(attempt_id, 7.5, 8.0, True)
    audit = await live.app[POOL].fetch(  # type: ignore[attr-defined]
        "SELECT action, details FROM audit_log WHERE target_id = $1 AND action = 'grade.set'", attempt_id
    )
    assert len(audit) == 1 and json.loads(audit[0]["details"])["comment"] == "No example."

    # The question across the room: one row per submitted attempt, with the student's answer.
    status, by_question = await call(live, "GET", f"/api/rooms/{room['id']}/questions/essay/answers")
    assert status == 200, by_question
    assert [a["answer_text"] for a in by_question["answers"]] == ["Because."]
    assert by_question["answers"][0]["grade"]["points"] == 2.5
    node.grade_changed.disconnect(heard)


async def test_manual_grades_refuse_bad_input_running_attempts_and_strangers(live: Live) -> None:
    room = await room_of(live)
    (token,) = await live.invites(room["id"], 1)
    student, view = await live.student(token)
    attempt_id = view["attempt"]["attempt_id"]
    status, data = await call(live, "PUT", f"/api/attempts/{attempt_id}/grades/essay", {"points": 1})
    assert status == 409 and data["error"]["code"] == "attempt_running"
    await student.call("submit")
    for body, want in (({"points": 4}, 400), ({"points": -1}, 400), ({"points": "x"}, 400), ({}, 400)):
        status, data = await call(live, "PUT", f"/api/attempts/{attempt_id}/grades/essay", body)
        assert status == want, (body, data)
        assert_error(data, "invalid")
    status, data = await call(live, "PUT", f"/api/attempts/{attempt_id}/grades/nope", {"points": 0})
    assert status == 404
    assert_error(data)
    status, data = await call(live, "PUT", f"/api/attempts/{uuid.uuid4()}/grades/essay", {"points": 0})
    assert status == 404
    stranger = await live.teacher_token([], sub="t-stranger")
    for method, path in (
        ("GET", f"/api/attempts/{attempt_id}/grading"),
        ("GET", f"/api/rooms/{room['id']}/questions/essay/answers"),
    ):
        status, data = await call(live, method, path, token=stranger)
        assert status == 403, (path, data)
        assert_error(data)
    status, data = await call(live, "PUT", f"/api/attempts/{attempt_id}/grades/essay", {"points": 1}, stranger)
    assert status == 403
    # The room's proctor (a token naming the room) may grade: roles are nested.
    proctor = await live.teacher_token([room["id"]], sub="t-proctor")
    status, data = await call(live, "PUT", f"/api/attempts/{attempt_id}/grades/essay", {"points": 3}, proctor)
    assert status == 200 and data["final"] is True


async def test_an_edit_after_the_first_attempt_makes_a_version_and_attempts_keep_theirs(live: Live) -> None:
    room = await room_of(live)
    v1 = room["exam"]
    edited = {**FULL_EXAM, "title": "Full marks (edited)"}
    status, data = await call(live, "PUT", f"/api/exams/{v1['id']}", edited)
    assert status == 200 and data["outcome"] == "in_place" and data["exam"]["id"] == v1["id"], data
    first, second = await live.invites(room["id"], 2)
    s1, _ = await live.student(first)

    renamed = {**FULL_EXAM, "title": "Full marks v2", "questions": FULL_EXAM["questions"][:4]}
    status, data = await call(live, "PUT", f"/api/exams/{v1['id']}", renamed)
    assert status == 200 and data["outcome"] == "version", data
    v2 = data["exam"]
    assert v2["id"] != v1["id"] and v2["version"] == 2 and v2["family_id"] == v1["id"] and v2["parent_id"] == v1["id"]
    # The room moved on; the running attempt keeps version 1 and its five questions.
    status, rooms = await call(live, "GET", f"/api/exams/{v1['id']}/rooms")
    assert status == 200 and [r["exam_id"] for r in rooms["rooms"]] == [v2["id"]]
    resumed = await s1.call("join")
    assert len(resumed["exam"]["questions"]) == 5
    # A new student, with an invite minted for version 1, starts on version 2.
    _, view2 = await live.student(second)
    assert len(view2["exam"]["questions"]) == 4 and view2["exam"]["title"] == "Full marks v2"
    status, versions = await call(live, "GET", f"/api/exams/{v2['id']}/versions")
    assert [(v["version"], v["attempts"]) for v in versions["versions"]] == [(1, 1), (2, 1)]
    # Version 1 is no longer edited, except for its keys.
    status, data = await call(live, "PATCH", f"/api/exams/{v1['id']}", {"title": "fork"})
    assert status == 409 and data["error"]["code"] == "not_latest"
    status, data = await call(live, "PATCH", f"/api/exams/{v2['id']}", {"duration_minutes": 0})
    assert status == 400
    assert_error(data, "invalid")
    status, data = await call(live, "PATCH", f"/api/exams/{v2['id']}", {"nope": 1})
    assert status == 400
    # The list shows the family once, at its newest version.
    status, page = await call(live, "GET", "/api/exams?q=full+marks+v2&limit=100")
    assert [e["id"] for e in page["exams"] if e["family_id"] == v1["id"]] == [v2["id"]]


async def test_a_key_correction_regrades_the_version_and_is_audited(live: Live) -> None:
    room = await room_of(live)
    exam = room["exam"]
    (token,) = await live.invites(room["id"], 1)
    student, view = await live.student(token)
    attempt_id = view["attempt"]["attempt_id"]
    # "3" is what the student picks, wrongly for the first key.
    pick = shown(view, "single")["options"].index("3")
    assert (await student.call("answer", {"question_id": "single", "value": pick, "seq": 1}))["ok"]
    await student.call("submit")
    _, sheet = await call(live, "GET", f"/api/attempts/{attempt_id}/grading")
    assert sheet["attempt"]["grade"] == 0.0
    corrected = copy.deepcopy(FULL_EXAM)
    corrected["questions"][0]["correct"] = [0]
    status, data = await call(live, "PUT", f"/api/exams/{exam['id']}", corrected)
    assert status == 200 and data["outcome"] == "keys" and data["exam"]["id"] == exam["id"], data
    assert data["regraded"] == [
        {
            "attempt_id": attempt_id,
            "before": {"grade": 0.0, "grade_max": 8.0, "final": True},
            "after": {"grade": 1.0, "grade_max": 8.0, "final": True},
        }
    ]
    audit = await live.app[POOL].fetchval(  # type: ignore[attr-defined]
        "SELECT details FROM audit_log WHERE target_id = $1 AND action = 'grade.regrade'", attempt_id
    )
    assert json.loads(audit)["after"]["grade"] == 1.0


async def test_list_search_paginate_archive_duplicate_delete(live: Live) -> None:
    owner = await live.teacher_token([], sub=f"t-{uuid.uuid4().hex[:6]}")
    tag = uuid.uuid4().hex[:8]
    ids = []
    for i in range(3):
        created = await live.rest("POST", "/api/exams", {**FULL_EXAM, "title": f"Quiz {tag} {i}"}, owner)
        ids.append(created["id"])
    other = await live.teacher_token([], sub="t-other")
    status, page = await call(live, "GET", f"/api/exams?q={tag}", token=other)
    assert status == 200 and page["exams"] == [] and page["total"] == 0  # not mine
    status, page = await call(live, "GET", f"/api/exams?q={tag}&limit=2", token=owner)
    assert page["total"] == 3 and len(page["exams"]) == 2
    status, rest = await call(live, "GET", f"/api/exams?q={tag}&limit=2&offset=2", token=owner)
    assert len(rest["exams"]) == 1 and rest["total"] == 3
    status, page = await call(live, "GET", f"/api/exams?q={tag}%25", token=owner)  # % is a letter here
    assert page["total"] == 0
    for query in ("limit=0", "limit=101", "offset=-1", "archived=maybe", "zzz=1"):
        status, data = await call(live, "GET", f"/api/exams?{query}", token=owner)
        assert status == 400, query
        assert_error(data, "invalid")

    status, data = await call(live, "POST", f"/api/exams/{ids[0]}/archive", {"archived": True}, owner)
    assert status == 200 and data["archived"] is True
    _, page = await call(live, "GET", f"/api/exams?q={tag}", token=owner)
    assert ids[0] not in [e["id"] for e in page["exams"]]
    _, page = await call(live, "GET", f"/api/exams?q={tag}&archived=true", token=owner)
    assert ids[0] in [e["id"] for e in page["exams"]]
    status, data = await call(live, "POST", f"/api/exams/{ids[0]}/rooms", {"name": "R", "seats": 2}, owner)
    assert status == 409 and data["error"]["code"] == "archived"

    status, copy_ = await call(live, "POST", f"/api/exams/{ids[1]}/duplicate", {}, owner)
    assert status == 201 and copy_["title"] == f"Copy of Quiz {tag} 1" and copy_["version"] == 1
    assert copy_["id"] != ids[1] and len(copy_["questions"]) == 5 and copy_["shuffle_options"] is True
    status, _ = await call(live, "POST", f"/api/exams/{ids[1]}/duplicate", {}, other)
    assert status == 403

    room = await live.rest("POST", f"/api/exams/{ids[2]}/rooms", {"name": "R", "seats": 2}, owner)
    (token,) = await live.invites(room["id"], 1)
    student, _ = await live.student(token)
    status, data = await call(live, "DELETE", f"/api/exams/{ids[2]}", token=owner)
    assert status == 409 and data["error"]["code"] == "attempts_running"
    assert data["error"]["fields"] == {"count": "1"}  # the pages say how many (js/i18n.js errorText)
    status, _ = await call(live, "DELETE", f"/api/exams/{ids[2]}", token=other)
    assert status == 403
    await student.call("submit")
    status, data = await call(live, "DELETE", f"/api/exams/{ids[2]}", token=owner)
    assert status == 200 and data["deleted"] == {"versions": 1, "rooms": 1, "attempts": 1}
    status, data = await call(live, "GET", f"/api/exams/{ids[2]}", token=owner)
    assert status == 404
    assert_error(data)


async def test_rooms_are_renamed_resized_and_closed(live: Live) -> None:
    room = await room_of(live)
    path = f"/api/rooms/{room['id']}"
    status, data = await call(live, "PATCH", path, {"name": "Hall B", "seats": 3})
    assert status == 200 and (data["name"], data["seats"], data["closed"]) == ("Hall B", 3, False)
    first, second, third = await live.invites(room["id"], 3)
    s1, _ = await live.student(first)
    await live.student(second)
    status, data = await call(live, "PATCH", path, {"seats": 1})
    assert status == 400 and data["error"]["fields"]["seats"] == "at least 2"
    for body in ({}, {"seats": 0}, {"name": ""}, {"closed": "yes"}):
        status, data = await call(live, "PATCH", path, body)
        assert status == 400, body
        assert_error(data, "invalid")
    stranger = await live.teacher_token([room["id"]], sub="t-proctor-only")  # a proctor, not an owner
    status, data = await call(live, "PATCH", path, {"name": "mine"}, stranger)
    assert status == 403
    assert_error(data)
    status, data = await call(live, "PATCH", path, {"closed": True})
    assert status == 200 and data["closed"] is True
    # A started attempt resumes; a new student is refused with a clear reason.
    assert (await s1.call("join"))["ok"]
    client = await live.connect("/student", third)
    ack = await client.call("join")
    assert not ack["ok"] and ack["error"]["code"] == "room_closed", ack
    status, mine = await call(live, "GET", f"/api/exams/{room['exam']['id']}/rooms")
    assert mine["rooms"][0]["attempts"] == 2 and mine["rooms"][0]["name"] == "Hall B"


async def test_the_sweeper_grades_an_attempt_a_crash_left_ungraded(live: Live) -> None:
    room = await room_of(live)
    (token,) = await live.invites(room["id"], 1)
    student, view = await live.student(token)
    attempt_id = view["attempt"]["attempt_id"]
    await answer_right(student, view)
    await student.call("submit")
    pool = live.app[POOL]  # type: ignore[attr-defined]
    # As if the node died between the close's commit and the grade.
    await pool.execute("DELETE FROM answer_grades WHERE attempt_id = $1", uuid.UUID(attempt_id))
    await pool.execute("UPDATE attempts SET grade = NULL, grade_final = false WHERE id = $1", uuid.UUID(attempt_id))
    await live.app[NODE].attempts.expire_due()  # type: ignore[attr-defined]  # one sweep
    row = await pool.fetchrow("SELECT grade, grade_max, grade_final FROM attempts WHERE id = $1", uuid.UUID(attempt_id))
    assert (row["grade"], row["grade_max"], row["grade_final"]) == (5.0, 8.0, False)
    # An answer the durable writer stored after the grade (it was in its batch at the close).
    await pool.execute(
        "UPDATE answers SET value = '\"Ville Lumière\"', saved_at = now()"
        " WHERE attempt_id = $1 AND question_id = 'short'",
        uuid.UUID(attempt_id),
    )
    await live.app[NODE].attempts.expire_due()  # type: ignore[attr-defined]
    assert await pool.fetchval("SELECT grade FROM attempts WHERE id = $1", uuid.UUID(attempt_id)) == 4.0
    # The student's export carries the grades stored about them.
    student_id = await pool.fetchval("SELECT student_id FROM attempts WHERE id = $1", uuid.UUID(attempt_id))
    export = await live.rest("GET", f"/api/students/{student_id}/export")
    mine = [g for g in export["grades"] if g["attempt_id"] == attempt_id]
    assert sorted(g["question_id"] for g in mine) == ["multi", "num", "short", "single"]


async def test_pools_draw_per_attempt_and_unpooled_questions_always_come(live: Live) -> None:
    questions = [
        {"id": f"p{i}", "kind": "single", "text": f"P{i}", "options": ["a", "b"], "correct": [0]} for i in range(6)
    ] + [{"id": "always", "kind": "short", "text": "Name?", "accepted": ["x"]}]
    exam = {
        "title": "Pooled",
        "duration_minutes": 10,
        "questions": questions,
        "pools": [{"id": "pool", "questions": [f"p{i}" for i in range(6)], "draw": 2}],
    }
    room = await room_of(live, exam)
    tokens = await live.invites(room["id"], 3)
    # The bank stays on the server: a student's read of the exam says how many, not which.
    status, seen = await call(live, "GET", f"/api/exams/{room['exam']['id']}", token=tokens[0])
    assert status == 200 and seen["questions"] == [] and seen["question_count"] == 3
    assert "pools" not in seen
    for token in tokens:
        student, view = await live.student(token)
        ids = [q["id"] for q in view["exam"]["questions"]]
        assert len(ids) == 3 and "always" in ids
        undrawn = next(f"p{i}" for i in range(6) if f"p{i}" not in ids)
        ack = await student.call("answer", {"question_id": undrawn, "value": 0, "seq": 1})
        assert not ack["ok"] and ack["error"]["code"] == "invalid"
        await student.call("submit")
        sheet = await live.rest("GET", f"/api/attempts/{view['attempt']['attempt_id']}/grading")
        assert sheet["attempt"]["grade_max"] == 3.0 and sheet["attempt"]["grade_final"] is True


async def test_a_terminated_attempt_is_graded_on_what_was_answered(live: Live) -> None:
    room = await room_of(live)
    (token,) = await live.invites(room["id"], 1)
    student, view = await live.student(token)
    attempt_id = view["attempt"]["attempt_id"]
    pick = shown(view, "single")["options"].index("4")
    assert (await student.call("answer", {"question_id": "single", "value": pick, "seq": 1}))["ok"]
    teacher, _ = await live.teacher(ADMIN, room["id"])
    ack = await teacher.call("control", {"attempt_id": attempt_id, "action": "terminate"})
    assert ack["ok"], ack
    grade = await live.app[POOL].fetchrow(  # type: ignore[attr-defined]
        "SELECT grade, grade_max, grade_final FROM attempts WHERE id = $1", uuid.UUID(attempt_id)
    )
    assert (grade["grade"], grade["grade_max"], grade["grade_final"]) == (1.0, 8.0, True)
