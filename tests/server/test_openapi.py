"""The OpenAPI document is valid, lists every /api route, and each example works."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from server.http.api import ROUTES
from tests.server.test_api import make_exam, make_room
from tests.support.members import example_account
from tests.support.node import bearer

Client = TestClient[Any, Any]


async def test_document_is_valid_and_complete(client: Client) -> None:
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    validate(doc)
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    registered = {
        (r.method, r.resource.canonical)
        for r in client.app.router.routes()
        if r.resource is not None
        and r.resource.canonical.startswith("/api")
        and r.method != "HEAD"
        and r.resource.canonical != "/api/openapi.json"
    }
    assert documented == registered


async def test_every_example_is_accepted(client: Client) -> None:
    doc = await (await client.get("/api/openapi.json")).json()
    exam = await make_exam(client)
    room = await make_room(client, exam["id"])
    from server.keys import POOL

    pool = client.app[POOL]
    # An ended attempt with one flag: the flag example decides it, then the verdict example closes it.
    violation_id, attempt_id = await pool.fetchrow(
        "WITH a AS (INSERT INTO attempts (id, exam_id, room_id, student_id, deadline, status, submitted_at)"
        " VALUES (gen_random_uuid(), $1::uuid, $2::uuid, 's-openapi', now(), 'submitted', now()) RETURNING id)"
        " INSERT INTO violations (attempt_id, seq, source, kind, occurred_at)"
        " SELECT id, 1, 'client', 'copy', now() FROM a RETURNING id, attempt_id::text",
        exam["id"],
        room["id"],
    )
    ids = {"exam_id": exam["id"], "room_id": room["id"], "violation_id": violation_id, "attempt_id": attempt_id}
    ids["question_id"] = "q3"  # the grading example grades the essay of that attempt
    ids["student_id"] = "s-openapi"  # the accommodation example names this student
    # /api/me/* is an account's own: its examples run with a personal token of an account.
    from rooms.accounts import claims_of_account
    from rooms.tokens import ADMIN_STATIC
    from server.keys import ACCOUNTS

    accounts = client.server.app[ACCOUNTS]  # type: ignore[attr-defined]
    account = await accounts.create(ADMIN_STATIC, f"openapi-{violation_id}@example.org", "OpenAPI", "teacher")
    _, personal = await accounts.mint_token(claims_of_account(account, "token:setup"), "openapi", None)
    await example_account(pool)  # the members examples name this colleague
    # The admins' routes: the state example names a spare account; the create example's address is freed.
    from server.http.admin_accounts import EXAMPLE_NEW_ACCOUNT

    await pool.execute("DELETE FROM accounts WHERE lower(email) = $1", EXAMPLE_NEW_ACCOUNT)
    spare = await accounts.create(ADMIN_STATIC, f"openapi-spare-{violation_id}@example.org", "Spare", "teacher")
    ids["account_id"] = spare.id
    from tests.support.access import lti_platform_for_examples

    ids["platform_id"] = await lti_platform_for_examples(client.server.app)  # type: ignore[attr-defined]
    with_body = [(p, m, op) for p, ops in doc["paths"].items() for m, op in ops.items() if "requestBody" in op]
    assert len(with_body) == sum(1 for r in ROUTES if r.body is not None)
    for path, method, op in with_body:
        example = op["requestBody"]["content"]["application/json"]["example"]
        url = path.format(**ids)
        headers = bearer(personal) if path.startswith("/api/me/") else bearer()
        resp = await client.request(method, url, json=example, headers=headers)
        assert resp.status in (200, 201), (path, await resp.text())
        if path == "/api/exams/{exam_id}":
            # An edit after the first attempt makes a new version: the next edit goes there.
            ids["exam_id"] = (await resp.json())["exam"]["id"]
