"""Many nodes for real: system redis-server and nginx, the session Postgres, and `proctor
serve` processes started by the same `LocalCluster` that `proctor cluster` uses.

Clients bind their source address to 127.0.X.1, so Nginx's `ip_hash` (first three octets)
sends different /24s to different nodes; `Cluster.subnet_of(node_id)` finds one per node.
A missing redis-server or nginx fails the tests with what to install; they never skip.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from redis.asyncio import Redis

from server.cli.cluster import ClusterError, LocalCluster, find_binary, http_json
from server.embedded_pg import free_port
from tests.support.live import EVENTS, Recorder, forward
from tests.support.node import EXAM_BODY
from tests.support.postgres import PostgresServer

CLUSTER_ENV = {
    "PROCTOR_ROOMS_PER_NODE": "3",
    "PROCTOR_RECONNECT_GRACE_SECONDS": "2",
    "PROCTOR_WRITER_FLUSH_MS": "5",
    "PROCTOR_DRAIN_TIMEOUT_SECONDS": "5",
    # A stop that hangs logs its pending tasks before the tests' 15 s bound (server/shutdown.py).
    "PROCTOR_SHUTDOWN_TIMEOUT_SECONDS": "8",
    "PROCTOR_GC_TUNING": "false",
}


def require(name: str, package: str) -> str:
    try:
        return find_binary(name, package)
    except ClusterError as exc:
        pytest.fail(str(exc))


class RedisServer:
    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = require("redis-server", "redis-server")
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import socket
        import time

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    root = Path(tempfile.mkdtemp(prefix="proctor-test-redis-"))
    server = RedisServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


class Cluster:
    """A running LocalCluster plus what tests need: REST as admin, /24 per node, Redis."""

    def __init__(self, local: LocalCluster) -> None:
        self.local = local
        self._subnets: dict[str, list[int]] = {}

    @property
    def url(self) -> str:
        return self.local.url

    def rest(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        status, data = http_json(self.url + path, method=method, body=body, token=token or self.local.admin_token)
        assert status < 300, (path, status, data)
        return data

    def room(self, seats: int = 30, exam_body: dict[str, Any] | None = None) -> dict[str, Any]:
        exam = self.rest("POST", "/api/exams", exam_body or EXAM_BODY)
        room = self.rest("POST", f"/api/exams/{exam['id']}/rooms", {"name": "Hall", "seats": seats})
        return dict(room)

    def invites(self, room_id: str, n: int, prefix: str) -> list[str]:
        students = [{"id": f"{prefix}-{i}", "name": f"Student {prefix} {i}"} for i in range(n)]
        data = self.rest("POST", f"/api/rooms/{room_id}/invites", {"students": students})
        return [i["token"] for i in data["invites"]]

    def teacher_token(self, rooms: list[str]) -> str:
        return str(self.rest("POST", "/api/tokens", {"role": "teacher", "sub": "t-1", "rooms": rooms})["token"])

    async def node_for(self, subnet: int) -> str:
        connector = aiohttp.TCPConnector(local_addr=(f"127.0.{subnet}.1", 0), force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:
            async with http.get(self.url + "/healthz") as resp:
                return str((await resp.json())["node"])

    async def subnet_of(self, node_id: str, skip: int = 0) -> int:
        """A /24 (127.0.X.1) that Nginx's ip_hash sends to `node_id` (the `skip`-th found)."""
        found = self._subnets.setdefault(node_id, [])
        x = 1 + max([s for v in self._subnets.values() for s in v], default=0)
        while len(found) <= skip:
            assert x < 250, f"no /24 hashes to {node_id}"
            node = await self.node_for(x)
            self._subnets.setdefault(node, []).append(x)
            x += 1
        return found[skip]

    async def routed(self, node_id: str) -> None:
        """Wait until Nginx sends `node_id`'s clients to it again (after a restart)."""
        subnet = await self.subnet_of(node_id)

        async def there() -> bool:
            return await self.node_for(subnet) == node_id

        await eventually(there, timeout=20, interval=0.5)

    def metric(self, node_id: str, name: str) -> float:
        """One unlabelled Prometheus gauge from a node's /metrics."""
        with urllib.request.urlopen(self.local.node(node_id).url + "/metrics", timeout=5) as resp:
            text = resp.read().decode()
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"{node_id} exports no {name}")

    def restart(self, node_id: str) -> None:
        self.local.start_node(self.local.node(node_id))

    def redis(self) -> Redis:
        return Redis.from_url(self.local.redis_url)


@pytest.fixture(scope="module")
def cluster(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require("redis-server", "redis-server")
    require("nginx", "nginx")
    database = asyncio.run(postgres.create_database())
    local = LocalCluster(
        root=tmp_path_factory.mktemp("cluster"), node_count=3, database_url=database, env=dict(CLUSTER_ENV)
    )
    local.start()
    try:
        yield Cluster(local)
    finally:
        local.stop()


class Participant:
    """A Socket.IO client from a chosen 127.0.X.1, that keeps unacknowledged messages and
    re-sends them after a reconnect, like the student page."""

    def __init__(self, url: str, namespace: str, token: str, subnet: int) -> None:
        self.url = url
        self.namespace = namespace
        self.token = token
        self.subnet = subnet
        self.received = Recorder()
        self.sio: socketio.AsyncClient | None = None
        self.http: aiohttp.ClientSession | None = None
        self.gone = asyncio.Event()
        self.joined: dict[str, Any] = {}
        self.seq = 0
        self.pending: dict[int, dict[str, Any]] = {}
        self.acked: set[int] = set()

    async def connect(self) -> None:
        await self.close()
        connector = aiohttp.TCPConnector(local_addr=(f"127.0.{self.subnet}.1", 0))
        self.http = aiohttp.ClientSession(connector=connector)
        sio = socketio.AsyncClient(reconnection=False, http_session=self.http)
        for event in EVENTS:
            sio.on(event, forward(self.received, event), namespace=self.namespace)
        self.gone = asyncio.Event()
        gone = self.gone

        async def disconnected(*args: Any) -> None:
            gone.set()

        sio.on("disconnect", disconnected, namespace=self.namespace)
        await sio.connect(
            self.url, namespaces=[self.namespace], auth={"token": self.token}, transports=["websocket"], wait_timeout=5
        )
        self.sio = sio

    async def call(self, event: str, data: Any = None, timeout: float = 10) -> dict[str, Any]:
        assert self.sio is not None
        result = await self.sio.call(event, data if data is not None else {}, namespace=self.namespace, timeout=timeout)
        assert isinstance(result, dict), result
        return result

    async def join(self) -> dict[str, Any]:
        ack = await self.call("join")
        assert ack["ok"], ack
        self.joined = ack
        self.seq = max(self.seq, int(ack["last_seq"]))
        return ack

    async def event(self, kind: str = "tab_hidden") -> dict[str, Any] | None:
        """Send one client event; keep it until acknowledged. None when the connection dropped."""
        self.seq += 1
        payload = {"seq": self.seq, "kind": kind, "occurred_at": datetime.now(UTC).isoformat()}
        self.pending[self.seq] = payload
        return await self._send(payload)

    async def _send(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        try:
            ack = await self.call("event", payload, timeout=5)
        except (
            socketio.exceptions.TimeoutError,
            socketio.exceptions.BadNamespaceError,
            socketio.exceptions.DisconnectedError,
        ):
            return None
        if ack.get("ok"):
            self.pending.pop(payload["seq"], None)
            self.acked.add(payload["seq"])
        return ack

    async def resume(self, timeout: float = 30) -> dict[str, Any]:
        """Reconnect (through Nginx, to whichever node takes us), join, re-send the rest."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                await self.connect()
                ack = await self.join()
                break
            except Exception:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.3)
        for seq in sorted(self.pending):
            await self._send(self.pending[seq])
        return ack

    async def close(self) -> None:
        if self.sio is not None:
            try:
                await self.sio.disconnect()
            except Exception:
                pass
            self.sio = None
        if self.http is not None:
            await self.http.close()
            self.http = None


@pytest.fixture
async def people(cluster: Cluster) -> AsyncIterator[list[Participant]]:
    made: list[Participant] = []
    try:
        yield made
    finally:
        for person in made:
            await person.close()


async def student(cluster: Cluster, people: list[Participant], token: str, subnet: int) -> Participant:
    person = Participant(cluster.url, "/student", token, subnet)
    people.append(person)
    await person.connect()
    await person.join()
    return person


async def student_on(cluster: Cluster, people: list[Participant], token: str, node_id: str) -> Participant:
    """A student connected to one node directly, not through Nginx."""
    person = Participant(cluster.local.node(node_id).url, "/student", token, subnet=1)
    people.append(person)
    await person.connect()
    await person.join()
    return person


async def teacher(
    cluster: Cluster, people: list[Participant], room_ids: list[str], subnet: int, may_see: list[str] | None = None
) -> Participant:
    person = Participant(cluster.url, "/teacher", cluster.teacher_token(may_see or room_ids), subnet)
    people.append(person)
    await person.connect()
    for room_id in room_ids:
        ack = await person.call("watch", {"room_id": room_id})
        assert ack["ok"], ack
    return person


async def eventually(check: Any, timeout: float = 15, interval: float = 0.2) -> Any:
    """Poll an async check until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"not reached in {timeout}s (last: {last!r})")


async def lease_holder(cluster: Cluster, room_id: str) -> str | None:
    """The node holding a room's placement lease in Redis, if any."""
    redis = cluster.redis()
    try:
        value = await redis.get(f"proctor:lease:{room_id}")
        return value.decode() if isinstance(value, bytes) else value
    finally:
        await redis.aclose()
