"""The room dashboard's "Not joined yet" list for a room linked to a course (NRPS), in Chromium:
the proctor imports the roster with the page's button and sees who has not joined."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import expect

from tests.e2e.test_exam_flow import open_teacher
from tests.support.browser import Browsers, Node
from tests.support.lti_records import (
    insert_attempt,
    insert_link,
    insert_lti_user,
    insert_platform,
    insert_tool_key,
)
from tests.support.lti_services import PlatformServices

pytestmark = pytest.mark.slow


async def test_the_dashboard_lists_who_of_the_course_has_not_joined(
    browsers: Browsers, node: Node, face_video: Path, lti_db: asyncpg.Pool, platform_services: PlatformServices
) -> None:
    room = await node.room()
    await insert_tool_key(lti_db)
    platform_id = await insert_platform(
        lti_db,
        issuer=platform_services.issuer,
        client_id=platform_services.client_id,
        token_url=platform_services.token_url,
    )
    await insert_link(lti_db, platform_id, room["id"], memberships_url=platform_services.memberships_url("c1"))
    learner = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
    platform_services.members = [
        {"user_id": name, "roles": [learner], "name": name.title()} for name in ("ann", "bob", "cat")
    ]
    joined = await insert_lti_user(lti_db, platform_id, "bob")
    await insert_attempt(lti_db, room["exam"]["id"], room["id"], joined)

    teacher = await open_teacher(browsers, node, room["id"], await node.teacher_token([room["id"]]), face_video)
    section = teacher.get_by_role("region", name="Not joined yet (0)")
    await expect(section).to_be_visible()
    await teacher.get_by_role("button", name="Import the course roster").click()
    await expect(teacher.get_by_role("status").filter(has_text="Imported 3 students.")).to_be_visible()
    listed = teacher.get_by_role("list", name="Not joined yet (2)")
    await expect(listed.get_by_role("listitem")).to_have_text(["Ann", "Cat"])
