"""Continuous load for cluster faults: students that send an event every 100 ms through
Nginx, keep what is unacknowledged, reconnect (to whichever node takes them) and re-send, and
record every ack's latency; plus the invariant checks shared by the cluster faults."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from tests.support.cluster import Cluster, Participant


@dataclass(frozen=True, slots=True)
class Timed:
    seq: int
    sent: float  # time.monotonic() of the send
    latency: float
    ok: bool
    stored: bool
    code: str | None


class LoadedStudent(Participant):
    """A cluster Participant that records every ack and survives drops while it sends."""

    def __init__(self, url: str, token: str, subnet: int) -> None:
        super().__init__(url, "/student", token, subnet)
        self.timed: list[Timed] = []
        self.errors: Counter[str] = Counter()
        self.resumes: list[tuple[float, float]] = []  # (drop noticed, joined again), monotonic
        self.lost_calls = 0  # sends that got no ack (timeout, disconnect)

    async def _send(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        # Like the page, notice a dropped socket at once instead of waiting out the ack
        # timeout (python-socketio's `call` is not woken by a disconnect).
        start = time.monotonic()
        call = asyncio.ensure_future(super()._send(payload))
        gone = asyncio.ensure_future(self.gone.wait())
        try:
            await asyncio.wait({call, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not call.done():
            call.cancel()
            try:
                await call
            except asyncio.CancelledError:
                pass
            ack = None
        else:
            ack = call.result()
        if ack is None:
            self.lost_calls += 1
            return None
        ok = ack.get("ok") is True
        code = None if ok else ack.get("error", {}).get("code")
        if code:
            self.errors[code] += 1
        self.timed.append(
            Timed(payload["seq"], start, time.monotonic() - start, ok, bool(ok and ack.get("stored")), code)
        )
        return ack

    async def recover(self) -> None:
        noticed = time.monotonic()
        await self.resume(timeout=30)
        self.resumes.append((noticed, time.monotonic()))

    async def step(self) -> None:
        """One tick of the page: reconnect if dropped, else re-send the oldest unacknowledged
        event or send a new one; honour an error's retry_after."""
        if self.gone.is_set() or self.sio is None:
            await self.recover()
            return
        if self.pending:
            ack = await self._send(self.pending[min(self.pending)])
        else:
            ack = await self.event("copy")
        if ack is not None and not ack.get("ok"):
            await asyncio.sleep(float(ack["error"].get("retry_after") or 0.5))

    async def run(self, stop: asyncio.Event, interval: float) -> None:
        while not stop.is_set():
            await self.step()
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                pass

    async def settle(self, timeout: float = 40) -> None:
        deadline = time.monotonic() + timeout
        while self.pending or self.gone.is_set():
            assert time.monotonic() < deadline, f"unacknowledged after {timeout}s: {sorted(self.pending)}"
            await self.step()


@dataclass
class Load:
    students: list[LoadedStudent]
    interval: float = 0.1
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self.tasks = [asyncio.create_task(s.run(self.stop, self.interval)) for s in self.students]

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks)
        await asyncio.gather(*(s.settle() for s in self.students))


async def loaded_students(
    cluster: Cluster, people: list[Participant], room_id: str, per_node: dict[str, int], prefix: str
) -> list[LoadedStudent]:
    """`per_node[node]` students whose /24 Nginx sends to `node`, each joined."""
    total = sum(per_node.values())
    tokens = iter(cluster.invites(room_id, total, prefix))
    made: list[LoadedStudent] = []
    for node_id, count in per_node.items():
        subnet = await cluster.subnet_of(node_id)
        for _ in range(count):
            person = LoadedStudent(cluster.url, next(tokens), subnet)
            people.append(person)
            await person.connect()
            await person.join()
            made.append(person)
    return made


async def check_invariant(database_url: str, students: list[LoadedStudent]) -> dict[str, Any]:
    """Every event a student numbered is stored exactly once, no seq was acknowledged
    `stored: true` twice, and the score is the sum of the stored rows' weights."""
    conn = await asyncpg.connect(database_url)
    try:
        rows_total = 0
        for s in students:
            attempt_id = s.joined["attempt"]["attempt_id"]
            rows = await conn.fetch(
                "SELECT seq, severity FROM violations WHERE attempt_id = $1 AND source = 'client' ORDER BY seq",
                uuid.UUID(attempt_id),
            )
            score = await conn.fetchval(
                "SELECT coalesce(sum(severity), 0) FROM violations WHERE attempt_id = $1", uuid.UUID(attempt_id)
            )
            seqs = [r["seq"] for r in rows]
            assert seqs == list(range(1, s.seq + 1)), (attempt_id, len(seqs), s.seq, sorted(s.pending))
            assert s.acked <= set(seqs)
            stored_twice = [q for q, n in Counter(t.seq for t in s.timed if t.stored).items() if n > 1]
            assert not stored_twice, stored_twice
            assert float(score) == sum(float(r["severity"]) for r in rows)
            rows_total += len(rows)
    finally:
        await conn.close()
    return {"rows": rows_total}


def pushes(teacher: Participant, students: list[LoadedStudent]) -> dict[str, int]:
    """How often each stored event reached the teacher: duplicates are a bug; a push lost with
    a killed node or a stopped Redis is best effort (docs/cluster.md) and only counted."""
    ids = {s.joined["attempt"]["attempt_id"] for s in students}
    seen = Counter(
        (v["attempt_id"], v["seq"])
        for v in teacher.received.events["violation"]
        if v["attempt_id"] in ids and v["source"] == "client"
    )
    expected = sum(s.seq for s in students)
    return {"expected": expected, "received": len(seen), "duplicates": sum(n - 1 for n in seen.values())}
