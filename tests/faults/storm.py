"""The crowd of the reconnect storm: ~1,000 students on benchmarks/load/leanclient.py sockets,
run as a separate process so their CPU is not in the loop that measures latency.

    python -m tests.faults.storm URL TOKENS_JSON --address 127.0.11.1 --address 127.0.12.1

Client i connects from address i mod n (Nginx-less: the node admits connections per address).
Commands on stdin, one per line: `drop` closes every connection at once (no Socket.IO or
WebSocket goodbye, like a network failure) and every client reconnects and re-joins;
`close` ends. One JSON line on stdout per phase.

Reconnecting clients behave like socket.io-client's defaults: the n-th retry waits
min(5, 1 × 2ⁿ) s ± 50 %, or the server's `retry_after` when it is longer, after a
`rate_limited` or `capacity` refusal of the connect or the join.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sys
import time
from collections import Counter
from typing import Any

import aiohttp

from benchmarks.load.leanclient import ConnectRefused, LeanSocket, Stats

DELAY, DELAY_MAX, RANDOMIZATION = 1.0, 5.0, 0.5


def raise_open_files() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def refusal(exc: ConnectRefused) -> tuple[str, float | None]:
    """The code and retry hint of a connect refusal (`44/student,{"message", "data"}`)."""
    try:
        data = json.loads(str(exc)).get("data") or {}
        return str(data.get("code", "refused")), data.get("retry_after")
    except (ValueError, AttributeError):
        return "refused", None


class Crowd:
    def __init__(self, url: str, tokens: list[str], addresses: list[str], deadline: float) -> None:
        self.url = url
        self.tokens = tokens
        self.addresses = addresses
        self.deadline = deadline
        self.stats = Stats()
        self.sessions: dict[str, aiohttp.ClientSession] = {}
        self.sockets: dict[int, LeanSocket] = {}
        self.refusals: Counter[str] = Counter()
        self.hints: list[float] = []
        self.attempts = 0
        self.resumed = 0
        self.took: list[float] = []

    def open_sessions(self) -> None:
        self.sessions = {
            a: aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(a, 0), limit=0)) for a in self.addresses
        }

    async def bring_up(self, i: int, *, first_wait: bool) -> None:
        start = time.monotonic()
        session = self.sessions[self.addresses[i % len(self.addresses)]]
        tries = 0
        hint: float | None = None
        while True:
            if first_wait or tries:
                backoff = min(DELAY_MAX, DELAY * 2 ** max(0, tries - (0 if first_wait else 1)))
                delay = max(backoff * random.uniform(1 - RANDOMIZATION, 1 + RANDOMIZATION), hint or 0.0)
                await asyncio.sleep(delay)
            tries += 1
            self.attempts += 1
            sock = LeanSocket(session, self.url, "/student", self.stats)
            try:
                await sock.connect({"token": self.tokens[i]}, timeout=20)
                ack = await sock.call("join", {}, timeout=30)
                if ack.get("ok"):
                    self.sockets[i] = sock
                    self.resumed += bool(ack.get("resumed"))
                    self.took.append(time.monotonic() - start)
                    return
                code, hint = ack["error"]["code"], ack["error"].get("retry_after")
            except ConnectRefused as exc:
                code, hint = refusal(exc)
            except (aiohttp.ClientError, OSError, TimeoutError, ConnectionError) as exc:
                code, hint = type(exc).__name__, None
            await sock.close()
            self.refusals[code] += 1
            if hint:
                self.hints.append(float(hint))
            if time.monotonic() > self.deadline:
                raise RuntimeError(f"client {i} not back: last refusal {code}")

    async def bring_all_up(self, *, first_wait: bool, concurrency: int) -> dict[str, Any]:
        self.refusals.clear()
        self.hints.clear()
        self.attempts = self.resumed = 0
        self.took = []
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with gate:
                await self.bring_up(i, first_wait=first_wait)

        start = time.monotonic()
        results = await asyncio.gather(*(one(i) for i in range(len(self.tokens))), return_exceptions=True)
        failed = [repr(r) for r in results if isinstance(r, BaseException)]
        took = sorted(self.took)
        return {
            "n": len(self.sockets),
            "seconds": round(time.monotonic() - start, 2),
            "attempts": self.attempts,
            "refusals": dict(self.refusals),
            "resumed": self.resumed,
            "failed": failed[:5],
            "retry_hints": sorted(set(self.hints))[:10],
            "per_client_p50_s": round(took[len(took) // 2], 2) if took else None,
            "per_client_max_s": round(took[-1], 2) if took else None,
            # How many were back (joined) in each second of the phase.
            "back_per_second": [sum(1 for t in took if s <= t < s + 1) for s in range(int(took[-1]) + 1)]
            if took
            else [],
        }

    async def drop(self) -> None:
        for session in self.sessions.values():
            await session.close()  # closes every connection: no goodbye reaches the node
        for sock in self.sockets.values():
            sock.abort()
        self.sockets.clear()

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self.sockets.values()))
        for session in self.sessions.values():
            await session.close()


def say(**data: Any) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("tokens")
    parser.add_argument("--address", action="append", required=True)
    parser.add_argument("--limit", type=float, default=60.0, help="seconds each phase may take")
    args = parser.parse_args()
    nofile = raise_open_files()
    with open(args.tokens, encoding="utf-8") as fh:
        tokens = json.load(fh)
    crowd = Crowd(args.url, tokens, args.address, time.monotonic() + args.limit)
    crowd.open_sessions()
    say(phase="connected", nofile=nofile, **await crowd.bring_all_up(first_wait=False, concurrency=50))
    while True:
        line = (await asyncio.to_thread(sys.stdin.readline)).strip()
        if line == "drop":
            await crowd.drop()
            crowd.open_sessions()
            crowd.deadline = time.monotonic() + args.limit
            say(phase="dropped")
            say(phase="back", **await crowd.bring_all_up(first_wait=True, concurrency=len(tokens)))
        else:
            break
    await crowd.close()
    say(phase="closed")


if __name__ == "__main__":
    asyncio.run(main())
