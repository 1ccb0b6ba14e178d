"""The boundary every Socket.IO message crosses: size, rate, schema, then a thin handler.

Each event of a namespace is declared once as `handlers = {"event": (Model, method)}`.
Unknown events, oversized or malformed payloads and rate-limit breaches are answered with
an error ack and touch nothing else; an exception inside a handler is logged and answered
`internal`, never allowed to take down the connection or other students' work.
"""

from __future__ import annotations

import asyncio
import http.cookies
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import socketio
from pydantic import BaseModel, ValidationError

from rooms.cluster.errors import REDIS_TRANSIENT
from rooms.errors import RoomsError, Unauthorized
from rooms.storable import find_unstorable
from rooms.store.event_writer import TRANSIENT
from rooms.tokens import Claims, Role, TokenService

from .transport import raw_length

logger = logging.getLogger(__name__)

Ack = dict[str, Any]

# Worst case of re-encoding one received character with json.dumps: a character outside the
# BMP becomes a surrogate pair of \uXXXX escapes (12 characters); "1E5" (3) -> "100000.0" (8)
# and every other escape or number grows less.
_ENCODED_PER_RAW_CHAR = 12


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
    buckets: dict[str, TokenBucket] = field(default_factory=dict)  # per-event rates (binary events)

    def event_bucket(self, event: str, rate: float, burst: float) -> TokenBucket:
        bucket = self.buckets.get(event)
        if bucket is None:
            bucket = self.buckets[event] = TokenBucket(rate, burst)
        return bucket


@dataclass(frozen=True, slots=True)
class Limits:
    max_message_bytes: int
    events_per_second: float
    event_burst: int


@dataclass(slots=True)
class Pacer:
    """A FIFO schedule of turns at `rate` per second, `burst` of them at once (GCRA).

    `reserve(now)` books the next turn and says how long until it comes (0: at once), or
    None when that would be more than `max_wait` (nothing is booked then).
    """

    rate: float
    burst: float
    max_wait: float
    _next: float = float("-inf")  # when the turn after the last booked one is due at the steady rate

    def reserve(self, now: float) -> float | None:
        due = max(self._next, now)
        wait = max(0.0, due - (self.burst - 1) / self.rate - now)
        if wait > self.max_wait:
            return None
        self._next = due + 1 / self.rate
        return wait

    def backlog(self, now: float) -> float:
        """Seconds until a turn booked now would come."""
        return max(0.0, max(self._next, now) - (self.burst - 1) / self.rate - now)


class Admission:
    """Admission control for new connections: a node-wide cap, a per-address rate, and a
    node-wide pace.

    The pace is a queue, not a refusal: a connect beyond the node's rate waits its turn
    (up to `max_wait` seconds) with its WebSocket open, then goes on. Refusing it instead
    cost a whole handshake and teardown, and another on every retry: in a reconnect storm
    of 1,000 that was ~800 wasted handshakes on top of the 1,000 needed, in the same
    seconds, and the loop time they took was what other students' acks waited for
    (docs/reliability.md). Only a connect that would wait longer than `max_wait` is
    refused (`rate_limited`, with a jittered `retry_after` past the queue).
    """

    def __init__(
        self,
        max_connections: int,
        per_ip_rate: float,
        per_ip_burst: int,
        node_rate: float = 1e9,
        node_burst: int = 1_000_000_000,
        max_wait: float = 10.0,
    ) -> None:
        self.max_connections = max_connections
        self._rate = per_ip_rate
        self._burst = float(per_ip_burst)
        self._buckets: dict[str, TokenBucket] = {}
        self._pace = Pacer(node_rate, float(node_burst), max_wait)
        self.connected = 0
        self.waiting = 0

    def reserve(self, environ: dict[str, Any]) -> float:
        """Refuse at once (capacity, the address's rate, a queue too long) or book a turn:
        the seconds to wait for it."""
        from rooms.errors import NoCapacity, RateLimited

        if self.connected + self.waiting >= self.max_connections:
            raise NoCapacity("this node is full; try again shortly", code="capacity", retry_after=5)
        address = _client_address(environ)
        bucket = self._buckets.get(address)
        if bucket is None:
            if len(self._buckets) > 100_000:  # bounded memory under an address-spraying flood
                self._buckets.clear()
            bucket = self._buckets[address] = TokenBucket(self._rate, self._burst)
        wait = bucket.take()
        if wait:
            raise RateLimited(
                "too many connections from your address", code="rate_limited", retry_after=max(0.1, round(wait, 1))
            )
        now = time.monotonic()
        turn = self._pace.reserve(now)
        if turn is None:
            # Spread the retries over the queue's length: "come back when it is shorter".
            past = self._pace.backlog(now) - self._pace.max_wait
            raise RateLimited(
                "the node is busy admitting others; retry shortly",
                code="rate_limited",
                retry_after=round(max(0.5, past) * (1 + random.random()), 2),
            )
        return turn

    async def admit(self, environ: dict[str, Any]) -> None:
        """`reserve`, then wait for the turn."""
        turn = self.reserve(environ)
        if turn <= 0:
            return
        self.waiting += 1
        try:
            await asyncio.sleep(turn)
        finally:
            self.waiting -= 1


def _client_address(environ: dict[str, Any]) -> str:
    request = environ.get("aiohttp.request")
    remote = getattr(request, "remote", None)
    return str(remote or environ.get("REMOTE_ADDR") or "unknown")


HandlerFn = Callable[[Session, Any], Awaitable[Ack]]
Refused = Callable[[str], None]
# The browser session cookie (server/http/credentials.py sets it).
SESSION_COOKIE = "proctor_session"


class AccountCredentials(Protocol):
    """rooms.accounts.AccountService as the guard sees it: a session or personal token → Claims."""

    async def session_claims(self, secret: str) -> Claims: ...
    async def token_claims(self, secret: str) -> Claims: ...


def session_cookie(environ: Mapping[str, Any]) -> str | None:
    raw = environ.get("HTTP_COOKIE")
    if not isinstance(raw, str) or not raw:
        return None
    jar = http.cookies.SimpleCookie()
    try:
        jar.load(raw)
    except http.cookies.CookieError:
        return None
    morsel = jar.get(SESSION_COOKIE)
    return morsel.value if morsel is not None else None


class GuardedNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    role: Role
    # trigger_event answers every event (unknown ones with an error ack), so the server can
    # hand events straight to it (signaling/transport.py ProctorServer._handle_event).
    handles_all_events = True
    handlers: ClassVar[Mapping[str, tuple[type[BaseModel], str]]] = {}
    # Events whose payload carries a binary attachment (its model types and bounds it), and
    # their own rate: (per second, burst) on top of the session's bucket.
    binary_events: ClassVar[Mapping[str, tuple[float, float]]] = {}

    def __init__(
        self,
        namespace: str,
        tokens: TokenService,
        limits: Limits,
        *,
        on_refused: Refused | None = None,
        on_count: Callable[[int], None] | None = None,
        admission: Admission | None = None,
        accounts: AccountCredentials | None = None,
    ) -> None:
        super().__init__(namespace)
        self._tokens = tokens
        self._accounts = accounts
        self._limits = limits
        self._on_refused = on_refused
        self._on_count = on_count
        self.admission = admission
        self.sessions: dict[str, Session] = {}

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event == "connect" and self.admission is not None:
            await self._admit(args[0], args[1])
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
        binary = self.binary_events.get(event)
        if binary is not None:
            # Nothing of a binary event is stored as it came (media/ keeps the bytes in
            # memory), and its size is bounded by its model and Engine.IO's message limit.
            wait = session.event_bucket(event, *binary).take()
            if wait:
                return error("rate_limited", f"too many {event!r} messages", retry_after=max(0.001, round(wait, 3)))
        else:
            refused = self._check_size(payload)
            if refused is not None:
                return refused
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            return error("invalid", "the payload must be an object")
        unstorable = None if binary is not None else find_unstorable(payload)
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
            if exc.details:
                extra["details"] = exc.details
            return error(exc.code, exc.message, **extra)
        except TRANSIENT as exc:
            # Postgres is unreachable for now: nothing was done, the client retries.
            logger.warning("%s %s: database unavailable (%s)", self.namespace, event, type(exc).__name__)
            return error("unavailable", "the server's database is unavailable; retry shortly", retry_after=1)
        except REDIS_TRANSIENT as exc:
            # The cluster's Redis is unreachable or just restarted: retrying gets a fresh connection.
            logger.warning("%s %s: Redis unavailable (%s)", self.namespace, event, exc)
            return error("unavailable", "the cluster's Redis is unavailable; retry shortly", retry_after=1)
        except Exception:
            logger.exception("%s %s failed", self.namespace, event)
            return error("internal", "internal error; it has been logged", retry_after=1)

    def _check_size(self, payload: Any) -> Ack | None:
        """Refuse a payload whose compact JSON is over the limit.

        The size counted is that of `json.dumps(payload, separators=(",", ":"))` (ASCII
        escapes included). Re-encoding every payload to count it cost 4-5 % of the node's CPU
        at 1,500 events/s, so it is done only when the packet the payload arrived in could
        hold an oversized one: each character of the received packet re-encodes to at most
        `_ENCODED_PER_RAW_CHAR` characters, so a packet that short cannot carry too much.
        """
        limit = self._limits.max_message_bytes
        raw = raw_length()
        if raw is not None and raw * _ENCODED_PER_RAW_CHAR <= limit:
            return None
        try:
            size = len(json.dumps(payload, separators=(",", ":"), default=str))
        except (TypeError, ValueError, RecursionError):
            return error("invalid", "the payload is not JSON (or nested too deep)")
        if size > limit:
            return error("too_large", f"the payload is over {limit} bytes")
        return None

    def is_revoked(self, claims: Claims) -> bool:
        check = self._tokens.is_revoked
        return check is not None and check(claims)

    async def _admit(self, sid: str, environ: dict[str, Any]) -> None:
        """Admission before the connect handler runs; it may wait for the node's pace."""
        assert self.admission is not None
        try:
            await self.admission.admit(environ)
        except RoomsError as exc:
            raise refuse(exc) from None
        # The client may have gone while it waited: python-socketio ignores a disconnect
        # during a pending connect, so refusing here is what releases the socket's state.
        eio_sid = self.server.manager.eio_sid_from_sid(sid, self.namespace)
        sock = self.server.eio.sockets.get(eio_sid) if eio_sid is not None else None
        if sock is None or sock.closed or sock.closing:
            raise socketio.exceptions.ConnectionRefusedError("gone while waiting to be admitted")

    def authenticate(self, auth: Any, environ: dict[str, Any] | None = None) -> Claims:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str):
            raise Unauthorized("connect with auth={'token': ...}")
        claims = self._tokens.verify(token)
        self._check_role(claims)
        return claims

    async def authenticate_connect(self, auth: Any, environ: dict[str, Any]) -> Claims:
        """`authenticate`, and for accounts also a personal token (`pt_…`) or, with no token
        at all, the browser's session cookie. Revoking either closes the socket: its claims
        name it (`session:<id>`, `token:<id>`), which the session guard re-checks."""
        token = auth.get("token") if isinstance(auth, dict) else None
        if self._accounts is not None:
            claims: Claims | None = None
            if isinstance(token, str) and token.startswith("pt_"):
                claims = await self._accounts.token_claims(token)
            elif token is None:
                cookie = session_cookie(environ)
                if cookie is not None:
                    claims = await self._accounts.session_claims(cookie)
            if claims is not None:
                self._check_role(claims)
                if self.is_revoked(claims):
                    raise Unauthorized("the session has been revoked", code="token_revoked")
                return claims
        return self.authenticate(auth, environ)

    def _check_role(self, claims: Claims) -> None:
        if claims.role != self.role and not (self.role == "teacher" and claims.role == "admin"):
            raise Unauthorized(f"a {claims.role} token cannot connect to {self.namespace}", code="wrong_role")

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
