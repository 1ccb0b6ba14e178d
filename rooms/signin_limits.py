"""Sign-in rate limits: failures per account, attempts per client address (sliding windows).

Kept in the node's memory: under Nginx `ip_hash` an address stays on one node, and a
cluster of N nodes at worst multiplies the per-account allowance by N (docs/accounts.md).
Accounts are keyed by the normalised email that was typed, whether or not it exists, so
the limit itself does not reveal which emails have accounts.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from .errors import RateLimited

_MAX_KEYS = 100_000  # bounded memory under a flood of made-up emails or addresses


class SlidingWindow:
    """At most `limit` hits per `window` seconds per key."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= _MAX_KEYS:
                self._prune(now)
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        return hits

    def _prune(self, now: float) -> None:
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self.window]:
            del self._hits[key]
        if len(self._hits) >= _MAX_KEYS:
            self._hits.clear()

    def retry_after(self, key: str) -> float:
        """0 if another hit is allowed now, else the seconds until one is."""
        now = self._clock()
        hits = self._recent(key, now)
        if len(hits) < self.limit:
            return 0.0
        return max(0.001, hits[0] + self.window - now)

    def hit(self, key: str) -> None:
        now = self._clock()
        self._recent(key, now).append(now)

    def clear(self, key: str) -> None:
        self._hits.pop(key, None)


class SignInLimits:
    """Failures per account (5 per 15 min by default) and attempts per address (20 per minute)."""

    def __init__(
        self,
        account_failures: int = 5,
        account_window: float = 900.0,
        address_attempts: int = 20,
        address_window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.accounts = SlidingWindow(account_failures, account_window, clock)
        self.addresses = SlidingWindow(address_attempts, address_window, clock)

    def check(self, email_key: str, address: str) -> None:
        """Refuse (429 with a retry hint) before any password is checked; counts the attempt."""
        wait = max(self.addresses.retry_after(address), self.accounts.retry_after(email_key))
        if wait:
            raise RateLimited(
                f"too many sign-in attempts; try again in {max(1, round(wait))} s",
                code="rate_limited",
                retry_after=max(1.0, round(wait, 1)),
            )
        self.addresses.hit(address)

    def failed(self, email_key: str) -> None:
        self.accounts.hit(email_key)

    def succeeded(self, email_key: str) -> None:
        self.accounts.clear(email_key)
