"""The platforms' public keys: each registered platform's JWKS, fetched with a bounded request
(timeout, 1 MiB, no redirects), cached, and fetched again at once when a launch names a `kid`
the cache does not hold (the platform rotated its key) — at most every `refetch_seconds` per
URL, so forged tokens with random kids cannot make the tool hammer a platform.

The same approach as the single sign-on client (server/oidc_client.py), per platform URL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.parse
from dataclasses import dataclass, field

import aiohttp
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from .errors import LaunchError

logger = logging.getLogger(__name__)

MAX_JWKS_BYTES = 1 << 20


@dataclass
class _Cached:
    keys: KeySet
    kids: frozenset[str]
    fetched_at: float


@dataclass
class PlatformKeys:
    cache_seconds: float
    refetch_seconds: float
    timeout_seconds: float = 10.0
    fetches: int = 0  # for /metrics-free tests: how many times a JWKS was fetched
    _cache: dict[str, _Cached] = field(default_factory=dict)
    _last_refetch: dict[str, float] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_seconds))

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def key_set(self, url: str, kid: str | None) -> KeySet:
        """The key set that should hold `kid`; fetched again once if the cached one does not."""
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:  # concurrent launches fetch once
            cached, now = self._cache.get(url), time.monotonic()
            fresh = cached is not None and now - cached.fetched_at < self.cache_seconds
            if cached is not None and fresh and (kid is None or kid in cached.kids):
                return cached.keys
            if cached is not None and fresh:
                # An unknown kid: a rotation, or a forgery. Refetch, but not more often than allowed.
                if now - self._last_refetch.get(url, float("-inf")) < self.refetch_seconds:
                    return cached.keys
                self._last_refetch[url] = now
            try:
                cached = await self._fetch(url)
            except LaunchError:
                if cached is None:
                    raise
                logger.warning("LTI: the JWKS at %s could not be fetched; using the cached one", url)
                return cached.keys
            self._cache[url] = cached
            return cached.keys

    async def _fetch(self, url: str) -> _Cached:
        if self._http is None:
            raise LaunchError("unavailable", "The server is starting; launch again in a moment.", 503)
        where = urllib.parse.urlsplit(url).netloc
        self.fetches += 1
        try:
            async with self._http.get(url, allow_redirects=False, headers={"Accept": "application/json"}) as resp:
                raw = await resp.content.read(MAX_JWKS_BYTES + 1)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _unreachable(where, type(exc).__name__) from None
        if status != 200 or len(raw) > MAX_JWKS_BYTES:
            raise _unreachable(where, f"answered {status}" if status != 200 else "more than 1 MiB")
        try:
            document = json.loads(raw)
            keys = KeySet.import_key_set(document)
        except (JoseError, ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
            raise _unreachable(where, f"not a key set ({type(exc).__name__})") from None
        kids = frozenset(str(k.get("kid")) for k in document.get("keys", []) if isinstance(k, dict) and k.get("kid"))
        return _Cached(keys, kids, time.monotonic())


def _unreachable(where: str, why: str) -> LaunchError:
    return LaunchError(
        "platform_keys_unavailable",
        f"The learning platform's keys ({where}) could not be read: {why}. Try again in a moment.",
        502,
    )
