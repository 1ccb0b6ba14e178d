"""The grade outbox's two ends: `publish_grade`, which turns a grade into an outbox row, and
the worker that delivers rows to the platform (docs/lti.md "Grades (AGS)").

Every score is a Postgres row first (rooms/store/lti_outbox.py), so a platform that is down or
a node that restarts loses nothing: the worker of any node picks the row up when it is due.
A try that fails waits a capped, jittered exponential back-off; after the policy's last try the
row is `failed`, listed to admins, who may retry it. A newer score for the same attempt
supersedes the row (one row per attempt), and a version check keeps a delivery that was
overtaken in flight from marking the newer score delivered. Posting the same version twice
(a node died between the platform's 200 and the commit) sends the same timestamp, which the
platform treats as the same score: delivery is idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import math

from rooms.errors import Invalid
from rooms.lti_scores import Delivery, RetryPolicy, progress_of
from rooms.store.lti_endpoints import LinkEndpoints
from rooms.store.lti_outbox import GradeOutbox

from .ags import AgsClient
from .platform_client import PlatformError

logger = logging.getLogger(__name__)


class GradePublisher:
    def __init__(
        self,
        outbox: GradeOutbox,
        endpoints: LinkEndpoints,
        ags: AgsClient,
        policy: RetryPolicy,
        *,
        poll_seconds: float = 1.0,
        lease_seconds: float = 120.0,
        batch: int = 20,
    ) -> None:
        self._outbox = outbox
        self._endpoints = endpoints
        self._ags = ags
        self._policy = policy
        self._poll = poll_seconds
        self._lease = lease_seconds
        self._batch = batch
        self._wake = asyncio.Event()
        self._stopping = False

    async def publish_grade(
        self, attempt_id: str, score_given: float | None, score_maximum: float | None, *, final: bool
    ) -> bool:
        """THE ENTRY POINT for grades: queue the attempt's score for its platform. False (and
        nothing queued) when the attempt's room is not bound to a resource link or its student
        is not a platform user. `score_given` None: submitted, not graded yet."""
        for name, value in (("score_given", score_given), ("score_maximum", score_maximum)):
            if value is not None and (not math.isfinite(value) or value < 0):
                raise Invalid(f"{name} must be a finite number ≥ 0", fields={name: "out of range"})
        if score_given is not None and not score_maximum:
            raise Invalid("a score needs its maximum (> 0)", fields={"score_maximum": "missing"})
        target = await self._outbox.target(attempt_id)
        if target is None:
            return False
        progress = progress_of(score_given, final=final)
        await self._outbox.enqueue(attempt_id, target, score_given, score_maximum, progress)
        self._wake.set()
        return True

    def wake(self) -> None:
        """Look at the queue now (a retry was asked for), not at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Set before the task is cancelled, so that one swallowed cancellation ends the loop."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        try:
            missing = await self._outbox.enqueue_missing()
            if missing:
                logger.warning("grade outbox: %d submitted attempts had no grade queued; queued now", missing)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("grade outbox: the start-up sweep failed; the worker runs on")
        while not self._stopping:
            self._wake.clear()
            try:
                batch = await self._outbox.claim(self._batch, self._lease)
                if batch:
                    await asyncio.gather(*(self._deliver(d) for d in batch))
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("grade outbox: claiming failed; trying again")
            try:
                await asyncio.wait_for(self._wake.wait(), self._poll)
            except TimeoutError:
                pass

    async def deliver_due(self) -> int:
        """One pass over the due rows (tests and the CLI; the worker loops on the same)."""
        batch = await self._outbox.claim(self._batch, self._lease)
        await asyncio.gather(*(self._deliver(d) for d in batch))
        return len(batch)

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            linked = await self._endpoints.by_id(delivery.link_id)
            if linked is None:
                raise PlatformError("the resource link is gone", retry=False)
            await self._ags.post_score(linked, delivery)
        except asyncio.CancelledError:
            # The node is stopping mid-try: hand the row back now rather than leave it leased
            # (the lease is for a node that dies; a node that stops says so).
            await asyncio.shield(self._outbox.release(delivery))
            raise
        except PlatformError as exc:
            await self._failed_try(delivery, exc.reason, retry=exc.retry)
        except Exception:
            logger.exception("grade outbox: delivering %s failed unexpectedly", delivery.id)
            await self._failed_try(delivery, "internal error; it has been logged", retry=True)
        else:
            if await self._outbox.delivered(delivery):
                logger.info("grade outbox: delivered %s v%d", delivery.id, delivery.version)

    async def _failed_try(self, delivery: Delivery, reason: str, *, retry: bool) -> None:
        failed = not retry or self._policy.exhausted(delivery.tries)
        delay = self._policy.delay(delivery.tries)
        await self._outbox.later(delivery, reason, delay, failed=failed)
        if failed:
            logger.warning("grade outbox: %s failed after %d tries: %s", delivery.id, delivery.tries, reason)
        else:
            logger.info("grade outbox: %s try %d: %s; again in %.1f s", delivery.id, delivery.tries, reason, delay)
