"""The events the payment service reacts to, all in one place.

- OrderConfirmed: charge the order's total once (`charge_order`: a payment claimed by order id
  before the provider is called with the order id as idempotency key) -> PaymentSucceeded or
  PaymentFailed through the outbox.
- OrderCancelled: refund what is left of the order's succeeded payment, once
  (`refund_cancelled_order`, refund id derived from the payment) -> PaymentRefunded.

Both go through the inbox of handled event ids (kit.inbox.idempotent) on queue `payment`; the
handlers are idempotent by themselves too (conditional writes, derived ids, provider keys), so
a redelivery or a concurrent duplicate delivery changes nothing and charges nothing twice. A
crash before the ack leaves the message to be redelivered, which resumes where it stopped.
"""

from __future__ import annotations

from emporium.order.v1 import order_events_pb2

from kit import events
from kit.events import Event
from services.payment import mapping
from services.payment.handlers import PaymentHandlers

# Its entry in kit.topology.QUEUES.
QUEUE = "payment"


def subscriptions(payment: PaymentHandlers) -> dict[type, events.TypedHandler]:
    async def on_order_confirmed(message: order_events_pb2.OrderConfirmed, event: Event) -> None:
        await payment.charge_order(
            order_id=message.order_id,
            user_id=message.user_id,
            payment_method_id=message.payment_method_id,
            amount=mapping.money_from(message.total, "total"),
        )

    async def on_order_cancelled(message: order_events_pb2.OrderCancelled, event: Event) -> None:
        await payment.refund_cancelled_order(message.order_id)

    return {
        order_events_pb2.OrderConfirmed: on_order_confirmed,
        order_events_pb2.OrderCancelled: on_order_cancelled,
    }
