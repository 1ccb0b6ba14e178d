"""The domain imports no driver and no edge: every module directly under rooms/ is imported in
a fresh interpreter, which must then hold neither redis nor asyncpg (rooms/store and
rooms/cluster implement the domain's protocols with them) nor aiohttp nor socketio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("redis", "asyncpg", "aiohttp", "socketio")


def domain_modules() -> list[str]:
    # Walked, not listed, so a module added later is covered without editing this test.
    folder = ROOT / "rooms"
    names = ["rooms"]
    names += [f"rooms.{path.stem}" for path in sorted(folder.glob("*.py")) if path.stem != "__init__"]
    return names


def test_the_walk_finds_the_domain() -> None:
    found = domain_modules()
    assert {"rooms.attempts", "rooms.classroom", "rooms.presence", "rooms.timer"} <= set(found)
    assert not any(name.startswith(("rooms.store", "rooms.cluster")) for name in found)


@pytest.mark.parametrize("module", domain_modules())
def test_module_imports_no_driver_and_no_edge(module: str) -> None:
    probe = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(json.dumps(sorted(n for n in {FORBIDDEN!r} if n in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"importing {module} loads {done.stdout.strip()}"


def test_the_issue_check_holds() -> None:
    check = "import rooms.attempts, sys; assert 'redis' not in sys.modules and 'asyncpg' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
