"""`proctor serve` as an operator runs it: a real process, embedded Postgres, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from server.embedded_pg import free_port


def _wait_ready(port: int, proc: subprocess.Popen[str], timeout: float = 90) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"proctor serve exited early:\n{proc.stdout.read() if proc.stdout else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("proctor serve did not become ready")


@pytest.mark.slow
def test_serve_on_embedded_defaults_then_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCTOR_")}
    cmd = [sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--data-dir", str(tmp_path / "d")]
    for _ in ("cold", "warm"):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
        try:
            _wait_ready(port, proc)
            token = (tmp_path / "d" / "admin-token").read_text().strip()
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/exams",
                data=json.dumps(
                    {"title": "t", "duration_minutes": 1, "questions": [{"id": "q", "kind": "text", "text": "?"}]}
                ).encode(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(req, timeout=5) as resp:
                assert resp.status == 201
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        assert "admin token:" in out
    # The embedded Postgres was stopped with the node.
    assert not (tmp_path / "d" / "postgres" / "postmaster.pid").exists()


def test_bad_setting_stops_start_up_naming_the_key(tmp_path: Path) -> None:
    env = {**os.environ, "PROCTOR_PORT": "nope"}
    proc = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve"], env=env, capture_output=True, text=True, timeout=30, cwd=tmp_path
    )
    assert proc.returncode == 2
    assert "PROCTOR_PORT" in proc.stderr


def test_token_command_mints_a_verifiable_teacher_token(tmp_path: Path) -> None:
    from rooms.tokens import TokenService

    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCTOR_")}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "server.cli",
            "token",
            "--role",
            "teacher",
            "--sub",
            "t1",
            "--room",
            "r1",
            "--data-dir",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        cwd=tmp_path,
    ).stdout.strip()
    secret = (tmp_path / "secret").read_text().strip()
    claims = TokenService(secret).verify(out)
    assert (claims.role, claims.sub, claims.rooms) == ("teacher", "t1", ("r1",))
    for sub in ("serve", "migrate", "token"):
        help_text = subprocess.run(
            [sys.executable, "-m", "server.cli", sub, "--help"], capture_output=True, text=True, check=True
        ).stdout
        assert "usage: proctor" in help_text
