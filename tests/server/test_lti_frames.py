"""Only the LTI pages, and the exam and dashboard pages reached from a launch, may be framed —
by the registered platforms' origins only; every other page keeps `frame-ancestors 'none'`."""

from __future__ import annotations

import re

import pytest

from server.keys import POOL
from server.lti.frames import origin_of
from tests.support.lti_platform import LtiWorld
from tests.support.node import ADMIN, bearer

pytestmark = pytest.mark.timeout(60)


def ancestors(headers: dict[str, str]) -> str:
    found = re.search(r"frame-ancestors ([^;]+)", headers["Content-Security-Policy"])
    assert found is not None
    return found.group(1)


async def registered_origins(world: LtiWorld) -> list[str]:
    """Every registered platform's origins (the session's Postgres holds other tests' platforms too)."""
    rows = await world.node.app[POOL].fetch("SELECT issuer, auth_login_url FROM lti_platforms")
    return sorted({o for r in rows for o in map(origin_of, (r[0], r[1])) if o})


async def headers_of(world: LtiWorld, path: str, method: str = "GET") -> dict[str, str]:
    async with world.http.request(method, world.node.url + path, allow_redirects=False) as resp:
        await resp.read()
        return dict(resp.headers)


async def test_framed_pages_name_the_platforms_only(lti_world: LtiWorld) -> None:
    world = lti_world
    origin = world.platform.url  # http://localhost:<port>
    for path in ("/exam/?lti=1", "/teacher/?room=abc&lti=1", "/teacher/?lti=1"):
        headers = await headers_of(world, path)
        assert ancestors(headers).split() == await registered_origins(world), path
        assert origin in ancestors(headers).split()
        assert "X-Frame-Options" not in headers, path
    launch_error = await headers_of(world, "/lti/launch", "POST")
    assert origin in ancestors(launch_error).split() and "X-Frame-Options" not in launch_error
    login_error = await headers_of(world, "/lti/login")
    assert origin in ancestors(login_error).split()
    for path in (
        "/exam/",
        "/teacher/",
        "/teacher/?room=abc",
        "/teacher/review.html?lti=1",
        "/teacher/account.html?lti=1",
    ):
        headers = await headers_of(world, path)
        assert ancestors(headers) == "'none'", path
        assert headers["X-Frame-Options"] == "DENY", path


async def test_a_second_platform_is_added_and_a_removed_one_dropped(lti_world: LtiWorld) -> None:
    world = lti_world
    body = world.platform.registration_body(
        issuer="https://canvas.instructure.com",
        auth_login_url="https://sso.canvaslms.com/api/lti/authorize_redirect",
        access_token_url="https://sso.canvaslms.com/login/oauth2/token",
        jwks_url="https://sso.canvaslms.com/api/lti/security/jwks",
    )
    second = await world.node.rest("POST", "/api/lti/platforms", body)
    got = ancestors(await headers_of(world, "/exam/?lti=1")).split()
    assert {world.platform.url, "https://canvas.instructure.com", "https://sso.canvaslms.com"} <= set(got)
    assert got == await registered_origins(world)
    async with world.node.http.delete(
        world.node.url + f"/api/lti/platforms/{second['id']}", headers=bearer(ADMIN)
    ) as r:
        assert r.status == 200
    async with world.node.http.delete(
        world.node.url + f"/api/lti/platforms/{world.platform.platform_id}", headers=bearer(ADMIN)
    ) as r:
        assert r.status == 200
    left = ancestors(await headers_of(world, "/exam/?lti=1")).split()
    assert world.platform.url not in left and "https://sso.canvaslms.com" not in left
    assert left == (await registered_origins(world) or ["'none'"])
