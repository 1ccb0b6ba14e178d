"""`proctor serve --processes N`: every core of one machine, as one service.

A Python process runs one event loop on one core; a machine with N cores serves N times the
students with N node processes. They are a cluster (docs/cluster.md) that happens to share
a machine: the system's `redis-server` between them (loopback port, no persistence:
nothing durable travels through it), one Postgres (the embedded one in `DATA_DIR/postgres`,
the same data as a single `proctor serve`, or `PROCTOR_DATABASE_URL`), one signing secret
(`DATA_DIR/secret`) and admin token (`DATA_DIR/admin-token`), and a sticky Nginx front on
the public `PROCTOR_HOST:PROCTOR_PORT` (`hash $remote_addr consistent` by default) with the
nodes on loopback ports behind it. `--front none` leaves Nginx to the operator and prints
the config to install.

The machinery is `LocalCluster` (server/cli/cluster.py, also behind `proctor cluster`);
this module adds what a service needs on top: settings from the environment, fixed ports,
supervision (a node, Redis, Nginx or Postgres that dies is started again after a capped
back-off; a node's students resume on the other nodes meanwhile and come back), and an
orderly stop on SIGTERM/SIGINT: the nodes drain, then Nginx, Redis and Postgres stop.
Children run in their own session (a Ctrl-C reaches only the supervisor) and receive
SIGTERM if the supervisor itself dies.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nginx.render import Balance, SiteTLS
from server.settings import Settings

from .cluster import ClusterError, LocalCluster

logger = logging.getLogger("proctor.service")

Front = Literal["nginx", "none"]

# Settings the supervisor decides for each node; every other PROCTOR_* goes through as given.
_MANAGED = frozenset(
    {
        "PROCTOR_REDIS_URL",
        "PROCTOR_DATABASE_URL",
        "PROCTOR_SECRET",
        "PROCTOR_ADMIN_TOKEN",
        "PROCTOR_NODE_ID",
        "PROCTOR_HOST",
        "PROCTOR_PORT",
        "PROCTOR_DATA_DIR",
        "PROCTOR_PUBLIC_URL",
        # With a certificate, Nginx speaks TLS to the students; the nodes behind it on loopback
        # serve plain HTTP (their public URL is the front's https one).
        "PROCTOR_TLS_CERT",
        "PROCTOR_TLS_KEY",
    }
)
_FIRST_BACKOFF = 1.0
_MAX_BACKOFF = 30.0
_STABLE_SECONDS = 60.0  # a child up this long has recovered: its next crash restarts at once again
_POSTGRES_CHECK_SECONDS = 5.0


def process_count(value: str) -> int:
    """`--processes`: a positive number, or `auto` for one per core this process may use."""
    if value == "auto":
        return len(os.sched_getaffinity(0))
    try:
        count = int(value)
    except ValueError:
        raise ClusterError(f"--processes takes a number or 'auto', got {value!r}") from None
    if count < 1:
        raise ClusterError("--processes must be at least 1")
    return count


@dataclass
class Child:
    """One supervised part: how to tell it runs and how to start it again."""

    name: str
    alive: Callable[[], bool]
    start: Callable[[], None]
    backoff: float = _FIRST_BACKOFF
    started_at: float = 0.0
    restart_at: float | None = None

    def check(self, now: float) -> None:
        if self.restart_at is None:
            if self.alive():
                return
            if now - self.started_at >= _STABLE_SECONDS:
                self.backoff = _FIRST_BACKOFF
            self.restart_at = now + self.backoff
            logger.warning("%s exited; starting it again in %.0fs", self.name, self.backoff)
            self.backoff = min(self.backoff * 2, _MAX_BACKOFF)
            return
        if now < self.restart_at:
            return
        self.restart_at = None
        self.started_at = now
        try:
            self.start()
            logger.info("%s started again", self.name)
        except Exception as exc:
            # Counts as a crash: the next check schedules another try, later.
            logger.error("%s did not start: %s", self.name, exc)
            self.started_at = now


def _admin_token(settings: Settings) -> str:
    """The admin token every node accepts: PROCTOR_ADMIN_TOKEN, else the one in
    DATA_DIR/admin-token, minted there on first start as a single `proctor serve` does."""
    from rooms.tokens import TokenService
    from server.lifecycle import admin_token_file

    path = admin_token_file(settings, TokenService(settings.secret.get_secret_value()))
    return settings.admin_token.get_secret_value() if path is None else path.read_text().strip()


def _check_ports(host: str, ports: list[int]) -> None:
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # As the node will (aiohttp reuses the address): a restart's TIME_WAIT is no conflict.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                raise ClusterError(
                    f"node port {host}:{port} is not free ({exc.strerror}); choose others with --node-ports FIRST"
                ) from None


def build_cluster(
    settings: Settings, *, processes: int, front: Front, balance: Balance, node_ports: int | None, node_host: str
) -> LocalCluster:
    """The cluster `proctor serve --processes` runs, from the node's own settings."""
    prefix = settings.node_id or socket.gethostname()
    settings = settings.with_runtime_defaults()  # the persisted secret in DATA_DIR/secret
    base = node_ports or settings.port + 1
    ports = list(range(base, base + processes))
    if settings.port in ports:
        raise ClusterError(f"the node ports {base}..{base + processes - 1} include the public port {settings.port}")
    _check_ports(node_host, ports)
    passed = {k: v for k, v in os.environ.items() if k.startswith("PROCTOR_") and k not in _MANAGED}
    tls = _front_tls(settings)
    return LocalCluster(
        root=settings.data_dir,
        node_count=processes,
        database_url=settings.database_url.get_secret_value(),
        nginx_port=settings.port,
        balance=balance,
        env=passed,
        secret=settings.secret.get_secret_value(),
        admin_token=_admin_token(settings),
        listen_host=settings.host,
        node_host=node_host,
        node_prefix=prefix,
        node_port_base=base,
        front=front == "nginx",
        public_url=settings.public_url,
        redis_url_given=settings.redis_url.get_secret_value(),
        supervised=True,
        # A node's own stop is bounded by PROCTOR_SHUTDOWN_TIMEOUT_SECONDS; then it is killed.
        node_stop_timeout=settings.shutdown_timeout_seconds + 5,
        node_cwd=Path.cwd(),
        tls=tls,
    )


def _front_tls(settings: Settings) -> SiteTLS | None:
    """The front's certificate (PROCTOR_TLS_CERT/KEY), checked before anything starts."""
    if not settings.tls:
        return None
    from server.tls import check_pair

    cert, key = Path(settings.tls_cert).resolve(), Path(settings.tls_key).resolve()
    check_pair(cert, key)  # a bad pair stops the start naming the setting, as a single node does
    # No port-80 redirect server here: that port is the operator's to give (docs/operations.md).
    return SiteTLS(str(cert), str(key), http_listen="off")


def _children(cluster: LocalCluster) -> list[Child]:
    children = [
        Child(node.node_id, node.alive, functools.partial(cluster.start_node, node, wait=False))
        for node in cluster.nodes
    ]
    if not cluster.redis_url_given:
        children.append(Child("redis-server", cluster.redis_alive, cluster.start_redis))
    if cluster.front:
        children.append(Child("nginx", cluster.nginx_alive, cluster.start_nginx))
    now = time.monotonic()
    for child in children:
        child.started_at = now
    return children


def _print_front_none(cluster: LocalCluster) -> None:
    path = cluster.nginx_prefix / "proctor.conf"
    path.parent.mkdir(parents=True, exist_ok=True)
    site = cluster.nginx_site()
    path.write_text(site)
    print(f"\n--front none: Nginx is yours. The config for these nodes is in {path}:\n", flush=True)
    print(site, flush=True)
    print(
        "Install it in Nginx's http {} context and reload, e.g.:\n"
        f"  cp {path} /etc/nginx/conf.d/proctor.conf && nginx -t && nginx -s reload\n",
        flush=True,
    )


def run_service(
    settings: Settings, *, processes: str, front: Front, balance: Balance, node_ports: int | None, node_host: str
) -> int:
    """Start everything, supervise until SIGTERM/SIGINT, stop in order."""
    cluster = build_cluster(
        settings,
        processes=process_count(processes),
        front=front,
        balance=balance,
        node_ports=node_ports,
        node_host=node_host,
    )
    stopping = False

    def request_stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        if not stopping:
            logger.info("%s: stopping", signal.Signals(signum).name)
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    count = cluster.node_count
    print(
        f"starting {count} node processes, Redis, Postgres"
        f"{' and Nginx' if cluster.front else ''} in {cluster.root} ...",
        flush=True,
    )
    cluster.start()  # stops what it started if it fails
    try:
        for node in cluster.nodes:
            print(f"  {node.node_id}: {node.url}  (log: {node.log})", flush=True)
        if cluster.front:
            print(
                f"proctor service ready: {cluster.url} ({count} processes behind Nginx, balance {cluster.balance})",
                flush=True,
            )
        else:
            _print_front_none(cluster)
            print(f"proctor service ready: {count} processes", flush=True)
        print(
            f"admin token: {settings.data_dir / 'admin-token'}"
            if not settings.admin_token.get_secret_value()
            else "admin token: from PROCTOR_ADMIN_TOKEN",
            flush=True,
        )
        supervise(cluster, lambda: stopping)
    finally:
        print("stopping: nodes, then Nginx, Redis, Postgres ...", flush=True)
        cluster.stop()
        cluster.save()  # pids now empty: nothing of ours runs
    print("stopped", flush=True)
    return 0


def supervise(cluster: LocalCluster, stopping: Callable[[], bool], interval: float = 0.25) -> None:
    """Restart whatever dies until `stopping()`; keep DATA_DIR/cluster.json's pids current."""
    children = _children(cluster)
    next_postgres_check = time.monotonic() + _POSTGRES_CHECK_SECONDS
    pids = cluster.pids()
    while not stopping():
        time.sleep(interval)
        now = time.monotonic()
        for child in children:
            if stopping():
                break
            child.check(now)
        if now >= next_postgres_check and not stopping():
            next_postgres_check = now + _POSTGRES_CHECK_SECONDS
            if not cluster.postgres_alive():
                logger.warning("Postgres is down; starting it again")
                try:
                    cluster.start_postgres()
                except Exception as exc:
                    logger.error("Postgres did not start: %s", exc)
        current = cluster.pids()
        if current != pids:
            pids = current
            cluster.save()
