"""Presence shared by every node through Redis, with entries that die with their node.

Keys (prefix `proctor:`):
  presence:{room}        hash attempt -> {"state", "node", "at", "away"?} (JSON, times in ms)
  presence-node:{node}   set of "room attempt" a node holds online or reconnecting

A write is a compare-and-set (one Lua script): `submitted` is final; `online` from any node
wins; `reconnecting`/`offline` apply only to the writer's own entry, so a grace timer on the
node a student left cannot mark them offline after they reconnected elsewhere. An entry
away from `online` keeps when the absence began (`away`), and the `online` write that ends
it returns that time: the node the student comes back to records the network gap. When the
registry reaps a lost node, its students become `reconnecting` at once and `offline` after
the grace period unless they came back, and teachers are told (`on_lost`).

A node that dies (SIGKILL, OOM) says nothing: its students' entries still read `online` on
it, and they are back on another node (or on the same node id, restarted) well before its
record expires. Every entry therefore carries the writer's `inc` (its process's registry
incarnation), and an `online` write that finds the attempt `online` under another process
checks whether that process still runs: its registry record names the same incarnation and
it is subscribed to its own analysis channel (`{prefix}analysis:{node}`,
signaling/analysis_relay.py: every cluster node listens there while it runs, and Redis drops
the subscription the moment the process's connections close). A dead holder means the
student was away since its last heartbeat: the write returns that time like any absence,
flagged `unseen` (teachers never heard of it), and the tracker records the same neutral
network gap a graceful reconnect records. Two live sockets of one student on two nodes (two
tabs) are not an absence. A host that vanishes without closing its connections (power loss)
is only noticed when its record expires, as before.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, cast, get_args

from redis.asyncio import Redis

from rooms.protocols import PresenceState, PresenceWrite

from .registry import NodeInfo, NodeRegistry, _text

logger = logging.getLogger(__name__)

STATES: frozenset[str] = frozenset(get_args(PresenceState))
_KEEP_MS = 24 * 3600 * 1000

# `away` (ms) is when the attempt left `online`: set by the first reconnecting/offline write,
# kept by the next ones, handed back (and cleared) by the `online` write that ends it, so
# the node a student comes back to records the network gap even if another node saw it begin.
# An `online` entry of another process that is dead counts as an absence since that
# process's last heartbeat (`unseen` = 1; see the module docstring).
# ARGV: prefix, room, attempt, state, node, now_ms, keep_ms, incarnation, node_ttl_ms
#   ->  {applied, away_ms or -1, unseen}
_SET = """
local p, room, attempt, state, node = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, inc, ttl = tonumber(ARGV[6]), ARGV[8], tonumber(ARGV[9])
local key = p .. 'presence:' .. room
local member = room .. ' ' .. attempt

-- When the process holding `cur` died, or nil while it runs (or cannot be told).
local function holder_died(cur)
  if not cur.inc or cur.inc == '' then return nil end
  local rec = redis.call('GET', p .. 'node:' .. cur.node)
  if rec then
    local info = cjson.decode(rec)
    if info.incarnation == cur.inc then
      if redis.call('PUBSUB', 'NUMSUB', p .. 'analysis:' .. cur.node)[2] > 0 then return nil end
      return math.floor(tonumber(info.seen_at) * 1000)
    end
  end
  -- no record (expired: the last beat was at least a ttl ago) or another process's
  return math.max(tonumber(cur.at), now - ttl)
end

local raw = redis.call('HGET', key, attempt)
local was_away, unseen = nil, 0
if raw then
  local cur = cjson.decode(raw)
  if cur.state == 'submitted' and state ~= 'submitted' then return {0, -1, 0} end
  if (state == 'reconnecting' or state == 'offline') and cur.node ~= node and cur.state == 'online' then
    return {0, -1, 0}
  end
  if cur.node ~= node then redis.call('SREM', p .. 'presence-node:' .. cur.node, member) end
  if cur.state == 'reconnecting' or cur.state == 'offline' then
    was_away = tonumber(cur.away or cur.at)
  elseif state == 'online' and cur.state == 'online' and (cur.node ~= node or cur.inc ~= inc) then
    was_away = holder_died(cur)
    if was_away then unseen = 1 end
  end
end
local entry = {state = state, node = node, at = now, inc = inc}
if state == 'reconnecting' or state == 'offline' then entry.away = was_away or now end
redis.call('HSET', key, attempt, cjson.encode(entry))
redis.call('PEXPIRE', key, ARGV[7])
local mine = p .. 'presence-node:' .. node
if state == 'online' or state == 'reconnecting' then
  redis.call('SADD', mine, member)
  redis.call('PEXPIRE', mine, ARGV[7])
else
  redis.call('SREM', mine, member)
end
if state == 'online' and was_away then return {1, was_away, unseen} end
return {1, -1, 0}
"""

# A lost node's students: online -> `to_state` (reconnecting, then offline after the grace).
# `inc` (or '' for any) limits it to one process of that node id (a restarted node reaps
# what its previous process left); `away_ms` (or -1: now) is when it was last seen.
# ARGV: prefix, lost node, from_state, to_state, now_ms, inc, away_ms  -> flat list room, attempt, ...
_REAP = """
local p, lost, from_state, to_state = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, inc, seen = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local set_key = p .. 'presence-node:' .. lost
local changed = {}
local kept = 0
for _, member in ipairs(redis.call('SMEMBERS', set_key)) do
  local sp = string.find(member, ' ', 1, true)
  local room, attempt = string.sub(member, 1, sp - 1), string.sub(member, sp + 1)
  local key = p .. 'presence:' .. room
  local raw = redis.call('HGET', key, attempt)
  if raw then
    local cur = cjson.decode(raw)
    if inc ~= '' and cur.inc ~= inc then
      kept = kept + 1
    elseif cur.node == lost and cur.state == from_state then
      -- the node died unseen: its students are away since it was last seen (or since they left it)
      local away = now
      if seen >= 0 then away = seen end
      if from_state ~= 'online' then away = tonumber(cur.away or cur.at) end
      redis.call('HSET', key, attempt, cjson.encode({state = to_state, node = lost, at = now, away = away,
                                                      inc = cur.inc}))
      if to_state == 'offline' then redis.call('SREM', set_key, member) end
      table.insert(changed, room)
      table.insert(changed, attempt)
    end
  end
end
if to_state == 'offline' and kept == 0 then redis.call('DEL', set_key) end
return changed
"""

Lost = Callable[[str, str, PresenceState], Awaitable[None]]


class RedisPresence:
    """rooms.protocols.Presence for a cluster."""

    def __init__(
        self, redis: Redis, registry: NodeRegistry, *, grace_seconds: float, on_lost: Lost | None = None
    ) -> None:
        self.redis = redis
        self.registry = registry
        self.node_id = registry.node_id
        self.prefix = registry.prefix
        self.grace = grace_seconds
        # Teachers are told of students a lost node left behind (reconnecting, then offline).
        self.on_lost = on_lost
        self._set = redis.register_script(_SET)
        self._reap = redis.register_script(_REAP)
        # What this node holds, to write again if Redis loses it (restart).
        self._mine: dict[str, tuple[str, PresenceState]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        registry.on_resync.append(self.resync)
        registry.on_lost.append(self.reap)
        registry.on_restarted.append(self.reap_previous)

    async def set(self, room_id: str, attempt_id: str, state: PresenceState) -> PresenceWrite:
        if state in ("online", "reconnecting"):
            self._mine[attempt_id] = (room_id, state)
        else:
            self._mine.pop(attempt_id, None)
        result: Any = await self._write(room_id, attempt_id, state)
        applied, away_ms, unseen = int(result[0]), int(result[1]), int(result[2])
        return PresenceWrite(bool(applied), away_ms / 1000 if away_ms >= 0 else None, unseen=bool(unseen))

    async def _write(self, room_id: str, attempt_id: str, state: PresenceState) -> Any:
        return await self._set(
            args=[
                self.prefix,
                room_id,
                attempt_id,
                state,
                self.node_id,
                _now_ms(),
                _KEEP_MS,
                self.registry.incarnation,
                int(self.registry.ttl * 1000),
            ]
        )

    async def room(self, room_id: str) -> dict[str, PresenceState]:
        raw: dict[Any, Any] = await self.redis.hgetall(f"{self.prefix}presence:{room_id}")
        states: dict[str, PresenceState] = {}
        for attempt, value in raw.items():
            state = _parse_state(value)
            if state is not None:
                states[_text(attempt)] = state
        return states

    async def resync(self) -> None:
        for attempt_id, (room_id, state) in list(self._mine.items()):
            await self._write(room_id, attempt_id, state)

    async def reap(self, node_id: str) -> None:
        last = self.registry.departed.get(node_id)
        seen_ms = int(last.seen_at * 1000) if last is not None else -1
        changed = await self._reap_step(node_id, "online", "reconnecting", seen_ms=seen_ms)
        if changed or await self.redis.exists(f"{self.prefix}presence-node:{node_id}"):
            self._later(self._offline_later(node_id, ""))

    async def reap_previous(self, previous: NodeInfo) -> None:
        """Our node id's previous process died unseen (we were restarted before its record
        expired): its students are reconnecting since its last beat, then offline."""
        await self._reap_step(
            self.node_id, "online", "reconnecting", inc=previous.incarnation, seen_ms=int(previous.seen_at * 1000)
        )
        self._later(self._offline_later(self.node_id, previous.incarnation))

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _offline_later(self, node_id: str, inc: str) -> None:
        # After the grace period, whoever has not reconnected elsewhere is offline.
        await asyncio.sleep(self.grace)
        try:
            await self._reap_step(node_id, "reconnecting", "offline", inc=inc)
        except Exception:
            logger.exception("presence: could not mark %s's students offline", node_id)

    async def _reap_step(
        self, node_id: str, from_state: str, to_state: PresenceState, *, inc: str = "", seen_ms: int = -1
    ) -> int:
        flat: Any = await self._reap(args=[self.prefix, node_id, from_state, to_state, _now_ms(), inc, seen_ms])
        items = [_text(x) for x in flat]
        for room_id, attempt_id in zip(items[::2], items[1::2], strict=True):
            if self.on_lost is not None:
                await self.on_lost(room_id, attempt_id, to_state)
        return len(items) // 2

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()


def _parse_state(raw: Any) -> PresenceState | None:
    try:
        state = json.loads(raw)["state"]
    except (ValueError, KeyError, TypeError):
        logger.warning("presence: ignoring a malformed entry %r", raw)
        return None
    if state not in STATES:
        return None
    return cast(PresenceState, state)


def _now_ms() -> int:
    return int(time.time() * 1000)
