"""Fixtures of the account tests (their helpers are in tests/support/accounts.py)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.settings import Settings
from tests.support.accounts import SignedIn, add_account, sign_in


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Limits high enough that only the tests about limits meet them.
    return settings.replace(signin_address_attempts=1000, signin_account_failures=50)


@pytest.fixture
async def teacher(client: TestClient[Any, Any]) -> SignedIn:
    account = await add_account(client)
    return await sign_in(client, account.email)
