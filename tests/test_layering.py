"""Imports point one way (docs/architecture.md): a package may import only those below it.

Read from the source with `ast` (direct imports, `TYPE_CHECKING` blocks included), so a new
module is covered without being listed here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = ("core", "rooms", "signaling", "media", "detection", "server", "nginx")

# package → the packages of ours it may import (itself always)
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "detection": {"core"},
    "media": {"core", "detection"},
    "rooms": {"core"},
    "nginx": {"core"},
    "signaling": {"core", "rooms"},
    "server": {"core", "rooms", "signaling", "media", "detection", "nginx"},
}
# Only the edges speak HTTP or Socket.IO (shared/style.md rule 1).
EDGE_LIBRARIES = {"aiohttp", "socketio", "engineio"}
EDGES = {"server", "signaling"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                found.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                found.add(node.module)
    return found


def _modules() -> list[Path]:
    return sorted(p for name in OURS for p in (ROOT / name).rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_one_way(path: Path) -> None:
    package = path.relative_to(ROOT).parts[0]
    allowed = ALLOWED[package] | {package}
    wrong = sorted(name for name in _imports(path) if name.split(".")[0] in OURS and name.split(".")[0] not in allowed)
    assert not wrong, f"{path.relative_to(ROOT)} ({package}/) may import only {sorted(allowed)}, imports {wrong}"
    if package not in EDGES:
        edge = sorted(name for name in _imports(path) if name.split(".")[0] in EDGE_LIBRARIES)
        assert not edge, (
            f"{path.relative_to(ROOT)}: only server/ and signaling/ import {sorted(EDGE_LIBRARIES)}: {edge}"
        )


def test_every_package_has_a_rule() -> None:
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists() and p.name != "tests"}
    assert packages - {"benchmarks"} <= set(ALLOWED), f"packages without an import rule: {packages - set(ALLOWED)}"
