"""How the pages are served (headers, the missing-npm message), the editor and the review page."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

import pytest
import socketio
from playwright.async_api import expect

from server.http import pages
from tests.support.browser import Browsers, Node, screenshot
from tests.support.node import ADMIN

pytestmark = pytest.mark.slow

PAGES = (
    "/exam/",
    "/teacher/",
    "/teacher/editor.html",
    "/teacher/review.html",
    "/teacher/account.html",
    "/teacher/import.html",
    "/teacher/queue.html",
    "/teacher/results.html",
)
# The settings fixture's public URL is http://proctor.test: connections go to it and nowhere else.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self' http://proctor.test ws://proctor.test; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)


async def test_pages_carry_security_headers(node: Node) -> None:
    for path in PAGES:
        async with node.http.get(node.url + path) as resp:
            assert resp.status == 200, path
            assert resp.headers["Content-Type"].startswith("text/html")
            assert resp.headers["Content-Security-Policy"] == CSP
            assert "'unsafe-inline'" not in CSP and "'unsafe-eval'" not in CSP
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            assert resp.headers["X-Frame-Options"] == "DENY"
            assert resp.headers["Referrer-Policy"] == "no-referrer"
            assert resp.headers["Permissions-Policy"] == "camera=(self), microphone=()"
            html = await resp.text()
            assert "<script>" not in html and "style=" not in html  # nothing inline
    async with node.http.get(node.url + "/vendor/socket.io.esm.min.js") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/javascript")
    for bad in ("/static/../pages.py", "/static/%2e%2e/pages.py", "/vendor/package.json", "/static/js/nope.js"):
        async with node.http.get(node.url + bad) as resp:
            assert resp.status == 404, bad


async def test_pages_explain_a_missing_npm_install(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages, "node_modules", lambda: None)
    for path in ("/exam/", "/vendor/socket.io.esm.min.js"):
        async with node.http.get(node.url + path) as resp:
            assert resp.status == 503
            assert "./install.sh" in await resp.text()


async def test_editor_creates_exam_room_invites_and_tokens(browsers: Browsers, node: Node, face_video: Path) -> None:
    context = await browsers.context(face_video)
    page = await context.new_page()
    await page.goto(f"{node.url}/teacher/editor.html")
    # No token yet: the sign-in form; the token is kept for the session, not in the URL.
    await page.get_by_label("Teacher or admin token").fill(ADMIN)
    await page.get_by_role("button", name="Sign in").click()

    await page.get_by_label("Title").fill("Physics quiz")
    await page.get_by_label("Duration (minutes)").fill("25")
    await page.get_by_label("Question text").fill("Which are vectors?")
    await page.get_by_label("Options, one a line").fill("velocity\nmass\nforce")
    await page.get_by_role("button", name="Add text answer").click()
    await page.get_by_label("Question text").nth(1).fill("Define inertia.")
    await page.get_by_role("button", name="Create exam").click()
    await expect(page.locator("#exam-result")).to_contain_text("Exam created")

    await page.get_by_role("button", name="Create room").click()
    await expect(page.locator("#room-result")).to_contain_text("created")
    room_id = await page.locator("#invite-room").input_value()

    await page.get_by_label("Students, one a line").fill("s-1, Marie Curie\ns-2, =cmd()")
    await page.get_by_role("button", name="Create invite links").click()
    await expect(page.locator("#invite-table tbody tr")).to_have_count(2)
    link = await page.get_by_label("Invite link for Marie Curie").input_value()
    assert "/exam/#token=" in link
    async with page.expect_download() as info:
        await page.get_by_role("button", name="Download links as CSV").click()
    download = await info.value
    rows = list(csv.reader(io.StringIO(await asyncio.to_thread(Path(await download.path()).read_text))))
    assert rows[0] == ["student_id", "name", "url", "expires_at"]
    assert rows[1][1] == "Marie Curie" and rows[2][1] == "'=cmd()"  # no spreadsheet formula

    await page.get_by_label("Who (id)").fill("t-9")
    await page.get_by_label("Rooms (comma separated ids)").fill(room_id)
    await page.get_by_role("button", name="Create token").click()
    await expect(page.locator("#token-result")).to_contain_text("Token for t-9")
    await screenshot(page, "teacher-editor")

    attempts = await node.rest("GET", f"/api/rooms/{room_id}/attempts")
    assert attempts == {"attempts": []}


async def test_review_page_shows_timeline_report_and_reviews_flags(
    browsers: Browsers, node: Node, face_video: Path
) -> None:
    room = await node.room()
    invite = (await node.invites(room["id"], ["Emmy Noether"]))[0]
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(node.url, namespaces=["/student"], auth={"token": invite["token"]}, transports=["websocket"])
    try:
        join = await sio.call("join", {}, namespace="/student")
        await sio.call("answer", {"question_id": "q1", "value": 1, "seq": 1}, namespace="/student")
        paste = {"seq": 2, "kind": "paste", "occurred_at": "2026-01-01T10:00:00Z"}
        await sio.call("event", paste, namespace="/student")
    finally:
        await sio.disconnect()
    attempt_id = join["attempt"]["attempt_id"]
    token = await node.teacher_token([room["id"]])

    context = await browsers.context(face_video)
    page = await context.new_page()
    await page.goto(f"{node.url}/teacher/review.html?room={room['id']}&attempt={attempt_id}#token={token}")
    await expect(page.locator("#attempts tr")).to_have_count(1)
    await expect(page.locator("#attempt-h")).to_have_text("Attempt of Emmy Noether")
    violation = page.locator("#timeline li.violation")
    await expect(violation).to_contain_text("Paste")
    await expect(violation.locator(".explanation")).to_contain_text("Text was pasted into the exam page.")
    # The option's text, not its index (q1's options are "3" and "4").
    await expect(page.locator("#timeline li.answer")).to_contain_text("Answered q1: “4”")
    await expect(page.locator("#tl-chart .marker.flag")).to_have_count(1)

    card = page.locator(".flag-card", has_text="Paste")
    await card.get_by_role("textbox").fill("pasted the question number")
    await card.get_by_role("button", name="Dismiss flag").click()
    await expect(page.locator(".flag-card.dismissed")).to_contain_text("pasted the question number")
    timeline = await node.rest("GET", f"/api/attempts/{attempt_id}/timeline")
    assert [(e["review"], e["review_note"]) for e in timeline["entries"] if e["type"] == "violation"] == [
        ("dismissed", "pasted the question number")
    ]

    async with page.expect_download() as info:
        await page.get_by_role("button", name="Download results (CSV)").click()
    report = await asyncio.to_thread(Path(await (await info.value).path()).read_text)
    assert "Emmy Noether" in report and "dismissed_flags" in report.splitlines()[0]
    await screenshot(page, "teacher-review")
