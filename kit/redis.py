"""Redis client of the service kit: carts and read caches through redis-py's asyncio client.

Values are bytes (`decode_responses=False`): carts and cache entries are Protobuf-encoded, and
callers decode what they know to be text.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, TimeoutError

from kit.config import RedisSettings

__all__ = ["connect"]

# A lost connection (Redis restarted, an idle socket cut by a proxy) is retried quickly a few
# times: requests wait on this, so the backoff stays well under a second in total. A retried
# command may have run once already (the reply was lost), so prefer idempotent writes
# (HSET, SET) to counters (INCR) where a double apply matters.
RETRIES = 3
BACKOFF_BASE_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 0.5
# A command that has not answered in this time is not going to; fail the call instead.
SOCKET_TIMEOUT_SECONDS = 5.0
# A pooled connection idle this long is PINGed before use, so stale sockets are found before
# a command is sent on them rather than after.
HEALTH_CHECK_SECONDS = 30


def connect(settings: RedisSettings) -> aioredis.Redis:
    """A pooled client for `settings.url`; connects lazily, on the first command.

    No I/O happens here; `await client.ping()` waits for the server, `await client.aclose()`
    closes the pool.
    """
    return aioredis.Redis.from_url(
        settings.url,
        decode_responses=False,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        health_check_interval=HEALTH_CHECK_SECONDS,
        retry=Retry(
            ExponentialWithJitterBackoff(base=BACKOFF_BASE_SECONDS, cap=BACKOFF_CAP_SECONDS),
            RETRIES,
            supported_errors=(ConnectionError, TimeoutError),
        ),
        client_name="emporium",
    )
