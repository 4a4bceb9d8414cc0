"""The event bus over RabbitMQ (aio-pika), v2: confirmed publishing that loses nothing, one
topology applied by every service, concurrent per-aggregate consumers, retries outside the
consumer, DLQ tools.

Topology (ARCHITECTURE.md section 4; the table is kit/topology.py):

- one durable topic exchange `emporium.events`; the routing key is the event type (full proto
  name). Its alternate exchange `emporium.unrouted` (fanout) puts whatever no queue binds into
  the quorum queue `emporium.unrouted`: confirmed but parked, never dropped;
  `python -m kit.bus unrouted list|replay` shows it and publishes it again once bound.
- one quorum queue per consuming service, bound as `kit.topology.QUEUES` says. Every service
  applies the whole table at start (`await bus.apply_topology(...)`), so an event published
  before its consumer ever ran already waits in that consumer's queue.
- per queue: `<queue>.retry.<i>` quorum queues whose TTL (`retry_delays`, 1 s, 3 s, 10 s by
  default) dead-letters back to the queue, and, after the delivery limit, `<queue>.dlq`
  (through the direct exchange `emporium.dlx`, at least once);
  `python -m kit.bus dlq list|replay <queue>`.

Guarantees:

- `Bus.publish(events)` returns only when the broker confirmed every event (publisher confirms,
  persistent, mandatory). It raises `PublishError` if any is nacked or returned, the confirm
  does not come in time or the connection drops; the outbox relay then keeps and republishes
  them, so consumers deduplicate (kit.inbox).
- A consumer acks a message only after its handler returned. Up to `concurrency` handlers run
  at once, one per aggregate (`kit.events.aggregate_key`: order, product or user id), in
  delivery order within an aggregate. A handler that raises does not hold its slot: the message
  is copied (confirmed) to a retry queue and acked, and comes back after the delay; after the
  delivery limit it goes to the DLQ. A message that cannot be decoded is dead-lettered at once.
- The connection is robust: it reconnects after a broker restart and restores the exchanges,
  queues and consumers; publishing waits for the reconnection (up to its timeout).

A service's consumer (see kit/topology.py for adding its queue):

    await bus.apply_topology(consumers.QUEUE, settings.queue)
    consumer = bus.subscribe(settings.queue, consumers.subscriptions(handlers), inbox=inbox)
    background.append(consumer.run)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
import aiormq.exceptions
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
    DeliveryMode,
)
from google.protobuf.message import Message
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from pamqp.commands import Basic

from kit import accounts, retry, telemetry, topology
from kit.config import RabbitSettings
from kit.events import (
    Event,
    Handler,
    TypedHandler,
    UndecodableEvent,
    UnknownEventType,
    aggregate_key,
    dispatch,
    message_class,
)
from kit.inbox import Inbox, idempotent

log = logging.getLogger("emporium.bus")
tracer = trace.get_tracer("emporium.bus")

EXCHANGE = "emporium.events"
DEAD_LETTER_EXCHANGE = "emporium.dlx"
# The alternate exchange of EXCHANGE and its parking queue: what no queue binds lands here.
UNROUTED_EXCHANGE = "emporium.unrouted"
UNROUTED_QUEUE = "emporium.unrouted"
CONTENT_TYPE = "application/x-protobuf"
# The AMQP timestamp has whole seconds; the event's exact time travels in this header too.
TIME_HEADER = "x-emporium-time"
# Handler failures (counted in ATTEMPT_HEADER) and, by the quorum queue, deliveries returned
# because the consumer's channel closed (a crash or restart with messages prefetched) before a
# message goes to the DLQ.
DEFAULT_DELIVERY_LIMIT = 10
# Handlers a consumer runs at once (one per aggregate at a time).
DEFAULT_CONCURRENCY = 16
# How long a failed message waits in `<queue>.retry.<i>` before it is back in its queue: the
# n-th failure waits RETRY_DELAYS[min(n, len) - 1] s. With the delivery limit above a handler
# may fail for about 1.5 minutes (1 + 3 + 8 x 10 s: a database restart) before its message is
# dead-lettered.
DEFAULT_RETRY_DELAYS: tuple[float, ...] = (1.0, 3.0, 10.0)
# How many times the handlers failed on a message so far (set on the copies in retry queues).
ATTEMPT_HEADER = "x-emporium-failures"


def _login(url: str) -> str:
    """The user name in an AMQP URL (the client's default, guest, when it names none)."""
    user = urlsplit(url).username
    return unquote(user) if user else "guest"


class PublishError(Exception):
    """The broker did not confirm every event: publish the unconfirmed ones again."""


def dead_letter_queue(queue: str) -> str:
    """The name of a queue's dead-letter queue."""
    return f"{queue}.dlq"


def retry_queue(queue: str, tier: int) -> str:
    """The name of a queue's `tier`-th retry queue (0-based) where failed messages wait."""
    return f"{queue}.retry.{tier}"


@dataclass(frozen=True)
class QueueSpec:
    """How a queue was declared: what its consumers need to retry and dead-letter."""

    delivery_limit: int = DEFAULT_DELIVERY_LIMIT
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS

    def retry_tier(self, failures: int) -> int:
        return min(failures, len(self.retry_delays)) - 1


# ---------------------------------------------------------------------------------------------
# Envelope <-> AMQP message


def _message(
    event: Event, headers: dict[str, Any] | None = None, user_id: str | None = None
) -> aio_pika.Message:
    headers = dict(event.headers) if headers is None else headers
    return aio_pika.Message(
        # The broker refuses a publish whose user_id is not the connection's user, so this is
        # what consumers believe about the source (kit.accounts.trusted_source), not app_id.
        user_id=user_id,
        body=event.data,
        message_id=event.id,
        type=event.type,
        content_type=CONTENT_TYPE,
        timestamp=event.time,
        app_id=event.source,
        delivery_mode=DeliveryMode.PERSISTENT,
        headers={**headers, TIME_HEADER: event.time.isoformat()},
    )


def _publish_span(event: Event) -> tuple[trace.Span, dict[str, Any]]:
    """A producer span in the trace of the code that wrote the event (its outbox headers), and
    the message headers that make the consumer's span its child."""
    span = tracer.start_span(
        f"{event.type} publish",
        context=event.trace_context(),
        kind=trace.SpanKind.PRODUCER,
        attributes={
            "messaging.system": "rabbitmq",
            "messaging.operation": "publish",
            "messaging.destination.name": EXCHANGE,
            "messaging.message.id": event.id,
            "messaging.rabbitmq.destination.routing_key": event.type,
        },
    )
    headers = dict(event.headers)
    if span.get_span_context().is_valid:  # not with the API's no-op tracer
        propagate.inject(headers, context=trace.set_span_in_context(span))
    return span, headers


def _event(message: AbstractIncomingMessage, own_service: str | None = None) -> Event:
    """The event in a delivered message; UndecodableEvent if the envelope is broken.

    Its `source` is what the consumer of `own_service` may believe: the service whose broker
    account published it (`kit.accounts.trusted_source`), not the `app_id` it claims.
    """
    if not message.message_id or not message.type:
        raise UndecodableEvent("message has no message_id or no type")
    if message.content_type not in (None, "", CONTENT_TYPE):
        raise UndecodableEvent(f"content type {message.content_type!r} is not {CONTENT_TYPE}")
    headers = dict(message.headers or {})
    when: datetime | None = None
    raw_time = headers.get(TIME_HEADER)
    if isinstance(raw_time, str):
        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(raw_time)
    if when is None:
        when = message.timestamp or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return Event(
        id=str(message.message_id),
        type=str(message.type),
        source=accounts.trusted_source(message.user_id, message.app_id, headers, own_service),
        time=when,
        data=message.body,
        # The application's headers (trace context); broker and transport ones start with x-.
        headers={k: v for k, v in headers.items() if isinstance(v, str) and not k.startswith("x-")},
    )


def _validate_body(event: Event) -> None:
    """Rejects a body that is not the proto its type names, when that type is loaded here."""
    try:
        message_class(event.type)
    except UnknownEventType:
        return  # the handler decides; a consumer need not import every type it is bound to
    event.decode()


# ---------------------------------------------------------------------------------------------
# Dead letters


@dataclass(frozen=True)
class DeadLetter:
    """A message in a DLQ, as an operator sees it."""

    message_id: str | None
    type: str | None
    source: str | None
    reason: str | None  # `delivery_limit` (handler kept failing) or `rejected` (undecodable)
    deaths: int  # how many times it was dead-lettered from the queue
    first_death_time: datetime | None
    size: int
    event: Event | None  # None when the envelope itself is broken

    @classmethod
    def of(cls, message: AbstractIncomingMessage) -> DeadLetter:
        headers = message.headers or {}
        # Newest first; waits in a retry queue (reason `expired`) are not deaths.
        deaths = [
            d
            for d in (headers.get("x-death") or [])
            if isinstance(d, dict) and str(d.get("reason") or "") != "expired"
        ]
        reason = str(deaths[0].get("reason") or "") if deaths else ""
        if reason == "rejected" and ATTEMPT_HEADER in headers:
            reason = "delivery_limit"  # the consumer gave up after its retries
        try:
            event: Event | None = _event(message)
        except UndecodableEvent:
            event = None
        return cls(
            message_id=message.message_id,
            type=message.type,
            source=event.source if event is not None else message.app_id,
            reason=reason or None,
            deaths=sum(int(d.get("count", 1)) for d in deaths),
            first_death_time=deaths[-1].get("time") if deaths else None,
            size=len(message.body),
            event=event,
        )


# ---------------------------------------------------------------------------------------------
# Consumers


class Consumer:
    """A subscription of a handler to a queue; made by `Bus.subscribe` / `Bus.consumer`.

    Many handlers run at once, but never two of one aggregate: each message has a key (by
    default `kit.events.aggregate_key`: the order, product or user it is about) and the
    messages of one key go through one lane, in the order the broker delivered them. A handler
    that raises does not hold its lane or a slot while it waits to be retried: its message is
    copied to a retry queue (`<queue>.retry.<i>`, a TTL that dead-letters back to the queue) and
    acked, and the lane moves on. So a retried event may be overtaken by a later event of its
    aggregate; handlers judge an event by the aggregate's state, not by arrival order.
    """

    def __init__(
        self,
        connection: AbstractRobustConnection,
        queue: str,
        handler: Handler,
        *,
        prefetch: int,
        concurrency: int,
        spec: QueueSpec,
        key: Callable[[Event], str | None] = aggregate_key,
        user: str | None = None,
    ) -> None:
        if concurrency > prefetch:
            raise ValueError("concurrency cannot exceed prefetch")
        self.queue = queue
        self._connection = connection
        self._handler = handler
        self._prefetch = prefetch
        self._concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._spec = spec
        self._key = key
        # The broker account this consumer's connection uses, and its service (if it is a
        # service account): it publishes the retry copies.
        self._user = user
        self._own_service = accounts.service_of(user)
        # key -> the future the next message of that key waits for (the tail of its lane).
        self._lanes: dict[str, asyncio.Future[None]] = {}
        self._channel: AbstractChannel | None = None
        self._amqp_queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._stopping = False
        self._inflight: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        # Confirms: a failed message is acked only once its retry copy is safely queued.
        channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.set_qos(prefetch_count=self._prefetch)
        # Passive: the queue's arguments belong to `declare_queue`; a missing queue fails here.
        self._amqp_queue = await channel.get_queue(self.queue, ensure=True)
        self._channel = channel
        self._tag = await self._amqp_queue.consume(self._on_message)
        log.info(
            "consuming %s (prefetch %d, concurrency %d)",
            self.queue,
            self._prefetch,
            self._concurrency,
        )

    async def stop(self, grace: float = 10.0) -> None:
        """Stops taking messages, lets running handlers finish, then closes the channel.

        Handlers get `grace` seconds; messages received but not handled yet go back to the
        queue when the channel closes.
        """
        self._stopping = True
        if self._amqp_queue is not None and self._tag is not None:
            with contextlib.suppress(Exception):
                await self._amqp_queue.cancel(self._tag)
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=grace)
        if self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):
                await self._channel.close()

    async def run(self) -> None:
        """Consumes until cancelled (a service's background task), then stops cleanly."""
        await self.start()
        try:
            await asyncio.Future()
        finally:
            await asyncio.shield(self.stop())

    def _lane_key(self, message: AbstractIncomingMessage) -> str:
        try:
            key = self._key(_event(message, self._own_service))
        except Exception:  # undecodable: it is rejected anyway, alone in its lane
            key = None
        return key or f"message:{message.message_id or id(message)}"

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # Runs in delivery order up to the first await (aio-pika starts one task per message
        # in that order), so joining the lane here keeps the broker's order within a key.
        key = self._lane_key(message)
        previous = self._lanes.get(key)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._lanes[key] = mine
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            if previous is not None:
                await asyncio.shield(previous)
            async with self._slots:
                if self._stopping:
                    return  # not acked: back to the queue when the channel closes
                await self._handle(message)
        finally:
            mine.set_result(None)
            if self._lanes.get(key) is mine:
                del self._lanes[key]
            if task is not None:
                self._inflight.discard(task)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            event = _event(message, self._own_service)
            _validate_body(event)
        except UndecodableEvent as exc:
            log.error(
                "dead-lettering undecodable message %s on %s: %s",
                message.message_id,
                self.queue,
                exc,
            )
            await self._settle(message.reject(requeue=False))
            return
        token = otel_context.attach(event.trace_context())
        try:
            with tracer.start_as_current_span(
                f"{self.queue} process",
                kind=trace.SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "rabbitmq",
                    "messaging.operation": "process",
                    "messaging.destination.name": self.queue,
                    "messaging.message.id": event.id,
                    "messaging.rabbitmq.destination.routing_key": event.type,
                },
            ):
                await self._handler(event)
        except UndecodableEvent as exc:
            log.error(
                "dead-lettering event %s (%s) on %s: %s", event.id, event.type, self.queue, exc
            )
            await self._settle(message.reject(requeue=False))
        except Exception:
            await self._retry_later(message, event)
        else:
            await self._settle(message.ack())
        finally:
            otel_context.detach(token)

    async def _retry_later(self, message: AbstractIncomingMessage, event: Event) -> None:
        failures = _failures(message) + 1
        log.exception(
            "handler failed for event %s (%s) on %s, failure %d of at most %d",
            event.id,
            event.type,
            self.queue,
            failures,
            self._spec.delivery_limit + 1,
        )
        if failures > self._spec.delivery_limit:
            await self._settle(message.reject(requeue=False))  # to <queue>.dlq
            return
        tier = self._spec.retry_tier(failures)
        assert self._channel is not None
        try:
            # Confirmed (and mandatory: a missing retry queue returns it) before the ack.
            await self._channel.default_exchange.publish(
                _copy(
                    message,
                    # The source established on arrival: the copy is published by this
                    # consumer's account, which is trusted to state it for its own queue.
                    {ATTEMPT_HEADER: failures, accounts.SOURCE_HEADER: event.source},
                    user_id=self._user,
                    app_id=event.source,
                ),
                routing_key=retry_queue(self.queue, tier),
                mandatory=True,
            )
        except Exception as exc:
            # No retry queue to park it in: hand it back (the delivery limit still applies).
            log.warning("could not park event %s for a retry: %r", event.id, exc)
            await self._settle(message.nack(requeue=True))
            return
        await self._settle(message.ack())

    async def _settle(self, settlement: Any) -> None:
        try:
            await settlement
        except Exception as exc:
            # The channel is gone; the broker redelivers the message and the inbox dedupes it.
            log.warning("could not settle a message on %s: %s", self.queue, exc)


def _failures(message: AbstractIncomingMessage) -> int:
    try:
        return int((message.headers or {}).get(ATTEMPT_HEADER) or 0)
    except (TypeError, ValueError):
        return 0


def _copy(
    message: AbstractIncomingMessage,
    headers: dict[str, Any],
    *,
    user_id: str | None,
    app_id: str | None,
) -> aio_pika.Message:
    """A persistent copy of a delivered message (same id and properties), headers updated,
    published by `user_id` (the copier's broker user) on behalf of `app_id`."""
    merged = {
        k: v
        for k, v in (message.headers or {}).items()
        if k
        not in (
            "x-delivery-count",
            "x-death",
            "x-first-death-reason",
            "x-first-death-queue",
            "x-first-death-exchange",
        )
    }
    merged.update(headers)
    return aio_pika.Message(
        body=message.body,
        headers={k: v for k, v in merged.items() if v is not None},
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=DeliveryMode.PERSISTENT,
        priority=message.priority,
        correlation_id=message.correlation_id,
        reply_to=message.reply_to,
        message_id=message.message_id,
        timestamp=message.timestamp,
        type=message.type,
        app_id=app_id,
        user_id=user_id,
    )


# ---------------------------------------------------------------------------------------------
# The bus

# Whatever no queue binds goes to the alternate exchange, into the parking queue: confirmed,
# but kept (`python -m kit.bus unrouted list|replay`), never dropped.
EXCHANGE_ARGUMENTS = {"alternate-exchange": UNROUTED_EXCHANGE}


async def _declare_exchanges(connection: AbstractRobustConnection) -> None:
    """The exchanges and the parking queue; migrates a v1 `emporium.events` (no alternate)."""
    async with connection.channel(publisher_confirms=False) as channel:
        unrouted = await channel.declare_exchange(
            UNROUTED_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True, robust=False
        )
        parked = await channel.declare_queue(
            UNROUTED_QUEUE, durable=True, arguments={"x-queue-type": "quorum"}, robust=False
        )
        await parked.bind(unrouted, routing_key="", robust=False)
    try:
        async with connection.channel(publisher_confirms=False) as channel:
            await channel.declare_exchange(
                EXCHANGE,
                aio_pika.ExchangeType.TOPIC,
                durable=True,
                arguments=EXCHANGE_ARGUMENTS,
                robust=False,
            )
    except aiormq.exceptions.ChannelPreconditionFailed:
        # Declared by a v1 bus without the alternate exchange; arguments cannot change, so it
        # is recreated. Its bindings go with it: every service redeclares the whole topology
        # at start (declare_topology), right after connecting.
        log.warning("recreating exchange %s with its alternate exchange", EXCHANGE)
        async with connection.channel(publisher_confirms=False) as channel:
            await channel.exchange_delete(EXCHANGE)
            await channel.declare_exchange(
                EXCHANGE,
                aio_pika.ExchangeType.TOPIC,
                durable=True,
                arguments=EXCHANGE_ARGUMENTS,
                robust=False,
            )


class Bus:
    """A service's connection to the event backbone. Make one with `await Bus.connect(...)`."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        channel: AbstractChannel,
        exchange: AbstractExchange,
        source: str,
        user: str | None = None,
    ) -> None:
        self.source = source
        # The broker user of the connection: set as the user_id of everything published.
        self.user = user
        self._connection = connection
        self._channel = channel
        self._exchange = exchange
        self._consumers: list[Consumer] = []
        self._specs: dict[str, QueueSpec] = {}
        self._depths: asyncio.Task[None] | None = None
        # Resolved when the current connection drops: aiormq may leave the confirms of an
        # abruptly lost connection pending, and a publish must fail then, not hang.
        self._lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        connection.close_callbacks.add(self._on_connection_closed)

    def _on_connection_closed(self, *_: object) -> None:
        if not self._lost.done():
            self._lost.set_result(None)

    @classmethod
    async def connect(
        cls,
        settings: RabbitSettings,
        source: str,
        *,
        wait_seconds: float = 60.0,
        reconnect_interval: float = 1.0,
    ) -> Bus:
        """Connects as service `source`, retrying for `wait_seconds` while the broker starts."""
        deadline = time.monotonic() + wait_seconds
        try:
            async for attempt in retry.until_up(wait_seconds, first_wait=0.5, max_wait=0.5):
                with attempt:
                    connection = await aio_pika.connect_robust(
                        settings.url,
                        client_properties={"connection_name": source},
                        reconnect_interval=reconnect_interval,
                        timeout=max(1.0, min(10.0, deadline - time.monotonic())),
                    )
        except Exception as exc:
            raise ConnectionError(f"RabbitMQ unreachable: {exc!r}") from exc
        user = _login(settings.url)
        # A service account (kit.accounts) may not configure the exchanges: the administrator
        # declared them, it only checks that they are there.
        passive = accounts.service_of(user) is not None
        try:
            if not passive:
                await _declare_exchanges(connection)
            # on_return_raises: a returned (unroutable) message fails its publish. With the
            # alternate exchange nothing is returned; if the parking queue is gone, it would be.
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            exchange = await channel.declare_exchange(
                EXCHANGE,
                aio_pika.ExchangeType.TOPIC,
                durable=True,
                arguments=EXCHANGE_ARGUMENTS,
                passive=passive,
            )
            await channel.declare_exchange(
                DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True, passive=passive
            )
        except BaseException:
            await connection.close()
            raise
        return cls(connection, channel, exchange, source, user)

    @property
    def specs(self) -> Mapping[str, QueueSpec]:
        """The queues this bus declared, and how (their consumers retry accordingly)."""
        return dict(self._specs)

    async def close(self) -> None:
        if self._depths is not None:
            self._depths.cancel()
            await asyncio.gather(self._depths, return_exceptions=True)
        for consumer in self._consumers:
            await consumer.stop()
        await self._connection.close()

    async def __aenter__(self) -> Bus:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- publishing -------------------------------------------------------------------------

    async def publish(self, events: Sequence[Event], *, confirm_seconds: float = 30.0) -> None:
        """Publishes `events` in order, all in flight at once; returns when all are confirmed.

        Raises PublishError if the broker nacks any, the connection drops or `confirm_seconds`
        pass (waiting for a reconnection counts); nothing is known then about the unconfirmed.
        """
        if not events:
            return
        spans = [_publish_span(e) for e in events]
        try:
            await self._publish(events, [headers for _, headers in spans], confirm_seconds)
        except PublishError as exc:
            for span, _ in spans:
                span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)))
            raise
        finally:
            for span, _ in spans:
                span.end()

    async def _publish(
        self, events: Sequence[Event], headers: Sequence[dict[str, Any]], confirm_seconds: float
    ) -> None:
        try:
            async with asyncio.timeout(confirm_seconds):
                await self._channel.ready()  # type: ignore[attr-defined]
                if self._lost.done():  # an earlier connection's; this one is up
                    self._lost = asyncio.get_running_loop().create_future()
                lost = self._lost
                # Tasks start in order and the channel's lock is fair: wire order = list order.
                confirms = asyncio.gather(
                    *(
                        self._exchange.publish(
                            _message(e, h, self.user), routing_key=e.type, mandatory=True
                        )
                        for e, h in zip(events, headers, strict=True)
                    ),
                    return_exceptions=True,
                )
                try:
                    await asyncio.wait({confirms, lost}, return_when=asyncio.FIRST_COMPLETED)
                    if not confirms.done():
                        # Lost: give aiormq a moment to fail the confirms itself (so its own
                        # futures are collected), then stop waiting for them.
                        await asyncio.wait({confirms}, timeout=1.0)
                finally:
                    if not confirms.done():
                        confirms.cancel()
                        await asyncio.gather(confirms, return_exceptions=True)
                if confirms.cancelled():
                    raise PublishError("connection lost while waiting for confirms")
                results = confirms.result()
        except PublishError:
            raise
        except TimeoutError:
            raise PublishError(f"not confirmed within {confirm_seconds} s") from None
        except asyncio.CancelledError:
            # aiormq fails the confirms of a connection it drops with CancelledError: tell that
            # apart from our own cancellation, which must propagate.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            raise PublishError("connection lost while waiting for confirms") from None
        except Exception as exc:
            raise PublishError(f"publish failed: {exc!r}") from exc
        failed = [
            (event, result)
            for event, result in zip(events, results, strict=True)
            if not isinstance(result, Basic.Ack)
        ]
        if failed:
            event, result = failed[0]
            raise PublishError(
                f"{len(failed)} of {len(events)} events not confirmed "
                f"(first: {event.id} {event.type}: {result!r})"
            )

    # -- topology ---------------------------------------------------------------------------

    async def declare_topology(
        self,
        queues: Mapping[str, Iterable[str]] | None = None,
        *,
        delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
    ) -> None:
        """Declares every queue of the topology (`kit.topology.QUEUES`) with its bindings.

        Every service calls it at start, whichever queue it consumes: an event published
        before its consumer ever ran then waits in that consumer's queue. Idempotent. Connected
        with a service account (kit.accounts), only that service's queue: the administrator's
        `python -m kit.accounts rabbitmq` declares the rest.
        """
        # A service account may configure its own queues only; `python -m kit.accounts
        # rabbitmq` (the administrator) declared the whole topology before the services start.
        own = accounts.service_of(self.user)
        for queue, keys in (topology.QUEUES if queues is None else queues).items():
            if own is not None and queue != own:
                continue
            await self.declare_queue(
                queue, keys, delivery_limit=delivery_limit, retry_delays=retry_delays
            )

    async def apply_topology(self, name: str | None = None, queue: str | None = None) -> None:
        """What every service calls at start: declares the whole topology (`declare_topology`).

        A service whose queue is renamed (`queue` is not its topology `name`: a test's queue of
        its own) declares only that queue, bound as the topology's `name` entry, so tests leave
        nothing behind in the platform's queues.
        """
        if name is not None and queue is not None and queue != name:
            await self.declare_queue(queue, topology.event_types(name))
        else:
            await self.declare_topology()

    async def declare_queue(
        self,
        queue: str,
        routing_keys: Iterable[str],
        *,
        delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
    ) -> None:
        """Declares a consuming service's quorum queue, bound to `routing_keys`, its retry
        queues and its DLQ.

        A message is handed to consumers at most `delivery_limit` + 1 times, then dead-lettered.
        Between failures it waits in `<queue>.retry.<i>` (`retry_delays[i]` seconds; the last
        delay repeats). Idempotent; declaring an existing queue with other arguments fails
        (PRECONDITION_FAILED).
        """
        if not retry_delays or min(retry_delays) <= 0:
            raise ValueError("retry_delays must be positive")
        dlq_name = dead_letter_queue(queue)
        quorum = {
            "x-queue-type": "quorum",
            # At-least-once dead-lettering: a message is kept until its target queue has
            # confirmed it (the default, at-most-once, may drop it). Needs reject-publish.
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }
        async with self._connection.channel(publisher_confirms=False) as channel:
            dlq = await channel.declare_queue(
                dlq_name, durable=True, arguments={"x-queue-type": "quorum"}, robust=False
            )
            await dlq.bind(DEAD_LETTER_EXCHANGE, routing_key=dlq_name, robust=False)
            for tier, delay in enumerate(retry_delays):
                # Expired messages dead-letter through the default exchange back to `queue`.
                await channel.declare_queue(
                    retry_queue(queue, tier),
                    durable=True,
                    arguments={
                        **quorum,
                        "x-message-ttl": max(1, round(delay * 1000)),
                        "x-dead-letter-exchange": "",
                        "x-dead-letter-routing-key": queue,
                    },
                    robust=False,
                )
            amqp_queue = await channel.declare_queue(
                queue,
                durable=True,
                arguments={
                    **quorum,
                    "x-delivery-limit": delivery_limit,
                    "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
                    "x-dead-letter-routing-key": dlq_name,
                },
                robust=False,
            )
            for key in routing_keys:
                await amqp_queue.bind(EXCHANGE, routing_key=key, robust=False)
        self._specs[queue] = QueueSpec(delivery_limit, tuple(retry_delays))

    async def delete_queue(self, queue: str) -> None:
        """Deletes a queue and its DLQ, messages included (tests, retiring a consumer)."""
        async with self._connection.channel(publisher_confirms=False) as channel:
            retries = len(self._specs.get(queue, QueueSpec()).retry_delays)
            names = [queue, dead_letter_queue(queue)]
            names += [retry_queue(queue, tier) for tier in range(retries)]
            for name in names:
                await channel.queue_delete(name, if_unused=False, if_empty=False)
        self._specs.pop(queue, None)

    async def queue_exists(self, queue: str) -> bool:
        """Whether `queue` and its DLQ exist."""
        try:
            for name in (queue, dead_letter_queue(queue)):
                await self.message_count(name)
        except aiormq.exceptions.ChannelNotFoundEntity:
            return False
        return True

    async def message_count(self, queue: str) -> int:
        """How many messages are ready in `queue` (the broker's count may lag a moment)."""
        async with self._connection.channel(publisher_confirms=False) as channel:
            amqp_queue = await channel.declare_queue(queue, passive=True, robust=False)
            return int(amqp_queue.declaration_result.message_count or 0)

    # -- consuming --------------------------------------------------------------------------

    def subscribe(
        self,
        queue: str,
        subscriptions: Mapping[type[Message], TypedHandler],
        *,
        inbox: Inbox | None,
        concurrency: int = DEFAULT_CONCURRENCY,
        prefetch: int | None = None,
        key: Callable[[Event], str | None] = aggregate_key,
    ) -> Consumer:
        """The consumer entry point of a service: `queue` (declared by `declare_topology`, or
        by `declare_queue` for a queue of its own) handled by `subscriptions`.

        `subscriptions` is the service's `consumers.subscriptions(handlers)`: event class ->
        `async (message, event)`. Each event is decoded, deduplicated through `inbox` (None:
        the handlers are idempotent by construction) and handed to its handler; see Consumer
        for concurrency, ordering and retries. Not started: run `consumer.run()` as a
        background task, or `await consumer.start()`.
        """
        handler = dispatch(subscriptions)
        if inbox is not None:
            handler = idempotent(inbox, handler)
        return self.consumer(queue, handler, concurrency=concurrency, prefetch=prefetch, key=key)

    def consumer(
        self,
        queue: str,
        handler: Handler,
        *,
        prefetch: int | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        key: Callable[[Event], str | None] = aggregate_key,
    ) -> Consumer:
        """A consumer of `queue` with a raw `async (Event) -> None` handler, not started yet.

        The message is acked after `handler` returns. Up to `concurrency` handlers run at once,
        one per `key` (the aggregate), on up to `prefetch` messages received ahead (default
        4 x concurrency). A failed message waits in a retry queue (see `declare_queue`).
        """
        if prefetch is None:
            prefetch = max(8, 4 * concurrency)
        concurrency = min(concurrency, prefetch)  # `prefetch=1`: one message at a time
        consumer = Consumer(
            self._connection,
            queue,
            handler,
            prefetch=prefetch,
            concurrency=concurrency,
            spec=self._specs.get(queue, QueueSpec()),
            key=key,
            user=self.user,
        )
        self._consumers.append(consumer)
        if telemetry.exporting() and self._depths is None:
            self._depths = asyncio.get_running_loop().create_task(self._report_depths())
        return consumer

    async def _report_depths(self, interval: float = 15.0) -> None:
        """Consumer lag and dead letters as gauges: the ready messages of each consumed queue
        and of its DLQ, read from the broker every `interval` seconds."""
        while True:
            for queue in {c.queue for c in self._consumers}:
                try:
                    depth = await self.message_count(queue)
                    dead = await self.message_count(dead_letter_queue(queue))
                except Exception as exc:  # broker restarting: report next round
                    log.debug("cannot read the depth of %s: %s", queue, exc)
                    continue
                telemetry.set_gauge("emporium.queue.depth", depth, queue=queue)
                telemetry.set_gauge("emporium.dlq.depth", dead, queue=queue)
            await asyncio.sleep(interval)

    async def consume(self, queue: str, handler: Handler, **options: Any) -> Consumer:
        """Starts consuming `queue` with `handler` (options as in `consumer`)."""
        consumer = self.consumer(queue, handler, **options)
        await consumer.start()
        return consumer

    # -- operator tools ---------------------------------------------------------------------

    async def list_dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        """Up to `limit` messages of `<queue>.dlq`, oldest first, left in place."""
        return await self._peek(dead_letter_queue(queue), limit)

    async def list_unrouted(self, limit: int = 100) -> list[DeadLetter]:
        """Up to `limit` events that no queue was bound to (the parking queue), left in place."""
        return await self._peek(UNROUTED_QUEUE, limit)

    async def replay_unrouted(self, limit: int | None = None) -> int:
        """Publishes the parked events to the exchange again (after the topology gained their
        binding); returns how many. One still unroutable comes back to the parking queue, and
        the replay stops when it meets it again."""
        replayed: set[str] = set()
        count = 0
        async with self._connection.channel(publisher_confirms=False) as channel:
            parked = await channel.declare_queue(UNROUTED_QUEUE, passive=True, robust=False)
            while limit is None or count < limit:
                message = await parked.get(no_ack=False, fail=False)
                if message is None:
                    break
                if message.message_id and message.message_id in replayed:
                    await message.nack(requeue=True)
                    break
                try:
                    routing_key = message.routing_key or str(message.type or "")
                    source = accounts.trusted_source(
                        message.user_id, message.app_id, message.headers or {}, None
                    )
                    await self._exchange.publish(
                        _copy(message, {}, user_id=self.user, app_id=source),
                        routing_key=routing_key,
                        mandatory=True,
                    )
                except BaseException:
                    with contextlib.suppress(Exception):
                        await message.nack(requeue=True)
                    raise
                await message.ack()
                if message.message_id:
                    replayed.add(message.message_id)
                count += 1
        return count

    async def _peek(self, name: str, limit: int) -> list[DeadLetter]:
        letters: list[DeadLetter] = []
        async with self._connection.channel(publisher_confirms=False) as channel:
            dlq = await channel.declare_queue(name, passive=True, robust=False)
            held: list[AbstractIncomingMessage] = []
            try:
                # Each get hands over the next message while the earlier ones stay unacked.
                while len(held) < limit:
                    message = await dlq.get(no_ack=False, fail=False)
                    if message is None:
                        break
                    held.append(message)
                    letters.append(DeadLetter.of(message))
            finally:
                for message in held:
                    with contextlib.suppress(Exception):
                        await message.nack(requeue=True)
        return letters

    async def replay_dead_letters(self, queue: str, limit: int | None = None) -> int:
        """Moves messages from `<queue>.dlq` back to `queue`; returns how many.

        Each is re-published to the queue alone (not to the exchange: other services already
        have it) with its original properties, and acked from the DLQ only once confirmed.
        Stops when the DLQ is empty, after `limit`, or when a replayed message is back already
        (it failed again while the replay was running).
        """
        replayed: set[str] = set()
        count = 0
        async with self._connection.channel(
            publisher_confirms=True, on_return_raises=True
        ) as channel:
            await channel.declare_queue(queue, passive=True, robust=False)
            dlq = await channel.declare_queue(dead_letter_queue(queue), passive=True, robust=False)
            while limit is None or count < limit:
                message = await dlq.get(no_ack=False, fail=False)
                if message is None:
                    break
                if message.message_id and message.message_id in replayed:
                    await message.nack(requeue=True)
                    break
                headers = {
                    k: v
                    for k, v in (message.headers or {}).items()
                    if k not in ("x-delivery-count", ATTEMPT_HEADER)
                }
                # Re-published by this bus's user: the source believed on arrival travels in
                # the header (trusted when that user is the queue's own service) and app_id.
                source = accounts.trusted_source(
                    message.user_id,
                    message.app_id,
                    headers,
                    accounts.service_of(accounts.rabbitmq_user(queue)),
                )
                headers[accounts.SOURCE_HEADER] = source
                copy = aio_pika.Message(
                    body=message.body,
                    headers=headers,
                    content_type=message.content_type,
                    content_encoding=message.content_encoding,
                    delivery_mode=DeliveryMode.PERSISTENT,
                    priority=message.priority,
                    correlation_id=message.correlation_id,
                    reply_to=message.reply_to,
                    message_id=message.message_id,
                    timestamp=message.timestamp,
                    type=message.type,
                    app_id=source,
                    user_id=self.user,
                )
                try:
                    # mandatory: if the queue vanished, the broker returns it and we keep it.
                    await channel.default_exchange.publish(copy, routing_key=queue, mandatory=True)
                except BaseException:
                    with contextlib.suppress(Exception):
                        await message.nack(requeue=True)
                    raise
                await message.ack()
                if message.message_id:
                    replayed.add(message.message_id)
                count += 1
        return count


# ---------------------------------------------------------------------------------------------
# CLI: python -m kit.bus dlq list|replay <queue>;  python -m kit.bus unrouted list|replay


async def _cli(args: argparse.Namespace) -> int:
    bus = await Bus.connect(RabbitSettings.from_env(), "kit.bus-cli", wait_seconds=5)
    try:
        if args.command == "unrouted":
            if args.action == "list":
                letters = await bus.list_unrouted(limit=args.limit or 100)
                for letter in letters:
                    print(
                        f"{letter.message_id or '-'}\t{letter.type or '-'}\t"
                        f"{letter.source or '-'}\t{letter.size} B"
                    )
                print(f"{len(letters)} unrouted event(s) in {UNROUTED_QUEUE}")
            else:
                count = await bus.replay_unrouted(limit=args.limit)
                print(f"replayed {count} event(s) from {UNROUTED_QUEUE} to {EXCHANGE}")
            return 0
        if not await bus.queue_exists(args.queue):
            print(
                f"no queue {args.queue!r} (or no {dead_letter_queue(args.queue)})", file=sys.stderr
            )
            return 2
        if args.action == "list":
            letters = await bus.list_dead_letters(args.queue, limit=args.limit or 100)
            for letter in letters:
                when = letter.first_death_time.isoformat() if letter.first_death_time else "-"
                print(
                    f"{letter.message_id or '-'}\t{letter.type or '-'}\t{letter.source or '-'}\t"
                    f"{letter.reason or '-'}\tdeaths={letter.deaths}\t{when}\t{letter.size} B"
                )
            print(f"{len(letters)} dead letter(s) in {dead_letter_queue(args.queue)}")
        else:
            count = await bus.replay_dead_letters(args.queue, limit=args.limit)
            print(
                f"replayed {count} message(s) from {dead_letter_queue(args.queue)} to {args.queue}"
            )
    finally:
        await bus.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kit.bus", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    dlq = sub.add_parser("dlq", help="inspect or replay a queue's dead letters")
    dlq.add_argument("action", choices=["list", "replay"])
    dlq.add_argument("queue", help="the consuming queue (its DLQ is <queue>.dlq)")
    dlq.add_argument("--limit", type=int, default=None, help="at most this many messages")
    unrouted = sub.add_parser("unrouted", help="inspect or replay events no queue was bound to")
    unrouted.add_argument("action", choices=["list", "replay"])
    unrouted.add_argument("--limit", type=int, default=None, help="at most this many messages")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    return asyncio.run(_cli(args))


if __name__ == "__main__":
    sys.exit(main())
