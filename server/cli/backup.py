"""`proctor backup FILE` and `proctor restore FILE` (docs/operations.md, "Backup and restore").

A backup is the node's database (`pg_dump -Fc`, one snapshot), the data directory's secret
files and the erasure log, in one archive (server/cli/archive.py). A restore loads it onto an
empty node in ONE transaction (psql --single-transaction): drop what the target holds, load
the dump, re-apply every erasure known (the backup's own, the replaced database's, newer
backups' given with --erasures-from), purge expired evidence; then migrate to this release's
schema and write the secret files, so tokens minted before the backup still verify.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg

from rooms.store import erasures
from rooms.store.migrate import available, migrate
from server.settings import Settings

from . import archive
from .archive import ArchiveError, Manifest
from .dump import BackupError, Database, Tools, check_versions, connect, node_database, server_major

# Rows in these mean the target is in use: restore refuses to overwrite it without --force.
_IN_USE = ("exams", "attempts")


def _version() -> str:
    try:
        return metadata.version("proctor-server")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown"


async def _applied(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    if await conn.fetchval("SELECT to_regclass('public.schema_migrations')") is None:
        return []
    rows = await conn.fetch("SELECT version, name FROM public.schema_migrations ORDER BY version")
    return [{"version": r["version"], "name": r["name"]} for r in rows]


async def backup(settings: Settings, path: Path, *, pg_bin: Path | None = None) -> Manifest:
    """Write the node's backup to `path`; return its manifest."""
    tools = Tools(pg_bin)
    with tempfile.TemporaryDirectory(prefix="proctor-backup-") as tmp:
        work = Path(tmp)
        dump_file = work / archive.DUMP
        async with node_database(settings, restoring=False) as db:
            conn = await connect(db)
            try:
                major, server_version = await server_major(conn)
                check_versions(tools, major, db.shown)
                await tools.run(db, "pg_dump", "--format=custom", "--file", str(dump_file))
                # Read after the dump: anything erased before its snapshot is in this list too,
                # so `--erasures-from` this backup never misses what its dump holds.
                log = await erasures.read(conn)
                migrations = await _applied(conn)
            finally:
                await conn.close()
        erasures_file = work / archive.ERASURES
        erasures_file.write_text(json.dumps([e.to_json() for e in log]))
        members = {archive.DUMP: dump_file, archive.ERASURES: erasures_file, **archive.data_files(settings.data_dir)}
        manifest = Manifest(
            created_at=datetime.now(UTC).isoformat(),
            proctor_version=_version(),
            # as Settings.with_runtime_defaults names it, without creating a secret as a side effect
            node_id=settings.node_id or f"{socket.gethostname()}-{settings.port}",
            database={"source": db.kind, "server_version": server_version, "pg_dump_version": tools.version()},
            migrations=migrations,
        )
        return await asyncio.to_thread(archive.write, path, manifest, members)


@dataclass
class RestoreReport:
    manifest: Manifest
    files: list[str] = field(default_factory=list)
    erasures_applied: int = 0
    migrations_applied: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _check_schema(manifest: Manifest) -> None:
    known = {m.version: m.name for m in available()}
    for m in manifest.migrations:
        if known.get(m["version"]) != m["name"]:
            raise BackupError(
                f"the backup has migration {m['name']}, which this release does not know: it was made by a newer"
                f" release ({manifest.proctor_version}); restore it with that release"
            )


def _erasures_of(path: Path) -> list[erasures.Erasure]:
    with tempfile.TemporaryDirectory(prefix="proctor-erasures-") as tmp:
        archive.read(path, Path(tmp), only=(archive.ERASURES,))
        source = Path(tmp) / archive.ERASURES
        if not source.exists():
            raise ArchiveError(f"{path} has no erasure log")
        try:
            return [erasures.Erasure.from_json(e) for e in json.loads(source.read_text())]
        except ValueError as exc:
            raise ArchiveError(f"{path}: the erasure log is malformed ({exc})") from None


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def restore(
    settings: Settings,
    path: Path,
    *,
    force: bool = False,
    erasures_from: tuple[Path, ...] = (),
    pg_bin: Path | None = None,
) -> RestoreReport:
    """Restore the backup at `path` onto the node `settings` describe (stopped, empty)."""
    tools = Tools(pg_bin)
    with tempfile.TemporaryDirectory(prefix="proctor-restore-") as tmp:
        work = Path(tmp)
        manifest = await asyncio.to_thread(archive.read, path, work)
        _check_schema(manifest)
        report = RestoreReport(manifest)
        known = [erasures.Erasure.from_json(e) for e in json.loads((work / archive.ERASURES).read_text())]
        newer = [await asyncio.to_thread(_erasures_of, p) for p in erasures_from]
        script = work / "restore.sql"
        await tools.run(
            None, "pg_restore", "--no-owner", "--no-privileges", "--file", str(script), str(work / archive.DUMP)
        )
        async with node_database(settings, restoring=True) as db:
            conn = await connect(db)
            try:
                major, _ = await server_major(conn)
                dumped = int(manifest.database.get("server_version", "0").split(".")[0] or 0)
                if major < dumped:
                    report.notes.append(
                        f"the backup comes from Postgres {dumped} and the target is {major}:"
                        " restoring to an older major may fail (docs/operations.md)"
                    )
                await _refuse_if_in_use(conn, db, force)
                replaced = await erasures.read(conn)
                tables = [
                    r["tablename"]
                    for r in await conn.fetch(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
                    )
                ]
                log = erasures.merge(known, replaced, *newer)
                await _load(tools, db, work, script, tables, log)
                report.erasures_applied = len(log)
                report.migrations_applied = await migrate(conn)
            finally:
                await conn.close()
        report.files = _write_data_files(work, settings.data_dir, manifest)
    if settings.secret.get_secret_value() and "data/secret" in manifest.files:
        report.notes.append("PROCTOR_SECRET is set: the node signs with it, not with the restored secret file")
    return report


async def _refuse_if_in_use(conn: asyncpg.Connection, db: Database, force: bool) -> None:
    if force:
        return
    for table in _IN_USE:
        if await conn.fetchval("SELECT to_regclass($1)", f"public.{table}") is None:
            continue
        rows = await conn.fetchval(f"SELECT count(*) FROM public.{table}")
        if rows:
            raise BackupError(
                f"{db.shown} is not empty ({rows} rows in {table}): restore goes onto an empty node;"
                " --force replaces everything in it"
            )


# The schema's own functions (trigger functions of the migrations, e.g. 0011's exams_own_family)
# go with the tables: the dump creates them again. Extensions' functions stay.
_DROP_FUNCTIONS = """DO $$ DECLARE f record; BEGIN
  FOR f IN SELECT p.oid::regprocedure AS sig FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public' AND p.prokind = 'f'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
  LOOP EXECUTE 'DROP FUNCTION IF EXISTS ' || f.sig || ' CASCADE'; END LOOP;
END $$;
"""


async def _load(
    tools: Tools, db: Database, work: Path, script: Path, tables: list[str], log: list[erasures.Erasure]
) -> None:
    """Drop, load, re-erase and purge in one transaction: all of it or nothing."""
    before = work / "before.sql"
    before.write_text(
        (f"DROP TABLE IF EXISTS {', '.join('public.' + _ident(t) for t in tables)} CASCADE;\n" if tables else "")
        + _DROP_FUNCTIONS
    )
    [log_table] = [m for m in available() if m.name.endswith("_erasures.sql")]
    after = work / "after.sql"
    # The dump's script empties search_path; the erasure table may predate nothing (an old
    # backup), so its migration (idempotent) runs here, before the log is written into it.
    after.write_text(
        "SELECT pg_catalog.set_config('search_path', 'public', false);\n"
        + log_table.sql
        + "\n"
        + erasures.reapply_sql(log)
        + "DELETE FROM public.evidence WHERE expires_at <= now();\n"
    )
    await tools.run(
        db,
        "psql",
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "--single-transaction",
        "-f",
        str(before),
        "-f",
        str(script),
        "-f",
        str(after),
    )


def _write_data_files(work: Path, data_dir: Path, manifest: Manifest) -> list[str]:
    written = []
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in manifest.files:
        if not name.startswith(archive.DATA_PREFIX):
            continue
        rel = name[len(archive.DATA_PREFIX) :]
        dest = data_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = dest.with_name(dest.name + ".restoring")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write((work / name).read_bytes())
        os.replace(tmp, dest)
        written.append(rel)
    stale = data_dir / "admin-token"
    if "data/secret" in manifest.files and "data/admin-token" not in manifest.files and stale.exists():
        # Signed with the secret just replaced, it verifies no more; the next start mints one.
        stale.unlink()
    return written


# -- the commands ------------------------------------------------------------------------------


def _fail(command: str, exc: BaseException) -> int:
    print(f"{command}: {exc}", file=sys.stderr)
    return 1


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    target = Path(args.file).absolute()
    if not target.parent.is_dir():
        return _fail("backup", BackupError(f"{target.parent} is not a directory"))
    try:
        manifest = asyncio.run(backup(settings, target, pg_bin=_pg_bin(args)))
    except (BackupError, ArchiveError, OSError, asyncpg.PostgresError) as exc:
        return _fail("backup", exc)
    files = [n[len(archive.DATA_PREFIX) :] for n in manifest.files if n.startswith(archive.DATA_PREFIX)]
    print(
        f"backup written to {args.file} (mode 600): database ({manifest.database['source']},"
        f" Postgres {manifest.database['server_version']}), schema {manifest.schema_version},"
        f" files: {', '.join(files) or 'none (secrets from the environment?)'}"
    )
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    try:
        report = asyncio.run(
            restore(
                settings,
                Path(args.file),
                force=args.force,
                erasures_from=tuple(Path(p) for p in args.erasures_from or ()),
                pg_bin=_pg_bin(args),
            )
        )
    except (BackupError, ArchiveError, OSError, asyncpg.PostgresError) as exc:
        return _fail("restore", exc)
    m = report.manifest
    print(
        f"restored the backup of node {m.node_id} made {m.created_at} (schema {m.schema_version});"
        f" erasures re-applied: {report.erasures_applied}; migrations applied since:"
        f" {', '.join(report.migrations_applied) or 'none'}; files: {', '.join(report.files) or 'none'}"
    )
    for note in report.notes:
        print(f"note: {note}")
    return 0


def _pg_bin(args: argparse.Namespace) -> Path | None:
    return Path(args.pg_bin) if args.pg_bin else None


def add_backup_commands(sub: Any, settings_of: Any) -> None:
    """`backup` and `restore`; `settings_of(args)` reads the node's settings like `serve` does."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("file", help="the archive (tar.gz)")
    common.add_argument("--data-dir", help="data directory (PROCTOR_DATA_DIR)")
    common.add_argument("--pg-bin", help="directory with pg_dump/pg_restore/psql (default: pgserver's)")

    bak = sub.add_parser("backup", parents=[common], help="write the database and the secrets to one archive")
    bak.set_defaults(func=lambda args: cmd_backup(args, settings_of(args)))

    res = sub.add_parser("restore", parents=[common], help="restore a backup onto an empty, stopped node")
    res.add_argument("--force", action="store_true", help="replace a database that already holds exams")
    res.add_argument(
        "--erasures-from",
        action="append",
        metavar="NEWER_BACKUP",
        help="re-apply the erasure log of a newer backup too (repeatable)",
    )
    res.set_defaults(func=lambda args: cmd_restore(args, settings_of(args)))
