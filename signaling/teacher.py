"""`/teacher`: watch a room (roster, then live deltas), control attempts, announce."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel

from rooms.classroom import Classroom
from rooms.errors import Conflict, Forbidden, RoomsError
from rooms.placement import Occupancy
from rooms.tokens import Role, TokenService

from . import messages as m
from .guard import Ack, GuardedNamespace, Limits, Session, ok, refuse

RtcHandler = Callable[[Session, m.Rtc], Awaitable[Ack]]
ReviewHandler = Callable[[Session, m.Review], Awaitable[Ack]]


def teachers_room(room_id: str) -> str:
    return f"teachers:{room_id}"


class TeacherNamespace(GuardedNamespace):
    role: Role = "teacher"
    handlers: ClassVar[Mapping[str, tuple[type[BaseModel], str]]] = {
        "watch": (m.Watch, "watch"),
        "unwatch": (m.Watch, "unwatch"),
        "control": (m.Control, "control"),
        "announce": (m.Announce, "announce"),
        "rtc": (m.Rtc, "rtc"),
    }

    def __init__(
        self,
        namespace: str,
        tokens: TokenService,
        limits: Limits,
        *,
        classroom: Classroom,
        occupancy: Occupancy,
        rtc_handler: RtcHandler | None = None,
        **guard: Any,
    ) -> None:
        super().__init__(namespace, tokens, limits, **guard)
        self.classroom = classroom
        self.occupancy = occupancy
        self.rtc_handler = rtc_handler

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        try:
            claims = await self.authenticate_connect(auth, environ)
        except RoomsError as exc:
            raise refuse(exc) from None
        self.open_session(sid, claims)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        session = self.close_session(sid)
        if session is not None:
            for room_id in session.watching:
                self.occupancy.leave(room_id, sid)

    async def watch(self, session: Session, msg: m.Watch) -> Ack:
        roster = await self.classroom.roster(session.claims, msg.room_id)
        room_id = roster["room"]["id"]
        if room_id not in session.watching:
            await self.occupancy.enter(room_id, session.sid)
            session.watching.add(room_id)
            await self.enter_room(session.sid, teachers_room(room_id))
        return ok(**roster)

    async def unwatch(self, session: Session, msg: m.Watch) -> Ack:
        if msg.room_id in session.watching:
            session.watching.discard(msg.room_id)
            await self.leave_room(session.sid, teachers_room(msg.room_id))
            self.occupancy.leave(msg.room_id, session.sid)
        return ok()

    async def control(self, session: Session, msg: m.Control) -> Ack:
        attempt = await self.classroom.control(
            session.claims, msg.attempt_id, msg.action, minutes=msg.minutes, text=msg.text
        )
        return ok(attempt=attempt.clock())

    async def announce(self, session: Session, msg: m.Announce) -> Ack:
        room_id = msg.room_id
        if room_id is None:
            if len(session.watching) != 1:
                raise Conflict("name the room_id (you watch none or several rooms)", code="invalid")
            room_id = next(iter(session.watching))
        await self.classroom.announce(session.claims, room_id, msg.text)
        return ok()

    async def rtc(self, session: Session, msg: m.Rtc) -> Ack:
        if self.rtc_handler is None:
            raise Forbidden("live video is not available on this server")
        return await self.rtc_handler(session, msg)
