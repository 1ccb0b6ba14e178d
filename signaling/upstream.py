"""The version gate for signaling/transport.py's changes to python-engineio / python-socketio.

`transport.py` (and `fast_packet.py`) copy and override private parts of both libraries (the Engine.IO WebSocket
loop, the service task, the event dispatch, the in-process manager's emit, the packet
encoder). They are used only with the versions they were checked against (`TESTED`, the
same range as pyproject.toml's dependencies); with any other version the node runs
python-socketio's own classes unchanged and logs one warning, as sentry-python's
integrations check a library's version before patching it (house style rule 5).

`PINNED` records a sha256 of the source of every upstream object we override, copy or whose
private behaviour we depend on; tests/signaling/test_transport_upstream.py fails when one
of them changes, naming the method to re-read and our code that follows it. An upgrade is
then a conscious act: re-read, adapt, update the hash and the range.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import inspect
import logging
import re
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

# Distribution -> (lowest supported, first unsupported); pyproject.toml says the same (a test
# compares). The floors are the first releases whose source of every PINNED object is the
# source this code was checked against (compared on python-engineio 4.12.0-4.15.1 and
# python-socketio 5.16.3-5.18.1): python-engineio 4.15.0 still had the racy
# `check_ping_timeout`, and python-socketio before 5.18 lacks the `pending_connect` that
# RoomIndex.basic_disconnect clears. Both are above the security floors (4.12, 5.16.3).
TESTED: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "python-engineio": ((4, 15, 1), (4, 16)),
    "python-socketio": ((5, 18), (5, 19)),
}


@dataclass(frozen=True)
class Pinned:
    target: str  # "module:Qualified.name" of the upstream object
    ours: str  # where our code follows it
    sha256: str  # of inspect.getsource(target)


_T = "signaling/transport.py"
PINNED: tuple[Pinned, ...] = (
    # Engine.IO socket: LeanSocket replaces the WebSocket loop and send, repeats send's ping
    # check, drains the queue as poll does, and must add no state to BaseSocket.__init__.
    Pinned(
        "engineio.async_socket:AsyncSocket._websocket_handler",
        f"{_T} LeanSocket._websocket_handler",
        "27f120df4d717a24478b7b0f7389ce19eea8a881dd07e2c81fb1cf2493e006a5",
    ),
    Pinned(
        "engineio.async_socket:AsyncSocket.send",
        f"{_T} LeanSocket.send",
        "0437276ccba7ab091471e29f4bc6a0f178da7b16a590c707d6c69a97609e6d14",
    ),
    Pinned(
        "engineio.async_socket:AsyncSocket.check_ping_timeout",
        f"{_T} LeanSocket.send",
        "77616d5ca7809257d5d1866f271e7cc3e114663cfe2772cafda63a7393c880d0",
    ),
    Pinned(
        "engineio.async_socket:AsyncSocket.poll",
        f"{_T} LeanSocket._websocket_handler (writer)",
        "826f58a9f3606db208e5d1266f075ad655b6eeda47b0a5616748624899ca5954",
    ),
    Pinned(
        "engineio.async_socket:AsyncSocket.receive",
        f"{_T} LeanSocket._websocket_handler",
        "a91ae36ec2fb5340713ec03be88b1ece9887d2f3116ff09f24dda3a6d965db28",
    ),
    Pinned(
        "engineio.async_socket:AsyncSocket.close",
        f"{_T} LeanSocket, ProctorServer._drop",
        "faa2e93902543244d2a1b772cdf4074d1615532e98fa6ca896739ca54ad64e76",
    ),
    Pinned(
        "engineio.base_socket:BaseSocket.__init__",
        f"{_T} LeanSocket (class swap)",
        "8532b631a4dc815f51afe4d3a7f782ddea8dbc32e26e29c2a3476ef1291ae6b9",
    ),
    Pinned(
        "engineio.async_drivers.aiohttp:WebSocket",
        f"{_T} LeanSocket (ws.wait/send/close)",
        "96fbcb0d1f45694a9c34aaf9f487241ca55e9087e96782f044940397921ef4dc",
    ),
    Pinned(
        "engineio.packet:Packet.decode",
        f"{_T} LeanSocket._websocket_handler (invalid packets)",
        "18e27ff7fd56addd0f25e2be4dbf33d8f65873ba970f4a3f7b9feaa9e22c53b8",
    ),
    # Engine.IO server: the sweep, and the moment the socket's class is swapped.
    Pinned(
        "engineio.async_server:AsyncServer._service_task",
        f"{_T} LeanEngineServer._service_task",
        "b6358bda51d0b34bb5fbf0e99842af2e0879f6ae1125e12a1fb99e5158194d9d",
    ),
    Pinned(
        "engineio.async_server:AsyncServer._trigger_event",
        f"{_T} LeanEngineServer._trigger_event",
        "4a09b6e47eb665325458df5d59b61d13547449eedb0ef25ce0b634005dae633b",
    ),
    Pinned(
        "engineio.async_server:AsyncServer._handle_connect",
        f"{_T} LeanEngineServer._trigger_event",
        "5bd7edc1d1ae115ae973b4a39b435d3b243a3c9b1e3218f21bbeb7ef6aa37e93",
    ),
    # Socket.IO server.
    Pinned(
        "socketio.base_server:BaseServer.__init__",
        f"{_T} ProctorServer.__init__ (serializer)",
        "6b998e091b34a5630d603af2af88d726877fe6a33a77f1772dec825353f42541",
    ),
    Pinned(
        "socketio.async_server:AsyncServer._engineio_server_class",
        f"{_T} ProctorServer",
        "199c42bf149247e0325bd5fb6c8bcc6c3703c5576704530fa92b383e0f777dd4",
    ),
    Pinned(
        "socketio.async_server:AsyncServer._handle_event",
        f"{_T} ProctorServer._handle_event",
        "65178105ef8b593d1ebb63610cbabab0c29654cee50fd669ba0a66590f2e1f54",
    ),
    Pinned(
        "socketio.async_server:AsyncServer._handle_event_internal",
        f"{_T} ProctorServer._run_event",
        "472e8b723a12d507ce3ee3eb8e1643cd326bdd9cc669392e6a636ec7aafdb366",
    ),
    Pinned(
        "socketio.async_server:AsyncServer._handle_eio_message",
        f"{_T} ProctorServer._handle_eio_message",
        "bef50fc0e1635921c922995dba721d05d1c5ccc95d6a6b7647a1db75c4e6032e",
    ),
    Pinned(
        "socketio.packet:Packet.__init__",
        "signaling/fast_packet.py FastPacket.__init__",
        "5fe2fa797e082c1dcecce5ef96b84380ef8267559aa649c0792df016afc08a21",
    ),
    Pinned(
        "socketio.packet:Packet.encode",
        "signaling/fast_packet.py FastPacket.encode",
        "513c45be75181da2e2b99a71f0876080a515f8dc0dfd99fd691ea2879637e8ea",
    ),
    Pinned(
        "socketio.packet:Packet.decode",
        "signaling/fast_packet.py FastPacket.decode",
        "61ad7904b539f4728d84d0db1a2051a762676a85ab5bacfaf83f3b3465190a8a",
    ),
    # Socket.IO in-process manager (DirectManager = RoomIndex + AsyncManager).
    Pinned(
        "socketio.async_manager:AsyncManager.emit",
        f"{_T} DirectManager.emit",
        "01ccd5b82b4f955e4f2e4d07b5fbf09cacef868e9f61bc2abe56d92118a5f3ac",
    ),
    Pinned(
        "socketio.base_manager:BaseManager.__init__",
        "signaling/room_index.py RoomIndex (its attributes)",
        "bfee992d912fe9a4c1ba65094bb011c65a7721abd345a60ff1cc99df127c5a94",
    ),
    Pinned(
        "socketio.base_manager:BaseManager.get_participants",
        f"{_T} DirectManager.emit",
        "7d78ad681c95de5be0c4c9062fbaf5b668b0bb54e4b7bfc184bf2766f5d11b2d",
    ),
    Pinned(
        "socketio.base_manager:BaseManager.basic_enter_room",
        "signaling/room_index.py RoomIndex",
        "3f509586d2d7f47ec92cc5113a80f5302ca1d82fb3689ee530edd3aa9ad6a1a3",
    ),
    Pinned(
        "socketio.base_manager:BaseManager.basic_leave_room",
        "signaling/room_index.py RoomIndex",
        "e27f3eea06d1c6a6ea295e99f62477330af4779e1f1853753e94f309ef0e74f2",
    ),
    Pinned(
        "socketio.base_manager:BaseManager.basic_disconnect",
        "signaling/room_index.py RoomIndex",
        "2933b50bc4b2ea7b4367a84e05c2e22c52fed98b00afc3b88d06d61ab9fb9aa1",
    ),
    Pinned(
        "socketio.base_manager:BaseManager.get_rooms",
        "signaling/room_index.py RoomIndex",
        "56a1017f85af9f91e2a8226080d10f9be225b6815f649c014b9599df6378c2eb",
    ),
)


def resolve(target: str) -> Any:
    module_name, _, qualname = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def source_sha256(target: str) -> str:
    return hashlib.sha256(inspect.getsource(resolve(target)).encode()).hexdigest()


def installed_version(distribution: str) -> str:
    return importlib.metadata.version(distribution)


def _release(version: str) -> tuple[int, ...]:
    """The release numbers of a version string ("4.15.1" -> (4, 15, 1)); a pre-release of
    4.16 counts as 4.16, so it is outside a range that ends before 4.16."""
    match = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(n) for n in match.group().split(".")) if match else ()


def untested() -> list[str]:
    """The installed distributions outside TESTED, as "name version" (empty: all tested)."""
    outside = []
    for distribution, (low, high) in TESTED.items():
        version = installed_version(distribution)
        if not low <= _release(version) < high:
            outside.append(f"{distribution} {version}")
    return outside


@functools.cache
def patched() -> bool:
    """Whether transport.py's classes may be used (checked once per process)."""
    outside = untested()
    if not outside:
        return True
    ranges = ", ".join(f"{d} {_dotted(low)}–<{_dotted(high)}" for d, (low, high) in TESTED.items())
    logger.warning(
        "%s is outside the range signaling/transport.py was checked against (%s): using "
        "python-socketio's classes unchanged (more CPU per message, no attachment-count limit)",
        " and ".join(outside),
        ranges,
    )
    return False


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))
