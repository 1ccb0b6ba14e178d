"""The durable event writer: one batched, idempotent path from client event to Postgres.

`submit()` returns only after the row is committed (or known to be stored already), so an
acknowledgement sent after it is a promise the data survives. Items are flushed by size or
within `flush_ms`; a batch is one transaction of `unnest()` inserts (close to COPY speed,
but with ON CONFLICT so re-sends are stored once). While Postgres is unreachable nothing
completes, the flusher retries with capped back-off, and every waiting item is written once
it is back. Memory is bounded: past `max_pending` waiting items `submit()` refuses at once
with `Unavailable`, and the client re-sends later.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from core.tasks import stop_tasks
from rooms.errors import Unavailable
from rooms.events import AnswerRecord, Evidence, Record, ViolationRecord, WriteResult

from .database import Pool

# The records are the domain's (rooms/events.py); importers of this module keep them.
__all__ = ["TRANSIENT", "AnswerRecord", "EventWriter", "Evidence", "Record", "ViolationRecord", "WriteResult"]

logger = logging.getLogger(__name__)

# Errors that mean "Postgres is not there right now": retry, never fail the event.
TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
)


@dataclass(slots=True)
class _Pending:
    record: Record
    future: asyncio.Future[WriteResult]
    received: float = field(default_factory=time.monotonic)


_INSERT_EVIDENCE = """
INSERT INTO evidence (id, attempt_id, content_type, data, taken_at, expires_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bytea[], $5::timestamptz[], $6::timestamptz[])
ON CONFLICT (id) DO NOTHING
"""

# Insert what is new and say which rows were new: only those are pushed to teachers and
# counted in the score (which is summed from violations when read, not kept up to date here).
_INSERT_VIOLATIONS = """
INSERT INTO violations (attempt_id, seq, source, kind, severity, occurred_at, details, evidence_id)
SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::float8[],
                     $6::timestamptz[], $7::jsonb[], $8::uuid[])
ON CONFLICT (attempt_id, source, seq) DO NOTHING
RETURNING id, attempt_id, source, seq
"""

# Last write wins by the client's sequence number; an older or repeated write changes nothing.
_UPSERT_ANSWERS = """
INSERT INTO answers (attempt_id, question_id, value, seq)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::bigint[])
ON CONFLICT (attempt_id, question_id) DO UPDATE
SET value = excluded.value, seq = excluded.seq, saved_at = now()
WHERE answers.seq < excluded.seq
"""


class EventWriter:
    def __init__(
        self,
        pool: Pool,
        *,
        flush_ms: float = 20.0,
        batch_size: int = 500,
        max_pending: int = 50_000,
        on_commit: Callable[[int, float, dict[str, int]], None] | None = None,
        overlap: bool = True,
    ) -> None:
        self._pool = pool
        self._flush_s = flush_ms / 1000
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._on_commit = on_commit
        self._pending: list[_Pending] = []
        self._wake = asyncio.Event()
        self._full = asyncio.Event()  # a full batch is waiting (wakes the overlapping flusher)
        self._overlap = overlap
        self._inflight = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.committed = 0
        self.failures = 0

    @property
    def depth(self) -> int:
        return len(self._pending) + self._inflight

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(primary=True), name="event-writer")]
        if self._overlap:
            self._tasks.append(asyncio.create_task(self._run(primary=False), name="event-writer-overlap"))

    async def close(self, timeout: float = 10.0) -> None:
        """Flush what is waiting (up to `timeout`), then stop."""
        self._closing = True
        self._wake.set()
        self._full.set()
        if not self._tasks:
            return
        done = asyncio.gather(*self._tasks)
        try:
            await asyncio.wait_for(asyncio.shield(done), timeout)
        except TimeoutError:
            await stop_tasks(self._tasks)
        for item in self._pending:
            if not item.future.done():
                item.future.set_exception(Unavailable("the server is shutting down; re-send", code="unavailable"))
        self._pending.clear()

    async def submit(self, record: Record) -> WriteResult:
        if self._closing:
            raise Unavailable("the server is shutting down; re-send", code="unavailable", retry_after=1)
        if len(self._pending) + self._inflight >= self._max_pending:
            raise Unavailable("the server is busy; re-send shortly", code="busy", retry_after=1)
        future: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(record, future))
        if len(self._pending) == 1 or len(self._pending) >= self._batch_size:
            # Wake the flusher for the first item (it then waits flush_ms for company)
            # and again when a batch is full.
            self._wake.set()
            if len(self._pending) >= self._batch_size:
                self._full.set()
        # The caller may give up (client gone): its cancellation cancels only this future,
        # which the flusher skips; the row is still written for the re-send. (No shield: it
        # cost a future and two callbacks per event.)
        return await future

    async def _run(self, primary: bool) -> None:
        """The primary flusher writes whatever is waiting (after at most flush_ms); the
        overlapping one only takes a full batch, so under load the next batch is encoded
        and sent while the previous one is still in Postgres, and at low rates the node
        still makes one commit at a time (larger batches, less CPU per event)."""
        backoff = 0.05
        while True:
            if primary:
                if not self._pending:
                    if self._closing:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                if not self._closing and len(self._pending) < self._batch_size:
                    # Let a batch gather: the first item waits at most flush_ms.
                    try:
                        await asyncio.wait_for(self._wait_full(), self._flush_s)
                    except TimeoutError:
                        pass
            elif len(self._pending) < self._batch_size:
                if self._closing:
                    return
                self._full.clear()
                await self._full.wait()
                continue
            if not self._pending:
                continue
            batch = self._pending[: self._batch_size]
            del self._pending[: len(batch)]
            self._inflight += len(batch)
            try:
                results = await self._write_isolating(batch)
            except TRANSIENT as exc:
                self._pending[0:0] = batch  # first in line again
                self.failures += 1
                logger.warning("event writer: Postgres unreachable (%s); retrying in %.2fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            except BaseException:
                self._pending[0:0] = batch  # cancelled (closing): close() fails them for a re-send
                raise
            finally:
                self._inflight -= len(batch)
            backoff = 0.05
            now = time.monotonic()
            kinds: dict[str, int] = {}
            for item, result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    if not item.future.done():
                        item.future.set_exception(result)
                    continue
                if not item.future.done():
                    item.future.set_result(result)
                name = item.record.kind if isinstance(item.record, ViolationRecord) else "answer"
                kinds[name] = kinds.get(name, 0) + 1
            self.committed += len(batch)
            if self._on_commit is not None:
                oldest = max((now - item.received for item in batch), default=0.0)
                self._on_commit(len(batch), oldest, kinds)

    async def _write_isolating(self, batch: list[_Pending]) -> list[WriteResult | BaseException]:
        try:
            return await self._write(batch)
        except asyncio.CancelledError:
            raise
        except TRANSIENT:
            raise
        except Exception:
            # One bad row (its attempt was erased, or a value that slipped past the edge's
            # checks) must never block everyone else's: retrying the same batch would
            # fail forever. Write it one by one and fail only the rows that fail.
            logger.exception("event writer: batch rejected; isolating the bad rows")
            return await self._write_one_by_one(batch)

    async def _wait_full(self) -> None:
        while len(self._pending) < self._batch_size and not self._closing:
            self._wake.clear()
            await self._wake.wait()

    async def _write(self, batch: list[_Pending]) -> list[WriteResult | BaseException]:
        violations = [p.record for p in batch if isinstance(p.record, ViolationRecord)]
        answers = [p.record for p in batch if isinstance(p.record, AnswerRecord)]
        stored: dict[tuple[Any, ...], int] = {}
        evidence = [v.evidence for v in violations if v.evidence is not None]
        statements = bool(evidence) + bool(violations) + bool(answers)
        async with _connection(self._pool) as conn, _maybe_transaction(conn, statements > 1):
            if evidence:
                await conn.execute(
                    _INSERT_EVIDENCE,
                    [e.id for e in evidence],
                    [v.attempt_id for v in violations if v.evidence is not None],
                    [e.content_type for e in evidence],
                    [e.data for e in evidence],
                    [e.taken_at for e in evidence],
                    [e.expires_at for e in evidence],
                )
            if violations:
                rows = await conn.fetch(
                    _INSERT_VIOLATIONS,
                    [v.attempt_id for v in violations],
                    [v.seq for v in violations],
                    [v.source for v in violations],
                    [v.kind for v in violations],
                    [v.severity for v in violations],
                    [v.occurred_at for v in violations],
                    [json.dumps(v.details) for v in violations],
                    [v.evidence.id if v.evidence else None for v in violations],
                )
                for r in rows:
                    stored[("v", r["attempt_id"], r["source"], r["seq"])] = r["id"]
            if answers:
                latest: dict[tuple[Any, ...], AnswerRecord] = {}
                for a in answers:
                    if a.key not in latest or latest[a.key].seq < a.seq:
                        latest[a.key] = a
                chosen = list(latest.values())
                await conn.execute(
                    _UPSERT_ANSWERS,
                    [a.attempt_id for a in chosen],
                    [a.question_id for a in chosen],
                    [json.dumps(a.value) for a in chosen],
                    [a.seq for a in chosen],
                )
        results: list[WriteResult | BaseException] = []
        first_seen: set[tuple[Any, ...]] = set()
        for item in batch:
            rec = item.record
            if isinstance(rec, ViolationRecord):
                hit = stored.get(rec.key)
                if hit is not None and rec.key not in first_seen:
                    first_seen.add(rec.key)
                    results.append(WriteResult(True, hit))
                else:
                    results.append(WriteResult(False))
            else:
                results.append(WriteResult(True))
        return results

    async def _write_one_by_one(self, batch: list[_Pending]) -> list[WriteResult | BaseException]:
        from rooms.errors import Invalid

        results: list[WriteResult | BaseException] = []
        for item in batch:
            try:
                results.extend(await self._write([item]))
            except TRANSIENT:
                raise
            except Exception as exc:
                logger.warning("event writer: rejected one %s: %s", type(item.record).__name__, exc)
                results.append(Invalid(f"the event was rejected: {type(exc).__name__}", code="rejected"))
        return results


class _NoTransaction:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


@asynccontextmanager
async def _connection(pool: Pool) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection whose release cannot fail the batch it carried.

    By the time the connection goes back the batch has committed (one statement, or the
    transaction closed) or its own error is on its way. Postgres shutting down can make the
    pool's reset on release fail ("another operation is in progress"); the pool then discards
    the connection, and raising that would report a committed batch as failed, so its rows
    would be written again one by one and acknowledged `stored: false` — a student's first
    acknowledgement of an event that *was* stored (seen in the Postgres-outage fault test).
    """
    conn = await pool.acquire()
    try:
        yield conn
    finally:
        try:
            await pool.release(conn)
        except Exception as exc:
            logger.warning("event writer: a connection failed its release (%s); the pool discards it", exc)


def _maybe_transaction(conn: asyncpg.Connection, needed: bool) -> Any:
    # One statement is atomic on its own; BEGIN/COMMIT would add two round trips per batch.
    return conn.transaction() if needed else _NoTransaction()
