"""The catalog's event subscriptions (checkout saga steps 2 and 6), all in one place.

- OrderPlaced -> `reserve_stock(order_id, lines)`: all lines or none; the handler publishes
  StockReserved or StockReservationFailed itself. Lines of one product are merged first (the
  reservation keeps one line per product).
- PaymentSucceeded -> `commit_reservation(order_id)`: the held units leave the stock for good.
  A reservation that was released meanwhile (the order was cancelled, or it expired) is left
  alone: the order service refunds such a payment (saga step 10).
- OrderCancelled -> `release_reservation(order_id, ORDER_CANCELLED)` while it holds stock. If it
  was already committed (cancelled after payment), the units are put back with one stock
  adjustment per product (reason OTHER, note "order cancelled: <order id>") whose request id is
  derived from the order and product, so a second OrderCancelled for the same order (the order
  service sends another one with the payment id) never restocks twice. A cancel that overtakes
  its OrderPlaced (a redelivery out of order) reserves and releases at once, so the late
  OrderPlaced finds the order's reservation released and holds nothing.

- FileUploaded (a READY product image, from the file service) -> `record_image`: the image
  joins the end of its product's gallery, the cached product is refreshed and ProductUpdated
  published. Idempotent: the image id is the file id.
- FileDeleted (a product image) -> `forget_image`: the image leaves the gallery.
  kit.events.dispatch accepts them only from the file service (the envelope's `source`): a
  product image is public, so no other service may put one in the catalog.

Every handler is idempotent per order id (the reservation's state decides), and the queue's
consumer also goes through the Cassandra inbox of handled event ids, so a redelivery does no
work twice. A failure that a retry can cure (ABORTED: a reservation still being made, a
contended stock row; a database error) raises, so the message is redelivered after a back-off.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from emporium.file.v1 import file_events_pb2, file_pb2
from emporium.order.v1 import order_events_pb2
from emporium.payment.v1 import payment_events_pb2

from kit import errors
from kit.auth import Principal
from kit.events import Event, UndecodableEvent
from services.catalog import mapping
from services.catalog.domain import AdjustReason, Line, ReleaseReason, ReservationState
from services.catalog.handlers import CatalogHandlers, InsufficientStock

QUEUE = "catalog"
# Who the restock adjustments of cancelled, already paid orders are recorded as.
SYSTEM_CALLER = Principal(user_id="system:order-cancelled")
RESTOCK_NOTE = "order cancelled"
# The only service whose FileUploaded / FileDeleted the catalog accepts.
PRODUCT_IMAGE = file_pb2.File.PURPOSE_PRODUCT_IMAGE

log = logging.getLogger(__name__)


def restock_request_id(order_id: str, product_id: str) -> str:
    """The idempotency key of putting back one product's units of a cancelled, paid order."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"catalog/order-cancelled/{order_id}/{product_id}"))


def merged_lines(items: Iterable[Any]) -> list[Line]:
    """One line per product (quantities added up), in first-seen order."""
    totals: dict[str, int] = {}
    for item in items:
        product_id = item.product_id.strip()
        totals[product_id] = totals.get(product_id, 0) + item.quantity
    return [Line(product_id, quantity) for product_id, quantity in totals.items()]


def subscriptions(handlers: CatalogHandlers) -> Mapping[type, Any]:
    """Event class -> `async (message, event)`: what the catalog's queue is bound to."""

    async def on_order_placed(message: order_events_pb2.OrderPlaced, event: Event) -> None:
        await reserve(message.order_id, merged_lines(message.line_items))

    async def reserve(order_id: str, lines: list[Line]) -> None:
        try:
            await handlers.reserve_stock(order_id, lines)
        except InsufficientStock:
            pass  # decided and announced (StockReservationFailed) by the handler
        except (errors.InvalidArgument, errors.AlreadyExists) as error:
            # No retry can change it: the order will not get this reservation. Announced, so
            # the order service cancels the order instead of leaving it PENDING.
            if not order_id.strip():
                raise UndecodableEvent(f"an order event without an order id: {error}") from None
            log.error("order %s cannot be reserved: %s", order_id, error)
            await handlers.refuse_reservation(order_id, lines)

    async def on_payment_succeeded(
        message: payment_events_pb2.PaymentSucceeded, event: Event
    ) -> None:
        try:
            await handlers.commit_reservation(message.order_id)
        except errors.NotFound:
            log.error(
                "payment %s for order %s without a reservation",
                message.payment_id,
                message.order_id,
            )
        except errors.FailedPrecondition as error:
            # Released or expired before the payment arrived: the order is cancelled and its
            # payment refunded by the order and payment services; the stock is already back.
            log.warning("order %s paid but not committed: %s", message.order_id, error)

    async def on_order_cancelled(message: order_events_pb2.OrderCancelled, event: Event) -> None:
        order_id = message.order_id
        try:
            reservation = await handlers.get_reservation(order_id)
        except errors.NotFound:
            lines = merged_lines(message.line_items)
            if not lines:
                return
            # The cancel overtook its OrderPlaced: claim the order's reservation now and let it
            # go, so that the late OrderPlaced repeats this outcome instead of holding stock.
            await reserve(order_id, lines)
            try:
                reservation = await handlers.get_reservation(order_id)
            except errors.NotFound:
                return
        if reservation.state is ReservationState.COMMITTED:
            await restock(order_id, reservation.lines)
            return
        try:
            await handlers.release_reservation(order_id, ReleaseReason.ORDER_CANCELLED)
        except errors.FailedPrecondition:
            # Committed between the read and the release: put the units back instead.
            reservation = await handlers.get_reservation(order_id)
            await restock(order_id, reservation.lines)

    async def restock(order_id: str, lines: Iterable[Line]) -> None:
        for line in lines:
            try:
                await handlers.adjust_stock(
                    SYSTEM_CALLER,
                    line.product_id,
                    request_id=restock_request_id(order_id, line.product_id),
                    delta=line.quantity,
                    on_hand=None,
                    reason=AdjustReason.OTHER,
                    note=f"{RESTOCK_NOTE}: {order_id}",
                )
            except errors.NotFound:
                log.warning(
                    "order %s: product %s is gone, not restocked", order_id, line.product_id
                )

    async def on_file_uploaded(message: file_events_pb2.FileUploaded, event: Event) -> None:
        file = message.file
        if file.purpose == PRODUCT_IMAGE and file.product_id:
            await handlers.record_image(mapping.image_from_file(file))

    async def on_file_deleted(message: file_events_pb2.FileDeleted, event: Event) -> None:
        if message.purpose == PRODUCT_IMAGE and message.product_id:
            await handlers.forget_image(message.product_id, message.file_id)

    return {
        file_events_pb2.FileUploaded: on_file_uploaded,
        file_events_pb2.FileDeleted: on_file_deleted,
        order_events_pb2.OrderPlaced: on_order_placed,
        payment_events_pb2.PaymentSucceeded: on_payment_succeeded,
        order_events_pb2.OrderCancelled: on_order_cancelled,
    }
