"""A student page in miniature for fault tests: it numbers its events, keeps each one until
it is acknowledged, re-sends it after an error ack (after `retry_after`) or a timeout (with
jittered exponential back-off), and records every ack it ever receives, late ones too."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import socketio

from tests.support.live import Client

# Codes after which the page re-sends the same event (docs/protocol.md "Acks").
RETRY = frozenset({"rate_limited", "unavailable", "busy", "internal"})


@dataclass(frozen=True, slots=True)
class AckRecord:
    seq: int
    sent_at: float  # loop time the copy this ack answers was sent
    acked_at: float  # loop time the ack arrived
    ok: bool
    stored: bool
    code: str | None


@dataclass
class ResendingStudent:
    client: Client
    attempt_id: str
    seq: int = 0
    timeout: float = 2.0
    kind: str = "copy"
    pending: dict[int, dict[str, Any]] = field(default_factory=dict)
    first_sent: dict[int, float] = field(default_factory=dict)
    acks: list[AckRecord] = field(default_factory=list)
    sends: int = 0
    timeouts: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def acked(self) -> set[int]:
        return {a.seq for a in self.acks if a.ok}

    def attach(self, client: Client, last_seq: int) -> None:
        """A new socket after a reconnect; the counter continues above the server's last_seq."""
        self.client = client
        self.seq = max(self.seq, last_seq)

    def queue_event(self) -> int:
        """Number one event and keep it until acknowledged, without sending it yet."""
        self.seq += 1
        seq = self.seq
        self.pending[seq] = {"seq": seq, "kind": self.kind, "occurred_at": datetime.now(UTC).isoformat()}
        self.first_sent[seq] = asyncio.get_running_loop().time()
        return seq

    def new_event(self) -> int:
        """Number and send one event; its delivery runs until it is acknowledged."""
        seq = self.queue_event()
        task = asyncio.create_task(self._deliver(seq))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return seq

    async def emit_only(self, seq: int) -> None:
        """Send once with an ack callback but do not wait (for a socket about to vanish)."""
        await self._emit(seq, asyncio.get_running_loop().create_future())

    async def _emit(self, seq: int, answered: asyncio.Future[Any]) -> None:
        loop = asyncio.get_running_loop()
        sent_at = loop.time()

        def on_ack(*args: Any) -> None:
            ack: dict[str, Any] = args[0] if args and isinstance(args[0], dict) else {}
            ok = ack.get("ok") is True
            code = None if ok else ack.get("error", {}).get("code", "no_ack_payload")
            self.acks.append(AckRecord(seq, sent_at, loop.time(), ok, bool(ok and ack.get("stored")), code))
            if ok:
                self.pending.pop(seq, None)
            elif code:
                self.errors[code] += 1
            if not answered.done():
                answered.set_result(ack)

        self.sends += 1
        await self.client.sio.emit("event", self.pending[seq], namespace=self.client.namespace, callback=on_ack)

    async def _deliver(self, seq: int) -> None:
        tries = 0
        while seq in self.pending:
            answered: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            try:
                await self._emit(seq, answered)
                ack = await asyncio.wait_for(answered, self.timeout)
            except (TimeoutError, socketio.exceptions.BadNamespaceError, socketio.exceptions.DisconnectedError):
                self.timeouts += 1
                ack = None
            if seq not in self.pending:
                return
            if isinstance(ack, dict) and not ack.get("ok"):
                code = ack.get("error", {}).get("code")
                if code not in RETRY:
                    return  # the test sees it in `errors` and fails
                delay = float(ack["error"].get("retry_after") or 0.5)
            else:
                delay = min(4.0, 0.25 * 2**tries)
            tries += 1
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))

    async def resend_pending(self) -> None:
        """After a reconnect: re-send everything not yet acknowledged."""
        for seq in sorted(self.pending):
            task = asyncio.create_task(self._deliver(seq))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def settle(self, timeout: float) -> None:
        """Wait until nothing is pending (or fail after `timeout`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # Acks arrive on many tasks and sockets; a poll is simpler than one event per send.
        while self.pending and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        assert not self.pending, f"still unacknowledged after {timeout}s: {sorted(self.pending)}"

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except asyncio.CancelledError:
                pass


async def stored_rows(dsn: str | asyncpg.Pool, attempt_id: str) -> list[asyncpg.Record]:
    """The client violations Postgres holds for an attempt, and the attempt's score."""
    query = (
        "SELECT v.seq, v.severity, (SELECT coalesce(sum(w.severity), 0) FROM violations w"
        " WHERE w.attempt_id = v.attempt_id) AS score FROM violations v"
        " WHERE v.attempt_id = $1 AND v.source = 'client' ORDER BY v.seq"
    )
    if isinstance(dsn, str):
        conn = await asyncpg.connect(dsn)
        try:
            return list(await conn.fetch(query, uuid.UUID(attempt_id)))
        finally:
            await conn.close()
    return list(await dsn.fetch(query, uuid.UUID(attempt_id)))


def check_exactly_once(student: ResendingStudent, rows: list[asyncpg.Record], *, saw_every_ack: bool) -> None:
    """Every event the client numbered is stored once and acknowledged, and no seq had two
    `stored: true` acks (re-sends are acknowledged `stored: false`). With `saw_every_ack`
    (the socket never dropped) each seq had exactly one."""
    seqs = [r["seq"] for r in rows]
    assert seqs == list(range(1, student.seq + 1)), (student.attempt_id, seqs[:5], student.seq)
    assert student.acked == set(seqs)
    stored_acks = Counter(a.seq for a in student.acks if a.stored)
    assert all(n == 1 for n in stored_acks.values()), {s: n for s, n in stored_acks.items() if n != 1}
    if saw_every_ack:
        assert set(stored_acks) == set(seqs), sorted(set(seqs) - set(stored_acks))[:10]
    if rows:
        assert float(rows[0]["score"]) == sum(float(r["severity"]) for r in rows)
