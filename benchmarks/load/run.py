"""Load benchmark: N students in rooms of 30, a watching teacher per room, each student
sending one client event per second; prints connect rate, event→ack (durable) latency,
event→teacher latency, server CPU and RSS per connection.

    python -m benchmarks.load.run --students 2000 --seconds 30
    python -m benchmarks.load.run --students 2000 --seconds 30 --no-gc-tuning   # GC effect

It starts its own Postgres (embedded binaries) and one `proctor serve` pinned to core 0;
the generator runs pinned to core 1. Loopback only; bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from benchmarks.load.leanclient import LeanSocket
from server.embedded_pg import EmbeddedPostgres, free_port

ADMIN = "bench-admin-token-" + "x" * 20
RESULTS = Path(__file__).resolve().parent.parent / "results"


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50_ms": round(pct(values, 50) * 1000, 2), "p95_ms": round(pct(values, 95) * 1000, 2),
            "p99_ms": round(pct(values, 99) * 1000, 2), "max_ms": round(max(values, default=0) * 1000, 2)}


def rest(base: str, method: str, path: str, body: Any = None) -> Any:
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


def prepare(base: str, students: int, room_size: int) -> list[dict[str, Any]]:
    exam = rest(base, "POST", "/api/exams", {"title": "bench", "duration_minutes": 120, "questions": [
        {"id": "q1", "kind": "text", "text": "?"}]})
    rooms = []
    for r in range((students + room_size - 1) // room_size):
        room = rest(base, "POST", f"/api/exams/{exam['id']}/rooms", {"name": f"r{r}", "seats": room_size})
        n = min(room_size, students - r * room_size)
        invites = rest(base, "POST", f"/api/rooms/{room['id']}/invites",
                       {"students": [{"id": f"s{r}-{i}"} for i in range(n)]})["invites"]
        rooms.append({"id": room["id"], "tokens": [i["token"] for i in invites]})
    return rooms


async def drive(base: str, rooms: list[dict[str, Any]], seconds: float, rate: float, out: Any) -> None:
    ack_lat: list[float] = []
    teacher_lat: list[float] = []
    join_lat: list[float] = []
    errors: dict[str, int] = {}
    lag: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        sockets: list[LeanSocket] = []

        def on_teacher(event: str, data: Any) -> None:
            if event == "violation" and isinstance(data, dict):
                sent = data.get("details", {}).get("t")
                if sent:
                    teacher_lat.append(time.time() - sent)

        for room in rooms:
            teacher = LeanSocket(session, base, "/teacher")
            teacher.on_event = on_teacher
            await teacher.connect({"token": ADMIN})
            ack = await teacher.call("watch", {"room_id": room["id"]}, timeout=60)
            assert ack["ok"], ack
            sockets.append(teacher)

        students: list[LeanSocket] = []
        gate = asyncio.Semaphore(100)

        async def join(token: str) -> None:
            async with gate:
                s = LeanSocket(session, base, "/student")
                start = time.perf_counter()
                try:
                    await s.connect({"token": token})
                    ack = await s.call("join", {}, timeout=60)
                except Exception as exc:
                    errors[f"join:{type(exc).__name__}"] = errors.get(f"join:{type(exc).__name__}", 0) + 1
                    return
                if not ack.get("ok"):
                    errors["join:" + ack["error"]["code"]] = errors.get("join:" + ack["error"]["code"], 0) + 1
                    return
                join_lat.append(time.perf_counter() - start)
                students.append(s)

        t0 = time.perf_counter()
        await asyncio.gather(*[join(t) for room in rooms for t in room["tokens"]])
        connect_seconds = time.perf_counter() - t0
        out.put({"phase": "connected", "students": len(students)})
        out_ready = time.time()

        stop_at = time.perf_counter() + seconds

        async def student_loop(s: LeanSocket) -> None:
            seq = 0
            await asyncio.sleep(random.random() / rate)
            next_at = time.perf_counter()
            while time.perf_counter() < stop_at and not s.closed.is_set():
                seq += 1
                sent = time.time()
                start = time.perf_counter()
                try:
                    ack = await s.call("event", {"seq": seq, "kind": "copy", "occurred_at": datetime.now(UTC).isoformat(),
                                                 "details": {"t": sent}})
                    if ack.get("ok"):
                        ack_lat.append(time.perf_counter() - start)
                    else:
                        code = ack["error"]["code"]
                        errors[code] = errors.get(code, 0) + 1
                except Exception as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                next_at += 1 / rate
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

        async def lag_probe() -> None:
            while time.perf_counter() < stop_at:
                start = time.perf_counter()
                await asyncio.sleep(0.05)
                lag.append(time.perf_counter() - start - 0.05)

        await asyncio.gather(lag_probe(), *[student_loop(s) for s in students])
        await asyncio.sleep(1.0)  # last teacher deliveries
        for s in students + sockets:
            await s.close()
    out.put({"phase": "done", "ack": ack_lat, "teacher": teacher_lat, "join": join_lat, "errors": errors,
             "connect_seconds": connect_seconds, "students": len(students), "lag": lag, "ready_at": out_ready})


def worker(base: str, rooms: list[dict[str, Any]], seconds: float, rate: float, out: Any, cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    try:
        import uvloop

        uvloop.run(drive(base, rooms, seconds, rate, out))
    except ImportError:
        asyncio.run(drive(base, rooms, seconds, rate, out))


def start_server(args: argparse.Namespace, tmp: Path) -> tuple[subprocess.Popen[bytes], EmbeddedPostgres, str]:
    pg = EmbeddedPostgres(tmp / "pg", port=free_port())
    pg.start()
    port = free_port()
    env = {**os.environ, "PROCTOR_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{pg.port}/postgres",
           "PROCTOR_ADMIN_TOKEN": ADMIN, "PROCTOR_ROOMS_PER_NODE": "100000", "PROCTOR_LOG_LEVEL": "WARNING",
           "PROCTOR_GC_TUNING": "false" if args.no_gc_tuning else "true", "PROCTOR_MAX_CONNECTIONS": "30000"}
    cpu = {0} if os.cpu_count() and os.cpu_count() > 1 else None  # type: ignore[operator]
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--data-dir", str(tmp / "data")],
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "server.log", "wb"),
        preexec_fn=(lambda: os.sched_setaffinity(0, cpu)) if cpu else None,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    else:
        raise RuntimeError("server did not start; see " + str(tmp / "server.log"))
    return proc, pg, base


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--room-size", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rate", type=float, default=1.0, help="events per second per student")
    parser.add_argument("--procs", type=int, default=1, help="generator processes")
    parser.add_argument("--gen-cpus", default="1",
                        help="cores the generator processes take turns on (the server is pinned to core 0)")
    parser.add_argument("--no-gc-tuning", action="store_true")
    parser.add_argument("--url", help="target an already running node/cluster (no CPU/RSS figures)")
    args = parser.parse_args()
    if args.seconds > 600 or args.students > 20000:
        parser.error("bounded: at most 600 s and 20,000 students")

    tmp = Path(tempfile.mkdtemp(prefix="proctor-bench-"))
    proc = pg = None
    try:
        if args.url:
            base = args.url.rstrip("/")
        else:
            proc, pg, base = start_server(args, tmp)
        server = psutil.Process(proc.pid) if proc else None
        rss0 = server.memory_info().rss if server else 0
        rooms = prepare(base, args.students, args.room_size)
        out: Any = mp.get_context("spawn").Queue()
        shares = [rooms[i :: args.procs] for i in range(args.procs)]
        cpus = [int(c) for c in args.gen_cpus.split(",")] if (os.cpu_count() or 1) > 1 else [None]
        workers = [mp.get_context("spawn").Process(
                       target=worker, args=(base, share, args.seconds, args.rate, out, cpus[i % len(cpus)]))
                   for i, share in enumerate(shares) if share]
        t_start = time.perf_counter()
        for w in workers:
            w.start()
        connected = 0
        for _ in workers:
            connected += out.get(timeout=600)["students"]
        connect_wall = time.perf_counter() - t_start
        rss1 = server.memory_info().rss if server else 0
        cpu0 = server.cpu_times() if server else None
        w0 = time.perf_counter()
        results = [out.get(timeout=args.seconds + 300) for _ in workers]
        wall = time.perf_counter() - w0
        cpu1 = server.cpu_times() if server else None
        for w in workers:
            w.join(timeout=30)
        merge: dict[str, Any] = {"ack": [], "teacher": [], "join": [], "lag": [], "errors": {}}
        for r in results:
            for key in ("ack", "teacher", "join", "lag"):
                merge[key] += r[key]
            for code, n in r["errors"].items():
                merge["errors"][code] = merge["errors"].get(code, 0) + n
        cpu_share = ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / wall if cpu0 and cpu1 else None
        report = {
            "students": connected, "rooms": len(rooms), "generator_procs": len(workers), "generator_cpus": args.gen_cpus, "seconds": args.seconds, "rate_per_student": args.rate,
            "gc_tuning": not args.no_gc_tuning,
            "connect_rate_per_s": round(connected / connect_wall, 1),
            "join": summary(merge["join"]),
            "event_to_ack": summary(merge["ack"]),
            "event_to_teacher": summary(merge["teacher"]),
            "acked_per_s": round(len(merge["ack"]) / args.seconds, 1),
            "errors": merge["errors"],
            "server_cpu_share": round(cpu_share, 3) if cpu_share is not None else None,
            "server_cpu_ms_per_event": round(cpu_share * 1000 / max(1, len(merge["ack"]) / args.seconds), 3) if cpu_share else None,
            "server_rss_mb": round(rss1 / 2**20, 1) if server else None,
            "rss_kb_per_connection": round((rss1 - rss0) / 1024 / max(1, connected), 1) if server else None,
            "generator_loop_lag_p99_ms": round(pct(merge["lag"], 99) * 1000, 2),
            "generator_saturated": pct(merge["lag"], 99) > 0.05,
        }
        print(json.dumps(report, indent=2))
        if report["generator_saturated"]:
            print("WARNING: the generator's own loop lagged (p99 > 50 ms): figures are bounded by it", file=sys.stderr)
        RESULTS.mkdir(exist_ok=True)
        name = f"load-{connected}-{'gc' if report['gc_tuning'] else 'nogc'}-{int(time.time())}.json"
        (RESULTS / name).write_text(json.dumps(report, indent=2))
        return 0
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if pg is not None:
            pg.stop(mode="immediate")


if __name__ == "__main__":
    sys.exit(main())
