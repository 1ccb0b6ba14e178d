"""PresenceFeed (rooms/presence_feed.py): pushes in order, in slices, off the caller's turn."""

from __future__ import annotations

import asyncio
import logging

import pytest

from rooms.presence_feed import PresenceFeed
from rooms.protocols import PresenceState


async def test_pushes_in_order_in_slices_that_let_others_run() -> None:
    log: list[str] = []

    async def push(room_id: str, attempt_id: str, state: PresenceState) -> None:
        log.append(f"{attempt_id}:{state}")

    async def other() -> None:
        for _ in range(5):
            log.append("other")
            await asyncio.sleep(0)

    feed = PresenceFeed(push, slice_size=4)
    for i in range(10):
        await feed.changed("r", f"a{i}", "reconnecting")
    await feed.changed("r", "a0", "online")
    assert log == []  # nothing is pushed on the caller's turn
    await asyncio.gather(other(), asyncio.sleep(0.05))
    pushes = [e for e in log if e != "other"]
    assert pushes == [f"a{i}:reconnecting" for i in range(10)] + ["a0:online"]
    # Another task ran between slices: never more than slice_size pushes in a row.
    runs = "".join("p" if e != "other" else "o" for e in log).split("o")
    assert max(len(r) for r in runs) <= 4
    assert feed.depth == 0
    await feed.close()


async def test_a_failed_push_is_logged_and_the_rest_go_on(caplog: pytest.LogCaptureFixture) -> None:
    sent: list[str] = []

    async def push(room_id: str, attempt_id: str, state: PresenceState) -> None:
        if attempt_id == "bad":
            raise RuntimeError("teacher socket gone")
        sent.append(attempt_id)

    feed = PresenceFeed(push)
    with caplog.at_level(logging.ERROR, logger="rooms.presence_feed"):
        for attempt_id in ("a", "bad", "b"):
            await feed.changed("r", attempt_id, "online")
        await asyncio.sleep(0.01)
    assert sent == ["a", "b"]
    assert any("bad" in r.getMessage() for r in caplog.records)
    await feed.close()


async def test_close_sends_what_is_queued_then_stops() -> None:
    sent: list[str] = []

    async def push(room_id: str, attempt_id: str, state: PresenceState) -> None:
        sent.append(attempt_id)

    feed = PresenceFeed(push, slice_size=2)
    for i in range(7):
        await feed.changed("r", f"a{i}", "offline")
    await feed.close()
    assert sent == [f"a{i}" for i in range(7)]
    await feed.close()  # twice is fine
