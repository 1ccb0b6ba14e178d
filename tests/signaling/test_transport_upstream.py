"""The version gate of signaling/transport.py (signaling/upstream.py): the upstream source it
follows is pinned, and the range it admits is the one pyproject.toml admits."""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path

import pytest

from signaling import upstream

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("pin", upstream.PINNED, ids=lambda pin: pin.target)
def test_the_upstream_source_we_follow_is_unchanged(pin: upstream.Pinned) -> None:
    obj = upstream.resolve(pin.target)
    assert upstream.source_sha256(pin.target) == pin.sha256, (
        f"{pin.target} changed upstream (in {inspect.getsourcefile(obj)}). Re-read it against "
        f"{pin.ours}, adapt our code, then update its sha256 in signaling/upstream.py PINNED and the "
        "tested range (upstream.TESTED and pyproject.toml)."
    )


def test_pyproject_admits_exactly_the_tested_range() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for distribution, (low, high) in upstream.TESTED.items():
        [spec] = [d for d in dependencies if re.match(re.escape(distribution) + r"\b", d)]
        dotted = ".".join(map(str, low)), ".".join(map(str, high))
        assert spec == f"{distribution}>={dotted[0]},<{dotted[1]}", (spec, upstream.TESTED[distribution])


def test_the_installed_versions_are_tested() -> None:
    assert upstream.untested() == []
    assert upstream.patched()


@pytest.mark.parametrize(("version", "inside"), [
    ("4.15.1", True), ("4.15.9", True), ("4.15.0", False), ("4.16.0", False), ("4.16.0rc1", False),
    ("5.0", False), ("4.15.1.post1", True),
])
def test_the_range_check(monkeypatch: pytest.MonkeyPatch, version: str, inside: bool) -> None:
    real = upstream.installed_version
    monkeypatch.setattr(upstream, "installed_version",
                        lambda d: version if d == "python-engineio" else real(d))
    assert (upstream.untested() == []) is inside
