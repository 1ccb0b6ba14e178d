"""The roster (NRPS): a linked room's students imported page by page along `Link: rel=next`,
who has not joined yet, and the refusals (an unlinked room, a platform that answers garbage)."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.support.lti_records import (
    INSTRUCTOR,
    LEARNER,
    insert_attempt,
    insert_link,
    insert_lti_user,
    insert_platform,
    insert_tool_key,
)
from tests.support.lti_services import PlatformServices
from tests.support.node import EXAM_BODY, bearer

pytestmark = pytest.mark.timeout(60)


async def room(client: TestClient[Any, Any]) -> tuple[str, str]:
    resp = await client.post("/api/exams", json=EXAM_BODY, headers=bearer())
    exam_id = (await resp.json())["id"]
    resp = await client.post(f"/api/exams/{exam_id}/rooms", json={"name": "NRPS", "seats": 10}, headers=bearer())
    return exam_id, (await resp.json())["id"]


def member(user_id: str, role: str = LEARNER, status: str = "Active") -> dict[str, Any]:
    return {"user_id": user_id, "roles": [role], "status": status, "name": user_id.title(), "email": f"{user_id}@x.org"}


async def test_the_roster_is_imported_across_pages_and_shows_who_has_not_joined(
    client: TestClient[Any, Any], lti_db: asyncpg.Pool, platform_services: PlatformServices
) -> None:
    exam_id, room_id = await room(client)
    await insert_tool_key(lti_db)
    platform_id = await insert_platform(
        lti_db,
        issuer=platform_services.issuer,
        client_id=platform_services.client_id,
        token_url=platform_services.token_url,
    )
    await insert_link(lti_db, platform_id, room_id, memberships_url=platform_services.memberships_url("course-1"))
    platform_services.members = [
        member("ann"),
        member("teacher", INSTRUCTOR),
        member("bob"),
        member("gone", status="Deleted"),
        member("cat"),
    ]
    platform_services.page_size = 2  # three pages
    joined = await insert_lti_user(lti_db, platform_id, "bob")
    await insert_attempt(lti_db, exam_id, room_id, joined)

    resp = await client.post(f"/api/rooms/{room_id}/lti/roster", headers=bearer())
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["imported"] == 3  # learners only; the deleted one left out

    resp = await client.get(f"/api/rooms/{room_id}/lti/roster", headers=bearer())
    data = await resp.json()
    assert data["linked"] is True
    assert sorted(m["name"] for m in data["members"]) == ["Ann", "Bob", "Cat"]
    assert data["not_joined"] == 2
    assert {m["name"] for m in data["members"] if not m["joined"]} == {"Ann", "Cat"}

    # A second import is the platform's whole list again: who left the course leaves the roster.
    platform_services.members = [member("ann")]
    resp = await client.post(f"/api/rooms/{room_id}/lti/roster", headers=bearer())
    assert (await resp.json())["imported"] == 1

    # Garbage from the platform: a clear 503 in the error shape, and the roster unchanged.
    platform_services.malformed = {"memberships"}
    resp = await client.post(f"/api/rooms/{room_id}/lti/roster", headers=bearer())
    assert resp.status == 503
    body = await resp.json()
    assert body["error"]["code"] == "lti_platform" and "expected JSON" in body["error"]["message"]
    resp = await client.get(f"/api/rooms/{room_id}/lti/roster", headers=bearer())
    assert [m["name"] for m in (await resp.json())["members"]] == ["Ann"]

    # An answer larger than the tool reads (1 MiB) is refused the same way.
    platform_services.malformed = {"huge"}
    resp = await client.post(f"/api/rooms/{room_id}/lti/roster", headers=bearer())
    assert resp.status == 503 and "larger than" in (await resp.json())["error"]["message"]


async def test_an_unlinked_room_has_no_roster_to_import(client: TestClient[Any, Any]) -> None:
    _, room_id = await room(client)
    resp = await client.post(f"/api/rooms/{room_id}/lti/roster", headers=bearer())
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "lti_no_roster"
    resp = await client.get(f"/api/rooms/{room_id}/lti/roster", headers=bearer())
    assert (await resp.json()) == {"room_id": room_id, "linked": False, "members": [], "not_joined": 0}
