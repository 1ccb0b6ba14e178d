"""The teacher home page in Chromium: my rooms with my role, live counts that follow the
students, and the links onwards; `/teacher/?room=ID` stays the dashboard."""

from __future__ import annotations

from pathlib import Path

import pytest
import socketio
from playwright.async_api import expect

from tests.support.browser import Browsers, Node, screenshot

pytestmark = pytest.mark.slow


async def test_home_lists_two_rooms_and_their_counts_follow_a_student(
    browsers: Browsers, node: Node, face_video: Path
) -> None:
    first = await node.room()
    second = await node.room(
        {"title": "Geometry", "duration_minutes": 20, "questions": [{"id": "q1", "kind": "text", "text": "Why?"}]}
    )
    [invite] = await node.invites(first["id"], ["Ada Lovelace"])
    token = await node.teacher_token([first["id"], second["id"]])  # a proctor of both

    page = await (await browsers.context(face_video)).new_page()
    await page.goto(f"{node.url}/teacher/#token={token}")
    await expect(page.get_by_role("heading", name="My rooms", level=2)).to_be_visible()
    row1 = page.locator(f"#home-rooms tr[data-room='{first['id']}']")
    row2 = page.locator(f"#home-rooms tr[data-room='{second['id']}']")
    await expect(row1.locator(".role")).to_have_text("Proctor")
    await expect(row2).to_contain_text("Geometry")
    for row in (row1, row2):
        for cell in (".online", ".flagged", ".submitted"):
            await expect(row.locator(cell)).to_have_text("0")

    student = socketio.AsyncClient(reconnection=False)
    try:
        await student.connect(
            node.url, namespaces=["/student"], auth={"token": invite["token"]}, transports=["websocket"]
        )
        assert (await student.call("join", {}, namespace="/student"))["ok"]
        # The page polls: the join shows without a reload, in room 1 only.
        await expect(row1.locator(".online")).to_have_text("1", timeout=8_000)
        ack = await student.call(
            "event", {"seq": 1, "kind": "paste", "occurred_at": "2026-01-01T10:00:00Z"}, namespace="/student"
        )
        assert ack["ok"], ack
        await expect(row1.locator(".flagged")).to_have_text("1", timeout=8_000)
        await screenshot(page, "teacher-home")
        assert (await student.call("submit", {}, namespace="/student"))["ok"]
        await expect(row1.locator(".submitted")).to_have_text("1", timeout=8_000)
        await expect(row1.locator(".online")).to_have_text("0")
        await expect(row2.locator(".online")).to_have_text("0")
    finally:
        await student.disconnect()

    # Onwards: the dashboard of room 1 is the page it always was.
    await row1.get_by_role("link", name="Dashboard").click()
    await page.locator("#conn.ok").wait_for()
    assert f"?room={first['id']}" in page.url
    await expect(page.locator(".tile")).to_have_count(1)
    # A proctor has no editor link (owners open rooms on the exam); review is there.
    await page.goto(f"{node.url}/teacher/")
    await expect(row2.get_by_role("link", name="Review")).to_be_visible()
    await expect(row2.get_by_role("link", name="Editor")).to_have_count(0)
