"""The system's Nginx for a test: a rendered site, checked with `nginx -t`, run in the
foreground from a prefix in a temporary directory until the test is done."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from nginx.render import render_standalone
from server.cli.cluster import ClusterError, find_binary


def nginx_binary() -> str:
    try:
        return find_binary("nginx", "nginx")
    except ClusterError as exc:
        pytest.fail(str(exc), pytrace=False)


@contextmanager
def running_nginx(prefix: Path, site: str, port: int) -> Iterator[None]:
    """Nginx serving `site` (a rendered server block) until the block ends; returns once
    it accepts connections on `port`."""
    binary = nginx_binary()
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(render_standalone(prefix, site))
    check = subprocess.run(
        [binary, "-p", str(prefix), "-c", str(conf), "-t"], capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "nginx did not listen"
                time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()
