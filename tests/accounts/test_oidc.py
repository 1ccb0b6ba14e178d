"""Single sign-on against a real OpenID Provider (oidc-provider, tests/accounts/provider.mjs):
the whole flow through the provider's own login and consent pages, by an HTTP client and by
Chromium, and every way a callback can be forged or a provider can misbehave."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from yarl import URL

from server.app import create_app
from server.embedded_pg import free_port
from server.http.oidc import CALLBACK_PATH, LOGIN_COOKIE, LoginCookie, LoginState
from server.oidc_client import Identity, ProviderMetadata, SignInError, is_admin, refusal
from server.settings import Settings
from tests.support.browser import CHROMIUM_ARGS
from tests.support.oidc import (
    CLIENT_ID,
    SESSION_COOKIE,
    Forms,
    Hop,
    Provider,
    SsoNode,
    follow,
    provider_login,
)


def cookie(http: aiohttp.ClientSession, name: str) -> str | None:
    found = [c.value for c in http.cookie_jar if c.key == name and c.value]
    return found[-1] if found else None


async def refused(node: SsoNode, page: Hop, status: int, reason: str, http: aiohttp.ClientSession) -> None:
    """An error page with this status and reason, no session anywhere, and an audit entry."""
    assert page.status == status, (page.status, page.url, page.text[:500])
    assert f'<code id="sso-reason">{reason}</code>' in page.text, page.text
    assert "Traceback" not in page.text
    assert node.sessions.sessions == {} and cookie(http, SESSION_COOKIE) is None
    entries = await node.audit()
    assert entries and entries[-1]["action"] == "signin.oidc.refused", entries
    assert entries[-1]["details"]["reason"] == reason


async def test_the_whole_flow_signs_a_teacher_in_and_opens_a_session(
    sso_node: SsoNode, http: aiohttp.ClientSession, provider: Provider
) -> None:
    before = await provider.stats()
    # The redirect to the provider: code flow, PKCE S256, state and nonce, our redirect URI.
    async with http.get(sso_node.url + "/auth/oidc/login", allow_redirects=False) as start:
        assert start.status == 302
        location = urlsplit(start.headers["Location"])
        raw_cookie = start.headers["Set-Cookie"]
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert location.geturl().startswith(provider.issuer + "/auth?")
    assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["scope"] == "openid email profile" and query["state"] and query["nonce"]
    assert query["redirect_uri"] == sso_node.url + CALLBACK_PATH
    assert "HttpOnly" in raw_cookie and "SameSite=Lax" in raw_cookie and "Path=/auth/oidc" in raw_cookie
    # The verifier never leaves the node except to the token endpoint.
    assert query["code_challenge"] not in raw_cookie

    page = await provider_login(http, sso_node, "alice")
    assert page.status == 200 and URL(page.url).path == "/teacher/", (page.status, page.url, page.text[:300])
    assert any(URL(u).path == CALLBACK_PATH for u in page.visited)
    assert sso_node.accounts.calls == [(provider.issuer, "alice", "alice@school.example", "Alice Admin", True)]
    session = cookie(http, SESSION_COOKIE)
    assert session is not None and sso_node.sessions.sessions[session].subject == "alice"
    assert cookie(http, LOGIN_COOKIE) is None  # used once
    entry = (await sso_node.audit())[-1]
    assert entry["action"] == "signin.oidc" and entry["actor_id"] == "alice"
    assert entry["details"]["email"] == "alice@school.example" and entry["details"]["admin"] is True

    # A second teacher, not in the admin group; discovery and keys come from the cache.
    http.cookie_jar.clear()
    page = await provider_login(http, sso_node, "erin")
    assert page.status == 200 and URL(page.url).path == "/teacher/"
    assert sso_node.accounts.calls[-1] == (provider.issuer, "erin", "erin@school.example", "Erin Teacher", False)
    after = await provider.stats()
    assert after["discovery"] - before["discovery"] == 1 and after["jwks"] - before["jwks"] == 1
    assert after["token"] - before["token"] == 2


async def test_sso_signs_in_a_real_account_with_a_real_session(
    sso_real_node: SsoNode, http: aiohttp.ClientSession, provider: Provider
) -> None:
    """The composition root's wiring: the identity becomes an account in Postgres (just in time,
    linked to the issuer and subject), the cookie is a server-side session /auth/me accepts, a
    second sign-in finds the same account, and a disabled account is refused."""
    from rooms.tokens import ADMIN_STATIC
    from server.keys import ACCOUNTS

    accounts = sso_real_node.app[ACCOUNTS]
    page = await provider_login(http, sso_real_node, "erin")
    assert page.status == 200 and URL(page.url).path == "/teacher/", (page.status, page.url, page.text[:300])
    session = cookie(http, SESSION_COOKIE)
    assert session is not None
    async with http.get(sso_real_node.url + "/auth/me", headers={"Cookie": f"{SESSION_COOKIE}={session}"}) as me:
        body = await me.json()
        assert me.status == 200, body
    account = await accounts.by_email("erin@school.example")
    assert account.role == "teacher" and account.state == "active" and account.password_hash is None
    assert body["sub"] == account.id and body["via"] == "session", body

    http.cookie_jar.clear()
    page = await provider_login(http, sso_real_node, "erin")
    assert URL(page.url).path == "/teacher/"
    assert (await accounts.by_email("erin@school.example")).id == account.id  # linked, not created again

    await accounts.set_state(ADMIN_STATIC, "erin@school.example", "disabled")
    http.cookie_jar.clear()
    page = await provider_login(http, sso_real_node, "erin")
    assert page.status == 403 and cookie(http, SESSION_COOKIE) is None, (page.status, page.text[:300])


async def test_the_config_tells_the_sign_in_page_whether_to_offer_sso(
    sso_node: SsoNode, http: aiohttp.ClientSession, settings: Settings
) -> None:
    async with http.get(sso_node.url + "/auth/config") as r:
        assert r.status == 200 and await r.json() == {"sso": {"enabled": True, "login_url": "/auth/oidc/login"}}
    # A node without a provider: no button, and the routes answer a clear 404 page.
    from aiohttp.test_utils import TestClient, TestServer

    async with TestClient(TestServer(create_app(settings))) as plain:
        r = await plain.get("/auth/config")
        assert (await r.json())["sso"]["enabled"] is False
        for path in ("/auth/oidc/login", "/auth/oidc/callback?state=x&code=y"):
            r = await plain.get(path, allow_redirects=False)
            assert r.status == 404 and "not_configured" in await r.text()


async def test_a_wrong_or_missing_state_is_refused(sso_node: SsoNode, http: aiohttp.ClientSession) -> None:
    at_callback = await provider_login(http, sso_node, "alice", stop_at=CALLBACK_PATH)
    assert at_callback.status == 0, at_callback
    forged = URL(at_callback.url).update_query(state="an-attackers-state")
    await refused(sso_node, await follow(http, "GET", str(forged)), 400, "state_mismatch", http)
    # No login cookie at all (a callback link sent to a victim): refused before any exchange.
    http.cookie_jar.clear()
    await refused(sso_node, await follow(http, "GET", at_callback.url), 400, "no_login", http)
    assert sso_node.accounts.calls == []


async def test_a_callback_naming_another_issuer_is_refused(sso_node: SsoNode, http: aiohttp.ClientSession) -> None:
    # RFC 9207: the provider names itself in the callback; a mix-up with another provider shows.
    at_callback = await provider_login(http, sso_node, "alice", stop_at=CALLBACK_PATH)
    assert URL(at_callback.url).query["iss"] == sso_node.settings.oidc_issuer
    forged = URL(at_callback.url).update_query(iss="https://idp.attacker.example")
    await refused(sso_node, await follow(http, "GET", str(forged)), 400, "wrong_issuer", http)


async def test_a_forged_login_cookie_is_refused(sso_node: SsoNode, http: aiohttp.ClientSession) -> None:
    at_callback = await provider_login(http, sso_node, "alice", stop_at=CALLBACK_PATH)
    state = parse_qs(URL(at_callback.url).query_string)["state"][0]
    # Right state, but sealed with another key: whoever made it does not hold the node secret.
    fake = LoginCookie("another-secret-" + "y" * 32).seal(LoginState(state, "n", "v" * 43, 2e9))
    http.cookie_jar.update_cookies({LOGIN_COOKIE: fake}, URL(sso_node.url + "/auth/oidc/"))
    await refused(sso_node, await follow(http, "GET", at_callback.url), 400, "no_login", http)


async def test_a_replayed_code_is_refused(sso_node: SsoNode, http: aiohttp.ClientSession) -> None:
    at_callback = await provider_login(http, sso_node, "erin", stop_at=CALLBACK_PATH)
    login_cookie = cookie(http, LOGIN_COOKIE)
    assert login_cookie is not None
    page = await follow(http, "GET", at_callback.url)
    assert page.status == 200 and len(sso_node.sessions.sessions) == 1
    # The same callback again, with the same login cookie (the attacker copied both).
    sso_node.sessions.sessions.clear()
    http.cookie_jar.clear()
    http.cookie_jar.update_cookies({LOGIN_COOKIE: login_cookie}, URL(sso_node.url + "/auth/oidc/"))
    await refused(sso_node, await follow(http, "GET", at_callback.url), 400, "code_refused", http)


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("issuer", "wrong_issuer"),
        ("audience", "wrong_audience"),
        ("azp", "wrong_audience"),
        ("expired", "token_expired"),
        ("old", "token_expired"),
        ("nonce", "nonce_mismatch"),
        ("signature", "bad_signature"),
        ("unknown-kid", "bad_signature"),
    ],
)
async def test_a_bad_id_token_is_refused(
    sso_node: SsoNode, http: aiohttp.ClientSession, provider: Provider, mode: str, reason: str
) -> None:
    before = await provider.stats()
    await provider.mode(mode)
    try:
        page = await provider_login(http, sso_node, "alice")
    finally:
        await provider.mode("none")
    await refused(sso_node, page, 400, reason, http)
    assert sso_node.accounts.calls == []
    if mode == "unknown-kid":  # an unknown kid fetched the keys again, once
        assert (await provider.stats())["jwks"] - before["jwks"] == 2


async def test_a_rotated_signing_key_is_fetched_again(
    sso_node: SsoNode, http: aiohttp.ClientSession, provider: Provider
) -> None:
    before = await provider.stats()
    assert (await provider_login(http, sso_node, "erin")).status == 200  # keys cached
    http.cookie_jar.clear()
    await provider.mode("rotated")
    try:
        page = await provider_login(http, sso_node, "erin")
    finally:
        await provider.mode("none")
    assert page.status == 200 and URL(page.url).path == "/teacher/", page.text[:500]
    assert (await provider.stats())["jwks"] - before["jwks"] == 2


async def test_the_providers_error_answer_is_shown_and_audited(sso_node: SsoNode, http: aiohttp.ClientSession) -> None:
    login_page = await follow(http, "GET", sso_node.url + "/auth/oidc/login")
    links = Forms()
    links.feed(login_page.text)
    abort = next(link for link in links.links if link.endswith("/abort"))
    # The provider's own "Cancel": it answers the callback with error=access_denied.
    page = await follow(http, "GET", str(URL(login_page.url).join(URL(abort))))
    await refused(sso_node, page, 403, "provider_error", http)
    assert "access_denied" in page.text


@pytest.mark.parametrize(("login", "reason"), [("dave", "account_disabled"), ("carol", "email_unverified")])
async def test_a_disabled_account_or_an_unverified_email_is_refused(
    sso_node: SsoNode, http: aiohttp.ClientSession, login: str, reason: str
) -> None:
    await refused(sso_node, await provider_login(http, sso_node, login), 403, reason, http)
    assert (await sso_node.audit())[-1]["actor_id"] == login


class TestAllowedDomains:
    @pytest.fixture
    def sso_settings(self, sso_settings: Settings) -> Settings:
        return sso_settings.replace(oidc_allowed_domains=("school.example",))

    async def test_an_email_domain_not_allowed_is_refused(self, sso_node: SsoNode, http: aiohttp.ClientSession) -> None:
        await refused(sso_node, await provider_login(http, sso_node, "bob"), 403, "domain_not_allowed", http)
        assert sso_node.accounts.calls == []
        http.cookie_jar.clear()
        assert (await provider_login(http, sso_node, "erin")).status == 200  # the listed domain passes


class TestProviderDown:
    @pytest.fixture
    def sso_settings(self, sso_settings: Settings) -> Settings:
        return sso_settings.replace(oidc_issuer=f"http://127.0.0.1:{free_port()}")  # nobody listens

    async def test_an_unreachable_provider_is_a_502_page_not_a_500(
        self, sso_node: SsoNode, http: aiohttp.ClientSession
    ) -> None:
        page = await follow(http, "GET", sso_node.url + "/auth/oidc/login")
        await refused(sso_node, page, 502, "provider_unavailable", http)
        # Garbage where the login cookie and the callback's parameters should be: a 400, no traceback.
        http.cookie_jar.update_cookies({LOGIN_COOKIE: "not.a-cookie"}, URL(sso_node.url + "/auth/oidc/"))
        page = await follow(http, "GET", sso_node.url + CALLBACK_PATH + "?state=%00&code=\u2028&iss=x")
        await refused(sso_node, page, 400, "no_login", http)


@pytest.mark.slow
async def test_the_sign_in_page_button_and_the_providers_pages_in_chromium(sso_node: SsoNode, chromium: str) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context()
            context.set_default_timeout(15_000)
            page = await context.new_page()
            await page.goto(sso_node.url + "/teacher/signin.html")
            await page.click("#sso-login")  # shown by js/sso.js from /auth/config
            await page.wait_for_selector("input[name=login]")  # the provider's own login page
            await page.fill("input[name=login]", "erin")
            await page.fill("input[name=password]", "any password")
            await page.click("button[type=submit]")
            await page.wait_for_selector("button:has-text('Continue')")  # its consent page
            await page.click("button:has-text('Continue')")
            await page.wait_for_url(sso_node.url + "/teacher/")
            cookies = {c["name"]: c for c in await context.cookies(sso_node.url)}
            assert cookies[SESSION_COOKIE]["httpOnly"] is True
            assert sso_node.sessions.sessions[cookies[SESSION_COOKIE]["value"]].subject == "erin"
            assert LOGIN_COOKIE not in cookies
        finally:
            await browser.close()


# -- pure rules (no provider needed) ------------------------------------------------------------


def _identity(email: str = "t@school.example", verified: bool = True, **claims: Any) -> Identity:
    return Identity("https://idp.example", "s", email, verified, "T", claims)


def test_admin_rules_read_a_list_a_value_or_a_boolean() -> None:
    assert is_admin({"groups": ["a", "proctor-admins"]}, ("groups", "proctor-admins"))
    assert is_admin({"role": "proctor-admins"}, ("role", "proctor-admins"))
    assert not is_admin({"groups": ["proctor-admins-not"]}, ("groups", "proctor-admins"))
    assert not is_admin({"groups": "a proctor-admins"}, ("groups", "proctor-admins"))
    assert is_admin({"is_admin": True}, ("is_admin", None)) and not is_admin({"is_admin": 1}, ("is_admin", None))
    assert not is_admin({"groups": ["proctor-admins"]}, ("", None))


def test_refusals_need_a_verified_email_in_an_allowed_domain() -> None:
    assert refusal(_identity(), ()) is None
    assert refusal(_identity(), ("school.example",)) is None
    assert getattr(refusal(_identity(verified=False), ()), "reason", None) == "email_unverified"
    assert getattr(refusal(_identity(email=""), ()), "reason", None) == "email_missing"
    # A subdomain is not the domain, and the domain must be the whole part after "@".
    for email in ("t@staff.school.example", "t@school.example.evil", "school.example@evil.example"):
        assert getattr(refusal(_identity(email=email), ("school.example",)), "reason", None) == "domain_not_allowed"


def test_a_discovery_document_must_name_the_issuer_and_offer_what_the_flow_needs() -> None:
    issuer = "https://idp.example/realms/school"
    good = {
        "issuer": issuer,
        "authorization_endpoint": issuer + "/auth",
        "token_endpoint": issuer + "/token",
        "jwks_uri": issuer + "/certs",
        "id_token_signing_alg_values_supported": ["HS256", "RS256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_post"],
    }
    metadata = ProviderMetadata.parse(issuer, good)
    assert metadata.algorithms == ("RS256",) and metadata.token_auth_method == "client_secret_post"
    # Absent or malformed lists mean the spec's defaults (client_secret_basic, RS256), not a crash.
    for broken in (None, "client_secret_post", 7):
        fallback = ProviderMetadata.parse(
            issuer,
            {**good, "token_endpoint_auth_methods_supported": broken, "id_token_signing_alg_values_supported": broken},
        )
        assert fallback.token_auth_method == "client_secret_basic" and fallback.algorithms == ("RS256",)
    for bad in (
        {"issuer": issuer + "/"},
        {"token_endpoint": "http://idp.example/token"},
        {"jwks_uri": None},
        {"code_challenge_methods_supported": ["plain"]},
        {"id_token_signing_alg_values_supported": ["HS256"]},
        {"token_endpoint_auth_methods_supported": ["private_key_jwt"]},
    ):
        with pytest.raises(SignInError) as info:
            ProviderMetadata.parse(issuer, {**good, **bad})
        assert info.value.status == 502, bad
