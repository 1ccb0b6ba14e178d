"""The erasure log: erased students (by a hash of their id) and when, re-applied by restore.

A backup taken before an erasure still holds the student. Restoring it must not bring them
back, so `StudentData.erase` records each erasure here, every backup carries the log, and a
restore loads the backup, merges in the erasures it knows from elsewhere (the database it
replaces, newer backups) and erases again whatever those erasures cover (`reapply_sql`).

Only data from before the erasure goes: a student erased on Monday who sits another exam on
Friday keeps Friday's attempt when Monday's log is re-applied to Saturday's backup.

The hash is SHA-256 over a fixed prefix and the id. It is a pseudonym, not anonymisation: ids
from a small space (matriculation numbers) can be found by trying them all, so the log is
protected like the rest of the database; it holds no name, answer or image.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

_PREFIX = "proctor-erasure-v1:"
_HASH = re.compile(r"^[0-9a-f]{64}$")
# The same hash computed in SQL, so a restore can match rows without reading every id out.
SQL_HASH = f"encode(sha256(convert_to('{_PREFIX}' || {{column}}, 'UTF8')), 'hex')"


def student_hash(student_id: str) -> str:
    return hashlib.sha256((_PREFIX + student_id).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Erasure:
    student_hash: str
    erased_at: datetime

    def __post_init__(self) -> None:
        if not _HASH.match(self.student_hash):
            raise ValueError(f"not an erasure hash: {self.student_hash!r:.80}")
        if self.erased_at.tzinfo is None:
            raise ValueError("erased_at must carry a time zone")

    def to_json(self) -> dict[str, str]:
        return {"student_hash": self.student_hash, "erased_at": self.erased_at.isoformat()}

    @classmethod
    def from_json(cls, data: Any) -> Erasure:
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("student_hash"), str)
            or not isinstance(data.get("erased_at"), str)
        ):
            raise ValueError(f"not an erasure entry: {data!r:.80}")
        return cls(data["student_hash"], datetime.fromisoformat(data["erased_at"]))


async def record(conn: asyncpg.Connection, student_id: str, at: datetime | None = None) -> None:
    """Log an erasure (in the caller's transaction, so it commits with the deletes)."""
    await conn.execute(
        "INSERT INTO erasures (student_hash, erased_at) VALUES ($1, $2)"
        " ON CONFLICT (student_hash) DO UPDATE SET erased_at = greatest(erasures.erased_at, excluded.erased_at)",
        student_hash(student_id),
        at or datetime.now(UTC),
    )


async def read(conn: asyncpg.Connection) -> list[Erasure]:
    """The log, or nothing if this database predates it (or has no schema yet)."""
    if await conn.fetchval("SELECT to_regclass('public.erasures')") is None:
        return []
    rows = await conn.fetch("SELECT student_hash, erased_at FROM public.erasures ORDER BY erased_at, student_hash")
    return [Erasure(r["student_hash"], r["erased_at"]) for r in rows]


def merge(*logs: list[Erasure]) -> list[Erasure]:
    """One entry per student: the latest erasure wins (it covers everything before it)."""
    latest: dict[str, Erasure] = {}
    for log in logs:
        for entry in log:
            known = latest.get(entry.student_hash)
            if known is None or entry.erased_at > known.erased_at:
                latest[entry.student_hash] = entry
    return sorted(latest.values(), key=lambda e: (e.erased_at, e.student_hash))


def reapply_sql(log: list[Erasure]) -> str:
    """SQL that stores `log` and erases again what it covers; run after a backup is loaded.

    Literals are safe to inline: `Erasure` admits only hex hashes and aware datetimes.
    Attempts go with everything hanging off them (ON DELETE CASCADE), as in `erase`.
    """
    if not log:
        return ""
    values = ",\n".join(f"('{e.student_hash}', '{e.erased_at.isoformat()}'::timestamptz)" for e in log)
    attempt_hash = SQL_HASH.format(column="a.student_id")
    consent_hash = SQL_HASH.format(column="c.student_id")
    return f"""
INSERT INTO public.erasures (student_hash, erased_at) VALUES
{values}
ON CONFLICT (student_hash) DO UPDATE SET erased_at = greatest(public.erasures.erased_at, excluded.erased_at);
DELETE FROM public.attempts a USING public.erasures e
 WHERE {attempt_hash} = e.student_hash AND a.started_at <= e.erased_at;
DELETE FROM public.consents c USING public.erasures e
 WHERE {consent_hash} = e.student_hash AND c.accepted_at <= e.erased_at;
"""
