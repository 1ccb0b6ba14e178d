"""The backup archive: one gzipped tar, mode 0600, with a manifest that checks every member.

Layout (docs/operations.md, "Backup and restore"):

    manifest.json      format, versions, node id, migrations, created_at, a SHA-256 per member
    database.pgdump    `pg_dump -Fc` of the node's database (one snapshot)
    erasures.json      the erasure log at the end of the dump (rooms/store/erasures.py)
    data/<name>        the data directory's own files: `DATA_FILES` (never Postgres' files)

Reading never uses `extractall`: each member must be a regular file with a name from this
layout, and its bytes must match the manifest, so a truncated or tampered archive is refused
before anything is restored.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import tarfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

FORMAT = "proctor-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DUMP = "database.pgdump"
ERASURES = "erasures.json"
DATA_PREFIX = "data/"
# What of the data directory is backed up, as globs relative to it: the signing secret, the
# admin token, and key material (`keys/` is where LTI keys will live; certificates and keys
# an operator keeps beside them). Postgres' own files (`postgres/`) are in the dump instead.
DATA_FILES = ("secret", "admin-token", "keys/**/*", "*.pem", "*.key")
_EXCLUDED_DIRS = ("postgres", "run")


class ArchiveError(Exception):
    """The archive is unreadable, incomplete or not a proctor backup; the message says which."""


@dataclass(frozen=True, slots=True)
class Manifest:
    created_at: str
    proctor_version: str
    node_id: str
    database: dict[str, str]
    migrations: list[dict[str, Any]]
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "format_version": self.format_version,
            "created_at": self.created_at,
            "proctor_version": self.proctor_version,
            "node_id": self.node_id,
            "database": self.database,
            "migrations": self.migrations,
            "files": self.files,
        }

    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ArchiveError("not a proctor backup (its manifest does not say format 'proctor-backup')")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ArchiveError(f"backup format {version!r} is not supported (this release reads {FORMAT_VERSION})")
        try:
            manifest = cls(
                created_at=str(data["created_at"]),
                proctor_version=str(data["proctor_version"]),
                node_id=str(data["node_id"]),
                database=dict(data["database"]),
                migrations=[{"version": int(m["version"]), "name": str(m["name"])} for m in data["migrations"]],
                files={str(k): {"sha256": str(v["sha256"]), "size": int(v["size"])} for k, v in data["files"].items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ArchiveError(f"the manifest is incomplete ({type(exc).__name__}: {exc})") from None
        return manifest

    @property
    def schema_version(self) -> int:
        return max((m["version"] for m in self.migrations), default=0)


def data_files(data_dir: Path) -> dict[str, Path]:
    """The data directory's files to back up, by their name in the archive (`data/...`)."""
    found: dict[str, Path] = {}
    if not data_dir.is_dir():
        return found
    for pattern in DATA_FILES:
        for path in sorted(data_dir.glob(pattern)):
            rel = path.relative_to(data_dir)
            if path.is_file() and not path.is_symlink() and rel.parts[0] not in _EXCLUDED_DIRS:
                found[DATA_PREFIX + rel.as_posix()] = path
    return found


def _digest(path: Path) -> dict[str, Any]:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return {"sha256": h.hexdigest(), "size": path.stat().st_size}


def write(path: Path, manifest: Manifest, members: dict[str, Path]) -> Manifest:
    """Write the archive atomically (a temp file renamed into place), readable by the owner only."""
    files = {name: _digest(src) for name, src in members.items()}
    manifest = dataclasses.replace(manifest, files=files)
    body = json.dumps(manifest.to_json(), indent=2).encode()
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode, info.mtime = len(body), 0o600, int(time.time())
            tar.addfile(info, io.BytesIO(body))  # first, so a reader sees what follows
            for name, src in members.items():
                member = tarfile.TarInfo(name)
                member.size, member.mode, member.mtime = src.stat().st_size, 0o600, int(time.time())
                with src.open("rb") as fh:
                    tar.addfile(member, fh)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return manifest


def _member_name(name: str) -> str:
    pure = PurePosixPath(name)
    if name in (MANIFEST, DUMP, ERASURES):
        return name
    if name.startswith(DATA_PREFIX) and not pure.is_absolute() and ".." not in pure.parts and len(pure.parts) > 1:
        return name
    raise ArchiveError(f"unexpected member {name!r:.120} (not written by proctor backup)")


def read(path: Path, into: Path, only: tuple[str, ...] | None = None) -> Manifest:
    """Extract the archive's members into `into` and check them against the manifest.

    With `only`, just those members (and the manifest) are kept and checked.
    """
    if not path.is_file():
        raise ArchiveError(f"{path}: no such file")
    seen: set[str] = set()
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            first = tar.next()
            if first is None or first.name != MANIFEST or not first.isfile():
                raise ArchiveError("not a proctor backup (it does not start with manifest.json)")
            handle = tar.extractfile(first)
            assert handle is not None
            try:
                manifest = Manifest.from_json(json.loads(handle.read()))
            except (ValueError, UnicodeDecodeError) as exc:
                raise ArchiveError(f"the manifest is not JSON ({exc})") from None
            for member in tar:  # (iteration starts again from the manifest)
                if member is first:
                    continue
                name = _member_name(member.name)
                if not member.isfile() or name in seen or name not in manifest.files:
                    raise ArchiveError(f"member {name!r:.120} is not listed in the manifest (or repeated)")
                seen.add(name)
                if only is not None and name not in only:
                    continue
                _extract(tar, member, into / name, manifest.files[name])
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ArchiveError(f"{path} is truncated or corrupt ({type(exc).__name__}: {exc})") from None
    wanted = set(manifest.files) if only is None else set(only) & set(manifest.files)
    missing = sorted(wanted - seen)
    if missing:
        raise ArchiveError(f"{path} is incomplete: {', '.join(missing)} missing (truncated?)")
    return manifest


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path, expected: dict[str, Any]) -> None:
    source = tar.extractfile(member)
    assert source is not None
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    h = hashlib.sha256()
    size = 0
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
            out.write(chunk)
    if size != expected["size"] or h.hexdigest() != expected["sha256"]:
        raise ArchiveError(f"member {member.name} does not match its checksum in the manifest (corrupt)")
