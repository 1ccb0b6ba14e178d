"""Which sites may frame the LTI pages: the registered platforms' origins, on those pages only.

Every page of the node sends `frame-ancestors 'none'` and `X-Frame-Options: DENY`
(server/http/pages.py). A platform opens the tool in an iframe, so the LTI routes (`/lti/…`)
and the exam and dashboard pages reached from a launch (`/exam/?lti=1`, `/teacher/?…&lti=1`,
the addresses the launch redirects to) answer with `frame-ancestors` naming the origins of
the registered platforms' issuers and login URLs instead, and without X-Frame-Options (it
cannot name origins). The list is read from Postgres and cached for a few seconds.
"""

from __future__ import annotations

import time
import urllib.parse
from typing import Protocol

from aiohttp import web

CACHE_SECONDS = 5.0
FRAMED_PAGES = ("/exam/", "/teacher/")


class PlatformUrls(Protocol):
    async def platform_urls(self) -> tuple[str, ...]: ...


def origin_of(url: str) -> str | None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return None
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2].lower()}"


def framed(request: web.Request) -> bool:
    """Whether this response may be framed by a platform."""
    path = request.path
    return path.startswith("/lti/") or (path in FRAMED_PAGES and request.query.get("lti") == "1")


def frame_ancestors(origins: tuple[str, ...]) -> str:
    return "frame-ancestors " + (" ".join(origins) if origins else "'none'")


class FrameAncestors:
    def __init__(self, store: PlatformUrls) -> None:
        self._store = store
        self._cached: tuple[tuple[str, ...], float] | None = None

    def forget(self) -> None:
        """A platform was registered, changed or removed on this node: read the list again."""
        self._cached = None

    async def origins(self) -> tuple[str, ...]:
        now = time.monotonic()
        if self._cached is None or now - self._cached[1] > CACHE_SECONDS:
            urls = await self._store.platform_urls()
            origins = tuple(sorted({o for o in map(origin_of, urls) if o is not None}))
            self._cached = (origins, now)
        return self._cached[0]

    async def on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """aiohttp `on_response_prepare`: rewrite the CSP of the framed pages."""
        if not framed(request):
            return
        policy = response.headers.get("Content-Security-Policy")
        if policy is None:
            return
        try:
            origins = await self.origins()
        except Exception:  # Postgres down: the page stays unframeable rather than failing
            return
        response.headers["Content-Security-Policy"] = policy.replace("frame-ancestors 'none'", frame_ancestors(origins))
        response.headers.popall("X-Frame-Options", None)
