"""A real Postgres run from the binaries the `pgserver` package ships.

`proctor serve` uses it when `PROCTOR_DATABASE_URL` is unset; the tests, benchmarks and
`proctor cluster` use it on a loopback TCP port so they can stop and start it at will.
We drive `initdb`/`pg_ctl` ourselves rather than through `pgserver.get_server` because
the latter only offers a Unix socket and keeps a cross-process handle count, which makes
a deliberate stop/restart (the fault tests) impossible.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

logger = logging.getLogger(__name__)

# Postgres refuses to run as root; pgserver uses the same unprivileged account.
_SYSTEM_USER = "pgserver"


def _bin_dir() -> Path:
    try:
        from pgserver._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("the embedded Postgres needs the 'pgserver' package: pip install pgserver") from exc
    return Path(POSTGRES_BIN_PATH)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedPostgres:
    """One Postgres cluster in `data_dir`; `port=None` listens on a Unix socket only."""

    def __init__(self, data_dir: Path, *, port: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self._user: str | None = None
        self._socket_dir: Path | None = None
        if os.geteuid() == 0:
            from pgserver.utils import ensure_user_exists

            ensure_user_exists(_SYSTEM_USER)
            self._user = _SYSTEM_USER

    @property
    def dsn(self) -> str:
        if self.port is not None:
            return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        assert self._socket_dir is not None, "start() first"
        return f"postgresql://postgres@/postgres?host={self._socket_dir}&port=5432"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(_bin_dir() / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
            user=self._user,
        )

    def _chown(self, path: Path) -> None:
        if self._user is not None:
            shutil.chown(path, self._user, self._user)

    def init(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._chown(self.data_dir)
        if self._user is not None:
            _make_traversable(self.data_dir.parent)
        logger.info("initialising embedded Postgres in %s", self.data_dir)
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        self.init()
        if self.is_running():
            # A previous process died without stopping it; reuse is safe (single data dir lock).
            self.stop(mode="fast")
        options = ["-c", "fsync=on", "-c", "max_connections=200"]
        if self.port is not None:
            options += ["-h", "127.0.0.1", "-p", str(self.port), "-k", ""]
        else:
            self._socket_dir = _socket_dir_for(self.data_dir)
            self._chown(self._socket_dir)
            options += ["-h", "", "-k", str(self._socket_dir)]
        log = self.data_dir / "postgres.log"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-w",
            "-t",
            "60",
            "-l",
            str(log),
            "-o",
            " ".join(_quote(o) for o in options),
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        if not self.is_running():
            return
        self._run("pg_ctl", "-D", str(self.data_dir), "-w", "-t", "60", "-m", mode, "stop")

    def is_running(self) -> bool:
        if not (self.data_dir / "postmaster.pid").exists():
            return False
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "status")
        except subprocess.CalledProcessError:
            return False
        return True


def _quote(option: str) -> str:
    return "''" if option == "" else option


def _socket_dir_for(data_dir: Path) -> Path:
    # Unix socket paths are limited to ~107 bytes; fall back to a short temp dir.
    candidate = data_dir / "run"
    if len(str(candidate / ".s.PGSQL.5432")) < 100:
        candidate.mkdir(exist_ok=True, mode=0o700)
        return candidate
    return Path(tempfile.mkdtemp(prefix="proctor-pg-"))


def _make_traversable(path: Path) -> None:
    # The unprivileged postgres account must reach a data dir created by root.
    for parent in [path, *path.parents]:
        if parent == Path("/"):
            break
        mode = parent.stat().st_mode
        if mode & 0o011 != 0o011:
            parent.chmod(mode | 0o011)


@contextlib.asynccontextmanager
async def database_dsn(database_url: str, data_dir: Path) -> AsyncIterator[str]:
    """The configured Postgres, or the embedded one in `data_dir/postgres` for the duration."""
    if database_url:
        yield database_url
        return
    embedded = EmbeddedPostgres(data_dir / "postgres")
    await asyncio.to_thread(embedded.start)
    logger.info("embedded Postgres running in %s", embedded.data_dir)
    try:
        yield embedded.dsn
    finally:
        await asyncio.to_thread(embedded.stop)


def tools_dir() -> Path:
    """Where pgserver's client programs are (pg_dump, pg_restore, psql: the server's major)."""
    return _bin_dir()
