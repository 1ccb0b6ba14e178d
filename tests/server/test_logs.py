"""Log output: JSON lines from a real node with request ids, and secrets never written."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from server.embedded_pg import free_port
from server.http.observability import request_id_of
from server.logs import REDACTED, REQUEST_ID, Redactor, build_handler
from server.settings import Settings, SettingsError
from tests.support.node import ADMIN, SECRET
from tests.support.node_process import running_node
from tests.support.postgres import PostgresServer

DB_PASSWORD = "pg-pass-w0rd-42"  # accepted and ignored: the test Postgres trusts loopback


def _lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    return out


@pytest.mark.slow
def test_a_node_logs_json_lines_with_its_id_and_the_request_id(postgres: PostgresServer, tmp_path: Path) -> None:
    database = asyncio.run(postgres.create_database()).replace("postgres@", f"postgres:{DB_PASSWORD}@")
    env = {"PROCTOR_LOG_FORMAT": "json", "PROCTOR_LOG_LEVEL": "DEBUG", "PROCTOR_NODE_ID": "node-json"}
    with running_node(tmp_path, database, env) as node:
        status, headers, _ = node.get("/healthz", {"X-Request-Id": "bad id with spaces"})
        assert status == 200
        made = headers["X-Request-Id"]
        assert made != "bad id with spaces" and len(made) == 32
        status, headers, _ = node.get("/nowhere", {"X-Request-Id": "x" * 65})  # too long: replaced
        assert status == 404 and headers["X-Request-Id"] != "x" * 65
        # `systemctl reload` (ExecReload=kill -HUP) must not end the node.
        node.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "SIGHUP" not in node.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert node.get("/healthz")[0] == 200 and node.proc.poll() is None
        # The drain runs in a task the request started; its lines carry the request's id,
        # and it ends the process (a whole life in the log).
        req = urllib.request.Request(
            node.url + "/admin/drain",
            method="POST",
            data=b"",
            headers={"Authorization": f"Bearer {ADMIN}", "X-Request-Id": "req-42.a_b"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 202
            assert resp.headers["X-Request-Id"] == "req-42.a_b"
        node.proc.wait(timeout=60)
    assert node.returncode == 0
    text = node.log()
    lines = _lines(text)
    assert len(lines) >= 4
    for entry in lines:
        assert entry["node"] == "node-json"
        assert {"time", "level", "logger", "message"} <= entry.keys()
        assert entry["time"].endswith("Z") and "T" in entry["time"]
    drained = [e for e in lines if e["message"].startswith(("drain:", "drained"))]
    assert drained and all(e.get("request_id") == "req-42.a_b" for e in drained), drained
    assert any(e["message"].startswith("SIGHUP: nothing to reload") for e in lines)
    stop = [e for e in lines if e["message"] in ("shutting down", "stopped")]
    assert len(stop) == 2 and all("request_id" not in e for e in stop)  # the main task is no request
    everything = text + node.stdout_path.read_text()
    for secret in (SECRET, ADMIN, DB_PASSWORD):
        assert secret not in everything


def test_sane_request_ids_are_kept_others_replaced() -> None:
    from aiohttp.test_utils import make_mocked_request

    assert request_id_of(make_mocked_request("GET", "/", headers={"X-Request-Id": "abc-1.2_3"})) == "abc-1.2_3"
    for bad in ("", "a b", "x" * 65, "a\nb", "é", "a/b"):
        made = request_id_of(make_mocked_request("GET", "/", headers={"X-Request-Id": bad}))
        assert made != bad and len(made) == 32


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    settings = Settings.load(
        environ={},
        env_file=None,
        secret=SECRET,
        admin_token=ADMIN,
        node_id="n-1",
        log_format="json",
        database_url=f"postgresql://app:{DB_PASSWORD}@db.example/proctor",
        redis_url="redis://:redis-pass-77@cache.example:6379/0",
    )
    stream = io.StringIO()
    logger = logging.getLogger("tests.logs.captured")
    handler = build_handler(settings, stream)
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


def test_secrets_in_messages_args_and_tracebacks_are_redacted(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    minted = jwt.encode({"sub": "s-1", "role": "student"}, "another-key-entirely-xxxxxxxxxxxx", algorithm="HS256")
    logger.info("secret %s and admin token %s", SECRET, ADMIN)
    logger.warning(
        "connecting to %s and %s",
        f"postgresql://app:{DB_PASSWORD}@db.example/proctor",
        "redis://:redis-pass-77@cache.example:6379/0",
    )
    logger.info("invite " + minted)  # a JWT in the message itself, not an argument
    logger.info("header %r", {"Authorization": "Bearer opaque-token-value"})
    logger.info("some://user:hunter22@host/ url of another service")
    try:
        raise RuntimeError(f"failed with {SECRET}")
    except RuntimeError:
        logger.exception("boom with %s", ADMIN)
    out = stream.getvalue()
    lines = _lines(out)
    assert len(lines) == 6
    for leaked in (SECRET, ADMIN, DB_PASSWORD, "redis-pass-77", minted, "opaque-token-value", "hunter22"):
        assert leaked not in out, leaked
    assert lines[0]["message"] == f"secret {REDACTED} and admin token {REDACTED}"
    assert lines[1]["message"] == f"connecting to {REDACTED} and {REDACTED}"  # the configured URLs, whole
    assert lines[2]["message"] == f"invite {REDACTED}"
    assert lines[4]["message"] == f"some://user:{REDACTED}@host/ url of another service"
    assert "RuntimeError: failed with " + REDACTED in lines[5]["exception"]
    assert lines[5]["level"] == "ERROR" and lines[5]["node"] == "n-1"


def test_request_id_follows_tasks_into_the_log(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured

    async def request() -> None:
        REQUEST_ID.set("rid-1")
        await asyncio.create_task(asyncio.sleep(0))  # a child task copies the context
        await asyncio.get_running_loop().create_task(_log_later(logger))

    asyncio.run(request())
    logger.info("outside")
    lines = _lines(stream.getvalue())
    assert lines[0] == {**lines[0], "message": "from a task", "request_id": "rid-1"}
    assert "request_id" not in lines[1]


async def _log_later(logger: logging.Logger) -> None:
    await asyncio.sleep(0)
    logger.info("from a task")


def test_short_values_are_not_treated_as_secrets() -> None:
    # An empty or tiny secret would redact every "" or common letter pair.
    assert Redactor(["", "ab"])("ab cd") == "ab cd"


def test_text_is_the_default_and_other_formats_are_refused() -> None:
    assert Settings.load(environ={}, env_file=None).log_format == "text"
    with pytest.raises(SettingsError, match="LOG_FORMAT"):
        Settings.load(environ={"PROCTOR_LOG_FORMAT": "xml"}, env_file=None)


def test_a_crash_at_start_up_is_one_json_line_without_the_password(tmp_path: Path) -> None:
    """What Python would print itself (an uncaught traceback) goes through the handler too."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCTOR_")}
    env.update(
        PROCTOR_LOG_FORMAT="json",
        PROCTOR_SECRET=SECRET,
        PROCTOR_NODE_ID="node-crash",
        PROCTOR_DATABASE_URL=f"postgresql://app:{DB_PASSWORD}@127.0.0.1:{free_port()}/db",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "d")],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    lines = _lines(proc.stderr)
    crash = [e for e in lines if e["level"] == "CRITICAL"]
    assert len(crash) == 1 and "ConnectionRefusedError" in crash[0]["exception"], lines
    assert crash[0]["node"] == "node-crash"
    assert DB_PASSWORD not in proc.stderr + proc.stdout
