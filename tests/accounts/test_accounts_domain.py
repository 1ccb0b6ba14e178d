"""The pure parts (limits, emails, hashing) and the domain service against the real store."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from rooms.accounts import normalise_email
from rooms.errors import Forbidden, Invalid, RateLimited
from rooms.passwords import Passwords, hasher
from rooms.signin_limits import SignInLimits, SlidingWindow
from rooms.tokens import ADMIN_STATIC
from server.keys import ACCOUNTS, POOL
from tests.support.accounts import PASSWORD, add_account, app_of

Client = TestClient[Any, Any]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sliding_window_allows_limit_then_says_when() -> None:
    clock = Clock()
    window = SlidingWindow(3, 60, clock)
    for _ in range(3):
        assert window.retry_after("k") == 0
        window.hit("k")
    assert window.retry_after("k") == pytest.approx(60)
    clock.now += 59.5
    assert window.retry_after("k") == pytest.approx(0.5)
    clock.now += 0.5
    assert window.retry_after("k") == 0
    assert window.retry_after("other") == 0


def test_sign_in_limits_per_account_and_per_address() -> None:
    clock = Clock()
    limits = SignInLimits(account_failures=2, account_window=900, address_attempts=3, address_window=60, clock=clock)
    for _ in range(2):
        limits.check("a@x.org", "10.0.0.1")
        limits.failed("a@x.org")
    with pytest.raises(RateLimited) as refused:
        limits.check("a@x.org", "10.0.0.2")
    assert refused.value.retry_after is not None and 890 < refused.value.retry_after <= 900
    limits.check("b@x.org", "10.0.0.1")  # third attempt from .1
    with pytest.raises(RateLimited):
        limits.check("c@x.org", "10.0.0.1")
    clock.now += 61
    limits.check("c@x.org", "10.0.0.1")
    limits.succeeded("a@x.org")  # a success clears the account's failures
    limits.check("a@x.org", "10.0.0.3")


@pytest.mark.parametrize("bad", ["", "no-at-sign", "@x.org", "a@nodot", "a b@x.org", "a@" + "x" * 250 + ".org"])
def test_bad_emails_are_invalid(bad: str) -> None:
    with pytest.raises(Invalid):
        normalise_email(bad)


def test_email_is_trimmed_not_lowered() -> None:
    assert normalise_email("  Ada@Example.ORG ") == "Ada@Example.ORG"


async def test_hashing_is_argon2id_with_the_chosen_parameters_and_bounded() -> None:
    passwords = Passwords(workers=1)
    try:
        stored = await passwords.hash("a good password")
        assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        assert await passwords.verify(stored, "a good password")
        assert not await passwords.verify(stored, "another password")
        assert not await passwords.verify("not a hash", "a good password")
        assert not passwords.needs_rehash(stored)
        assert passwords.needs_rehash(hasher(time_cost=1, memory_kib=8192).hash("x"))
        with pytest.raises(Invalid):
            await passwords.hash("short")
        with pytest.raises(Invalid):
            await passwords.hash("p" * 1025)
    finally:
        passwords.close()


async def test_an_old_hash_is_replaced_at_sign_in(client: Client) -> None:
    account = await add_account(client, password=None)
    weak = hasher(time_cost=1, memory_kib=8192).hash(PASSWORD)
    pool = app_of(client)[POOL]
    await pool.execute("UPDATE accounts SET password_hash = $2 WHERE id = $1::uuid", account.id, weak)
    await app_of(client)[ACCOUNTS].sign_in_password(account.email, PASSWORD, address="127.0.0.1")
    stored = await pool.fetchval("SELECT password_hash FROM accounts WHERE id = $1::uuid", account.id)
    assert stored != weak and "m=19456,t=2,p=1" in stored


async def test_sign_in_sso_finds_links_creates_and_refuses_disabled(client: Client) -> None:
    accounts = app_of(client)[ACCOUNTS]
    issuer, tag = "https://idp.example", uuid.uuid4().hex[:8]
    # Just in time: a new teacher (or admin when the IdP says so), linked to the identity.
    created = await accounts.sign_in_sso(issuer, f"sub-{tag}", f"new-{tag}@example.org", "New One", False)
    assert created.role == "teacher" and created.password_hash is None
    again = await accounts.sign_in_sso(issuer, f"sub-{tag}", f"changed-{tag}@example.org", "x", False)
    assert again.id == created.id  # found by (issuer, subject), not by email
    admin = await accounts.sign_in_sso(issuer, f"adm-{tag}", f"adm-{tag}@example.org", "Boss", True)
    assert admin.role == "admin"
    # Linked by verified email to an existing (password) account.
    existing = await add_account(client)
    linked = await accounts.sign_in_sso("https://other.example", f"o-{tag}", existing.email.upper(), "x", False)
    assert linked.id == existing.id
    pool = app_of(client)[POOL]
    assert (
        await pool.fetchval(
            "SELECT account_id::text FROM account_identities WHERE issuer = 'https://other.example' AND subject = $1",
            f"o-{tag}",
        )
        == existing.id
    )
    await accounts.set_state(ADMIN_STATIC, existing.email, "disabled")
    with pytest.raises(Forbidden):
        await accounts.sign_in_sso("https://other.example", f"o-{tag}", existing.email, "x", False)
    actions = [
        r["action"]
        for r in await pool.fetch("SELECT action FROM audit_log WHERE target_id = $1 ORDER BY id", existing.id)
    ]
    assert actions[-4:] == ["account.link", "signin", "account.disable", "signin.refused"]


async def test_a_flood_of_hashes_is_refused_not_queued_without_bound() -> None:
    import asyncio

    from rooms.errors import Unavailable

    passwords = Passwords(workers=1, max_waiting=1)
    try:
        stored = await passwords.hash("a good password")
        results = await asyncio.gather(
            *(passwords.verify(stored, "a good password") for _ in range(5)), return_exceptions=True
        )
        assert results[:2] == [True, True]
        assert all(isinstance(r, Unavailable) and r.retry_after for r in results[2:]), results
    finally:
        passwords.close()
