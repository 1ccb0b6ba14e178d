"""Durable violations per second and commit latency vs batch size, with the real
`rooms.store.event_writer.EventWriter` against an embedded Postgres (fsync on, synchronous
commit on, as `proctor serve` runs it), versus a single-row INSERT baseline and a COPY
ceiling.

    python -m benchmarks.storage.bench_writer                # about 2 minutes
    python -m benchmarks.storage.bench_writer --batches 100,500 --seconds 3

Three measurements per batch size:
- *saturated*: `--in-flight` producers (5,000) each submit, await the commit, submit the
  next: the most the writer commits per second, and the latency a client sees then;
- *paced*: a steady `--paced-rate` (2,000 events/s, the 10,000-student × 0.2/s load):
  the commit latency at a realistic load;
- and the two baselines: one INSERT … ON CONFLICT per event in its own transaction (a pool
  of 10 connections, 10 producers: what a naive handler does), and COPY of 5,000-row
  blocks (no ON CONFLICT, no score update: the ceiling Postgres can ingest).
Everything is bounded by `--seconds` per measurement. Results: benchmarks/results/storage-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from benchmarks.load.targets import cpu_seconds
from rooms.store.event_writer import EventWriter, ViolationRecord
from rooms.store.migrate import migrate
from server.embedded_pg import EmbeddedPostgres, free_port

RESULTS = Path(__file__).resolve().parents[1] / "results"


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def lat(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(pct(values, 50) * 1000, 2), "p99_ms": round(pct(values, 99) * 1000, 2)}


class Fixture:
    def __init__(self, pool: asyncpg.Pool, attempts: list[uuid.UUID], pg_root: psutil.Process) -> None:
        self.pool = pool
        self.attempts = attempts
        self.seq = 0
        self.pg_root = pg_root
        self.now = datetime.now(UTC)

    def record(self, i: int) -> ViolationRecord:
        self.seq += 1
        return ViolationRecord(
            attempt_id=self.attempts[i % len(self.attempts)],
            seq=self.seq,
            source="client",
            kind="copy",
            severity=1.0,
            occurred_at=self.now,
            details={"bt": time.time()},
        )

    def pg_cpu(self) -> float:
        return cpu_seconds([self.pg_root, *self.pg_root.children(recursive=True)])


class Meter:
    """Rows/s, this process's CPU and Postgres' CPU over one measurement."""

    def __init__(self, fx: Fixture) -> None:
        self.fx = fx

    def __enter__(self) -> Meter:
        self.t0, self.c0, self.p0 = time.perf_counter(), time.process_time(), self.fx.pg_cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.cpu = (time.process_time() - self.c0) / self.wall
        # A backend that exits takes its CPU time with it; a negative delta means "unknown".
        pg = (self.fx.pg_cpu() - self.p0) / self.wall
        self.pg = pg if pg >= 0 else float("nan")

    def figures(self, rows: int) -> dict[str, Any]:
        return {
            "rows_per_s": round(rows / self.wall),
            "bench_cpu_share": round(self.cpu, 2),
            "pg_cpu_share": round(self.pg, 2),
        }


async def writer_saturated(
    fx: Fixture, batch: int, seconds: float, in_flight: int, overlap: bool = True
) -> dict[str, Any]:
    commits: list[int] = []
    writer = EventWriter(
        fx.pool,
        flush_ms=2.0,
        batch_size=batch,
        max_pending=in_flight * 2,
        on_commit=lambda n, oldest, kinds: commits.append(n),
        overlap=overlap,
    )
    writer.start()
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def producer(i: int) -> None:
        while time.perf_counter() < stop:
            start = time.perf_counter()
            await writer.submit(fx.record(i))
            latencies.append(time.perf_counter() - start)

    with Meter(fx) as m:
        await asyncio.gather(*[producer(i) for i in range(in_flight)])
    await writer.close()
    return {
        "batch_size": batch,
        "mode": "saturated" if overlap else "saturated, 1 flusher",
        "in_flight": in_flight,
        **m.figures(len(latencies)),
        "commits_per_s": round(len(commits) / m.wall, 1),
        "mean_batch": round(sum(commits) / max(1, len(commits)), 1),
        **lat(latencies),
    }


async def writer_paced(fx: Fixture, batch: int, seconds: float, rate: float) -> dict[str, Any]:
    commits: list[int] = []
    writer = EventWriter(
        fx.pool,
        flush_ms=2.0,
        batch_size=batch,
        max_pending=50_000,
        on_commit=lambda n, oldest, kinds: commits.append(n),
    )
    writer.start()
    latencies: list[float] = []
    tasks: set[asyncio.Task[None]] = set()

    async def one(i: int) -> None:
        start = time.perf_counter()
        await writer.submit(fx.record(i))
        latencies.append(time.perf_counter() - start)

    with Meter(fx) as m:
        t0 = time.perf_counter()
        sent = 0
        while time.perf_counter() < t0 + seconds:
            due = int((time.perf_counter() - t0) * rate) - sent
            for _ in range(due):
                task = asyncio.create_task(one(sent))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.sleep(0.002)
        if tasks:
            await asyncio.wait(list(tasks), timeout=30)
    await writer.close()
    return {
        "batch_size": batch,
        "mode": "paced",
        "offered_per_s": rate,
        **m.figures(len(latencies)),
        "commits_per_s": round(len(commits) / m.wall, 1),
        "mean_batch": round(sum(commits) / max(1, len(commits)), 1),
        **lat(latencies),
    }


SINGLE = (
    "INSERT INTO violations (attempt_id, seq, source, kind, severity, occurred_at, details)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) ON CONFLICT (attempt_id, source, seq) DO NOTHING"
)


async def single_rows(fx: Fixture, seconds: float, workers: int) -> dict[str, Any]:
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def producer(i: int) -> None:
        async with fx.pool.acquire() as conn:
            while time.perf_counter() < stop:
                r = fx.record(i)
                start = time.perf_counter()
                await conn.execute(
                    SINGLE, r.attempt_id, r.seq, r.source, r.kind, r.severity, r.occurred_at, json.dumps(r.details)
                )
                latencies.append(time.perf_counter() - start)

    with Meter(fx) as m:
        await asyncio.gather(*[producer(i) for i in range(workers)])
    return {"mode": "single-row INSERT", "connections": workers, **m.figures(len(latencies)), **lat(latencies)}


INSERT_ONLY = """
INSERT INTO violations (attempt_id, seq, source, kind, severity, occurred_at, details, evidence_id)
SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::float8[],
                     $6::timestamptz[], $7::jsonb[], $8::uuid[])
ON CONFLICT (attempt_id, source, seq) DO NOTHING
"""


async def unnest_without_score(fx: Fixture, seconds: float, block: int) -> dict[str, Any]:
    """The writer's INSERT without the attempts' score UPDATE and RETURNING: what they cost."""
    rows = 0
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    with Meter(fx) as m:
        async with fx.pool.acquire() as conn:
            while time.perf_counter() < stop:
                recs = [fx.record(i) for i in range(block)]
                start = time.perf_counter()
                await conn.execute(
                    INSERT_ONLY,
                    [r.attempt_id for r in recs],
                    [r.seq for r in recs],
                    [r.source for r in recs],
                    [r.kind for r in recs],
                    [r.severity for r in recs],
                    [r.occurred_at for r in recs],
                    [json.dumps(r.details) for r in recs],
                    [None] * block,
                )
                latencies.append(time.perf_counter() - start)
                rows += block
    return {"mode": "unnest, no score", "block": block, **m.figures(rows), "commit_p50_ms": lat(latencies)["p50_ms"]}


async def copy_ceiling(fx: Fixture, seconds: float, block: int, connections: int = 1) -> dict[str, Any]:
    """COPY of `block`-row blocks on `connections` connections at once: what Postgres ingests
    here with no conflict check at all (the records are built while the other connection's
    block is in Postgres, so 2 connections overlap encoding and ingest, as the writer's two
    flushers do)."""
    rows = 0
    latencies: list[float] = []
    stop = time.perf_counter() + seconds
    columns = ["attempt_id", "seq", "source", "kind", "severity", "occurred_at", "details"]

    async def copier() -> None:
        nonlocal rows
        async with fx.pool.acquire() as conn:
            while time.perf_counter() < stop:
                records = []
                for i in range(block):
                    r = fx.record(i)
                    records.append(
                        (r.attempt_id, r.seq, r.source, r.kind, r.severity, r.occurred_at, json.dumps(r.details))
                    )
                start = time.perf_counter()
                await conn.copy_records_to_table("violations", records=records, columns=columns)
                latencies.append(time.perf_counter() - start)
                rows += block

    with Meter(fx) as m:
        await asyncio.gather(*[copier() for _ in range(connections)])
    return {
        "mode": "COPY",
        "block": block,
        "connections": connections,
        **m.figures(rows),
        "commit_p50_ms": lat(latencies)["p50_ms"],
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="proctor-storage-"))
    pg = EmbeddedPostgres(tmp / "pg", port=free_port())
    pg.start()
    try:
        conn = await asyncpg.connect(pg.dsn)
        await migrate(conn)
        exam, room = uuid.uuid4(), uuid.uuid4()
        await conn.execute(
            "INSERT INTO exams (id, title, duration_seconds, questions, rules, created_by)"
            " VALUES ($1, 'bench', 3600, '[]', '{}', 'bench')",
            exam,
        )
        await conn.execute("INSERT INTO rooms (id, exam_id, name, seats) VALUES ($1, $2, 'r', 100000)", room, exam)
        attempts = [uuid.uuid4() for _ in range(args.attempts)]
        await conn.executemany(
            "INSERT INTO attempts (id, exam_id, room_id, student_id, deadline) VALUES ($1, $2, $3, $4, now() + interval '1 day')",
            [(a, exam, room, f"s{i}") for i, a in enumerate(attempts)],
        )
        await conn.close()

        async def init(c: asyncpg.Connection) -> None:
            await c.execute("SET synchronous_commit = on")

        pool = await asyncpg.create_pool(pg.dsn, min_size=2, max_size=20, init=init)
        pid = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
        fx = Fixture(pool, attempts, psutil.Process(pid))
        out: dict[str, Any] = {"writer": [], "baselines": []}
        for batch in [int(b) for b in args.batches.split(",")]:
            for overlap in (True, False) if args.overlap == "both" else (args.overlap == "on",):
                r = await writer_saturated(fx, batch, args.seconds, args.in_flight, overlap)
                print(json.dumps(r), file=sys.stderr, flush=True)
                out["writer"].append(r)
            r = await writer_paced(fx, batch, args.seconds, args.paced_rate)
            print(json.dumps(r), file=sys.stderr, flush=True)
            out["writer"].append(r)
        for r in (
            await single_rows(fx, args.seconds, 1),
            await single_rows(fx, args.seconds, 10),
            await unnest_without_score(fx, args.seconds, 500),
            await copy_ceiling(fx, args.seconds, 5000),
            await copy_ceiling(fx, args.seconds, 5000, connections=2),
        ):
            print(json.dumps(r), file=sys.stderr, flush=True)
            out["baselines"].append(r)
        out["violations_stored"] = await pool.fetchval("SELECT count(*) FROM violations")
        await pool.close()
        return out
    finally:
        pg.stop(mode="immediate")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="1,10,50,100,250,500,1000,2000")
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement (bounded: at most 30)")
    parser.add_argument("--in-flight", type=int, default=5000)
    parser.add_argument("--paced-rate", type=float, default=2000)
    parser.add_argument("--attempts", type=int, default=2000)
    parser.add_argument(
        "--overlap",
        choices=("on", "off", "both"),
        default="both",
        help="saturated runs with the writer's overlapping flusher, without, or both",
    )
    args = parser.parse_args()
    if args.seconds > 30 or args.in_flight > 20000:
        parser.error("bounded: at most 30 s per measurement and 20,000 in flight")
    started = time.time()
    import uvloop

    report = {
        "args": vars(args),
        "machine": {"cpus": os.cpu_count(), "loadavg_at_start": os.getloadavg()},
        **uvloop.run(main_async(args)),
    }
    best = max((r["rows_per_s"] for r in report["writer"] if r["mode"] == "saturated"), default=0)
    report["best_writer_rows_per_s"] = best
    report["target_50k_met"] = best >= 50_000
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"storage-{int(started)}.json"
    path.write_text(json.dumps(report, indent=2))
    print(
        f"{'mode':>20} {'batch':>6} {'rows/s':>8} {'commits/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'py cpu':>6} {'pg cpu':>6}"
    )
    for r in report["writer"] + report["baselines"]:
        print(
            f"{r['mode'] + (' x%d' % r['connections'] if r['mode'] == 'COPY' else ''):>20} "
            f"{r.get('batch_size', r.get('block', r.get('connections', ''))):>6} {r['rows_per_s']:>8} "
            f"{r.get('commits_per_s', ''):>9} {r.get('p50_ms', r.get('commit_p50_ms', '')):>8} {r.get('p99_ms', ''):>8} "
            f"{r['bench_cpu_share']:>6} {r['pg_cpu_share']:>6}"
        )
    print(f"best writer throughput {best}/s; target >= 50,000/s {'met' if best >= 50_000 else 'MISSED'}; {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
