"""Zip archives from uploads, opened with limits: total and per-file size, file count,
compression ratio, and names that stay inside the archive.

The central directory's sizes are checked first (cheap, before any byte is inflated); each
member is then read in chunks against the same limits, so an archive that lies about its
sizes stops at the limit, not after filling the memory.
"""

from __future__ import annotations

import io
import stat
import zipfile
from dataclasses import dataclass

from rooms.errors import Invalid, TooLarge


@dataclass(frozen=True, slots=True)
class ZipLimits:
    max_files: int = 1000
    max_file_bytes: int = 10 << 20
    max_total_bytes: int = 50 << 20
    # Text compresses about 3-10:1; 100:1 is an archive made to inflate (a "zip bomb").
    max_ratio: float = 100.0


LIMITS = ZipLimits()
_CHUNK = 64 << 10


def _unsafe(name: str) -> str | None:
    """Why `name` may not be extracted, or None."""
    if not name or "\x00" in name:
        return "an empty name or a NUL byte"
    if "\\" in name:
        return "a backslash (a Windows path)"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if any(part == ".." for part in name.split("/")):
        return "a '..' component (it points outside the archive)"
    return None


class SafeZip:
    """The members of a zip archive checked against `ZipLimits`; `read` inflates one, bounded."""

    def __init__(self, data: bytes, limits: ZipLimits = LIMITS) -> None:
        self.limits = limits
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
            raise Invalid(f"the file is not a readable zip archive ({exc})", code="zip_invalid") from None
        if len(infos) > limits.max_files:
            raise TooLarge(
                f"the archive holds {len(infos)} entries; at most {limits.max_files} are accepted",
                code="zip_too_many_files",
            )
        total = 0
        self._members: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            why = _unsafe(info.filename)
            if why is None and stat.S_ISLNK(info.external_attr >> 16):
                why = "a symbolic link"
            if why is not None:
                raise Invalid(
                    f"the archive entry {info.filename[:200]!r} has {why}; the archive is refused",
                    code="unsafe_path",
                    fields={"file": info.filename[:200]},
                )
            if info.flag_bits & 0x1:
                raise Invalid(f"the archive entry {info.filename[:200]!r} is encrypted", code="zip_encrypted")
            if info.filename in self._members:
                raise Invalid(f"the archive names {info.filename[:200]!r} twice", code="unsafe_path")
            self._check_sizes(info, info.file_size)
            total += info.file_size
            if total > limits.max_total_bytes:
                raise TooLarge(
                    f"the archive inflates to more than {limits.max_total_bytes} bytes", code="zip_too_large"
                )
            self._members[info.filename] = info

    def _check_sizes(self, info: zipfile.ZipInfo, size: int) -> None:
        if size > self.limits.max_file_bytes:
            raise TooLarge(
                f"the archive entry {info.filename[:200]!r} inflates to more than {self.limits.max_file_bytes} bytes",
                code="zip_too_large",
            )
        if size > _CHUNK and size / max(info.compress_size, 1) > self.limits.max_ratio:
            raise Invalid(
                f"the archive entry {info.filename[:200]!r} is compressed more than "
                f"{self.limits.max_ratio:g}:1; such an archive (a zip bomb) is refused",
                code="zip_bomb",
            )

    def names(self) -> list[str]:
        return [name for name, info in self._members.items() if not info.is_dir()]

    def read(self, name: str) -> bytes:
        """The bytes of member `name` (KeyError if absent), inflated in bounded chunks."""
        info = self._members[name]
        out = bytearray()
        try:
            with self._zip.open(info) as member:
                while chunk := member.read(_CHUNK):
                    out += chunk
                    # The header's sizes may lie: the real count is checked as it grows.
                    self._check_sizes(info, len(out))
        except (zipfile.BadZipFile, ValueError, EOFError, OSError, NotImplementedError) as exc:
            raise Invalid(f"the archive entry {name[:200]!r} cannot be read ({exc})", code="zip_invalid") from None
        return bytes(out)
