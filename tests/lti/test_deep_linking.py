"""Deep linking: the instructor's choice page, the LtiDeepLinkingResponse JWT (verified here with
the tool's JWKS, every claim checked), the binding the first launch reads, and the refusals."""

from __future__ import annotations

import re
import uuid
from typing import Any

import aiohttp
import asyncpg
import pytest

from rooms.exam import ExamSpec
from rooms.lti import CLAIM, DEEP_LINKING_REQUEST, DL_CLAIM
from rooms.store.lti_deep_links import DeepLinkStore
from server.keys import CATALOG
from tests.support.lti_records import (
    INSTRUCTOR,
    LEARNER,
    LtiNode,
    insert_lti_user,
    insert_platform,
    insert_tool_key,
    launch_for,
    tool_jwks_of,
)
from tests.support.lti_services import PlatformServices, decode_form_jwt
from tests.support.node import EXAM_BODY

pytestmark = pytest.mark.timeout(60)

CHOICE = re.compile(r'action="/lti/deep-linking/([^"]+)"')
AUTOPOST = re.compile(
    r'<form method="post" action="([^"]+)" data-autopost>\s*<input type="hidden" name="JWT" value="([^"]+)">'
)


def dl_claims(platform: PlatformServices) -> dict[str, Any]:
    return {
        DL_CLAIM + "deep_linking_settings": {
            "deep_link_return_url": platform.form_url("deep-link-return"),
            "accept_types": ["ltiResourceLink"],
            "accept_presentation_document_targets": ["iframe", "window"],
            "data": "platform-opaque-42",
        }
    }


async def setup(
    lti_node: LtiNode, lti_db: asyncpg.Pool, platform: PlatformServices, issuer: str = ""
) -> tuple[str, str, Any]:
    """A platform whose issuer may differ from its host (Canvas: `https://canvas.instructure.com`)."""
    await insert_tool_key(lti_db)
    platform_id = await insert_platform(
        lti_db,
        issuer=issuer or platform.issuer,
        client_id=platform.client_id,
        token_url=platform.token_url,
        auth_login_url=platform.url + "/auth",
    )
    account_id = str(uuid.uuid4())
    await insert_lti_user(lti_db, platform_id, "prof", roles=(INSTRUCTOR,), account_id=account_id)
    exam = await lti_node.client.app[CATALOG].create_exam(ExamSpec.model_validate(EXAM_BODY), created_by=account_id)
    lti_node.launches["dl"] = await launch_for(
        lti_db, platform_id, DEEP_LINKING_REQUEST, "prof", dl_claims(platform), roles=(INSTRUCTOR,)
    )
    return platform_id, account_id, exam


async def test_an_instructor_links_an_exam_and_the_platform_gets_a_signed_resource_link(
    lti_node: LtiNode, lti_db: asyncpg.Pool, platform_services: PlatformServices
) -> None:
    client = lti_node.client
    issuer = "https://canvas.instructure.com"  # as Canvas: the issuer is not the host that frames the tool
    platform_id, _, exam = await setup(lti_node, lti_db, platform_services, issuer)

    resp = await client.post("/lti/test-launch/dl")
    page = await resp.text()
    assert resp.status == 200, page
    assert exam.title in page and 'name="exam"' in page
    # The registered platforms may frame it (server/lti/frames.py: issuers' and login URLs'
    # origins), here the platform's own host, which only its login URL names; nobody else.
    csp = resp.headers["Content-Security-Policy"]
    ancestors = csp.split("frame-ancestors ")[1].split(";")[0].split()
    assert platform_services.url in ancestors and "'none'" not in ancestors
    assert "X-Frame-Options" not in resp.headers
    match = CHOICE.search(page)
    assert match, page
    choice_url = f"/lti/deep-linking/{match.group(1)}"

    resp = await client.post(choice_url, data={"exam": exam.id, "room": "new", "room_name": "Hall B", "seats": "20"})
    answer = await resp.text()
    assert resp.status == 200, answer
    posted = AUTOPOST.search(answer)
    assert posted, answer
    action, token = posted.group(1), posted.group(2)
    assert action == platform_services.form_url("deep-link-return")
    assert platform_services.url in resp.headers["Content-Security-Policy"].split("form-action")[1]

    claims = decode_form_jwt(token, await tool_jwks_of(lti_db), audience=issuer)
    assert claims["iss"] == platform_services.client_id
    assert claims[CLAIM + "message_type"] == "LtiDeepLinkingResponse"
    assert claims[CLAIM + "version"] == "1.3.0"
    assert claims[CLAIM + "deployment_id"] == "d1"
    assert claims[DL_CLAIM + "data"] == "platform-opaque-42"
    assert claims["exp"] - claims["iat"] <= 300
    (item,) = claims[DL_CLAIM + "content_items"]
    assert item["type"] == "ltiResourceLink" and item["title"] == exam.title
    assert item["url"] == "http://proctor.test/lti/launch"
    assert item["lineItem"]["scoreMaximum"] == 3.0  # three questions of one point
    room = await lti_db.fetchrow("SELECT * FROM rooms WHERE id = $1::uuid", item["custom"]["proctor_room"])
    assert room is not None and str(room["exam_id"]) == exam.id and room["name"] == "Hall B" and room["seats"] == 20
    # The first launch of the new link reads the binding, for this platform only.
    store = DeepLinkStore(lti_db)
    binding = item["custom"]["proctor_binding"]
    assert await store.bound_room(platform_id, binding) == str(room["id"])
    assert await store.bound_room(str(uuid.uuid4()), binding) is None

    # The form reaches the platform as a browser would post it.
    async with aiohttp.ClientSession() as http, http.post(action, data={"JWT": token}) as sent:
        assert sent.status == 200
    assert platform_services.forms[-1] == ("deep-link-return", {"JWT": token})

    # The request was one-time.
    resp = await client.post(choice_url, data={"exam": exam.id, "room": "new"})
    assert resp.status == 410


async def test_an_existing_room_or_a_new_exam_can_be_chosen(
    lti_node: LtiNode, lti_db: asyncpg.Pool, platform_services: PlatformServices
) -> None:
    client = lti_node.client
    _, account_id, exam = await setup(lti_node, lti_db, platform_services)
    existing = await client.app[CATALOG].create_room(exam, "Hall A", 5)
    jwks = None

    resp = await client.post("/lti/test-launch/dl")
    page = await resp.text()
    assert "Hall A" in page
    match = CHOICE.search(page)
    assert match
    resp = await client.post(f"/lti/deep-linking/{match.group(1)}", data={"exam": exam.id, "room": existing.id})
    posted = AUTOPOST.search(await resp.text())
    assert posted
    jwks = await tool_jwks_of(lti_db)
    claims = decode_form_jwt(posted.group(2), jwks, audience=platform_services.issuer)
    assert claims[DL_CLAIM + "content_items"][0]["custom"]["proctor_room"] == existing.id

    resp = await client.post("/lti/test-launch/dl")
    match = CHOICE.search(await resp.text())
    assert match
    form = {"exam": "new", "title": "Physics quiz", "duration_minutes": "20", "question": "Define work."}
    resp = await client.post(f"/lti/deep-linking/{match.group(1)}", data=form)
    posted = AUTOPOST.search(await resp.text())
    assert posted
    claims = decode_form_jwt(posted.group(2), jwks, audience=platform_services.issuer)
    item = claims[DL_CLAIM + "content_items"][0]
    assert item["title"] == "Physics quiz"
    created = await lti_db.fetchrow(
        "SELECT e.* FROM exams e JOIN rooms r ON r.exam_id = e.id WHERE r.id = $1::uuid", item["custom"]["proctor_room"]
    )
    assert created is not None and created["created_by"] == account_id and created["duration_seconds"] == 1200


async def test_refusals_are_clear_pages(
    lti_node: LtiNode, lti_db: asyncpg.Pool, platform_services: PlatformServices
) -> None:
    client = lti_node.client
    platform_id, _, exam = await setup(lti_node, lti_db, platform_services)
    # A learner cannot add content.
    lti_node.launches["student"] = await launch_for(
        lti_db, platform_id, DEEP_LINKING_REQUEST, "prof", dl_claims(platform_services), roles=(LEARNER,)
    )
    resp = await client.post("/lti/test-launch/student")
    assert resp.status == 403 and "Only instructors" in await resp.text()
    # An instructor with no linked account.
    lti_node.launches["unlinked"] = await launch_for(
        lti_db, platform_id, DEEP_LINKING_REQUEST, "nobody", dl_claims(platform_services), roles=(INSTRUCTOR,)
    )
    resp = await client.post("/lti/test-launch/unlinked")
    assert resp.status == 403
    # Settings that do not accept resource links.
    bad = dl_claims(platform_services)
    bad[DL_CLAIM + "deep_linking_settings"]["accept_types"] = ["file"]
    lti_node.launches["files"] = await launch_for(
        lti_db, platform_id, DEEP_LINKING_REQUEST, "prof", bad, roles=(INSTRUCTOR,)
    )
    resp = await client.post("/lti/test-launch/files")
    assert resp.status == 400
    # Someone else's exam, a room of another exam, bad numbers: refused, and the page stays usable.
    other = await client.app[CATALOG].create_exam(ExamSpec.model_validate(EXAM_BODY), created_by="someone-else")
    other_room = await client.app[CATALOG].create_room(other, "Theirs", 5)
    resp = await client.post("/lti/test-launch/dl")
    match = CHOICE.search(await resp.text())
    assert match
    url = f"/lti/deep-linking/{match.group(1)}"
    for form in (
        {"exam": other.id},
        {"exam": exam.id, "room": other_room.id},
        {"exam": exam.id, "seats": "0"},
        {"exam": "not-a-uuid"},
    ):
        resp = await client.post(url, data=form)
        assert resp.status in (400, 403, 404), (form, resp.status)
        assert 'role="alert"' in await resp.text()
    resp = await client.post(url, data={"exam": exam.id})
    assert resp.status == 200 and AUTOPOST.search(await resp.text())
    resp = await client.post("/lti/deep-linking/made-up-id", data={"exam": exam.id})
    assert resp.status == 410
