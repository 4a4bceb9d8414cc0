"""The events the shipping service reacts to (checkout saga steps 7 and 9), all in one place.

- OrderConfirmed: keep the order's user, destination, shipping option and items (an upsert),
  then ship it if its payment already arrived.
- PaymentSucceeded: mark the order paid (an upsert), then create its one shipment if the
  details are known. PaymentSucceeded carries no address, so the two events may arrive in
  either order; whichever comes second creates the shipment. The shipment id derives from the
  order id and is claimed with INSERT ... IF NOT EXISTS, so a redelivery, a second payment
  event or two replicas at once create one shipment.
- OrderCancelled: mark the order cancelled (a paid order is then never shipped) and cancel its
  shipment if the carrier does not have the parcel yet.

An event without an order id is dead-lettered at once. Each handler is naturally idempotent;
the queue's consumer also goes through the Cassandra inbox of handled event ids. A failure
raises, so the message is redelivered after a back-off.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from emporium.order.v1 import order_events_pb2
from emporium.payment.v1 import payment_events_pb2

from kit.events import Event, UndecodableEvent
from services.shipping import mapping
from services.shipping.domain import OrderDetails
from services.shipping.handlers import ShippingHandlers

QUEUE = "shipping"


def _order_id(message: Any, event: Event) -> str:
    """The event's order id; an event without one goes to the DLQ at once (no retry helps)."""
    order_id = message.order_id.strip()
    if not order_id:
        raise UndecodableEvent(f"event {event.id} ({event.type}) has no order_id")
    return order_id


def subscriptions(handlers: ShippingHandlers) -> Mapping[type, Any]:
    """Event class -> `async (message, event)`: what the shipping queue is bound to."""

    async def on_order_confirmed(message: order_events_pb2.OrderConfirmed, event: Event) -> None:
        await handlers.order_confirmed(
            OrderDetails(
                order_id=_order_id(message, event),
                user_id=message.user_id,
                destination=mapping.address_from_proto(message.shipping_address),
                shipping_option_id=message.shipping_option_id,
                items=tuple(mapping.items_from_line_items(message.line_items)),
            )
        )

    async def on_payment_succeeded(
        message: payment_events_pb2.PaymentSucceeded, event: Event
    ) -> None:
        await handlers.payment_succeeded(
            _order_id(message, event), message.user_id, message.payment_id
        )

    async def on_order_cancelled(message: order_events_pb2.OrderCancelled, event: Event) -> None:
        await handlers.order_cancelled(_order_id(message, event))

    return {
        order_events_pb2.OrderConfirmed: on_order_confirmed,
        payment_events_pb2.PaymentSucceeded: on_payment_succeeded,
        order_events_pb2.OrderCancelled: on_order_cancelled,
    }
