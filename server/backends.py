"""Which implementation of each seam a node uses: in-process alone, Redis in a cluster.

`create_app` calls `backends_ctx` first among the live resources; everything that crosses
nodes (presence, placement, Socket.IO delivery, attempt-state changes) comes from here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from rooms.placement import LocalPlacement
from rooms.presence import LocalPresence
from rooms.protocols import Placement, Presence

from .settings import Settings


@dataclass
class Backends:
    presence: Presence
    placement: Placement
    # python-socketio client manager (None = in-process); see docs/architecture.md.
    client_manager: Any = None
    cluster: Any = None

    def bind(self, attempts: Any, notifier: Any) -> None:
        """Connect the live services to the cluster (nothing to do on a single node)."""


def local_backends(settings: Settings) -> Backends:
    return Backends(
        presence=LocalPresence(),
        placement=LocalPlacement(settings.node_id, settings.rooms_per_node),
    )


def create_backends(settings: Settings) -> Backends:
    """Build (not start) the backends; Redis ones when PROCTOR_REDIS_URL is set."""
    return local_backends(settings)


async def backends_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start and stop whatever the backends need (Redis connections, heartbeats)."""
    yield
