"""A real OpenID Provider (npm `oidc-provider`, run by node from tests/accounts/provider.mjs) and
a node whose single sign-on points at it. `sso_node` records what the flow hands the accounts
service (in-memory stand-ins, to check every refusal in isolation); `sso_real_node` is the
node as `server/wire.py` builds it, with the real accounts and sessions in Postgres.

The node listens on 127.0.0.1 but is addressed as `localhost` (its PUBLIC_URL), the provider as
`127.0.0.1`: two sites, as a real deployment has, so the login cookie must survive a cross-site
redirect back (SameSite=Lax does; Strict would not).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from rooms.errors import Forbidden
from server.app import create_app
from server.embedded_pg import free_port
from server.http.oidc import OIDC, OidcRoutes, TeacherSignIn
from server.keys import AUDIT
from server.settings import Settings

HERE = Path(__file__).resolve().parents[1] / "accounts"  # provider.mjs, the stand-in sign-in page
ROOT = HERE.parents[1]
CLIENT_ID = "proctor-test"
# Characters that client_secret_basic must form-encode (RFC 6749 §2.3.1).
CLIENT_SECRET = "s3cr3t:+/%&=~" + "x" * 20
SESSION_COOKIE = "proctor_session"
USERS: dict[str, dict[str, Any]] = {
    "alice": {
        "email": "Alice@School.Example",
        "email_verified": True,
        "name": "Alice Admin",
        "groups": ["staff", "proctor-admins"],
    },
    "erin": {"email": "erin@school.example", "email_verified": True, "name": "Erin Teacher", "groups": ["staff"]},
    "bob": {"email": "bob@other.example", "email_verified": True, "name": "Bob Elsewhere"},
    "carol": {"email": "carol@school.example", "email_verified": False, "name": "Carol Unverified"},
    "dave": {"email": "dave@school.example", "email_verified": True, "name": "Dave Disabled"},
}


@dataclass
class Provider:
    issuer: str
    process: subprocess.Popen[str]

    async def mode(self, mode: str) -> None:
        async with aiohttp.ClientSession() as http, http.post(f"{self.issuer}/__test/mode", json={"mode": mode}) as r:
            assert r.status == 204

    async def stats(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as http, http.get(f"{self.issuer}/__test/stats") as r:
            return dict(await r.json())


@pytest.fixture(scope="session")
def node_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def provider(node_port: int) -> Iterator[Provider]:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "oidc-provider" / "package.json").is_file():
        pytest.fail(
            "the tests' OpenID Provider needs node and the npm package oidc-provider: "
            "install node and run `npm ci` (./install.sh does both)",
            pytrace=False,
        )
    config = {
        "clients": [
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [f"http://localhost:{node_port}/auth/oidc/callback"],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_basic",
            }
        ],
        "accounts": USERS,
    }
    process = subprocess.Popen(
        [node, str(HERE / "provider.mjs"), json.dumps(config)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        process.stdout.close()
        pytest.fail(f"the OpenID Provider did not start (exit {process.wait()})", pytrace=False)
    try:
        yield Provider(json.loads(line)["issuer"], process)
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


@dataclass(frozen=True)
class Account:
    id: str
    issuer: str
    subject: str
    email: str
    name: str
    admin: bool


@dataclass
class MemoryAccounts:
    """What SsoAccounts promises, and nothing more: find by (issuer, subject), refuse the disabled."""

    disabled: set[str] = field(default_factory=lambda: {"dave"})
    calls: list[tuple[str, str, str, str, bool]] = field(default_factory=list)
    accounts: dict[tuple[str, str], Account] = field(default_factory=dict)

    async def sign_in_sso(self, issuer: str, subject: str, email: str, name: str, admin: bool) -> Account:
        self.calls.append((issuer, subject, email, name, admin))
        if subject in self.disabled:
            raise Forbidden("this account is disabled", code="disabled")
        account = Account(f"acc-{len(self.accounts) + 1}", issuer, subject, email, name, admin)
        return self.accounts.setdefault((issuer, subject), account)


@dataclass
class MemorySessions:
    sessions: dict[str, Account] = field(default_factory=dict)

    async def open_session(self, account: Account, request: web.Request, response: web.StreamResponse) -> None:
        value = secrets.token_urlsafe(24)
        self.sessions[value] = account
        response.set_cookie(SESSION_COOKIE, value, httponly=True, samesite="Lax", path="/")


@dataclass
class SsoNode:
    url: str
    settings: Settings
    app: web.Application
    accounts: MemoryAccounts
    sessions: MemorySessions

    async def audit(self) -> list[dict[str, Any]]:
        return await self.app[AUDIT].entries("oidc", self.settings.oidc_issuer)


@pytest.fixture
def sso_settings(settings: Settings, provider: Provider, node_port: int) -> Settings:
    return settings.replace(
        public_url=f"http://localhost:{node_port}",
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_admin_claim="groups=proctor-admins",
    )


@pytest.fixture
async def sso_node(sso_settings: Settings, node_port: int) -> AsyncIterator[SsoNode]:
    app = create_app(sso_settings)
    accounts, sessions = MemoryAccounts(), MemorySessions()
    wired = app[OIDC]
    # The accounts side replaced by recorders: each refusal of the flow is checked on its own
    # (sso_real_node is the node exactly as server/wire.py builds it).
    app[OIDC] = OidcRoutes(sso_settings, wired.client, app[AUDIT], TeacherSignIn(accounts, sessions))
    server = TestServer(app, host="127.0.0.1", port=node_port)
    await server.start_server()
    try:
        yield SsoNode(f"http://localhost:{node_port}", sso_settings, app, accounts, sessions)
    finally:
        await server.close()


@pytest.fixture
async def sso_real_node(sso_settings: Settings, node_port: int) -> AsyncIterator[SsoNode]:
    """The node as the composition root builds it: real accounts and sessions in Postgres."""
    app = create_app(sso_settings)
    server = TestServer(app, host="127.0.0.1", port=node_port)
    await server.start_server()
    try:
        yield SsoNode(f"http://localhost:{node_port}", sso_settings, app, MemoryAccounts(), MemorySessions())
    finally:
        await server.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # unsafe: keep the provider's cookies although its host is an IP address.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


class Forms(HTMLParser):
    """The forms of a page: action, method and the inputs' names and values; and its links."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.forms.append(
                {"action": a.get("action") or "", "method": (a.get("method") or "get").upper(), "inputs": {}}
            )
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["inputs"][a["name"]] = a.get("value") or ""
        elif tag == "a" and a.get("href"):
            self.links.append(str(a["href"]))


@dataclass
class Hop:
    status: int
    url: str
    text: str
    visited: list[str]


async def follow(
    http: aiohttp.ClientSession, method: str, url: str, data: dict[str, str] | None = None, stop_at: str | None = None
) -> Hop:
    """Follow redirects by hand (so a test can stop before a path, e.g. the callback)."""
    visited: list[str] = []
    for _ in range(20):
        if stop_at is not None and URL(url).path == stop_at:
            return Hop(0, url, "", visited)
        visited.append(url)
        async with http.request(method, url, data=data, allow_redirects=False) as response:
            text = await response.text()
            if response.status in (301, 302, 303, 307) and "Location" in response.headers:
                url = urljoin(url, response.headers["Location"])
                method, data = ("GET", None) if response.status != 307 else (method, data)
                continue
            return Hop(response.status, url, text, visited)
    raise AssertionError(f"too many redirects: {visited}")


async def submit(http: aiohttp.ClientSession, page: Hop, fields: dict[str, str], stop_at: str | None) -> Hop:
    parser = Forms()
    parser.feed(page.text)
    assert parser.forms, f"no form on {page.url}: {page.text[:300]}"
    form = parser.forms[0]
    return await follow(
        http, form["method"], urljoin(page.url, form["action"]), {**form["inputs"], **fields}, stop_at=stop_at
    )


async def provider_login(http: aiohttp.ClientSession, node: SsoNode, login: str, stop_at: str | None = None) -> Hop:
    """From the node's login route through the provider's own login and consent pages."""
    page = await follow(http, "GET", node.url + "/auth/oidc/login")
    assert page.status == 200 and "/interaction/" in page.url, (page.status, page.url, page.text[:300])
    page = await submit(http, page, {"login": login, "password": "any password"}, stop_at)
    if page.status == 200 and 'name="prompt" value="consent"' in page.text:
        page = await submit(http, page, {}, stop_at)
    return page


async def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)
