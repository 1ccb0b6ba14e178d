"""Cross-node Socket.IO delivery on Redis with one channel per Socket.IO room.

python-socketio's `AsyncRedisManager` publishes every emit on one channel that every node
subscribes to and decodes, whether or not it has anyone in the target room; its publish
also waits for Redis on the emitting handler's path and gives up after two tries.
`RoomChannelManager` keeps python-socketio's message format and its pub/sub manager logic
(`AsyncPubSubManager`: local delivery, remote acks, remote disconnects) and changes only
the transport:

* an emit to a project room (`teachers:{room}`, `students:{room}`, `attempt:{attempt}`,
  any name with a `:`) goes to the channel `{prefix}room:{name}`; a node subscribes to it
  while it has a local member in that room, so it decodes only what it delivers;
* everything else (broadcasts, sid-addressed messages, remote disconnects) goes to the
  shared channel `{prefix}all`, and acks to the emitting host's own channel;
* publishing is a queue drained by one task into pipelines: the handler never waits for
  Redis, messages keep their order, and the queue is bounded (pub/sub is best effort;
  durability lives in the acknowledged event writer, never here);
* `mode="single"` puts everything on `{prefix}all` (python-socketio's own scheme), kept
  for comparison in benchmarks/cluster;
* what pub/sub lost is made up for by a re-read, not a replay: when the listener is
  subscribed again after losing Redis (its own reconnect, or redis-py's silent one, seen
  as a second confirmation), `on_resync("bus_reconnected")` runs on this node
  (the app tells its teachers to `watch` again); when this node could not publish, it
  asks the other nodes to do the same (`resync` on `{prefix}all`, `on_resync("peer_dropped")`)
  once a publish goes through again. Requests that arrive together are sent as one.

Only JSON crosses Redis: python-socketio's packet JSON for emits, our `AttemptChanged`, and
`{"method": "resync", "host_id"}`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from socketio.async_manager import AsyncManager
from socketio.async_pubsub_manager import AsyncPubSubManager

from core.tasks import stop_tasks

from .room_index import RoomIndex

logger = logging.getLogger(__name__)

Mode = Literal["room", "single"]
_MAX_QUEUE = 20_000
_PIPELINE = 500
_SUBSCRIBE_WAIT = 2.0
# Resync requests this close together (own reconnect, peers' publish failures) are one.
_RESYNC_SETTLE = 0.5


@dataclass(frozen=True, slots=True)
class AttemptChanged:
    """An attempt's state changed on another node: drop the cached copy."""

    attempt_id: str
    host_id: str

    @classmethod
    def parse(cls, data: dict[str, Any]) -> AttemptChanged:
        attempt_id, host_id = data.get("attempt_id"), data.get("host_id")
        if not isinstance(attempt_id, str) or not isinstance(host_id, str) or not attempt_id:
            raise ValueError("attempt_changed needs attempt_id and host_id strings")
        return cls(attempt_id, host_id)


def attempt_channel_room(attempt_id: str) -> str:
    return f"attempt:{attempt_id}"


class RoomChannelManager(RoomIndex, AsyncPubSubManager):  # type: ignore[misc]
    name = "proctor-redis"

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "proctor:sio:",
        mode: Mode = "room",
        on_attempt_changed: Callable[[str], Awaitable[None]] | None = None,
        resync_namespace: str | None = "/teacher",
    ) -> None:
        super().__init__(channel=f"{prefix}all")
        self._shared = f"{prefix}all"
        self.redis = redis
        self.prefix = prefix
        self.mode: Mode = mode
        # Another node changed an attempt: drop this node's cached copy.
        self.on_attempt_changed = on_attempt_changed
        # Run (on this node only) after pub/sub messages may have been lost, with why; by
        # default this node's clients of `resync_namespace` are told to read again.
        self.on_resync: Callable[[str], Awaitable[None]] | None = (
            self._tell_resync if resync_namespace is not None else None
        )
        self._resync_namespace = resync_namespace
        self.resyncs = 0
        self.published = 0
        self.received = 0
        self.dropped = 0
        self._queue: deque[tuple[str, str]] = deque()
        self._queued = asyncio.Event()
        self._members: dict[str, set[tuple[str, str]]] = {}
        self._wanted: set[str] = {self.channel, self._host_channel(self.host_id)}
        self._sent: set[str] = set()
        self._confirmed: set[str] = set()
        self._confirm_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._resubscribe = asyncio.Event()
        self._pubsub: PubSub | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._unsubscribed = False  # the listener lost Redis: messages to us were missed
        self._unpublished = False  # messages from us were dropped: other nodes missed them
        self._resync_request = (self._shared, json.dumps({"method": "resync", "host_id": self.host_id}))
        self._resync_due = False
        self._resync_tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle -----------------------------------------------------------------------------

    def initialize(self) -> None:
        # python-socketio calls this on the first connection and would start its own
        # listener; ours is started (and stopped) by the app's cleanup context instead.
        AsyncManager.initialize(self)

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._publisher(), name="room-bus-publisher"),
                asyncio.create_task(self._listener(), name="room-bus-listener"),
                asyncio.create_task(self._subscriber(), name="room-bus-subscriber"),
            ]

    async def stop(self, flush_timeout: float = 2.0) -> None:
        deadline = asyncio.get_running_loop().time() + flush_timeout
        # Polled, not an Event: the publisher drains the queue in its own loop (bounded wait).
        while self._queue and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        await stop_tasks([*self._tasks, *self._resync_tasks])
        self._tasks = []

    def local_sessions(self) -> int:
        return sum(len(rooms.get(None, ())) for rooms in self.rooms.values())

    def subscriptions(self) -> int:
        return len(self._sent)

    # -- which channel carries what --------------------------------------------------------------

    def _host_channel(self, host_id: str) -> str:
        return f"{self.prefix}host:{host_id}"

    def _room_channel(self, room: Any) -> str | None:
        if self.mode == "room" and isinstance(room, str) and ":" in room:
            return f"{self.prefix}room:{room}"
        return None

    def _channel_for(self, message: dict[str, Any]) -> str:
        method = message.get("method")
        if method == "callback":
            return self._host_channel(str(message.get("host_id")))
        if method in ("emit", "close_room", "attempt_changed"):
            return self._room_channel(message.get("room")) or self._shared
        return self._shared

    # -- room membership drives subscriptions -------------------------------------------------

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        channel = self._room_channel(room)
        if channel is not None:
            members = self._members.setdefault(channel, set())
            if not members:
                self._wanted.add(channel)
                self._resubscribe.set()
            members.add((namespace, sid))

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        channel = self._room_channel(room)
        members = self._members.get(channel) if channel is not None else None
        if channel is not None and members is not None:
            members.discard((namespace, sid))
            if not members:
                del self._members[channel]
                self._wanted.discard(channel)
                self._resubscribe.set()

    async def enter_room(self, sid: str, namespace: str, room: Any, eio_sid: Any = None) -> None:
        await super().enter_room(sid, namespace, room, eio_sid=eio_sid)
        channel = self._room_channel(room)
        if channel is not None and channel not in self._confirmed:
            # Wait (briefly) until Redis confirms the subscription, so an event published
            # by another node right after this join is not missed.
            await self._wait_subscribed(channel)

    async def _wait_subscribed(self, channel: str) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirm_waiters.setdefault(channel, []).append(future)
        try:
            async with asyncio.timeout(_SUBSCRIBE_WAIT):
                await future
        except TimeoutError:
            logger.warning("room bus: no subscription confirmation for %s yet", channel)
        finally:
            waiters = self._confirm_waiters.get(channel)
            if waiters and future in waiters:
                waiters.remove(future)

    # -- attempt-state changes ---------------------------------------------------------------------

    def attempt_changed(self, attempt_id: str) -> None:
        """Tell the nodes holding this attempt's student to drop their cached copy. Queued
        before the emits that follow it, so they arrive first."""
        self._enqueue(
            {
                "method": "attempt_changed",
                "attempt_id": attempt_id,
                "room": attempt_channel_room(attempt_id),
                "host_id": self.host_id,
            }
        )

    # -- publish -------------------------------------------------------------------------------

    async def _publish(self, data: dict[str, Any]) -> None:
        self._enqueue(data)

    def _enqueue(self, data: dict[str, Any]) -> None:
        if len(self._queue) >= _MAX_QUEUE:
            self.dropped += 1
            self._unpublished = True
            if self.dropped % 1000 == 1:
                logger.error("room bus: Redis is not keeping up; dropped %d messages", self.dropped)
            return
        self._queue.append((self._channel_for(data), json.dumps(data, separators=(",", ":"))))
        self._queued.set()

    async def _publisher(self) -> None:
        backoff = 0.1
        while True:
            if not self._queue:
                if self._unpublished:
                    # Nothing else to send: the resync request itself tries Redis until it is back.
                    self._queue.append(self._resync_request)
                else:
                    self._queued.clear()
                    await self._queued.wait()
            batch = [self._queue.popleft() for _ in range(min(_PIPELINE, len(self._queue)))]
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for channel, payload in batch:
                        pipe.publish(channel, payload)
                    await pipe.execute()
                self.published += len(batch)
                backoff = 0.1
                if self._unpublished:
                    # Redis takes our messages again: the nodes that missed some re-read.
                    self._unpublished = False
                    if self._resync_request not in batch:
                        self._queue.append(self._resync_request)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Best effort by design: what pub/sub carries can be lost; teachers re-read
                # (the resync request above) and durable data never travels this way.
                self._unpublished = True
                lost = sum(1 for item in batch if item is not self._resync_request)
                if lost:
                    self.dropped += lost
                    logger.warning("room bus: cannot publish to Redis (%s); dropped %d", exc, lost)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    # -- subscribe and listen ----------------------------------------------------------------------

    async def _subscriber(self) -> None:
        while True:
            await self._resubscribe.wait()
            self._resubscribe.clear()
            pubsub = self._pubsub
            if pubsub is None:
                continue  # the listener subscribes to everything wanted when it connects
            add = self._wanted - self._sent
            drop = self._sent - self._wanted
            try:
                if add:
                    self._sent |= add
                    await pubsub.subscribe(*add)
                if drop:
                    self._sent -= drop
                    self._confirmed -= drop
                    await pubsub.unsubscribe(*drop)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("room bus: subscription change failed (%s); the listener will redo it", exc)

    async def _listener(self) -> None:
        backoff = 0.25
        while True:
            pubsub = self.redis.pubsub()
            try:
                self._sent = set(self._wanted)
                self._confirmed.clear()
                await pubsub.subscribe(*self._sent)
                self._pubsub = pubsub
                self._resubscribe.set()  # whatever changed while we were connecting
                if backoff > 0.25:
                    logger.info("room bus: listening again")
                backoff = 0.25
                if self._unsubscribed:
                    self._unsubscribed = False
                    self.request_resync("bus_reconnected")
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        await self._on_message(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._unsubscribed = True
                logger.warning("room bus: Redis subscription lost (%s); reconnecting in %.2fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                self._pubsub = None
                self._confirmed.clear()
                try:
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                except Exception:
                    pass

    async def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        channel = message.get("channel")
        name = channel.decode() if isinstance(channel, bytes) else str(channel)
        if kind == "subscribe":
            if name in self._confirmed:
                # Confirmed twice: redis-py reconnected inside get_message (its retries) and
                # subscribed again by itself, so what was published in between is lost.
                self.request_resync("bus_reconnected")
            self._confirmed.add(name)
            for future in self._confirm_waiters.pop(name, []):
                if not future.done():
                    future.set_result(None)
            return
        if kind != "message":
            return
        try:
            data = json.loads(message["data"])
        except (ValueError, TypeError, KeyError):
            logger.warning("room bus: ignoring a message that is not JSON on %s", name)
            return
        if not isinstance(data, dict) or "method" not in data:
            return
        self.received += 1
        try:
            await self._dispatch(data)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("room bus: handling %s failed", data.get("method"))

    async def _dispatch(self, data: dict[str, Any]) -> None:
        method = data["method"]
        if method == "callback":
            await self._handle_callback(data)
            return
        if data.get("host_id") == self.host_id:
            return
        if method == "emit":
            await self._handle_emit(data)
        elif method == "attempt_changed":
            change = AttemptChanged.parse(data)
            if self.on_attempt_changed is not None:
                await self.on_attempt_changed(change.attempt_id)
        elif method == "resync":
            self.request_resync("peer_dropped")
        elif method == "disconnect":
            await self._handle_disconnect(data)
        elif method == "enter_room":
            await self._handle_enter_room(data)
        elif method == "leave_room":
            await self._handle_leave_room(data)
        elif method == "close_room":
            await self._handle_close_room(data)

    # -- making up for lost messages ---------------------------------------------------------------

    async def _tell_resync(self, reason: str) -> None:
        """Tell this node's clients that live deltas may have been lost: they read again.
        Local only (`ignore_queue`): each node tells its own, and Redis may be the reason."""
        await self.server.emit("resync", {"reason": reason}, namespace=self._resync_namespace, ignore_queue=True)

    def request_resync(self, reason: str) -> None:
        """Run `on_resync(reason)` soon, once for every request that arrives meanwhile."""
        if self._resync_due:
            return
        self._resync_due = True
        task = asyncio.create_task(self._resync(reason), name="room-bus-resync")
        self._resync_tasks.add(task)
        task.add_done_callback(self._resync_tasks.discard)

    async def _resync(self, reason: str) -> None:
        await asyncio.sleep(_RESYNC_SETTLE)
        # A loss reported from here on may come after the re-read below: it gets its own.
        self._resync_due = False
        if self.on_resync is None:
            return
        self.resyncs += 1
        logger.info("room bus: pub/sub messages may have been lost (%s); asking for a resync", reason)
        try:
            await self.on_resync(reason)
        except Exception:
            logger.exception("room bus: resync failed")
