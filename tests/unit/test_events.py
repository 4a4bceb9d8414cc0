"""The event envelope: built from protobuf messages, decoded back, routed by type, traced."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from emporium.order.v1.order_events_pb2 import OrderCancelled, OrderPlaced
from google.protobuf.wrappers_pb2 import StringValue
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from kit.events import (
    Event,
    ForeignEvent,
    UndecodableEvent,
    UnknownEventType,
    dispatch,
    message_class,
    owner,
    routing_keys,
    type_name,
)

PRODUCER = SpanContext(
    trace_id=0x0AF7651916CD43DD8448EB211C80319C,
    span_id=0xB7AD6B7169203331,
    is_remote=False,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
)


def test_an_event_of_a_message_carries_its_full_proto_name_source_time_and_bytes() -> None:
    before = datetime.now(UTC)
    event = Event.of(OrderPlaced(order_id="o-1", user_id="u-1"), "order")
    assert uuid.UUID(event.id).version == 4
    assert event.type == "emporium.order.v1.OrderPlaced"
    assert event.source == "order"
    assert event.time.utcoffset() is not None
    assert event.time.utcoffset().total_seconds() == 0
    assert event.time.microsecond % 1000 == 0  # millisecond precision, as the stores keep it
    assert abs((event.time - before).total_seconds()) < 1
    assert OrderPlaced.FromString(event.data).order_id == "o-1"
    assert event.headers == {}  # no current span, no trace context


def test_an_event_made_inside_a_span_carries_its_trace_context() -> None:
    with trace.use_span(NonRecordingSpan(PRODUCER)):
        event = Event.of(OrderPlaced(order_id="o-1"), "order")
    assert event.headers["traceparent"] == (
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    )
    context = event.trace_context()
    assert trace.get_current_span(context).get_span_context().trace_id == PRODUCER.trace_id


def test_an_event_decodes_to_its_message_with_or_without_naming_the_class() -> None:
    event = Event.of(OrderPlaced(order_id="o-2"), "order")
    assert event.decode(OrderPlaced).order_id == "o-2"
    decoded = event.decode()  # the class found from the type, no registry
    assert isinstance(decoded, OrderPlaced)
    assert decoded.order_id == "o-2"
    assert message_class("google.protobuf.StringValue") is StringValue


def test_decoding_as_another_type_or_a_broken_body_raises_undecodable() -> None:
    event = Event.of(OrderPlaced(order_id="o-3"), "order")
    with pytest.raises(UndecodableEvent):
        event.decode(OrderCancelled)
    broken = Event(event.id, event.type, event.source, event.time, b"\xff\xff\xff")
    with pytest.raises(UndecodableEvent):
        broken.decode()
    with pytest.raises(UnknownEventType):
        message_class("emporium.nothing.v1.NeverDefined")


def test_event_times_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone"):
        Event.of(OrderPlaced(), "order", time=datetime(2030, 1, 1))


async def test_dispatch_calls_the_handler_registered_for_the_events_class() -> None:
    seen: list[tuple[str, str]] = []

    async def on_placed(message: OrderPlaced, event: Event) -> None:
        seen.append(("placed", message.order_id))

    async def on_cancelled(message: OrderCancelled, event: Event) -> None:
        seen.append(("cancelled", message.order_id))

    handlers = {OrderPlaced: on_placed, OrderCancelled: on_cancelled}
    handle = dispatch(handlers)
    await handle(Event.of(OrderCancelled(order_id="o-4"), "order"))
    await handle(Event.of(OrderPlaced(order_id="o-5"), "order"))
    assert seen == [("cancelled", "o-4"), ("placed", "o-5")]
    assert routing_keys(handlers) == [type_name(OrderPlaced), type_name(OrderCancelled)]
    with pytest.raises(UnknownEventType):  # dead-lettered by the bus, not dropped
        await handle(Event.of(StringValue(value="x"), "order"))


async def test_dispatch_refuses_an_event_whose_source_is_not_its_owning_service() -> None:
    seen: list[str] = []

    async def on_placed(message: OrderPlaced, event: Event) -> None:
        seen.append(message.order_id)

    handle = dispatch({OrderPlaced: on_placed})
    for impostor in ("payment", "", "order-evil"):
        with pytest.raises(ForeignEvent):  # an UndecodableEvent: dead-lettered at once
            await handle(Event.of(OrderPlaced(order_id="o-6"), impostor))
    assert seen == []
    assert owner("emporium.payment.v1.PaymentSucceeded") == "payment"
    assert owner("google.protobuf.StringValue") == ""
