"""LTI 1.3 in real Chromium, inside a real cross-site iframe: the test platform's course page
(localhost) frames the tool (127.0.0.1). An instructor's first launch binds the activity to
their room and lands on the dashboard (the teacher token from the fragment: no cookie needed);
a learner's launch lands in the exam, answers, submits; a second launch resumes the attempt.
The instructor imports the course roster from the dashboard (NRPS, the memberships URL the
instructor's launch announced) and sees who has not joined yet."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from rooms.lti import student_id_for
from server.keys import POOL
from tests.e2e.test_exam_flow import pass_consent_and_check
from tests.support.browser import Browsers, screenshot
from tests.support.lti_platform import LEARNER, RESOURCE, LtiWorld

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


async def tool_frame(page: Any, path: str, timeout: float = 15.0) -> Any:
    """The iframe's frame once it shows `path` of the tool."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        for frame in page.frames:
            if frame.parent_frame is not None and path in frame.url and frame.url.startswith("http://127.0.0.1"):
                return frame
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the tool's frame never reached {path}: {[f.url for f in page.frames]}")
        await asyncio.sleep(0.1)


async def course_page(
    browsers: Browsers, world: LtiWorld, user: str, camera: Path, *, link: str = "link-1", message: str = RESOURCE
) -> Any:
    context = await browsers.context(camera)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    await page.goto(f"{world.platform.url}/course?user={user}&link={link}&message={message}")
    return page


async def test_instructor_binds_then_learner_takes_the_exam_in_the_iframe(
    lti_world: LtiWorld, lti_browsers: Browsers, face_video: Path
) -> None:
    world = lti_world
    room = await world.instructor_room()
    # The course's members in the platform's NRPS service: the learner who launches and two who do not.
    world.platform.services.members = [
        {"user_id": user.sub, "roles": list(user.roles), "name": user.name, "status": "Active"}
        for user in world.platform.users.values()
    ] + [
        {"user_id": f"sub-{n}", "roles": [LEARNER], "name": name, "status": "Active"}
        for n, name in (("ann", "Ann Jones"), ("cat", "Cat Smith"))
    ]

    teacher = await course_page(lti_browsers, world, "instructor-1", face_video)
    bind = await tool_frame(teacher, "/lti/launch")
    await bind.get_by_label("An existing room").select_option(room["id"])
    await bind.get_by_role("button", name="Use this room").click()
    dashboard = await tool_frame(teacher, "/teacher/")
    await dashboard.locator("#conn.ok").wait_for(timeout=15_000)
    # This browser refuses a cross-site frame its storage: the token stayed in the fragment.
    assert await dashboard.evaluate("() => { try { sessionStorage.length; return false } catch { return true } }")
    await dashboard.locator("#room-title", has_text="Hall A").wait_for()
    await screenshot(teacher, "lti-instructor-dashboard")
    pool = world.node.app[POOL]
    account = await pool.fetchval(
        "SELECT account_id::text FROM lti_users WHERE platform_id = $1::uuid AND subject = 'sub-instructor-1'",
        world.platform.platform_id,
    )
    role = await pool.fetchval(
        "SELECT role FROM room_members WHERE room_id = $1::uuid AND subject = $2", room["id"], account
    )
    assert role == "owner"

    learner = await course_page(lti_browsers, world, "learner-1", face_video)
    exam = await tool_frame(learner, "/exam/")
    await exam.get_by_role("heading", name="Before you start: what this exam records").wait_for(timeout=15_000)
    await pass_consent_and_check(exam)
    await exam.get_by_role("radio", name="4").check()
    await exam.locator("#q-q2 label", has_text="7").locator("input").check()
    for qid in ("q1", "q2"):
        await exam.locator(f"#q-{qid}-status[data-state=saved]").wait_for(timeout=5_000)
    student_id = student_id_for(world.platform.platform_id, "sub-learner-1")
    first = await pool.fetchval(
        "SELECT id::text FROM attempts WHERE room_id = $1::uuid AND student_id = $2", room["id"], student_id
    )
    assert first is not None
    # The instructor sees the learner on the dashboard in the other iframe.
    await dashboard.locator(".tile", has_text="Ada Lovelace").wait_for(timeout=10_000)
    # ... and imports the roster from the platform's memberships URL, which the launch announced.
    memberships = await pool.fetchval("SELECT memberships_url FROM lti_links WHERE room_id = $1::uuid", room["id"])
    assert memberships == world.platform.services.memberships_url("course-1")
    await dashboard.get_by_role("button", name="Import the course roster").click()
    await expect(dashboard.get_by_role("status").filter(has_text="Imported 3 students.")).to_be_visible()
    listed = dashboard.get_by_role("list", name="Not joined yet (2)")
    await expect(listed.get_by_role("listitem")).to_have_text(["Ann Jones", "Cat Smith"])
    await screenshot(learner, "lti-learner-exam")

    # A second launch (the learner reopens the activity): the same attempt, answers kept.
    await learner.goto(f"{world.platform.url}/course?user=learner-1&link=link-1")
    again = await tool_frame(learner, "/exam/")
    # The framed page has no storage of its own here, so it asks for consent and checks again;
    # the server resumes the attempt it holds for this platform user.
    await again.get_by_role("heading", name="Before you start: what this exam records").wait_for(timeout=15_000)
    await pass_consent_and_check(again)
    await expect(again.get_by_role("radio", name="4")).to_be_checked(timeout=5_000)
    await expect(again.locator("#q-q2 label", has_text="7").locator("input")).to_be_checked()

    await again.get_by_role("button", name="Submit the exam").click()
    await again.locator("dialog.confirm").get_by_role("button", name="Submit").click()
    await again.get_by_role("heading", name="Your exam has been submitted").wait_for(timeout=5_000)
    rows = await pool.fetch(
        "SELECT id::text, status FROM attempts WHERE room_id = $1::uuid AND student_id = $2", room["id"], student_id
    )
    assert [(r["id"], r["status"]) for r in rows] == [(first, "submitted")]
    assert learner.errors == [] and teacher.errors == []
