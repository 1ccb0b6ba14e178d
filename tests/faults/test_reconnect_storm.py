"""Reconnect storm: 1,000 students on one node lose their connections at once and all come
back (jittered exponential back-off, honouring refusals' retry hints) while 20 other
students keep sending an event every 200 ms; their event → ack p99 must stay under 500 ms
and the 1,000 must be back within 60 s.

The node is a real `proctor serve` process (LocalCluster without Redis or Nginx), with the
default admission settings (10 new connections/s per address, burst 500; node-wide 100/s,
burst 50, beyond which connects queue for their turn). The crowd runs
in its own process (tests/faults/storm.py) from three source addresses, 127.0.11.1 to
127.0.13.1 (334 clients each, inside one address's burst); the measured students and the
teacher connect from 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from benchmarks.load.leanclient import ConnectRefused, LeanSocket, Stats
from server.cli.cluster import LocalCluster, http_json
from server.settings import Settings
from tests.support.live import Live, running_node
from tests.support.node import ADMIN
from tests.support.postgres import PostgresServer

from .figures import ms, percentile, record

CROWD = 1000
ROOMS = 10  # the crowd's rooms, 100 students each
ADDRESSES = ("127.0.11.1", "127.0.12.1", "127.0.13.1")
MEASURED = 20
INTERVAL = 0.2
P99_LIMIT = 0.5
BACK_WITHIN = 60.0
GRACE = 15.0  # PROCTOR_RECONNECT_GRACE_SECONDS (the default): nobody may turn offline
CONVERGE = 10.0


async def histograms(http: aiohttp.ClientSession, url: str) -> dict[str, dict[str, float]]:
    """The node's latency histograms from /metrics: name -> {le: cumulative count}."""
    async with http.get(url + "/metrics") as resp:
        text = await resp.text()
    found: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        for name in ("proctor_event_loop_lag_seconds", "proctor_commit_latency_seconds"):
            if line.startswith(name + "_bucket{"):
                le = line.split('le="', 1)[1].split('"', 1)[0]
                found.setdefault(name, {})[le] = float(line.rsplit(" ", 1)[1])
    return found


def delta_quantiles(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """Observations between two scrapes: how many, and the bucket bound of p50, p99 and max."""
    counts = {le: after[le] - before.get(le, 0.0) for le in after}
    order = sorted(counts, key=lambda le: float("inf") if le == "+Inf" else float(le))
    total = counts["+Inf"]

    def bound(q: float) -> str:
        for le in order:
            if counts[le] >= q * total:
                return le
        return "+Inf"

    top = next((le for le in order if counts[le] >= total), "+Inf")
    return {"n": int(total), "p50_le_s": bound(0.5), "p99_le_s": bound(0.99), "max_le_s": top}


def raise_open_files() -> tuple[int, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


@pytest.fixture
async def node(postgres: PostgresServer, tmp_path: Path) -> AsyncIterator[LocalCluster]:
    """One `proctor serve` process on the session Postgres (a fresh database)."""
    local = LocalCluster(
        root=tmp_path / "node",
        node_count=1,
        database_url=await postgres.create_database(),
        use_redis=False,
        admin_token=ADMIN,
        env={
            "PROCTOR_DRAIN_TIMEOUT_SECONDS": "5",
            "PROCTOR_LOG_LEVEL": "WARNING",
            "PROCTOR_RECONNECT_GRACE_SECONDS": str(GRACE),
        },
    )
    try:
        await asyncio.to_thread(local.add_node)
        yield local
    finally:
        await asyncio.to_thread(local.stop)


class Crowd:
    """The storm process: JSON lines out, commands in."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def line(self, phase: str, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
            assert raw, f"the storm process ended before {phase!r}"
            data = json.loads(raw)
            if data["phase"] == phase:
                return dict(data)

    async def command(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        await self.proc.stdin.drain()


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_reconnect_storm_of_1000_keeps_connected_students_served(node: LocalCluster, tmp_path: Path) -> None:
    nofile = raise_open_files()
    url = node.nodes[0].url
    async with aiohttp.ClientSession() as http:
        live = Live(url, http)
        crowd_tokens: list[str] = []
        rooms = []
        for r in range(ROOMS):
            room = await live.room(seats=CROWD // ROOMS)
            rooms.append(room["id"])
            crowd_tokens += await live.invites(room["id"], CROWD // ROOMS, prefix=f"c{r}")
        measured_room = await live.room(seats=MEASURED)
        rooms.append(measured_room["id"])
        measured_tokens = await live.invites(measured_room["id"], MEASURED, prefix="m")
        teacher_token = await live.teacher_token(rooms)

        # The teacher watches all rooms and keeps every presence change it is told about.
        told: dict[str, list[str]] = {}
        stats = Stats()
        teacher = LeanSocket(http, url, "/teacher", stats)

        def on_event(body: str) -> None:
            if body.startswith('["presence"'):
                data = json.loads(body)[1]
                told.setdefault(data["attempt_id"], []).append(data["presence"])

        teacher.on_event = on_event
        await teacher.connect({"token": teacher_token})
        for room_id in rooms:
            assert (await teacher.call("watch", {"room_id": room_id}))["ok"]

        measured: list[tuple[LeanSocket, str]] = []
        for token in measured_tokens:
            sock = LeanSocket(http, url, "/student", stats)
            await sock.connect({"token": token})
            joined = await sock.call("join", {})
            assert joined["ok"], joined
            measured.append((sock, joined["attempt"]["attempt_id"]))

        tokens_file = tmp_path / "tokens.json"
        tokens_file.write_text(json.dumps(crowd_tokens))
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.faults.storm",
            url,
            str(tokens_file),
            *[arg for a in ADDRESSES for arg in ("--address", a)],
            "--limit",
            str(BACK_WITHIN),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=Path(__file__).resolve().parents[2],
        )
        crowd = Crowd(proc)
        try:
            connected = await crowd.line("connected", timeout=120)
            assert connected["n"] == CROWD, connected

            seq = 0
            sending = True
            sent: list[tuple[float, float, str | None]] = []  # (sent at, latency, error code)
            calls: set[asyncio.Task[None]] = set()

            async def one(sock: LeanSocket, payload: dict[str, Any]) -> None:
                start = time.monotonic()
                ack = await sock.call("event", payload, timeout=30)
                sent.append((start, time.monotonic() - start, None if ack.get("ok") else ack["error"]["code"]))

            async def send_every_interval() -> None:
                nonlocal seq
                while sending:
                    seq += 1
                    payload = {"seq": seq, "kind": "copy", "occurred_at": datetime.now(UTC).isoformat()}
                    for sock, _ in measured:
                        task = asyncio.create_task(one(sock, payload))
                        calls.add(task)
                        task.add_done_callback(calls.discard)
                    await asyncio.sleep(INTERVAL)

            # Postgres as the node sees it: how many of its sessions wait on a lock.
            pg_samples: list[tuple[int, int, int]] = []

            async def sample_postgres(conn: asyncpg.Connection) -> None:
                while True:
                    row = await conn.fetchrow(
                        "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock') AS waiting,"
                        " count(*) FILTER (WHERE state = 'active') AS active, count(*) AS total"
                        " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                    pg_samples.append((row["waiting"], row["active"], row["total"]))
                    await asyncio.sleep(0.25)

            sampler_conn = await asyncpg.connect(node.database_url)
            sender = asyncio.create_task(send_every_interval())
            await asyncio.sleep(5)
            baseline_end = time.monotonic()
            sampler = asyncio.create_task(sample_postgres(sampler_conn))
            told_before = {a: len(v) for a, v in told.items()}
            metrics_before = await histograms(http, url)
            await crowd.command("drop")
            await crowd.line("dropped", timeout=30)
            dropped_at = time.monotonic()
            dropped_wall = time.time()
            back = await crowd.line("back", timeout=BACK_WITHIN + 30)
            back_in = time.monotonic() - dropped_at
            metrics_back = await histograms(http, url)
            back_at = time.monotonic()

            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
            await sampler_conn.close()
            online_in: float | None = None
            # Until past the grace counted from the drop: nobody may turn offline.
            while time.monotonic() < max(back_at + 2, dropped_at + GRACE + 1):
                await asyncio.sleep(0.25)
                if online_in is None:
                    roster = [await teacher.call("watch", {"room_id": r}) for r in rooms]
                    states = Counter(e["presence"] for r in roster for e in r["students"])
                    if states == Counter({"online": CROWD + MEASURED}):
                        online_in = time.monotonic() - back_at
            roster = [await teacher.call("watch", {"room_id": r}) for r in rooms]
            final_states = Counter(e["presence"] for r in roster for e in r["students"])
            crowd_ids = [a for a, v in told.items() if told_before.get(a, 0) < len(v)]
            sequences = Counter(" > ".join(told[a][told_before.get(a, 0) :]) for a in crowd_ids)
            sending = False
            await sender
            await asyncio.wait_for(asyncio.gather(*calls), 30)
            await crowd.command("close")
            await crowd.line("closed", timeout=30)
        finally:
            if proc.returncode is None:
                if proc.stdin is not None:
                    proc.stdin.close()
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()

        status, _ = await asyncio.to_thread(http_json, url + "/readyz")
        alive = node.nodes[0].alive()
        conn = await asyncpg.connect(node.database_url)
        try:
            rows = await conn.fetch(
                "SELECT attempt_id, count(*) AS n, count(DISTINCT seq) AS d, max(seq) AS top FROM violations"
                " WHERE attempt_id = ANY($1::uuid[]) GROUP BY attempt_id",
                [uuid.UUID(a) for _, a in measured],
            )
            gaps = await conn.fetchval(
                "SELECT count(*) FROM attempt_log l JOIN attempts a ON a.id = l.attempt_id"
                " WHERE a.room_id = ANY($1::uuid[]) AND l.kind = 'network_gap'",
                [uuid.UUID(r) for r in rooms[:ROOMS]],
            )
        finally:
            await conn.close()
        for sock, _ in measured:
            await sock.close()
        await teacher.close()

    baseline = [lat for at, lat, _ in sent if at < baseline_end]
    storm = [lat for at, lat, _ in sent if dropped_at <= at < back_at]
    after = [lat for at, lat, _ in sent if at >= back_at]
    errors = Counter(code for _, _, code in sent if code)

    def latency(samples: list[float]) -> dict[str, Any]:
        return {
            "acks": len(samples),
            "p50_ms": ms(percentile(samples, 50)),
            "p99_ms": ms(percentile(samples, 99)),
            "max_ms": ms(max(samples, default=0.0)),
        }

    trace = os.environ.get("PROCTOR_STORM_TRACE")
    if trace:  # every measured event (sent at, relative to the drop; latency) for plotting
        # After the measurement: blocking file writes are allowed in tests (ASYNC230).
        Path(trace).write_text(
            json.dumps(
                {
                    "back_s": back_at - dropped_at,
                    "dropped_wall": dropped_wall,
                    "sent": [(round(at - dropped_at, 3), round(lat, 4), code) for at, lat, code in sent],
                }
            )
        )
    record(
        "reconnect_storm",
        crowd=CROWD,
        source_addresses=len(ADDRESSES),
        measured_students=MEASURED,
        interval_ms=ms(INTERVAL),
        open_files_limit=nofile[0],
        connect_phase=connected,
        back=back,
        back_after_drop_s=round(back_in, 2),
        baseline=latency(baseline),
        during_storm=latency(storm),
        after_back=latency(after),
        error_acks=dict(errors),
        postgres_sessions_max={
            "waiting_on_lock": max((w for w, _, _ in pg_samples), default=0),
            "active": max((a for _, a, _ in pg_samples), default=0),
            "total": max((t for _, _, t in pg_samples), default=0),
        },
        node_loop_lag=delta_quantiles(
            metrics_before["proctor_event_loop_lag_seconds"], metrics_back["proctor_event_loop_lag_seconds"]
        ),
        node_commit_latency=delta_quantiles(
            metrics_before["proctor_commit_latency_seconds"], metrics_back["proctor_commit_latency_seconds"]
        ),
        teacher_presence_sequences=dict(sequences.most_common(6)),
        roster_all_online_after_back_s=online_in,
        roster_after_grace=dict(final_states),
        network_gaps_logged=gaps,
        readyz_after=status,
        node_alive=alive,
    )
    assert back["n"] == CROWD and not back["failed"], back
    assert back["resumed"] == CROWD
    assert back_in < BACK_WITHIN
    assert online_in is not None and online_in <= CONVERGE, online_in
    assert final_states == Counter({"online": CROWD + MEASURED}), final_states
    assert sequences == Counter({"reconnecting > online": len(crowd_ids)}), sequences
    assert not errors, errors
    # The issue's bound: connected students' event -> ack p99 under 500 ms during the storm.
    # It holds because the node's work in a storm is bounded (docs/reliability.md): a
    # disconnect costs its socket's own rooms (signaling/room_index.py), and connects beyond
    # the node's pace wait their turn instead of being refused and coming back.
    storm_p99 = percentile(storm, 99)
    print(f"storm p99 {storm_p99:.3f}s (bound {P99_LIMIT}s)")
    assert storm_p99 < P99_LIMIT, f"event -> ack p99 {storm_p99:.3f}s during the storm"
    assert alive and status == 200
    # Every measured event is stored once (the sockets never dropped: no re-sends needed).
    assert len(rows) == MEASURED and all(r["n"] == r["d"] == r["top"] == seq for r in rows), (seq, rows[:3])


async def test_connect_refusal_carries_its_retry_hint(settings: Settings) -> None:
    """A client refused `rate_limited` at connect should learn when to come back: the node
    computes the wait (`RateLimited.retry_after`) but the refusal only carries the code."""
    tight = settings.replace(connects_per_ip_per_second=0.5, connect_burst_per_ip=1)
    async with running_node(tight) as live, aiohttp.ClientSession() as http:
        room = await live.room()
        first, second = await live.invites(room["id"], 2)
        ok = LeanSocket(http, live.url, "/student", Stats())
        await ok.connect({"token": first})
        refused = LeanSocket(http, live.url, "/student", Stats())
        with pytest.raises(ConnectRefused) as caught:
            await refused.connect({"token": second})
        await refused.close()
        await ok.close()
    data = json.loads(str(caught.value))["data"]
    record("connect_refusal", refusal=data)
    assert data["code"] == "rate_limited"
    assert float(data.get("retry_after") or 0) > 0, data
