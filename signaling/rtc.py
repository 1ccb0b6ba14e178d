"""WebRTC signaling: student ↔ the server's analysis peer, and teacher ↔ student live view.

The analysis peer is reached through `AnalysisGateway` (server/analysis.py on one node;
in a cluster signaling/analysis_relay.py, which has the room's host node answer; signaling
imports neither). Live view is peer-to-peer: the server only relays offer, answer
and candidates between a teacher's socket and the student's attempt room, and only
between a teacher who may see the room and that room's student; each view is audited.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import socketio

from rooms.attempts import AttemptService
from rooms.errors import Conflict, Invalid, NotFound
from rooms.store.audit import AuditLog
from rooms.store.catalog import Catalog

from . import messages as m
from .guard import Ack, Session, ok
from .student import attempt_room


class AnalysisGateway(Protocol):
    """Where analysis offers go: this node's peers (server/analysis.py LocalAnalysis) or, in a
    cluster, the relay to the room's host node (signaling/analysis_relay.py)."""

    async def offer(self, attempt_id: str, sdp: str, type_: str) -> tuple[str, str]: ...

    async def candidate(self, attempt_id: str, candidate: dict[str, Any]) -> None: ...

    async def close(self, attempt_id: str) -> None: ...

    async def frame(self, attempt_id: str, jpeg: bytes) -> None:
        """A camera snapshot for analysis (the snapshot transport)."""
        ...


def _sign(secret: bytes, *parts: str) -> str:
    digest = hmac.new(secret, "|".join(parts).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:15]).decode()


class RtcRouter:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        attempts: AttemptService,
        catalog: Catalog,
        audit: AuditLog,
        secret: str,
        analysis: AnalysisGateway | None = None,
    ) -> None:
        # View sessions are signed, not stored: any node can check that a student answers
        # the teacher socket that called them, which is what makes live view work when the
        # teacher and the student sit on different nodes.
        self._secret = hashlib.sha256(b"live-view|" + secret.encode()).digest()
        self._sio = sio
        self._attempts = attempts
        self._catalog = catalog
        self._audit = audit
        self._analysis = analysis

    async def attempt_gone(self, attempt_id: str) -> None:
        """The student is offline or finished: close the analysis peer."""
        if self._analysis is not None:
            await self._analysis.close(attempt_id)

    async def from_student(self, session: Session, msg: m.Rtc) -> Ack:
        attempt_id = session.attempt_id
        assert attempt_id is not None
        if msg.target == "server":
            if self._analysis is None:
                raise Conflict("server analysis is not available on this node", code="rtc_unavailable")
            if msg.type == "offer":
                if not msg.sdp:
                    raise Invalid("an offer needs its sdp", fields={"sdp": "required"})
                sdp, type_ = await self._analysis.offer(attempt_id, msg.sdp, msg.type)
                return ok(type=type_, sdp=sdp)
            if msg.type == "candidate":
                await self._analysis.candidate(attempt_id, msg.candidate or {})
                return ok()
            if msg.type == "bye":
                await self._analysis.close(attempt_id)
                return ok()
            raise Invalid(f"the server does not take {msg.type!r}", fields={"type": "offer|candidate|bye"})
        teacher_sid = self._open(msg.session, attempt_id)
        await self._sio.emit(
            "rtc",
            self._relay(msg, view_session=msg.session or "", attempt_id=attempt_id),
            to=teacher_sid,
            namespace="/teacher",
        )
        return ok()

    async def from_teacher(self, session: Session, msg: m.Rtc) -> Ack:
        if msg.target != "peer" or not msg.attempt_id:
            raise Invalid("live view needs target 'peer' and an attempt_id", fields={"attempt_id": "required"})
        attempt = await self._attempts.attempt(msg.attempt_id)
        await self._catalog.room_for(session.claims, attempt.room_id, "room.live_view")
        view_id = msg.session
        if msg.type == "offer" and not view_id:
            nonce = secrets.token_urlsafe(9)
            view_id = f"{nonce}.{session.sid}.{_sign(self._secret, nonce, session.sid, attempt.id)}"
            await self._audit.record(session.claims, "live.view", "attempt", attempt.id, {"session": nonce})
        if self._open(view_id, attempt.id) != session.sid:
            raise NotFound("no live view session with that id", code="not_found")
        assert view_id is not None
        await self._sio.emit(
            "rtc",
            self._relay(msg, view_session=view_id, attempt_id=attempt.id),
            room=attempt_room(attempt.id),
            namespace="/student",
        )
        return ok(session=view_id)

    def _open(self, view_id: str | None, attempt_id: str) -> str:
        """The teacher socket a view session belongs to, if it was issued for this attempt."""
        nonce, _, rest = (view_id or "").partition(".")
        teacher_sid, _, signature = rest.rpartition(".")
        expected = _sign(self._secret, nonce, teacher_sid, attempt_id)
        if not (nonce and teacher_sid and hmac.compare_digest(signature, expected)):
            raise NotFound("no live view session with that id", code="not_found")
        return teacher_sid

    @staticmethod
    def _relay(msg: m.Rtc, *, view_session: str, attempt_id: str) -> dict[str, Any]:
        data: dict[str, Any] = {"target": "peer", "type": msg.type, "session": view_session, "attempt_id": attempt_id}
        if msg.sdp is not None:
            data["sdp"] = msg.sdp
        if msg.candidate is not None:
            data["candidate"] = msg.candidate
        return data


Handler = Callable[[Session, m.Rtc], Awaitable[Ack]]
