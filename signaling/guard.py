"""The boundary every Socket.IO message crosses: size, rate, schema, then a thin handler.

Each event of a namespace is declared once as `handlers = {"event": (Model, method)}`.
Unknown events, oversized or malformed payloads and rate-limit breaches are answered with
an error ack and touch nothing else; an exception inside a handler is logged and answered
`internal`, never allowed to take down the connection or other students' work.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import socketio
from pydantic import BaseModel, ValidationError

from rooms.auth import Claims, Role, TokenService
from rooms.errors import RoomsError, Unauthorized
from rooms.event_writer import TRANSIENT
from rooms.storable import find_unstorable

logger = logging.getLogger(__name__)

Ack = dict[str, Any]


def ok(**data: Any) -> Ack:
    return {"ok": True, **data}


def error(code: str, message: str, **extra: Any) -> Ack:
    return {"ok": False, "error": {"code": code, "message": message, **extra}}


@dataclass(slots=True)
class TokenBucket:
    rate: float
    burst: float
    tokens: float = 0.0
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def take(self) -> float:
        """0 when allowed, else the seconds until one token is available."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass(slots=True)
class Session:
    sid: str
    claims: Claims
    bucket: TokenBucket
    attempt_id: str | None = None
    room_id: str | None = None
    watching: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Limits:
    max_message_bytes: int
    events_per_second: float
    event_burst: int


class Admission:
    """Admission control for new connections: a node-wide cap and a per-address rate."""

    def __init__(
        self, max_connections: int, per_ip_rate: float, per_ip_burst: int,
        node_rate: float = 1e9, node_burst: int = 1_000_000_000,
    ) -> None:
        self.max_connections = max_connections
        self._rate = per_ip_rate
        self._burst = float(per_ip_burst)
        self._buckets: dict[str, TokenBucket] = {}
        # Node-wide pacing of new connections: a reconnect storm is let in at a rate the
        # loop can absorb, so students already connected keep their latency.
        self._node = TokenBucket(node_rate, float(node_burst))
        self.connected = 0

    def admit(self, environ: dict[str, Any]) -> None:
        from rooms.errors import NoCapacity, RateLimited

        if self.connected >= self.max_connections:
            raise NoCapacity("this node is full; try again shortly", code="capacity", retry_after=5)
        wait = self._node.take()
        if wait:
            # Spread the retries: everyone told "now + wait" would come back together.
            raise RateLimited("the node is busy admitting others; retry shortly", code="rate_limited",
                              retry_after=round(max(0.2, wait) * (1 + random.random()), 2))
        address = _client_address(environ)
        bucket = self._buckets.get(address)
        if bucket is None:
            if len(self._buckets) > 100_000:  # bounded memory under an address-spraying flood
                self._buckets.clear()
            bucket = self._buckets[address] = TokenBucket(self._rate, self._burst)
        wait = bucket.take()
        if wait:
            raise RateLimited("too many connections from your address", code="rate_limited",
                              retry_after=max(0.1, round(wait, 1)))


def _client_address(environ: dict[str, Any]) -> str:
    request = environ.get("aiohttp.request")
    remote = getattr(request, "remote", None)
    return str(remote or environ.get("REMOTE_ADDR") or "unknown")


HandlerFn = Callable[[Session, Any], Awaitable[Ack]]
Refused = Callable[[str], None]


class GuardedNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    role: Role
    handlers: Mapping[str, tuple[type[BaseModel], str]] = {}
    admission: Admission | None = None

    def __init__(
        self,
        namespace: str,
        tokens: TokenService,
        limits: Limits,
        *,
        on_refused: Refused | None = None,
        on_count: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(namespace)
        self._tokens = tokens
        self._limits = limits
        self._on_refused = on_refused
        self._on_count = on_count
        self.sessions: dict[str, Session] = {}

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event in ("connect", "disconnect"):
            return await super().trigger_event(event, *args)
        sid = args[0]
        payload = args[1] if len(args) > 1 else {}
        ack = await self._dispatch(sid, event, payload, extra_args=len(args) > 2)
        if not ack.get("ok") and self._on_refused is not None:
            self._on_refused(ack["error"]["code"])
        return ack

    async def _dispatch(self, sid: str, event: str, payload: Any, *, extra_args: bool) -> Ack:
        session = self.sessions.get(sid)
        if session is None:
            return error("unauthorized", "not connected")
        wait = session.bucket.take()
        if wait:
            return error("rate_limited", "too many messages; slow down", retry_after=max(0.001, round(wait, 3)))
        entry = self.handlers.get(event)
        if entry is None:
            return error("unknown_event", f"unknown event {event!r}")
        if extra_args:
            return error("invalid", "send one payload object per event")
        try:
            size = len(json.dumps(payload, separators=(",", ":"), default=str))
        except (TypeError, ValueError, RecursionError):
            return error("invalid", "the payload is not JSON (or nested too deep)")
        if size > self._limits.max_message_bytes:
            return error("too_large", f"the payload is over {self._limits.max_message_bytes} bytes")
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            return error("invalid", "the payload must be an object")
        unstorable = find_unstorable(payload)
        if unstorable is not None:
            field_name, reason = unstorable
            return error("invalid", f"{field_name} {reason}", fields={field_name: reason})
        model, method_name = entry
        try:
            message = model.model_validate(payload)
        except ValidationError as exc:
            fields = {".".join(str(p) for p in e["loc"]) or "payload": e["msg"] for e in exc.errors(include_url=False)}
            return error("invalid", "the payload has invalid fields", fields=fields)
        handler: HandlerFn = getattr(self, method_name)
        try:
            return await handler(session, message)
        except RoomsError as exc:
            extra: dict[str, Any] = {}
            if exc.retry_after is not None:
                extra["retry_after"] = exc.retry_after
            if exc.fields:
                extra["fields"] = exc.fields
            return error(exc.code, exc.message, **extra)
        except TRANSIENT as exc:
            # Postgres is unreachable for now: nothing was done, the client retries.
            logger.warning("%s %s: database unavailable (%s)", self.namespace, event, type(exc).__name__)
            return error("unavailable", "the server's database is unavailable; retry shortly", retry_after=1)
        except Exception:
            logger.exception("%s %s failed", self.namespace, event)
            return error("internal", "internal error; it has been logged", retry_after=1)

    def is_revoked(self, claims: Claims) -> bool:
        check = self._tokens.is_revoked
        return check is not None and check(claims)

    def authenticate(self, auth: Any, environ: dict[str, Any] | None = None) -> Claims:
        if self.admission is not None and environ is not None:
            self.admission.admit(environ)
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str):
            raise Unauthorized("connect with auth={'token': ...}")
        claims = self._tokens.verify(token)
        if claims.role != self.role and not (self.role == "teacher" and claims.role == "admin"):
            raise Unauthorized(f"a {claims.role} token cannot connect to {self.namespace}", code="wrong_role")
        return claims

    def open_session(self, sid: str, claims: Claims) -> Session:
        bucket = TokenBucket(self._limits.events_per_second, float(self._limits.event_burst))
        session = self.sessions[sid] = Session(sid, claims, bucket)
        if self.admission is not None:
            self.admission.connected += 1
        if self._on_count is not None:
            self._on_count(+1)
        return session

    def close_session(self, sid: str) -> Session | None:
        session = self.sessions.pop(sid, None)
        if session is not None and self.admission is not None:
            self.admission.connected -= 1
        if session is not None and self._on_count is not None:
            self._on_count(-1)
        return session


def refuse(exc: RoomsError) -> socketio.exceptions.ConnectionRefusedError:
    """The connect refusal the client sees: a code and a reason it can show."""
    data: dict[str, Any] = {"code": exc.code}
    if exc.retry_after is not None:
        data["retry_after"] = exc.retry_after
    return socketio.exceptions.ConnectionRefusedError(exc.message, data)
