"""`proctor cluster`: Redis, Postgres, N nodes and Nginx on loopback, from one command.

Everything runs as child processes with its files under one directory: `redis-server` (the
system's, on a free port, no persistence), the embedded Postgres (unless
`PROCTOR_DATABASE_URL` is given), N `proctor serve` processes sharing `PROCTOR_REDIS_URL`,
`PROCTOR_DATABASE_URL`, `PROCTOR_SECRET` and `PROCTOR_ADMIN_TOKEN` with distinct ports
and node ids, and Nginx with the rendered config (nginx/). `cluster.json` in the directory
records how to reach them, so `proctor cluster --add-node DIR` can start one more node and
reload Nginx. The tests (tests/cluster) and benchmarks (benchmarks/cluster) drive the same
`LocalCluster` class, and so does `proctor serve --processes N` (server/cli/service.py), which
runs it as a supervised service: persisted secret, fixed ports, children in their own
session that die with the supervisor.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nginx.render import Balance, Node, SiteTLS, render_site, render_standalone
from server.embedded_pg import EmbeddedPostgres, free_port

logger = logging.getLogger(__name__)

_SYSTEM_BIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


class ClusterError(RuntimeError):
    pass


def find_binary(name: str, package: str) -> str:
    """The system binary `name`, or an error that says which package to install."""
    path = shutil.which(name) or shutil.which(name, path=os.pathsep.join(_SYSTEM_BIN))
    if path is None:
        raise ClusterError(f"{name} not found: install it (Debian/Ubuntu: apt-get install -y {package})")
    return path


def _wait_port(host: str, port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ClusterError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ClusterError(f"nothing listens on {host}:{port} after {timeout}s")


def http_json(
    url: str, *, method: str = "GET", token: str | None = None, body: Any = None, timeout: float = 5
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw) if raw else None
        except ValueError:
            return exc.code, raw.decode(errors="replace")


@dataclass
class NodeProcess:
    node_id: str
    port: int
    data_dir: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the supervisor dies (PR_SET_PDEATHSIG), so
    a SIGKILLed supervisor leaves no nodes, Redis or Nginx behind."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


@dataclass
class LocalCluster:
    root: Path
    node_count: int = 3
    database_url: str = ""
    nginx_port: int = 0
    balance: Balance = "ip_hash"
    env: dict[str, str] = field(default_factory=dict)
    use_redis: bool = True  # False: one node alone, as `proctor serve` runs by default
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    nodes: list[NodeProcess] = field(default_factory=list)
    redis_port: int = 0
    # What `proctor serve --processes` sets (server/cli/service.py); the defaults are the dev cluster's.
    listen_host: str = "127.0.0.1"  # Nginx's listen address
    node_host: str = "127.0.0.1"  # the nodes' listen address
    node_prefix: str = "node"  # node ids are {prefix}-{n}
    node_port_base: int = 0  # node n listens on base + n - 1 (0: any free port)
    front: bool = True  # False: the operator runs Nginx (`--front none`)
    public_url: str = ""
    redis_url_given: str = ""  # use this Redis instead of starting one
    supervised: bool = False  # children in their own session, dying with this process
    node_stop_timeout: float = 15
    node_cwd: Path | None = None  # where nodes run (and read `.env`); default their data dir
    tls: SiteTLS | None = None  # Nginx terminates TLS (`serve --processes` with PROCTOR_TLS_CERT/KEY)
    _redis: subprocess.Popen[bytes] | None = None
    _postgres: EmbeddedPostgres | None = None
    _nginx: subprocess.Popen[bytes] | None = None

    @property
    def front_host(self) -> str:
        """Where this machine reaches Nginx (its listen address, or loopback for a wildcard)."""
        return "127.0.0.1" if self.listen_host in ("", "0.0.0.0", "::") else self.listen_host

    @property
    def url(self) -> str:
        host = f"[{self.front_host}]" if ":" in self.front_host else self.front_host
        return f"{'https' if self.tls is not None else 'http'}://{host}:{self.nginx_port}"

    @property
    def redis_url(self) -> str:
        return self.redis_url_given or f"redis://127.0.0.1:{self.redis_port}/0"

    def _popen(self, args: list[str], log: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
        out = open(log, "ab")
        try:
            if self.supervised:
                # Own session: a Ctrl-C in the terminal reaches only the supervisor, which
                # stops everything in order (nodes first, while Redis and Postgres still run).
                kwargs.update(start_new_session=True, preexec_fn=_die_with_parent)
            return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, **kwargs)
        finally:
            out.close()

    @property
    def nginx_prefix(self) -> Path:
        return self.root / "nginx"

    # -- whole cluster -------------------------------------------------------------------------

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.use_redis and not self.redis_url_given:
            find_binary("redis-server", "redis-server")
        if self.front:
            find_binary("nginx", "nginx")
        try:
            if self.use_redis and not self.redis_url_given:
                self.start_redis()
            if not self.database_url:
                self.start_postgres()
            for _ in range(self.node_count):
                self.add_node(wait=False)
            for node in self.nodes:
                self.wait_ready(node)
            if self.front:
                self.start_nginx()
            self.save()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Nodes first (they drain while Redis and Postgres still answer), then Nginx, Redis
        and Postgres."""
        running = [n.proc for n in self.nodes if n.proc is not None and n.proc.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)  # all at once: each drains in parallel
        for proc in running:
            _terminate(proc, signal.SIGTERM, self.node_stop_timeout)
        self.stop_nginx()
        self.stop_redis()
        self.stop_postgres()

    def start_postgres(self) -> None:
        if self._postgres is None:
            self._postgres = EmbeddedPostgres(self.root / "postgres", port=free_port())
        self._postgres.start()
        self.database_url = self._postgres.dsn

    def postgres_alive(self) -> bool:
        """True unless the embedded Postgres we started is down (a given one is not ours)."""
        return self._postgres is None or self._postgres.is_running()

    def stop_postgres(self) -> None:
        if self._postgres is not None:
            pid = self.pids().get("postgres")
            try:
                self._postgres.stop(mode="fast")
            except Exception:
                logger.exception("cluster: stopping Postgres failed")
            if pid is not None and _still_running(pid):
                # pg_ctl said it was not running, or gave up: the postmaster's own fast
                # shutdown (SIGINT) still stops it cleanly, and no Postgres outlives us.
                logger.warning("cluster: Postgres (pid %d) still runs after pg_ctl stop; sending SIGINT", pid)
                try:
                    os.kill(pid, signal.SIGINT)
                except OSError:
                    pass
                deadline = time.monotonic() + 30
                while _still_running(pid) and time.monotonic() < deadline:
                    time.sleep(0.1)
            self._postgres = None

    def pids(self) -> dict[str, int]:
        """Every process this cluster started and that still runs, by name."""
        found = {n.node_id: n.proc.pid for n in self.nodes if n.proc is not None and n.proc.poll() is None}
        for name, proc in (("redis", self._redis), ("nginx", self._nginx)):
            if proc is not None and proc.poll() is None:
                found[name] = proc.pid
        if self._postgres is not None:
            pid_file = self._postgres.data_dir / "postmaster.pid"
            try:
                found["postgres"] = int(pid_file.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        return found

    def save(self) -> None:
        state = {
            "url": self.url,
            "redis_url": self.redis_url,
            "database_url": self.database_url,
            "secret": self.secret,
            "admin_token": self.admin_token,
            "nginx_port": self.nginx_port,
            "balance": self.balance,
            "env": self.env,
            "pids": self.pids(),
            "nodes": [{"node_id": n.node_id, "port": n.port} for n in self.nodes],
        }
        path = self.root / "cluster.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(state, fh, indent=2)

    @classmethod
    def load(cls, root: Path) -> LocalCluster:
        state = json.loads((root / "cluster.json").read_text())
        cluster = cls(
            root=root,
            node_count=len(state["nodes"]),
            database_url=state["database_url"],
            nginx_port=state["nginx_port"],
            balance=state["balance"],
            env=state["env"],
            secret=state["secret"],
            admin_token=state["admin_token"],
        )
        cluster.redis_port = int(state["redis_url"].rsplit(":", 1)[1].split("/")[0])
        for entry in state["nodes"]:
            node_id, port = entry["node_id"], entry["port"]
            data_dir = root / node_id
            cluster.nodes.append(NodeProcess(node_id, port, data_dir, data_dir / "node.log"))
        return cluster

    # -- Redis ---------------------------------------------------------------------------------

    def start_redis(self) -> None:
        binary = find_binary("redis-server", "redis-server")
        if not self.redis_port:
            self.redis_port = free_port()
        directory = self.root / "redis"
        directory.mkdir(parents=True, exist_ok=True)
        self._redis = self._popen(
            [
                binary,
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(directory),
                "--daemonize",
                "no",
                "--maxclients",
                "10000",
            ],
            directory / "redis.log",
        )
        _wait_port("127.0.0.1", self.redis_port, 10, self._redis)

    def stop_redis(self) -> None:
        if self._redis is not None:
            _terminate(self._redis, signal.SIGTERM, 5)
            self._redis = None

    def redis_alive(self) -> bool:
        """True unless the Redis we started has exited."""
        return self._redis is None or self._redis.poll() is None

    # -- nodes ---------------------------------------------------------------------------------

    def node_env(self, node: NodeProcess) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROCTOR_")}
        env.update(
            {
                "PROCTOR_REDIS_URL": self.redis_url if self.use_redis else "",
                "PROCTOR_DATABASE_URL": self.database_url,
                "PROCTOR_SECRET": self.secret,
                "PROCTOR_ADMIN_TOKEN": self.admin_token,
                "PROCTOR_NODE_ID": node.node_id,
                "PROCTOR_HOST": self.node_host,
                "PROCTOR_PORT": str(node.port),
                "PROCTOR_DATA_DIR": str(node.data_dir),
                "PROCTOR_PUBLIC_URL": self.public_url or (self.url if self.nginx_port else ""),
            }
        )
        env.update(self.env)
        return env

    def add_node(self, *, wait: bool = True, port: int = 0) -> NodeProcess:
        taken = {n.node_id for n in self.nodes}
        number = len(self.nodes) + 1
        while f"{self.node_prefix}-{number}" in taken:
            number += 1
        node_id = f"{self.node_prefix}-{number}"
        data_dir = self.root / node_id
        data_dir.mkdir(parents=True, exist_ok=True)
        if not port:
            port = self.node_port_base + number - 1 if self.node_port_base else free_port()
        node = NodeProcess(node_id, port, data_dir, data_dir / "node.log")
        self.nodes.append(node)
        self.start_node(node, wait=wait)
        return node

    def start_node(self, node: NodeProcess, *, wait: bool = True) -> None:
        node.proc = self._popen(
            [sys.executable, "-m", "server.cli", "serve"],
            node.log,
            env=self.node_env(node),
            cwd=self.node_cwd or node.data_dir,
        )
        if wait:
            self.wait_ready(node)

    def wait_ready(self, node: NodeProcess, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if node.proc is not None and node.proc.poll() is not None:
                raise ClusterError(f"{node.node_id} exited with {node.proc.returncode}; see {node.log}")
            try:
                status, _ = http_json(node.url + "/readyz", timeout=1)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise ClusterError(f"{node.node_id} not ready after {timeout}s; see {node.log}")

    def kill_node(self, node: NodeProcess, sig: int = signal.SIGKILL) -> None:
        assert node.proc is not None
        node.proc.send_signal(sig)
        node.proc.wait(timeout=30)

    def node(self, node_id: str) -> NodeProcess:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise KeyError(node_id)

    # -- Nginx ---------------------------------------------------------------------------------

    def nginx_conf(self) -> str:
        return render_standalone(self.nginx_prefix, self.nginx_site())

    def nginx_site(self) -> str:
        """The `upstream` and `server` blocks (what `--front none` prints for the operator)."""
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return render_site(
            [Node(self.node_host, n.port) for n in self.nodes],
            listen=f"{host}:{self.nginx_port}" if host else str(self.nginx_port),
            balance=self.balance,
            fail_timeout=5,
            tls=self.tls,
        )

    def start_nginx(self) -> None:
        binary = find_binary("nginx", "nginx")
        if not self.nginx_port:
            self.nginx_port = free_port()
        prefix = self.nginx_prefix
        prefix.mkdir(parents=True, exist_ok=True)
        (prefix / "nginx.conf").write_text(self.nginx_conf())
        self._nginx = self._popen(
            [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
            prefix / "nginx.out",
        )
        _wait_port(self.front_host, self.nginx_port, 10, self._nginx)

    def stop_nginx(self) -> None:
        if self._nginx is not None:
            _terminate(self._nginx, signal.SIGQUIT, 5)
            self._nginx = None

    def nginx_alive(self) -> bool:
        """True unless the Nginx we started has exited."""
        return self._nginx is None or self._nginx.poll() is None

    def reload_nginx(self) -> None:
        """Write the config for the current nodes and `nginx -s reload` it."""
        prefix = self.nginx_prefix
        (prefix / "nginx.conf").write_text(self.nginx_conf())
        subprocess.run(
            [find_binary("nginx", "nginx"), "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-s", "reload"],
            check=True,
            capture_output=True,
            timeout=10,
        )


def _still_running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _terminate(proc: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def run_cluster(nodes: int, *, root: Path | None, port: int, balance: Balance, rooms_per_node: int | None) -> int:
    """The foreground `proctor cluster`: start everything, print the URL, stop on Ctrl-C."""
    root = root or Path(tempfile.mkdtemp(prefix="proctor-cluster-"))
    env: dict[str, str] = {}
    if rooms_per_node:
        env["PROCTOR_ROOMS_PER_NODE"] = str(rooms_per_node)
    cluster = LocalCluster(
        root=root,
        node_count=nodes,
        nginx_port=port,
        balance=balance,
        env=env,
        database_url=os.environ.get("PROCTOR_DATABASE_URL", ""),
    )
    stop = False

    def request_stop(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    print(f"starting Redis, Postgres, {nodes} nodes and Nginx in {root} ...", flush=True)
    cluster.start()
    print(f"\nProctor cluster ready: {cluster.url}", flush=True)
    for node in cluster.nodes:
        print(f"  {node.node_id}: {node.url}  (log: {node.log})")
    print(f"  redis: {cluster.redis_url}")
    print(f"  admin token: {root / 'cluster.json'} (admin_token)")
    print(f"\nadd a node:  proctor cluster --add-node {root}")
    print("stop:        Ctrl-C\n", flush=True)
    try:
        while not stop:
            time.sleep(0.5)
            for node in cluster.nodes:
                if node.proc is not None and node.proc.poll() is not None:
                    print(f"{node.node_id} exited ({node.proc.returncode}); see {node.log}", flush=True)
                    node.proc = None
    finally:
        print("stopping ...", flush=True)
        cluster.stop()
    return 0


def add_node(root: Path) -> int:
    """`proctor cluster --add-node DIR`: one more node for a running cluster, then reload
    Nginx; runs in the foreground until Ctrl-C (the node then drains and exits)."""
    cluster = LocalCluster.load(root)
    stop = False

    def request_stop(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    node = cluster.add_node()
    cluster.save()
    cluster.reload_nginx()
    print(f"{node.node_id} serving on {node.url}; Nginx reloaded: new rooms can go to it", flush=True)
    try:
        while not stop and node.alive():
            time.sleep(0.5)
    finally:
        if node.proc is not None:
            _terminate(node.proc, signal.SIGTERM, 30)
    return 0
