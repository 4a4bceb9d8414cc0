"""Translation between the order's protobuf messages and its domain objects, and its events."""

from __future__ import annotations

from datetime import UTC

from emporium.order.v1 import order_events_pb2, order_pb2

from kit import postal
from kit.events import Event
from kit.mapping import timestamp
from services.order.domain import (
    CancelReason,
    LineItem,
    Money,
    Order,
    State,
    StatusChange,
    Transition,
)

SOURCE = "order"
P = order_pb2.Order

STATES = {
    State.PENDING: P.STATE_PENDING,
    State.CONFIRMED: P.STATE_CONFIRMED,
    State.PAID: P.STATE_PAID,
    State.SHIPPED: P.STATE_SHIPPED,
    State.DELIVERED: P.STATE_DELIVERED,
    State.CANCELLED: P.STATE_CANCELLED,
}
STATES_BACK = {v: k for k, v in STATES.items()}
REASONS = {
    CancelReason.NONE: P.CANCEL_REASON_UNSPECIFIED,
    CancelReason.OUT_OF_STOCK: P.CANCEL_REASON_OUT_OF_STOCK,
    CancelReason.PAYMENT_FAILED: P.CANCEL_REASON_PAYMENT_FAILED,
    CancelReason.CUSTOMER_REQUESTED: P.CANCEL_REASON_CUSTOMER_REQUESTED,
    CancelReason.ADMIN_REQUESTED: P.CANCEL_REASON_ADMIN_REQUESTED,
    CancelReason.RESERVATION_EXPIRED: P.CANCEL_REASON_RESERVATION_EXPIRED,
    CancelReason.DEADLINE_PASSED: P.CANCEL_REASON_DEADLINE_PASSED,
}
REASONS_BACK = {v: k for k, v in REASONS.items()}


money_to_proto = Money.to_proto
money_from_proto = Money.from_proto


address_to_proto = postal.to_proto
address_from_proto = postal.from_proto


def line_to_proto(line: LineItem) -> order_pb2.LineItem:
    return order_pb2.LineItem(
        product_id=line.product_id,
        sku=line.sku,
        title=line.title,
        quantity=line.quantity,
        unit_price=money_to_proto(line.unit_price),
        total=money_to_proto(line.total),
    )


def change_to_proto(change: StatusChange) -> order_pb2.StatusChange:
    return order_pb2.StatusChange(
        previous_state=STATES[change.previous] if change.previous else P.STATE_UNSPECIFIED,
        state=STATES[change.state],
        change_time=timestamp(change.time),
        reason=change.reason,
    )


def change_from_proto(message: order_pb2.StatusChange) -> StatusChange:
    return StatusChange(
        previous=STATES_BACK.get(message.previous_state),
        state=STATES_BACK[message.state],
        time=message.change_time.ToDatetime(tzinfo=UTC),
        reason=message.reason,
    )


def order_to_proto(order: Order) -> order_pb2.Order:
    return order_pb2.Order(
        id=order.id,
        user_id=order.user_id,
        state=STATES[order.state],
        line_items=[line_to_proto(line) for line in order.lines],
        shipping_address=address_to_proto(order.address),
        shipping_option_id=order.shipping_option_id,
        payment_method_id=order.payment_method_id,
        subtotal=money_to_proto(order.subtotal),
        shipping_cost=money_to_proto(order.shipping_cost),
        tax=money_to_proto(order.tax),
        total=money_to_proto(order.total),
        cancel_reason=REASONS[order.cancel_reason],
        payment_id=order.payment_id,
        shipment_id=order.shipment_id,
        request_id=order.request_id,
        create_time=timestamp(order.create_time),
        update_time=timestamp(order.update_time),
        checkout_expire_time=timestamp(order.deadline),
    )


# The stored form of an order is its API message plus what the API does not show (version,
# from_cart), kept in a wrapper-free way: the Order message, with version and from_cart stored
# beside it by the repository.
def order_from_proto(message: order_pb2.Order, *, version: int, from_cart: bool) -> Order:
    return Order(
        id=message.id,
        user_id=message.user_id,
        request_id=message.request_id,
        state=STATES_BACK[message.state],
        lines=tuple(
            LineItem(
                product_id=line.product_id,
                sku=line.sku,
                title=line.title,
                quantity=line.quantity,
                unit_price=money_from_proto(line.unit_price),
            )
            for line in message.line_items
        ),
        address=address_from_proto(message.shipping_address),
        shipping_option_id=message.shipping_option_id,
        payment_method_id=message.payment_method_id,
        shipping_cost=money_from_proto(message.shipping_cost),
        tax=money_from_proto(message.tax),
        create_time=message.create_time.ToDatetime(tzinfo=UTC),
        update_time=message.update_time.ToDatetime(tzinfo=UTC),
        deadline=(
            message.checkout_expire_time.ToDatetime(tzinfo=UTC)
            if message.HasField("checkout_expire_time")
            else None
        ),
        from_cart=from_cart,
        cancel_reason=REASONS_BACK[message.cancel_reason],
        payment_id=message.payment_id,
        shipment_id=message.shipment_id,
        version=version,
    )


def events(transition: Transition) -> list[Event]:
    """The events a transition publishes: its domain events, then OrderStatusChanged."""
    order = transition.order
    lines = [line_to_proto(line) for line in order.lines]
    messages = []
    for kind in transition.announce:
        if kind == "placed":
            messages.append(
                order_events_pb2.OrderPlaced(
                    order_id=order.id,
                    user_id=order.user_id,
                    line_items=lines,
                    shipping_address=address_to_proto(order.address),
                    shipping_option_id=order.shipping_option_id,
                    payment_method_id=order.payment_method_id,
                    total=money_to_proto(order.total),
                    from_cart=order.from_cart,
                )
            )
        elif kind == "confirmed":
            messages.append(
                order_events_pb2.OrderConfirmed(
                    order_id=order.id,
                    user_id=order.user_id,
                    payment_method_id=order.payment_method_id,
                    total=money_to_proto(order.total),
                    shipping_address=address_to_proto(order.address),
                    shipping_option_id=order.shipping_option_id,
                    line_items=lines,
                )
            )
        elif kind == "cancelled":
            messages.append(
                order_events_pb2.OrderCancelled(
                    order_id=order.id,
                    user_id=order.user_id,
                    reason=REASONS[order.cancel_reason],
                    line_items=lines,
                    payment_id=order.payment_id,
                )
            )
        else:  # pragma: no cover - a programming error
            raise ValueError(f"unknown announcement {kind!r}")
    if transition.change is not None:
        messages.append(
            order_events_pb2.OrderStatusChanged(
                order_id=order.id,
                user_id=order.user_id,
                change=change_to_proto(transition.change),
            )
        )
    return [Event.of(m, SOURCE) for m in messages]
