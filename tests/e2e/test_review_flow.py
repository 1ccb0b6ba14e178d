"""After the exam in a real Chromium: the review queue → an attempt's review page → its visual
timeline puts each marker where its time falls on the exam's axis → one flag confirmed and
one dismissed, with notes → a verdict → the results page and its CSV carry the verdict.

Students take the exam over a real Socket.IO connection and a teacher pauses and resumes one
of them; the recorded times are then moved to known minutes of the attempt (SQL), so the
markers' positions can be checked against the axis. Screenshots go to test-artifacts/."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import socketio
from playwright.async_api import expect

from server.keys import ATTEMPTS, POOL
from tests.support.browser import Browsers, Node, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

EXAM = {
    "title": "Number theory",
    "duration_minutes": 30,
    "questions": [
        {"id": "q1", "kind": "single", "text": "2+2?", "options": ["3", "4"], "correct": [1], "points": 1},
        {"id": "q2", "kind": "multiple", "text": "Primes?", "options": ["2", "4", "7"], "correct": [0, 2], "points": 2},
        {"id": "q3", "kind": "essay", "text": "Explain a prime.", "points": 4},
    ],
}
NO_FACE = "No face seen for 4.0 s (best score 0.00 < 0.50)"


async def take_exam(node: Node, token: str, answers: list[tuple[str, Any]], events: list[str]) -> str:
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(node.url, namespaces=["/student"], auth={"token": token}, transports=["websocket"])
    try:
        join = await sio.call("join", {}, namespace="/student")
        assert join["ok"], join
        seq = 0
        for qid, value in answers:
            seq += 1
            ack = await sio.call("answer", {"question_id": qid, "value": value, "seq": seq}, namespace="/student")
            assert ack["ok"], ack
        for kind in events:
            seq += 1
            event = {"seq": seq, "kind": kind, "occurred_at": "2026-01-01T10:00:00Z"}
            assert (await sio.call("event", event, namespace="/student"))["ok"]
        return str(join["attempt"]["attempt_id"])
    finally:
        await sio.disconnect()


async def submit(node: Node, token: str) -> None:
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(node.url, namespaces=["/student"], auth={"token": token}, transports=["websocket"])
    try:
        assert (await sio.call("join", {}, namespace="/student"))["ok"]
        assert (await sio.call("submit", {}, namespace="/student"))["ok"]
    finally:
        await sio.disconnect()


async def pause_and_resume(node: Node, teacher: str, room_id: str, attempt_id: str) -> None:
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(node.url, namespaces=["/teacher"], auth={"token": teacher}, transports=["websocket"])
    try:
        assert (await sio.call("watch", {"room_id": room_id}, namespace="/teacher"))["ok"]
        for action in ("pause", "resume"):
            ack = await sio.call("control", {"attempt_id": attempt_id, "action": action}, namespace="/teacher")
            assert ack["ok"], ack
    finally:
        await sio.disconnect()


async def place_at_minutes(node: Node, attempt_id: str) -> None:
    """Move what was recorded to known minutes of a 30-minute attempt that began 20 minutes ago."""
    pool = node.app[POOL]
    aid = uuid.UUID(attempt_id)
    t0 = await pool.fetchval("SELECT date_trunc('second', now()) - interval '20 minutes'")
    await pool.execute(
        "UPDATE attempts SET started_at = $2::timestamptz, deadline = $2::timestamptz + interval '30 minutes',"
        " submitted_at = $2::timestamptz + interval '18 minutes' WHERE id = $1",
        aid,
        t0,
    )
    await pool.execute(
        "UPDATE answers SET saved_at = $2::timestamptz + interval '2 minutes' WHERE attempt_id = $1", aid, t0
    )
    await pool.execute(
        "UPDATE violations SET occurred_at = $2::timestamptz"
        " + make_interval(mins => CASE kind WHEN 'tab_hidden' THEN 5 ELSE 12 END)"
        " WHERE attempt_id = $1",
        aid,
        t0,
    )
    await pool.execute(
        "UPDATE controls SET created_at = $2::timestamptz"
        " + make_interval(mins => CASE action WHEN 'pause' THEN 7 ELSE 8 END)"
        " WHERE attempt_id = $1",
        aid,
        t0,
    )
    await pool.execute("DELETE FROM attempt_log WHERE attempt_id = $1 AND kind <> 'submit'", aid)
    await pool.execute(
        "UPDATE attempt_log SET at = $2::timestamptz + interval '18 minutes' WHERE attempt_id = $1", aid, t0
    )
    # A network gap through the code that records real ones (rooms/attempts.py record_gap).
    start = (t0 + timedelta(minutes=9)).timestamp()
    await node.app[ATTEMPTS].record_gap(attempt_id, start, start + 60)


async def grade(node: Node, attempt_id: str, points: tuple[float, float, float]) -> None:
    pool = node.app[POOL]
    for qid, got, top in zip(("q1", "q2", "q3"), points, (1, 2, 4), strict=True):
        await pool.execute(
            "INSERT INTO answer_grades (attempt_id, question_id, points, max_points, auto)"
            " VALUES ($1, $2, $3, $4, true)"
            " ON CONFLICT (attempt_id, question_id) DO UPDATE SET points = EXCLUDED.points",
            uuid.UUID(attempt_id),
            qid,
            got,
            top,
        )
    await pool.execute(
        "UPDATE attempts SET grade = $2, grade_max = 7, grade_final = true WHERE id = $1",
        uuid.UUID(attempt_id),
        sum(points),
    )


async def test_queue_timeline_decisions_verdict_and_results(browsers: Browsers, node: Node, face_video: Path) -> None:
    room = await node.room(EXAM)
    ada, alan, emmy = await node.invites(room["id"], ["Ada Lovelace", "Alan Turing", "Emmy Noether"])
    teacher = await node.teacher_token([room["id"]])
    attempt_id = await take_exam(node, ada["token"], [("q1", 1), ("q2", [0, 2])], ["tab_hidden", "paste"])
    await pause_and_resume(node, teacher, room["id"], attempt_id)
    await submit(node, ada["token"])
    await place_at_minutes(node, attempt_id)
    # A server flag with the detector's own words and its evidence frame, as the analysis stores them.
    jpeg = cv2.imencode(".jpg", np.full((120, 160, 3), 90, np.uint8))[1].tobytes()
    evidence = uuid.uuid4()
    await node.app[POOL].execute(
        "INSERT INTO evidence (id, attempt_id, data, expires_at) VALUES ($1, $2, $3, now() + interval '1 day')",
        evidence,
        uuid.UUID(attempt_id),
        jpeg,
    )
    await node.app[POOL].execute(
        "INSERT INTO violations (attempt_id, seq, source, kind, severity, occurred_at, details, evidence_id)"
        " SELECT id, 9000, 'server', 'no_face', 3, started_at + interval '15 minutes', $2::jsonb, $3"
        " FROM attempts WHERE id = $1",
        uuid.UUID(attempt_id),
        f'{{"explanation": "{NO_FACE}", "duration": 4.0}}',
        evidence,
    )
    other = await take_exam(node, alan["token"], [("q1", 0)], ["copy"])
    await submit(node, alan["token"])
    third = await take_exam(node, emmy["token"], [("q1", 1)], [])
    await submit(node, emmy["token"])
    await grade(node, attempt_id, (1, 2, 1))
    await grade(node, other, (0, 1, 2))
    await grade(node, third, (1, 0, 4))

    context = await browsers.context(face_video)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # The dashboard's feed and drawer show the detector's own words, as the review page does.
    await page.goto(f"{node.url}/teacher/?room={room['id']}#token={teacher}")
    feed = page.locator("#feed li.violation[data-kind=no_face] .explanation")
    await expect(feed).to_have_text(NO_FACE)
    await expect(page.locator("#feed li.violation[data-kind=tab_hidden] .explanation")).to_contain_text(
        "The exam tab was hidden"
    )
    await page.locator(".tile", has_text="Ada Lovelace").click()
    drawer = page.locator("#drawer-timeline li.violation", has_text="No face")
    await expect(drawer.locator(".explanation")).to_have_text(NO_FACE)
    await expect(page.locator("#drawer-timeline li.answer", has_text="q2")).to_contain_text("“2; 7”")
    await page.get_by_role("button", name="Close", exact=True).click()

    # The queue: Ada's attempt first (three flags, 9 of weight), Alan's next; Emmy has no flag.
    await page.goto(f"{node.url}/teacher/queue.html#token={teacher}")
    rows = page.locator("#queue-rows tr")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_contain_text("Ada Lovelace")
    await expect(rows.nth(1)).to_contain_text("Alan Turing")
    await expect(page.locator("#queue-count")).to_have_text("2 flagged attempts to look at")
    await page.get_by_label("Only attempts with flags to decide").check()
    await expect(rows).to_have_count(2)
    await rows.nth(0).get_by_role("link", name="Review Ada Lovelace").click()

    # The review page's timeline: the axis spans the exam's 30 minutes; markers sit at their minute.
    await expect(page.locator("#attempt-h")).to_have_text("Attempt of Ada Lovelace")
    await expect(page.locator("#tl-chart .marker.flag")).to_have_count(3)
    geometry = await page.evaluate(
        """() => {
          const axis = document.querySelector('#tl-chart line.axis');
          const box = (g) => {
            const b = g.querySelector('.shape').getBBox();
            return {x: b.x, w: b.width, cx: b.x + b.width / 2};
          };
          return {
            x1: +axis.getAttribute('x1'), x2: +axis.getAttribute('x2'),
            start: Date.parse(axis.dataset.start), end: Date.parse(axis.dataset.end),
            markers: [...document.querySelectorAll('#tl-chart .marker')].map((g) => ({
              cls: g.getAttribute('class'), at: Date.parse(g.dataset.at), kind: g.dataset.kind || null,
              label: g.getAttribute('aria-label'), tabindex: g.getAttribute('tabindex'), ...box(g)})),
            lanes: [...document.querySelectorAll('#tl-chart .lane-label')].map((t) => t.textContent),
          };
        }"""
    )
    assert geometry["end"] - geometry["start"] == 30 * 60 * 1000, geometry  # the exam's duration
    span = geometry["x2"] - geometry["x1"]

    def x_at(minute: float) -> float:
        return float(geometry["x1"] + span * minute / 30)

    by_kind = {m["kind"]: m for m in geometry["markers"] if "flag" in m["cls"]}
    assert by_kind["tab_hidden"]["cx"] == pytest.approx(x_at(5), abs=1.0)
    assert by_kind["paste"]["cx"] == pytest.approx(x_at(12), abs=1.0)
    assert by_kind["no_face"]["cx"] == pytest.approx(x_at(15), abs=1.0)
    answers = [m for m in geometry["markers"] if m["cls"].endswith("answer")]
    assert len(answers) == 2 and all(m["cx"] == pytest.approx(x_at(2), abs=1.0) for m in answers)
    [gap] = [m for m in geometry["markers"] if m["cls"].endswith("gap")]
    assert gap["x"] == pytest.approx(x_at(9), abs=1.0) and gap["w"] == pytest.approx(span / 30, abs=1.0)
    [pause] = [m for m in geometry["markers"] if m["cls"].endswith("pause")]
    assert pause["x"] == pytest.approx(x_at(7), abs=1.0) and pause["w"] == pytest.approx(span / 30, abs=1.0)
    assert geometry["lanes"] == [
        "Answers",
        "Flag: Tab hidden",
        "Flag: Paste",
        "Flag: No face",
        "Network",
        "Pauses & controls",
    ]
    # Every marker is focusable and says in words what it is; answers show the option's text.
    assert all(m["tabindex"] == "0" and m["label"] for m in geometry["markers"])
    assert any("answered q2: 2; 7" in m["label"] for m in answers)
    assert "connection lost for 60 s" in gap["label"]
    no_face = page.locator('#tl-chart .marker[data-kind="no_face"]')
    await no_face.focus()
    await expect(page.locator("#tl-detail")).to_contain_text(NO_FACE)
    await expect(page.locator("#tl-detail")).to_contain_text("not yet decided")
    # Its evidence thumbnail, inline next to the explanation (fetched with the credential, audited).
    thumb = page.locator("#tl-detail img.evidence")
    await expect(thumb).to_be_visible()
    assert await thumb.evaluate("(img) => img.complete && img.naturalWidth") == 160
    await screenshot(page, "review-timeline")

    # Decisions with notes: the card of the activated marker takes the focus.
    await page.keyboard.press("Enter")
    await expect(page.locator(".flag-card:focus")).to_contain_text(NO_FACE)
    card = page.locator(f"#{await page.evaluate('document.activeElement.id')}")
    await card.get_by_role("textbox").fill("Left the desk for the phone")
    await card.get_by_role("button", name="Confirm flag").click()
    await expect(page.locator(".flag-card.confirmed[data-id]")).to_have_count(1)
    paste_card = page.locator(".flag-card", has_text="Paste")
    await paste_card.get_by_role("textbox").fill("Pasted own notes, allowed")
    await paste_card.get_by_role("button", name="Dismiss flag").click()
    await expect(page.locator(".flag-card.dismissed")).to_have_count(1)
    await expect(page.locator('#tl-chart .marker.dismissed[data-kind="paste"]')).to_have_count(1)
    # A verdict before every flag is decided is refused, and the page says why.
    await page.get_by_label("Verdict on this attempt").select_option("misconduct")
    await page.get_by_label("Note (required for follow-up and misconduct)").fill("Phone during the exam")
    await page.get_by_role("button", name="Save verdict").click()
    await expect(page.locator("#verdict-result")).to_contain_text("1 flag still to be confirmed or dismissed")
    tab_card = page.locator(".flag-card", has_text="Tab hidden")
    await tab_card.get_by_role("button", name="Confirm flag").click()
    await expect(page.locator(".flag-card.confirmed")).to_have_count(2)
    await page.get_by_role("button", name="Save verdict").click()
    await expect(page.locator("#verdict-result")).to_have_text("Saved: Misconduct confirmed.")
    await expect(page.locator("#attempt-verdict")).to_contain_text("Misconduct confirmed")
    await expect(page.locator("#flags-count")).to_have_text("3 flags, 0 to decide.")

    timeline = await node.rest("GET", f"/api/attempts/{attempt_id}/timeline")
    decided = {e["kind"]: (e["review"], e["review_note"]) for e in timeline["entries"] if e["type"] == "violation"}
    assert decided == {
        "no_face": ("confirmed", "Left the desk for the phone"),
        "paste": ("dismissed", "Pasted own notes, allowed"),
        "tab_hidden": ("confirmed", ""),
    }

    # The results page: the attempts with grades and verdicts, the question plot, the CSV.
    await page.goto(f"{node.url}/teacher/results.html?room={room['id']}")
    await expect(page.locator("#results-rows tr")).to_have_count(3)
    await expect(page.locator("#results-count")).to_have_text("3 students · 3 graded in full")
    ada_row = page.locator("#results-rows tr", has_text="Ada Lovelace")
    await expect(ada_row).to_contain_text("4.0 / 7.0")
    await expect(ada_row).to_contain_text("Misconduct confirmed")
    await expect(page.locator("#stats-chart rect.bar")).to_have_count(6)
    await expect(page.locator('#stats-rows tr[data-question="q1"]')).to_contain_text("3 students")
    await screenshot(page, "results")
    async with page.expect_download() as info:
        await page.get_by_role("button", name="Download results (CSV)").click()
    report = await asyncio.to_thread(Path(await (await info.value).path()).read_text)
    rows_csv = {r["student_name"]: r for r in csv.DictReader(io.StringIO(report))}
    assert rows_csv["Ada Lovelace"]["verdict"] == "misconduct"
    assert rows_csv["Ada Lovelace"]["confirmed_flags"] == "2" and rows_csv["Ada Lovelace"]["unreviewed_flags"] == "0"
    assert rows_csv["Alan Turing"]["verdict"] == "" and rows_csv["Alan Turing"]["unreviewed_flags"] == "1"
    assert not [c for c in rows_csv["Ada Lovelace"] if "score" in c]
    assert errors == []
