"""The order state machine, exhaustively: every event in every state, and the invariants."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from kit import errors
from services.order import domain, mapping
from services.order.domain import Address, CancelReason, LineItem, Money, State

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=1)


def _order(state: State = State.PENDING, **fields) -> domain.Order:
    order = domain.place(
        order_id="o1",
        user_id="u1",
        request_id="r1",
        lines=(LineItem("p1", "SKU", "Mug", 2, Money("USD", 5_000_000_000)),),
        address=Address(region_code="DE", address_lines=("Street 1",)),
        shipping_option_id="s1",
        payment_method_id="pm1",
        shipping_cost=Money("USD", 4_990_000_000),
        from_cart=False,
        now=NOW,
    ).order
    return replace(order, state=state, **fields)


EVENTS = {
    "stock_reserved": lambda o: domain.stock_reserved(o, LATER),
    "stock_reservation_failed": lambda o: domain.stock_reservation_failed(o, LATER),
    "reservation_expired": lambda o: domain.reservation_expired(o, LATER),
    "payment_succeeded": lambda o: domain.payment_succeeded(o, "pay1", o.total, LATER),
    "payment_failed": lambda o: domain.payment_failed(o, "pay1", LATER, "declined"),
    "shipment_created": lambda o: domain.shipment_created(o, "sh1", LATER),
    "shipment_in_transit": lambda o: domain.shipment_in_transit(o, "sh1", LATER),
    "shipment_delivered": lambda o: domain.shipment_delivered(o, "sh1", LATER),
}

# state -> event -> the state it leads to (None: ignored, "same": no state change but a write,
# "retry": overtook an earlier event, redelivered later)
EXPECTED: dict[State, dict[str, State | str | None]] = {
    State.PENDING: {
        "stock_reserved": State.CONFIRMED,
        "stock_reservation_failed": State.CANCELLED,
        "reservation_expired": State.CANCELLED,
        "payment_succeeded": None,
        "payment_failed": None,
        "shipment_created": "retry",
        "shipment_in_transit": "retry",
        "shipment_delivered": "retry",
    },
    State.CONFIRMED: {
        "stock_reserved": None,
        "stock_reservation_failed": None,
        "reservation_expired": State.CANCELLED,
        "payment_succeeded": State.PAID,
        "payment_failed": State.CANCELLED,
        "shipment_created": "retry",
        "shipment_in_transit": "retry",
        "shipment_delivered": "retry",
    },
    State.PAID: {
        "stock_reserved": None,
        "stock_reservation_failed": None,
        "reservation_expired": None,
        "payment_succeeded": None,
        "payment_failed": None,
        "shipment_created": State.SHIPPED,
        "shipment_in_transit": State.SHIPPED,
        "shipment_delivered": State.DELIVERED,
    },
    State.SHIPPED: {
        "stock_reserved": None,
        "stock_reservation_failed": None,
        "reservation_expired": None,
        "payment_succeeded": None,
        "payment_failed": None,
        "shipment_created": "same",  # records the shipment id if a status change came first
        "shipment_in_transit": None,
        "shipment_delivered": State.DELIVERED,
    },
    State.DELIVERED: {e: None for e in EVENTS} | {"shipment_created": "same"},
    State.CANCELLED: {e: None for e in EVENTS} | {"payment_succeeded": "same"},
}


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("event", list(EVENTS))
def test_every_event_in_every_state_moves_forward_or_is_ignored(state, event):
    order = _order(state)
    expected = EXPECTED[state][event]
    if expected == "retry":
        with pytest.raises(domain.NotYet):
            EVENTS[event](order)
        return
    transition = EVENTS[event](order)
    if expected is None:
        assert transition is None
        return
    assert transition is not None
    assert transition.order.version == order.version + 1
    if expected == "same":
        assert transition.order.state is state
        assert transition.change is None
    else:
        assert transition.order.state is expected
        assert transition.change.previous is state
        assert transition.change.state is expected
        assert transition.change.time == LATER
        assert expected in domain.ALLOWED[state]


@pytest.mark.parametrize("event", list(EVENTS))
def test_applying_an_event_twice_changes_nothing_the_second_time(event):
    for state in State:
        if EXPECTED[state][event] == "retry":
            continue
        first = EVENTS[event](_order(state))
        if first is None:
            continue
        assert EVENTS[event](first.order) is None or first.order.state is State.PAID


def test_a_payment_for_a_cancelled_order_announces_the_cancellation_again_once():
    cancelled = _order(State.CANCELLED, cancel_reason=CancelReason.RESERVATION_EXPIRED)
    transition = domain.payment_succeeded(cancelled, "pay1", cancelled.total, LATER)
    assert transition.order.payment_id == "pay1"
    assert transition.announce == ("cancelled",)
    [event] = mapping.events(transition)
    assert event.type == "emporium.order.v1.OrderCancelled"
    assert event.decode().payment_id == "pay1"
    assert domain.payment_succeeded(transition.order, "pay1", cancelled.total, LATER) is None


@pytest.mark.parametrize(
    ("transition", "reason"),
    [
        (lambda o: domain.stock_reservation_failed(o, LATER), CancelReason.OUT_OF_STOCK),
        (lambda o: domain.reservation_expired(o, LATER), CancelReason.RESERVATION_EXPIRED),
        (
            lambda o: domain.payment_failed(replace(o, state=State.CONFIRMED), "p", LATER),
            CancelReason.PAYMENT_FAILED,
        ),
        (lambda o: domain.cancel(o, LATER, admin=False), CancelReason.CUSTOMER_REQUESTED),
        (lambda o: domain.cancel(o, LATER, admin=True), CancelReason.ADMIN_REQUESTED),
    ],
)
def test_every_cancellation_names_its_reason_and_announces_order_cancelled(transition, reason):
    t = transition(_order())
    assert (t.order.state, t.order.cancel_reason) == (State.CANCELLED, reason)
    types = [e.type for e in mapping.events(t)]
    assert types == ["emporium.order.v1.OrderCancelled", "emporium.order.v1.OrderStatusChanged"]


@pytest.mark.parametrize("state", [State.PENDING, State.CONFIRMED, State.PAID])
def test_an_order_can_be_cancelled_until_it_ships(state):
    t = domain.cancel(
        _order(state, payment_id="pay1" if state is State.PAID else ""), LATER, admin=False
    )
    assert t.order.state is State.CANCELLED
    cancelled = mapping.events(t)[0].decode()
    assert cancelled.payment_id == ("pay1" if state is State.PAID else "")


@pytest.mark.parametrize("state", [State.SHIPPED, State.DELIVERED])
def test_cancelling_a_shipped_or_delivered_order_fails_precondition(state):
    with pytest.raises(errors.FailedPrecondition):
        domain.cancel(_order(state), LATER, admin=True)


def test_cancelling_a_cancelled_order_changes_nothing():
    assert domain.cancel(_order(State.CANCELLED), LATER, admin=False) is None


def test_totals_are_lines_plus_shipping_plus_tax():
    order = _order()
    assert order.subtotal == Money("USD", 10_000_000_000)
    assert order.total == Money("USD", 14_990_000_000)
    message = mapping.order_to_proto(order)
    assert (message.total.units, message.total.nanos) == (14, 990_000_000)


def test_placing_announces_order_placed_then_the_first_status_change():
    t = domain.place(
        order_id="o1",
        user_id="u1",
        request_id="r1",
        lines=(LineItem("p1", "SKU", "Mug", 1, Money("USD", 1)),),
        address=Address(region_code="DE"),
        shipping_option_id="s1",
        payment_method_id="pm1",
        shipping_cost=Money("USD", 0),
        from_cart=True,
        now=NOW,
    )
    placed, changed = mapping.events(t)
    assert placed.decode().from_cart
    assert changed.decode().change.previous_state == 0


def test_the_stored_form_of_an_order_reads_back_equal():
    order = _order(State.PAID, payment_id="pay1", version=4, from_cart=True)
    message = mapping.order_to_proto(order)
    assert mapping.order_from_proto(message, version=4, from_cart=True) == order


def test_no_state_but_pending_is_reached_from_nothing_and_final_states_lead_nowhere():
    assert domain.ALLOWED[State.DELIVERED] == frozenset()
    assert domain.ALLOWED[State.CANCELLED] == frozenset()
    with pytest.raises(ValueError, match="cannot go from SHIPPED to PAID"):
        _order(State.SHIPPED).moved(State.PAID, LATER, "backwards")
