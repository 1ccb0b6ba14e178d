"""Room placement across nodes in Redis: one host per room under a renewed lease.

Keys (prefix `proctor:`):
  lease:{room}     node id of the room's host, PX `lease_seconds`, renewed by the host
  hosted:{node}    set of rooms a node hosts (what placement counts against its capacity)
  interest:{room}  zset node -> expiry (ms) of every node with participants in the room

`acquire` is one Lua script, so concurrent joins to a new room on many nodes agree on one
host: the first script to run places the room, the others read its lease. A lease whose
holder has left the registry is void at once (no need to wait for it to expire). The host
keeps a room while any live node is interested in it, then releases it; a draining node
releases all of its rooms, and the interested nodes place them again at their next tick.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from rooms.errors import NoCapacity, Unavailable

from .registry import Load, NodeRegistry, _text

logger = logging.getLogger(__name__)

LEASE_SECONDS = 6.0

Placed = Callable[[str, str], Awaitable[None]]

# KEYS: none (the keys depend on what is read; a single Redis, not Redis Cluster)
# ARGV: prefix, room, requester, now_ms, lease_ms, interest_ms
_ACQUIRE = """
local p, room, me = ARGV[1], ARGV[2], ARGV[3]
local now, lease_ms, interest_ms = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local lease_key = p .. 'lease:' .. room
local interest_key = p .. 'interest:' .. room
redis.call('ZADD', interest_key, now + interest_ms, me)
redis.call('PEXPIRE', interest_key, interest_ms)
local holder = redis.call('GET', lease_key)
if holder then
  if redis.call('EXISTS', p .. 'node:' .. holder) == 1 then
    return {'held', holder}
  end
  -- the holder left the registry: its lease is void
  redis.call('DEL', lease_key)
  redis.call('SREM', p .. 'hosted:' .. holder, room)
end
local best, best_fill, best_load, best_free
for _, node in ipairs(redis.call('SMEMBERS', p .. 'nodes')) do
  local raw = redis.call('GET', p .. 'node:' .. node)
  if raw then
    local info = cjson.decode(raw)
    if not info.draining and info.capacity > 0 then
      local count = redis.call('SCARD', p .. 'hosted:' .. node)
      if count < info.capacity then
        local fill = count / info.capacity
        local better = best == nil or fill < best_fill
          or (fill == best_fill and info.load < best_load)
          or (fill == best_fill and info.load == best_load and node == me)
        if better then
          best, best_fill, best_load = node, fill, info.load
        end
      end
    end
  end
end
if not best then
  return {'full', ''}
end
redis.call('SET', lease_key, best, 'PX', lease_ms)
redis.call('SADD', p .. 'hosted:' .. best, room)
redis.call('PEXPIRE', p .. 'hosted:' .. best, lease_ms)
return {'placed', best}
"""

# The host's renewal: keep the leases still ours, let go of rooms nobody is interested in.
# ARGV: prefix, node, now_ms, lease_ms, releasing (1 = hand every room over)
_RENEW = """
local p, me = ARGV[1], ARGV[2]
local now, lease_ms, releasing = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5] == '1'
local hosted_key = p .. 'hosted:' .. me
local kept = {}
for _, room in ipairs(redis.call('SMEMBERS', hosted_key)) do
  local lease_key = p .. 'lease:' .. room
  local interest_key = p .. 'interest:' .. room
  redis.call('ZREMRANGEBYSCORE', interest_key, '-inf', now)
  local ours = redis.call('GET', lease_key) == me
  if ours and not releasing and redis.call('ZCARD', interest_key) > 0 then
    redis.call('PEXPIRE', lease_key, lease_ms)
    table.insert(kept, room)
  else
    if ours then redis.call('DEL', lease_key) end
    redis.call('SREM', hosted_key, room)
  end
end
if #kept > 0 then redis.call('PEXPIRE', hosted_key, lease_ms) end
return kept
"""

# Re-assert a lease after Redis lost it (restart): only if nobody took the room meanwhile.
# ARGV: prefix, node, lease_ms, rooms...
_REASSERT = """
local p, me, lease_ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
local kept = {}
for i = 4, #ARGV do
  local room = ARGV[i]
  local ok = redis.call('SET', p .. 'lease:' .. room, me, 'PX', lease_ms, 'NX')
  if ok or redis.call('GET', p .. 'lease:' .. room) == me then
    redis.call('SADD', p .. 'hosted:' .. me, room)
    table.insert(kept, room)
  end
end
if #kept > 0 then redis.call('PEXPIRE', p .. 'hosted:' .. me, lease_ms) end
return kept
"""

# Drop our interest in a room; release its lease if we host it and nobody else is interested.
# ARGV: prefix, node, room, now_ms
_RELEASE = """
local p, me, room, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local interest_key = p .. 'interest:' .. room
redis.call('ZREM', interest_key, me)
redis.call('ZREMRANGEBYSCORE', interest_key, '-inf', now)
if redis.call('GET', p .. 'lease:' .. room) == me and redis.call('ZCARD', interest_key) == 0 then
  redis.call('DEL', p .. 'lease:' .. room)
  redis.call('SREM', p .. 'hosted:' .. me, room)
  return 1
end
return 0
"""


class RedisPlacement:
    """rooms.protocols.Placement for a cluster; `tick()` runs on the registry's heartbeat."""

    def __init__(
        self,
        redis: Redis,
        registry: NodeRegistry,
        *,
        lease_seconds: float = LEASE_SECONDS,
        retry_after: float = 30,
        on_placed: Sequence[Placed] = (),
    ) -> None:
        self.redis = redis
        self.registry = registry
        self.node_id = registry.node_id
        self.capacity = registry.capacity
        self.prefix = registry.prefix
        self.lease_ms = int(lease_seconds * 1000)
        # Interest outlives a few missed beats, and no more: a dead node's interest must
        # not keep a room hosted for long.
        self.interest_ms = int(max(registry.ttl, 3 * registry.interval) * 1000)
        self.retry_after = retry_after
        self._draining = False
        self._interest: set[str] = set()
        self._hosts: dict[str, str] = {}
        self._hosted: set[str] = set()
        self._counts: dict[str, int] = {}  # rooms per live node, as of the last tick
        self._homeless: set[str] = set()
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._reassert = redis.register_script(_REASSERT)
        self._release = redis.register_script(_RELEASE)
        self.placed = 0
        # Told (room, new host) when this node places a room on another host than the one
        # it knew: a new room, or one that moved (its host died, drained or lost the lease).
        self.on_placed: list[Placed] = list(on_placed)
        registry.on_tick.append(self.tick)
        registry.on_resync.append(self.resync)
        registry.on_lost.append(self._node_lost)

    # -- the Placement protocol ------------------------------------------------------------

    @property
    def draining(self) -> bool:
        return self._draining

    @draining.setter
    def draining(self, value: bool) -> None:
        if value and not self._draining:
            logger.info("placement: %s is draining; handing its rooms over", self.node_id)
            self.registry.wake()
        self._draining = value

    def can_open(self) -> bool:
        nodes = self.registry.nodes
        if not nodes:
            # No view of the cluster yet (start-up, Redis away): let acquire decide.
            return not self._draining
        return any(
            not info.draining and self._counts.get(node_id, info.hosted) < info.capacity
            for node_id, info in nodes.items()
            if not (node_id == self.node_id and self._draining)
        )

    async def acquire(self, room_id: str) -> str:
        host = self._hosts.get(room_id)
        info = self.registry.nodes.get(host) if host is not None else None
        if host is not None and room_id in self._interest and info is not None and not info.draining:
            return host
        try:
            status, host = await self._place(room_id)
        except RedisError as exc:
            if host is not None:
                return host  # Redis is away; the room keeps the host we knew
            raise Unavailable(
                f"room placement is unavailable ({type(exc).__name__})", code="unavailable", retry_after=2
            ) from None
        if status == "full":
            raise NoCapacity(
                "every node hosts all the rooms it can; try again shortly",
                code="capacity",
                retry_after=self.retry_after,
            )
        self._interest.add(room_id)
        return host

    async def release(self, room_id: str) -> None:
        self._interest.discard(room_id)
        self._hosts.pop(room_id, None)
        try:
            released = await self._release(args=[self.prefix, self.node_id, room_id, _now_ms()])
        except RedisError as exc:
            logger.warning("placement: could not release %s (%s); its lease will expire", room_id, exc)
            return
        if released:
            self._hosted.discard(room_id)

    def hosted(self) -> frozenset[str]:
        return frozenset(self._hosted)

    # -- cluster upkeep ----------------------------------------------------------------------

    def load(self, sockets: int) -> Load:
        return Load(hosted=len(self._hosted), load=sockets, draining=self._draining)

    def host_of(self, room_id: str) -> str | None:
        return self._hosts.get(room_id)

    async def holder(self, room_id: str) -> str | None:
        """The room's lease holder as Redis has it now (None: no lease)."""
        value = await self.redis.get(f"{self.prefix}lease:{room_id}")
        return _text(value) if value is not None else None

    async def current_host(self, room_id: str) -> str | None:
        """The room's host without placing it: the one this node knows while it is live and
        not draining, else the lease holder in Redis (for rooms this node takes no part in)."""
        host = self._hosts.get(room_id)
        info = self.registry.nodes.get(host) if host is not None else None
        if info is not None and not info.draining:
            return host
        return await self.holder(room_id)

    async def _place(self, room_id: str) -> tuple[str, str]:
        result: Any = await self._acquire(
            args=[
                self.prefix,
                room_id,
                self.node_id,
                _now_ms(),
                self.lease_ms,
                self.interest_ms,
            ]
        )
        status, host = _text(result[0]), _text(result[1])
        previous = self._hosts.get(room_id)
        if status == "placed":
            self.placed += 1
            logger.info("placement: room %s placed on %s", room_id, host)
        if status != "full":
            self._hosts[room_id] = host
            if host == self.node_id:
                self._hosted.add(room_id)
        if status == "placed" and previous != host:
            await self._tell_placed(room_id, host)
        return status, host

    async def _tell_placed(self, room_id: str, host: str) -> None:
        for call in self.on_placed:
            try:
                await call(room_id, host)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("placement: on_placed for %s failed", room_id)

    async def tick(self) -> None:
        """Renew our leases, and make sure every room we take part in has a live host."""
        kept: Any = await self._renew(
            args=[
                self.prefix,
                self.node_id,
                _now_ms(),
                self.lease_ms,
                "1" if self._draining else "0",
            ]
        )
        self._hosted = {_text(r) for r in kept}
        # A draining node's participants are leaving: it no longer places their rooms.
        for room_id in [] if self._draining else list(self._interest):
            status, _ = await self._place(room_id)
            if status == "full":
                if room_id not in self._homeless:
                    logger.warning("placement: room %s has no host: every node is full", room_id)
                self._homeless.add(room_id)
                self._hosts.pop(room_id, None)
            else:
                self._homeless.discard(room_id)
        # Exact room counts for can_open (a node's own record lags its placements by a beat).
        live = sorted(self.registry.nodes)
        if live:
            async with self.redis.pipeline(transaction=False) as pipe:
                for node_id in live:
                    pipe.scard(f"{self.prefix}hosted:{node_id}")
                counts = await pipe.execute()
            self._counts = dict(zip(live, (int(c) for c in counts), strict=True))

    async def resync(self) -> None:
        if self._hosted and not self._draining:
            kept: Any = await self._reassert(args=[self.prefix, self.node_id, self.lease_ms, *self._hosted])
            self._hosted = {_text(r) for r in kept}

    async def handover(self) -> None:
        """Release every room this node hosts (drain, shutdown): others place them again."""
        self._draining = True
        try:
            await self._renew(args=[self.prefix, self.node_id, _now_ms(), self.lease_ms, "1"])
            for room_id in list(self._interest):
                await self._release(args=[self.prefix, self.node_id, room_id, _now_ms()])
            self._interest.clear()
            self._hosts.clear()
        except RedisError as exc:
            logger.warning("placement: hand-over incomplete (%s); the leases will expire", exc)
        self._hosted.clear()

    async def _node_lost(self, node_id: str) -> None:
        # Rooms it hosted are re-placed by whoever takes part in them (acquire voids the
        # dead holder's lease); forget cached hosts pointing at it right away.
        for room_id, host in list(self._hosts.items()):
            if host == node_id:
                del self._hosts[room_id]


def _now_ms() -> int:
    return int(time.time() * 1000)
