"""Stopping tasks that swallow a cancellation (core/tasks.py) and naming where a stuck
stop waits (server/shutdown.py)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from core.tasks import stop_task, stop_tasks
from server.shutdown import await_chain, bounded


async def swallows_first_cancel(stopped: list[str]) -> None:
    """A retry loop of the kind that hung the node: a cancellation that arrives as a
    timeout expires comes out as TimeoutError, which the loop treats as a failed beat."""
    swallowed = False
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if swallowed:
                stopped.append("cancelled")
                raise
            swallowed = True  # as a TimeoutError caught by `except Exception` would be


async def test_a_swallowed_cancellation_is_sent_again(caplog: pytest.LogCaptureFixture) -> None:
    stopped: list[str] = []
    task = asyncio.create_task(swallows_first_cancel(stopped))
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="core.tasks"):
        assert await stop_task(task, timeout=2.0)
    assert task.cancelled() and stopped == ["cancelled"]
    # one cancellation was swallowed (the naive `cancel(); await task` waits for ever there)
    assert "ran on after a cancellation; cancelling again" in caplog.text


async def test_a_task_that_never_ends_is_given_up_after_the_bound(caplog: pytest.LogCaptureFixture) -> None:
    alive = True

    async def immortal() -> None:
        while alive:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(immortal(), name="immortal")
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with caplog.at_level(logging.ERROR, logger="core.tasks"):
        assert await stop_task(task, timeout=0.6) is False
    assert 0.5 <= loop.time() - start < 2.0
    assert "immortal" in caplog.text
    alive = False
    task.cancel()
    await asyncio.wait({task}, timeout=1.0)
    assert task.done()


async def test_failed_tasks_are_logged_and_the_others_still_stopped(caplog: pytest.LogCaptureFixture) -> None:
    async def fails() -> None:
        raise ValueError("boom")

    failed = asyncio.create_task(fails(), name="fails")
    sleeper = asyncio.create_task(asyncio.sleep(3600), name="sleeper")
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="core.tasks"):
        assert await stop_tasks([failed, sleeper, asyncio.ensure_future(asyncio.sleep(0))])
    assert sleeper.cancelled()
    assert "boom" in caplog.text and "fails" in caplog.text


async def test_nothing_to_stop() -> None:
    assert await stop_task(None)
    assert await stop_tasks([])


async def test_a_stuck_stop_names_the_line_it_waits_on(caplog: pytest.LogCaptureFixture) -> None:
    gate = asyncio.Event()

    async def inner() -> None:
        await gate.wait()

    async def outer() -> None:
        await inner()

    helper = asyncio.create_task(outer(), name="helper")
    await asyncio.sleep(0)
    chain = await_chain(helper)
    assert [line.rsplit(" in ", 1)[1] for line in chain[:3]] == ["outer", "inner", "wait"], chain

    with caplog.at_level(logging.ERROR, logger="server.shutdown"):
        assert await bounded(outer(), 0.2, "the test stop") is False
    assert "the test stop did not finish" in caplog.text
    assert "task helper:" in caplog.text and " in inner" in caplog.text
    assert await bounded(asyncio.sleep(0), 1.0, "a quick stop") is True
    gate.set()
    await helper
