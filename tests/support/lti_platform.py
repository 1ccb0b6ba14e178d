"""A real LTI 1.3 platform for the tests, on a free loopback port, built on the PyPI package
`lti1p3platform` (an independent platform implementation): its `Registration` holds the
platform's own RSA key and signs the id_tokens, its `OIDCLoginAbstract` builds the third-party
login initiation, and its `LTIAdvantageMessageLaunchAbstract` checks the tool's authorization
request and builds the launch message (with the AGS and NRPS claims when set). What the package
leaves to a framework — HTTP, the auto-posted forms, a user table — is written here in aiohttp.

The platform is addressed as `localhost` and the tool (the node) as `127.0.0.1`: two sites, so
the course page's iframe is a real cross-site frame, as in Moodle or Canvas.

Routes:
- `GET /course?user=…&link=…&message=…` — a course page with the tool in an iframe (the browser
  tests); `message` is `resource` (LtiResourceLinkRequest, the default), `deep-linking`
  (LtiDeepLinkingRequest), `proctoring` (LtiStartProctoring) or `end-assessment` (LtiEndAssessment),
- `GET /start?user=…&link=…&message=…` — the login initiation: an auto-posted form to the tool,
- `GET /auth` — the OIDC authorization endpoint: the launch, auto-posted to `redirect_uri`,
- `GET /jwks` — the platform's keys (`jwks_fetches` counts the calls),
- `POST /deep-link-return`, `POST /start-assessment` — what the tool posts back, verified with
  the tool's JWKS (tests/support/lti_platform_returns.py): a deep-linking response's items
  become course activities (`links`) with their line items,
- and on the same origin the services of tests/support/lti_services.py (token endpoint, AGS line
  items and scores, NRPS memberships, the Assessment Control Service), which every launch
  announces: the AGS endpoint claim (line items URL, the link's line item, scopes) through
  lti1p3platform's `set_ags`, the NRPS claim through `set_nrps`.
"""

from __future__ import annotations

import html
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.oidc_login import OIDCLoginAbstract
from lti1p3platform.registration import Registration
from lti1p3platform.request import Request, TRequest

from server.embedded_pg import free_port
from server.keys import POOL
from server.settings import Settings
from tests.support.browser import Browsers, Node, node_at_public_url
from tests.support.lti_platform_returns import AP_CLAIM, DL_CLAIM, ToolReturns
from tests.support.lti_services import PlatformServices
from tests.support.node import ADMIN

CLIENT_ID = "proctor-tool-test"
DEPLOYMENT_ID = "deployment-1"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
COURSE = "course-1"
# The message a launch carries, named in the login's `lti_message_hint` as `<message>:<link>`
# (a resource link launch: the bare link).
RESOURCE, DEEP_LINKING, PROCTORING, END_ASSESSMENT = "resource", "deep-linking", "proctoring", "end-assessment"


def new_key() -> tuple[str, str]:
    """(private PEM, public PEM) of a fresh RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def message_hint(message: str, link: str) -> str:
    """The `lti_message_hint` the platform sends: which message, for which link."""
    return link if message == RESOURCE else f"{message}:{link}"


@dataclass(frozen=True)
class User:
    sub: str
    name: str
    email: str
    roles: tuple[str, ...]


class _Config(LTI1P3PlatformConfAbstract):  # type: ignore[misc]  # the package has no type information
    def init_platform_config(self, **kwargs: Any) -> None:
        self._registration = kwargs["registration"]

    def get_registration_by_params(self, **kwargs: Any) -> Registration:
        assert self._registration is not None
        return self._registration


class _AiohttpRequest(Request):  # type: ignore[misc]  # the package has no type information
    def build_metadata(self, request: Any) -> TRequest:
        req: web.Request = request
        return {
            "method": req.method,
            "form_data": {},
            "get_data": dict(req.query),
            "headers": dict(req.headers),
            "content_type": req.content_type,
            "path": req.path,
            "json": None,
        }


class _Login(OIDCLoginAbstract):  # type: ignore[misc]  # the package has no type information
    def set_lti_message_hint(self, **kwargs: Any) -> None:
        self._lti_message_hint = kwargs["hint"]

    def get_redirect(self, url: str) -> Any:
        return url


class _Launch(LTIAdvantageMessageLaunchAbstract):  # type: ignore[misc]  # the package has no type information
    def render_launch_form(self, launch_data: dict[str, Any], **kwargs: Any) -> Any:
        return auto_post(
            str(launch_data["launch_url"]), {"id_token": launch_data["id_token"], "state": launch_data["state"]}
        )


def auto_post(action: str, fields: dict[str, str]) -> str:
    """The page LTI platforms send: a form posted by script as soon as it loads."""
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in fields.items()
    )
    return (
        f'<!doctype html><html lang="en"><body><form id="f" method="post" action="{html.escape(action)}">'
        f"{inputs}<noscript><button>Continue</button></noscript></form>"
        "<script>document.getElementById('f').submit()</script></body></html>"
    )


class FormFields(HTMLParser):
    """The action and hidden inputs of an auto-post page."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a.get("action", "")
        elif tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")


def parse_form(text: str) -> FormFields:
    parser = FormFields()
    parser.feed(text)
    return parser


@dataclass
class TestPlatform:
    """The platform; `url` is set once it listens."""

    tool_url: str
    client_id: str = CLIENT_ID
    deployment_id: str = DEPLOYMENT_ID
    port: int = field(default_factory=free_port)
    users: dict[str, User] = field(default_factory=dict)
    jwks_fetches: int = 0
    # Keys published in /jwks besides the signing one (a rotation), as JWK dicts.
    extra_jwks: list[dict[str, Any]] = field(default_factory=list)
    # Claims merged into every launch this platform builds (AGS, NRPS, proctoring tests).
    extra_claims: dict[str, Any] = field(default_factory=dict)
    authorizations: list[dict[str, str]] = field(default_factory=list)
    platform_id: str = ""

    def __post_init__(self) -> None:
        self.url = f"http://localhost:{self.port}"
        # The services answer on this platform's own origin (platform_app mounts their routes).
        self.services = PlatformServices(
            client_id=self.client_id,
            tool_jwks_url=self.tool_url + "/lti/jwks",
            port=self.port,
            host="localhost",
            issuer=self.url,
        )
        self.private_pem, self.public_pem = new_key()
        # What the tool posts back (deep linking, start assessment), received and checked there.
        self.returns = ToolReturns(self.config, self.url, self.client_id, self.deployment_id, self.services)
        self.links = self.returns.links
        self.registration = (
            Registration()
            .set_iss(self.url)
            .set_client_id(self.client_id)
            .set_deployment_id(self.deployment_id)
            .set_oidc_login_url(self.tool_url + "/lti/login")
            .set_launch_url(self.tool_url + "/lti/launch")
            .set_platform_public_key(self.public_pem)
            .set_platform_private_key(self.private_pem)
            .set_tool_key_set_url(self.tool_url + "/lti/jwks")
            .set_deeplink_launch_url(self.tool_url + "/lti/launch")
        )
        self.kid = str(self.registration.get_kid())
        # Emails unique per platform: the session's Postgres outlives a test.
        self.add_user("learner-1", "Ada Lovelace", f"ada-{self.port}@example.edu", (LEARNER,))
        self.add_user("instructor-1", "Grace Hopper", f"grace-{self.port}@example.edu", (INSTRUCTOR,))

    def add_user(self, login_hint: str, name: str, email: str, roles: tuple[str, ...]) -> User:
        user = User(f"sub-{login_hint}", name, email, roles)
        self.users[login_hint] = user
        return user

    def config(self) -> _Config:
        return _Config(registration=self.registration)

    # -- registration with the tool -------------------------------------------------------

    def registration_body(self, **changes: Any) -> dict[str, Any]:
        body = {
            "name": "Test platform",
            "issuer": self.url,
            "client_id": self.client_id,
            "deployment_ids": [self.deployment_id],
            "auth_login_url": self.url + "/auth",
            "access_token_url": self.url + "/token",
            "jwks_url": self.url + "/jwks",
            # The test platform vouches for its users' emails (an instructor's existing account).
            "link_by_email": True,
        }
        body.update(changes)
        return body

    async def register(self, node: Node) -> str:
        data = await node.rest("POST", "/api/lti/platforms", self.registration_body(), token=ADMIN)
        self.platform_id = str(data["id"])
        return self.platform_id

    # -- messages ------------------------------------------------------------------------

    def login_fields(self, user: str, link: str, message: str = RESOURCE) -> dict[str, str]:
        """The login initiation, as lti1p3platform builds it (its preflight URL's parameters)."""
        login = _Login(None, self.config())
        login.set_lti_message_hint(hint=message_hint(message, link))
        url = login.prepare_preflight_url(user)
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))

    def _launch(self, request: Any, user: User, hint: str) -> _Launch:
        """lti1p3platform's launch of `hint` (`<message>:<link>`) for `user`, with the claims a
        platform with AGS and NRPS enabled sends."""
        message, _, link = (
            hint.partition(":") if hint.startswith((DEEP_LINKING, PROCTORING, END_ASSESSMENT)) else (RESOURCE, "", hint)
        )
        launch = _Launch(request, self.config())
        launch._registration = self.registration
        launch.set_user_data(user.sub, list(user.roles), user.name, user.email)
        launch.set_launch_context_claim(COURSE, context_title="Algebra 101")
        launch.set_launch_presentation_claim("iframe")
        known = self.links.get(link)
        launch.set_ags(self.services.lineitems_url(COURSE), known.lineitem if known else None)
        launch.set_nrps(self.services.memberships_url(COURSE))
        if message == DEEP_LINKING:
            launch.set_dl(self.url + "/deep-link-return", title="Add an activity", accept_types={"ltiResourceLink"})
            # The spec's `data` is an opaque string echoed back (lti1p3platform would send a dict).
            data = self.returns.expect_data()
            launch._deep_linking_launch_data[DL_CLAIM + "deep_linking_settings"]["data"] = data
        else:
            launch.set_resource_link_claim(link, title=known.title if known else f"Exam {link}")
            if known is not None and known.custom:
                launch.set_custom_parameters_claim(dict(known.custom))
        if message == PROCTORING:
            # LTI Proctoring Services 1.0 §4: lti1p3platform has no such message; its launch is
            # retyped and given the proctoring claims, and still signed by its Registration.
            session = self.returns.expect_session(user.sub, "1")
            launch.set_extra_claims(
                {
                    CLAIM + "message_type": "LtiStartProctoring",
                    AP_CLAIM + "attempt_number": 1,
                    AP_CLAIM + "start_assessment_url": self.url + "/start-assessment",
                    AP_CLAIM + "session_data": session,
                    AP_CLAIM + "acs": {"assessment_control_url": self.services.acs_url, "actions": ["terminate"]},
                }
            )
        if message == END_ASSESSMENT:  # the student finished: §6, asked for by `end_assessment_return`
            launch.set_extra_claims({CLAIM + "message_type": "LtiEndAssessment", AP_CLAIM + "attempt_number": 1})
        launch.set_extra_claims(self.extra_claims)
        return launch

    def launch_claims(self, user: User, link: str, nonce: str, message: str = RESOURCE) -> dict[str, Any]:
        """The launch message lti1p3platform builds for `user` and resource link `link`."""
        launch = self._launch(None, user, message_hint(message, link))  # no request: only the message is built
        claims: dict[str, Any] = launch.get_launch_message()
        if message == DEEP_LINKING:
            claims.pop(CLAIM + "resource_link", None)
            claims[CLAIM + "message_type"] = "LtiDeepLinkingRequest"
            claims.update(launch._deep_linking_launch_data)
        claims["nonce"] = nonce
        return claims

    def sign(
        self,
        claims: dict[str, Any],
        *,
        private_pem: str | None = None,
        kid: str | None = None,
        lifetime: int = 300,
        now: float | None = None,
    ) -> str:
        """An id_token: by default with this platform's key and kid; tests forge with others."""
        issued = int(now if now is not None else time.time())
        payload = {"iat": issued, "exp": issued + lifetime, **claims}
        return jwt.encode(payload, private_pem or self.private_pem, algorithm="RS256", headers={"kid": kid or self.kid})

    # -- HTTP ----------------------------------------------------------------------------

    async def jwks(self, request: web.Request) -> web.Response:
        self.jwks_fetches += 1
        return web.json_response({"keys": [*self.registration.get_jwks(), *self.extra_jwks]})

    async def start(self, request: web.Request) -> web.Response:
        q = request.query
        fields = self.login_fields(q["user"], q.get("link", "link-1"), q.get("message", RESOURCE))
        return web.Response(text=auto_post(self.tool_url + "/lti/login", fields), content_type="text/html")

    async def course(self, request: web.Request) -> web.Response:
        q = request.query
        query = urllib.parse.urlencode(
            {"user": q["user"], "link": q.get("link", "link-1"), "message": q.get("message", RESOURCE)}
        )
        body = (
            '<!doctype html><html lang="en"><head><title>Algebra 101</title></head><body>'
            "<h1>Algebra 101</h1>"
            # `camera *` as Canvas does: a bare `camera` delegates only to the src's origin (this
            # platform's /start), not to the tool the frame then navigates to.
            f'<iframe id="tool" title="Proctor" src="/start?{html.escape(query)}" '
            'allow="camera *; microphone *; fullscreen *" width="1200" height="640"></iframe></body></html>'
        )
        return web.Response(text=body, content_type="text/html")

    async def auth(self, request: web.Request) -> web.Response:
        """The authorization endpoint: lti1p3platform checks the tool's request and signs the launch."""
        query = dict(request.query)
        self.authorizations.append(query)
        expected = {"scope": "openid", "response_type": "id_token", "response_mode": "form_post", "prompt": "none"}
        wrong = {k: query.get(k) for k, v in expected.items() if query.get(k) != v}
        if wrong or query.get("redirect_uri") != self.tool_url + "/lti/launch":
            return web.Response(status=400, text=f"bad authorization request: {wrong or query.get('redirect_uri')}")
        user = self.users.get(query.get("login_hint", ""))
        if user is None:
            return web.Response(status=400, text="unknown login_hint")
        launch = self._launch(_AiohttpRequest(request), user, query.get("lti_message_hint", "link-1"))
        page = launch.lti_launch()
        return web.Response(text=str(page), content_type="text/html")


def platform_app(platform: TestPlatform) -> web.Application:
    app = web.Application()
    app.router.add_get("/jwks", platform.jwks)
    app.router.add_get("/start", platform.start)
    app.router.add_get("/course", platform.course)
    app.router.add_get("/auth", platform.auth)
    app.router.add_post("/deep-link-return", platform.returns.deep_link_return)
    app.router.add_post("/start-assessment", platform.returns.start_assessment)
    app.add_routes(platform.services.routes())  # one platform: the services on the same origin
    return app


@dataclass
class LtiWorld:
    node: Node
    platform: TestPlatform
    http: aiohttp.ClientSession  # without cookies kept between calls that should not share them

    async def login(
        self, user: str = "learner-1", link: str = "link-1", message: str = RESOURCE, **override: str
    ) -> tuple[str, str, str]:
        """POST the platform's login initiation to the tool: (state, nonce, the redirect's URL)."""
        fields = {**self.platform.login_fields(user, link, message), **override}
        async with self.http.post(self.node.url + "/lti/login", data=fields, allow_redirects=False) as resp:
            assert resp.status == 302, (resp.status, await resp.text())
            location = resp.headers["Location"]
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
        return query["state"], query["nonce"], location

    async def platform_launch(self, location: str) -> dict[str, str]:
        """Follow the tool's redirect to the platform: the auto-posted launch form's fields."""
        async with self.http.get(location) as resp:
            assert resp.status == 200, (resp.status, await resp.text())
            form = parse_form(await resp.text())
        assert form.action == self.node.url + "/lti/launch", form.action
        return form.fields

    async def post_launch(self, fields: dict[str, str]) -> tuple[int, str, dict[str, str]]:
        async with self.http.post(self.node.url + "/lti/launch", data=fields, allow_redirects=False) as resp:
            return resp.status, await resp.text(), dict(resp.headers)

    async def instructor_room(self, user: str = "instructor-1") -> dict[str, Any]:
        """An exam and a room owned by the instructor's existing account (an admin made it with
        the email the platform sends, so the launch finds it)."""
        email = self.platform.users[user].email
        await self.node.rest("POST", "/api/accounts", {"email": email, "name": "Grace Hopper", "role": "teacher"})
        room = await self.node.room()
        await self.node.rest("POST", f"/api/rooms/{room['id']}/members", {"email": email, "role": "owner"})
        return room


@pytest.fixture
async def lti_browsers(chromium: str, lti_world: LtiWorld) -> AsyncIterator[Browsers]:
    """Chromium for the LTI world (closed before the node and the platform stop)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        env = Browsers(chromium, pw)
        try:
            yield env
        finally:
            for context in env.contexts:
                await context.close()
            for browser in env.launched.values():
                await browser.close()


@pytest.fixture
async def lti_world(
    e2e_settings: Settings,
    vendor_ready: None,
) -> AsyncIterator[LtiWorld]:
    """A node at its public URL (127.0.0.1) and a registered test platform (localhost)."""
    async with node_at_public_url(e2e_settings) as node:
        platform = TestPlatform(node.url)
        runner = web.AppRunner(platform_app(platform))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", platform.port)
        await site.start()
        try:
            # The session's Postgres is shared: platforms other tests registered (the REST fuzzers
            # register hundreds with made-up issuers) would all be frame ancestors here, and a
            # CSP naming them outgrows a client's header limit (8 KiB). This world starts clean.
            await node.app[POOL].execute("DELETE FROM lti_platforms")
            await platform.register(node)
            async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
                yield LtiWorld(node, platform, http)
        finally:
            await runner.cleanup()


__all__ = [
    "AP_CLAIM",
    "CLIENT_ID",
    "DEEP_LINKING",
    "END_ASSESSMENT",
    "INSTRUCTOR",
    "LEARNER",
    "PROCTORING",
    "RESOURCE",
    "LtiWorld",
    "TestPlatform",
    "new_key",
    "parse_form",
]
