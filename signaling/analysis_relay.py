"""Analysis peers answered by the room's host node, whichever node the student is on.

A student's `rtc` offer to the server lands on the node Nginx sent their socket to. In a
cluster the room's lease holder (rooms/cluster/placement.py) answers it: `RedisAnalysisRelay`
is the signaling.rtc.AnalysisGateway every node uses. When this node holds the room it
calls its own gateway (server/analysis.py); otherwise it sends the offer (or candidate)
to the host over Redis and waits for the reply, which the student's ack then carries.
The host analyses the frames and pushes violations and thumbnails through the notifier,
as on one node. Media then flows between the student's browser and the host directly.

Channels: `{prefix}analysis:{node}`, one per node, request and reply alike; JSON only:
  {"kind": "request", "id", "op": offer|candidate|close|frame, "reply_to", "attempt_id", "sdp"?,
   "type"?, "candidate"?, "jpeg"? (base64)}
  {"kind": "reply", "id", "ok": true, "sdp"?, "type"?}
  {"kind": "reply", "id", "ok": false, "error": {"category", "code", "message", "retry_after"?}}

Failures are answered, never waited out: a host nobody listens for (PUBLISH reached no
one) or one that stays silent for `timeout` seconds is `unavailable` with `retry_after`;
a node asked for a room it no longer holds (moved, draining) says so the same way.
`close` and `frame` (a camera snapshot, relayed to the host that analyses it) are
fire-and-forget: a lost snapshot is one lost sample, and waiting for the host's reply
would hold the student's ack for a Redis round trip per second. When a room moves, its
old host closes the peers it answered for it (`sweep`, on every registry heartbeat) and
the node that placed the room again tells the room's students to offer again
(server/backends.py).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.tasks import stop_tasks
from rooms.errors import Conflict, Forbidden, Invalid, NotFound, RoomsError, Unavailable

from .rtc import AnalysisGateway

logger = logging.getLogger(__name__)

# Longer than a loaded host needs to answer (aiortc gathers host candidates in
# milliseconds; a STUN round trip adds a little), shorter than the page's 15 s ack timeout.
ANSWER_TIMEOUT = 8.0

Op = Literal["offer", "candidate", "close", "frame"]
_OPS: frozenset[str] = frozenset(get_args(Op))
_ERRORS: dict[str, type[RoomsError]] = {
    "invalid": Invalid,
    "forbidden": Forbidden,
    "not_found": NotFound,
    "conflict": Conflict,
    "unavailable": Unavailable,
}


class BadMessage(ValueError):
    pass


def _string(data: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = data.get(key, "")
    if not isinstance(value, str) or (required and not value):
        raise BadMessage(f"{key} must be a non-empty string")
    return value


@dataclass(frozen=True, slots=True)
class AnalysisRequest:
    id: str
    op: Op
    reply_to: str
    attempt_id: str
    sdp: str = ""
    type: str = ""
    candidate: dict[str, Any] = field(default_factory=dict)
    jpeg: bytes = b""

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "kind": "request",
            "id": self.id,
            "op": self.op,
            "reply_to": self.reply_to,
            "attempt_id": self.attempt_id,
        }
        if self.op == "offer":
            data.update(sdp=self.sdp, type=self.type)
        elif self.op == "candidate":
            data["candidate"] = self.candidate
        elif self.op == "frame":
            data["jpeg"] = base64.b64encode(self.jpeg).decode("ascii")
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def parse(cls, data: dict[str, Any]) -> AnalysisRequest:
        op = data.get("op")
        if op not in _OPS:
            raise BadMessage(f"unknown op {op!r}")
        candidate = data.get("candidate", {})
        if not isinstance(candidate, dict):
            raise BadMessage("candidate must be an object")
        jpeg = b""
        if op == "frame":
            try:
                jpeg = base64.b64decode(_string(data, "jpeg"), validate=True)
            except binascii.Error as exc:
                raise BadMessage("jpeg must be base64") from exc
        return cls(
            id=_string(data, "id"),
            op=cast(Op, op),
            reply_to=_string(data, "reply_to"),
            attempt_id=_string(data, "attempt_id"),
            sdp=_string(data, "sdp", required=op == "offer"),
            type=_string(data, "type", required=op == "offer"),
            candidate=candidate,
            jpeg=jpeg,
        )


@dataclass(frozen=True, slots=True)
class AnalysisReply:
    id: str
    ok: bool
    sdp: str = ""
    type: str = ""
    category: str = ""
    code: str = ""
    message: str = ""
    retry_after: float | None = None

    @classmethod
    def failed(cls, request_id: str, exc: RoomsError) -> AnalysisReply:
        return cls(
            request_id, False, category=exc.category, code=exc.code, message=exc.message, retry_after=exc.retry_after
        )

    def to_json(self) -> str:
        data: dict[str, Any] = {"kind": "reply", "id": self.id, "ok": self.ok}
        if self.ok:
            if self.sdp:
                data.update(sdp=self.sdp, type=self.type)
        else:
            data["error"] = {
                "category": self.category,
                "code": self.code,
                "message": self.message,
                "retry_after": self.retry_after,
            }
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def parse(cls, data: dict[str, Any]) -> AnalysisReply:
        ok = data.get("ok")
        if not isinstance(ok, bool):
            raise BadMessage("ok must be a boolean")
        if ok:
            return cls(
                _string(data, "id"),
                True,
                sdp=_string(data, "sdp", required=False),
                type=_string(data, "type", required=False),
            )
        error = data.get("error")
        if not isinstance(error, dict):
            raise BadMessage("a failed reply needs its error")
        retry = error.get("retry_after")
        if retry is not None and (isinstance(retry, bool) or not isinstance(retry, (int, float))):
            raise BadMessage("retry_after must be a number")
        return cls(
            _string(data, "id"),
            False,
            category=_string(error, "category"),
            code=_string(error, "code"),
            message=_string(error, "message", required=False),
            retry_after=float(retry) if retry is not None else None,
        )

    def error(self) -> RoomsError:
        kind = _ERRORS.get(self.category, Unavailable)
        return kind(self.message or "the analysis host refused", code=self.code or None, retry_after=self.retry_after)


HostOf = Callable[[str], Awaitable[str | None]]


class RedisAnalysisRelay:
    """signaling.rtc.AnalysisGateway for a cluster member (see the module docstring).

    `room_of(attempt)` is the attempt's room; `host_of(room)` the node that hosts it now
    (None: nobody, yet); `holder_of(room)` the lease holder as Redis has it, which a node
    checks before answering for a room; `accepting()` is False while this node drains.
    """

    def __init__(
        self,
        redis: Redis,
        node_id: str,
        *,
        local: AnalysisGateway | None,
        room_of: Callable[[str], Awaitable[str]],
        host_of: HostOf,
        holder_of: HostOf,
        accepting: Callable[[], bool],
        prefix: str = "proctor:",
        timeout: float = ANSWER_TIMEOUT,
        ticks: list[Callable[[], Awaitable[None]]] | None = None,
    ) -> None:
        self.redis = redis
        self.node_id = node_id
        self.prefix = prefix
        self.timeout = timeout
        # The node registry's heartbeat ticks: while running, sweep after each one (after
        # placement renewed the leases, which subscribed first).
        self._ticks = ticks
        self._local = local
        self._room_of = room_of
        self._host_of = host_of
        self._holder_of = holder_of
        self._accepting = accepting
        self._waiting: dict[str, asyncio.Future[AnalysisReply]] = {}
        # Peers this node answered, attempt -> room: closed when the room moves away.
        self._served: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        self.relayed = 0
        self.failed = 0

    def channel(self, node_id: str) -> str:
        return f"{self.prefix}analysis:{node_id}"

    @property
    def served(self) -> int:
        return len(self._served)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, wait: float = 2.0) -> None:
        if self._ticks is not None:
            self._ticks.append(self.sweep)
        self._listener = asyncio.create_task(self._listen(), name="analysis-relay")
        try:
            async with asyncio.timeout(wait):
                await self.listening.wait()
        except TimeoutError:
            logger.warning("analysis relay: not subscribed yet; offers from other nodes wait for it")

    async def stop(self) -> None:
        if self._ticks is not None and self.sweep in self._ticks:
            self._ticks.remove(self.sweep)
        await stop_tasks([t for t in (self._listener, *self._tasks) if t is not None])
        self._listener = None
        for future in self._waiting.values():
            if not future.done():
                future.cancel()
        self._waiting.clear()

    # -- the gateway: where the student's socket is ------------------------------------------

    async def offer(self, attempt_id: str, sdp: str, type_: str) -> tuple[str, str]:
        room_id = await self._room_of(attempt_id)
        host = await self._host(room_id)
        if host == self.node_id:
            return await self._offer_here(attempt_id, room_id, sdp, type_)
        reply = await self._request(
            host, AnalysisRequest(uuid.uuid4().hex, "offer", self.node_id, attempt_id, sdp=sdp, type=type_)
        )
        return reply.sdp, reply.type

    async def candidate(self, attempt_id: str, candidate: dict[str, Any]) -> None:
        room_id = await self._room_of(attempt_id)
        host = await self._host(room_id)
        if host == self.node_id:
            await self._here().candidate(attempt_id, candidate)
            return
        await self._request(
            host, AnalysisRequest(uuid.uuid4().hex, "candidate", self.node_id, attempt_id, candidate=candidate)
        )

    async def close(self, attempt_id: str) -> None:
        """Close the attempt's peer here and on the room's host (student gone, attempt over)."""
        await self._close_here(attempt_id)
        try:
            host = await self._host_of(await self._room_of(attempt_id))
            if host is not None and host != self.node_id:
                await self.redis.publish(
                    self.channel(host), AnalysisRequest(uuid.uuid4().hex, "close", self.node_id, attempt_id).to_json()
                )
        except (RoomsError, RedisError) as exc:
            # The host closes it anyway once the browser goes, or when the room moves.
            logger.warning("analysis relay: could not ask the host to close %s (%s)", attempt_id, exc)

    async def frame(self, attempt_id: str, jpeg: bytes) -> None:
        room_id = await self._room_of(attempt_id)
        host = await self._host(room_id)
        if host == self.node_id:
            await self._here().frame(attempt_id, jpeg)
            self._served[attempt_id] = room_id
            return
        request = AnalysisRequest(uuid.uuid4().hex, "frame", self.node_id, attempt_id, jpeg=jpeg)
        try:
            receivers = await self.redis.publish(self.channel(host), request.to_json())
        except RedisError as exc:
            raise Unavailable(
                f"cannot reach the room's host node ({type(exc).__name__})", code="unavailable", retry_after=2
            ) from None
        if not receivers:
            raise Unavailable(f"the room's host node {host} is not reachable", code="unavailable", retry_after=2)
        self.relayed += 1

    async def _host(self, room_id: str) -> str:
        try:
            host = await self._host_of(room_id)
        except RedisError:
            host = None
        if host is None:
            raise Unavailable("the exam room has no host node right now", code="unavailable", retry_after=2)
        return host

    def _here(self) -> AnalysisGateway:
        if self._local is None:
            raise Conflict("server analysis is not available on the room's host node", code="rtc_unavailable")
        return self._local

    async def _offer_here(self, attempt_id: str, room_id: str, sdp: str, type_: str) -> tuple[str, str]:
        answer = await self._here().offer(attempt_id, sdp, type_)
        self._served[attempt_id] = room_id
        return answer

    async def _close_here(self, attempt_id: str) -> None:
        self._served.pop(attempt_id, None)
        if self._local is not None:
            await self._local.close(attempt_id)

    async def _request(self, host: str, request: AnalysisRequest) -> AnalysisReply:
        future: asyncio.Future[AnalysisReply] = asyncio.get_running_loop().create_future()
        self._waiting[request.id] = future
        self.relayed += 1
        try:
            async with asyncio.timeout(self.timeout):
                receivers = await self.redis.publish(self.channel(host), request.to_json())
                if not receivers:
                    raise Unavailable(
                        f"the room's host node {host} is not reachable", code="unavailable", retry_after=2
                    )
                reply = await future
        except TimeoutError:
            self.failed += 1
            raise Unavailable(
                f"the room's host node {host} did not answer within {self.timeout:g} s",
                code="unavailable",
                retry_after=5,
            ) from None
        except RedisError as exc:
            self.failed += 1
            raise Unavailable(
                f"cannot reach the room's host node ({type(exc).__name__})", code="unavailable", retry_after=2
            ) from None
        except Unavailable:
            self.failed += 1
            raise
        finally:
            self._waiting.pop(request.id, None)
        if not reply.ok:
            raise reply.error()
        return reply

    # -- the host: answering for the rooms it holds --------------------------------------------

    async def _serve(self, request: AnalysisRequest) -> None:
        if request.op == "close":
            await self._close_here(request.attempt_id)
            return
        if request.op == "frame":
            await self._frame_here(request)
            return
        try:
            room_id = await self._room_of(request.attempt_id)
            if not self._accepting() or await self._holder_of(room_id) != self.node_id:
                raise Unavailable("this node does not host the exam room (any more)", code="unavailable", retry_after=2)
            if request.op == "offer":
                sdp, type_ = await self._offer_here(request.attempt_id, room_id, request.sdp, request.type)
                reply = AnalysisReply(request.id, True, sdp=sdp, type=type_)
            else:
                await self._here().candidate(request.attempt_id, request.candidate)
                reply = AnalysisReply(request.id, True)
        except RoomsError as exc:
            reply = AnalysisReply.failed(request.id, exc)
        except RedisError as exc:
            reply = AnalysisReply.failed(
                request.id,
                Unavailable(
                    f"the host cannot check its lease ({type(exc).__name__})", code="unavailable", retry_after=2
                ),
            )
        except Exception:
            logger.exception("analysis relay: %s for attempt %s failed", request.op, request.attempt_id)
            reply = AnalysisReply.failed(
                request.id, Unavailable("the host failed to answer", code="unavailable", retry_after=5)
            )
        await self.redis.publish(self.channel(request.reply_to), reply.to_json())

    async def _frame_here(self, request: AnalysisRequest) -> None:
        try:
            room_id = await self._room_of(request.attempt_id)
            if not self._accepting() or await self._holder_of(room_id) != self.node_id:
                return  # the room moved: its students are told to start again there
            await self._here().frame(request.attempt_id, request.jpeg)
            self._served[request.attempt_id] = room_id
        except (RoomsError, RedisError) as exc:
            # Nobody waits for an answer: a refused snapshot is one lost sample.
            logger.debug("analysis relay: snapshot of %s refused here (%s)", request.attempt_id, exc)

    async def sweep(self) -> None:
        """Close the peers of rooms another node holds now (moved, handed over), or all of
        them while draining. A room without a lease (Redis restarting) keeps its peers."""
        if not self._served:
            return
        rooms = sorted(set(self._served.values()))
        draining = not self._accepting()
        try:
            holders = dict(zip(rooms, await asyncio.gather(*(self._holder_of(r) for r in rooms)), strict=True))
        except RedisError:
            return  # Redis is away: nothing moves meanwhile
        for attempt_id, room_id in list(self._served.items()):
            holder = holders.get(room_id)
            if draining or (holder is not None and holder != self.node_id):
                logger.info("analysis relay: room %s is on %s now; closing the peer of %s", room_id, holder, attempt_id)
                await self._close_here(attempt_id)

    # -- the channel ---------------------------------------------------------------------------

    async def _listen(self) -> None:
        backoff = 0.25
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self.channel(self.node_id))
                self.listening.set()
                backoff = 0.25
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._on_message(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.listening.clear()
                logger.warning("analysis relay: Redis subscription lost (%s); again in %.2fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                try:
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                except Exception:
                    pass

    def _on_message(self, raw: Any) -> None:
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise BadMessage("not an object")
            kind = data.get("kind")
            if kind == "reply":
                reply = AnalysisReply.parse(data)
                future = self._waiting.get(reply.id)
                if future is not None and not future.done():
                    future.set_result(reply)
            elif kind == "request":
                self._spawn(self._serve(AnalysisRequest.parse(data)))
            else:
                raise BadMessage(f"unknown kind {kind!r}")
        except (ValueError, TypeError) as exc:
            logger.warning("analysis relay: ignoring a malformed message (%s)", exc)

    def _spawn(self, coro: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("analysis relay: serving a request failed")

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
