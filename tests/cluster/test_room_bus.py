"""The room bus asks for a resync after pub/sub lost messages, on a real Redis, several buses
in one process: after its own subscription came back (a killed connection, a Redis restart,
or redis-py subscribing again by itself), and on the other nodes after it could not publish;
never otherwise, and once for requests that come together."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from signaling.room_bus import RoomChannelManager
from tests.support.cluster import RedisServer, eventually

pytestmark = pytest.mark.slow


class Bus:
    """A started RoomChannelManager that records its resync requests."""

    def __init__(self, redis: Any, prefix: str) -> None:
        self.manager = RoomChannelManager(redis, prefix=prefix)
        self.resyncs: list[str] = []

        async def resync(reason: str) -> None:
            self.resyncs.append(reason)

        self.manager.on_resync = resync
        self.manager.start()

    async def listening(self) -> None:
        manager = self.manager

        async def confirmed() -> bool:
            return bool(manager._wanted) and manager._confirmed >= manager._wanted

        await eventually(confirmed, timeout=5, interval=0.05)


class FlakyPublish:
    """A Redis client whose next `fail` pipelines raise, as while Redis is away."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.fail = 0

    def pipeline(self, **kwargs: Any) -> Any:
        if self.fail:
            self.fail -= 1
            raise RedisConnectionError("Redis is away (test)")
        return self.redis.pipeline(**kwargs)

    def pubsub(self) -> Any:
        return self.redis.pubsub()


@pytest.fixture
async def buses(redis: Redis) -> AsyncIterator[list[Bus]]:
    made: list[Bus] = []
    try:
        yield made
    finally:
        for bus in made:
            await bus.manager.stop(flush_timeout=0.5)


def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}:sio:"


async def test_nothing_lost_no_resync(redis: Redis, buses: list[Bus]) -> None:
    bus = Bus(redis, prefix())
    buses.append(bus)
    await bus.listening()
    for n in range(5):
        await bus.manager._publish(
            {"method": "emit", "room": "teachers:r", "event": "x", "data": [n], "host_id": bus.manager.host_id}
        )
    await asyncio.sleep(1.0)
    assert bus.resyncs == []
    assert bus.manager.published >= 5


async def test_a_dropped_subscription_asks_once_when_back(redis: Redis, buses: list[Bus]) -> None:
    bus = Bus(redis, prefix())
    buses.append(bus)
    await bus.listening()
    # Redis closes the pub/sub connection; the listener connects and subscribes again.
    killed = await redis.client_kill_filter(_type="pubsub")
    assert killed >= 1

    async def asked() -> list[str]:
        return bus.resyncs

    assert await eventually(asked, timeout=10, interval=0.05) == ["bus_reconnected"]
    await asyncio.sleep(1.5)  # one channel confirmed again or both: one request
    assert bus.resyncs == ["bus_reconnected"]
    assert bus.manager.resyncs == 1


async def test_a_second_confirmation_asks_once(redis: Redis, buses: list[Bus]) -> None:
    bus = Bus(redis, prefix())
    buses.append(bus)
    await bus.listening()
    manager = bus.manager
    # What a reconnect inside redis-py's own retries looks like from the listener: the
    # channels it had are confirmed again, with no error in between.
    for channel in (manager.channel, manager._host_channel(manager.host_id)):
        await manager._on_message({"type": "subscribe", "channel": channel.encode(), "data": 1})

    async def asked() -> list[str]:
        return bus.resyncs

    assert await eventually(asked, timeout=5, interval=0.05) == ["bus_reconnected"]
    await asyncio.sleep(1.0)
    assert bus.resyncs == ["bus_reconnected"]


async def test_a_redis_restart_asks_once_when_back(buses: list[Bus]) -> None:
    # A Redis of its own: the session's is shared with the other tests.
    root = Path(tempfile.mkdtemp(prefix="proctor-test-bus-redis-"))
    server = RedisServer(root)
    server.start()
    client = Redis.from_url(server.url)
    try:
        bus = Bus(client, prefix())
        buses.append(bus)
        await bus.listening()
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(6)  # longer than redis-py's own retries: the listener reconnects
        assert bus.resyncs == []
        await asyncio.to_thread(server.start)

        async def asked() -> list[str]:
            return bus.resyncs

        assert await eventually(asked, timeout=15, interval=0.05) == ["bus_reconnected"]
        await bus.listening()
        await asyncio.sleep(1.0)
        assert bus.resyncs == ["bus_reconnected"]
    finally:
        for bus in buses:
            await bus.manager.stop(flush_timeout=0.5)
        buses.clear()
        await client.aclose()
        await asyncio.to_thread(server.stop)
        shutil.rmtree(root, ignore_errors=True)


async def test_a_failed_publish_asks_the_other_nodes_once_redis_takes_it(redis: Redis, buses: list[Bus]) -> None:
    shared = prefix()
    flaky = FlakyPublish(redis)
    sender = Bus(flaky, shared)
    other = Bus(redis, shared)
    buses.extend([sender, other])
    await sender.listening()
    await other.listening()
    flaky.fail = 3  # the emit and the first two retries of the resync request
    await sender.manager._publish(
        {"method": "emit", "room": "teachers:r", "event": "x", "data": [1], "host_id": sender.manager.host_id}
    )

    async def asked() -> list[str]:
        return other.resyncs

    # No further traffic is needed: the request itself retries until Redis takes it.
    assert await eventually(asked, timeout=10, interval=0.05) == ["peer_dropped"]
    assert flaky.fail == 0
    assert sender.manager.dropped == 1  # the emit; the request's own retries are not counted
    await asyncio.sleep(1.0)
    assert other.resyncs == ["peer_dropped"]
    assert sender.resyncs == []  # its own teachers had their local delivery
