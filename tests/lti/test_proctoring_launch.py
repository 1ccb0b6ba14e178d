"""LTI Proctoring Services through real launches (id_tokens signed by lti1p3platform, the OIDC
login and /lti/launch with every check; no shortcut route): LtiStartProctoring → the consent and
check page → LtiStartAssessment auto-posted to the platform, which verifies it with the tool's
JWKS and checks its echoes → the platform's LtiEndAssessment submits the learner's attempt; or a
proctor's termination reaches the Assessment Control Service the start message announced."""

from __future__ import annotations

import re
from typing import Any

import pytest

from rooms.lti import student_id_for
from rooms.store.attempts import AttemptStore
from server.keys import ATTEMPTS, POOL
from tests.support.lti_platform import AP_CLAIM, CLAIM, END_ASSESSMENT, PROCTORING, LtiWorld, parse_form
from tests.support.lti_records import insert_attempt

pytestmark = pytest.mark.timeout(60)

START = re.compile(r'action="(/lti/proctoring/[^"]+/start)"')


async def launch(world: LtiWorld, user: str, message: str) -> tuple[int, str, dict[str, str]]:
    """The whole launch: the login initiation, the platform's authorization, the form post."""
    _, _, location = await world.login(user=user, link="link-1", message=message)
    return await world.post_launch(await world.platform_launch(location))


async def bound_room(world: LtiWorld) -> dict[str, Any]:
    """The instructor's launch of the activity binds it to their room (the bind form)."""
    room = await world.instructor_room()
    status, page, _ = await launch(world, "instructor-1", "resource")
    assert status == 200, page
    form = {"ticket": parse_form(page).fields["ticket"], "room_id": room["id"]}
    async with world.http.post(world.node.url + "/lti/bind", data=form, allow_redirects=False) as resp:
        assert resp.status == 303, await resp.text()
    return room


async def start_assessment(world: LtiWorld) -> None:
    """LtiStartProctoring, consent, and the auto-posted LtiStartAssessment sent on to the platform."""
    status, page, _ = await launch(world, "learner-1", PROCTORING)
    match = START.search(page)
    assert status == 200 and match, page
    async with world.http.post(world.node.url + match.group(1), data={"consent": "yes"}) as resp:
        autopost = parse_form(await resp.text())
    async with world.http.post(autopost.action, data=autopost.fields) as resp:
        assert resp.status == 200, await resp.text()


async def test_start_proctoring_start_assessment_end_assessment_through_real_launches(lti_world: LtiWorld) -> None:
    world = lti_world
    platform = world.platform
    room = await bound_room(world)

    # 1. LtiStartProctoring: the consent notice and the system check, framable by the platform.
    status, page, headers = await launch(world, "learner-1", PROCTORING)
    assert status == 200, page
    assert 'id="consent"' in page and 'id="checks"' in page
    ancestors = headers["Content-Security-Policy"].split("frame-ancestors ")[1].split(";")[0].split()
    assert platform.url in ancestors and "X-Frame-Options" not in headers
    match = START.search(page)
    assert match, page

    # 2. Consent → LtiStartAssessment, auto-posted to the platform's start_assessment_url.
    async with world.http.post(world.node.url + match.group(1), data={"consent": "yes"}) as resp:
        assert resp.status == 200
        autopost = parse_form(await resp.text())
    assert autopost.action == platform.url + "/start-assessment"
    async with world.http.post(autopost.action, data=autopost.fields) as resp:
        assert resp.status == 200, await resp.text()
    assert platform.returns.refused_messages == []
    (started,) = platform.returns.start_assessments
    assert started["sub"] == "sub-learner-1"
    assert started[CLAIM + "resource_link"] == {"id": "link-1"}
    assert started[AP_CLAIM + "attempt_number"] == "1"
    assert started[AP_CLAIM + "end_assessment_return"] is True
    # A forged start assessment (not signed by the tool) is refused by the platform.
    forged = platform.sign({**started, "aud": platform.url})
    async with world.http.post(autopost.action, data={"JWT": forged}) as resp:
        assert resp.status == 400
    assert len(platform.returns.start_assessments) == 1 and platform.returns.refused_messages

    # 3. The student finishes: the platform's LtiEndAssessment submits their attempt in the room.
    pool = world.node.app[POOL]
    student_id = student_id_for(platform.platform_id, "sub-learner-1")
    attempt_id = await insert_attempt(pool, room["exam"]["id"], room["id"], student_id)
    status, page, _ = await launch(world, "learner-1", END_ASSESSMENT)
    assert status == 200 and "Proctoring has ended" in page, page
    attempt = await AttemptStore(pool).get(attempt_id)
    assert attempt is not None and attempt.status == "submitted" and attempt.end_reason == "platform"


async def test_a_termination_reaches_the_assessment_control_service_of_a_real_launch(lti_world: LtiWorld) -> None:
    world = lti_world
    platform = world.platform
    room = await bound_room(world)
    pool = world.node.app[POOL]
    student_id = student_id_for(platform.platform_id, "sub-learner-1")
    attempt_id = await insert_attempt(pool, room["exam"]["id"], room["id"], student_id)
    await start_assessment(world)
    assert len(platform.returns.start_assessments) == 1

    # A proctor terminates the attempt (the attempt-closed signal a termination sends).
    await pool.execute(
        "UPDATE attempts SET status = 'terminated', end_reason = 'terminated' WHERE id = $1::uuid", attempt_id
    )
    terminated = await AttemptStore(pool).get(attempt_id)
    assert terminated is not None
    await world.node.app[ATTEMPTS].ended(terminated)
    (control,) = platform.services.controls
    assert control["action"] == "terminate" and control["attempt_number"] == "1"
    assert control["user"] == {"iss": platform.url, "sub": "sub-learner-1"}
    assert control["resource_link"] == {"id": "link-1"}
    # With a bearer token the platform issued for the tool's verified client assertion.
    assert platform.services.assertions and platform.services.refused_assertions == []
