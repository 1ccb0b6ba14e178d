"""`proctor serve --processes 2` for real: one command, one machine, one service.

The service runs as a subprocess with a temp data dir and free ports: its own embedded
Postgres, the system's redis-server and nginx. Students connect through its Nginx front from
different loopback source addresses (127.0.X.1), which `hash $remote_addr consistent` spreads
over both processes; one room has students on both, and one teacher sees them all. A node
process SIGKILLed mid-exam is started again by the supervisor while its students resume
with nothing acknowledged lost, each with one neutral network gap; SIGTERM to the supervisor
stops everything and leaves no process behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from server.cli.cluster import LocalCluster, http_json
from server.embedded_pg import free_port
from tests.support.cluster import CLUSTER_ENV, Cluster, Participant, eventually, require, student, teacher

pytestmark = pytest.mark.slow

PROCESSES = 2


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    data_dir: Path
    port: int
    log: Path
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.data_dir / "cluster.json").read_text())
        return data

    def pids(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.state()["pids"].items()}

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> int:
    """The first of `count` consecutive free loopback ports."""
    for _ in range(50):
        base = free_port()
        if base + count < 65536 and all(_bindable(base + i) for i in range(1, count)):
            return base
    raise AssertionError(f"no {count} consecutive free ports")


def _ready(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=2, context=context) as resp:
            return int(resp.status) == 200
    except OSError:
        return False


@contextmanager
def running_service(
    tmp_path: Path, extra_env: dict[str, str] | None = None, context: ssl.SSLContext | None = None
) -> Iterator[Service]:
    """`proctor serve --processes 2` as a subprocess, ready through its front."""
    require("redis-server", "redis-server")
    require("nginx", "nginx")
    port = free_port()
    node_ports = free_ports(PROCESSES)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCTOR_")}
    env.update(CLUSTER_ENV)
    env.update({"PROCTOR_DATA_DIR": str(tmp_path / "data"), "PROCTOR_PORT": str(port)})
    env.update(extra_env or {})
    log = tmp_path / "service.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server.cli",
                "serve",
                "--processes",
                str(PROCESSES),
                "--node-ports",
                str(node_ports),
            ],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    svc = Service(proc, tmp_path / "data", port, log, "https" if context is not None else "http")
    try:
        deadline = time.monotonic() + 120
        while not ((svc.data_dir / "cluster.json").exists() and _ready(svc.url, context)):
            assert proc.poll() is None, f"the service exited with {proc.returncode}:\n{svc.output()}"
            assert time.monotonic() < deadline, f"the service is not ready after 120 s:\n{svc.output()}"
            time.sleep(0.2)
        yield svc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pid in using(svc.data_dir):  # after a failed test: leave nothing running
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    with running_service(tmp_path) as svc:
        yield svc


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process on the machine."""
    found: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        found[int(entry.name)] = (int(fields[1]), fields[0])
    return found


def descendants(*roots: int) -> set[int]:
    """`roots` and every process below them."""
    table = _processes()
    found = {r for r in roots if r in table}
    grew = True
    while grew:
        below = {pid for pid, (parent, _) in table.items() if parent in found} - found
        grew = bool(below)
        found |= below
    return found


def running(pids: set[int]) -> set[int]:
    table = _processes()
    return {p for p in pids if p in table and table[p][1] != "Z"}


def using(data_dir: Path) -> set[int]:
    """Processes whose command line or PROCTOR_DATA_DIR names the service's data dir."""
    needle = str(data_dir).encode()
    found: set[int] = set()
    for pid in running(set(_processes())):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if needle in cmdline or b"PROCTOR_DATA_DIR=" + needle in environ:
            found.add(pid)
    return found


async def stored_events(database_url: str, attempt_ids: list[str]) -> dict[str, set[int]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT attempt_id, seq FROM violations WHERE attempt_id = ANY($1::uuid[])",
            [uuid.UUID(a) for a in attempt_ids],
        )
    finally:
        await conn.close()
    out: dict[str, set[int]] = {a: set() for a in attempt_ids}
    for row in rows:
        out[str(row["attempt_id"])].add(int(row["seq"]))
    return out


async def gap_counts(database_url: str, attempt_ids: list[str]) -> dict[str, int]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT attempt_id, count(*) AS n FROM attempt_log WHERE kind = 'network_gap' "
            "AND attempt_id = ANY($1::uuid[]) GROUP BY attempt_id",
            [uuid.UUID(a) for a in attempt_ids],
        )
    finally:
        await conn.close()
    counts = {a: 0 for a in attempt_ids}
    counts.update({str(r["attempt_id"]): int(r["n"]) for r in rows})
    return counts


@pytest.fixture
async def people() -> AsyncIterator[list[Participant]]:
    made: list[Participant] = []
    try:
        yield made
    finally:
        for person in made:
            await person.close()


def attempt_of(person: Participant) -> str:
    return str(person.joined["attempt"]["attempt_id"])


@pytest.mark.timeout(300)
async def test_serve_processes_spreads_students_restarts_a_killed_node_and_stops_clean(
    service: Service, people: list[Participant]
) -> None:
    cluster = Cluster(LocalCluster.load(service.data_dir))
    assert cluster.url == service.url
    node_ids = [n.node_id for n in cluster.local.nodes]
    assert len(node_ids) == PROCESSES and len(set(node_ids)) == PROCESSES
    first_pids = service.pids()
    assert set(node_ids) | {"redis", "nginx", "postgres"} <= set(first_pids), first_pids

    # One room, two students on each process (through the front), a teacher who sees all four.
    room = cluster.room()
    tokens = cluster.invites(room["id"], 4, "svc")
    victim, survivor = node_ids
    nets = [
        await cluster.subnet_of(victim, 0),
        await cluster.subnet_of(victim, 1),
        await cluster.subnet_of(survivor, 0),
        await cluster.subnet_of(survivor, 1),
    ]
    students = [await student(cluster, people, token, net) for token, net in zip(tokens, nets, strict=True)]
    assert [await cluster.node_for(net) for net in nets] == [victim, victim, survivor, survivor]
    tutor = await teacher(cluster, people, [room["id"]], await cluster.subnet_of(survivor, 2))
    attempts = [attempt_of(s) for s in students]
    watch = await tutor.call("watch", {"room_id": room["id"]})
    roster = {s["id"]: s for s in watch["students"]}
    assert set(attempts) <= set(roster) and all(roster[a]["presence"] == "online" for a in attempts), roster
    for person in students:
        for _ in range(3):
            ack = await person.event()
            assert ack is not None and ack["ok"], ack

    # SIGKILL one node process mid-exam.
    on_victim = students[:2]
    os.kill(first_pids[victim], signal.SIGKILL)
    for person in on_victim:
        await eventually(lambda person=person: _gone(person), timeout=10, interval=0.05)
        again = await person.resume(timeout=40)
        assert again["resumed"] is True and attempt_of(person) in attempts
    for person in students:
        for _ in range(2):
            ack = await person.event()
            assert ack is not None and ack["ok"], ack
    assert not any(p.pending for p in students)

    # The supervisor starts it again, on the same port, with the same node id.
    async def restarted() -> bool:
        pid = service.pids().get(victim)
        return pid is not None and pid != first_pids[victim] and _ready(cluster.local.node(victim).url)

    await eventually(restarted, timeout=60, interval=0.5)
    assert "exited; starting it again" in service.output()

    # Nothing acknowledged is lost, and the teacher's roster counts it all, everyone online.
    stored = await stored_events(cluster.local.database_url, attempts)
    assert {a: stored[a] for a in attempts} == {attempt_of(p): p.acked for p in students}

    async def roster_right() -> bool:
        entries = {s["id"]: s for s in (await tutor.call("watch", {"room_id": room["id"]}))["students"]}
        return all(
            entries[attempt_of(p)]["presence"] == "online" and entries[attempt_of(p)]["violations"] == len(p.acked)
            for p in students
        )

    await eventually(roster_right, timeout=15, interval=0.3)
    # The crash is one neutral network gap for each of the dead process's students, none for the others,
    # and their teacher saw them reconnecting before they were online again.
    gaps = await gap_counts(cluster.local.database_url, attempts)
    assert gaps == {a: (1 if i < 2 else 0) for i, a in enumerate(attempts)}, gaps
    for person in on_victim:
        states = [d["presence"] for d in tutor.received.events["presence"] if d["attempt_id"] == attempt_of(person)]
        assert "reconnecting" in states and states[-1] == "online", states

    # SIGTERM: everything stops, in order, and no process of the service is left.
    for person in people:
        await person.close()
    pids = service.pids()
    tree = descendants(service.proc.pid, pids["postgres"]) | set(pids.values())
    assert len(tree) > len(pids), tree  # Nginx's and Postgres's workers are in it too
    service.proc.send_signal(signal.SIGTERM)
    code = service.proc.wait(timeout=90)
    assert code == 0, service.output()
    assert "stopped" in service.output()

    async def all_gone() -> bool:
        return not running(tree) and not using(service.data_dir)

    await eventually(all_gone, timeout=15, interval=0.2)
    assert service.pids() == {}


async def _gone(person: Participant) -> bool:
    return person.gone.is_set()


@pytest.mark.parametrize("problem", ["count", "taken_port", "no_redis"])
def test_serve_processes_refuses_what_it_cannot_run_with_a_clear_message(tmp_path: Path, problem: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCTOR_")}
    args = ["--processes", "0"] if problem == "count" else ["--processes", "2", "--node-ports", "0"]
    if problem == "no_redis":
        # Free node ports of its own: the default ones follow --port and may be in use by
        # another test's server, which serve reports first (seen once in CI).
        args = ["--processes", "2", "--node-ports", str(free_ports(2))]
        env["PATH"] = str(tmp_path)  # redis-server is in /usr/bin, which is not searched then
    with socket.socket() as taken:
        if problem == "taken_port":
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            args[-1] = str(taken.getsockname()[1])
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "server.cli",
                "serve",
                "--data-dir",
                str(tmp_path / "d"),
                "--port",
                str(free_port()),
                *args,
            ],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done
    expected = {
        "count": "--processes must be at least 1",
        "taken_port": "is not free",
        "no_redis": "redis-server not found: install it (Debian/Ubuntu: apt-get install -y redis-server)",
    }[problem]
    assert expected in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "d" / "cluster.json").exists()


async def test_serve_processes_serves_https_on_its_front_with_the_nodes_certificate(tmp_path: Path) -> None:
    """PROCTOR_TLS_CERT/KEY with --processes: Nginx terminates TLS with that certificate; the nodes
    behind it on loopback serve plain HTTP, and their invite links are the front's https ones."""
    import aiohttp
    import socketio

    from tests.support.https import LocalCA
    from tests.support.node import EXAM_BODY

    ca = LocalCA()
    served = ca.issue(serial=4242)
    cert, key = tmp_path / "tls" / "fullchain.pem", tmp_path / "tls" / "key.pem"
    cert.parent.mkdir()
    served.write(cert, key)
    trust = ca.client_context()
    tls_env = {"PROCTOR_TLS_CERT": str(cert), "PROCTOR_TLS_KEY": str(key)}
    with running_service(tmp_path, tls_env, trust) as svc:
        admin = (svc.data_dir / "admin-token").read_text().strip()
        headers = {"Authorization": f"Bearer {admin}"}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as http:
            async with http.post(svc.url + "/api/exams", json=EXAM_BODY, headers=headers) as resp:
                exam = await resp.json()
                assert resp.status == 201, exam
            async with http.post(
                svc.url + f"/api/exams/{exam['id']}/rooms", json={"name": "Hall", "seats": 3}, headers=headers
            ) as resp:
                room = await resp.json()
            async with http.post(
                svc.url + f"/api/rooms/{room['id']}/invites",
                json={"students": [{"id": "s-1", "name": "Ada"}]},
                headers=headers,
            ) as resp:
                invite = (await resp.json())["invites"][0]
            assert invite["url"].startswith(f"https://127.0.0.1:{svc.port}/exam/#token=")
            sio = socketio.AsyncClient(reconnection=False, http_session=http)
            try:
                await sio.connect(
                    svc.url,
                    namespaces=["/student"],
                    auth={"token": invite["token"]},
                    headers={"Origin": svc.url},
                    transports=["websocket"],
                    wait_timeout=10,
                )
                ack = await sio.call("join", {}, namespace="/student", timeout=10)
                assert ack["ok"], ack
            finally:
                await sio.disconnect()
        # The nodes themselves answer plain HTTP on loopback (no certificate of their own).
        for node in svc.state()["nodes"]:
            status, _ = http_json(f"http://127.0.0.1:{node['port']}/healthz", timeout=5)
            assert status == 200
