"""Grades to the platform (AGS) through the Postgres outbox: the score's JSON, content type and
bearer token from a verified client assertion; a platform that is down, a node restarted in
between, superseding scores, failed deliveries and the admins' retry, malformed answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from rooms.lti_scores import RetryPolicy
from server.app import create_app
from server.keys import ATTEMPTS
from server.lti.services import LTI_SERVICES, LtiServices
from server.settings import Settings
from tests.support.cluster import eventually
from tests.support.lti_records import insert_attempt, insert_link, insert_lti_user, insert_platform, insert_tool_key
from tests.support.lti_services import SCORE_TYPE, PlatformServices
from tests.support.node import EXAM_BODY, bearer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def fast(settings: Settings) -> Settings:
    # Back-off in tens of milliseconds, so a test sees several tries.
    return settings.replace(
        lti_retry_base_seconds=0.05, lti_retry_cap_seconds=0.3, lti_retry_max_tries=50, lti_outbox_poll_seconds=0.05
    )


async def start_node(settings: Settings) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    return client


@pytest.fixture
async def node(fast: Settings) -> AsyncIterator[TestClient[Any, Any]]:
    client = await start_node(fast)
    try:
        yield client
    finally:
        await client.close()


@dataclass
class Linked:
    attempt_id: str
    subject: str
    link_id: str
    room_id: str
    exam_id: str
    platform_id: str


async def linked_attempt(
    client: TestClient[Any, Any], db: asyncpg.Pool, platform: PlatformServices, *, lineitems: bool = True
) -> Linked:
    """An exam and room made over REST, the room bound to a resource link of the platform, and
    a running attempt of one of the platform's learners."""
    resp = await client.post("/api/exams", json=EXAM_BODY, headers=bearer())
    exam_id = (await resp.json())["id"]
    resp = await client.post(f"/api/exams/{exam_id}/rooms", json={"name": "LTI", "seats": 10}, headers=bearer())
    room_id = (await resp.json())["id"]
    await insert_tool_key(db)
    platform_id = await insert_platform(
        db, issuer=platform.issuer, client_id=platform.client_id, token_url=platform.token_url
    )
    link_id = await insert_link(
        db, platform_id, room_id, lineitems_url=platform.lineitems_url("course-1") if lineitems else None
    )
    subject = "learner-" + room_id[:8]
    student_id = await insert_lti_user(db, platform_id, subject)
    attempt_id = await insert_attempt(db, exam_id, room_id, student_id)
    return Linked(attempt_id, subject, link_id, room_id, exam_id, platform_id)


def services_of(client: TestClient[Any, Any]) -> LtiServices:
    app: web.Application = client.app
    return app[LTI_SERVICES]


async def delivered(client: TestClient[Any, Any], attempt_id: str) -> dict[str, Any] | None:
    row = await services_of(client).outbox.state_of(attempt_id)
    return row if row is not None and row["state"] == "delivered" else None


async def test_a_score_reaches_the_platform_with_a_verified_token(
    node: TestClient[Any, Any], lti_db: asyncpg.Pool, platform_services: PlatformServices
) -> None:
    linked = await linked_attempt(node, lti_db, platform_services)
    queued = await services_of(node).grades.publish_grade(linked.attempt_id, 7.5, 10.0, final=True)
    assert queued

    await eventually(lambda: delivered(node, linked.attempt_id), timeout=10, interval=0.05)
    (score,) = platform_services.scores
    assert score.content_type == SCORE_TYPE
    assert score.body["userId"] == linked.subject
    assert (score.body["scoreGiven"], score.body["scoreMaximum"]) == (7.5, 10.0)
    assert (score.body["activityProgress"], score.body["gradingProgress"]) == ("Completed", "FullyGraded")
    assert datetime.fromisoformat(score.body["timestamp"]).tzinfo is not None
    # The line item was created for the resource link (the launch gave none) and remembered.
    (item,) = platform_services.line_items.values()
    assert item["resourceLinkId"] and item["scoreMaximum"] == 10.0 and score.lineitem == item["id"]
    stored = await lti_db.fetchval("SELECT lineitem_url FROM lti_links WHERE id = $1::uuid", linked.link_id)
    assert stored == item["id"]
    # The token came from a client assertion the platform verified against the tool's JWKS.
    assert platform_services.assertions and not platform_services.refused_assertions
    claims = platform_services.assertions[0]
    assert claims["iss"] == claims["sub"] == platform_services.client_id
    assert claims["aud"] == platform_services.token_url
    assert claims["exp"] - claims["iat"] <= 300


async def test_the_launch_s_own_line_item_is_used_as_it_is(
    node: TestClient[Any, Any], lti_db: asyncpg.Pool, platform_services: PlatformServices
) -> None:
    linked = await linked_attempt(node, lti_db, platform_services, lineitems=False)
    # The platform made the item itself (deep linking's lineItem) and the launch named it.
    item_id = platform_services.lineitems_url("course-1") + "/77?type=proctor"
    platform_services.line_items[item_id.split("?")[0]] = {"id": item_id, "scoreMaximum": 3, "label": "Quiz"}
    await lti_db.execute("UPDATE lti_links SET lineitem_url = $2 WHERE id = $1::uuid", linked.link_id, item_id)
    await services_of(node).grades.publish_grade(linked.attempt_id, 2.0, 3.0, final=True)

    await eventually(lambda: delivered(node, linked.attempt_id), timeout=10, interval=0.05)
    (score,) = platform_services.scores
    assert score.lineitem == item_id.split("?")[0]  # {lineitem}/scores, the query string kept apart
    assert len(platform_services.line_items) == 1  # nothing created


async def test_submitting_an_lti_attempt_publishes_its_automatic_grade(
    node: TestClient[Any, Any], lti_db: asyncpg.Pool, platform_services: PlatformServices
) -> None:
    linked = await linked_attempt(node, lti_db, platform_services)
    await node.app[ATTEMPTS].submit(linked.attempt_id)

    # Step 12 grades at close and its grade signal queues the score: one delivery, the grade's.
    await eventually(lambda: delivered(node, linked.attempt_id), timeout=10, interval=0.05)
    (score,) = platform_services.scores
    grade, grade_max, final = await lti_db.fetchrow(
        "SELECT grade, grade_max, grade_final FROM attempts WHERE id = $1::uuid", linked.attempt_id
    )
    assert (score.body["scoreGiven"], score.body["scoreMaximum"]) == (grade, grade_max)
    # Nothing was answered: every question, the essay too, scores 0 at once, so the grade is final.
    assert final and grade == 0
    assert (score.body["activityProgress"], score.body["gradingProgress"]) == ("Completed", "FullyGraded")


async def test_an_attempt_outside_lti_is_not_queued(
    node: TestClient[Any, Any], lti_db: asyncpg.Pool, platform_services: PlatformServices
) -> None:
    linked = await linked_attempt(node, lti_db, platform_services)
    exam_id, room_id = linked.exam_id, linked.room_id
    plain = await insert_attempt(lti_db, exam_id, room_id, "plain-student")  # not a platform user
    assert not await services_of(node).grades.publish_grade(plain, 1.0, 2.0, final=True)
    assert await services_of(node).outbox.state_of(plain) is None


async def test_a_platform_that_is_down_gets_retries_then_the_score(
    node: TestClient[Any, Any], lti_db: asyncpg.Pool, platform_services: PlatformServices
) -> None:
    linked = await linked_attempt(node, lti_db, platform_services)
    await platform_services.stop()
    await services_of(node).grades.publish_grade(linked.attempt_id, 3.0, 4.0, final=True)

    async def retried() -> dict[str, Any] | None:
        row = await services_of(node).outbox.state_of(linked.attempt_id)
        return row if row is not None and row["tries"] >= 3 else None

    row = await eventually(retried, timeout=10, interval=0.05)
    assert row["state"] == "pending" and "could not be reached" in row["last_error"]
    await platform_services.start()
    await eventually(lambda: delivered(node, linked.attempt_id), timeout=10, interval=0.05)
    assert [s.body["scoreGiven"] for s in platform_services.scores] == [3.0]


async def test_a_restart_loses_nothing_and_delivers_the_final_score_once(
    fast: Settings, lti_db: asyncpg.Pool, platform_services: PlatformServices
) -> None:
    first = await start_node(fast)
    try:
        linked = await linked_attempt(first, lti_db, platform_services)
        await platform_services.stop()
        grades = services_of(first).grades
        await grades.publish_grade(linked.attempt_id, 5.0, 10.0, final=False)  # the automatic part
        await grades.publish_grade(linked.attempt_id, 8.0, 10.0, final=True)  # after manual grading
        await asyncio.sleep(0.3)  # a few failed tries
    finally:
        await first.close()
    row = await lti_db.fetchrow(
        "SELECT state, tries FROM lti_grade_outbox WHERE attempt_id = $1::uuid", linked.attempt_id
    )
    assert row is not None and row["state"] == "pending" and row["tries"] >= 1

    await platform_services.start()
    second = await start_node(fast)
    try:
        await eventually(lambda: delivered(second, linked.attempt_id), timeout=10, interval=0.05)
        await asyncio.sleep(0.3)  # nothing else arrives afterwards
    finally:
        await second.close()
    assert len(platform_services.scores) == 1
    body = platform_services.scores[0].body
    assert (body["scoreGiven"], body["gradingProgress"], body["activityProgress"]) == (8.0, "FullyGraded", "Completed")


async def test_a_newer_score_supersedes_and_timestamps_increase(
    node: TestClient[Any, Any], lti_db: asyncpg.Pool, platform_services: PlatformServices
) -> None:
    linked = await linked_attempt(node, lti_db, platform_services)
    grades = services_of(node).grades
    await grades.publish_grade(linked.attempt_id, 5.0, 10.0, final=False)
    await eventually(lambda: delivered(node, linked.attempt_id), timeout=10, interval=0.05)
    await grades.publish_grade(linked.attempt_id, 9.0, 10.0, final=True)

    async def two() -> bool:
        return len(platform_services.scores) == 2 and bool(await delivered(node, linked.attempt_id))

    await eventually(two, timeout=10, interval=0.05)
    first, second = (s.body for s in platform_services.scores)
    assert first["gradingProgress"] == "PendingManual" and second["gradingProgress"] == "FullyGraded"
    assert datetime.fromisoformat(first["timestamp"]) < datetime.fromisoformat(second["timestamp"])
    assert all(s.applied for s in platform_services.scores)
    # One row per attempt, one line item per link.
    assert (
        await lti_db.fetchval("SELECT count(*) FROM lti_grade_outbox WHERE attempt_id = $1::uuid", linked.attempt_id)
        == 1
    )
    assert len(platform_services.line_items) == 1
    # One access token served both deliveries (cached until shortly before it expires).
    assert len(platform_services.assertions) == 1


async def test_malformed_answers_never_stop_the_worker(
    node: TestClient[Any, Any], lti_db: asyncpg.Pool, platform_services: PlatformServices
) -> None:
    linked = await linked_attempt(node, lti_db, platform_services)
    grades = services_of(node).grades
    for bad in ("token", "lineitems", "scores"):
        platform_services.malformed = {bad}
        await grades.publish_grade(linked.attempt_id, 1.0, 2.0, final=True)

        async def failed_try() -> dict[str, Any] | None:
            row = await services_of(node).outbox.state_of(linked.attempt_id)
            return row if row is not None and row["tries"] >= 2 else None

        row = await eventually(failed_try, timeout=10, interval=0.05)
        assert row["state"] == "pending" and row["last_error"], (bad, row)
    platform_services.malformed = set()
    await eventually(lambda: delivered(node, linked.attempt_id), timeout=10, interval=0.05)
    assert platform_services.scores[-1].body["scoreGiven"] == 1.0


async def test_a_failed_delivery_is_listed_for_admins_and_retried(
    fast: Settings, lti_db: asyncpg.Pool, platform_services: PlatformServices
) -> None:
    client = await start_node(fast.replace(lti_retry_max_tries=2))
    try:
        linked = await linked_attempt(client, lti_db, platform_services)
        platform_services.fail_scores = 2
        await services_of(client).grades.publish_grade(linked.attempt_id, 2.0, 2.0, final=True)

        async def failed() -> list[dict[str, Any]]:
            resp = await client.get("/api/lti/outbox?state=failed", headers=bearer())
            assert resp.status == 200
            return [d for d in (await resp.json())["deliveries"] if d["attempt_id"] == linked.attempt_id]

        (row,) = await eventually(failed, timeout=10, interval=0.05)
        assert row["tries"] == 2 and "503" in row["last_error"]
        resp = await client.get("/api/lti/outbox?state=nonsense", headers=bearer())
        assert resp.status == 400
        resp = await client.post(f"/api/lti/outbox/{row['id']}/retry", headers=bearer())
        assert resp.status == 200, await resp.text()
        await eventually(lambda: delivered(client, linked.attempt_id), timeout=10, interval=0.05)
        resp = await client.post(f"/api/lti/outbox/{row['id']}/retry", headers=bearer())
        assert resp.status == 404  # no longer failed
    finally:
        await client.close()


def test_back_off_doubles_up_to_the_cap_with_jitter() -> None:
    policy = RetryPolicy(base_seconds=1.0, cap_seconds=8.0, max_tries=5)
    for tries, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)):
        delays = [policy.delay(tries) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (tries, min(delays), max(delays))
        assert max(delays) - min(delays) > ceiling / 10  # jittered, not one fixed value
    assert not policy.exhausted(4) and policy.exhausted(5)


async def test_a_delivery_overtaken_in_flight_leaves_the_newer_score_pending(
    fast: Settings, lti_db: asyncpg.Pool, platform_services: PlatformServices
) -> None:
    # No node here (no worker racing the test): the outbox's own contract, on the real table.
    from rooms.lti_scores import progress_of
    from rooms.store.lti_outbox import GradeOutbox

    client = await start_node(fast.replace(lti_outbox_poll_seconds=300))
    try:
        linked = await linked_attempt(client, lti_db, platform_services)
    finally:
        await client.close()
    outbox = GradeOutbox(lti_db)
    target = await outbox.target(linked.attempt_id)
    assert target is not None and target.user_id == linked.subject
    await outbox.enqueue(linked.attempt_id, target, 1.0, 2.0, progress_of(1.0, final=False))
    claimed = [d for d in await outbox.claim(100, 60) if d.attempt_id == linked.attempt_id]
    (in_flight,) = claimed
    await outbox.enqueue(linked.attempt_id, target, 2.0, 2.0, progress_of(2.0, final=True))  # while it is sent
    assert not await outbox.delivered(in_flight)  # the old version may not close the new one
    row = await outbox.state_of(linked.attempt_id)
    assert row is not None and row["state"] == "pending" and row["score_given"] == 2.0 and row["tries"] == 0
    (again,) = [d for d in await outbox.claim(100, 60) if d.attempt_id == linked.attempt_id]
    assert again.version == in_flight.version + 1 and again.scored_at > in_flight.scored_at
    assert await outbox.delivered(again)


async def test_a_submitted_attempt_without_a_queued_grade_is_queued_at_start(
    fast: Settings, lti_db: asyncpg.Pool, platform_services: PlatformServices
) -> None:
    first = await start_node(fast)
    try:
        linked = await linked_attempt(first, lti_db, platform_services)
    finally:
        await first.close()
    # Submitted while no node published it (a node that died between the commit and the enqueue).
    await lti_db.execute(
        "UPDATE attempts SET status = 'submitted', submitted_at = now() WHERE id = $1::uuid", linked.attempt_id
    )
    second = await start_node(fast)
    try:
        # The outbox's start-up sweep queues it, and the grading sweeper grades it (its grade
        # signal queues the score again, superseding): whichever goes first, the platform ends
        # with the attempt's grade — nothing answered, so 0 and final.
        async def graded_score_arrived() -> bool:
            return bool(platform_services.scores) and platform_services.scores[-1].body.get("scoreGiven") == 0

        await eventually(graded_score_arrived, timeout=15, interval=0.05)
    finally:
        await second.close()
    score = platform_services.scores[-1]
    assert (score.body["activityProgress"], score.body["gradingProgress"]) == ("Completed", "FullyGraded")
