"""Python's cyclic garbage collector on a node holding thousands of sockets.

Each connected socket leaves ~100 long-lived objects (Engine.IO and Socket.IO state, aiohttp's
request, its tasks). A collection of the oldest generation walks all of them: with the
default settings, a full collection at 10,000-20,000 sockets paused the loop for 1-2.5 s
(docs/benchmarks.md). Two measures:

- `tune_gc()` at start-up: move the start-up objects out of the collector's reach
  (`gc.freeze()`) and collect young objects less often.
- `gc_ctx`: after a burst of new connections has settled, freeze everything: the new
  sockets' objects move to the permanent generation, so later collections walk only what was
  created since. Every collection's pause is timed (`gc.callbacks`) into `proctor_gc_pause_seconds{generation}`.

What a freeze costs: cyclic garbage alive at that moment (not yet collected) and a cycle that
becomes garbage after its objects were frozen are never collected. Sockets and their rooms
are released by reference counting when they close (they do not depend on the cyclic
collector), and freezes happen only after bursts of at least `FREEZE_AFTER_NEW_SOCKETS`
sockets, so what can leak is bounded by the objects of bursts that later turned into cycles.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web
from prometheus_client import Histogram

from core.tasks import stop_task

from .keys import HUB, METRICS, SETTINGS

logger = logging.getLogger(__name__)

THRESHOLDS = (50_000, 50, 100)
FREEZE_AFTER_NEW_SOCKETS = 500  # a burst at least this large is frozen once it settles
SETTLED_SECONDS = 2.0  # no more than FREEZE_AFTER_NEW_SOCKETS / 10 new sockets over this long
CHECK_SECONDS = 1.0
LONG_PAUSE_SECONDS = 0.05  # a collection longer than this is logged (the loop-pause target)


def tune_gc() -> None:
    """Move start-up objects out of the collector's reach and collect young objects less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)


class PauseTimer:
    """Times every collection through `gc.callbacks`."""

    def __init__(self, observe: Callable[[int, float], None]) -> None:
        self._observe = observe
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        try:
            self._record(phase, info)
        except RecursionError:
            # A collection starts wherever an object is allocated, and that can be at the
            # bottom of a parse of hostile JSON nested thousands deep, with no stack left
            # (seen in the REST fuzz test: "maximum recursion depth exceeded in comparison",
            # reported as unraisable). That pause goes untimed; the next start resets.
            self._started = 0.0

    def _record(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        if not self._started:
            return  # its start was not recorded
        seconds = time.perf_counter() - self._started
        self._observe(info["generation"], seconds)
        if seconds > LONG_PAUSE_SECONDS:
            logger.warning(
                "gc: generation %d collection paused the loop %.0f ms (%d objects collected)",
                info["generation"],
                seconds * 1000,
                info.get("collected", 0),
            )


class BurstFreezer:
    """Decides when a burst of new connections has settled and freezes its survivors."""

    def __init__(
        self, count: Callable[[], int], *, burst: int = FREEZE_AFTER_NEW_SOCKETS, settled: float = SETTLED_SECONDS
    ) -> None:
        self._count = count
        self._burst = burst
        self._settled = settled
        self._frozen_at = count()  # sockets when last frozen
        self._last = self._frozen_at
        self._quiet_since = time.monotonic()
        self.freezes = 0

    def tick(self, now: float | None = None) -> int:
        """Call every second or so; the number of new sockets it froze, or 0."""
        now = time.monotonic() if now is None else now
        current = self._count()
        if current - self._last > max(1, self._burst // 10):
            self._quiet_since = now  # still connecting
        self._last = current
        if current < self._frozen_at:
            self._frozen_at = current  # sockets left: count a new burst from here
        if current - self._frozen_at < self._burst or now - self._quiet_since < self._settled:
            return 0
        # No collection first: even the youngest generation took 58-69 ms to collect right
        # after a 15,000-socket burst (proctor_gc_pause_seconds, docs/benchmarks.md), the
        # very pause this avoids. gc.freeze() only splices lists: O(1).
        gc.freeze()
        frozen = current - self._frozen_at
        self._frozen_at = current
        self.freezes += 1
        return frozen


async def gc_ctx(app: web.Application) -> AsyncIterator[None]:
    pauses = Histogram(
        "proctor_gc_pause_seconds",
        "Cyclic garbage collector pauses by generation",
        ["generation"],
        buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        registry=app[METRICS].registry,
    )
    timer = PauseTimer(lambda generation, seconds: pauses.labels(str(generation)).observe(seconds))
    gc.callbacks.append(timer)
    task: asyncio.Task[None] | None = None
    if app[SETTINGS].gc_tuning:
        eio = app[HUB].sio.eio
        freezer = BurstFreezer(lambda: len(eio.sockets))

        async def watch() -> None:
            while True:
                await asyncio.sleep(CHECK_SECONDS)
                try:
                    frozen = freezer.tick()
                    if frozen:
                        logger.info("gc: froze the objects of %d new sockets", frozen)
                except Exception:
                    logger.exception("gc freezer failed; trying again")

        task = asyncio.create_task(watch(), name="gc-freezer")
    try:
        yield
    finally:
        await stop_task(task)
        gc.callbacks.remove(timer)
