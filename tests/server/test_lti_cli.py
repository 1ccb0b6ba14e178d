"""`proctor lti register|list|remove|rotate-key`, run as real subprocesses on a fresh database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from tests.accounts.test_cli_users import environment, proctor
from tests.support.postgres import PostgresServer

MOODLE = [
    "--issuer",
    "https://moodle.example.edu",
    "--client-id",
    "abc123",
    "--deployment-id",
    "1",
    "--deployment-id",
    "7",
    "--auth-login-url",
    "https://moodle.example.edu/mod/lti/auth.php",
    "--access-token-url",
    "https://moodle.example.edu/mod/lti/token.php",
    "--jwks-url",
    "https://moodle.example.edu/mod/lti/certs.php",
    "--name",
    "Moodle",
]


def test_register_list_rotate_remove(postgres: PostgresServer, tmp_path: Path) -> None:
    database_url = asyncio.run(postgres.create_database())
    env = environment(database_url, tmp_path)
    done = proctor(["lti", "register", *MOODLE], env)
    assert done.returncode == 0, done.stderr
    platform_id = done.stdout.strip().rsplit("(", 1)[1].rstrip(")")
    again = proctor(["lti", "register", *MOODLE], env)
    assert again.returncode == 1 and "registered already" in again.stderr and "Traceback" not in again.stderr
    plain = [a.replace("https://moodle", "http://moodle") for a in MOODLE]
    refused = proctor(["lti", "register", *[a if a != "abc123" else "other" for a in plain]], env)
    assert refused.returncode == 2 and "https://" in refused.stderr and "Traceback" not in refused.stderr
    listed = proctor(["lti", "list"], env)
    assert listed.stdout.split("\t")[:4] == [platform_id, "https://moodle.example.edu", "abc123", "1,7"]

    first = proctor(["lti", "rotate-key"], env)
    second = proctor(["lti", "rotate-key"], env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    kid1 = first.stdout.split()[3].rstrip(";")
    kid2 = second.stdout.split()[3].rstrip(";")
    assert kid1 != kid2 and kid1 in second.stdout  # the previous key is still published

    removed = proctor(["lti", "remove", platform_id], env)
    assert removed.returncode == 0 and "removed https://moodle.example.edu" in removed.stdout
    assert proctor(["lti", "remove", platform_id], env).returncode == 1

    async def audited() -> list[str]:
        conn = await asyncpg.connect(database_url)
        try:
            rows = await conn.fetch("SELECT action FROM audit_log WHERE actor_id = 'cli' ORDER BY id")
            return [r[0] for r in rows]
        finally:
            await conn.close()

    assert asyncio.run(audited()) == ["lti.platform.create", "lti.key.rotate", "lti.key.rotate", "lti.platform.delete"]
