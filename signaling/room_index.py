"""Socket.IO room membership with a per-socket index, so a disconnect costs the socket's own
rooms instead of every room on the node.

python-socketio's `BaseManager` keeps `rooms[namespace][room] -> bidict(sid -> eio_sid)`
only. To find a socket's rooms, `basic_disconnect` and `get_rooms` copy and scan every room
of the namespace: each student has its own sid room and `attempt:` room, so with N students
one disconnect is O(N) and a burst of N disconnects is O(N²). A reconnect storm of 1,000
(docs/reliability.md) spent ~0.6 s of loop time in that scan at the moment of the drop,
and as much again on the refused reconnects, which also end in `basic_disconnect`; the
other students' acknowledgements waited behind it.

`RoomIndex` is a mixin placed before a python-socketio manager in the bases. It records
`(namespace, sid) -> rooms` (insertion-ordered) in `basic_enter_room`/`basic_leave_room`,
which every membership change goes through (connect, enter/leave, close_room, and the pub/
sub managers' remote requests), and leaves python-socketio's own structure as it was.
"""

from __future__ import annotations

import itertools
from typing import Any


class RoomIndex:
    """Mixin for a python-socketio manager: O(own rooms) disconnect and `get_rooms`."""

    rooms: dict[str, dict[Any, Any]]
    callbacks: dict[str, Any]
    pending_connect: dict[str, list[str]]
    pending_disconnect: dict[str, list[str]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (namespace, sid) -> the rooms it is in (None and its own sid room included).
        self.joined: dict[tuple[str, str], dict[Any, None]] = {}
        # When each live room was created: python-socketio's `get_rooms` lists a socket's rooms
        # in the order the rooms came into being (its dict of rooms), not the order the socket
        # entered them; a room emptied and made again counts as new, as there.
        self._born: dict[tuple[str, Any], int] = {}
        self._births = itertools.count()

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        new_room = room not in self.rooms.get(namespace, {})
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)  # type: ignore[misc]
        # Only after it succeeded: python-socketio refuses a duplicate connect by raising.
        if new_room:
            self._born[(namespace, room)] = next(self._births)
        self.joined.setdefault((namespace, sid), {})[room] = None

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)  # type: ignore[misc]
        if room not in self.rooms.get(namespace, {}):
            self._born.pop((namespace, room), None)
        key = (namespace, sid)
        rooms = self.joined.get(key)
        if rooms is not None:
            rooms.pop(room, None)
            if not rooms:
                del self.joined[key]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        # python-socketio's basic_disconnect, with its scan over all rooms replaced by the index.
        if namespace not in self.rooms:
            return
        for room in list(self.joined.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.joined.pop((namespace, sid), None)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            waiting = pending.get(namespace)
            if waiting is not None and sid in waiting:
                waiting.remove(sid)
                if not waiting:
                    del pending[namespace]

    def get_rooms(self, sid: str, namespace: str) -> list[Any]:
        rooms = [room for room in self.joined.get((namespace, sid), ()) if room is not None]
        # A socket is in two or three rooms: sorting them costs nothing next to upstream's scan.
        return sorted(rooms, key=lambda room: self._born.get((namespace, room), 0))
