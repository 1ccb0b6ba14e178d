"""The test platform's LTI Advantage services, written from the 1EdTech specifications because
the PyPI `lti1p3platform` package leaves them to its user (its service classes are abstract and
synchronous): the OAuth 2 token endpoint (a client-credentials grant with a JWT client assertion
verified against the tool's JWKS URL, 1EdTech Security Framework §4.1), AGS line items and scores
(lti-ags v2.0), NRPS memberships with `Link: rel="next"` paging (lti-nrps v2.0), the Assessment
Control Service (LTI Proctoring Services v1.0) and endpoints that record posted forms (deep
linking return, start assessment).

An aiohttp app on a free loopback port, or mounted by the launch side's test platform
(`routes()`, tests/support/lti_platform.py) on its own origin, so that one platform signs the
launches and serves the services, as Moodle or Canvas do. Knobs make it misbehave on purpose: `malformed` answers
garbage, `fail_scores` refuses scores with 503, `stop()` takes the whole platform down.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web

from server.embedded_pg import free_port

SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
MEMBERSHIPS_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
CONTROL_TYPE = "application/vnd.ims.lti-ap.v1.control+json"
SCOPES = {
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
    "https://purl.imsglobal.org/spec/lti-ap/scope/control.all",
}
SCORE_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
LINEITEM_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
CONTROL_SCOPE = "https://purl.imsglobal.org/spec/lti-ap/scope/control.all"
ACTIVITY = {"Initialized", "Started", "InProgress", "Submitted", "Completed"}
GRADING = {"FullyGraded", "Pending", "PendingManual", "Failed", "NotReady"}


@dataclass
class ReceivedScore:
    lineitem: str
    content_type: str
    body: dict[str, Any]
    applied: bool  # False: older than the result on record (the spec: the platform must not update)


@dataclass
class PlatformServices:
    client_id: str
    tool_jwks_url: str
    port: int = field(default_factory=free_port)
    issuer: str = ""
    # The host the URLs name: the launch side's test platform (tests/support/lti_platform.py)
    # mounts these routes on its own origin, `localhost`.
    host: str = "127.0.0.1"
    page_size: int = 2
    malformed: set[str] = field(default_factory=set)  # "token", "lineitems", "scores", "memberships", "huge"
    fail_scores: int = 0
    line_items: dict[str, dict[str, Any]] = field(default_factory=dict)
    scores: list[ReceivedScore] = field(default_factory=list)
    results: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (lineitem, user) -> latest
    members: list[dict[str, Any]] = field(default_factory=list)
    assertions: list[dict[str, Any]] = field(default_factory=list)  # verified client assertions
    refused_assertions: list[str] = field(default_factory=list)
    controls: list[dict[str, Any]] = field(default_factory=list)
    forms: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (path, fields) posted back
    _tokens: dict[str, tuple[set[str], float]] = field(default_factory=dict)
    _jtis: set[str] = field(default_factory=set)
    _runner: web.AppRunner | None = None

    def __post_init__(self) -> None:
        if not self.issuer:
            self.issuer = self.url

    # ------------------------------------------------------------------ addresses
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def token_url(self) -> str:
        return self.url + "/token"

    def lineitems_url(self, context_id: str) -> str:
        return f"{self.url}/contexts/{context_id}/lineitems"

    def memberships_url(self, context_id: str) -> str:
        return f"{self.url}/contexts/{context_id}/memberships"

    @property
    def acs_url(self) -> str:
        return self.url + "/acs"

    # ------------------------------------------------------------------ lifecycle
    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/token", self._token),
            web.get("/contexts/{context_id}/lineitems", self._list_lineitems),
            web.post("/contexts/{context_id}/lineitems", self._create_lineitem),
            web.get("/contexts/{context_id}/lineitems/{item_id}", self._get_lineitem),
            web.post("/contexts/{context_id}/lineitems/{item_id}/scores", self._post_score),
            web.get("/contexts/{context_id}/memberships", self._memberships),
            web.post("/acs", self._control),
            web.post("/forms/{name}", self._form),
        ]

    async def start(self) -> None:
        app = web.Application()
        app.add_routes(self.routes())
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # ------------------------------------------------------------------ OAuth 2
    async def _token(self, request: web.Request) -> web.Response:
        if "token" in self.malformed:
            return web.Response(text="{not json", content_type="application/json")
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return web.json_response({"error": "invalid_request"}, status=400)
        try:
            claims = await self._verify_assertion(str(form.get("client_assertion", "")))
        except (jwt.PyJWTError, ValueError, KeyError, aiohttp.ClientError) as exc:
            self.refused_assertions.append(f"{type(exc).__name__}: {exc}")
            return web.json_response({"error": "invalid_client"}, status=401)
        requested = set(str(form.get("scope", "")).split())
        granted = requested & SCOPES
        if not granted:
            return web.json_response({"error": "invalid_scope"}, status=400)
        self.assertions.append(claims)
        token = secrets.token_urlsafe(24)
        self._tokens[token] = (granted, time.time() + 3600)
        return web.json_response(
            {"access_token": token, "token_type": "Bearer", "expires_in": 3600, "scope": " ".join(sorted(granted))}
        )

    async def _verify_assertion(self, assertion: str) -> dict[str, Any]:
        header = jwt.get_unverified_header(assertion)
        async with aiohttp.ClientSession() as http, http.get(self.tool_jwks_url) as resp:
            resp.raise_for_status()
            jwks = await resp.json()
        key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
        claims: dict[str, Any] = jwt.decode(
            assertion,
            key.key,
            algorithms=["RS256"],
            audience=self.token_url,
            issuer=self.client_id,
            options={"require": ["exp", "iat", "jti", "sub"]},
        )
        if claims["sub"] != self.client_id:
            raise ValueError("sub is not the client id")
        if claims["exp"] - claims["iat"] > 300:
            raise ValueError("the assertion lives longer than 5 minutes")
        if claims["jti"] in self._jtis:
            raise ValueError("the assertion's jti was used before")
        self._jtis.add(claims["jti"])
        return claims

    def _authorised(self, request: web.Request, *scopes: str) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        found = self._tokens.get(token) if scheme.lower() == "bearer" else None
        return found is not None and found[1] > time.time() and any(s in found[0] for s in scopes)

    # ------------------------------------------------------------------ AGS
    async def _list_lineitems(self, request: web.Request) -> web.Response:
        if not self._authorised(request, LINEITEM_SCOPE, LINEITEM_SCOPE + ".readonly"):
            return web.json_response({"error": "unauthorized"}, status=401)
        if "lineitems" in self.malformed:
            return web.json_response({"items": "not a list"})
        context = request.match_info["context_id"]
        wanted = request.query.get("resource_link_id")
        items = [
            i
            for i in self.line_items.values()
            if i["id"].startswith(self.lineitems_url(context)) and wanted in (None, i.get("resourceLinkId"))
        ]
        return web.json_response(items, content_type=LINEITEMS_TYPE)

    async def _create_lineitem(self, request: web.Request) -> web.Response:
        if not self._authorised(request, LINEITEM_SCOPE):
            return web.json_response({"error": "unauthorized"}, status=401)
        body = await request.json()
        if not isinstance(body.get("scoreMaximum"), int | float) or body["scoreMaximum"] <= 0 or not body.get("label"):
            return web.json_response({"error": "scoreMaximum and label are required"}, status=400)
        item_id = f"{self.lineitems_url(request.match_info['context_id'])}/{len(self.line_items) + 1}"
        item = {**body, "id": item_id}
        self.line_items[item_id] = item
        return web.json_response(item, status=201, content_type=LINEITEM_TYPE)

    async def _get_lineitem(self, request: web.Request) -> web.Response:
        item = self.line_items.get(str(request.url.with_query(None)))
        if item is None:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(item, content_type=LINEITEM_TYPE)

    async def _post_score(self, request: web.Request) -> web.Response:
        if not self._authorised(request, SCORE_SCOPE):
            return web.json_response({"error": "unauthorized"}, status=401)
        if self.fail_scores > 0:
            self.fail_scores -= 1
            return web.json_response({"error": "try later"}, status=503)
        if "scores" in self.malformed:
            return web.Response(body=b"\x00" * 10, status=500)
        lineitem = str(request.url.with_query(None)).removesuffix("/scores")
        if lineitem not in self.line_items:
            return web.json_response({"error": "no such line item"}, status=404)
        if request.content_type != SCORE_TYPE:
            return web.json_response({"error": f"content type {request.content_type}"}, status=415)
        body = await request.json()
        problem = _score_problem(body)
        if problem:
            return web.json_response({"error": problem}, status=400)
        key = (lineitem, body["userId"])
        previous = self.results.get(key)
        stamp = datetime.fromisoformat(body["timestamp"])
        applied = previous is None or datetime.fromisoformat(previous["timestamp"]) < stamp
        if applied:
            self.results[key] = body
        self.scores.append(ReceivedScore(lineitem, request.content_type, body, applied))
        return web.json_response({}, status=200)

    # ------------------------------------------------------------------ NRPS
    async def _memberships(self, request: web.Request) -> web.Response:
        if not self._authorised(request, NRPS_SCOPE):
            return web.json_response({"error": "unauthorized"}, status=401)
        if "memberships" in self.malformed:
            return web.json_response({"members": [{"roles": 5}]}, content_type=MEMBERSHIPS_TYPE)
        if "huge" in self.malformed:  # larger than any tool should read
            return web.Response(body=b'{"members": [' + b" " * (2 << 20) + b"]}", content_type=MEMBERSHIPS_TYPE)
        page = int(request.query.get("page", "1"))
        start = (page - 1) * self.page_size
        chunk = self.members[start : start + self.page_size]
        headers = {}
        if start + self.page_size < len(self.members):
            next_url = request.url.update_query({"page": str(page + 1)})
            headers["Link"] = f'<{next_url}>; rel="next"'
        context = request.match_info["context_id"]
        body = {"id": str(request.url), "context": {"id": context, "title": "Course"}, "members": chunk}
        return web.json_response(body, headers=headers, content_type=MEMBERSHIPS_TYPE)

    # ------------------------------------------------------------------ proctoring, forms
    async def _control(self, request: web.Request) -> web.Response:
        if not self._authorised(request, CONTROL_SCOPE):
            return web.json_response({"error": "unauthorized"}, status=401)
        if request.content_type != CONTROL_TYPE:
            return web.json_response({"error": f"content type {request.content_type}"}, status=415)
        body = await request.json()
        self.controls.append(body)
        return web.json_response({"status": "terminated"}, content_type=CONTROL_TYPE)

    async def _form(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.forms.append((request.match_info["name"], {k: str(v) for k, v in form.items()}))
        return web.Response(text="<!doctype html><title>Platform</title><p>received</p>", content_type="text/html")

    def form_url(self, name: str) -> str:
        return f"{self.url}/forms/{name}"


def _score_problem(body: Any) -> str:
    """What makes a score invalid under lti-ags v2.0 §3.4 (empty: it is valid)."""
    if not isinstance(body, dict):
        return "not an object"
    for name in ("userId", "activityProgress", "gradingProgress", "timestamp"):
        if not isinstance(body.get(name), str) or not body[name]:
            return f"{name} is required"
    if body["activityProgress"] not in ACTIVITY or body["gradingProgress"] not in GRADING:
        return "unknown progress value"
    if ("scoreGiven" in body) != ("scoreMaximum" in body):
        return "scoreGiven and scoreMaximum go together"
    if "scoreGiven" in body and not (body["scoreGiven"] >= 0 and body["scoreMaximum"] > 0):
        return "scores out of range"
    try:
        stamp = datetime.fromisoformat(body["timestamp"])
    except ValueError:
        return "timestamp is not ISO 8601"
    if stamp.tzinfo is None:
        return "timestamp has no time zone"
    return ""


@pytest.fixture
async def platform_services(tool_jwks: str) -> AsyncIterator[PlatformServices]:
    """The test platform's services, running, with a client id of its own."""
    services = PlatformServices(client_id="tool-" + secrets.token_hex(4), tool_jwks_url=tool_jwks)
    await services.start()
    try:
        yield services
    finally:
        await services.stop()


def decode_form_jwt(token: str, jwks: dict[str, Any], audience: str) -> dict[str, Any]:
    """A JWT the tool posted back (deep linking, start assessment), verified with the tool's JWKS."""
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(token)["kid"]]
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=["RS256"], audience=audience, options={"require": ["exp", "iat", "nonce"]}
    )
    return claims
