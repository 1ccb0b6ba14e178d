"""The servers a load run targets, and what is read from them around each phase.

- `ours`: an embedded Postgres + one `proctor serve` pinned to the server core;
- `ours-nogc`: the same with `PROCTOR_GC_TUNING=false`;
- `relay`: benchmarks/baselines/relay_server.py (python-socketio, no auth, no storage);
- `relay-ping25`: the same with python-socketio's default 25 s ping interval (ours: 10 s);
- `echo`: benchmarks/baselines/ws_echo.py (raw aiohttp WebSockets, the ceiling);
- `url`: an already running node or Nginx front (`--url`), optionally with the Postgres
  and Redis it uses (`--pg-url`, `--redis-url`) for commits/s and Redis messages/s.

A `Probe` is one reading: server CPU seconds and RSS, Postgres xact_commit and CPU, the
node's `/metrics` loop-lag histogram, Redis publish calls. Two readings make a window.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from server.embedded_pg import EmbeddedPostgres, free_port

ADMIN = "bench-admin-token-" + "x" * 20
ROOT = Path(__file__).resolve().parents[2]
LAG_METRIC = "proctor_event_loop_lag_seconds_bucket"
GC_METRIC = "proctor_gc_pause_seconds_bucket"


def rest(base: str, method: str, path: str, body: Any = None, token: str = ADMIN) -> Any:
    req = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


def wait_ready(base: str, log: Path | None, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{base} did not become ready; see {log}")


@dataclass
class Probe:
    at: float
    cpu_s: float | None = None
    rss: int | None = None
    pg_commits: int | None = None
    pg_cpu_s: float | None = None
    lag_buckets: dict[float, float] | None = None
    gc_buckets: dict[str, dict[float, float]] | None = None
    redis_publish: int | None = None
    cores: list[Any] = field(default_factory=lambda: psutil.cpu_times(percpu=True))


@dataclass
class Target:
    name: str
    base: str
    proc: subprocess.Popen[bytes] | None = None
    pg: EmbeddedPostgres | None = None
    pg_url: str = ""
    redis_url: str = ""
    admin_token: str = ADMIN
    log: Path | None = None
    has_metrics: bool = False
    synthetic: bool = False  # baselines: rooms and tokens are made up, no REST
    _pg_pids: list[int] = field(default_factory=list)

    # -- rooms ----------------------------------------------------------------------------------

    def prepare(self, students: int, room_size: int) -> list[dict[str, Any]]:
        """Rooms of `room_size`: {id, teacher (token), tokens (one per student)}."""
        n_rooms = (students + room_size - 1) // room_size
        if self.synthetic:
            return [
                {"id": f"room-{r}", "teacher": "t", "tokens": [f"room-{r}"] * min(room_size, students - r * room_size)}
                for r in range(n_rooms)
            ]
        exam = rest(
            self.base,
            "POST",
            "/api/exams",
            {"title": "bench", "duration_minutes": 180, "questions": [{"id": "q1", "kind": "text", "text": "?"}]},
            self.admin_token,
        )
        rooms = []
        for r in range(n_rooms):
            room = rest(
                self.base,
                "POST",
                f"/api/exams/{exam['id']}/rooms",
                {"name": f"r{r}", "seats": room_size},
                self.admin_token,
            )
            n = min(room_size, students - r * room_size)
            invites = rest(
                self.base,
                "POST",
                f"/api/rooms/{room['id']}/invites",
                {"students": [{"id": f"s{r}-{i}"} for i in range(n)]},
                self.admin_token,
            )["invites"]
            rooms.append({"id": room["id"], "teacher": self.admin_token, "tokens": [i["token"] for i in invites]})
        return rooms

    # -- readings -------------------------------------------------------------------------------

    def probe(self) -> Probe:
        p = Probe(at=time.perf_counter())
        if self.proc is not None:
            try:
                proc = psutil.Process(self.proc.pid)
                t = proc.cpu_times()
                p.cpu_s = t.user + t.system
                p.rss = proc.memory_info().rss
            except psutil.Error:
                pass
        if self.pg_url:
            try:
                p.pg_commits = int(_pg_value(self.pg_url, "SELECT sum(xact_commit) FROM pg_stat_database"))
            except Exception:
                pass
        if self.pg is not None:
            p.pg_cpu_s = _tree_cpu(self.pg.data_dir)
        if self.has_metrics:
            p.lag_buckets, p.gc_buckets = _metric_buckets(self.base)
        if self.redis_url:
            p.redis_publish = _redis_publishes(self.redis_url)
        return p

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.pg is not None:
            try:
                self.pg.stop(mode="immediate")
            except Exception:
                pass


def window(a: Probe, b: Probe, events: float | None = None, connections: int | None = None) -> dict[str, Any]:
    """Figures between two readings."""
    wall = b.at - a.at
    out: dict[str, Any] = {"window_seconds": round(wall, 2)}
    if a.cpu_s is not None and b.cpu_s is not None:
        share = (b.cpu_s - a.cpu_s) / wall
        out["server_cpu_share"] = round(share, 3)
        if events:
            out["server_cpu_ms_per_event"] = round(share * 1000 / (events / wall), 4)
    if b.rss is not None:
        out["server_rss_mb"] = round(b.rss / 2**20, 1)
    if a.pg_commits is not None and b.pg_commits is not None:
        out["pg_commits_per_s"] = round((b.pg_commits - a.pg_commits) / wall, 1)
    if a.pg_cpu_s is not None and b.pg_cpu_s is not None:
        out["pg_cpu_share"] = round((b.pg_cpu_s - a.pg_cpu_s) / wall, 3)
    if a.lag_buckets and b.lag_buckets:
        out["server_loop_lag"] = lag_delta(a.lag_buckets, b.lag_buckets)
    if a.gc_buckets and b.gc_buckets:
        # Collector pauses by generation in the window (server/collector.py).
        out["server_gc"] = {
            gen: gc_delta(a.gc_buckets.get(gen, {}), buckets) for gen, buckets in sorted(b.gc_buckets.items())
        }
    # How busy each core was (everything on the machine, not only this benchmark): other
    # people's work on the server's core shows as busy minus the server's own share.
    out["core_busy"] = [
        round(1 - (tb.idle - ta.idle) / max(1e-9, sum(tb) - sum(ta)), 3) for ta, tb in zip(a.cores, b.cores)
    ]
    if a.redis_publish is not None and b.redis_publish is not None:
        out["redis_publish_per_s"] = round((b.redis_publish - a.redis_publish) / wall, 1)
    return out


def lag_delta(a: dict[float, float], b: dict[float, float]) -> dict[str, Any]:
    """Observations of the node's 100 ms loop-lag probe between two scrapes, by bucket."""
    total = b[float("inf")] - a[float("inf")]
    over = {le: total - (b[le] - a[le]) for le in sorted(b) if le != float("inf")}
    worst = next((le for le in sorted(over) if over[le] == 0), float("inf"))
    return {
        "samples": int(total),
        "over_50ms": int(over.get(0.05, 0)),
        "over_100ms": int(over.get(0.1, 0)),
        "over_25ms": int(over.get(0.025, 0)),
        "max_below_s": worst if worst != float("inf") else "inf",
    }


def gc_delta(a: dict[float, float], b: dict[float, float]) -> dict[str, Any]:
    """Collections of one generation between two scrapes: how many, how many over 50 ms."""
    total = b[float("inf")] - a.get(float("inf"), 0)
    over = {le: total - (b[le] - a.get(le, 0)) for le in sorted(b) if le != float("inf")}
    worst = next((le for le in sorted(over) if over[le] == 0), float("inf"))
    return {
        "collections": int(total),
        "over_10ms": int(over.get(0.01, 0)),
        "over_50ms": int(over.get(0.05, 0)),
        "max_below_s": worst if worst != float("inf") else "inf",
    }


def _lag_buckets(base: str) -> dict[float, float] | None:
    return _metric_buckets(base)[0]


def _metric_buckets(base: str) -> tuple[dict[float, float] | None, dict[str, dict[float, float]] | None]:
    """The loop-lag histogram and the GC pause histograms (by generation) from /metrics."""
    try:
        with urllib.request.urlopen(base + "/metrics", timeout=10) as resp:
            text = resp.read().decode()
    except OSError:
        return None, None
    buckets: dict[float, float] = {}
    collections: dict[str, dict[float, float]] = {}
    for line in text.splitlines():
        if line.startswith(LAG_METRIC):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float(le)] = float(line.rsplit(" ", 1)[1])
        elif line.startswith(GC_METRIC):
            gen = line.split('generation="', 1)[1].split('"', 1)[0]
            le = line.split('le="', 1)[1].split('"', 1)[0]
            collections.setdefault(gen, {})[float(le)] = float(line.rsplit(" ", 1)[1])
    return buckets or None, collections or None


def _pg_value(dsn: str, sql: str) -> Any:
    import asyncpg

    async def q() -> Any:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(q())


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """User + system CPU seconds of these processes; those already gone count 0."""
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _tree_cpu(data_dir: Path) -> float | None:
    """CPU seconds of the postmaster and its live children (backends, walwriter, …)."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        root = psutil.Process(pid)
        return cpu_seconds([root, *root.children(recursive=True)])
    except (OSError, ValueError, psutil.Error):
        return None


def _redis_publishes(url: str) -> int | None:
    try:
        import redis

        stats = redis.Redis.from_url(url).info("commandstats")
    except Exception:
        return None
    return sum(int(v.get("calls", 0)) for k, v in stats.items() if k in ("cmdstat_publish", "cmdstat_spublish"))


# -- starting servers -------------------------------------------------------------------------------


def _pinned(cpu: int | None) -> Any:
    return (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None


def start(name: str, tmp: Path, cpu: int | None, env_extra: dict[str, str] | None = None) -> Target:
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp / f"{name}.log"
    if name in ("relay", "relay-ping25", "echo"):
        module = "benchmarks.baselines.ws_echo" if name == "echo" else "benchmarks.baselines.relay_server"
        extra = ["--ping-interval", "25"] if name == "relay-ping25" else []
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "--port", str(port), *extra],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=open(log, "wb"),
            preexec_fn=_pinned(cpu),
        )
        target = Target(name, base, proc=proc, log=log, synthetic=True)
        try:
            wait_ready(base, log)
        except Exception:
            target.stop()
            raise
        return target
    if name not in ("ours", "ours-nogc"):
        raise ValueError(f"unknown target {name}")
    pg = EmbeddedPostgres(tmp / f"pg-{name}", port=free_port())
    pg.start()
    env = {
        **os.environ,
        "PROCTOR_DATABASE_URL": pg.dsn,
        "PROCTOR_ADMIN_TOKEN": ADMIN,
        "PROCTOR_ROOMS_PER_NODE": "100000",
        "PROCTOR_LOG_LEVEL": "WARNING",
        "PROCTOR_MAX_CONNECTIONS": "30000",
        "PROCTOR_GC_TUNING": "false" if name == "ours-nogc" else "true",
        # The generator's sockets come from a few loopback addresses; a real exam's come
        # from thousands. Admission per address is therefore relaxed, not measured here.
        "PROCTOR_CONNECTS_PER_IP_PER_SECOND": "10000",
        "PROCTOR_CONNECT_BURST_PER_IP": "100000",
        # Node-wide connection pacing is a policy for storms (tests/faults); the benchmark
        # measures how fast a node can admit, so it is lifted here too.
        "PROCTOR_CONNECTS_PER_SECOND": "100000",
        "PROCTOR_CONNECT_BURST": "100000",
        **(env_extra or {}),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server.cli.main",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(tmp / f"data-{name}"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),
        preexec_fn=_pinned(cpu),
    )
    target = Target(name, base, proc=proc, pg=pg, pg_url=pg.dsn, log=log, has_metrics=True)
    try:
        wait_ready(base, log)
    except Exception:
        target.stop()
        raise
    return target


def external(url: str, admin_token: str, pg_url: str, redis_url: str) -> Target:
    base = url.rstrip("/")
    return Target(
        "url",
        base,
        pg_url=pg_url,
        redis_url=redis_url,
        admin_token=admin_token or ADMIN,
        has_metrics=_lag_buckets(base) is not None,
    )
