"""Redis client of the service kit: carts and read caches through redis-py's asyncio client.

Values are bytes (`decode_responses=False`): carts and cache entries are Protobuf-encoded, and
callers decode what they know to be text.

`Invalidations` tells a process which keys under a prefix changed (Redis's server-assisted
client-side caching), so that it can keep copies of hot entries in memory without serving a
stale one.

Inside a recorded call each command, or each pipeline, is a client span whose statement names
the commands without their values (`GET ?`); elsewhere (an unsampled call, a background poll) a
command costs one check. This replaces opentelemetry-instrumentation-redis, which wrapped every
command of every call and built spans that the sampler then threw away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import redis.asyncio as aioredis
from opentelemetry import trace
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from kit import telemetry
from kit.config import RedisSettings

__all__ = ["Invalidations", "Pipeline", "Redis", "connect"]

log = logging.getLogger(__name__)
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


def _name(args: tuple[Any, ...]) -> str:
    """The command's name (`GET`), never its arguments."""
    name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
    return name.upper()


def _statement(args: tuple[Any, ...]) -> str:
    return " ".join([_name(args), *["?"] * (len(args) - 1)])


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
        with _span(_name(args), [args]):
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


class Invalidations:
    """Which keys under `prefix` changed, as Redis reports it, for copies kept in this process.

    One connection of its own asks Redis to track the prefix (`CLIENT TRACKING ON REDIRECT
    <itself> BCAST PREFIX <prefix>`) and subscribes to `__redis__:invalidate`: whoever writes,
    deletes or expires a key under the prefix, Redis sends its name here, and it does so before
    it answers the writer (both in the same pass of its event loop). `run()` applies every
    message to `forget` as it arrives (`None`: forget everything: a flush, or a new connection
    after a lost one). `fresh()` says whether copies may be served: only while listening, and
    only after one turn of the event loop, so that a message already received, for a write that
    returned before this read began, is applied first.

    A connection that goes silent is found by a PING every `ping_seconds`; while it is down
    `fresh()` is False and the caller reads Redis as if it kept no copies.
    """

    CHANNEL = "__redis__:invalidate"

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        forget: Callable[[list[bytes] | None], None],
        *,
        ping_seconds: float = 10.0,
        retry_seconds: float = 1.0,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.forget = forget
        self.ping_seconds = ping_seconds
        self.retry_seconds = retry_seconds
        self.listening = False
        self.client_id: int | None = None

    async def fresh(self) -> bool:
        if not self.listening:
            return False
        await asyncio.sleep(0)  # let a message that has arrived be applied
        return self.listening

    async def run(self) -> None:
        """Listens until cancelled, reconnecting after a lost connection."""
        while True:
            try:
                await self._listen()
            except ResponseError as error:
                # A Redis before 6.0, or one that refuses CLIENT TRACKING: keep no copies.
                log.warning("Redis does not track %s (%s): no copies kept", self.prefix, error)
                return
            except (ConnectionError, TimeoutError, OSError) as error:
                log.warning(
                    "Redis invalidations for %s lost (%s); reconnecting", self.prefix, error
                )
            finally:
                self.listening = False
                self.client_id = None
                self.forget(None)
            await asyncio.sleep(self.retry_seconds)

    async def _listen(self) -> None:
        connection = self.client.connection_pool.make_connection()
        try:
            await connection.connect()
            self.client_id = await self._command(connection, "CLIENT", "ID")
            await self._command(
                connection,
                "CLIENT", "TRACKING", "ON", "REDIRECT", self.client_id, "BCAST",
                "PREFIX", self.prefix,
            )  # fmt: skip
            await self._command(connection, "SUBSCRIBE", self.CHANNEL)
            self.forget(None)  # copies kept before this connection may have missed a message
            self.listening = True
            pinged = False
            while True:
                message = await connection.read_response(
                    timeout=self.ping_seconds, disconnect_on_error=False
                )
                if message is None:  # nothing for ping_seconds
                    if pinged:
                        raise TimeoutError("no answer to PING")
                    await connection.send_command("PING", check_health=False)
                    pinged = True
                    continue
                pinged = False
                if message[0] == b"message" and message[1] == self.CHANNEL.encode():
                    self.forget(message[2])
        finally:
            await connection.disconnect()

    @staticmethod
    async def _command(connection: Any, *args: Any) -> Any:
        await connection.send_command(*args, check_health=False)
        return await connection.read_response()
