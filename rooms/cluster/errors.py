"""Redis failures that the edges answer as `unavailable` (not `internal`)."""

from __future__ import annotations

from redis.exceptions import ConnectionError as _RedisConnectionError
from redis.exceptions import TimeoutError as _RedisTimeoutError

# Redis unreachable, or a pooled connection that a Redis restart left closed (its first
# command fails, and the pool reconnects it): the command did nothing, the caller retries.
# The edges answer `unavailable` with a retry hint, never `internal`.
REDIS_TRANSIENT: tuple[type[BaseException], ...] = (_RedisConnectionError, _RedisTimeoutError)
