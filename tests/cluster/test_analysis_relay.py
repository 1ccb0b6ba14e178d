"""The analysis relay between nodes on a real Redis, several relays in one process: the
room's host answers, failures come back as error acks in bounded time, and a host closes
the peers of a room that moved."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from rooms.errors import Conflict, RoomsError, Unavailable
from signaling.analysis_relay import RedisAnalysisRelay

pytestmark = pytest.mark.slow


class FakePeers:
    """Stands in for server.analysis.AnalysisGateway: records calls, answers or not."""

    def __init__(self, answer: str = "v=0 answer", refuse: RoomsError | None = None, hang: bool = False) -> None:
        self.answer = answer
        self.refuse = refuse
        self.hang = hang
        self.offers: list[str] = []
        self.candidates: list[dict[str, Any]] = []
        self.closed: list[str] = []
        self.frames: list[tuple[str, int]] = []

    async def offer(self, attempt_id: str, sdp: str, type_: str) -> tuple[str, str]:
        self.offers.append(attempt_id)
        if self.hang:
            await asyncio.Event().wait()
        if self.refuse is not None:
            raise self.refuse
        return f"{self.answer} for {sdp}", "answer"

    async def candidate(self, attempt_id: str, candidate: dict[str, Any]) -> None:
        self.candidates.append(candidate)

    async def frame(self, attempt_id: str, jpeg: bytes) -> None:
        self.frames.append((attempt_id, len(jpeg)))

    async def close(self, attempt_id: str) -> None:
        self.closed.append(attempt_id)


class Cluster:
    """Relays for named nodes; `holders` plays the room leases (room -> node)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.holders: dict[str, str] = {}
        self.draining: set[str] = set()
        self.relays: list[RedisAnalysisRelay] = []

    async def node(
        self, node_id: str, local: FakePeers | None, timeout: float = 1.0, host_of: Any = None
    ) -> RedisAnalysisRelay:
        async def room_of(attempt_id: str) -> str:
            return attempt_id.split("/")[0]

        async def holder(room_id: str) -> str | None:
            return self.holders.get(room_id)

        relay = RedisAnalysisRelay(
            self.redis,
            node_id,
            local=local,
            room_of=room_of,
            host_of=host_of or holder,
            holder_of=holder,
            accepting=lambda: node_id not in self.draining,
            timeout=timeout,
        )
        await relay.start()
        self.relays.append(relay)
        return relay

    async def stop(self) -> None:
        for relay in self.relays:
            await relay.stop()


@pytest.fixture
async def nodes(redis: Redis) -> Any:
    cluster = Cluster(redis)
    try:
        yield cluster
    finally:
        await cluster.stop()


async def test_the_rooms_host_answers_and_closes(nodes: Cluster) -> None:
    a_peers, b_peers = FakePeers("from a"), FakePeers("from b")
    a = await nodes.node("a", a_peers)
    b = await nodes.node("b", b_peers)
    nodes.holders["R"] = "b"
    sdp, type_ = await a.offer("R/alice", "v=0 offer", "offer")
    assert (sdp, type_) == ("from b for v=0 offer", "answer")
    assert b_peers.offers == ["R/alice"] and a_peers.offers == []
    assert b.served == 1 and a.served == 0
    await a.candidate("R/alice", {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"})
    assert b_peers.candidates and not a_peers.candidates
    # The host's own students are answered locally.
    assert (await b.offer("R/bob", "v=0 o2", "offer"))[0] == "from b for v=0 o2"
    await a.close("R/alice")  # fire and forget: the host closes it soon after

    async def closed() -> None:
        # The fake registry only records closes; polling it is the test, no event to wait on.
        while "R/alice" not in b_peers.closed:  # noqa: ASYNC110
            await asyncio.sleep(0.02)

    await asyncio.wait_for(closed(), 2)
    assert b.served == 1  # bob's


async def test_refusals_and_silence_come_back_as_errors(nodes: Cluster) -> None:
    a = await nodes.node("a", FakePeers())
    await nodes.node("off", FakePeers(refuse=Conflict("no analysis here", code="analysis_off")))
    await nodes.node("mute", FakePeers(hang=True))
    await nodes.node("nomodel", None)
    nodes.holders.update(R1="off", R2="mute", R3="ghost", R4="nomodel")

    with pytest.raises(Conflict) as refused:
        await a.offer("R1/x", "v=0", "offer")
    assert refused.value.code == "analysis_off"

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(Unavailable) as silent:
        await a.offer("R2/x", "v=0", "offer")
    assert 0.9 <= loop.time() - started < 3
    assert silent.value.code == "unavailable" and silent.value.retry_after

    started = loop.time()
    with pytest.raises(Unavailable) as nobody:  # nobody listens for that node: at once
        await a.offer("R3/x", "v=0", "offer")
    assert loop.time() - started < 0.5 and nobody.value.retry_after

    with pytest.raises(Conflict) as no_model:
        await a.offer("R4/x", "v=0", "offer")
    assert no_model.value.code == "rtc_unavailable"

    with pytest.raises(Unavailable):  # a room without a host
        await a.offer("R5/x", "v=0", "offer")


async def test_a_node_answers_only_for_rooms_it_holds_and_drops_the_peers_of_moved_rooms(nodes: Cluster) -> None:
    a = await nodes.node("a", FakePeers())
    b_peers, c_peers = FakePeers("from b"), FakePeers("from c")
    b = await nodes.node("b", b_peers)
    await nodes.node("c", c_peers)
    nodes.holders["R"] = "b"
    await a.offer("R/1", "v=0", "offer")
    await a.offer("R/2", "v=0", "offer")
    nodes.holders["S"] = "b"
    await a.offer("S/1", "v=0", "offer")
    assert b.served == 3

    await b.sweep()  # nothing moved
    assert b.served == 3 and not b_peers.closed
    del nodes.holders["S"]
    await b.sweep()  # no lease (Redis restarting): peers stay
    assert b.served == 3
    nodes.holders["R"] = "c"
    await b.sweep()
    assert sorted(b_peers.closed) == ["R/1", "R/2"] and b.served == 1
    assert (await a.offer("R/1", "v=0", "offer"))[0] == "from c for v=0"

    # A host asked about a room it no longer holds (a stale cache elsewhere) refuses.
    async def thinks_b(room_id: str) -> str | None:
        return "b"

    stale = await nodes.node("stale", FakePeers(), host_of=thinks_b)
    with pytest.raises(Unavailable):
        await stale.offer("R/3", "v=0", "offer")
    # Draining: refuses new offers and lets go of every peer.
    nodes.holders["S"] = "b"
    nodes.draining.add("b")
    with pytest.raises(Unavailable):
        await a.offer("S/2", "v=0", "offer")
    await b.sweep()
    assert b.served == 0 and "S/1" in b_peers.closed
