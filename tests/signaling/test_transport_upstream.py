"""The version gate of signaling/transport.py (signaling/upstream.py): the upstream source it
follows is pinned, inside the tested range the node runs the patched classes, outside it
python-socketio's own (one warning) and still serves a real student."""

from __future__ import annotations

import inspect
import logging
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import engineio
import pytest
import socketio
from engineio.async_socket import AsyncSocket

from server.keys import HUB
from server.settings import Settings
from signaling import transport, upstream
from signaling.fast_packet import FastPacket
from tests.support.live import Live, running_node

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


@pytest.mark.parametrize(
    ("version", "inside"),
    [
        ("4.15.1", True),
        ("4.15.9", True),
        ("4.15.0", False),
        ("4.16.0", False),
        ("4.16.0rc1", False),
        ("5.0", False),
        ("4.15.1.post1", True),
    ],
)
def test_the_range_check(monkeypatch: pytest.MonkeyPatch, version: str, inside: bool) -> None:
    real = upstream.installed_version
    monkeypatch.setattr(upstream, "installed_version", lambda d: version if d == "python-engineio" else real(d))
    assert (upstream.untested() == []) is inside


def test_inside_the_range_the_patched_classes_are_used() -> None:
    sio = transport.socket_server(async_mode="aiohttp", client_manager=transport.in_process_manager())
    assert type(sio) is transport.ProctorServer
    assert type(sio.eio) is transport.LeanEngineServer
    assert type(sio.manager) is transport.DirectManager
    assert sio.packet_class is FastPacket


@pytest.fixture
def untested_engineio(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As if python-engineio 4.16.0 were installed; the gate decides again afterwards."""
    real = upstream.installed_version
    monkeypatch.setattr(upstream, "installed_version", lambda d: "4.16.0" if d == "python-engineio" else real(d))
    upstream.patched.cache_clear()
    try:
        yield
    finally:
        upstream.patched.cache_clear()


async def test_outside_the_range_upstream_classes_serve_a_real_student(
    untested_engineio: None, live_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="signaling.upstream")
    async with running_node(live_settings) as live:
        hub = live.app[HUB]  # type: ignore[attr-defined]
        sio = hub.sio
        assert type(sio) is socketio.AsyncServer
        assert type(sio.eio) is engineio.AsyncServer
        assert type(sio.manager) is socketio.AsyncManager
        assert sio.packet_class is socketio.packet.Packet
        # A second server in the same process does not warn again.
        assert type(transport.socket_server(async_mode="aiohttp")) is socketio.AsyncServer
        await a_student_works(live)
        assert {type(s) for s in sio.eio.sockets.values()} == {AsyncSocket}
    warnings = [r for r in caplog.records if r.name == "signaling.upstream"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "python-engineio 4.16.0" in warnings[0].getMessage()
    assert "unchanged" in warnings[0].getMessage()


async def test_inside_the_range_the_node_is_patched(live: Live) -> None:
    hub = live.app[HUB]  # type: ignore[attr-defined]
    assert type(hub.sio) is transport.ProctorServer
    assert type(hub.sio.manager) is transport.DirectManager
    await a_student_works(live)
    assert {type(s) for s in hub.sio.eio.sockets.values()} == {transport.LeanSocket}


async def a_student_works(live: Live) -> None:
    room = await live.room()
    [token] = await live.invites(room["id"], 1)
    student, _ = await live.student(token)
    ack = await student.call("answer", {"question_id": "q1", "value": 1, "seq": 1})
    assert ack == {"ok": True, "seq": 1, "stored": True}
