"""Domain events: the envelope an event travels in, built from and decoded to protobuf messages.

An `Event` is what the outbox stores, the bus publishes and a consumer handler receives. Its
fields map one to one onto the AMQP properties (ARCHITECTURE.md section 4, CloudEvents' AMQP
binding in spirit):

    id       message_id    a UUID4; the consumer-side inbox deduplicates on it
    type     type          the full proto name (`emporium.order.v1.OrderPlaced`), also the
                           routing key on the `emporium.events` exchange
    source   app_id        the publishing service
    time     timestamp     when the event happened (UTC, millisecond precision)
    data     (body)        the serialized protobuf message
    headers  headers       W3C trace context (`traceparent`, `tracestate`) of the code that
                           produced the event, so a consumer's span joins the producer's trace

No registry is needed to map `type` back to a message class: every generated `*_pb2` module
registers its messages in protobuf's default descriptor pool when imported, and
`message_class(type)` looks the class up there. A consumer that imports the events it handles can
therefore decode them, and `dispatch({OrderPlaced: on_order_placed, ...})` routes on the type.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message
from opentelemetry import propagate
from opentelemetry.context import Context

log = logging.getLogger("emporium.events")

M = TypeVar("M", bound=Message)

Handler = Callable[["Event"], Awaitable[None]]


class UndecodableEvent(ValueError):
    """An event whose envelope or body cannot be decoded; redelivering it cannot help.

    The bus dead-letters such a message at once instead of retrying it up to the delivery limit.
    """


class UnknownEventType(UndecodableEvent):
    """No protobuf message with the event's type is loaded in this process."""


class ForeignEvent(UndecodableEvent):
    """An event whose `source` is not the service that owns its type: dead-lettered unread."""


def owner(type_: str) -> str:
    """The service that alone publishes an event type: `emporium.<service>.v1.X` -> <service>.

    Events live in their publisher's proto package (ARCHITECTURE.md section 3); "" for a type
    outside the emporium packages.
    """
    parts = type_.split(".")
    return parts[1] if len(parts) >= 4 and parts[0] == "emporium" else ""


def type_name(message: Message | type[Message]) -> str:
    """The full proto name of a message or message class: the event type and routing key."""
    return message.DESCRIPTOR.full_name


def message_class(type_: str) -> type[Message]:
    """The generated class of the proto message named `type_` (its `_pb2` module must be loaded)."""
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(type_)
    except KeyError:
        raise UnknownEventType(f"no protobuf message named {type_!r} is loaded") from None
    return message_factory.GetMessageClass(descriptor)


def _now() -> datetime:
    # Millisecond precision: what Cassandra and MongoDB store, so an event read back from an
    # outbox is equal to the one written.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class Event:
    """One domain event: a protobuf message plus its envelope (see the module docstring)."""

    id: str
    type: str
    source: str
    time: datetime
    data: bytes
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)

    @classmethod
    def of(
        cls,
        message: Message,
        source: str,
        *,
        id: str | None = None,
        time: datetime | None = None,
    ) -> Event:
        """An event carrying `message`, published by service `source`, in the current trace."""
        headers: dict[str, str] = {}
        # Captured now, while the span of the request that caused the event is current: the
        # relay publishes later, from a background task with no such span.
        propagate.inject(headers)
        if time is not None and time.tzinfo is None:
            raise ValueError("event time must be timezone-aware (UTC)")
        return cls(
            id=id or str(uuid.uuid4()),
            type=type_name(message),
            source=source,
            time=(time or _now()).astimezone(UTC),
            data=message.SerializeToString(),
            headers=headers,
        )

    def decode(self, cls: type[M] | None = None) -> M:
        """The protobuf message; `cls` (checked against `type`) or the class `type` names.

        Raises UndecodableEvent if the body is not a valid message of that type.
        """
        if cls is None:
            cls = message_class(self.type)  # type: ignore[assignment]
        elif type_name(cls) != self.type:
            raise UndecodableEvent(f"event {self.id} is a {self.type}, not a {type_name(cls)}")
        try:
            return cls.FromString(self.data)  # type: ignore[union-attr, return-value]
        except DecodeError as exc:
            raise UndecodableEvent(f"event {self.id}: body is not a valid {self.type}") from exc

    def trace_context(self) -> Context:
        """The OpenTelemetry context of the producer, extracted from `headers`."""
        return propagate.extract(dict(self.headers))


TypedHandler = Callable[[M, Event], Awaitable[None]]

# The fields that name the aggregate an event is about, most specific first.
AGGREGATE_FIELDS = ("order_id", "product_id", "user_id")


def aggregate_key(event: Event) -> str | None:
    """The aggregate `event` is about: `order:<id>`, `product:<id>` (also a `product` message's
    `id`) or `user:<id>`, from its decoded body; None for an event of no known aggregate or
    of a type not loaded here. Consumers handle the events of one key one at a time, in order.
    """
    try:
        message = event.decode()
    except UndecodableEvent:
        return None
    fields = message.DESCRIPTOR.fields_by_name
    for name in AGGREGATE_FIELDS:
        if name in fields:
            value = getattr(message, name)
            if value:
                return f"{name.removesuffix('_id')}:{value}"
    if "product" in fields and message.HasField("product"):  # type: ignore[arg-type]
        product_id = getattr(message.product, "id", "")  # type: ignore[attr-defined]
        if product_id:
            return f"product:{product_id}"
    return None


def routing_keys(handlers: Mapping[type[Message], object] | Iterable[type[Message]]) -> list[str]:
    """The routing keys (event types) of the message classes a consumer handles."""
    return [type_name(cls) for cls in handlers]


def dispatch(handlers: Mapping[type[Message], TypedHandler]) -> Handler:
    """One bus handler that decodes each event and calls the handler registered for its class.

    `handlers` maps a message class to `async (message, event) -> None`. An event of a type with
    no handler raises UnknownEventType, so it is dead-lettered where an operator sees it (the
    queue is bound to keys nobody handles: a wiring mistake) instead of being dropped silently.
    An emporium event whose `source` is not its owning service (`owner`) raises ForeignEvent
    before it is decoded: only payment says a payment succeeded.
    """
    by_type = {type_name(cls): (cls, handler) for cls, handler in handlers.items()}

    async def handle(event: Event) -> None:
        try:
            cls, handler = by_type[event.type]
        except KeyError:
            raise UnknownEventType(f"no handler for {event.type}") from None
        expected = owner(event.type)
        if expected and event.source != expected:
            log.warning(
                "event %s refused: %s comes from %s, not from %s",
                event.id,
                event.type,
                event.source[:64] or "(no source)",
                expected,
            )
            raise ForeignEvent(f"{event.type} is published by {expected}, not {event.source!r}")
        await handler(event.decode(cls), event)

    return handle
