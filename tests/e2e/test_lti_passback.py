"""Issue 14's headline, end to end in real Chromium with id_tokens signed by lti1p3platform (no
shortcut route): an instructor adds the tool to the course by deep linking, the tool's signed
LtiDeepLinkingResponse is auto-posted to the platform, which verifies it with the tool's JWKS and
makes the activity and its line item; a learner's launch of that activity lands in the bound
room's exam, answers and submits; the platform receives the automatic part of the grade through
AGS (a bearer token from a verified client assertion), and after a teacher grades the essay over
REST, the final score. Every figure is compared with the attempt's grade in Postgres."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rooms.lti import student_id_for
from server.keys import POOL, TOKENS
from tests.e2e.test_exam_flow import pass_consent_and_check
from tests.e2e.test_lti import course_page, tool_frame
from tests.support.browser import Browsers, screenshot
from tests.support.lti_platform import CLIENT_ID, DEEP_LINKING, LtiWorld

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

EXAM = {
    "title": "Number sense",
    "duration_minutes": 30,
    "questions": [
        {"id": "q1", "kind": "single", "text": "2+2?", "options": ["3", "4"], "correct": [1], "points": 2},
        {"id": "q2", "kind": "multiple", "text": "Primes?", "options": ["2", "4", "7"], "correct": [0, 2]},
        {"id": "q3", "kind": "essay", "text": "Why is 7 prime?", "points": 2},
    ],
}
SCORE_MAXIMUM = 5.0


async def instructor_with_exam(world: LtiWorld) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The instructor's teacher account (the email the platform sends: linked at the first
    launch), a token of theirs, and an exam with a room that they own."""
    email = world.platform.users["instructor-1"].email
    account = await world.node.rest(
        "POST", "/api/accounts", {"email": email, "name": "Grace Hopper", "role": "teacher"}
    )
    token = world.node.app[TOKENS].mint("teacher", account["id"], name="Grace Hopper", ttl_seconds=3600)
    exam = await world.node.rest("POST", "/api/exams", EXAM, token=token)
    room = await world.node.rest("POST", f"/api/exams/{exam['id']}/rooms", {"name": "Hall C", "seats": 30}, token=token)
    return token, exam, room


async def received(world: LtiWorld, lineitem: str, sub: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The platform's latest result for (line item, user), once `done` holds for it."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        result = world.platform.services.results.get((lineitem, sub))
        if result is not None and done(result):
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the platform never got that score: {result}, {world.platform.services.scores}")
        await asyncio.sleep(0.2)


async def test_deep_link_then_learner_submits_and_the_platform_gets_the_scores(
    lti_world: LtiWorld, lti_browsers: Browsers, face_video: Path
) -> None:
    world = lti_world
    platform = world.platform
    pool = world.node.app[POOL]
    teacher_token, _, room = await instructor_with_exam(world)

    # 1. The instructor adds the tool to the course: LtiDeepLinkingRequest → the picker.
    teacher = await course_page(lti_browsers, world, "instructor-1", face_video, message=DEEP_LINKING)
    picker = await tool_frame(teacher, "/lti/launch")
    await picker.get_by_role("heading", name="Add a proctored exam").wait_for(timeout=15_000)
    await picker.get_by_label(EXAM["title"]).check()
    await picker.get_by_label("Room", exact=True).select_option(label="Hall C")
    await screenshot(teacher, "lti-deep-linking-picker")
    await picker.get_by_role("button", name="Add to the course").click()

    # 2. The response is auto-posted to the platform, verified there with the tool's JWKS.
    back = None
    for _ in range(150):
        back = next((f for f in teacher.frames if "/deep-link-return" in f.url), None)
        if back is not None:
            break
        await asyncio.sleep(0.1)
    assert back is not None, [f.url for f in teacher.frames]
    await back.locator("#added li").wait_for(timeout=10_000)
    assert platform.returns.refused_messages == []
    (response,) = platform.returns.deep_link_responses
    assert response["iss"] == CLIENT_ID and response["aud"] == platform.url
    (link,) = platform.links.values()
    assert link.title == EXAM["title"] and link.custom["proctor_room"] == room["id"] and link.custom["proctor_binding"]
    assert link.lineitem is not None
    item = platform.services.line_items[link.lineitem]
    assert item["scoreMaximum"] == SCORE_MAXIMUM and item["resourceId"] == room["id"]
    # The platform's check can fail: the same response signed by another key makes nothing.
    forged = platform.sign(response)
    async with world.http.post(platform.url + "/deep-link-return", data={"JWT": forged}) as resp:
        assert resp.status == 400
    assert len(platform.links) == 1 and platform.returns.refused_messages

    # 3. A learner opens the new activity: it binds to the room on this first launch.
    learner = await course_page(lti_browsers, world, "learner-1", face_video, link=link.id)
    exam_page = await tool_frame(learner, "/exam/")
    await exam_page.get_by_role("heading", name="Before you start: what this exam records").wait_for(timeout=15_000)
    await pass_consent_and_check(exam_page)
    await exam_page.get_by_role("radio", name="4").check()
    for option in ("2", "7"):
        await exam_page.locator("#q-q2 label", has_text=option).locator("input").check()
    essay = exam_page.locator("textarea[name]")
    await essay.fill("It has no divisors but 1 and itself.")
    await essay.blur()
    for qid in ("q1", "q2", "q3"):
        await exam_page.locator(f"#q-{qid}-status[data-state=saved]").wait_for(timeout=5_000)
    await exam_page.get_by_role("button", name="Submit the exam").click()
    await exam_page.locator("dialog.confirm").get_by_role("button", name="Submit").click()
    await exam_page.get_by_role("heading", name="Your exam has been submitted").wait_for(timeout=5_000)
    student_id = student_id_for(platform.platform_id, "sub-learner-1")
    attempt = await pool.fetchrow(
        "SELECT id::text, status, grade, grade_max, grade_final FROM attempts"
        " WHERE room_id = $1::uuid AND student_id = $2",
        room["id"],
        student_id,
    )
    assert attempt is not None and attempt["status"] == "submitted"

    # 4. The automatic part reaches the platform's AGS scores endpoint: manual grading to come.
    first = await received(world, link.lineitem, "sub-learner-1", lambda r: r["gradingProgress"] == "PendingManual")
    attempt = await pool.fetchrow(
        "SELECT grade, grade_max, grade_final FROM attempts WHERE id = $1::uuid", attempt["id"]
    )
    assert attempt is not None and attempt["grade_final"] is False
    assert (first["scoreGiven"], first["scoreMaximum"]) == (attempt["grade"], attempt["grade_max"]) == (3.0, 5.0)
    assert first["activityProgress"] == "Submitted"
    # Each score call carried a bearer token the platform issued for a verified client assertion.
    assert platform.services.assertions and platform.services.refused_assertions == []
    assert all(
        a["iss"] == a["sub"] == CLIENT_ID and a["aud"] == platform.services.token_url
        for a in platform.services.assertions
    )
    assert all(s.content_type == "application/vnd.ims.lis.v1.score+json" for s in platform.services.scores)

    # 5. A teacher grades the essay over REST: the platform gets the final score.
    attempt_id = await pool.fetchval("SELECT id::text FROM attempts WHERE room_id = $1::uuid", room["id"])
    await world.node.rest(
        "PUT", f"/api/attempts/{attempt_id}/grades/q3", {"points": 1.5, "comment": "Right idea."}, token=teacher_token
    )
    final = await received(world, link.lineitem, "sub-learner-1", lambda r: r["gradingProgress"] == "FullyGraded")
    graded = await pool.fetchrow("SELECT grade, grade_max, grade_final FROM attempts WHERE id = $1::uuid", attempt_id)
    assert graded is not None and graded["grade_final"] is True
    assert (final["scoreGiven"], final["scoreMaximum"]) == (graded["grade"], graded["grade_max"]) == (4.5, 5.0)
    assert final["activityProgress"] == "Completed"
    assert [s.applied for s in platform.services.scores].count(False) == 0  # each newer than the last
    assert learner.errors == [] and teacher.errors == []
