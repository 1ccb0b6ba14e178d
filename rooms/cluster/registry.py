"""The node registry in Redis: who is alive, where, how full, and who noticed a node die.

Every node writes `{prefix}node:{id}` (a JSON `NodeInfo`) with a short expiry once per
`interval`; a node silent for `ttl` seconds is gone. The set `{prefix}nodes` lists every
node that registered: a member whose key has expired is a lost node, and the one node whose
`SREM` removes it (exactly one, Redis is single-threaded) runs the clean-up callbacks for
it. The heartbeat is `SET ... GET`: when the old value is missing, Redis lost our state
(restart, flush, or we were silent too long) and the `on_resync` callbacks write it again.

Each process also draws a random `incarnation`, written in its record: a node id that beats
with a new incarnation was restarted, and the previous process died without leaving (the
`on_restarted` callbacks get its last record). Presence uses it to tell a dead holder of a
student from a live one (rooms/cluster/presence.py).

Placement and presence hang their periodic work on the same loop (`on_tick`), so a node
makes one batch of Redis calls per interval, whatever the number of rooms.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from redis.asyncio import Redis

from core.tasks import stop_task

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0
NODE_TTL_SECONDS = 3.0

Tick = Callable[[], Awaitable[None]]
NodeLost = Callable[[str], Awaitable[None]]


class BadNodeInfo(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class NodeInfo:
    id: str
    address: str
    capacity: int
    hosted: int
    load: int
    draining: bool
    seen_at: float
    incarnation: str = ""  # empty in records of nodes older than this field

    @property
    def free_slots(self) -> int:
        return 0 if self.draining else max(0, self.capacity - self.hosted)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> NodeInfo:
        try:
            data = json.loads(raw)
            info = cls(
                id=str(data["id"]),
                address=str(data["address"]),
                capacity=int(data["capacity"]),
                hosted=int(data["hosted"]),
                load=int(data["load"]),
                draining=bool(data["draining"]),
                seen_at=float(data["seen_at"]),
                incarnation=str(data.get("incarnation", "")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BadNodeInfo(f"bad node record: {exc}") from None
        if not info.id or info.capacity < 0:
            raise BadNodeInfo("bad node record: empty id or negative capacity")
        return info


Restarted = Callable[[NodeInfo], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Load:
    hosted: int
    load: int
    draining: bool


class NodeRegistry:
    def __init__(
        self,
        redis: Redis,
        node_id: str,
        address: str,
        capacity: int,
        *,
        prefix: str = "proctor:",
        interval: float = HEARTBEAT_SECONDS,
        ttl: float = NODE_TTL_SECONDS,
        load: Callable[[], Load] | None = None,
    ) -> None:
        self.redis = redis
        self.node_id = node_id
        self.address = address
        self.capacity = capacity
        self.prefix = prefix
        self.interval = interval
        self.ttl = ttl
        # What this node reports with each heartbeat (rooms hosted, sessions, draining).
        self.load: Callable[[], Load] = load if load is not None else (lambda: Load(0, 0, False))
        self.on_tick: list[Tick] = []
        self.on_resync: list[Tick] = []
        self.on_lost: list[NodeLost] = []
        self.on_restarted: list[Restarted] = []
        self.incarnation = secrets.token_hex(8)
        self.nodes: dict[str, NodeInfo] = {}
        # The last record seen of each node reaped by this one, for as long as its clean-up runs.
        self.departed: dict[str, NodeInfo] = {}
        self.healthy = False
        self.beats = 0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False

    def key(self, node_id: str) -> str:
        return f"{self.prefix}node:{node_id}"

    @property
    def nodes_key(self) -> str:
        return f"{self.prefix}nodes"

    def live(self) -> frozenset[str]:
        return frozenset(self.nodes)

    def info(self) -> NodeInfo:
        load = self.load()
        return NodeInfo(
            id=self.node_id,
            address=self.address,
            capacity=self.capacity,
            hosted=load.hosted,
            load=load.load,
            draining=load.draining,
            seen_at=time.time(),
            incarnation=self.incarnation,
        )

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="node-registry")

    def wake(self) -> None:
        """Beat now rather than at the next interval (e.g. draining just started)."""
        self._wake.set()

    async def stop(self) -> None:
        # The flag ends the loop at its next turn even if a cancellation is swallowed
        # inside a beat (core/tasks.py).
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        await stop_task(task)

    async def leave(self) -> None:
        """Forget this node at once (graceful exit): the others reap it at their next beat."""
        try:
            await self.redis.delete(self.key(self.node_id))
        except Exception as exc:
            logger.warning("registry: could not remove %s on exit: %s", self.node_id, exc)

    async def _run(self) -> None:
        backoff = self.interval
        while not self._stopping:
            try:
                await self.beat()
                backoff = self.interval
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.healthy:
                    logger.warning("registry: Redis unreachable (%s); retrying", exc)
                self.healthy = False
                backoff = min(backoff * 2, 5.0)
            self._wake.clear()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that arrives as the event is set (the drain wakes us), and
            # stop() would then wait for ever.
            try:
                async with asyncio.timeout(self.interval if self.healthy else backoff):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def beat(self) -> None:
        """One heartbeat: publish our record, read everyone's, reap the dead, run the ticks."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(self.key(self.node_id), self.info().to_json(), px=int(self.ttl * 1000), get=True)
            pipe.sadd(self.nodes_key, self.node_id)
            pipe.smembers(self.nodes_key)
            previous, _, members = await pipe.execute()
        ids = sorted(_text(m) for m in members)
        raw = await self.redis.mget([self.key(i) for i in ids]) if ids else []
        nodes: dict[str, NodeInfo] = {}
        missing: list[str] = []
        for node_id, value in zip(ids, raw, strict=True):
            if value is None:
                missing.append(node_id)
                continue
            try:
                nodes[node_id] = NodeInfo.from_json(value)
            except BadNodeInfo as exc:
                logger.warning("registry: ignoring node %s: %s", node_id, exc)
        departed = {i: self.nodes[i] for i in missing if i in self.nodes}
        self.nodes = nodes
        was_healthy, self.healthy = self.healthy, True
        if not was_healthy and self.beats:
            logger.info("registry: Redis reachable again")
        self.beats += 1
        if previous is None:
            # Redis does not know us (first beat, Redis restarted, or we were too slow):
            # everything we own in Redis must be written again.
            await self._call_all(self.on_resync, "resync")
        else:
            await self._restarted(previous)
        for node_id in missing:
            if node_id != self.node_id and await self.redis.srem(self.nodes_key, node_id):
                logger.warning("registry: node %s is gone; its rooms and students move", node_id)
                if node_id in departed:
                    self.departed[node_id] = departed[node_id]
                for lost in self.on_lost:
                    try:
                        await lost(node_id)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        logger.exception("registry: clean-up after %s failed", node_id)
                self.departed.pop(node_id, None)
        await self._call_all(self.on_tick, "tick")

    async def _restarted(self, previous: Any) -> None:
        """Our id's record was there but another process wrote it: that process died (a
        supervisor restarted us faster than its record expired), and nobody will reap it."""
        try:
            before = NodeInfo.from_json(previous)
        except BadNodeInfo:
            return
        if not before.incarnation or before.incarnation == self.incarnation:
            return
        logger.warning(
            "registry: %s restarted; the previous process (last beat %.1fs ago) died unseen",
            self.node_id,
            time.time() - before.seen_at,
        )
        for call in self.on_restarted:
            try:
                await call(before)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("registry: clean-up after the previous %s failed", self.node_id)

    async def _call_all(self, calls: list[Tick], what: str) -> None:
        for call in calls:
            try:
                await call()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("registry: %s %s failed", what, getattr(call, "__qualname__", call))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
