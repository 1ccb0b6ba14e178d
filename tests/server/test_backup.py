"""`proctor backup` / `proctor restore` on real nodes with embedded Postgres in temp dirs."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from detection.rules import RuleViolation
from rooms.store.migrate import available
from server.analysis import ViolationSink
from server.cli import archive
from server.cli.backup import backup, restore
from server.cli.dump import BackupError
from server.keys import ATTEMPTS, HUB, POOL
from server.lifecycle import ensure_admin_token_file
from server.settings import Settings
from tests.support.live import Live, running_node
from tests.support.node import EXAM_BODY, bearer

# Every table a node writes; compared row for row after a round trip.
TABLES = (
    "exams",
    "rooms",
    "attempts",
    "answers",
    "violations",
    "evidence",
    "controls",
    "attempt_log",
    "consents",
    "audit_log",
    "revoked_tokens",
    "erasures",
    "schema_migrations",
)
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8 + b"\xff\xd9"


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    # Not pytest's own: as root the embedded Postgres runs as an unprivileged account that
    # must reach its data dir, and every pytest session resets /tmp/pytest-of-root to 0700.
    path = Path(tempfile.mkdtemp(prefix="proctor-backup-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def node_settings(data_dir: Path) -> Settings:
    # No secret and no admin token given: the node keeps both in its data dir, as `proctor serve` does.
    return Settings.load(
        environ={},
        env_file=None,
        data_dir=data_dir,
        node_id="node-backup",
        public_url="http://proctor.test",
        reconnect_grace_seconds=0.5,
        writer_flush_ms=5.0,
    )


def admin_token(live: Live) -> str:
    path = ensure_admin_token_file(live.app)  # type: ignore[attr-defined]
    assert path is not None
    return path.read_text().strip()


async def snapshot(pool: asyncpg.Pool) -> dict[str, list[dict[str, Any]]]:
    return {t: [dict(r) for r in await pool.fetch(f"SELECT * FROM {t} ORDER BY {t}::text")] for t in TABLES}


async def exam_room(live: Live, admin: str, students: list[str]) -> tuple[str, list[str]]:
    exam = await live.rest("POST", "/api/exams", EXAM_BODY, token=admin)
    room = await live.rest("POST", f"/api/exams/{exam['id']}/rooms", {"name": "Hall", "seats": 30}, token=admin)
    invites = await live.rest(
        "POST",
        f"/api/rooms/{room['id']}/invites",
        {"students": [{"id": s, "name": s.title()} for s in students]},
        token=admin,
    )
    return room["id"], [i["token"] for i in invites["invites"]]


async def test_round_trip_keeps_every_row_and_every_token(tmp_path: Path) -> None:
    source, target = node_settings(tmp_path / "a"), node_settings(tmp_path / "b")
    file = tmp_path / "node.tar.gz"
    async with running_node(source) as live:
        admin = admin_token(live)
        room_id, [student_token] = await exam_room(live, admin, ["ada"])
        teacher = (
            await live.rest("POST", "/api/tokens", {"role": "teacher", "sub": "t-1", "rooms": [room_id]}, token=admin)
        )["token"]
        student, joined = await live.student(student_token)
        attempt_id = joined["attempt"]["attempt_id"]
        assert (await student.call("answer", {"question_id": "q1", "value": 1, "seq": 1}))["ok"]
        assert (await student.call("answer", {"question_id": "q3", "value": "because", "seq": 2}))["ok"]
        paste = {"seq": 3, "kind": "paste", "occurred_at": datetime.now(UTC).isoformat()}
        assert (await student.call("event", paste))["ok"]
        # A server-found violation with its evidence, through the sink the analysis pipeline uses.
        app = live.app  # type: ignore[attr-defined]
        sink = ViolationSink(app[ATTEMPTS], app[HUB].notifier)
        await sink.violation(attempt_id, RuleViolation("no_face", time.time() - 3, 3.0, 0.9, "no face for 3 s"), JPEG)
        pool = app[POOL]
        evidence_id = str(await pool.fetchval("SELECT evidence_id FROM violations WHERE source = 'server'"))
        got = await live.http.get(f"{live.url}/api/evidence/{evidence_id}", headers=bearer(admin))
        assert got.status == 200 and await got.read() == JPEG  # and an evidence.view audit entry
        await student.close()
        await asyncio.sleep(1.0)  # past the reconnect grace: the node has nothing more to write
        before = await snapshot(pool)
        assert before["evidence"] and before["audit_log"] and len(before["violations"]) == 2
        manifest = await backup(source, file)  # the node is running: a dump of one snapshot
    assert file.stat().st_mode & 0o777 == 0o600
    assert manifest.node_id == "node-backup" and manifest.database["source"] == "embedded"
    assert [m["name"] for m in manifest.migrations] == [m.name for m in available()]
    assert {"data/secret", "data/admin-token", archive.DUMP} <= set(manifest.files)

    report = await restore(target, file)
    assert sorted(report.files) == ["admin-token", "secret"]
    assert (target.data_dir / "secret").read_text() == (source.data_dir / "secret").read_text()
    async with running_node(target) as live:
        pool = live.app[POOL]  # type: ignore[attr-defined]
        after = await snapshot(pool)
        for table in TABLES:
            assert after[table] == before[table], table
        # Tokens minted before the backup verify on the restored node.
        got = await live.http.get(f"{live.url}/api/evidence/{evidence_id}", headers=bearer(admin))
        assert got.status == 200 and await got.read() == JPEG
        attempts = await live.rest("GET", f"/api/rooms/{room_id}/attempts", token=teacher)
        assert [a["id"] for a in attempts["attempts"]] == [attempt_id]
        again, rejoined = await live.student(student_token)
        assert rejoined["attempt"]["attempt_id"] == attempt_id and rejoined["resumed"]
        assert rejoined["answers"] == {"q1": 1, "q3": "because"}
        # The restored sequences go on from where they were: a new event is stored, not refused.
        assert (await again.call("event", {**paste, "seq": 4}))["ok"]
        assert await pool.fetchval("SELECT count(*) FROM violations WHERE attempt_id = $1", uuid.UUID(attempt_id)) == 3
        # Not under a running node: its caches would not know.
        with pytest.raises(BackupError, match="is running"):
            await restore(target, file, force=True)

    # The target now holds an exam: a second restore is refused before it touches anything.
    with pytest.raises(BackupError, match="not empty"):
        await restore(target, file)


async def attempts_of(settings: Settings) -> list[str]:
    async with running_node(settings) as live:
        rows = await live.app[POOL].fetch("SELECT student_id FROM attempts ORDER BY started_at")  # type: ignore[attr-defined]
    return [r["student_id"] for r in rows]


async def test_an_erased_student_does_not_come_back_from_an_older_backup(tmp_path: Path) -> None:
    node = node_settings(tmp_path / "a")
    old, new = tmp_path / "before-erasure.tar.gz", tmp_path / "after-erasure.tar.gz"
    async with running_node(node) as live:
        admin = admin_token(live)
        _, tokens = await exam_room(live, admin, ["eve", "bob"])
        for token in tokens:
            client, _ = await live.student(token)
            assert (await client.call("submit"))["ok"]
            await client.close()
        await backup(node, old)
        erased = await live.rest("DELETE", "/api/students/eve", token=admin)
        assert erased["erased"]["attempts"] == 1
        # Eve sits another exam after her erasure: that attempt is hers to keep.
        _, [later] = await exam_room(live, admin, ["eve"])
        client, _ = await live.student(later)
        assert (await client.call("submit"))["ok"]
        await client.close()
        await backup(node, new)

    # Disaster recovery on a new machine: the old backup, with the newer backups' erasure log.
    fresh = node_settings(tmp_path / "b")
    report = await restore(fresh, old, erasures_from=(new,))
    assert report.erasures_applied == 1
    assert await attempts_of(fresh) == ["bob"]
    # Rolling back in place: the replaced database's own log erases her again.
    await restore(node, old, force=True)
    assert await attempts_of(node) == ["bob"]
    # The newer backup keeps her later attempt (it started after the erasure).
    await restore(fresh, new, force=True)
    assert sorted(await attempts_of(fresh)) == ["bob", "eve"]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCTOR_")}
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args], env=env, capture_output=True, text=True, timeout=60, cwd=cwd
    )


def test_truncated_or_corrupt_archives_are_refused_with_a_clear_error(tmp_path: Path) -> None:
    dump = tmp_path / "fake.pgdump"
    dump.write_bytes(os.urandom(200_000))  # incompressible, so truncation cuts into the members
    log = tmp_path / "erasures.json"
    log.write_text("[]")
    good = tmp_path / "good.tar.gz"
    archive.write(
        good,
        archive.Manifest(
            created_at="now", proctor_version="test", node_id="n", database={"source": "embedded"}, migrations=[]
        ),
        {archive.DUMP: dump, archive.ERASURES: log},
    )
    data = good.read_bytes()
    truncated, flipped, garbage = tmp_path / "truncated.tar.gz", tmp_path / "flipped.tar.gz", tmp_path / "garbage"
    truncated.write_bytes(data[: len(data) // 2])
    flipped.write_bytes(data[:-5000] + bytes([data[-5000] ^ 0xFF]) + data[-4999:])
    garbage.write_text("not a backup at all")
    target = tmp_path / "target"
    for bad, words in (
        (truncated, "truncated"),
        (flipped, "corrupt"),
        (garbage, "corrupt"),
        (tmp_path / "missing.tar.gz", "no such file"),
    ):
        done = _cli("restore", str(bad), "--data-dir", str(target), cwd=tmp_path)
        assert done.returncode == 1, done
        assert "Traceback" not in done.stderr, done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("restore: ") and words in last, done.stderr
    # Nothing was started or written for a refused archive.
    assert not target.exists()


def test_the_commands_on_a_stopped_node(tmp_path: Path) -> None:
    data, copy, file = tmp_path / "d", tmp_path / "copy", tmp_path / "b.tar.gz"
    nothing = _cli("backup", str(file), "--data-dir", str(tmp_path / "empty"), cwd=tmp_path)
    assert nothing.returncode == 1 and "holds no database" in nothing.stderr.strip().splitlines()[-1]
    assert _cli("migrate", "--data-dir", str(data), cwd=tmp_path).returncode == 0
    assert _cli("token", "--data-dir", str(data), cwd=tmp_path).returncode == 0  # writes the secret
    # Its Postgres is stopped: the backup starts it, dumps, and stops it again.
    made = _cli("backup", str(file), "--data-dir", str(data), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert f"schema {available()[-1].version}" in made.stdout and "files: secret" in made.stdout
    assert not (data / "postgres" / "postmaster.pid").exists()
    # The target had started once: its admin token is signed with a secret the restore replaces.
    copy.mkdir()
    (copy / "admin-token").write_text("signed-with-the-old-secret\n")
    done = _cli("restore", str(file), "--data-dir", str(copy), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not (copy / "admin-token").exists(), "the next start mints one with the restored secret"
    assert "restored the backup of node" in done.stdout
    assert (copy / "secret").read_bytes() == (data / "secret").read_bytes()
    assert (copy / "secret").stat().st_mode & 0o777 == 0o600
