"""What password sign-ins cost a node: ms per Argon2id hash, sign-ins per second sustained,
and the event loop's lag (p50/p99/max) while they run, beside a baseline without sign-ins.

A real node (create_app, embedded Postgres in a temp dir) in this process; `--concurrency`
clients post `/auth/signin` with the right password for `--seconds`. The lag probe is a
10 ms sleeper on the node's loop: how late it wakes is what every socket of the node feels.
The HTTP clients share the loop, so the lag figures are an upper bound for the node alone.

    python benchmarks/auth/bench_signin.py --seconds 10 --concurrency 8

Not a test: it prints figures and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from rooms.passwords import MEMORY_KIB, PARALLELISM, TIME_COST, hasher
from rooms.tokens import ADMIN_STATIC
from server.app import create_app
from server.embedded_pg import EmbeddedPostgres, free_port
from server.keys import ACCOUNTS
from server.settings import Settings

PASSWORD = "benchmark password 1"


def ms_per_hash(rounds: int) -> float:
    ph = hasher()
    stored = ph.hash(PASSWORD)
    start = time.perf_counter()
    for _ in range(rounds):
        ph.verify(stored, PASSWORD)
    return (time.perf_counter() - start) / rounds * 1000


async def lag_during(seconds: float) -> list[float]:
    """Lag samples (seconds) of a 10 ms sleeper for `seconds`."""
    loop = asyncio.get_running_loop()
    samples: list[float] = []
    end = loop.time() + seconds
    while loop.time() < end:
        start = loop.time()
        await asyncio.sleep(0.01)
        samples.append(max(0.0, loop.time() - start - 0.01))
    return samples


def p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def run(seconds: float, concurrency: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-signin-"))
    pg = EmbeddedPostgres(root / "pg", port=free_port())
    pg.start()
    try:
        settings = Settings.load(
            environ={},
            env_file=None,
            database_url=f"postgresql://postgres@127.0.0.1:{pg.port}/postgres",
            secret="bench-secret-" + "x" * 32,
            data_dir=root / "data",
            node_id="bench",
            gc_tuning=False,
            signin_address_attempts=100_000,
            signin_account_failures=1000,
        )
        port = free_port()
        settings = settings.replace(public_url=f"http://127.0.0.1:{port}")
        app = create_app(settings)
        server = TestServer(app, host="127.0.0.1", port=port)
        await server.start_server()
        try:
            accounts = app[ACCOUNTS]
            emails = [f"bench-{i}@example.org" for i in range(concurrency)]
            for email in emails:
                await accounts.create(ADMIN_STATIC, email, "Bench", "teacher", PASSWORD)
            baseline = await lag_during(min(5.0, seconds))
            done = 0
            latencies: list[float] = []
            stop = asyncio.get_running_loop().time() + seconds
            url = f"http://127.0.0.1:{port}/auth/signin"

            async def client(email: str) -> None:
                nonlocal done
                async with aiohttp.ClientSession() as http:
                    while asyncio.get_running_loop().time() < stop:
                        start = time.perf_counter()
                        async with http.post(
                            url,
                            json={"email": email, "password": PASSWORD},
                            headers={"Origin": f"http://127.0.0.1:{port}"},
                        ) as resp:
                            await resp.read()
                            if resp.status == 200:
                                done += 1
                                latencies.append(time.perf_counter() - start)

            started = time.perf_counter()
            results = await asyncio.gather(lag_during(seconds), *(client(e) for e in emails))
            elapsed = time.perf_counter() - started
            loaded: list[float] = results[0] or []
        finally:
            await server.close()
    finally:
        pg.stop(mode="immediate")
    print(f"argon2id m={MEMORY_KIB} KiB t={TIME_COST} p={PARALLELISM}")
    print(f"  ms per hash (one thread, this process): {ms_per_hash(20):.1f}")
    print(f"  sign-ins/s sustained ({concurrency} clients, {seconds:.0f} s): {done / elapsed:.1f}")
    if latencies:
        print(f"  sign-in latency p50 {statistics.median(latencies) * 1000:.0f} ms, p99 {p(latencies, 0.99):.0f} ms")
    print(
        f"  loop lag baseline (no sign-ins): p50 {p(baseline, 0.5):.1f} ms, p99 {p(baseline, 0.99):.1f} ms,"
        f" max {max(baseline) * 1000:.1f} ms"
    )
    print(
        f"  loop lag during sign-ins:        p50 {p(loaded, 0.5):.1f} ms, p99 {p(loaded, 0.99):.1f} ms,"
        f" max {max(loaded) * 1000:.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(run(args.seconds, args.concurrency))
    return 0


if __name__ == "__main__":
    sys.exit(main())
