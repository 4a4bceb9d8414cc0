"""Redis client of the service kit: carts and read caches through redis-py's asyncio client.

Values are bytes (`decode_responses=False`): carts and cache entries are Protobuf-encoded, and
callers decode what they know to be text.

Inside a recorded call each command, or each pipeline, is a client span whose statement names
the commands without their values (`GET ?`); elsewhere (an unsampled call, a background poll) a
command costs one check. This replaces opentelemetry-instrumentation-redis, which wrapped every
command of every call and built spans that the sampler then threw away.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import redis.asyncio as aioredis
from opentelemetry import trace
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, TimeoutError

from kit import telemetry
from kit.config import RedisSettings

__all__ = ["Pipeline", "Redis", "connect"]

tracer = trace.get_tracer("emporium.redis")

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


def _statement(args: tuple[Any, ...]) -> str:
    name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
    return " ".join([name.upper(), *["?"] * (len(args) - 1)])


@contextlib.contextmanager
def _span(name: str, commands: Iterable[tuple[Any, ...]]) -> Iterator[None]:
    with tracer.start_as_current_span(
        name,
        kind=trace.SpanKind.CLIENT,
        attributes={
            "db.system": "redis",
            "db.statement": "\n".join(_statement(args) for args in commands)[:1000],
        },
    ):
        yield


class Redis(aioredis.Redis):
    """redis-py's asyncio client, with a client span per command inside a recorded call."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if not telemetry.in_recorded_span():
            return await super().execute_command(*args, **options)
        with _span(_statement(args).split(" ", 1)[0], [args]):
            return await super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        return Pipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)


class Pipeline(aioredis.client.Pipeline):
    """A pipeline whose execution is one client span (`MULTI` or `PIPELINE`) listing its
    commands, inside a recorded call."""

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        if not self.command_stack or not telemetry.in_recorded_span():
            return await super().execute(raise_on_error)
        name = "MULTI" if self.is_transaction or self.explicit_transaction else "PIPELINE"
        with _span(name, [args for args, _options in self.command_stack]):
            return await super().execute(raise_on_error)


def connect(settings: RedisSettings) -> Redis:
    """A pooled client for `settings.url`; connects lazily, on the first command.

    No I/O happens here; `await client.ping()` waits for the server, `await client.aclose()`
    closes the pool.
    """
    return Redis.from_url(
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
