"""The Socket.IO server on the aiohttp app, its two namespaces, and the notifier rooms/ uses."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import socketio
from aiohttp import web

from core.signals import Signal
from rooms.attempts import Attempt

from .guard import Limits
from .student import StudentNamespace, attempt_room, students_room
from .teacher import TeacherNamespace, teachers_room
from .transport import in_process_manager, socket_server

logger = logging.getLogger(__name__)

# Over the per-message limit, but bounded: the engine closes a connection that sends more,
# while messages between the two limits get an error ack (the client learns why).
_ENGINE_BUFFER_FACTOR = 4


class SocketNotifier:
    """rooms.protocols.Notifier on Socket.IO rooms (python-socketio's manager carries them
    across nodes when a Redis manager is configured)."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio

    async def teachers(self, room_id: str, event: str, data: dict[str, Any]) -> None:
        await self._sio.emit(event, data, room=teachers_room(room_id), namespace="/teacher")

    async def student(self, attempt_id: str, event: str, data: dict[str, Any]) -> None:
        await self._sio.emit(event, data, room=attempt_room(attempt_id), namespace="/student")

    async def room_students(self, room_id: str, event: str, data: dict[str, Any]) -> None:
        await self._sio.emit(event, data, room=students_room(room_id), namespace="/student")


def create_server(limits: Limits, allowed_origins: tuple[str, ...], client_manager: Any = None) -> socketio.AsyncServer:
    """The Socket.IO server (namespaces are registered by `Hub`)."""
    # A cluster's Redis manager keeps upstream's emit; alone, a node emits without a
    # task per recipient (signaling/transport.py). Both server and manager are
    # python-socketio's own outside the versions transport.py was checked against.
    manager = client_manager if client_manager is not None else in_process_manager()
    server: socketio.AsyncServer = socket_server(
        async_mode="aiohttp",
        # None: same origin only (python-engineio's default); a list: exactly those.
        cors_allowed_origins=list(allowed_origins) if allowed_origins else None,
        max_http_buffer_size=limits.max_message_bytes * _ENGINE_BUFFER_FACTOR,
        # Every ping wakes every socket: at 15,000 idle sockets a 10 s interval cost 0.29
        # of a core (docs/benchmarks.md). 20 s + 10 s still notices a vanished client
        # within 30 s; a closing tab tells us at once anyway.
        ping_interval=20,
        ping_timeout=10,
        logger=False,
        engineio_logger=False,
        client_manager=manager,
    )
    return server


class Hub:
    """The Socket.IO server with its two namespaces: who is connected here, and closing them."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        students: StudentNamespace,
        teachers: TeacherNamespace,
        notifier: SocketNotifier,
        *,
        attempt_closed: Signal[Attempt] | None = None,
    ) -> None:
        self.sio = sio
        self.students = students
        self.teachers = teachers
        self.notifier = notifier
        sio.register_namespace(students)
        sio.register_namespace(teachers)
        if attempt_closed is not None:
            attempt_closed.connect(self._attempt_closed)

    async def _attempt_closed(self, attempt: Attempt) -> None:
        # Access ends with the attempt: the student's sockets are closed; a reconnect
        # finds the attempt terminated and can do nothing but read that.
        if attempt.status == "terminated":
            await self.disconnect_attempt(attempt.id)

    def attach(self, app: web.Application) -> None:
        self.sio.attach(app, socketio_path="socket.io")

    async def resync_teachers(self, reason: str) -> None:
        """Tell this node's teachers that live deltas may have been lost: they `watch` again.
        Local only (`ignore_queue`): each node tells its own. A cluster's room bus does the
        same by itself after a Redis outage (signaling/room_bus.py)."""
        await self.sio.emit("resync", {"reason": reason}, namespace="/teacher", ignore_queue=True)

    async def disconnect_attempt(self, attempt_id: str) -> None:
        for sid, session in list(self.students.sessions.items()):
            if session.attempt_id == attempt_id:
                await self.sio.disconnect(sid, namespace="/student")

    def joined_attempts(self) -> set[str]:
        return {s.attempt_id for s in self.students.sessions.values() if s.attempt_id}

    def joined_rooms(self) -> set[str]:
        """Rooms with a joined student here: far fewer than attempts (30 a room) to ask about."""
        return {s.room_id for s in self.students.sessions.values() if s.attempt_id and s.room_id}

    async def disconnect_unauthorised(self, terminated: frozenset[str] | set[str] = frozenset()) -> None:
        """Close sessions whose token expired or was revoked since they connected, and
        students whose attempt was terminated (possibly by a teacher on another node)."""
        now = time.time()
        for namespace in (self.students, self.teachers):
            for index, (sid, session) in enumerate(list(namespace.sessions.items())):
                if index % 1000 == 999:
                    await asyncio.sleep(0)  # 15,000 sessions in one slice would pause the loop
                claims = session.claims
                expired = claims.expires_at is not None and claims.expires_at <= now
                if expired or namespace.is_revoked(claims) or session.attempt_id in terminated:
                    await self.sio.disconnect(sid, namespace=namespace.namespace)

    async def disconnect_all(self) -> None:
        """Tell every client to go (they reconnect elsewhere or when we are back)."""
        for namespace in (self.students, self.teachers):
            for sid in list(namespace.sessions):
                try:
                    await self.sio.disconnect(sid, namespace=namespace.namespace)
                except Exception:
                    logger.exception("could not disconnect %s", sid)
