"""RoomIndex keeps python-socketio's room structure exactly as the stock manager does, while
answering a socket's rooms from its own index (signaling/room_index.py)."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from socketio.async_manager import AsyncManager

from signaling.room_bus import RoomChannelManager
from signaling.room_index import RoomIndex
from signaling.transport import DirectManager


class IndexedManager(RoomIndex, AsyncManager):  # type: ignore[misc]
    pass


NAMESPACES = ("/student", "/teacher")
SIDS = ("s1", "s2", "s3", "s4")
ROOMS = ("attempt:a", "attempt:b", "students:r", "teachers:r")

Op = tuple[str, str, str, str]

ops = st.lists(
    st.tuples(
        st.sampled_from(("connect", "enter", "leave", "disconnect", "close")),
        st.sampled_from(NAMESPACES),
        st.sampled_from(SIDS),
        st.sampled_from(ROOMS),
    ),
    max_size=60,
)


def apply(manager: Any, op: Op) -> None:
    kind, namespace, sid, room = op
    connected = sid in manager.rooms.get(namespace, {}).get(None, {})
    if kind == "connect" and not connected:
        # What python-socketio's pre_connect does: room None, then the sid's own room.
        manager.basic_enter_room(sid, namespace, None, eio_sid="e" + sid)
        manager.basic_enter_room(sid, namespace, sid, eio_sid="e" + sid)
        manager.pending_connect.setdefault(namespace, []).append(sid)
        manager.callbacks[sid] = {}
    elif kind == "enter" and connected:
        manager.basic_enter_room(sid, namespace, room)
    elif kind == "leave":
        manager.basic_leave_room(sid, namespace, room)
    elif kind == "disconnect":
        manager.pending_disconnect.setdefault(namespace, []).append(sid)
        manager.basic_disconnect(sid, namespace)
    elif kind == "close":
        manager.basic_close_room(room, namespace)


def state(manager: Any) -> Any:
    rooms = {ns: {room: dict(members) for room, members in by_room.items()} for ns, by_room in manager.rooms.items()}
    return rooms, sorted(manager.callbacks), manager.pending_connect, manager.pending_disconnect


@settings(max_examples=300, derandomize=True, deadline=None)
@given(ops)
# Found by hypothesis: upstream lists a socket's rooms in the order the rooms were created.
@example(
    [
        ("connect", "/student", "s1", "attempt:a"),
        ("enter", "/student", "s1", "attempt:a"),
        ("connect", "/student", "s2", "attempt:a"),
        ("enter", "/student", "s2", "attempt:a"),
    ]
)
def test_same_rooms_as_python_socketio_after_any_sequence(sequence: list[Op]) -> None:
    stock, indexed = AsyncManager(), IndexedManager()
    for op in sequence:
        apply(stock, op)
        apply(indexed, op)
        assert state(indexed) == state(stock), op
        for namespace in NAMESPACES:
            for sid in SIDS:
                assert indexed.get_rooms(sid, namespace) == stock.get_rooms(sid, namespace), (op, sid)
    # Nothing lingers in the index for sockets that are gone.
    for namespace, sid in indexed.joined:
        assert sid in indexed.rooms[namespace][None] or any(
            sid in members for members in indexed.rooms.get(namespace, {}).values()
        )


def test_a_disconnect_looks_only_at_the_sockets_own_rooms() -> None:
    manager = IndexedManager()
    for i in range(2000):
        sid = f"s{i}"
        manager.basic_enter_room(sid, "/student", None, eio_sid=f"e{i}")
        manager.basic_enter_room(sid, "/student", sid, eio_sid=f"e{i}")
        manager.basic_enter_room(sid, "/student", f"attempt:{i}")
    scanned: list[str] = []

    class Watched(dict[Any, Any]):
        def copy(self) -> dict[Any, Any]:
            scanned.append("copy")
            return dict(self)

        def items(self) -> Any:
            scanned.append("items")
            return super().items()

    manager.rooms["/student"] = Watched(manager.rooms["/student"])
    manager.basic_disconnect("s7", "/student")
    assert not scanned  # python-socketio's own basic_disconnect copies and scans all 4,000 rooms
    assert "attempt:7" not in manager.rooms["/student"] and "s7" not in manager.rooms["/student"][None]
    assert ("/student", "s7") not in manager.joined
    assert manager.get_rooms("s8", "/student") == ["s8", "attempt:8"]


def test_both_managers_the_node_uses_are_indexed() -> None:
    assert issubclass(DirectManager, RoomIndex)  # alone
    assert issubclass(RoomChannelManager, RoomIndex)  # in a cluster
