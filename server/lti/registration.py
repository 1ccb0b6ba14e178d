"""Registering learning platforms (admins only) and what the tool publishes about itself.

- `POST/GET /api/lti/platforms`, `GET/PATCH/DELETE /api/lti/platforms/{platform_id}`: the
  platform's issuer, client id, deployment ids and its three URLs (OIDC authorization, access
  token, JWKS). URLs must be https; plain http only for a loopback host (tests and a developer's
  machine), since a platform's keys fetched over the network in clear could be swapped.
- `GET /api/lti/tool`: the values an admin pastes into the platform (login, redirect/launch,
  deep-linking and JWKS URLs) — public facts, shown by server/static/teacher/lti.html.
- `GET /lti/jwks`: the tool's public keys (rooms/store/lti_keys.py), at a fixed URL.

The REST routes are in `server/http/api.py`'s `ROUTES` through `LTI_ROUTES`, so the OpenAPI
document, the access matrix and the fuzzer see them.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from datetime import UTC, datetime
from typing import Annotated, Any, cast

from aiohttp import web
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from rooms.lti import Platform
from server.http.credentials import claims_of
from server.http.errors import parse_body
from server.http.route import Route
from server.keys import AUDIT

from .login import LAUNCH_PATH, LOGIN_PATH
from .tool import LTI

JWKS_PATH = "/lti/jwks"
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _platform_url(value: str) -> str:
    parts = urllib.parse.urlsplit(value)
    if not parts.hostname or parts.fragment or parts.username or parts.password:
        raise ValueError("an absolute URL with a host, no fragment and no credentials")
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname)):
        return value
    raise ValueError("must be https:// (http:// only for a loopback host)")


PlatformUrl = Annotated[str, Field(min_length=8, max_length=2048), AfterValidator(_platform_url)]
DeploymentId = Annotated[str, Field(min_length=1, max_length=255)]
# The POST example: tests/server/test_openapi.py and the access matrix free its issuer first.
EXAMPLE_PLATFORM: dict[str, str | bool | list[str]] = {
    "name": "Moodle (example)",
    "issuer": "https://moodle.example.edu",
    "client_id": "hZ3xq8TpFv0aNcE",
    "deployment_ids": ["1"],
    "auth_login_url": "https://moodle.example.edu/mod/lti/auth.php",
    "access_token_url": "https://moodle.example.edu/mod/lti/token.php",
    "jwks_url": "https://moodle.example.edu/mod/lti/certs.php",
    "link_by_email": False,
}


class PlatformSpec(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_extra={"example": cast(JsonDict, EXAMPLE_PLATFORM)}
    )

    name: str = Field(default="", max_length=200)
    # The platform's issuer is usually its https URL; Canvas uses https://canvas.instructure.com.
    issuer: Annotated[str, Field(min_length=1, max_length=2048)]
    client_id: Annotated[str, Field(min_length=1, max_length=255)]
    deployment_ids: list[DeploymentId] = Field(default_factory=list, max_length=100)
    auth_login_url: PlatformUrl
    access_token_url: PlatformUrl
    jwks_url: PlatformUrl
    # Link an instructor's first launch to the teacher account with the platform's email: only
    # when the platform verifies its users' emails (docs/lti.md, "Where a launch lands").
    link_by_email: bool = False


class PlatformChange(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_extra={"example": {"deployment_ids": ["1", "2"]}}
    )

    name: str | None = Field(default=None, max_length=200)
    issuer: Annotated[str, Field(min_length=1, max_length=2048)] | None = None
    client_id: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    deployment_ids: list[DeploymentId] | None = Field(default=None, max_length=100)
    auth_login_url: PlatformUrl | None = None
    access_token_url: PlatformUrl | None = None
    jwks_url: PlatformUrl | None = None
    link_by_email: bool | None = None


def platform_json(platform: Platform) -> dict[str, Any]:
    return {
        "id": platform.id,
        "name": platform.name,
        "issuer": platform.issuer,
        "client_id": platform.client_id,
        "deployment_ids": list(platform.deployment_ids),
        "auth_login_url": platform.auth_login_url,
        "access_token_url": platform.access_token_url,
        "jwks_url": platform.jwks_url,
        "link_by_email": platform.link_by_email,
        "created_by": platform.created_by,
        "created_at": platform.created_at.isoformat(),
    }


async def create_platform(request: web.Request) -> web.Response:
    claims = claims_of(request)
    claims.require_role("admin")
    body = await parse_body(request, PlatformSpec)
    tool = request.app[LTI]
    platform = await tool.store.create_platform(
        Platform(
            id="",
            name=body.name,
            issuer=body.issuer,
            client_id=body.client_id,
            deployment_ids=tuple(dict.fromkeys(body.deployment_ids)),
            auth_login_url=body.auth_login_url,
            access_token_url=body.access_token_url,
            jwks_url=body.jwks_url,
            created_by=claims.sub,
            created_at=datetime.now(UTC),
            link_by_email=body.link_by_email,
        )
    )
    tool.frames.forget()
    await request.app[AUDIT].record(claims, "lti.platform.create", "lti_platform", platform.id, _audited(platform))
    return web.json_response(platform_json(platform), status=201)


async def list_platforms(request: web.Request) -> web.Response:
    claims_of(request).require_role("admin")
    platforms = await request.app[LTI].store.platforms()
    body = {"platforms": [platform_json(p) for p in platforms]}
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def get_platform(request: web.Request) -> web.Response:
    claims_of(request).require_role("admin")
    platform = await request.app[LTI].store.platform(request.match_info["platform_id"])
    return web.json_response(platform_json(platform), headers={"Cache-Control": "no-store"})


async def change_platform(request: web.Request) -> web.Response:
    claims = claims_of(request)
    claims.require_role("admin")
    body = await parse_body(request, PlatformChange)
    tool = request.app[LTI]
    changes = body.model_dump(exclude_none=True)
    platform = await tool.store.update_platform(request.match_info["platform_id"], changes)
    tool.frames.forget()
    await request.app[AUDIT].record(claims, "lti.platform.update", "lti_platform", platform.id, _audited(platform))
    return web.json_response(platform_json(platform))


async def delete_platform(request: web.Request) -> web.Response:
    claims = claims_of(request)
    claims.require_role("admin")
    tool = request.app[LTI]
    platform = await tool.store.platform(request.match_info["platform_id"])
    await tool.store.delete_platform(platform.id)
    tool.frames.forget()
    await request.app[AUDIT].record(claims, "lti.platform.delete", "lti_platform", platform.id, _audited(platform))
    return web.json_response({"deleted": platform.id})


def tool_values(base_url: str) -> dict[str, str]:
    base = base_url.rstrip("/")
    return {
        "login_url": base + LOGIN_PATH,
        "launch_url": base + LAUNCH_PATH,
        "redirect_uris": base + LAUNCH_PATH,
        "deep_linking_url": base + LAUNCH_PATH,
        "jwks_url": base + JWKS_PATH,
        "domain": urllib.parse.urlsplit(base).netloc,
    }


async def tool_config(request: web.Request) -> web.Response:
    claims_of(request).require_role("admin")
    return web.json_response(tool_values(request.app[LTI].base_url))


async def jwks(request: web.Request) -> web.Response:
    document = await request.app[LTI].keys.jwks()
    # Platforms cache it; a short max-age lets a rotation's new key be seen within minutes.
    return web.json_response(document, headers={"Cache-Control": "public, max-age=300"})


def _audited(platform: Platform) -> dict[str, Any]:
    return {
        "issuer": platform.issuer,
        "client_id": platform.client_id,
        "deployments": list(platform.deployment_ids),
        "link_by_email": platform.link_by_email,
    }


_ADMINS = ("admin",)
LTI_ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/api/lti/platforms",
        create_platform,
        "Register an LTI 1.3 platform (admins)",
        _ADMINS,
        PlatformSpec,
        201,
        responses={409: "this issuer and client id are registered already"},
    ),
    Route("GET", "/api/lti/platforms", list_platforms, "List the registered LTI platforms (admins)", _ADMINS),
    Route("GET", "/api/lti/tool", tool_config, "The tool's URLs to paste into a platform (admins)", _ADMINS),
    Route("GET", "/api/lti/platforms/{platform_id}", get_platform, "Read a registered LTI platform (admins)", _ADMINS),
    Route(
        "PATCH",
        "/api/lti/platforms/{platform_id}",
        change_platform,
        "Change a registered LTI platform (admins)",
        _ADMINS,
        PlatformChange,
        responses={409: "another platform has this issuer and client id"},
    ),
    Route(
        "DELETE",
        "/api/lti/platforms/{platform_id}",
        delete_platform,
        "Remove an LTI platform with its links and users (admins; rooms and attempts stay)",
        _ADMINS,
    ),
)
