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
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast, get_args

from redis.asyncio import Redis

from rooms.protocols import PresenceState, PresenceWrite

from .registry import NodeRegistry, _text

logger = logging.getLogger(__name__)

STATES: frozenset[str] = frozenset(get_args(PresenceState))
_KEEP_MS = 24 * 3600 * 1000

# `away` (ms) is when the attempt left `online`: set by the first reconnecting/offline write,
# kept by the next ones, handed back (and cleared) by the `online` write that ends it, so
# the node a student comes back to records the network gap even if another node saw it begin.
# ARGV: prefix, room, attempt, state, node, now_ms, keep_ms  ->  {applied, away_ms or -1}
_SET = """
local p, room, attempt, state, node = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now = tonumber(ARGV[6])
local key = p .. 'presence:' .. room
local member = room .. ' ' .. attempt
local raw = redis.call('HGET', key, attempt)
local was_away = nil
if raw then
  local cur = cjson.decode(raw)
  if cur.state == 'submitted' and state ~= 'submitted' then return {0, -1} end
  if (state == 'reconnecting' or state == 'offline') and cur.node ~= node and cur.state == 'online' then
    return {0, -1}
  end
  if cur.node ~= node then redis.call('SREM', p .. 'presence-node:' .. cur.node, member) end
  if cur.state == 'reconnecting' or cur.state == 'offline' then was_away = tonumber(cur.away or cur.at) end
end
local entry = {state = state, node = node, at = now}
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
if state == 'online' and was_away then return {1, was_away} end
return {1, -1}
"""

# A lost node's students: online -> `to_state` (reconnecting, then offline after the grace).
# ARGV: prefix, lost node, from_state, to_state, now_ms  -> flat list room, attempt, ...
_REAP = """
local p, lost, from_state, to_state = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now = tonumber(ARGV[5])
local set_key = p .. 'presence-node:' .. lost
local changed = {}
for _, member in ipairs(redis.call('SMEMBERS', set_key)) do
  local sp = string.find(member, ' ', 1, true)
  local room, attempt = string.sub(member, 1, sp - 1), string.sub(member, sp + 1)
  local key = p .. 'presence:' .. room
  local raw = redis.call('HGET', key, attempt)
  if raw then
    local cur = cjson.decode(raw)
    if cur.node == lost and cur.state == from_state then
      -- the node died unseen: its students are away from now on (or since they left it)
      local away = now
      if from_state ~= 'online' then away = tonumber(cur.away or cur.at) end
      redis.call('HSET', key, attempt, cjson.encode({state = to_state, node = lost, at = now, away = away}))
      table.insert(changed, room)
      table.insert(changed, attempt)
    end
  end
end
if to_state == 'offline' then redis.call('DEL', set_key) end
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

    async def set(self, room_id: str, attempt_id: str, state: PresenceState) -> PresenceWrite:
        if state in ("online", "reconnecting"):
            self._mine[attempt_id] = (room_id, state)
        else:
            self._mine.pop(attempt_id, None)
        result: Any = await self._set(args=[
            self.prefix, room_id, attempt_id, state, self.node_id, _now_ms(), _KEEP_MS,
        ])
        applied, away_ms = int(result[0]), int(result[1])
        return PresenceWrite(bool(applied), away_ms / 1000 if away_ms >= 0 else None)

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
            await self._set(args=[self.prefix, room_id, attempt_id, state, self.node_id, _now_ms(), _KEEP_MS])

    async def reap(self, node_id: str) -> None:
        changed = await self._reap_step(node_id, "online", "reconnecting")
        if changed or await self.redis.exists(f"{self.prefix}presence-node:{node_id}"):
            # After the grace period, whoever has not reconnected elsewhere is offline.
            task = asyncio.get_running_loop().create_task(self._offline_later(node_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _offline_later(self, node_id: str) -> None:
        await asyncio.sleep(self.grace)
        try:
            await self._reap_step(node_id, "reconnecting", "offline")
        except Exception:
            logger.exception("presence: could not mark %s's students offline", node_id)

    async def _reap_step(self, node_id: str, from_state: str, to_state: PresenceState) -> int:
        flat: Any = await self._reap(args=[self.prefix, node_id, from_state, to_state, _now_ms()])
        items = [_text(x) for x in flat]
        for room_id, attempt_id in zip(items[::2], items[1::2]):
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
