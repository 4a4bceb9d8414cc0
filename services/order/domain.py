"""The order's rules: money, lines, totals and the checkout state machine. No I/O, no protobuf.

An `Order` is immutable. Every move of the state machine is a function of the current order
that returns a `Transition` (the new order and the status change it records) or None when the
event does not apply to the current state: late, duplicated and out-of-order events are
ignored, and an order never goes backwards (saga spec, step 10).

    PENDING --stock reserved--> CONFIRMED --paid--> PAID --shipment--> SHIPPED --> DELIVERED
    PENDING: out of stock, cancel, expiry          -> CANCELLED (final)
    CONFIRMED: payment failed, cancel, expiry      -> CANCELLED
    PAID: cancel (refund)                          -> CANCELLED
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime

from kit import errors
from kit.postal import PostalAddress as Address

NANOS_PER_UNIT = 1_000_000_000
MAX_LINES = 100
MAX_QUANTITY = 1000
MAX_NOTE_CHARS = 500


@dataclass(frozen=True, order=True)
class Money:
    """An amount in one currency, as a whole number of nanos (1e-9 of the currency unit)."""

    currency: str
    nanos: int = 0

    def times(self, count: int) -> Money:
        return Money(self.currency, self.nanos * count)

    def plus(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Money(self.currency, self.nanos + other.nanos)


class State(enum.Enum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    PAID = "PAID"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"

    @property
    def final(self) -> bool:
        return self in (State.DELIVERED, State.CANCELLED)


class CancelReason(enum.Enum):
    NONE = "NONE"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    CUSTOMER_REQUESTED = "CUSTOMER_REQUESTED"
    ADMIN_REQUESTED = "ADMIN_REQUESTED"
    RESERVATION_EXPIRED = "RESERVATION_EXPIRED"


# Every state a state may move to; anything else is refused by `Order.moved`.
ALLOWED: dict[State, frozenset[State]] = {
    State.PENDING: frozenset({State.CONFIRMED, State.CANCELLED}),
    State.CONFIRMED: frozenset({State.PAID, State.CANCELLED}),
    State.PAID: frozenset({State.SHIPPED, State.DELIVERED, State.CANCELLED}),
    State.SHIPPED: frozenset({State.DELIVERED}),
    State.DELIVERED: frozenset(),
    State.CANCELLED: frozenset(),
}
CANCELLABLE = frozenset({State.PENDING, State.CONFIRMED, State.PAID})


class NotYet(Exception):
    """An event that overtook the one it follows (events of one order can be handled
    concurrently): the consumer fails it, so the bus redelivers it after a back-off, by when
    the earlier event has been applied. Used for shipment news about an order whose payment
    is not recorded yet: shipping creates a shipment only after PaymentSucceeded."""


@dataclass(frozen=True)
class LineItem:
    product_id: str
    sku: str
    title: str
    quantity: int
    unit_price: Money

    @property
    def total(self) -> Money:
        return self.unit_price.times(self.quantity)


@dataclass(frozen=True)
class StatusChange:
    previous: State | None
    state: State
    time: datetime
    reason: str = ""


@dataclass(frozen=True)
class Order:
    id: str
    user_id: str
    request_id: str
    state: State
    lines: tuple[LineItem, ...]
    address: Address
    shipping_option_id: str
    payment_method_id: str
    shipping_cost: Money
    tax: Money
    create_time: datetime
    update_time: datetime
    from_cart: bool = False
    cancel_reason: CancelReason = CancelReason.NONE
    payment_id: str = ""
    shipment_id: str = ""
    # Bumped by every stored change; the compare-and-set key of the repository.
    version: int = 1

    @property
    def subtotal(self) -> Money:
        total = Money(self.shipping_cost.currency)
        for line in self.lines:
            total = total.plus(line.total)
        return total

    @property
    def total(self) -> Money:
        return self.subtotal.plus(self.shipping_cost).plus(self.tax)

    def moved(self, state: State, now: datetime, reason: str, **fields) -> Transition:
        """This order in `state`, with the change recorded; ValueError if not allowed."""
        if state not in ALLOWED[self.state]:
            raise ValueError(f"an order cannot go from {self.state.value} to {state.value}")
        order = replace(self, state=state, update_time=now, version=self.version + 1, **fields)
        return Transition(order, StatusChange(self.state, state, now, reason))

    def updated(self, now: datetime, **fields) -> Transition:
        """This order with fields changed and no change of state (nothing in the history)."""
        order = replace(self, update_time=now, version=self.version + 1, **fields)
        return Transition(order, None)


@dataclass(frozen=True)
class Transition:
    """What one compare-and-set stores: the new order and the status change (if any)."""

    order: Order
    change: StatusChange | None
    # What kind of domain event the transition causes besides OrderStatusChanged.
    announce: tuple[str, ...] = field(default=())


def place(
    *,
    order_id: str,
    user_id: str,
    request_id: str,
    lines: tuple[LineItem, ...],
    address: Address,
    shipping_option_id: str,
    payment_method_id: str,
    shipping_cost: Money,
    from_cart: bool,
    now: datetime,
) -> Transition:
    """A new PENDING order, priced by the server. Tax is included in prices (zero here)."""
    if not lines:
        raise ValueError("an order needs at least one line")
    order = Order(
        id=order_id,
        user_id=user_id,
        request_id=request_id,
        state=State.PENDING,
        lines=lines,
        address=address,
        shipping_option_id=shipping_option_id,
        payment_method_id=payment_method_id,
        shipping_cost=shipping_cost,
        tax=Money(shipping_cost.currency),
        create_time=now,
        update_time=now,
        from_cart=from_cart,
    )
    return Transition(order, StatusChange(None, State.PENDING, now, "order placed"), ("placed",))


# --- reactions to the saga's events (None: the event does not apply now) ---------------------


def stock_reserved(order: Order, now: datetime) -> Transition | None:
    if order.state is not State.PENDING:
        return None
    t = order.moved(State.CONFIRMED, now, "stock reserved")
    return replace(t, announce=("confirmed",))


def _cancelled(order: Order, now: datetime, reason: CancelReason, text: str, **fields):
    t = order.moved(State.CANCELLED, now, text, cancel_reason=reason, **fields)
    return replace(t, announce=("cancelled",))


def stock_reservation_failed(order: Order, now: datetime) -> Transition | None:
    if order.state is not State.PENDING:
        return None
    return _cancelled(order, now, CancelReason.OUT_OF_STOCK, "out of stock")


def reservation_expired(order: Order, now: datetime) -> Transition | None:
    if order.state not in (State.PENDING, State.CONFIRMED):
        return None
    return _cancelled(order, now, CancelReason.RESERVATION_EXPIRED, "stock reservation expired")


def payment_succeeded(
    order: Order, payment_id: str, amount: Money, now: datetime
) -> Transition | None:
    # Payment charges only on OrderConfirmed, written after CONFIRMED: PENDING cannot be paid.
    if order.state is State.CONFIRMED:
        if amount != order.total:
            # Never PAID for a charge that is not the order's total (a bug or a forged event):
            # cancelled with the payment id, so OrderCancelled makes payment refund it.
            return _cancelled(
                order,
                now,
                CancelReason.PAYMENT_FAILED,
                f"{PAYMENT_MISMATCH}: charged {_shown(amount)}, "
                f"order total {_shown(order.total)}; refunded",
                payment_id=payment_id,
            )
        return order.moved(State.PAID, now, "payment succeeded", payment_id=payment_id)
    if order.state is State.CANCELLED and not order.payment_id:
        # Paid after it was cancelled (expiry, user cancel while charging): stays cancelled,
        # and OrderCancelled goes out again with the payment id so payment refunds it. Once:
        # the payment id is now recorded, so a redelivery finds it and does nothing.
        t = order.updated(now, payment_id=payment_id)
        return replace(t, announce=("cancelled",))
    return None


# The status note (and log) that flags a charge that is not the order's total.
PAYMENT_MISMATCH = "payment amount mismatch"


def _shown(money: Money) -> str:
    return f"{money.nanos / 1e9:.2f} {money.currency or '(no currency)'}"


def payment_failed(
    order: Order, payment_id: str, now: datetime, message: str = ""
) -> Transition | None:
    if order.state is not State.CONFIRMED:
        return None
    text = "payment failed" + (f": {message}" if message else "")
    return _cancelled(order, now, CancelReason.PAYMENT_FAILED, text, payment_id=payment_id)


def _not_paid_yet(order: Order) -> None:
    if order.state in (State.PENDING, State.CONFIRMED):
        raise NotYet(f"order {order.id} has a shipment but its payment is not recorded yet")


def shipment_created(order: Order, shipment_id: str, now: datetime) -> Transition | None:
    _not_paid_yet(order)
    if order.state is State.PAID:
        return order.moved(State.SHIPPED, now, "shipment created", shipment_id=shipment_id)
    if order.state in (State.SHIPPED, State.DELIVERED) and not order.shipment_id:
        return order.updated(now, shipment_id=shipment_id)
    return None


def shipment_in_transit(order: Order, shipment_id: str, now: datetime) -> Transition | None:
    _not_paid_yet(order)
    if order.state is State.PAID:
        return order.moved(State.SHIPPED, now, "parcel in transit", shipment_id=shipment_id)
    return None


def shipment_delivered(order: Order, shipment_id: str, now: datetime) -> Transition | None:
    _not_paid_yet(order)
    if order.state in (State.PAID, State.SHIPPED):
        return order.moved(
            State.DELIVERED, now, "parcel delivered", shipment_id=order.shipment_id or shipment_id
        )
    return None


def cancel(order: Order, now: datetime, *, admin: bool, note: str = "") -> Transition | None:
    """A user's or admin's cancel: None if already cancelled (returned unchanged)."""
    if order.state is State.CANCELLED:
        return None
    if order.state not in CANCELLABLE:
        raise errors.FailedPrecondition(
            f"an order that is {order.state.value.lower()} cannot be cancelled",
            reason="ORDER_NOT_CANCELLABLE",
            metadata={"state": order.state.value},
        )
    reason = CancelReason.ADMIN_REQUESTED if admin else CancelReason.CUSTOMER_REQUESTED
    text = note or ("cancelled by an admin" if admin else "cancelled by the customer")
    return _cancelled(order, now, reason, text)
