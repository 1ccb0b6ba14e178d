"""Calling a platform's services: an OAuth 2.0 access token by the client-credentials grant with
a signed JWT client assertion (RFC 7523, 1EdTech Security Framework §4.1), cached per platform
and scope set until shortly before it expires, and bounded HTTP for the service calls.

Bounded: a total timeout per request, no redirects followed (a token must not travel to
another host), a response body read up to a size limit, every JSON answer validated with a
pydantic model. Any failure is a `PlatformError` carrying a short reason and whether trying
again may help; the access token and the assertion never appear in it or in a log line.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rooms.lti import Platform

logger = logging.getLogger(__name__)

# The tool's keys: rooms/store/lti_keys.py ToolKeys.signing_key.
SigningKey = Callable[[], Awaitable[tuple[str, RSAPrivateKey]]]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_SECONDS = 300  # the spec's upper bound for the assertion's lifetime is 5 minutes
TOKEN_EARLY_SECONDS = 30  # a cached token is dropped this long before it expires
MAX_RESPONSE_BYTES = 1 << 20
M = TypeVar("M", bound=BaseModel)


class PlatformError(Exception):
    """A platform call that did not succeed: `reason` is safe to store and show to admins."""

    def __init__(self, reason: str, *, status: int | None = None, retry: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry = retry


class TokenAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    access_token: str = Field(min_length=1, max_length=8192)
    token_type: str = Field(min_length=1, max_length=64)
    expires_in: int = Field(default=3600, ge=1, le=86400 * 7)
    scope: str = Field(default="", max_length=4096)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    links: Mapping[str, str]  # the Link header's rel -> URL (NRPS paging)
    body: bytes

    def json_as(self, model: type[M]) -> M:
        try:
            return model.model_validate(json.loads(self.body))
        except (ValueError, UnicodeDecodeError, RecursionError, ValidationError) as exc:
            raise PlatformError(f"the platform's answer is not the expected JSON ({type(exc).__name__})") from None


@dataclass(slots=True)
class _Token:
    value: str
    expires_at: float


class PlatformClient:
    """One per node; `close()` at shutdown (the services' cleanup context)."""

    def __init__(self, signing_key: SigningKey, *, timeout_seconds: float = 10.0) -> None:
        self._signing_key = signing_key
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None
        self._tokens: dict[tuple[str, frozenset[str]], _Token] = {}

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _http(self) -> aiohttp.ClientSession:
        # Made on first use: a session belongs to the running loop, and the node is built before it.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def client_assertion(self, platform: Platform) -> str:
        kid, key = await self._signing_key()
        now = int(time.time())
        claims = {
            "iss": platform.client_id,
            "sub": platform.client_id,
            "aud": platform.access_token_url,
            "iat": now,
            "exp": now + ASSERTION_SECONDS,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})

    async def token(self, platform: Platform, scopes: frozenset[str]) -> str:
        cache_key = (platform.id, scopes)
        cached = self._tokens.get(cache_key)
        if cached is not None and cached.expires_at > time.monotonic():
            return cached.value
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": await self.client_assertion(platform),
            "scope": " ".join(sorted(scopes)),
        }
        answer = await self._send("POST", platform.access_token_url, data=form, headers={"Accept": "application/json"})
        if answer.status != 200:
            # 400/401 from a token endpoint: a registration problem (wrong client id, unknown
            # key); still retried, since an admin may fix it while the score waits.
            raise PlatformError(f"the token endpoint answered {answer.status}", status=answer.status)
        parsed = answer.json_as(TokenAnswer)
        if parsed.token_type.lower() != "bearer":
            raise PlatformError(f"the token endpoint gave a {parsed.token_type!r} token, not a bearer token")
        lifetime = max(1.0, parsed.expires_in - TOKEN_EARLY_SECONDS)
        self._tokens[cache_key] = _Token(parsed.access_token, time.monotonic() + lifetime)
        return parsed.access_token

    def forget_token(self, platform: Platform, scopes: frozenset[str]) -> None:
        """After a 401: the platform no longer takes the cached token."""
        self._tokens.pop((platform.id, scopes), None)

    async def call(
        self,
        platform: Platform,
        scopes: frozenset[str],
        method: str,
        url: str,
        *,
        accept: str,
        body: Mapping[str, Any] | None = None,
        content_type: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Answer:
        """A service call with a bearer token; one fresh token and one more try after a 401."""
        for first in (True, False):
            token = await self.token(platform, scopes)
            headers = {"Authorization": f"Bearer {token}", "Accept": accept}
            data: bytes | None = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = content_type or "application/json"
            answer = await self._send(method, url, data=data, headers=headers, params=params)
            if answer.status == 401 and first:
                self.forget_token(platform, scopes)
                continue
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(
        self,
        method: str,
        url: str,
        *,
        data: bytes | Mapping[str, str] | None,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
    ) -> Answer:
        if not url.startswith(("https://", "http://")):
            raise PlatformError("the platform named a service URL that is not HTTP(S)", retry=False)
        try:
            async with self._http().request(
                method, url, data=data, headers=headers, params=params, allow_redirects=False
            ) as resp:
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.content.iter_chunked(64 << 10):
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES:
                        raise PlatformError(f"the platform's answer is larger than {MAX_RESPONSE_BYTES} bytes")
                    chunks.append(chunk)
                links = {str(rel): str(info.get("url", "")) for rel, info in resp.links.items()}
                return Answer(resp.status, dict(resp.headers), links, b"".join(chunks))
        except PlatformError:
            raise
        except TimeoutError:
            raise PlatformError(f"the platform did not answer {method} within the timeout") from None
        except aiohttp.ClientError as exc:
            raise PlatformError(f"the platform could not be reached ({type(exc).__name__})") from None
