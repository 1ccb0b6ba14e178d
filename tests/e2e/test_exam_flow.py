"""A student takes an exam in Chromium while a teacher watches the dashboard in another."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from tests.support.browser import Browsers, Node, screenshot

pytestmark = pytest.mark.slow


async def open_student(browsers: Browsers, node: Node, invite: dict[str, Any], camera: Path) -> Any:
    context = await browsers.context(camera)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    await page.goto(f"{node.url}/exam/#token={invite['token']}")
    return page


async def pass_consent_and_check(page: Any, shots: bool = False) -> None:
    if shots:
        await page.locator("#consent-exam", has_text="3 questions").wait_for()
        await screenshot(page, "student-consent")
    await page.get_by_label("I have read this and agree").check()
    await page.get_by_role("button", name="Continue to the system check").click()
    start = page.get_by_role("button", name="Start the exam")
    await start.wait_for()
    await expect(start).to_be_enabled(timeout=10_000)
    if shots:
        await page.wait_for_timeout(500)  # let the preview paint a frame
        await screenshot(page, "student-check")
    assert await page.locator("#check-list li.fail").count() == 0
    # The preview plays the camera file, capped at 320x240.
    size = await page.evaluate(
        "[document.querySelector('#preview').videoWidth, document.querySelector('#preview').videoHeight]"
    )
    assert size[0] <= 320 and size[1] <= 240, size
    await start.click()
    await page.locator("#questions fieldset").first.wait_for()


async def open_teacher(browsers: Browsers, node: Node, room_id: str, token: str, camera: Path) -> Any:
    context = await browsers.context(camera)
    page = await context.new_page()
    await page.goto(f"{node.url}/teacher/?room={room_id}#token={token}")
    await page.locator("#conn.ok").wait_for()
    return page


async def test_student_takes_exam_while_teacher_watches(browsers: Browsers, node: Node, face_video: Path) -> None:
    room = await node.room()
    invites = await node.invites(room["id"], ["Ada Lovelace"])
    teacher = await open_teacher(browsers, node, room["id"], await node.teacher_token([room["id"]]), face_video)
    student = await open_student(browsers, node, invites[0], face_video)

    # Consent screen first: it says what is captured before anything starts.
    await student.get_by_role("heading", name="Before you start: what this exam records").wait_for()
    await pass_consent_and_check(student, shots=True)

    tile = teacher.locator(".tile", has_text="Ada Lovelace")
    await tile.locator(".presence", has_text="online").wait_for(timeout=5_000)

    await student.get_by_role("radio", name="4").check()
    await student.locator("#q-q2 label", has_text="2").locator("input").check()
    await student.locator("#q-q2 label", has_text="7").locator("input").check()
    await student.locator("#q-q3-text").fill("Because it is.")
    await student.locator("#q-q3-text").blur()
    for qid in ("q1", "q2", "q3"):
        await student.locator(f"#q-{qid}-status[data-state=saved]").wait_for(timeout=5_000)
    await tile.locator(".progress-text", has_text="3/3").wait_for(timeout=5_000)

    # Tab hidden: the page's own visibilitychange handler, with the document reporting hidden.
    started = time.monotonic()
    await student.evaluate("""() => {
        Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});
        Object.defineProperty(document, 'hidden', {value: true, configurable: true});
        document.dispatchEvent(new Event('visibilitychange'));
        delete document.visibilityState; delete document.hidden;
    }""")
    await teacher.locator("#feed li.violation[data-kind=tab_hidden]").wait_for(timeout=2_000)
    assert time.monotonic() - started < 2.0
    await tile.locator(".last", has_text="Tab hidden").wait_for(timeout=2_000)
    await screenshot(teacher, "teacher-dashboard")
    await screenshot(student, "student-exam")

    # The teacher warns; the student sees it.
    await tile.click()
    await teacher.locator("#drawer-timeline li.violation").first.wait_for(timeout=5_000)
    # The feed and the drawer show the same explanation, under the same field (`explanation`).
    words = "The exam tab was hidden"
    await expect(teacher.locator("#feed li.violation[data-kind=tab_hidden] .explanation").first).to_contain_text(words)
    hidden = teacher.locator("#drawer-timeline li.violation", has_text="Tab hidden").first
    await expect(hidden.locator(".explanation")).to_contain_text(words)
    await teacher.locator("#ctl-text").fill("Eyes on your own screen, please.")
    await teacher.get_by_role("button", name="Warn").click()
    await student.locator("#messages .msg.warning", has_text="Eyes on your own screen").wait_for(timeout=3_000)
    await screenshot(teacher, "teacher-drawer")
    await teacher.get_by_role("button", name="Close", exact=True).click()

    # Raise hand → the teacher's tile and feed; announce → every student.
    await student.get_by_label("Question for your teacher (optional)").fill("Is q3 about primes?")
    await student.get_by_role("button", name="Raise hand").click()
    await tile.locator(".hand").wait_for(timeout=3_000)
    await expect(teacher.locator("#feed li.hand")).to_contain_text("Is q3 about primes?")
    await teacher.get_by_label("Announce to the room").fill("Ten minutes left.")
    await teacher.get_by_role("button", name="Announce").click()
    await student.locator("#messages .msg.announce", has_text="Ten minutes left.").wait_for(timeout=3_000)

    # Submit: confirmation, then the done page; the teacher sees "submitted".
    await student.get_by_role("button", name="Submit the exam").click()
    await student.locator("dialog.confirm").get_by_role("button", name="Submit").click()
    await student.get_by_role("heading", name="Your exam has been submitted").wait_for(timeout=5_000)
    await tile.locator(".presence", has_text="submitted").wait_for(timeout=5_000)
    await screenshot(student, "student-done")
    assert student.errors == []

    attempts = (await node.rest("GET", f"/api/rooms/{room['id']}/attempts"))["attempts"]
    assert len(attempts) == 1 and attempts[0]["status"] == "submitted" and attempts[0]["answered"] == 3
    assert attempts[0]["violations"] >= 1


async def test_reload_resumes_the_same_attempt(browsers: Browsers, node: Node, face_video: Path) -> None:
    room = await node.room()
    invites = await node.invites(room["id"], ["Alan Turing"])
    student = await open_student(browsers, node, invites[0], face_video)
    await pass_consent_and_check(student)
    await student.get_by_role("radio", name="4").check()
    await student.locator("#q-q3-text").fill("kept across a reload")
    await student.locator("#q-q3-text").blur()
    for qid in ("q1", "q3"):
        await student.locator(f"#q-{qid}-status[data-state=saved]").wait_for(timeout=5_000)
    before = (await node.rest("GET", f"/api/rooms/{room['id']}/attempts"))["attempts"]

    await student.reload()
    # Straight back into the exam: no consent, no check, answers restored from the server.
    await student.locator("#questions fieldset").first.wait_for(timeout=10_000)
    await student.locator("#conn.ok").wait_for()
    assert await student.get_by_role("radio", name="4").is_checked()
    assert await student.locator("#q-q3-text").input_value() == "kept across a reload"
    await student.locator("#timer-value").wait_for()

    # A new answer after the reload continues the sequence above the server's last_seq.
    await student.locator("#q-q2 label", has_text="7").locator("input").check()
    await student.locator("#q-q2-status[data-state=saved]").wait_for(timeout=5_000)
    after = (await node.rest("GET", f"/api/rooms/{room['id']}/attempts"))["attempts"]
    assert len(after) == 1 and after[0]["id"] == before[0]["id"]
    assert after[0]["deadline"] == before[0]["deadline"]
    assert after[0]["answered"] == 3
    assert student.errors == []


async def test_offline_answers_wait_on_the_device_and_are_sent_on_reconnect(
    browsers: Browsers, node: Node, face_video: Path
) -> None:
    room = await node.room()
    invites = await node.invites(room["id"], ["Hedy Lamarr"])
    student = await open_student(browsers, node, invites[0], face_video)
    await pass_consent_and_check(student)
    await student.locator("#conn.ok").wait_for()

    # A real window blur: another page of the browser takes the focus.
    cdp = await student.context.new_cdp_session(student)
    await cdp.send("Emulation.setFocusEmulationEnabled", {"enabled": False})
    other = await student.context.new_page()
    await other.bring_to_front()
    await asyncio.sleep(0.3)
    await other.close()
    await student.bring_to_front()

    await student.context.set_offline(True)
    await student.locator("#conn.bad").wait_for(timeout=15_000)
    await student.get_by_role("radio", name="4").check()
    banner = student.locator("#offline")
    await expect(banner).to_contain_text("waiting on this device")
    await expect(student.locator("#q-q1-status")).to_have_attribute("data-state", "waiting")
    stored = await student.evaluate(
        "Object.keys(localStorage).filter(k => k.startsWith('proctor.outbox.'))"
        ".map(k => JSON.parse(localStorage[k]).length)"
    )
    assert sum(stored) >= 1
    await screenshot(student, "student-offline")

    await student.context.set_offline(False)
    await student.locator("#q-q1-status[data-state=saved]").wait_for(timeout=15_000)
    await expect(banner).to_be_hidden()
    attempt = (await node.rest("GET", f"/api/rooms/{room['id']}/attempts"))["attempts"][0]
    assert attempt["answered"] == 1
    timeline = await node.rest("GET", f"/api/attempts/{attempt['id']}/timeline")
    kinds = [e.get("kind") for e in timeline["entries"] if e["type"] == "violation"]
    assert "window_blur" in kinds, kinds
    assert student.errors == []
