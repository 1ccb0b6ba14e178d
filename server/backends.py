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
from typing import Any

from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis

from rooms.cluster.placement import Placed, RedisPlacement
from rooms.cluster.presence import Lost, RedisPresence
from rooms.cluster.registry import Load, NodeRegistry
from rooms.placement import LocalPlacement
from rooms.presence import LocalPresence
from rooms.protocols import Placement, Presence
from signaling.room_bus import Mode, RoomChannelManager

from .keys import METRICS
from .settings import Settings

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


def local_backends(settings: Settings) -> Backends:
    return Backends(
        presence=LocalPresence(),
        placement=LocalPlacement(settings.node_id, settings.rooms_per_node),
    )


def redis_client(url: str) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=_REDIS_POOL_SIZE,
        timeout=5,
        socket_timeout=5,
        socket_connect_timeout=2,
        health_check_interval=10,
    )
    # The client owns its pool, so closing it at stop closes the connections too (a pool given
    # to Redis() is left to the garbage collector, which warns about each open TLS transport).
    return Redis.from_pool(pool)


@dataclass
class ClusterParts:
    """The first half of a cluster's backends: what the Socket.IO server needs (its Redis
    manager). `finish` builds the rest once the notifier they report to exists."""

    settings: Settings
    redis: Redis
    manager: RoomChannelManager

    def finish(self, *, on_lost: Lost, on_placed: Placed) -> Backends:
        settings, redis, manager = self.settings, self.redis, self.manager

        def load() -> Load:
            # Asked at each heartbeat; `placement` is built on the next line.
            return placement.load(manager.local_sessions())

        registry = NodeRegistry(
            redis, settings.node_id, f"{settings.host}:{settings.port}", settings.rooms_per_node, load=load
        )
        placement = RedisPlacement(redis, registry, on_placed=[on_placed])
        presence = RedisPresence(redis, registry, grace_seconds=settings.reconnect_grace_seconds, on_lost=on_lost)
        cluster = Cluster(redis, registry, placement, presence, manager)
        return Backends(presence=presence, placement=placement, client_manager=manager, cluster=cluster)


def cluster_parts(settings: Settings, *, on_attempt_changed: Callable[[str], Awaitable[None]]) -> ClusterParts:
    """Redis and the room bus for a cluster (PROCTOR_REDIS_URL set); nothing connects yet."""
    redis = redis_client(settings.redis_url.get_secret_value())
    mode: Mode = "single" if settings.redis_channels == "single" else "room"
    manager = RoomChannelManager(redis, mode=mode, on_attempt_changed=on_attempt_changed)
    return ClusterParts(settings, redis, manager)


BACKENDS: web.AppKey[Backends] = web.AppKey("backends")


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

    registry = app[METRICS].registry
    manager = cluster.manager
    messages = Gauge(
        "proctor_redis_messages", "Room-bus messages since start, by direction", ["direction"], registry=registry
    )
    messages.labels("published").set_function(lambda: manager.published)
    messages.labels("received").set_function(lambda: manager.received)
    messages.labels("dropped").set_function(lambda: manager.dropped)
    Gauge(
        "proctor_redis_resyncs",
        "Times this node told its teachers to re-read after pub/sub lost messages",
        registry=registry,
    ).set_function(lambda: manager.resyncs)
    Gauge("proctor_redis_subscriptions", "Redis channels this node listens to", registry=registry).set_function(
        manager.subscriptions
    )
    Gauge("proctor_cluster_nodes", "Live nodes in the registry", registry=registry).set_function(
        lambda: len(cluster.registry.nodes)
    )
    # step 9 (ops): 0 while the bus cannot listen on or publish to Redis (alert ProctorRedisBusDown).
    Gauge(
        "proctor_redis_bus_up", "1 while the room bus listens on and publishes to Redis", registry=registry
    ).set_function(lambda: 0 if manager._pubsub is None or manager._unpublished else 1)
