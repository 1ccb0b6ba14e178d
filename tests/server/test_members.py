"""Roles per room over REST, against a real node and Postgres: owners add, list and remove
colleagues by email (audited); proctors and reviewers may not, and learn nothing about
which emails exist; a role gives exactly its actions; `GET /api/me/rooms` counts live."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from server.keys import AUDIT, POOL
from tests.support.live import Live
from tests.support.members import create_account, member
from tests.support.node import ADMIN, bearer


async def call(live: Live, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    async with live.http.request(method, live.url + path, json=body, headers=bearer(token)) as resp:
        return resp.status, await resp.json()


async def owned_room(live: Live) -> tuple[dict[str, Any], str, str]:
    """A room whose exam a fresh teacher created: (room, that teacher's sub, token)."""
    sub = f"t-{uuid.uuid4().hex[:8]}"
    token = await live.teacher_token([], sub=sub)
    exam = await live.rest(
        "POST",
        "/api/exams",
        {"title": "Roles", "duration_minutes": 30, "questions": [{"id": "q1", "kind": "text", "text": "Why?"}]},
        token=token,
    )
    room = await live.rest("POST", f"/api/exams/{exam['id']}/rooms", {"name": "R", "seats": 5}, token=token)
    return room, sub, token


async def test_owner_adds_lists_and_removes_a_colleague_by_email(live: Live) -> None:
    room, owner_sub, owner = await owned_room(live)
    path = f"/api/rooms/{room['id']}/members"
    email = f"Ada-{uuid.uuid4().hex[:6]}@Example.org"
    ada = await create_account(live, email, "Ada Lovelace")

    status, added = await call(live, "POST", path, owner, {"email": email.lower(), "role": "reviewer"})
    assert status == 200, added
    assert added == {"room_id": room["id"], "subject": ada, "name": "Ada Lovelace", "role": "reviewer"}
    # Adding again with another role changes the role (one row per colleague).
    status, _ = await call(live, "POST", path, owner, {"email": email, "role": "proctor"})
    assert status == 200

    status, listed = await call(live, "GET", path, owner)
    assert status == 200
    members = {m["subject"]: m for m in listed["members"]}
    assert members[owner_sub]["role"] == "owner" and members[owner_sub]["source"] == "exam creator"
    assert members[ada]["role"] == "proctor" and members[ada]["email"] == email
    assert members[ada]["name"] == "Ada Lovelace" and members[ada]["added_by"] == owner_sub
    assert len(members) == 2

    status, removed = await call(live, "DELETE", path, owner, {"email": email})
    assert (status, removed["removed"]) == (200, True)
    status, again = await call(live, "DELETE", path, owner, {"subject": ada})
    assert (status, again["removed"]) == (200, False)  # idempotent
    status, listed = await call(live, "GET", path, owner)
    assert [m["subject"] for m in listed["members"]] == [owner_sub]

    # Every role change is in the audit log, with who did it.
    entries = await live.app[AUDIT].entries("room", room["id"])  # type: ignore[attr-defined]
    changes = [
        (e["action"], e["actor_id"], e["details"].get("role"), e["details"].get("previous"))
        for e in entries
        if e["action"].startswith("room.member.")
    ]
    assert changes == [
        ("room.member.set", owner_sub, "reviewer", None),
        ("room.member.set", owner_sub, "proctor", "reviewer"),
        ("room.member.remove", owner_sub, None, "proctor"),
    ]


async def test_only_owners_manage_members_and_ask_about_emails(live: Live) -> None:
    room, _, owner = await owned_room(live)
    path = f"/api/rooms/{room['id']}/members"
    _, proctor = await member(live, room["id"], "proctor", owner, "p")
    _, reviewer = await member(live, room["id"], "reviewer", owner, "r")
    _, _, other_owner = await owned_room(live)  # owns another room
    target = f"t-{uuid.uuid4().hex[:6]}@example.org"
    await create_account(live, target)
    unknown = f"nobody-{uuid.uuid4().hex[:6]}@example.org"
    for token in (proctor, reviewer, other_owner):
        for method, body in (
            ("GET", None),
            ("POST", {"email": target, "role": "owner"}),
            ("POST", {"email": unknown, "role": "owner"}),
            ("DELETE", {"email": target}),
            ("DELETE", {"email": unknown}),
        ):
            status, data = await call(live, method, path, token, body)
            # Refused before the email is looked up: the same answer for a known and an unknown one.
            assert status == 403, (method, body, status, data)
            assert data["error"]["code"] == "forbidden"
            assert "account" not in data["error"]["message"], data
    # None of the refused calls changed anything.
    rows = await live.app[POOL].fetch(  # type: ignore[attr-defined]
        "SELECT role FROM room_members WHERE room_id = $1::uuid ORDER BY role", room["id"]
    )
    assert [r["role"] for r in rows] == ["proctor", "reviewer"]


async def test_unknown_or_inactive_email_is_404_and_says_no_more(live: Live) -> None:
    room, _, owner = await owned_room(live)
    path = f"/api/rooms/{room['id']}/members"
    disabled = f"gone-{uuid.uuid4().hex[:6]}@example.org"
    await create_account(live, disabled, "Gone", state="disabled")
    bodies = []
    for email in (f"nobody-{uuid.uuid4().hex[:6]}@example.org", disabled):
        for method, body in (("POST", {"email": email, "role": "reviewer"}), ("DELETE", {"email": email})):
            status, data = await call(live, method, path, owner, body)
            assert status == 404, data
            bodies.append(data)
    # The person's text is the category's, the same for both: it tells no more than the code.
    texts = {b["error"].pop("text", None) for b in bodies}
    assert len(texts) == 1, texts
    assert all(b == {"error": {"code": "not_found", "message": "no account with that email"}} for b in bodies), bodies


async def test_members_input_and_the_creators_ownership(live: Live) -> None:
    room, owner_sub, owner = await owned_room(live)
    path = f"/api/rooms/{room['id']}/members"
    for body in (
        {"email": "not-an-email", "role": "reviewer"},
        {"email": "a@b.c", "role": "admin"},
        {"email": "a@b.c", "role": "owner", "extra": 1},
    ):
        status, data = await call(live, "POST", path, owner, body)
        assert status == 400 and data["error"]["code"] == "invalid", (body, data)
    for body in ({}, {"email": "a@b.c", "subject": "x"}):
        status, data = await call(live, "DELETE", path, owner, body)
        assert status == 400 and data["error"]["code"] == "invalid", (body, data)
    # The exam's creator owns its rooms and cannot be removed.
    status, data = await call(live, "DELETE", path, owner, {"subject": owner_sub})
    assert status == 409, data
    status, data = await call(live, "GET", f"/api/rooms/{uuid.uuid4()}/members", owner)
    assert status == 404, data


async def test_a_role_gives_its_actions_and_removal_takes_them(live: Live) -> None:
    room, _, owner = await owned_room(live)
    rid = room["id"]
    reviewer_sub, reviewer = await member(live, rid, "reviewer", owner, "r")
    _, proctor = await member(live, rid, "proctor", owner, "p")
    _, co_owner = await member(live, rid, "owner", owner, "o")
    invite = {"students": [{"id": "s-1"}]}
    expected: list[tuple[str, str, Any, tuple[bool, bool, bool]]] = [
        # (method, path, body, who of (reviewer, proctor, co_owner) may)
        ("GET", f"/api/rooms/{rid}/attempts", None, (True, True, True)),
        ("GET", f"/api/rooms/{rid}/report.csv", None, (True, True, True)),
        ("GET", f"/api/exams/{room['exam_id']}", None, (True, True, True)),
        ("POST", f"/api/rooms/{rid}/invites", invite, (False, True, True)),
        ("GET", f"/api/rooms/{rid}/members", None, (False, False, True)),
        ("POST", f"/api/exams/{room['exam_id']}/rooms", {"name": "More", "seats": 2}, (False, False, True)),
    ]
    for method, path, body, allowed in expected:
        for token, may in zip((reviewer, proctor, co_owner), allowed, strict=True):
            async with live.http.request(method, live.url + path, json=body, headers=bearer(token)) as resp:
                assert (resp.status < 300) == may, (method, path, may, resp.status, await resp.text())
    # The co-owner removes the reviewer: the reviewer's next call is refused.
    status, _ = await call(live, "DELETE", f"/api/rooms/{rid}/members", co_owner, {"subject": reviewer_sub})
    assert status == 200
    status, data = await call(live, "GET", f"/api/rooms/{rid}/attempts", reviewer)
    assert status == 403, data


async def test_my_rooms_shows_roles_and_live_counts(live: Live) -> None:
    room, _, owner = await owned_room(live)
    other = await live.rest("POST", f"/api/exams/{room['exam_id']}/rooms", {"name": "Annex", "seats": 5}, token=owner)
    reviewer_sub, reviewer = await member(live, other["id"], "reviewer", owner, "r")

    async def mine(token: str) -> dict[str, dict[str, Any]]:
        status, data = await call(live, "GET", "/api/me/rooms", token)
        assert status == 200, data
        return {r["id"]: r for r in data["rooms"]}

    rooms = await mine(owner)
    assert {rooms[room["id"]]["role"], rooms[other["id"]]["role"]} == {"owner"}
    assert set(await mine(reviewer)) == {other["id"]}
    assert (await mine(reviewer))[other["id"]]["role"] == "reviewer"
    assert (await mine(ADMIN))[room["id"]]["role"] == "admin"
    assert await mine(await live.teacher_token([], sub=reviewer_sub + "-not")) == {}
    counts = ("online", "attempts", "submitted", "flagged")
    assert [rooms[room["id"]][k] for k in counts] == [0, 0, 0, 0]

    a, b = await live.invites(room["id"], 2, prefix=f"s-{uuid.uuid4().hex[:6]}")
    ca, _ = await live.student(a)
    cb, _ = await live.student(b)
    now = {"seq": 1, "kind": "copy", "occurred_at": "2026-01-01T00:00:00+00:00"}
    assert (await ca.call("event", now))["ok"]
    assert (await cb.call("submit"))["ok"]

    async def settled() -> list[int]:
        for _ in range(50):
            got = [(await mine(owner))[room["id"]][k] for k in counts]
            if got == [1, 2, 1, 1]:
                return got
            await asyncio.sleep(0.1)
        return got

    assert await settled() == [1, 2, 1, 1]  # A online and flagged, B submitted
    assert [(await mine(owner))[other["id"]][k] for k in counts] == [0, 0, 0, 0]
    await ca.close()
    await cb.close()
