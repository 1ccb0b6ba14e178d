"""One `proctor serve` process as an operator runs it, for tests that need its real output:
its /metrics, its log stream (stderr, to a file) and its exit status."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from server.embedded_pg import free_port
from tests.support.node import ADMIN, SECRET


@dataclass
class NodeProcess:
    port: int
    proc: subprocess.Popen[bytes]
    stderr_path: Path
    stdout_path: Path
    returncode: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.url + path, headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers.items()), exc.read()

    def log(self) -> str:
        return self.stderr_path.read_text()


def _wait_ready(node: NodeProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node.proc.poll() is not None:
            raise AssertionError(f"proctor serve exited early ({node.proc.returncode}):\n{node.log()}")
        try:
            with urllib.request.urlopen(node.url + "/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"proctor serve was not ready in {timeout} s:\n{node.log()}")


@contextmanager
def running_node(
    tmp_path: Path, database_url: str, env: Mapping[str, str] | None = None, timeout: float = 90
) -> Iterator[NodeProcess]:
    """Start a node on a free port against `database_url`; SIGTERM it on exit (the exit status
    lands in `returncode`, so a test can read the log of the whole stop)."""
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("PROCTOR_")}
    full_env = {
        **base,
        "PROCTOR_DATABASE_URL": database_url,
        "PROCTOR_SECRET": SECRET,
        "PROCTOR_ADMIN_TOKEN": ADMIN,
        "PROCTOR_NODE_ID": f"node-{port}",
        **(env or {}),
    }
    stderr_path, stdout_path = tmp_path / f"node-{port}.stderr", tmp_path / f"node-{port}.stdout"
    data_dir = tmp_path / f"d{port}"
    with stderr_path.open("wb") as err, stdout_path.open("wb") as out:
        cmd = [sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)]
        proc = subprocess.Popen(cmd, env=full_env, stdout=out, stderr=err, cwd=tmp_path)
    node = NodeProcess(port, proc, stderr_path, stdout_path)
    try:
        _wait_ready(node, timeout)
        yield node
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        node.returncode = proc.returncode
