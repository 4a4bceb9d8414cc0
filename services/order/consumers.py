"""The events the order service reacts to, all in one place (saga spec steps 3, 5, 8, 10).

- StockReserved -> CONFIRMED + OrderConfirmed; StockReservationFailed -> CANCELLED (out of
  stock) + OrderCancelled; StockReleased with reason EXPIRED -> CANCELLED (reservation expired).
- PaymentSucceeded -> PAID when it charged the order's total (otherwise CANCELLED, flagged and
  refunded: never PAID); or, for an order already cancelled, OrderCancelled again with the
  payment id so that payment refunds it); PaymentFailed -> CANCELLED (payment failed).
- ShipmentCreated, ShipmentStatusChanged(in transit / out for delivery) -> SHIPPED;
  ShipmentStatusChanged(delivered) -> DELIVERED.

Each reaction is a compare-and-set on the order's version and the state machine ignores an
event that does not apply to the current state, so a redelivered event changes nothing even
without the inbox; the inbox (kit.inbox.CassandraInbox, recorded after the effect: a
conditional write cannot share a batch with it) only saves the work.
"""

from __future__ import annotations

from emporium.catalog.v1 import catalog_events_pb2, reservation_pb2
from emporium.payment.v1 import payment_events_pb2
from emporium.shipping.v1 import shipment_pb2, shipping_events_pb2

from kit import events
from kit.events import Event
from services.order import mapping
from services.order.handlers import OrderHandlers

Shipment = shipment_pb2.Shipment
IN_TRANSIT = (Shipment.STATE_IN_TRANSIT, Shipment.STATE_OUT_FOR_DELIVERY)


# Its entry in kit.topology.QUEUES.
QUEUE = "order"


def subscriptions(orders: OrderHandlers) -> dict[type, events.TypedHandler]:
    async def on_stock_reserved(message: catalog_events_pb2.StockReserved, event: Event):
        await orders.stock_reserved(message.order_id)

    async def on_stock_reservation_failed(message, event: Event) -> None:
        await orders.stock_reservation_failed(message.order_id)

    async def on_stock_released(message: catalog_events_pb2.StockReleased, event: Event):
        if message.reason == reservation_pb2.Reservation.RELEASE_REASON_EXPIRED:
            await orders.reservation_expired(message.order_id)

    async def on_payment_succeeded(message: payment_events_pb2.PaymentSucceeded, event: Event):
        amount = mapping.money_from_proto(message.amount)
        await orders.payment_succeeded(message.order_id, message.payment_id, amount)

    async def on_payment_failed(message: payment_events_pb2.PaymentFailed, event: Event):
        await orders.payment_failed(message.order_id, message.payment_id, message.failure_message)

    async def on_shipment_created(message: shipping_events_pb2.ShipmentCreated, event: Event):
        await orders.shipment_created(message.order_id, message.shipment_id)

    async def on_shipment_status_changed(
        message: shipping_events_pb2.ShipmentStatusChanged, event: Event
    ) -> None:
        if message.state in IN_TRANSIT:
            await orders.shipment_in_transit(message.order_id, message.shipment_id)
        elif message.state == Shipment.STATE_DELIVERED:
            await orders.shipment_delivered(message.order_id, message.shipment_id)

    return {
        catalog_events_pb2.StockReserved: on_stock_reserved,
        catalog_events_pb2.StockReservationFailed: on_stock_reservation_failed,
        catalog_events_pb2.StockReleased: on_stock_released,
        payment_events_pb2.PaymentSucceeded: on_payment_succeeded,
        payment_events_pb2.PaymentFailed: on_payment_failed,
        shipping_events_pb2.ShipmentCreated: on_shipment_created,
        shipping_events_pb2.ShipmentStatusChanged: on_shipment_status_changed,
    }
