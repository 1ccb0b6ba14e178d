"""The LTI 1.3 login and launch against a real platform (tests/support/lti_platform.py, built on
`lti1p3platform`) on its own port, with the node's real Postgres: the happy paths of learners and
instructors, and every refusal — each a clear HTML page (never a 500), no attempt, an audit entry.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

import jwt
import pytest

from rooms.lti import CLAIM, student_id_for
from server.keys import POOL, TOKENS
from tests.support.lti_platform import INSTRUCTOR, LtiWorld, new_key, parse_form

pytestmark = pytest.mark.timeout(60)


async def refusals(world: LtiWorld, reason: str) -> list[dict[str, Any]]:
    rows = await world.node.app[POOL].fetch(
        "SELECT actor_id, target_id, details FROM audit_log WHERE action IN ('lti.launch.refused', 'lti.login.refused')"
        " AND details->>'reason' = $1 AND target_id = ANY($2::text[])",
        reason,
        [world.platform.platform_id, "unknown"],
    )
    return [{**dict(r), "details": json.loads(r["details"])} for r in rows]


async def attempts(world: LtiWorld) -> int:
    """Attempts of this platform's users (the session's Postgres holds other tests' too)."""
    ids = [student_id_for(world.platform.platform_id, u.sub) for u in world.platform.users.values()]
    return int(await world.node.app[POOL].fetchval("SELECT count(*) FROM attempts WHERE student_id = ANY($1)", ids))


async def assert_refused(world: LtiWorld, result: tuple[int, str, dict[str, str]], status: int, reason: str) -> None:
    code, body, headers = result
    assert code == status, (code, body[:500])
    assert headers["Content-Type"].startswith("text/html")
    assert f'<code id="lti-reason">{reason}</code>' in body, body[:800]
    assert 'role="alert"' in body
    assert await attempts(world) == 0
    entries = await refusals(world, reason)
    assert entries, f"no audit entry for {reason}"
    # Nothing of the token or the state is audited.
    assert "id_token" not in json.dumps(entries) and "eyJ" not in json.dumps(entries)


async def owned_room(world: LtiWorld) -> dict[str, Any]:
    return await world.instructor_room()


async def bind_as_instructor(world: LtiWorld, room_id: str, link: str = "link-1") -> str:
    """An instructor's first launch shows the binding form; choosing the room lands on its dashboard."""
    _, _, location = await world.login("instructor-1", link)
    code, body, _ = await world.post_launch(await world.platform_launch(location))
    assert code == 200, body[:500]
    form = parse_form(body)  # the first form: an existing room
    assert form.action == "/lti/bind" and room_id in body
    async with world.http.post(
        world.node.url + "/lti/bind", data={"ticket": form.fields["ticket"], "room_id": room_id}, allow_redirects=False
    ) as resp:
        assert resp.status == 303, await resp.text()
        return resp.headers["Location"]


async def test_learner_launch_lands_in_the_exam_with_the_derived_student_id(lti_world: LtiWorld) -> None:
    world = lti_world
    room = await owned_room(world)
    dashboard = await bind_as_instructor(world, room["id"])
    assert dashboard.startswith(f"/teacher/?room={room['id']}&lti=1#token=")

    _, _, location = await world.login("learner-1", "link-1")
    fields = await world.platform_launch(location)
    code, body, headers = await world.post_launch(fields)
    assert code == 303, body
    target = headers["Location"]
    assert target.startswith("/exam/?lti=1#token=")
    token = urllib.parse.unquote(target.split("#token=", 1)[1])
    claims = world.node.app[TOKENS].verify(token)
    assert claims.role == "student"
    assert claims.sub == student_id_for(world.platform.platform_id, "sub-learner-1")
    assert (claims.room_id, claims.exam_id, claims.name) == (room["id"], room["exam"]["id"], "Ada Lovelace")
    # The platform user and the link are recorded; the launch is audited.
    pool = world.node.app[POOL]
    platform_id = world.platform.platform_id
    user = await pool.fetchrow(
        "SELECT student_id, name FROM lti_users WHERE platform_id = $1::uuid AND subject = 'sub-learner-1'", platform_id
    )
    assert user is not None and user["student_id"] == claims.sub
    link = await pool.fetchrow(
        "SELECT room_id::text, context_title, title FROM lti_links WHERE platform_id = $1::uuid", platform_id
    )
    assert link is not None
    assert dict(link) == {"room_id": room["id"], "context_title": "Algebra 101", "title": "Exam link-1"}
    launches = "SELECT count(*) FROM audit_log WHERE action = 'lti.launch' AND target_id = $1"
    assert await pool.fetchval(launches, platform_id) == 2

    # The same id_token posted again: refused as a replay.
    await assert_refused(world, await world.post_launch(fields), 401, "replayed_nonce")


async def test_learner_on_an_unbound_link_sees_not_set_up_yet(lti_world: LtiWorld) -> None:
    _, _, location = await lti_world.login("learner-1", "link-new")
    code, body, _ = await lti_world.post_launch(await lti_world.platform_launch(location))
    assert code == 200 and 'id="lti-not-ready"' in body


async def test_instructor_gets_an_account_and_the_owner_role(lti_world: LtiWorld) -> None:
    world = lti_world
    # A room the instructor does not own yet: the admin binds the link through the instructor's
    # own account first (a second instructor, who has no account, then lands as owner).
    room = await owned_room(world)
    await bind_as_instructor(world, room["id"])
    alan = world.platform.add_user(
        "instructor-2", "Alan Turing", f"alan-{world.platform.port}@example.edu", (INSTRUCTOR,)
    )
    _, _, location = await world.login("instructor-2", "link-1")
    code, body, headers = await world.post_launch(await world.platform_launch(location))
    assert code == 303, body
    token = urllib.parse.unquote(headers["Location"].split("#token=", 1)[1])
    claims = world.node.app[TOKENS].verify(token)
    assert claims.role == "teacher"
    pool = world.node.app[POOL]
    account = await pool.fetchrow("SELECT id::text, email, role FROM accounts WHERE email = $1", alan.email)
    assert account is not None and account["id"] == claims.sub and account["role"] == "teacher"
    role = await pool.fetchval(
        "SELECT role FROM room_members WHERE room_id = $1::uuid AND subject = $2", room["id"], claims.sub
    )
    assert role == "owner"
    linked = await pool.fetchval(
        "SELECT account_id::text FROM lti_users WHERE platform_id = $1::uuid AND subject = 'sub-instructor-2'",
        world.platform.platform_id,
    )
    assert linked == claims.sub
    # The token works on the REST API as the room's owner.
    data = await world.node.rest("GET", f"/api/rooms/{room['id']}/members", token=token)
    assert any(m["subject"] == claims.sub and m["role"] == "owner" for m in data["members"])


async def test_without_link_by_email_an_instructor_never_gets_the_teacher_account_of_that_email(
    lti_world: LtiWorld,
) -> None:
    world = lti_world
    await world.node.rest("PATCH", f"/api/lti/platforms/{world.platform.platform_id}", {"link_by_email": False})
    room = await world.instructor_room()  # a teacher account with instructor-1's email owns it
    _, _, location = await world.login("instructor-1", "link-1")
    code, body, _ = await world.post_launch(await world.platform_launch(location))
    assert code == 200 and 'id="lti-no-rooms"' in body and room["id"] not in body
    pool = world.node.app[POOL]
    linked = await pool.fetchrow(
        "SELECT a.email, a.id::text FROM lti_users u JOIN accounts a ON a.id = u.account_id"
        " WHERE u.platform_id = $1::uuid AND u.subject = 'sub-instructor-1'",
        world.platform.platform_id,
    )
    assert linked is not None and linked["email"].endswith("@lti.invalid")


async def test_bind_to_a_new_room_of_an_exam(lti_world: LtiWorld) -> None:
    world = lti_world
    room = await world.instructor_room()
    _, _, location = await world.login("instructor-1", "link-9")
    _, body, _ = await world.post_launch(await world.platform_launch(location))
    ticket = parse_form(body).fields["ticket"]
    exam_id = room["exam"]["id"]
    async with world.http.post(
        world.node.url + "/lti/bind", data={"ticket": ticket, "exam_id": exam_id}, allow_redirects=False
    ) as resp:
        assert resp.status == 303, await resp.text()
    pool = world.node.app[POOL]
    bound = await pool.fetchrow(
        "SELECT r.id::text, r.name, r.exam_id::text FROM lti_links l JOIN rooms r ON r.id = l.room_id"
        " WHERE l.platform_id = $1::uuid AND l.resource_link_id = 'link-9'",
        world.platform.platform_id,
    )
    assert bound is not None and bound["exam_id"] == exam_id and bound["id"] != room["id"]
    assert bound["name"] == "Exam link-9"
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'lti.link.bind' AND target_id = $1",
            world.platform.platform_id,
        )
        == 1
    )


async def test_bind_form_refuses_a_room_the_instructor_does_not_own(lti_world: LtiWorld) -> None:
    world = lti_world
    await owned_room(world)
    other = await world.node.room()  # the admin's, not the instructor's
    _, _, location = await world.login("instructor-1", "link-1")
    _, body, _ = await world.post_launch(await world.platform_launch(location))
    ticket = parse_form(body).fields["ticket"]
    async with world.http.post(world.node.url + "/lti/bind", data={"ticket": ticket, "room_id": other["id"]}) as resp:
        assert resp.status == 403, await resp.text()
    async with world.http.post(
        world.node.url + "/lti/bind", data={"ticket": ticket + "x", "room_id": other["id"]}
    ) as resp:
        assert resp.status == 401
    bound = "SELECT count(*) FROM lti_links WHERE room_id IS NOT NULL AND platform_id = $1::uuid"
    assert await world.node.app[POOL].fetchval(bound, world.platform.platform_id) == 0


# -- refusals ---------------------------------------------------------------------------------


async def forged(
    world: LtiWorld, *, user: str = "learner-1", link: str = "link-1", **claims: Any
) -> tuple[str, dict[str, Any]]:
    """A fresh login's state and the launch claims lti1p3platform would sign for it."""
    state, nonce, _ = await world.login(user, link)
    message = world.platform.launch_claims(world.platform.users[user], link, nonce)
    message.update(claims)
    return state, message


async def test_wrong_signature(lti_world: LtiWorld) -> None:
    state, message = await forged(lti_world)
    other_key, _ = new_key()
    token = lti_world.platform.sign(message, private_pem=other_key)  # the platform's kid, another key
    await assert_refused(
        lti_world, await lti_world.post_launch({"id_token": token, "state": state}), 401, "bad_signature"
    )


async def test_tampered_payload(lti_world: LtiWorld) -> None:
    state, message = await forged(lti_world)
    head, _, sig = lti_world.platform.sign(message).split(".")
    message["sub"] = "someone-else"
    body = jwt.utils.base64url_encode(
        json.dumps({**message, "iat": int(time.time()), "exp": int(time.time()) + 60}).encode()
    ).decode()
    await assert_refused(
        lti_world,
        await lti_world.post_launch({"id_token": f"{head}.{body}.{sig}", "state": state}),
        401,
        "bad_signature",
    )


async def test_unknown_deployment(lti_world: LtiWorld) -> None:
    state, message = await forged(lti_world, **{CLAIM + "deployment_id": "deployment-unknown"})
    token = lti_world.platform.sign(message)
    await assert_refused(
        lti_world, await lti_world.post_launch({"id_token": token, "state": state}), 403, "unknown_deployment"
    )


async def test_unknown_deployment_at_login(lti_world: LtiWorld) -> None:
    fields = {**lti_world.platform.login_fields("learner-1", "link-1"), "lti_deployment_id": "nope"}
    async with lti_world.http.post(lti_world.node.url + "/lti/login", data=fields, allow_redirects=False) as resp:
        result = (resp.status, await resp.text(), dict(resp.headers))
    await assert_refused(lti_world, result, 403, "unknown_deployment")


async def test_expired_token(lti_world: LtiWorld) -> None:
    state, message = await forged(lti_world)
    token = lti_world.platform.sign(message, now=time.time() - 600, lifetime=300)
    await assert_refused(
        lti_world, await lti_world.post_launch({"id_token": token, "state": state}), 401, "token_expired"
    )


async def test_wrong_audience(lti_world: LtiWorld) -> None:
    state, message = await forged(lti_world, aud="another-tool")
    del message["azp"]  # the audience alone decides
    token = lti_world.platform.sign(message)
    await assert_refused(
        lti_world, await lti_world.post_launch({"id_token": token, "state": state}), 401, "wrong_audience"
    )


async def test_several_audiences_need_our_azp(lti_world: LtiWorld) -> None:
    client = lti_world.platform.client_id
    state, message = await forged(lti_world, aud=[client, "another-tool"], azp="another-tool")
    token = lti_world.platform.sign(message)
    await assert_refused(
        lti_world, await lti_world.post_launch({"id_token": token, "state": state}), 401, "wrong_audience"
    )


async def test_a_different_platforms_key_is_refused_after_a_refetch(lti_world: LtiWorld) -> None:
    world = lti_world
    state, message = await forged(world)
    # Warm the tool's cache of this platform's JWKS with a good launch's first step.
    good_state, good_message = await forged(world, link="link-warm")
    await world.post_launch({"id_token": world.platform.sign(good_message), "state": good_state})
    fetched = world.platform.jwks_fetches
    other_key, _ = new_key()
    token = world.platform.sign(message, private_pem=other_key, kid="another-platforms-kid")
    await assert_refused(world, await world.post_launch({"id_token": token, "state": state}), 401, "unknown_kid")
    assert world.platform.jwks_fetches == fetched + 1  # the unknown kid made the tool fetch again, once


async def test_a_rotated_platform_key_is_fetched_again(lti_world: LtiWorld) -> None:
    from lti1p3platform.registration import Registration

    world = lti_world
    good_state, good_message = await forged(world, link="link-warm")
    await world.post_launch({"id_token": world.platform.sign(good_message), "state": good_state})
    fetched = world.platform.jwks_fetches
    private, public = new_key()
    world.platform.extra_jwks.append({**Registration.get_jwk(public), "kid": "rotated-1"})
    state, message = await forged(world, link="link-new")
    code, body, _ = await world.post_launch(
        {"id_token": world.platform.sign(message, private_pem=private, kid="rotated-1"), "state": state}
    )
    assert code == 200 and "lti-not-ready" in body, body[:400]
    assert world.platform.jwks_fetches == fetched + 1


async def test_bad_state(lti_world: LtiWorld) -> None:
    state, message = await forged(lti_world)
    token = lti_world.platform.sign(message)
    await assert_refused(
        lti_world, await lti_world.post_launch({"id_token": token, "state": state[:-2] + "xx"}), 401, "bad_state"
    )


async def test_state_of_another_login(lti_world: LtiWorld) -> None:
    _, message = await forged(lti_world)
    other_state, _, _ = await lti_world.login()
    token = lti_world.platform.sign(message)
    await assert_refused(
        lti_world, await lti_world.post_launch({"id_token": token, "state": other_state}), 401, "wrong_nonce"
    )


async def test_wrong_issuer(lti_world: LtiWorld) -> None:
    state, message = await forged(lti_world, iss="https://evil.example")
    token = lti_world.platform.sign(message)
    await assert_refused(
        lti_world, await lti_world.post_launch({"id_token": token, "state": state}), 401, "wrong_issuer"
    )


async def test_unknown_message_type_and_version(lti_world: LtiWorld) -> None:
    state, message = await forged(lti_world, **{CLAIM + "message_type": "LtiSomethingElse"})
    await assert_refused(
        lti_world,
        await lti_world.post_launch({"id_token": lti_world.platform.sign(message), "state": state}),
        400,
        "unknown_message",
    )
    state, message = await forged(lti_world, **{CLAIM + "version": "1.1"})
    await assert_refused(
        lti_world,
        await lti_world.post_launch({"id_token": lti_world.platform.sign(message), "state": state}),
        400,
        "unsupported_version",
    )


async def test_missing_claims(lti_world: LtiWorld) -> None:
    state, message = await forged(lti_world)
    del message[CLAIM + "roles"]
    del message["sub"]
    result = await lti_world.post_launch({"id_token": lti_world.platform.sign(message), "state": state})
    await assert_refused(lti_world, result, 400, "missing_claims")
    assert "roles" in result[1] and "sub" in result[1]


async def test_hs256_is_refused(lti_world: LtiWorld) -> None:
    state, message = await forged(lti_world)
    token = jwt.encode({**message, "iat": int(time.time()), "exp": int(time.time()) + 60}, "k" * 32, algorithm="HS256")
    await assert_refused(
        lti_world, await lti_world.post_launch({"id_token": token, "state": state}), 401, "bad_algorithm"
    )


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"data": {}}, "bad_form"),
        ({"data": {"id_token": "x"}}, "bad_form"),
        ({"data": {"id_token": "not-a-jwt", "state": "s"}}, "bad_state"),
        ({"json": {"id_token": "a", "state": "b"}}, "bad_form"),
        ({"data": b"\xff\xfe=\x00", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, "bad_form"),
        ({"data": b"--x\r\nbroken", "headers": {"Content-Type": "multipart/form-data; boundary=x"}}, "bad_form"),
    ],
)
async def test_malformed_launch_bodies_are_never_a_500(
    lti_world: LtiWorld, kwargs: dict[str, Any], reason: str
) -> None:
    async with lti_world.http.post(lti_world.node.url + "/lti/launch", allow_redirects=False, **kwargs) as resp:
        text = await resp.text()
        assert 400 <= resp.status < 500, (resp.status, text[:300])
        assert resp.content_type == "text/html"
    assert await attempts(lti_world) == 0


async def test_malformed_id_token_with_a_good_state(lti_world: LtiWorld) -> None:
    state, _, _ = await lti_world.login()
    for token in ("abc", "a.b.c", "e30.e30.", "x" * 70_000):
        code, body, _ = await lti_world.post_launch({"id_token": token, "state": state})
        assert code in (400, 401), (code, body[:200])


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"iss": "http://unknown.example", "login_hint": "x", "target_link_uri": "http://x"},
        {"iss": "x" * 5000, "login_hint": "x", "target_link_uri": "y"},
    ],
)
async def test_bad_logins_are_error_pages(lti_world: LtiWorld, fields: dict[str, str]) -> None:
    async with lti_world.http.get(lti_world.node.url + "/lti/login", params=fields, allow_redirects=False) as resp:
        assert resp.status in (400, 403), resp.status
        assert 'id="lti-reason"' in await resp.text()


async def test_login_redirects_with_the_oidc_parameters(lti_world: LtiWorld) -> None:
    state, nonce, location = await lti_world.login()
    parts = urllib.parse.urlsplit(location)
    query = dict(urllib.parse.parse_qsl(parts.query))
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == lti_world.platform.url + "/auth"
    assert query == {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": lti_world.platform.client_id,
        "redirect_uri": lti_world.node.url + "/lti/launch",
        "login_hint": "learner-1",
        "lti_message_hint": "link-1",
        "state": state,
        "nonce": nonce,
    }
    # GET works as POST does (third-party initiated login, LTI 1.3 §5.1.1).
    fields = lti_world.platform.login_fields("learner-1", "link-1")
    async with lti_world.http.get(lti_world.node.url + "/lti/login", params=fields, allow_redirects=False) as resp:
        assert resp.status == 302


async def test_tool_jwks_publishes_the_signing_key(lti_world: LtiWorld) -> None:
    from server.lti import LTI

    async with lti_world.http.get(lti_world.node.url + "/lti/jwks") as resp:
        assert resp.status == 200 and "max-age" in resp.headers["Cache-Control"]
        document = await resp.json()
    kid, key = await lti_world.node.app[LTI].keys.signing_key()
    [published] = [k for k in document["keys"] if k["kid"] == kid]
    assert "d" not in published and published["alg"] == "RS256"
    token = jwt.encode({"iss": "tool"}, key, algorithm="RS256", headers={"kid": kid})
    assert jwt.decode(token, jwt.PyJWK(published).key, algorithms=["RS256"]) == {"iss": "tool"}
