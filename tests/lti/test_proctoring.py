"""LTI Proctoring Services: LtiStartProctoring → consent and system check → LtiStartAssessment
(verified with the tool's JWKS) → LtiEndAssessment ends the attempt; a proctor's termination is
reported through the Assessment Control Service."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from rooms.lti import CLAIM, END_ASSESSMENT, PROCTORING_CLAIM, START_PROCTORING
from rooms.store.attempts import AttemptStore
from server.keys import ATTEMPTS
from tests.support.lti_records import (
    LtiNode,
    insert_attempt,
    insert_link,
    insert_lti_user,
    insert_platform,
    insert_tool_key,
    launch_for,
    tool_jwks_of,
)
from tests.support.lti_services import PlatformServices, decode_form_jwt
from tests.support.node import EXAM_BODY, bearer

pytestmark = pytest.mark.timeout(60)

START = re.compile(r'action="/lti/proctoring/([^"]+)/start"')
AUTOPOST = re.compile(
    r'<form method="post" action="([^"]+)" data-autopost>\s*<input type="hidden" name="JWT" value="([^"]+)">'
)


async def room(client: TestClient[Any, Any]) -> tuple[str, str]:
    resp = await client.post("/api/exams", json=EXAM_BODY, headers=bearer())
    exam_id = (await resp.json())["id"]
    resp = await client.post(f"/api/exams/{exam_id}/rooms", json={"name": "Proctored", "seats": 10}, headers=bearer())
    return exam_id, (await resp.json())["id"]


def start_claims(platform: PlatformServices, attempt_number: int = 1) -> dict[str, Any]:
    return {
        CLAIM + "resource_link": {"id": "quiz-7"},
        PROCTORING_CLAIM + "attempt_number": attempt_number,
        PROCTORING_CLAIM + "start_assessment_url": platform.form_url("start-assessment"),
        PROCTORING_CLAIM + "session_data": "platform-session-abc",
        PROCTORING_CLAIM + "acs": {"assessment_control_url": platform.acs_url, "actions": ["terminate", "flag"]},
    }


async def start_proctoring(lti_node: LtiNode, name: str) -> str:
    resp = await lti_node.client.post(f"/lti/test-launch/{name}")
    page = await resp.text()
    assert resp.status == 200, page
    match = START.search(page)
    assert match, page
    return f"/lti/proctoring/{match.group(1)}/start"


async def test_start_proctoring_consent_start_assessment_and_end_assessment(
    lti_node: LtiNode, lti_db: asyncpg.Pool, platform_services: PlatformServices
) -> None:
    client = lti_node.client
    exam_id, room_id = await room(client)
    await insert_tool_key(lti_db)
    platform_id = await insert_platform(
        lti_db,
        issuer=platform_services.issuer,
        client_id=platform_services.client_id,
        token_url=platform_services.token_url,
    )
    await insert_link(lti_db, platform_id, room_id, resource_link_id="quiz-7")
    student_id = await insert_lti_user(lti_db, platform_id, "sam")
    attempt_id = await insert_attempt(lti_db, exam_id, room_id, student_id)
    lti_node.launches["start"] = await launch_for(
        lti_db, platform_id, START_PROCTORING, "sam", start_claims(platform_services)
    )

    resp = await client.post("/lti/test-launch/start")
    page = await resp.text()
    assert 'id="consent"' in page and "/static/js/lti-proctoring.js" in page and 'id="checks"' in page
    start_url = await start_proctoring(lti_node, "start")

    resp = await client.post(start_url, data={})
    assert resp.status == 400 and "agree" in await resp.text()  # no consent, no assessment
    resp = await client.post(start_url, data={"consent": "yes"})
    posted = AUTOPOST.search(await resp.text())
    assert posted
    assert posted.group(1) == platform_services.form_url("start-assessment")
    claims = decode_form_jwt(posted.group(2), await tool_jwks_of(lti_db), audience=platform_services.issuer)
    assert claims["iss"] == platform_services.client_id and claims["sub"] == "sam"
    assert claims[CLAIM + "message_type"] == "LtiStartAssessment"
    assert claims[CLAIM + "deployment_id"] == "d1"
    assert claims[CLAIM + "resource_link"] == {"id": "quiz-7"}
    assert claims[PROCTORING_CLAIM + "attempt_number"] == "1"
    assert claims[PROCTORING_CLAIM + "session_data"] == "platform-session-abc"  # echoed
    assert claims[PROCTORING_CLAIM + "end_assessment_return"] is True
    resp = await client.post(start_url, data={"consent": "yes"})
    assert resp.status == 410  # once

    # The platform's LtiEndAssessment: the proctoring session ends, and so does the attempt.
    end = {CLAIM + "resource_link": {"id": "quiz-7"}, PROCTORING_CLAIM + "attempt_number": "1"}
    lti_node.launches["end"] = await launch_for(lti_db, platform_id, END_ASSESSMENT, "sam", end)
    resp = await client.post("/lti/test-launch/end")
    assert resp.status == 200 and "Proctoring has ended" in await resp.text()
    attempt = await AttemptStore(lti_db).get(attempt_id)
    assert attempt is not None and attempt.status == "submitted" and attempt.end_reason == "platform"
    resp = await client.post("/lti/test-launch/end")
    assert resp.status == 400  # nothing left running


async def test_a_terminated_attempt_is_reported_to_the_assessment_control_service(
    lti_node: LtiNode, lti_db: asyncpg.Pool, platform_services: PlatformServices
) -> None:
    client = lti_node.client
    exam_id, room_id = await room(client)
    await insert_tool_key(lti_db)
    platform_id = await insert_platform(
        lti_db,
        issuer=platform_services.issuer,
        client_id=platform_services.client_id,
        token_url=platform_services.token_url,
    )
    await insert_link(lti_db, platform_id, room_id, resource_link_id="quiz-7")
    student_id = await insert_lti_user(lti_db, platform_id, "tess")
    attempt_id = await insert_attempt(lti_db, exam_id, room_id, student_id)
    lti_node.launches["start"] = await launch_for(
        lti_db, platform_id, START_PROCTORING, "tess", start_claims(platform_services, 2)
    )
    start_url = await start_proctoring(lti_node, "start")
    resp = await client.post(start_url, data={"consent": "yes"})
    assert AUTOPOST.search(await resp.text())

    await lti_db.execute(
        "UPDATE attempts SET status = 'terminated', end_reason = 'terminated' WHERE id = $1::uuid", attempt_id
    )
    terminated = await AttemptStore(lti_db).get(attempt_id)
    assert terminated is not None
    await client.app[ATTEMPTS].ended(terminated)  # what a proctor's terminate sends (attempt-closed)

    (control,) = platform_services.controls
    assert control["action"] == "terminate"
    assert control["user"] == {"iss": platform_services.issuer, "sub": "tess"}
    assert control["resource_link"] == {"id": "quiz-7"} and control["attempt_number"] == "2"
    # The control service takes only a token with the control scope, from a verified assertion.
    assert platform_services.assertions and not platform_services.refused_assertions


async def test_an_incomplete_start_proctoring_is_a_clear_page(
    lti_node: LtiNode, lti_db: asyncpg.Pool, platform_services: PlatformServices
) -> None:
    await insert_tool_key(lti_db)
    platform_id = await insert_platform(
        lti_db,
        issuer=platform_services.issuer,
        client_id=platform_services.client_id,
        token_url=platform_services.token_url,
    )
    claims = start_claims(platform_services)
    del claims[PROCTORING_CLAIM + "start_assessment_url"]
    lti_node.launches["bad"] = await launch_for(lti_db, platform_id, START_PROCTORING, "sam", claims)
    resp = await lti_node.client.post("/lti/test-launch/bad")
    assert resp.status == 400 and 'role="alert"' in await resp.text()
