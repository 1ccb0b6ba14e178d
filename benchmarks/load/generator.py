"""One generator process: it holds a share of the rooms (a teacher and its students each)
and obeys the runner's commands over a pipe: connect more rooms, run a load phase, hold
idle, stop. Every phase is bounded in time; every reply carries the process's own figures
(CPU share, tick lateness) so the runner can say when the generator was the bottleneck.

The load phase is one scheduler loop per process, not a task per student: every tick
(10 ms) it sends the events that are due — students taken round-robin, so each sends at
the configured rate and the process's events are evenly spread — and measures how late
the tick itself fired. Connection churn (a share of the students reconnecting per minute)
runs from the same loop: the chosen student closes its socket, opens a new one and joins
again, continuing its sequence numbers above the server's `last_seq`.
"""

from __future__ import annotations

import asyncio
import os
import random
import resource
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

import aiohttp

from .leanclient import ConnectRefused, LeanSocket, Stats, bench_time

TICK = 0.010
CONNECT_CONCURRENCY = 64


@dataclass(slots=True)
class Student:
    token: str
    sock: LeanSocket | None = None
    seq: int = 0
    busy: bool = False  # reconnecting


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Generator:
    def __init__(self, base: str, rooms: list[dict[str, Any]], source_ips: int) -> None:
        self.base = base
        self.rooms = rooms
        self.source_ips = max(1, source_ips)
        self.stats = Stats()
        self.sessions: list[aiohttp.ClientSession] = []
        self.teachers: list[LeanSocket] = []
        self.students: list[Student] = []
        self.connected_rooms = 0
        self.join_lat: list[float] = []
        self.tasks: set[asyncio.Task[Any]] = set()
        self._next_session = 0

    # -- plumbing -------------------------------------------------------------------------------

    def _session(self) -> aiohttp.ClientSession:
        # Several loopback source addresses (127.0.k.1): Nginx ip_hash hashes the first three
        # octets, and the node's per-address admission sees more than one client.
        s = self.sessions[self._next_session % len(self.sessions)]
        self._next_session += 1
        return s

    def _on_teacher_event(self, body: str) -> None:
        sent = bench_time(body)
        if sent is not None:
            self.stats.teacher.append(time.time() - sent)

    def _new_stats(self) -> Stats:
        self.stats = Stats()
        for t in self.teachers:
            t.use_stats(self.stats)
        for s in self.students:
            if s.sock is not None:
                s.sock.use_stats(self.stats)
        return self.stats

    # -- commands -------------------------------------------------------------------------------

    async def connect(self, n_rooms: int) -> dict[str, Any]:
        if not self.sessions:
            multi = self.source_ips > 1 and "//127.0.0.1:" in self.base
            for k in range(self.source_ips):
                local = (f"127.0.{k + 1}.1", 0) if multi else None
                self.sessions.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, local_addr=local)))
        stats = self._new_stats()
        join_lat: list[float] = []
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        t0 = time.perf_counter()
        cpu0 = time.process_time()

        async def teacher(room: dict[str, Any]) -> None:
            sock = LeanSocket(self._session(), self.base, "/teacher", stats)
            sock.on_event = self._on_teacher_event
            try:
                await sock.connect({"token": room["teacher"]})
                ack = await sock.call("watch", {"room_id": room["id"]})
                if not ack.get("ok"):
                    stats.error("watch:" + ack["error"]["code"])
            except Exception as exc:
                stats.error(f"watch:{type(exc).__name__}")
                return
            self.teachers.append(sock)

        async def student(token: str) -> None:
            async with gate:
                st = Student(token)
                start = time.perf_counter()
                if await self._join(st, stats):
                    join_lat.append(time.perf_counter() - start)
                    self.students.append(st)

        todo = self.rooms[self.connected_rooms : n_rooms]
        self.connected_rooms = max(self.connected_rooms, n_rooms)
        for i in range(0, len(todo), 16):
            await asyncio.gather(*[teacher(r) for r in todo[i : i + 16]])
        await asyncio.gather(*[student(t) for r in todo for t in r["tokens"]])
        self.join_lat += join_lat
        return {
            "students": sum(1 for s in self.students if s.sock and not s.sock.closed),
            "teachers": len(self.teachers),
            "join": join_lat,
            "errors": stats.errors,
            "seconds": time.perf_counter() - t0,
            "gen_cpu_s": time.process_time() - cpu0,
        }

    async def _join(self, st: Student, stats: Stats) -> bool:
        sock = LeanSocket(self._session(), self.base, "/student", stats)
        try:
            await sock.connect({"token": st.token})
            ack = await sock.call("join", {})
        except ConnectRefused as exc:
            stats.error("connect:" + str(exc)[:60])
            await sock.close()
            return False
        except Exception as exc:
            stats.error(f"join:{type(exc).__name__}")
            await sock.close()
            return False
        if not ack.get("ok"):
            stats.error("join:" + ack["error"]["code"])
            await sock.close()
            return False
        st.seq = max(st.seq, int(ack.get("last_seq") or 0))
        st.sock = sock
        return True

    async def run(self, rate: float, seconds: float, churn_per_min: float, grace: float) -> dict[str, Any]:
        stats = self._new_stats()
        active = [s for s in self.students if s.sock is not None and not s.sock.closed]
        n = len(active)
        total_rate = n * rate
        churn_rate = n * churn_per_min / 60
        reconnect_lat: list[float] = []
        lateness: list[float] = []
        skipped = 0
        closed_during = 0
        idx = random.randrange(n) if n else 0
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        stop = t0 + seconds
        next_tick = t0
        churn_credit = 0.0
        done = 0

        async def reconnect(st: Student) -> None:
            old = st.sock
            start = time.perf_counter()
            try:
                if old is not None:
                    await old.close()
                if await self._join(st, stats):
                    reconnect_lat.append(time.perf_counter() - start)
            finally:
                st.busy = False

        now = t0
        while now < stop and n:
            due = int((now - t0) * total_rate) - done
            if due > 0:
                occurred = datetime.now(UTC).isoformat()
                for _ in range(due):
                    st = active[idx]
                    idx = idx + 1 if idx + 1 < n else 0
                    done += 1
                    sock = st.sock
                    if st.busy or sock is None or sock.closed:
                        skipped += 1
                        continue
                    st.seq += 1
                    try:
                        await sock.send_event(st.seq, occurred)
                    except Exception as exc:
                        stats.error(f"send:{type(exc).__name__}")
            if churn_rate:
                churn_credit += churn_rate * TICK
                while churn_credit >= 1:
                    churn_credit -= 1
                    for _ in range(20):  # a student with nothing in flight (nothing to re-send)
                        st = active[random.randrange(n)]
                        if not st.busy and st.sock is not None and st.sock.in_flight == 0:
                            st.busy = True
                            task = asyncio.create_task(reconnect(st))
                            self.tasks.add(task)
                            task.add_done_callback(self.tasks.discard)
                            break
            next_tick += TICK
            delay = next_tick - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.perf_counter()
            lateness.append(max(0.0, now - next_tick))
        # Let the last acks and deliveries arrive; still in the phase's stats.
        wall = time.perf_counter() - t0
        await asyncio.sleep(grace)
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=30)
        cpu = time.process_time() - cpu0
        in_flight = 0
        for st in active:
            if st.sock is not None:
                if st.sock.closed:
                    closed_during += 1
                in_flight += st.sock.forget_in_flight()
        if in_flight:
            stats.errors["unacked"] = in_flight
        return {
            "students": n,
            "rate": rate,
            "seconds": wall,
            "sent": stats.sent,
            "skipped": skipped,
            "acked": len(stats.ack),
            "ack": stats.ack,
            "teacher": stats.teacher,
            "delivered": stats.delivered,
            "errors": stats.errors,
            "reconnect": reconnect_lat,
            "closed": closed_during,
            "tick_lateness": lateness,
            "gen_cpu_share": cpu / (wall + grace),
        }

    async def idle(self, seconds: float) -> dict[str, Any]:
        stats = self._new_stats()
        cpu0 = time.process_time()
        lateness: list[float] = []
        t0 = time.perf_counter()
        next_tick = t0
        while time.perf_counter() < t0 + seconds:
            next_tick += 0.05
            await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
            lateness.append(max(0.0, time.perf_counter() - next_tick))
        wall = time.perf_counter() - t0
        open_ = sum(1 for s in self.students if s.sock is not None and not s.sock.closed)
        return {
            "students_open": open_,
            "teachers_open": sum(1 for t in self.teachers if not t.closed),
            "seconds": wall,
            "errors": stats.errors,
            "tick_lateness": lateness,
            "gen_cpu_share": (time.process_time() - cpu0) / wall,
        }

    async def stop(self) -> dict[str, Any]:
        # No close handshakes: closing the sessions aborts every transport at once (a graceful
        # close of 15,000 sockets takes minutes and measures nothing).
        socks = [s.sock for s in self.students if s.sock is not None] + self.teachers
        for session in self.sessions:
            await session.close()
        for sock in socks:
            sock.abort()
        return {"stopped": len(socks)}


async def _recv(conn: Connection) -> Any:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    fd = conn.fileno()

    def readable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
        os.set_blocking(fd, True)  # the loop made it non-blocking; pickled replies need blocking writes
    return conn.recv()


async def serve(conn: Connection, base: str, rooms: list[dict[str, Any]], source_ips: int) -> None:
    gen = Generator(base, rooms, source_ips)
    while True:
        cmd = await _recv(conn)
        op = cmd.pop("cmd")
        try:
            if op == "connect":
                reply = await gen.connect(**cmd)
            elif op == "run":
                reply = await gen.run(**cmd)
            elif op == "idle":
                reply = await gen.idle(**cmd)
            elif op == "stop":
                conn.send(await gen.stop())
                return
            else:
                reply = {"error": f"unknown command {op}"}
        except Exception as exc:  # report, do not hang the runner
            reply = {"error": repr(exc)}
        conn.send(reply)


def worker(conn: Connection, base: str, rooms: list[dict[str, Any]], cpu: int | None, source_ips: int) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    raise_nofile()
    import uvloop

    uvloop.run(serve(conn, base, rooms, source_ips))
