"""`/student`: join, autosave, client signals, submit, raise hand, WebRTC signaling, and
camera snapshots for analysis (the `frame` event, on the snapshot transport)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel

from rooms.accommodations import for_student
from rooms.attempts import AttemptService
from rooms.errors import Conflict, RoomsError
from rooms.placement import Occupancy
from rooms.presence import PresenceTracker
from rooms.protocols import Notifier
from rooms.tokens import Role, TokenService

from . import messages as m
from .guard import Ack, GuardedNamespace, Limits, Session, ok, refuse

RtcHandler = Callable[[Session, m.Rtc], Awaitable[Ack]]
FrameHandler = Callable[[str, bytes], Awaitable[None]]
AnalysisTransport = Literal["snapshot", "webrtc"]
# A page sends one frame per sample interval (>= 0.05 s in theory, 1 s by default); this
# bucket only stops a flood before it reaches media/, which holds each attempt to its interval.
FRAME_RATE = (4.0, 4.0)


def attempt_room(attempt_id: str) -> str:
    return f"attempt:{attempt_id}"


def students_room(room_id: str) -> str:
    return f"students:{room_id}"


class StudentNamespace(GuardedNamespace):
    role: Role = "student"
    handlers: ClassVar[Mapping[str, tuple[type[BaseModel], str]]] = {
        "join": (m.Join, "join"),
        "answer": (m.Answer, "answer"),
        "event": (m.ClientEvent, "event"),
        "submit": (m.Empty, "submit"),
        "hand": (m.Hand, "hand"),
        "rtc": (m.Rtc, "rtc"),
        "frame": (m.Frame, "frame"),
    }
    binary_events: ClassVar[Mapping[str, tuple[float, float]]] = {"frame": FRAME_RATE}

    def __init__(
        self,
        namespace: str,
        tokens: TokenService,
        limits: Limits,
        *,
        attempts: AttemptService,
        presence: PresenceTracker,
        occupancy: Occupancy,
        notifier: Notifier,
        rtc_handler: RtcHandler | None = None,
        frame_handler: FrameHandler | None = None,
        analysis_transport: AnalysisTransport = "webrtc",
        **guard: Any,
    ) -> None:
        super().__init__(namespace, tokens, limits, **guard)
        self.attempts = attempts
        self.presence = presence
        self.occupancy = occupancy
        self.notifier = notifier
        self.rtc_handler = rtc_handler
        self.frame_handler = frame_handler
        # Snapshots need somewhere to go; without a handler the page is told WebRTC.
        self.analysis_transport: AnalysisTransport = analysis_transport if frame_handler is not None else "webrtc"

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        try:
            claims = await self.authenticate_connect(auth, environ)
        except RoomsError as exc:
            raise refuse(exc) from None
        session = self.open_session(sid, claims)
        session.room_id = claims.room_id

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        session = self.close_session(sid)
        if session is None or session.attempt_id is None or session.room_id is None:
            return
        self.occupancy.leave(session.room_id, sid)
        await self.presence.disconnected(session.attempt_id)

    def _joined(self, session: Session) -> str:
        if session.attempt_id is None:
            raise Conflict("send 'join' first", code="not_joined")
        return session.attempt_id

    async def join(self, session: Session, msg: m.Join) -> Ack:
        assert session.room_id is not None
        await self.occupancy.enter(session.room_id, session.sid)
        try:
            result = await self.attempts.join(session.claims, msg.consent_version)
        except Exception:
            self.occupancy.leave(session.room_id, session.sid)
            raise
        attempt = result.attempt
        first_join = session.attempt_id is None
        session.attempt_id = attempt.id
        await self.enter_room(session.sid, attempt_room(attempt.id))
        await self.enter_room(session.sid, students_room(attempt.room_id))
        if attempt.closed:
            await self.presence.submitted(attempt.room_id, attempt.id)
        elif first_join:
            await self.presence.connected(attempt.room_id, attempt.id)
        if not result.resumed:
            await self.notifier.teachers(
                attempt.room_id,
                "joined",
                {
                    "attempt_id": attempt.id,
                    "student_id": attempt.student_id,
                    "student_name": attempt.student_name,
                    "total_questions": len(result.exam.arrangement(attempt.id).question_ids),
                    **attempt.clock(),
                },
            )
        return ok(
            attempt=attempt.clock(),
            student={"id": attempt.student_id, "name": attempt.student_name},
            exam=result.view if result.view is not None else result.exam.to_json(for_student=True),
            analysis=self._analysis_for(result.exam.rules.analysis.for_student(attempt.accommodations)),
            # Plain data for the page's "You have 15 extra minutes; … are off for you".
            accommodations=for_student(attempt.extra_seconds, attempt.accommodations),
            answers=result.answers,
            last_seq=result.last_seq,
            resumed=result.resumed,
        )

    def _analysis_for(self, section: dict[str, Any]) -> dict[str, Any]:
        # A speaking exam sends its microphone on the WebRTC peer: its camera goes there too.
        transport = "webrtc" if section.get("speaking") else self.analysis_transport
        return {**section, "transport": transport}

    async def answer(self, session: Session, msg: m.Answer) -> Ack:
        attempt_id = self._joined(session)
        result = await self.attempts.save_answer(attempt_id, msg.question_id, msg.value, msg.seq)
        return ok(seq=msg.seq, stored=result.stored)

    async def event(self, session: Session, msg: m.ClientEvent) -> Ack:
        attempt_id = self._joined(session)
        result = await self.attempts.client_event(attempt_id, msg.seq, msg.kind, msg.occurred_at, msg.details)
        return ok(seq=msg.seq, stored=result.stored)

    async def submit(self, session: Session, msg: m.Empty) -> Ack:
        attempt_id = self._joined(session)
        attempt = await self.attempts.submit(attempt_id, "student")
        await self.presence.submitted(attempt.room_id, attempt.id)
        return ok(attempt=attempt.clock())

    async def hand(self, session: Session, msg: m.Hand) -> Ack:
        attempt_id = self._joined(session)
        attempt = await self.attempts.attempt(attempt_id)
        await self.attempts.log(attempt_id, "hand", {"text": msg.text, "raised": msg.raised})
        await self.notifier.teachers(
            attempt.room_id,
            "hand",
            {
                "attempt_id": attempt_id,
                "student_id": attempt.student_id,
                "student_name": attempt.student_name,
                "text": msg.text,
                "raised": msg.raised,
            },
        )
        return ok()

    async def frame(self, session: Session, msg: m.Frame) -> Ack:
        attempt_id = self._joined(session)
        if self.frame_handler is None:
            raise Conflict("snapshot analysis is not available on this server", code="analysis_unavailable")
        await self.frame_handler(attempt_id, msg.jpeg)
        return ok()

    async def rtc(self, session: Session, msg: m.Rtc) -> Ack:
        self._joined(session)
        if self.rtc_handler is None:
            raise Conflict("live video is not available on this server", code="rtc_unavailable")
        return await self.rtc_handler(session, msg)
