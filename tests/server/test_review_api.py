"""Review and results over REST against a real node and Postgres (server/http/review_api.py):
flag decisions with a note (who and when stored, audited), verdicts and their rules, who may
decide, the queue's order and pages, the CSV (verdicts, never a raw score), the timeline's
explanations and option texts, and per-question statistics on a data set computed by hand.

Attempts, flags and grades are written with SQL: grading is another module's, and these tests
check what the review side reads from the columns it leaves."""

from __future__ import annotations

import csv
import io
import json
import math
import uuid
from typing import Any

import pytest

from server.keys import AUDIT, POOL
from tests.support.live import Live
from tests.support.members import member
from tests.support.node import bearer

pytestmark = pytest.mark.timeout(60)

EXAM = {
    "title": "Review exam",
    "duration_minutes": 30,
    "questions": [
        {"id": "q1", "kind": "single", "text": "2+2?", "options": ["3", "4"], "correct": [1], "points": 1},
        {"id": "q2", "kind": "multiple", "text": "Primes?", "options": ["2", "4", "7"], "correct": [0, 2], "points": 2},
        {"id": "q3", "kind": "essay", "text": "Explain a prime.", "points": 4},
    ],
}


async def call(live: Live, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    async with live.http.request(method, live.url + path, json=body, headers=bearer(token)) as resp:
        text = await resp.text()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text


async def owned_rooms(live: Live, n: int = 1) -> tuple[list[dict[str, Any]], str, str]:
    """`n` rooms of one exam a fresh teacher created: (rooms, that teacher's sub, token)."""
    sub = f"t-{uuid.uuid4().hex[:8]}"
    token = await live.teacher_token([], sub=sub)
    exam = await live.rest("POST", "/api/exams", EXAM, token=token)
    rooms = [
        await live.rest("POST", f"/api/exams/{exam['id']}/rooms", {"name": f"Room {i}", "seats": 10}, token=token)
        for i in range(n)
    ]
    return rooms, sub, token


async def attempt(
    live: Live,
    room: dict[str, Any],
    student: str,
    *,
    status: str = "submitted",
    took: float = 300.0,
    verdict: str | None = None,
) -> str:
    pool = live.app[POOL]  # type: ignore[attr-defined]
    started = "now() - interval '20 minutes'"
    value = await pool.fetchval(
        "INSERT INTO attempts (id, exam_id, room_id, student_id, student_name, status, started_at, deadline,"
        f" submitted_at, verdict) VALUES (gen_random_uuid(), $1::uuid, $2::uuid, $3, $4, $5, {started},"
        f" {started} + interval '30 minutes', CASE WHEN $5 = 'active' THEN NULL"
        f" ELSE {started} + make_interval(secs => $6) END, $7) RETURNING id::text",
        room["exam_id"],
        room["id"],
        student,
        f"Student {student}",
        status,
        took,
        verdict,
    )
    return str(value)


async def flag(
    live: Live,
    attempt_id: str,
    seq: int,
    kind: str,
    severity: float,
    *,
    minute: float = 1.0,
    source: str = "client",
    details: dict[str, Any] | None = None,
    review: str | None = None,
) -> int:
    pool = live.app[POOL]  # type: ignore[attr-defined]
    value = await pool.fetchval(
        "INSERT INTO violations (attempt_id, seq, source, kind, severity, occurred_at, details, review)"
        " SELECT $1::uuid, $2, $3, $4, $5, a.started_at + make_interval(secs => $6), $7::jsonb, $8"
        " FROM attempts a WHERE a.id = $1::uuid RETURNING id",
        attempt_id,
        seq,
        source,
        kind,
        severity,
        minute * 60,
        json.dumps(details or {}),
        review,
    )
    return int(value)


def is_error(data: Any, code: str | None = None) -> bool:
    return (
        isinstance(data, dict)
        and set(data) == {"error"}
        and isinstance(data["error"].get("message"), str)
        and (code is None or data["error"]["code"] == code)
    )


# ---------------------------------------------------------------------------------- decisions


async def test_a_decision_stores_its_note_who_and_when_and_is_audited(live: Live) -> None:
    [room], sub, token = await owned_rooms(live)
    a = await attempt(live, room, "s-dec")
    first = await flag(live, a, 1, "tab_hidden", 3.0)
    second = await flag(live, a, 2, "paste", 3.0, minute=2)

    status, confirmed = await call(
        live, "POST", f"/api/violations/{first}/review", token, {"decision": "confirmed", "note": "left for 2 min"}
    )
    assert status == 200, confirmed
    assert confirmed["review"] == "confirmed" and confirmed["review_note"] == "left for 2 min"
    assert confirmed["reviewed_by"] == sub and confirmed["reviewed_at"] and confirmed["previous"] is None
    status, dismissed = await call(
        live, "POST", f"/api/violations/{second}/review", token, {"decision": "dismissed", "note": "own notes"}
    )
    assert status == 200 and dismissed["review"] == "dismissed"
    # Changing one's mind is a new decision; the previous one is in the answer and the audit.
    status, again = await call(live, "POST", f"/api/violations/{second}/review", token, {"decision": "confirmed"})
    assert status == 200 and again["previous"] == "dismissed" and again["review_note"] == ""

    timeline = await live.rest("GET", f"/api/attempts/{a}/timeline", token=token)
    entries = {e["id"]: e for e in timeline["entries"] if e["type"] == "violation"}
    assert entries[first]["review"] == "confirmed" and entries[first]["review_note"] == "left for 2 min"
    assert entries[first]["reviewed_by"] == sub and entries[first]["reviewed_at"]
    assert timeline["attempt"]["flags"] == {"unreviewed": 0, "confirmed": 2, "dismissed": 0}

    audit = await live.app[AUDIT].entries("attempt", a)  # type: ignore[attr-defined]
    decisions = [
        (e["action"], e["actor_id"], e["details"]["violation_id"], e["details"]["note"], e["details"]["previous"])
        for e in audit
        if e["action"].startswith("violation.")
    ]
    assert decisions == [
        ("violation.confirmed", sub, first, "left for 2 min", None),
        ("violation.dismissed", sub, second, "own notes", None),
        ("violation.confirmed", sub, second, "", "dismissed"),
    ]


async def test_a_verdict_needs_an_ended_attempt_decided_flags_and_a_reason(live: Live) -> None:
    [room], sub, token = await owned_rooms(live)
    running = await attempt(live, room, "s-run", status="active")
    status, data = await call(live, "POST", f"/api/attempts/{running}/verdict", token, {"verdict": "cleared"})
    assert status == 409 and is_error(data, "attempt_running"), data

    a = await attempt(live, room, "s-verdict")
    f1 = await flag(live, a, 1, "tab_hidden", 3.0)
    f2 = await flag(live, a, 2, "copy", 2.0)
    status, data = await call(live, "POST", f"/api/attempts/{a}/verdict", token, {"verdict": "cleared"})
    assert status == 409 and is_error(data, "unreviewed_flags") and "2 flags" in data["error"]["message"]
    await live.rest("POST", f"/api/violations/{f1}/review", {"decision": "dismissed"}, token=token)
    status, data = await call(live, "POST", f"/api/attempts/{a}/verdict", token, {"verdict": "cleared"})
    assert status == 409 and "1 flag still" in data["error"]["message"]  # counts as people write them
    await live.rest("POST", f"/api/violations/{f2}/review", {"decision": "dismissed"}, token=token)

    # Misconduct rests on a confirmed flag; follow-up and misconduct say why.
    status, data = await call(
        live, "POST", f"/api/attempts/{a}/verdict", token, {"verdict": "misconduct", "note": "copied"}
    )
    assert status == 409 and is_error(data, "no_confirmed_flag")
    status, data = await call(live, "POST", f"/api/attempts/{a}/verdict", token, {"verdict": "follow_up", "note": " "})
    assert status == 400 and is_error(data, "invalid") and "note" in data["error"]["fields"]

    status, cleared = await call(live, "POST", f"/api/attempts/{a}/verdict", token, {"verdict": "cleared"})
    assert status == 200, cleared
    assert cleared["verdict"] == "cleared" and cleared["verdict_label"] == "Cleared" and cleared["verdict_by"] == sub
    await live.rest("POST", f"/api/violations/{f2}/review", {"decision": "confirmed", "note": "pasted"}, token=token)
    status, changed = await call(
        live, "POST", f"/api/attempts/{a}/verdict", token, {"verdict": "misconduct", "note": "answer pasted"}
    )
    assert status == 200 and changed["previous"] == "cleared" and changed["flags"]["confirmed"] == 1

    timeline = await live.rest("GET", f"/api/attempts/{a}/timeline", token=token)
    assert timeline["attempt"]["verdict"] == "misconduct" and timeline["attempt"]["verdict_note"] == "answer pasted"
    audit = await live.app[AUDIT].entries("attempt", a)  # type: ignore[attr-defined]
    verdicts = [(e["details"]["verdict"], e["details"]["previous"]) for e in audit if e["action"] == "attempt.verdict"]
    assert verdicts == [("cleared", None), ("misconduct", "cleared")]


async def test_every_room_role_decides_and_nobody_else(live: Live) -> None:
    [mine, other], _, owner = await owned_rooms(live, 2)
    _, reviewer = await member(live, mine["id"], "reviewer", owner, tag="rev")
    a = await attempt(live, mine, "s-auth")
    b = await attempt(live, other, "s-other")
    fa = await flag(live, a, 1, "copy", 2.0)
    fb = await flag(live, b, 1, "copy", 2.0)
    [student] = await live.invites(mine["id"], 1, prefix="s-auth-student")
    stranger = await live.teacher_token([], sub=f"t-{uuid.uuid4().hex[:8]}")

    status, _ = await call(live, "POST", f"/api/violations/{fa}/review", reviewer, {"decision": "dismissed"})
    assert status == 200
    status, _ = await call(live, "POST", f"/api/attempts/{a}/verdict", reviewer, {"verdict": "cleared"})
    assert status == 200
    for token, violation, attempt_id in ((reviewer, fb, b), (stranger, fa, a), (student, fa, a)):
        status, data = await call(live, "POST", f"/api/violations/{violation}/review", token, {"decision": "confirmed"})
        assert status == 403 and is_error(data), data
        status, data = await call(live, "POST", f"/api/attempts/{attempt_id}/verdict", token, {"verdict": "cleared"})
        assert status == 403 and is_error(data), data
    for path in (f"/api/rooms/{other['id']}/results", f"/api/rooms/{other['id']}/statistics"):
        status, data = await call(live, "GET", path, reviewer)
        assert status == 403 and is_error(data), (path, data)
    status, data = await call(live, "GET", "/api/review/queue", student)
    assert status == 403 and is_error(data)
    # The reviewer's queue holds their room only; naming another room is refused, not emptied.
    status, page = await call(live, "GET", "/api/review/queue", reviewer)
    assert status == 200 and {r["room_id"] for r in page["attempts"]} == {mine["id"]}
    status, data = await call(live, "GET", f"/api/review/queue?room={other['id']}", reviewer)
    assert status == 403 and is_error(data)
    status, page = await call(live, "GET", "/api/review/queue", stranger)
    assert status == 200 and page["attempts"] == [] and page["total"] == 0


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("POST", "/api/violations/{v}/review", {"decision": "maybe"}, 400, "decision"),
        ("POST", "/api/violations/{v}/review", {"decision": "confirmed", "extra": 1}, 400, "extra"),
        ("POST", "/api/violations/{v}/review", {"decision": "confirmed", "note": "x" * 1001}, 400, "note"),
        ("POST", "/api/violations/{v}/review", ["confirmed"], 400, "body"),
        ("POST", "/api/violations/abc/review", {"decision": "confirmed"}, 404, None),
        ("POST", "/api/violations/99999999999/review", {"decision": "confirmed"}, 404, None),
        ("POST", "/api/attempts/{a}/verdict", {"verdict": "guilty"}, 400, "verdict"),
        ("POST", "/api/attempts/{a}/verdict", {"verdict": "cleared", "note": 5}, 400, "note"),
        ("POST", "/api/attempts/not-a-uuid/verdict", {"verdict": "cleared"}, 404, None),
        ("POST", f"/api/attempts/{uuid.uuid4()}/verdict", {"verdict": "cleared"}, 404, None),
        ("GET", "/api/review/queue?page=0", None, 400, "page"),
        ("GET", "/api/review/queue?per_page=1000", None, 400, "per_page"),
        ("GET", "/api/review/queue?room=nope", None, 400, "room"),
        ("GET", "/api/review/queue?unreviewed=perhaps", None, 400, "unreviewed"),
        ("GET", "/api/review/queue?sort=score", None, 400, "sort"),
        ("GET", "/api/review/queue?page=1&page=2", None, 400, "page"),
        ("GET", f"/api/review/queue?room={uuid.uuid4()}", None, 404, None),
        ("GET", "/api/rooms/nope/results", None, 404, None),
        ("GET", f"/api/rooms/{uuid.uuid4()}/statistics", None, 404, None),
    ],
)
async def test_bad_input_gets_the_error_shape(
    live: Live, method: str, path: str, body: Any, status: int, field: str | None
) -> None:
    [room], _, token = await owned_rooms(live)
    a = await attempt(live, room, "s-bad")
    v = await flag(live, a, 1, "copy", 2.0)
    got, data = await call(live, method, path.format(v=v, a=a), token, body)
    assert got == status and is_error(data), data
    if field is not None:
        assert field in data["error"]["fields"], data


# -------------------------------------------------------------------------------------- queue


async def test_the_queue_puts_open_and_suspicious_attempts_first_and_pages(live: Live) -> None:
    [r1, r2], _, token = await owned_rooms(live, 2)
    a1 = await attempt(live, r1, "s-a1")  # suspicion 8, 2 undecided
    await flag(live, a1, 1, "tab_hidden", 3.0)
    await flag(live, a1, 2, "devtools", 5.0)
    a2 = await attempt(live, r1, "s-a2")  # suspicion 5 (the dismissed flag weighs nothing), 1 undecided
    await flag(live, a2, 1, "devtools", 5.0)
    await flag(live, a2, 2, "tab_hidden", 3.0, review="dismissed")
    a3 = await attempt(live, r2, "s-a3")  # suspicion 5, 2 undecided: before a2
    await flag(live, a3, 1, "copy", 2.0)
    await flag(live, a3, 2, "window_blur", 1.0)
    await flag(live, a3, 3, "copy", 2.0, review="confirmed")
    a4 = await attempt(live, r2, "s-a4", verdict="misconduct")  # the heaviest, but closed: last
    await flag(live, a4, 1, "screen_extended", 10.0, review="confirmed")
    await attempt(live, r1, "s-clean")  # no flags: nothing to review

    page = await live.rest("GET", "/api/review/queue", token=token)
    assert [r["attempt_id"] for r in page["attempts"]] == [a1, a3, a2, a4]
    assert [r["suspicion_score"] for r in page["attempts"]] == [8.0, 5.0, 5.0, 10.0]
    assert page["attempts"][2]["flags"] == {"total": 2, "unreviewed": 1, "confirmed": 0, "dismissed": 1}
    assert page["attempts"][3]["verdict_label"] == "Misconduct confirmed"
    assert (page["total"], page["pages"], page["page"]) == (4, 1, 1)

    undecided = await live.rest("GET", "/api/review/queue?unreviewed=true", token=token)
    assert [r["attempt_id"] for r in undecided["attempts"]] == [a1, a3, a2]
    in_r2 = await live.rest("GET", f"/api/review/queue?room={r2['id']}", token=token)
    assert [r["attempt_id"] for r in in_r2["attempts"]] == [a3, a4]
    first = await live.rest("GET", "/api/review/queue?per_page=2", token=token)
    second = await live.rest("GET", "/api/review/queue?per_page=2&page=2", token=token)
    past = await live.rest("GET", "/api/review/queue?per_page=2&page=3", token=token)
    assert [r["attempt_id"] for r in first["attempts"] + second["attempts"]] == [a1, a3, a2, a4]
    assert (first["pages"], second["total"], past["attempts"], past["total"]) == (2, 4, [], 4)


# -------------------------------------------------------------------------- results and CSV


async def test_results_and_csv_carry_the_verdict_and_decided_flags_never_the_raw_score(live: Live) -> None:
    [room], sub, token = await owned_rooms(live)
    a = await attempt(live, room, "s-csv", took=754.5)
    await flag(live, a, 1, "devtools", 5.0, review="confirmed")
    await flag(live, a, 2, "copy", 2.0, review="dismissed")
    await flag(live, a, 3, "paste", 3.0)
    b = await attempt(live, room, "s-csv-b", status="active")
    pool = live.app[POOL]  # type: ignore[attr-defined]
    await pool.execute("UPDATE attempts SET grade = 5.5, grade_max = 7, grade_final = true WHERE id = $1::uuid", a)
    await pool.execute(
        "UPDATE attempts SET student_name = '=HYPERLINK(\"x\")', verdict = 'follow_up', verdict_note = '@sum',"
        " verdict_by = $2, verdict_at = now() WHERE id = $1::uuid",
        a,
        sub,
    )

    table = await live.rest("GET", f"/api/rooms/{room['id']}/results", token=token)
    rows = {r["id"]: r for r in table["attempts"]}
    assert rows[a]["grade"] == 5.5 and rows[a]["grade_max"] == 7 and rows[a]["grade_final"] is True
    assert rows[a]["time_taken_seconds"] == 754.5
    assert (rows[a]["confirmed_flags"], rows[a]["dismissed_flags"], rows[a]["unreviewed_flags"]) == (1, 1, 1)
    assert rows[a]["verdict"] == "follow_up" and rows[a]["verdict_label"] == "Follow-up needed"
    assert rows[b]["grade"] is None and rows[b]["time_taken_seconds"] is None and rows[b]["verdict"] is None
    assert not [k for r in rows.values() for k in r if "score" in k or "weight" in k]

    async with live.http.get(f"{live.url}/api/rooms/{room['id']}/report.csv", headers=bearer(token)) as resp:
        assert resp.status == 200 and resp.content_type == "text/csv"
        text = await resp.text()
    parsed = {r["id"]: r for r in csv.DictReader(io.StringIO(text))}
    header = text.splitlines()[0].split(",")
    assert {"verdict", "verdict_label", "verdict_note", "confirmed_flags", "unreviewed_flags", "grade"} <= set(header)
    assert not [c for c in header if "score" in c or "weight" in c or "severity" in c]
    row = parsed[a]
    assert (row["verdict"], row["verdict_label"], row["confirmed_flags"], row["unreviewed_flags"]) == (
        "follow_up",
        "Follow-up needed",
        "1",
        "1",
    )
    assert row["grade"] == "5.5" and row["grade_final"] == "True"
    assert row["student_name"] == '\'=HYPERLINK("x")' and row["verdict_note"] == "'@sum"  # no formula
    # The room's attempts list names the undecided weight for what it is.
    listed = await live.rest("GET", f"/api/rooms/{room['id']}/attempts", token=token)
    entry = next(x for x in listed["attempts"] if x["id"] == a)
    assert entry["unreviewed_signal_weight"] == 3.0 and "score" not in entry


async def test_the_timeline_explains_each_flag_and_shows_option_texts(live: Live) -> None:
    [room], _, token = await owned_rooms(live)
    a = await attempt(live, room, "s-explain")
    words = "No face seen for 4.0 s (best score 0.00 < 0.50)"
    server = await flag(live, a, 1, "no_face", 3.0, source="server", details={"explanation": words})
    older = await flag(live, a, 2, "no_face", 3.0, source="server", details={"reason": "Older words"})
    client = await flag(live, a, 3, "tab_hidden", 3.0)
    pool = live.app[POOL]  # type: ignore[attr-defined]
    await pool.execute(
        "INSERT INTO answers (attempt_id, question_id, value, seq) VALUES"
        " ($1::uuid, 'q1', '1', 1), ($1::uuid, 'q2', '[0, 2]', 2), ($1::uuid, 'q3', '\"Only 1 and itself\"', 3)",
        a,
    )
    timeline = await live.rest("GET", f"/api/attempts/{a}/timeline", token=token)
    flags = {e["id"]: e for e in timeline["entries"] if e["type"] == "violation"}
    assert flags[server]["explanation"] == words and flags[server]["label"] == "No face"
    assert flags[older]["explanation"] == "Older words"
    assert flags[client]["explanation"].startswith("The exam tab was hidden")
    assert not [e for e in timeline["entries"] if "reason" in e]  # one name: `explanation`
    answers = {e["question_id"]: e for e in timeline["entries"] if e["type"] == "answer"}
    assert answers["q1"]["answer_text"] == "4" and answers["q1"]["value"] == 1
    assert answers["q2"]["answer_text"] == "2; 7"
    assert answers["q3"]["answer_text"] == "Only 1 and itself" and answers["q3"]["question_text"] == "Explain a prime."
    assert timeline["attempt"]["exam_duration_seconds"] == 30 * 60


# ---------------------------------------------------------------------------------- statistics


async def test_question_statistics_match_a_hand_computed_data_set(live: Live) -> None:
    [room], _, token = await owned_rooms(live)
    pool = live.app[POOL]  # type: ignore[attr-defined]
    # points per attempt:      q1 (of 1)  q2 (of 2)  q3 (of 4)
    grades = {"A": (1, 2, 3), "B": (1, 1, 2), "C": (0, 1, 4), "D": (0, 0, 1)}
    answered = {"A": ("q1", "q2", "q3"), "B": ("q1", "q2", "q3"), "C": ("q1", "q2", "q3"), "D": ("q1", "q3")}
    for student, points in grades.items():
        a = await attempt(live, room, f"s-stat-{student}")
        for qid, got, top in zip(("q1", "q2", "q3"), points, (1, 2, 4), strict=True):
            await pool.execute(
                "INSERT INTO answer_grades (attempt_id, question_id, points, max_points, auto)"
                " VALUES ($1::uuid, $2, $3, $4, true)",
                a,
                qid,
                got,
                top,
            )
        for seq, qid in enumerate(answered[student]):
            await pool.execute(
                "INSERT INTO answers (attempt_id, question_id, value, seq) VALUES ($1::uuid, $2, '0', $3)", a, qid, seq
            )
    # A running attempt's grades are no total yet: left out of every figure but "answered".
    running = await attempt(live, room, "s-stat-E", status="active")
    await pool.execute(
        "INSERT INTO answer_grades (attempt_id, question_id, points, max_points, auto)"
        " VALUES ($1::uuid, 'q3', 0, 4, true)",
        running,
    )
    await pool.execute(
        "INSERT INTO answers (attempt_id, question_id, value, seq) VALUES ($1::uuid, 'q3', '\"x\"', 1)", running
    )

    stats = await live.rest("GET", f"/api/rooms/{room['id']}/statistics", token=token)
    by_id = {q["question_id"]: q for q in stats["questions"]}
    assert list(by_id) == ["q1", "q2", "q3"] and stats["attempts"] == 5 and stats["ended"] == 4

    # Worked by hand. Difficulty = mean / max.
    #   q1: (1+1+0+0)/4 = 0.5 of 1 -> 0.5; q2: (2+1+1+0)/4 = 1.0 of 2 -> 0.5; q3: (3+2+4+1)/4 = 2.5 of 4 -> 0.625
    # Discrimination = Pearson r of the item's points x with the rest of the attempt's points y.
    #   q1: x = 1,1,0,0; y = q2+q3 = 5,3,5,1; x-x̄ = .5,.5,-.5,-.5; y-ȳ = 1.5,-.5,1.5,-2.5
    #       Σ(x-x̄)(y-ȳ) = .75-.25-.75+1.25 = 1; Σ(x-x̄)² = 1; Σ(y-ȳ)² = 2.25+.25+2.25+6.25 = 11 -> 1/√11
    #   q2: x = 2,1,1,0; y = q1+q3 = 4,3,4,1; x-x̄ = 1,0,0,-1; y-ȳ = 1,0,1,-2 -> 3/√(2·6) = 3/√12
    #   q3: x = 3,2,4,1; y = q1+q2 = 3,2,1,0; x-x̄ = .5,-.5,1.5,-1.5; y-ȳ = 1.5,.5,-.5,-1.5
    #       Σ = .75-.25-.75+2.25 = 2; Σ(x-x̄)² = 5; Σ(y-ȳ)² = 5 -> 2/5
    expected = {
        "q1": (4, 0.5, 0.5, 1 / math.sqrt(11)),
        "q2": (3, 1.0, 0.5, 3 / math.sqrt(12)),
        "q3": (5, 2.5, 0.625, 0.4),
    }
    for qid, (n_answered, mean, difficulty, discrimination) in expected.items():
        q = by_id[qid]
        assert q["answered"] == n_answered and q["graded"] == 4, q
        assert q["mean_score"] == pytest.approx(mean, abs=1e-4)
        assert q["difficulty"] == pytest.approx(difficulty, abs=1e-4)
        assert q["discrimination"] == pytest.approx(discrimination, abs=1e-4), qid
    assert by_id["q3"]["max_points"] == 4 and by_id["q2"]["text"] == "Primes?"


async def test_statistics_without_grades_say_so_instead_of_inventing_numbers(live: Live) -> None:
    [room], _, token = await owned_rooms(live)
    await attempt(live, room, "s-empty")
    stats = await live.rest("GET", f"/api/rooms/{room['id']}/statistics", token=token)
    for q in stats["questions"]:
        assert (q["graded"], q["mean_score"], q["difficulty"], q["discrimination"]) == (0, None, None, None)
