"""Stopping a node in bounded time, and saying what held it up when it cannot.

`runner.cleanup()` runs the drain (on_shutdown), closes HTTP connections within
`shutdown_timeout`, then the cleanup contexts in reverse. Each of those awaits something
outside the process (Postgres, Redis, a peer); one that never answers would keep the node
alive after it told its clients to go, and an operator's `proctor drain --wait` or a
supervisor's SIGTERM would wait forever. So the whole stop has a budget: past it, every
pending task's await chain is logged (the only way to see where a coroutine sleeps: a
stack sampler shows an idle loop) and the process exits with status 1.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)


def await_chain(start: Any) -> list[str]:
    """`file:line in function` for each coroutine `start` (a task, coroutine or async
    generator) is suspended in, outermost first.

    `Task.get_stack()` gives only the task's own frame for a suspended coroutine; the
    interesting part is what that frame awaits, reached through `cr_await`.
    """
    lines: list[str] = []
    obj: Any = start.get_coro() if isinstance(start, asyncio.Task) else start
    while obj is not None and len(lines) < 64:
        frame: FrameType | None = (
            getattr(obj, "cr_frame", None) or getattr(obj, "gi_frame", None) or getattr(obj, "ag_frame", None)
        )
        if frame is None:  # a future, or an awaitable that names no frame: the chain ends here
            lines.append(f"awaiting {obj!r}"[:200])
            break
        lines.append(f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        obj = getattr(obj, "cr_await", None) or getattr(obj, "gi_yieldfrom", None) or getattr(obj, "ag_await", None)
    return lines


def describe_tasks(exclude: asyncio.Task[Any] | None = None, generators: Iterable[Any] = ()) -> str:
    """Every pending task of the running loop with its await chain, then each suspended
    async generator of `generators` (a chain stops at an `async_generator_asend`, which
    does not name its generator: cleanup contexts are generators)."""
    out: list[str] = []
    for task in asyncio.all_tasks():
        if task is exclude or task.done():
            continue
        out.append(f"task {task.get_name()}:")
        out.extend("    " + line for line in await_chain(task))
    for gen in generators:
        if getattr(gen, "ag_await", None) is not None:
            out.append(f"async generator {getattr(gen, '__qualname__', gen)!s}:")
            out.extend("    " + line for line in await_chain(gen))
    return "\n".join(out)


def cleanup_generators(app: Any) -> list[Any]:
    """The async generators behind `app.cleanup_ctx` that have started (aiohttp keeps them
    as `contextlib` managers in a private list: read for diagnosis only)."""
    managers = getattr(getattr(app, "cleanup_ctx", None), "_exits", [])
    return [m.gen for m in managers if hasattr(m, "gen")]


async def bounded(step: Awaitable[None], budget: float, what: str, generators: Iterable[Any] = ()) -> bool:
    """Run `step` for at most `budget` seconds; past it, log every pending task and give up.

    True when the step finished in time. The step itself is cancelled on time-out: its
    cleanups still get a chance to run (CancelledError), but nothing waits for them.
    """
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=budget)
    if done:
        task.result()  # re-raise what the step raised
        return True
    logger.error(
        "shutdown: %s did not finish within %.0f s; pending tasks:\n%s",
        what,
        budget,
        describe_tasks(exclude=asyncio.current_task(), generators=generators),
    )
    task.cancel()
    await asyncio.wait({task}, timeout=1.0)
    return False
