"""`proctor user …` and the first `proctor serve`'s setup link, run as real subprocesses."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg

from server.embedded_pg import free_port
from tests.support.postgres import PostgresServer

ROOT = Path(__file__).resolve().parents[2]


def proctor(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def environment(database_url: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCTOR_")}
    env.update(PROCTOR_DATABASE_URL=database_url, PROCTOR_DATA_DIR=str(tmp_path / "data"))
    return env


def test_user_add_passwd_disable_list(database_url: str, tmp_path: Path) -> None:
    env = environment(database_url, tmp_path)
    email = f"cli-{uuid.uuid4().hex[:8]}@Example.org"
    done = proctor(
        ["user", "add", email, "--name", "Ada L", "--role", "teacher", "--password-stdin"],
        env,
        stdin="first password 123\n",
    )
    assert done.returncode == 0, done.stderr
    assert f"added teacher {email}" in done.stdout
    # Case-insensitive uniqueness.
    again = proctor(["user", "add", email.lower(), "--role", "admin"], env)
    assert again.returncode == 1 and "exists" in again.stderr and "Traceback" not in again.stderr
    changed = proctor(["user", "passwd", email.upper(), "--password-stdin"], env, stdin="second password 456\n")
    assert changed.returncode == 0, changed.stderr
    short = proctor(["user", "passwd", email, "--password-stdin"], env, stdin="short\n")
    assert short.returncode == 1 and "8 to 1024" in short.stderr
    disabled = proctor(["user", "disable", email], env)
    assert disabled.returncode == 0 and "disabled" in disabled.stdout
    listed = proctor(["user", "list"], env)
    assert listed.returncode == 0
    [line] = [line for line in listed.stdout.splitlines() if line.startswith(email)]
    assert line.split("\t")[1:4] == ["teacher", "disabled", "password"]
    # No password reached the output or the error stream.
    for run in (done, changed, disabled, listed):
        assert "password 123" not in run.stdout + run.stderr and "password 456" not in run.stdout + run.stderr
    unknown = proctor(["user", "disable", "nobody@example.org"], env)
    assert unknown.returncode == 1 and "no account" in unknown.stderr

    async def audited() -> list[str]:
        conn = await asyncpg.connect(database_url)
        try:
            rows = await conn.fetch(
                "SELECT l.action FROM audit_log l JOIN accounts a ON l.target_id = a.id::text"
                " WHERE lower(a.email) = lower($1) ORDER BY l.id",
                email,
            )
            return [r["action"] for r in rows]
        finally:
            await conn.close()

    assert asyncio.run(audited()) == ["account.create", "account.password", "account.disable"]


def test_first_serve_prints_a_single_use_setup_link(postgres: PostgresServer, tmp_path: Path) -> None:
    database_url = asyncio.run(postgres.create_database())
    env = environment(database_url, tmp_path)
    port = free_port()
    env.update(PROCTOR_PORT=str(port), PROCTOR_PUBLIC_URL=f"http://127.0.0.1:{port}", PROCTOR_GC_TUNING="off")
    node = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        link = None
        deadline = time.monotonic() + 60
        assert node.stdout is not None
        while time.monotonic() < deadline and link is None:
            line = node.stdout.readline()
            if not line:
                break
            found = re.search(r"(http://\S+/teacher/setup#code=(\S+))", line)
            if found:
                link = found
        assert link is not None, "proctor serve printed no setup link"
        code = link.group(2)

        async def use() -> tuple[int, int, int]:
            async with aiohttp.ClientSession() as http:
                base = f"http://127.0.0.1:{port}"
                async with http.get(base + "/teacher/setup") as page:
                    page_status = page.status
                body = {"code": code, "email": "root@example.org", "name": "Root", "password": "root password 1"}
                async with http.post(base + "/auth/setup", json=body, headers={"Origin": base}) as first:
                    first_status = first.status
                async with http.post(
                    base + "/auth/setup", json={**body, "email": "again@example.org"}, headers={"Origin": base}
                ) as second:
                    return page_status, first_status, second.status

        assert asyncio.run(use()) == (200, 201, 403)
    finally:
        node.send_signal(signal.SIGTERM)
        try:
            node.wait(timeout=30)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()
        if node.stdout is not None:
            node.stdout.close()
