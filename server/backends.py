"""Which implementation of each seam a node uses: in-process alone, Redis in a cluster.

`create_app` calls `backends_ctx` first among the live resources; everything that crosses
nodes (presence, placement, Socket.IO delivery, attempt-state changes) comes from here.
Without `PROCTOR_REDIS_URL` nothing here touches the network. With it (docs/cluster.md):
the node registry heartbeats in Redis, placement leases rooms there, presence lives there,
Socket.IO emits cross nodes on per-room channels, an attempt changed on one node is
dropped from the other nodes' caches, and analysis offers go to the room's host node.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis

from rooms.cluster.registry import NodeRegistry
from rooms.placement import LocalPlacement
from rooms.presence import LocalPresence
from rooms.protocols import Notifier, Placement, Presence, PresenceState
from signaling.analysis_relay import LocalAnalysis, RedisAnalysisRelay
from rooms.cluster.placement import RedisPlacement
from rooms.cluster.presence import RedisPresence
from signaling.room_bus import Mode, RoomChannelManager

from .keys import BACKENDS
from .settings import Settings

if TYPE_CHECKING:
    from rooms.attempts import AttemptService

logger = logging.getLogger(__name__)

# redis-py's asyncio pool fails at once when all connections are busy ("Cannot publish to
# redis" under load); a blocking pool waits for one instead.
_REDIS_POOL_SIZE = 64


@dataclass
class Cluster:
    redis: Redis
    registry: NodeRegistry
    placement: RedisPlacement
    presence: RedisPresence
    manager: RoomChannelManager

    async def start(self) -> None:
        self.manager.start()
        try:
            # Register before serving, so placement sees this node from its first join.
            await asyncio.wait_for(self.registry.beat(), timeout=5)
        except Exception as exc:
            logger.error("cluster: Redis unreachable at start-up (%s); retrying in the background", exc)
        self.registry.start()
        logger.info("cluster: node %s registered (%d live)", self.registry.node_id, len(self.registry.nodes))

    async def stop(self) -> None:
        await self.placement.handover()
        await self.registry.stop()
        await self.registry.leave()
        self.presence.close()
        await self.manager.stop()
        await self.redis.aclose()


@dataclass
class Backends:
    presence: Presence
    placement: Placement
    # python-socketio client manager (None = in-process); see docs/cluster.md.
    client_manager: Any = None
    cluster: Cluster | None = field(default=None)

    def bind(self, attempts: AttemptService, notifier: Notifier,
             resync: Callable[[str], Awaitable[None]] | None = None) -> None:
        """Connect the live services to the cluster (nothing to do on a single node).
        `resync(reason)` tells this node's teachers to re-read after pub/sub lost messages."""
        cluster = self.cluster
        if cluster is None:
            return
        cluster.manager.on_resync = resync
        # A control on another node changed the attempt: drop our cached copy.
        cluster.manager.on_attempt_changed = attempts.forget
        attempts.on_change = cluster.manager.attempt_changed

        async def lost(room_id: str, attempt_id: str, state: PresenceState) -> None:
            await notifier.teachers(room_id, "presence", {"attempt_id": attempt_id, "presence": state})

        cluster.presence.on_lost = lost

        async def placed(room_id: str, host: str) -> None:
            # The room moved (or is new): analysis peers on its old host are closed there
            # (RedisAnalysisRelay.sweep), so its students offer again, to the new host.
            await notifier.room_students(room_id, "rtc", {"target": "server", "type": "bye", "reason": "host_changed"})

        cluster.placement.on_placed.append(placed)

    def analysis_relay(self, local: LocalAnalysis | None, attempts: AttemptService) -> RedisAnalysisRelay | None:
        """The room's host answers analysis offers (a cluster), or None: this node does."""
        cluster = self.cluster
        if cluster is None:
            return None
        placement = cluster.placement

        async def room_of(attempt_id: str) -> str:
            return (await attempts.attempt(attempt_id)).room_id

        return RedisAnalysisRelay(
            cluster.redis, placement.node_id, local=local, room_of=room_of,
            host_of=placement.current_host, holder_of=placement.holder,
            accepting=lambda: not placement.draining, prefix=placement.prefix,
        )


def local_backends(settings: Settings) -> Backends:
    return Backends(
        presence=LocalPresence(),
        placement=LocalPlacement(settings.node_id, settings.rooms_per_node),
    )


def redis_client(url: str) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url, max_connections=_REDIS_POOL_SIZE, timeout=5, socket_timeout=5,
        socket_connect_timeout=2, health_check_interval=10,
    )
    # The client owns its pool, so closing it at stop closes the connections too (a pool given
    # to Redis() is left to the garbage collector, which warns about each open TLS transport).
    return Redis.from_pool(pool)


def redis_backends(settings: Settings) -> Backends:
    redis = redis_client(settings.redis_url)
    registry = NodeRegistry(redis, settings.node_id, f"{settings.host}:{settings.port}", settings.rooms_per_node)
    placement = RedisPlacement(redis, registry)
    presence = RedisPresence(redis, registry, grace_seconds=settings.reconnect_grace_seconds)
    mode: Mode = "single" if settings.redis_channels == "single" else "room"
    manager = RoomChannelManager(redis, mode=mode)
    registry.load = lambda: placement.load(manager.local_sessions())
    cluster = Cluster(redis, registry, placement, presence, manager)
    return Backends(presence=presence, placement=placement, client_manager=manager, cluster=cluster)


def create_backends(settings: Settings) -> Backends:
    """Build (not start) the backends; Redis ones when PROCTOR_REDIS_URL is set."""
    if settings.redis_url:
        return redis_backends(settings)
    return local_backends(settings)


async def backends_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start and stop whatever the backends need (Redis connections, heartbeats)."""
    cluster = app[BACKENDS].cluster
    if cluster is None:
        yield
        return
    await cluster.start()
    _export_metrics(app, cluster)
    try:
        yield
    finally:
        await cluster.stop()


def _export_metrics(app: web.Application, cluster: Cluster) -> None:
    from prometheus_client import Gauge

    from .keys import METRICS

    registry = app[METRICS].registry
    manager = cluster.manager
    messages = Gauge("proctor_redis_messages", "Room-bus messages since start, by direction",
                     ["direction"], registry=registry)
    messages.labels("published").set_function(lambda: manager.published)
    messages.labels("received").set_function(lambda: manager.received)
    messages.labels("dropped").set_function(lambda: manager.dropped)
    Gauge("proctor_redis_resyncs", "Times this node told its teachers to re-read after pub/sub lost messages",
          registry=registry).set_function(lambda: manager.resyncs)
    Gauge("proctor_redis_subscriptions", "Redis channels this node listens to",
          registry=registry).set_function(manager.subscriptions)
    Gauge("proctor_cluster_nodes", "Live nodes in the registry",
          registry=registry).set_function(lambda: len(cluster.registry.nodes))
