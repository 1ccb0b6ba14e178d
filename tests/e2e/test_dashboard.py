"""The teacher dashboard with a full room, and what depends on media/ (analysis, live view)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
import socketio
from playwright.async_api import expect

from tests.e2e.test_exam_flow import open_student, open_teacher, pass_consent_and_check
from tests.support.browser import Browsers, Node, screenshot

pytestmark = pytest.mark.slow

ANALYSED_EXAM: dict[str, Any] = {
    "title": "Analysed quiz",
    "duration_minutes": 20,
    "questions": [{"id": "q1", "kind": "text", "text": "Say something."}],
    "rules": {"analysis": {"enabled": True, "sample_interval_seconds": 0.5, "no_face_seconds": 1.0}},
}


async def test_dashboard_shows_forty_students_at_1280x720(browsers: Browsers, node: Node, face_video: Path) -> None:
    room = await node.room()
    names = [f"Student {i:02d} {'Long-Surname' * (i % 3)}" for i in range(40)]
    invites = await node.invites(room["id"], names)
    clients: list[socketio.AsyncClient] = []

    async def join(invite: dict[str, Any]) -> None:
        sio = socketio.AsyncClient(reconnection=False)
        clients.append(sio)
        await sio.connect(node.url, namespaces=["/student"], auth={"token": invite["token"]}, transports=["websocket"])
        ack = await sio.call("join", {}, namespace="/student")
        assert ack["ok"], ack

    try:
        await asyncio.gather(*(join(i) for i in invites))
        # Some activity to look at: answers and a few violations.
        for n, sio in enumerate(clients[:12]):
            await sio.call("answer", {"question_id": "q1", "value": 1, "seq": 1}, namespace="/student")
            if n % 3 == 0:
                await sio.call(
                    "event", {"seq": 2, "kind": "paste", "occurred_at": "2026-01-01T10:00:00Z"}, namespace="/student"
                )
        await clients[39].disconnect()

        teacher = await open_teacher(browsers, node, room["id"], await node.teacher_token([room["id"]]), face_video)
        await expect(teacher.locator(".tile")).to_have_count(40, timeout=5_000)
        tile = teacher.locator(".tile", has_text="Student 39")
        await tile.locator(".presence", has_text=re.compile("reconnecting|offline")).wait_for(timeout=5_000)
        await screenshot(teacher, "teacher-dashboard-40")
        # Every tile is on screen at 1280x720, none needs scrolling to be seen.
        # One read of every tile at once: a presence update re-renders tiles, and a tile read
        # one by one may be replaced between the listing and its box.
        bottoms = await teacher.locator(".tile").evaluate_all(
            "(tiles) => tiles.map((t) => t.getBoundingClientRect().bottom + window.scrollY)"
        )
        assert len(bottoms) == 40 and max(bottoms) <= 720, bottoms

        # Filters: flagged shows the four students with a paste.
        await teacher.get_by_label("Flagged").check()
        await expect(teacher.locator(".tile")).to_have_count(4)
        await teacher.get_by_label("Offline").check()
        await expect(teacher.locator(".tile")).to_have_count(1)
        await teacher.get_by_label("All").check()
        await expect(teacher.locator(".tile")).to_have_count(40)
    finally:
        for sio in clients:
            if sio.connected:
                await sio.disconnect()


async def test_teacher_sees_the_students_thumbnail(browsers: Browsers, node: Node, face_video: Path) -> None:
    room = await node.room(ANALYSED_EXAM)
    invites = await node.invites(room["id"], ["Grace Hopper"])
    teacher = await open_teacher(browsers, node, room["id"], await node.teacher_token([room["id"]]), face_video)
    student = await open_student(browsers, node, invites[0], face_video)
    await pass_consent_and_check(student)
    await teacher.locator(".tile img.thumb").wait_for(timeout=8_000)


async def test_black_camera_raises_camera_blocked(browsers: Browsers, node: Node, black_video: Path) -> None:
    # A black picture is a covered or blocked camera, not an empty seat (Step 13: a frame too
    # dark to judge raises no "No face"; docs/analysis-quality.md).
    room = await node.room(ANALYSED_EXAM)
    invites = await node.invites(room["id"], ["Nobody There"])
    teacher = await open_teacher(browsers, node, room["id"], await node.teacher_token([room["id"]]), black_video)
    student = await open_student(browsers, node, invites[0], black_video)
    await pass_consent_and_check(student)
    item = teacher.locator("#feed li.violation[data-kind=camera_blocked]").first
    await item.wait_for(timeout=8_000)
    # The server's evidence snapshot is fetched with the teacher's token and shown inline.
    await item.locator("img.evidence").wait_for(timeout=5_000)
    await screenshot(teacher, "teacher-camera-blocked")


async def test_teacher_opens_the_live_camera(browsers: Browsers, node: Node, face_video: Path) -> None:
    room = await node.room()
    invites = await node.invites(room["id"], ["Katherine Johnson"])
    teacher = await open_teacher(browsers, node, room["id"], await node.teacher_token([room["id"]]), face_video)
    student = await open_student(browsers, node, invites[0], face_video)
    await pass_consent_and_check(student)
    await teacher.locator(".tile", has_text="Katherine").click()
    await teacher.get_by_role("button", name="Open live camera").click()
    await student.locator("#live-note").wait_for(timeout=5_000)
    # The teacher's video element plays the student's camera (the astronaut, 320x240).
    width = 0
    for _ in range(50):
        width = await teacher.evaluate("document.querySelector('#live-video').videoWidth")
        if width:
            break
        await asyncio.sleep(0.1)
    assert 0 < width <= 320
    await screenshot(teacher, "teacher-live-camera")
    # Closing the view tells the student's page, which stops showing the notice.
    await teacher.get_by_role("button", name="Close live camera").click()
    await student.locator("#live-note").wait_for(state="hidden", timeout=5_000)


@pytest.mark.parametrize("e2e_settings", [{"analysis_transport": "webrtc"}], indirect=True)
async def test_the_page_offers_again_when_the_room_moves(browsers: Browsers, node: Node, face_video: Path) -> None:
    """In a cluster, the node that places a moved room sends its students `rtc` bye
    (server/backends.py); the page must then offer again. One node stands in for it here."""
    from server.analysis import PEERS
    from server.keys import HUB

    room = await node.room(ANALYSED_EXAM)
    invites = await node.invites(room["id"], ["Ada Lovelace"])
    student = await open_student(browsers, node, invites[0], face_video)
    await pass_consent_and_check(student)
    peers = node.app[PEERS]
    for _ in range(100):
        if peers.live_count == 1:
            break
        await asyncio.sleep(0.1)
    [source] = peers.sources()
    await node.app[HUB].notifier.room_students(
        room["id"], "rtc", {"target": "server", "type": "bye", "reason": "host_changed"}
    )
    for _ in range(150):  # the page waits 0.5-3 s, then gathers and offers
        now = peers.source(source.attempt_id)
        if now is not None and now.slot is not source.slot:
            break
        await asyncio.sleep(0.1)
    now = peers.source(source.attempt_id)
    assert now is not None and now.slot is not source.slot, "no new offer after the bye"
    assert peers.live_count == 1
    assert not student.errors, student.errors


async def test_the_dashboard_reads_the_roster_again_on_resync(browsers: Browsers, node: Node, face_video: Path) -> None:
    """In a cluster, a node whose room bus lost Redis sends its teachers `resync`
    (signaling/room_bus.py); the page must then `watch` again and show what it missed. One
    node stands in for it here: the teacher pushes are dropped as Redis would drop them."""
    from server.keys import HUB

    hub = node.app[HUB]
    room = await node.room()
    [invite] = await node.invites(room["id"], ["Grace Hopper"])
    teacher = await open_teacher(browsers, node, room["id"], await node.teacher_token([room["id"]]), face_video)
    sio = socketio.AsyncClient(reconnection=False)
    try:
        await sio.connect(node.url, namespaces=["/student"], auth={"token": invite["token"]}, transports=["websocket"])
        assert (await sio.call("join", {}, namespace="/student"))["ok"]
        tile = teacher.locator(".tile", has_text="Grace Hopper")
        await tile.locator(".presence", has_text="online").wait_for(timeout=5_000)

        async def lost(room_id: str, event: str, data: dict[str, Any]) -> None:
            pass

        hub.notifier.teachers = lost
        try:
            for seq, kind in ((1, "paste"), (2, "copy")):
                ack = await sio.call(
                    "event", {"seq": seq, "kind": kind, "occurred_at": "2026-01-01T10:00:00Z"}, namespace="/student"
                )
                assert ack["ok"] and ack["stored"], ack
        finally:
            del hub.notifier.teachers
        await asyncio.sleep(0.5)
        await expect(teacher.locator(".tile.flagged")).to_have_count(0)
        await expect(teacher.locator("#feed li.violation")).to_have_count(0)

        await hub.resync_teachers("bus_reconnected")
        await expect(teacher.locator(".tile.flagged")).to_have_count(1, timeout=5_000)
        await expect(teacher.locator("#feed li.violation")).to_have_count(2)
        # Another resync replaces the feed's violations, it does not add them again.
        await hub.resync_teachers("peer_dropped")
        await asyncio.sleep(1.0)
        await expect(teacher.locator("#feed li.violation")).to_have_count(2)
        await expect(teacher.locator("#conn.ok")).to_have_count(1)
    finally:
        await sio.disconnect()
