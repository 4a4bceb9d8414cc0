"""The event topology: which queue receives which events, written once for the whole platform.

`QUEUES` maps a consuming service's queue to the event types (routing keys, full proto names)
bound to it. Every service applies the whole table at start (`Bus.declare_topology()`), not
only its own entry, so an event published before its consumer ever ran waits in that queue.
A unit test (tests/unit/test_topology.py) checks that each service's
`consumers.subscriptions()` handles exactly its entry here.

Add a consumer (say a `notification` service):

1. list the events it handles here, `"notification": _types(user_events_pb2.UserRegistered, ...)`
   (or `PUBLIC_EVENTS` for everything public, as `webhooks` does);
2. in its `consumers.py`, `subscriptions(handlers) -> {EventClass: async (message, event)}`
   with exactly those classes, and add the service to the topology unit test;
3. in its bootstrap: `await bus.declare_topology()` then
   `background.append(bus.subscribe(settings.queue, consumers.subscriptions(h), inbox=inbox).run)`.

Queues are only ever added to or widened (a binding removed here is not unbound from a running
broker; do that by hand, `rabbitmqctl` or the management UI, when retiring an event).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

import emporium
from emporium.access.v1 import access_pb2
from emporium.catalog.v1 import catalog_events_pb2
from emporium.file.v1 import file_events_pb2
from emporium.order.v1 import order_events_pb2
from emporium.payment.v1 import payment_events_pb2
from emporium.shipping.v1 import shipping_events_pb2
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message


def _types(*classes: type[Message]) -> frozenset[str]:
    return frozenset(cls.DESCRIPTOR.full_name for cls in classes)


def _event_modules() -> list[object]:
    """Every generated `<domain>_events_pb2` module: each message in them is an event."""
    modules = []
    for root in emporium.__path__:
        for path in sorted(Path(root).glob("*/v*/*_events_pb2.py")):
            domain, version = path.parent.parent.name, path.parent.name
            modules.append(importlib.import_module(f"emporium.{domain}.{version}.{path.stem}"))
    return modules


def _is_internal(descriptor: Descriptor) -> bool:
    return bool(descriptor.GetOptions().Extensions[access_pb2.internal_event])


@cache
def all_events() -> frozenset[str]:
    """Every event type the platform publishes (the messages of every `*_events.proto`)."""
    return frozenset(
        message.full_name
        for module in _event_modules()
        for message in module.DESCRIPTOR.message_types_by_name.values()  # type: ignore[attr-defined]
    )


@cache
def public_events() -> frozenset[str]:
    """The events that may leave the platform: all but those marked `internal_event`."""
    return frozenset(
        message.full_name
        for module in _event_modules()
        for message in module.DESCRIPTOR.message_types_by_name.values()  # type: ignore[attr-defined]
        if not _is_internal(message)
    )


PUBLIC_EVENTS = public_events()

QUEUES: Mapping[str, frozenset[str]] = {
    "cart": _types(
        order_events_pb2.OrderPlaced,
        catalog_events_pb2.ProductUpdated,
        catalog_events_pb2.ProductArchived,
        catalog_events_pb2.ProductPublished,
    ),
    "catalog": _types(
        order_events_pb2.OrderPlaced,
        payment_events_pb2.PaymentSucceeded,
        order_events_pb2.OrderCancelled,
        file_events_pb2.FileUploaded,
        file_events_pb2.FileDeleted,
    ),
    "order": _types(
        catalog_events_pb2.StockReserved,
        catalog_events_pb2.StockReservationFailed,
        catalog_events_pb2.StockReleased,
        payment_events_pb2.PaymentSucceeded,
        payment_events_pb2.PaymentFailed,
        shipping_events_pb2.ShipmentCreated,
        shipping_events_pb2.ShipmentStatusChanged,
    ),
    "payment": _types(order_events_pb2.OrderConfirmed, order_events_pb2.OrderCancelled),
    "shipping": _types(
        order_events_pb2.OrderConfirmed,
        payment_events_pb2.PaymentSucceeded,
        order_events_pb2.OrderCancelled,
    ),
    # Every public event, for endpoints to subscribe to (the webhooks service filters).
    "webhooks": PUBLIC_EVENTS,
}


def event_types(queue: str, topology: Mapping[str, Iterable[str]] = QUEUES) -> frozenset[str]:
    """The event types bound to `queue`; KeyError names a queue missing from the topology."""
    try:
        return frozenset(topology[queue])
    except KeyError:
        raise KeyError(f"queue {queue!r} is not in kit.topology.QUEUES") from None
