"""Stopping background tasks so that a stop always ends.

`task.cancel(); await task` waits for ever when the cancellation is swallowed somewhere
down the task's await chain, and on Python 3.11 that happens: a timeout (`wait_for`,
`asyncio.timeout`, a client library's read timeout) that expires in the same loop
iteration as the cancel turns it into a `TimeoutError`, which a retry loop then catches.
Seen here: a node's heartbeat task went on beating after `stop()` cancelled it, and the
node never exited (the cluster drain test, 3 runs in 17; docs/reliability.md).

So a stop cancels again while the task runs on, and gives up after a bound, saying so.
Loops should also check a flag of their own (set before the cancel) so that one swallowed
cancellation ends them at the next turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)

_RECANCEL_SECONDS = 0.25


async def stop_tasks(tasks: Iterable[asyncio.Future[Any]], timeout: float = 5.0) -> bool:
    """Cancel `tasks` and wait until they end, cancelling again every 250 ms while any
    runs on; True when all ended within `timeout` seconds.

    A task's own exception is logged, not raised (it already failed; the stop goes on).
    A cancellation of the caller itself still propagates.
    """
    tasks = list(tasks)
    pending = {t for t in tasks if not t.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    rounds = 0
    while pending:
        if rounds:
            logger.warning(
                "tasks ran on after a cancellation; cancelling again: %s", ", ".join(_name(t) for t in pending)
            )
        rounds += 1
        for task in pending:
            task.cancel()
        remaining = deadline - loop.time()
        if remaining <= 0:
            names = ", ".join(_name(t) for t in pending)
            logger.error("tasks did not stop within %.1f s despite cancellation: %s", timeout, names)
            return False
        _, pending = await asyncio.wait(pending, timeout=min(_RECANCEL_SECONDS, remaining))
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            logger.error("task %s had failed: %r", _name(task), task.exception())
    return True


async def stop_task(task: asyncio.Future[Any] | None, timeout: float = 5.0) -> bool:
    """`stop_tasks` for one task (None: nothing to stop)."""
    if task is None:
        return True
    return await stop_tasks([task], timeout)


def _name(task: asyncio.Future[Any]) -> str:
    return task.get_name() if isinstance(task, asyncio.Task) else repr(task)
