"""Which Postgres a backup reads or a restore writes, and the client programs that do it.

The programs are the ones the `pgserver` wheel ships (pg_dump, pg_restore, psql), the same
major version as the embedded server. `pg_dump` reads servers of its own major or older;
for an external server of a newer major, `--pg-bin` names that server's own programs.
Passwords go to the programs in `PGPASSWORD`, never on their command line (where `ps`
shows it to every local user).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

from server.embedded_pg import EmbeddedPostgres, tools_dir
from server.settings import Settings


class BackupError(Exception):
    """A backup or restore cannot go on; the message tells the operator what to do."""


@dataclass(frozen=True, slots=True)
class Database:
    dsn: str  # for asyncpg, password included
    kind: str  # "embedded" | "external"

    @property
    def libpq_dsn(self) -> str:
        """The DSN without its password (that goes in PGPASSWORD)."""
        parts = urlsplit(self.dsn)
        if parts.password is None:
            return self.dsn
        host = parts.netloc.rpartition("@")[2]
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        password = urlsplit(self.dsn).password
        if password is not None:
            env["PGPASSWORD"] = unquote(password)
        return env

    @property
    def shown(self) -> str:
        """For messages: host and database, never credentials."""
        if self.kind == "embedded":
            return "the embedded Postgres"
        parts = urlsplit(self.dsn)
        return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path or '/'}"


def _postmaster_alive(pgdata: Path) -> bool:
    # Checked here rather than with `pg_ctl status`: that runs as the unprivileged Postgres
    # account (as root), which may not reach a data dir whose parents' modes changed since.
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # alive, and another account's
    except OSError:
        return False  # a stale file: Postgres died without removing it
    return True


def _running_dsn(pgdata: Path) -> str | None:
    """The DSN of the embedded Postgres a running node started, from its postmaster.pid."""
    pid_file = pgdata / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
    except OSError:
        return None
    # postmaster.pid: pid, data dir, start time, port, socket dir, listen address, ...
    if len(lines) < 6:
        return None
    port, socket_dir, listen = lines[3].strip(), lines[4].strip(), lines[5].strip()
    if socket_dir:
        return f"postgresql://postgres@/postgres?host={socket_dir}&port={port}"
    if listen and listen != "*":
        return f"postgresql://postgres@{listen}:{port}/postgres"
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


@contextlib.asynccontextmanager
async def node_database(settings: Settings, *, restoring: bool) -> AsyncIterator[Database]:
    """The node's database for the duration: PROCTOR_DATABASE_URL, or the embedded one.

    A running node's embedded Postgres is used as it is (a dump is one snapshot, so the node
    may go on working); a stopped one is started and stopped again. A restore refuses to
    run under a node: its caches would not know the data changed.
    """
    if settings.database_url.get_secret_value():
        yield Database(settings.database_url.get_secret_value(), "external")
        return
    pgdata = settings.data_dir / "postgres"
    embedded = EmbeddedPostgres(pgdata)
    if await asyncio.to_thread(_postmaster_alive, pgdata):
        if restoring:
            raise BackupError(f"the node using {settings.data_dir} is running (its Postgres is up): stop it first")
        dsn = _running_dsn(pgdata)
        if dsn is None:
            raise BackupError(f"cannot read how to reach the running Postgres from {pgdata / 'postmaster.pid'}")
        yield Database(dsn, "embedded")
        return
    if not restoring and not (pgdata / "PG_VERSION").exists():
        raise BackupError(f"{settings.data_dir} holds no database (no {pgdata}); is it the node's data dir?")
    await asyncio.to_thread(embedded.start)
    try:
        yield Database(embedded.dsn, "embedded")
    finally:
        await asyncio.to_thread(embedded.stop)


class Tools:
    """pg_dump, pg_restore and psql from one directory (pgserver's, unless told otherwise)."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir or tools_dir()
        for name in ("pg_dump", "pg_restore", "psql"):
            if not (self.bin_dir / name).is_file():
                raise BackupError(f"{self.bin_dir / name} is missing (pip install pgserver, or give --pg-bin)")

    def version(self) -> str:
        out = subprocess.run(
            [str(self.bin_dir / "pg_dump"), "--version"], capture_output=True, text=True, check=True, timeout=30
        ).stdout
        match = re.search(r"(\d+)(?:\.(\d+))?", out)
        if match is None:
            raise BackupError(f"cannot tell pg_dump's version from {out!r:.80}")
        return match.group(0)

    @property
    def major(self) -> int:
        return int(self.version().split(".")[0])

    async def run(self, db: Database | None, program: str, *args: str, timeout: float = 3600) -> str:
        argv = [str(self.bin_dir / program), *args]
        if db is not None:
            argv += ["-d", db.libpq_dsn]
        env = db.env if db is not None else None

        def call() -> subprocess.CompletedProcess[str]:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)

        done = await asyncio.to_thread(call)
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-8:])
            if "SSL support is not compiled in" in tail:
                tail += (
                    f"\n{self.bin_dir} has no TLS (pgserver's build): give --pg-bin with your"
                    " distribution's programs, e.g. /usr/lib/postgresql/<major>/bin"
                )
            raise BackupError(f"{program} failed (exit {done.returncode}): {tail}")
        return done.stdout


async def server_major(conn: asyncpg.Connection) -> tuple[int, str]:
    num = int(await conn.fetchval("SHOW server_version_num"))
    return num // 10000, str(await conn.fetchval("SHOW server_version"))


def check_versions(tools: Tools, server: int, what: str) -> None:
    """pg_dump cannot read a newer server; say which programs to use instead."""
    if server > tools.major:
        raise BackupError(
            f"{what} is Postgres {server} but {tools.bin_dir}/pg_dump is {tools.major}: pg_dump reads only its own"
            f" major version or older. Give --pg-bin with Postgres {server}'s programs (e.g."
            f" /usr/lib/postgresql/{server}/bin), or see docs/operations.md for the manual pg_dump/pg_restore steps"
        )


async def connect(db: Database) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(db.dsn, timeout=30)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise BackupError(f"cannot connect to {db.shown}: {type(exc).__name__}: {exc}") from None
