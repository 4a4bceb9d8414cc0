"""The order service over real gRPC, with the in-memory repository and fakes of its neighbours."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, timedelta
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from emporium.catalog.v1 import catalog_events_pb2, reservation_pb2
from emporium.order.v1 import order_events_pb2, order_pb2, order_service_pb2, order_service_pb2_grpc
from emporium.payment.v1 import payment_events_pb2
from emporium.shipping.v1 import shipment_pb2, shipping_events_pb2
from google.rpc import error_details_pb2
from google.type import money_pb2, postal_address_pb2
from grpc_status import rpc_status

from kit import auth, events, server
from kit.events import Event
from kit.inbox import InMemoryInbox, idempotent
from services.order import bootstrap, consumers, domain
from services.order.adapters.memory import (
    FixedClock,
    InMemoryCart,
    InMemoryCatalog,
    InMemoryOrderRepository,
    InMemoryPayments,
    InMemoryShipping,
)
from services.order.config import Settings
from services.order.domain import Money
from services.order.ports import PaymentMethod, Product

ISSUER, AUDIENCE = "emporium-user", "emporium"
O = order_pb2.Order  # noqa: E741


class Tokens:
    """Signs access tokens as the user service would, and serves the matching JWK Set."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.jwks = {"keys": [{**jwk, "kid": "k1", "alg": "ES256", "use": "sig"}]}

    async def source(self) -> bytes:
        return json.dumps(self.jwks).encode()

    def token(self, user_id: str, admin: bool = False) -> str:
        now = int(time.time())
        claims = {
            "sub": user_id,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 600,
            "roles": ["customer", "admin"] if admin else ["customer"],
        }
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": "k1"})


class Shopper:
    def __init__(self, world: World, user_id: str, admin: bool = False) -> None:
        self.world = world
        self.user_id = user_id
        self.token = world.tokens.token(user_id, admin)
        self.metadata = [("authorization", f"Bearer {self.token}")]
        self.stub = world.stub

    def card(self, method_id: str = "pm1", exp_year: int = 2030) -> str:
        self.world.payments.add(self.token, PaymentMethod(method_id, 12, exp_year))
        return method_id

    async def place(self, items=None, request_id: str | None = None, **fields: Any) -> O:
        request = order_service_pb2.PlaceOrderRequest(
            request_id=request_id or str(uuid.uuid4()),
            items=[
                order_service_pb2.PlaceOrderRequest.Item(product_id=p, quantity=q)
                for p, q in (items or [])
            ],
            shipping_address=fields.pop(
                "address",
                postal_address_pb2.PostalAddress(region_code="DE", address_lines=["Street 1"]),
            ),
            shipping_option_id=fields.pop("shipping_option_id", "standard"),
            payment_method_id=fields.pop("payment_method_id", "pm1"),
        )
        return await self.stub.PlaceOrder(request, metadata=self.metadata)

    async def get(self, order_id: str) -> O:
        return await self.stub.GetOrder(
            order_service_pb2.GetOrderRequest(id=order_id), metadata=self.metadata
        )

    async def cancel(self, order_id: str, note: str = "") -> O:
        return await self.stub.CancelOrder(
            order_service_pb2.CancelOrderRequest(id=order_id, note=note), metadata=self.metadata
        )

    async def list(self, **fields: Any) -> order_service_pb2.ListOrdersResponse:
        return await self.stub.ListOrders(
            order_service_pb2.ListOrdersRequest(**fields), metadata=self.metadata
        )

    async def history(self, order_id: str, **fields: Any):
        return await self.stub.ListStatusChanges(
            order_service_pb2.ListStatusChangesRequest(order_id=order_id, **fields),
            metadata=self.metadata,
        )

    def watch(self, order_id: str):
        return self.stub.WatchOrder(
            order_service_pb2.WatchOrderRequest(id=order_id), metadata=self.metadata
        )


class World:
    def __init__(self, channel, tokens, app, **fakes) -> None:
        self.stub = order_service_pb2_grpc.OrderServiceStub(channel)
        self.tokens = tokens
        self.app = app
        self.orders: InMemoryOrderRepository = fakes["orders"]
        self.catalog: InMemoryCatalog = fakes["catalog"]
        self.cart: InMemoryCart = fakes["cart"]
        self.shipping: InMemoryShipping = fakes["shipping"]
        self.payments: InMemoryPayments = fakes["payments"]
        self.clock: FixedClock = fakes["clock"]
        self.inbox = InMemoryInbox()
        subscriptions = consumers.subscriptions(app.handlers)
        self.deliver = idempotent(self.inbox, events.dispatch(subscriptions))

    def shopper(self, admin: bool = False) -> Shopper:
        return Shopper(self, str(uuid.uuid4()), admin)

    def product(self, price_units: int = 10, active: bool = True, weight: int = 500) -> str:
        product_id = str(uuid.uuid4())
        self.catalog.put(
            Product(
                product_id,
                f"SKU-{product_id[:4]}",
                "Mug",
                Money("USD", price_units * 10**9),
                active,
                weight,
            )
        )
        return product_id

    def events(self, order_id: str | None = None, type_: str | None = None) -> list[Event]:
        return [
            e
            for e in self.orders.published
            if (type_ is None or e.type == type_)
            and (order_id is None or e.decode().order_id == order_id)
        ]

    async def send(self, message, event_id: str | None = None) -> Event:
        # Sent as its owner would (kit.events.dispatch refuses any other source).
        event = Event.of(message, events.owner(events.type_name(message)), id=event_id)
        await self.deliver(event)
        return event


@pytest.fixture
async def world() -> AsyncIterator[World]:
    settings = Settings.from_env(
        {
            "EMPORIUM_ENV": "development",
            "EMPORIUM_ORDER_GRPC_PORT": "0",
            "EMPORIUM_ORDER_WATCH_POLL_SECONDS": "60",
        }
    )
    tokens = Tokens()
    fakes = {
        "orders": InMemoryOrderRepository(),
        "catalog": InMemoryCatalog(),
        "cart": InMemoryCart(),
        "shipping": InMemoryShipping(),
        "payments": InMemoryPayments(),
        "clock": FixedClock(),
    }
    fakes["shipping"].options = {"standard": Money("USD", 4_990_000_000)}
    app = await bootstrap.build(
        settings,
        bus=None,
        verifier=auth.JwtVerifier(tokens.source, issuer=ISSUER, audience=AUDIENCE),
        **fakes,
    )
    grpc_server, port, _ = await server.start(settings.server, app)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield World(channel, tokens, app, **fakes)
    await grpc_server.stop(0)


async def _error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


def _fields(error: grpc.aio.AioRpcError) -> list[str]:
    bad = error_details_pb2.BadRequest()
    for detail in rpc_status.from_call(error).details:
        if detail.Unpack(bad):
            return [v.field for v in bad.field_violations]
    return []


# --- placing --------------------------------------------------------------------------------


async def test_placing_an_order_prices_it_from_the_catalog_and_shipping_and_announces_it(world):
    shopper = world.shopper()
    shopper.card()
    mug, plate = world.product(10), world.product(3)
    order = await shopper.place([(mug, 2), (plate, 1)])
    assert order.state == O.STATE_PENDING
    assert order.user_id == shopper.user_id
    assert [(i.product_id, i.quantity, i.unit_price.units) for i in order.line_items] == [
        (mug, 2, 10),
        (plate, 1, 3),
    ]
    assert (order.subtotal.units, order.shipping_cost.units, order.shipping_cost.nanos) == (
        23,
        4,
        990_000_000,
    )
    assert (order.total.currency_code, order.total.units, order.total.nanos) == (
        "USD",
        27,
        990_000_000,
    )
    [placed] = world.events(order.id, "emporium.order.v1.OrderPlaced")
    message = placed.decode()
    assert (message.user_id, message.from_cart, message.total.units) == (
        shopper.user_id,
        False,
        27,
    )
    assert [c.state for c in (await shopper.history(order.id)).status_changes] == [O.STATE_PENDING]
    # The caller's own token went to payment; the weights went to the quote.
    assert world.payments.tokens == [shopper.token]
    assert world.shipping.quotes[0][1] == [(mug, 2, 500), (plate, 1, 500)]


async def test_an_order_without_items_checks_out_the_callers_cart_with_their_token(world):
    shopper = world.shopper()
    shopper.card()
    mug = world.product(7)
    world.cart.carts[shopper.token] = [(mug, 3)]
    order = await shopper.place()
    assert [(i.product_id, i.quantity) for i in order.line_items] == [(mug, 3)]
    assert world.cart.tokens == [shopper.token]
    [placed] = world.events(order.id, "emporium.order.v1.OrderPlaced")
    assert placed.decode().from_cart


async def test_an_empty_cart_cannot_be_checked_out(world):
    shopper = world.shopper()
    shopper.card()
    error = await _error(shopper.place())
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert world.orders.orders == {}


async def test_the_same_request_id_twice_places_one_order(world):
    shopper = world.shopper()
    shopper.card()
    mug = world.product()
    request_id = str(uuid.uuid4())
    first = await shopper.place([(mug, 1)], request_id=request_id)
    second = await shopper.place([(mug, 1)], request_id=request_id)
    assert first.id == second.id
    assert len(world.orders.orders) == 1
    assert len(world.events(type_="emporium.order.v1.OrderPlaced")) == 1


async def test_concurrent_retries_of_one_request_place_one_order(world):
    shopper = world.shopper()
    shopper.card()
    mug = world.product()
    request_id = str(uuid.uuid4())
    orders = await asyncio.gather(
        *(shopper.place([(mug, 1)], request_id=request_id) for _ in range(5))
    )
    assert len({o.id for o in orders}) == 1
    assert len(world.orders.orders) == 1


async def test_a_request_id_reused_for_another_order_is_refused(world):
    shopper = world.shopper()
    shopper.card()
    mug = world.product()
    request_id = str(uuid.uuid4())
    await shopper.place([(mug, 1)], request_id=request_id)
    error = await _error(shopper.place([(mug, 2)], request_id=request_id))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert len(world.orders.orders) == 1


async def test_the_same_request_id_of_two_users_places_two_orders(world):
    mug = world.product()
    request_id = str(uuid.uuid4())
    ids = set()
    for _ in range(2):
        shopper = world.shopper()
        shopper.card()
        ids.add((await shopper.place([(mug, 1)], request_id=request_id)).id)
    assert len(ids) == 2


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ("quantity_zero", "items[0].quantity"),
        ("unknown_product", "items[0].product_id"),
        ("blank_product", "items[0].product_id"),
        ("unknown_option", "shipping_option_id"),
        ("expired_card", "payment_method_id"),
        ("unknown_card", "payment_method_id"),
        ("no_address", "shipping_address"),
        ("no_region", "shipping_address.region_code"),
        ("no_request_id", "request_id"),
    ],
)
async def test_bad_input_is_invalid_argument_naming_the_field_and_stores_nothing(
    world, case, field
):
    shopper = world.shopper()
    shopper.card("pm1")
    shopper.card("old", exp_year=2020)
    mug = world.product()
    kwargs: dict[str, Any] = {}
    items = [(mug, 1)]
    if case == "quantity_zero":
        items = [(mug, 0)]
    elif case == "unknown_product":
        items = [(str(uuid.uuid4()), 1)]
    elif case == "blank_product":
        items = [("", 1)]
    elif case == "unknown_option":
        kwargs["shipping_option_id"] = "teleport"
    elif case == "expired_card":
        kwargs["payment_method_id"] = "old"
    elif case == "unknown_card":
        kwargs["payment_method_id"] = "nope"
    elif case == "no_address":
        kwargs["address"] = None
    elif case == "no_region":
        kwargs["address"] = postal_address_pb2.PostalAddress(address_lines=["x"])
    elif case == "no_request_id":
        kwargs["request_id"] = " "
    error = await _error(shopper.place(items, **kwargs))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in _fields(error)
    assert world.orders.orders == {}
    assert world.orders.requests == {}
    assert world.orders.published == []


async def test_a_product_not_on_sale_cannot_be_ordered(world):
    shopper = world.shopper()
    shopper.card()
    archived = world.product(active=False)
    error = await _error(shopper.place([(archived, 1)]))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_placing_needs_a_token(world):
    error = await _error(world.stub.PlaceOrder(order_service_pb2.PlaceOrderRequest(request_id="x")))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


# --- ownership ------------------------------------------------------------------------------


async def _placed(world) -> tuple[Shopper, O]:
    shopper = world.shopper()
    shopper.card()
    return shopper, await shopper.place([(world.product(), 1)])


async def test_a_payment_that_is_not_the_order_total_never_marks_it_paid(world, caplog):
    shopper, order = await _placed(world)
    await world.send(catalog_events_pb2.StockReserved(order_id=order.id))
    short = money_pb2.Money(currency_code="USD", units=order.total.units - 1, nanos=0)
    with caplog.at_level("ERROR", logger="services.order.handlers"):
        await world.send(
            payment_events_pb2.PaymentSucceeded(order_id=order.id, payment_id="pay1", amount=short)
        )
    stored = await shopper.get(order.id)
    assert (stored.state, stored.payment_id) == (O.STATE_CANCELLED, "pay1")
    assert stored.cancel_reason == O.CANCEL_REASON_PAYMENT_FAILED
    # OrderCancelled carries the payment id: the payment service refunds the charge.
    [cancelled] = world.events(order.id, "emporium.order.v1.OrderCancelled")
    assert cancelled.decode().payment_id == "pay1"
    last = (await shopper.history(order.id)).status_changes[-1]
    assert "payment amount mismatch" in last.reason
    assert any("flagged" in r.getMessage() for r in caplog.records)


async def test_a_payment_succeeded_published_by_another_service_is_refused(world):
    shopper, order = await _placed(world)
    await world.send(catalog_events_pb2.StockReserved(order_id=order.id))
    forged = payment_events_pb2.PaymentSucceeded(
        order_id=order.id, payment_id="pay1", amount=order.total
    )
    with pytest.raises(events.ForeignEvent):
        await world.deliver(Event.of(forged, "catalog"))
    assert (await shopper.get(order.id)).state == O.STATE_CONFIRMED


async def test_another_users_order_is_not_found_for_get_cancel_watch_and_history(world):
    _, order = await _placed(world)
    other = world.shopper()
    for call in (
        other.get(order.id),
        other.cancel(order.id),
        other.history(order.id),
    ):
        assert (await _error(call)).code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in other.watch(order.id):
            pass
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await world.orders.get(order.id)).state.value == "PENDING"


async def test_an_unknown_or_malformed_order_id_is_not_found(world):
    shopper = world.shopper()
    for order_id in (str(uuid.uuid4()), "not-a-uuid"):
        assert (await _error(shopper.get(order_id))).code() == grpc.StatusCode.NOT_FOUND


async def test_an_admin_reads_and_cancels_anyones_order(world):
    _, order = await _placed(world)
    admin = world.shopper(admin=True)
    assert (await admin.get(order.id)).id == order.id
    cancelled = await admin.cancel(order.id)
    assert cancelled.cancel_reason == O.CANCEL_REASON_ADMIN_REQUESTED


# --- listing --------------------------------------------------------------------------------


async def test_a_user_lists_their_own_orders_newest_first_in_pages_and_by_state(world):
    shopper = world.shopper()
    shopper.card()
    mug = world.product()
    ids = []
    for minute in range(5):
        world.clock.value = world.clock.value.replace(minute=minute)
        ids.append((await shopper.place([(mug, 1)])).id)
    await _placed(world)  # someone else's
    await shopper.cancel(ids[1])
    first = await shopper.list(page_size=2)
    assert [o.id for o in first.orders] == [ids[4], ids[3]]
    second = await shopper.list(page_size=2, page_token=first.next_page_token)
    third = await shopper.list(page_size=2, page_token=second.next_page_token)
    assert [o.id for o in [*second.orders, *third.orders]] == [ids[2], ids[1], ids[0]]
    assert third.next_page_token == ""
    cancelled = await shopper.list(state=O.STATE_CANCELLED)
    assert [o.id for o in cancelled.orders] == [ids[1]]
    error = await _error(shopper.list(page_token=first.next_page_token, state=O.STATE_PAID))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_only_admins_list_other_users_orders(world):
    shopper, order = await _placed(world)
    error = await _error(world.shopper().list(user_id=shopper.user_id))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    admin = world.shopper(admin=True)
    assert [o.id for o in (await admin.list(user_id=shopper.user_id)).orders] == [order.id]
    assert order.id in [o.id for o in (await admin.list(user_id="-")).orders]


# --- the saga -------------------------------------------------------------------------------


async def test_the_happy_path_follows_stock_payment_and_shipment_events(world):
    shopper, order = await _placed(world)
    await world.send(catalog_events_pb2.StockReserved(order_id=order.id))
    assert (await shopper.get(order.id)).state == O.STATE_CONFIRMED
    [confirmed] = world.events(order.id, "emporium.order.v1.OrderConfirmed")
    message = confirmed.decode()
    assert (message.payment_method_id, message.total.units) == ("pm1", order.total.units)
    await world.send(
        payment_events_pb2.PaymentSucceeded(
            order_id=order.id, payment_id="pay1", amount=order.total
        )
    )
    paid = await shopper.get(order.id)
    assert (paid.state, paid.payment_id) == (O.STATE_PAID, "pay1")
    await world.send(shipping_events_pb2.ShipmentCreated(order_id=order.id, shipment_id="sh1"))
    shipped = await shopper.get(order.id)
    assert (shipped.state, shipped.shipment_id) == (O.STATE_SHIPPED, "sh1")
    await world.send(
        shipping_events_pb2.ShipmentStatusChanged(
            order_id=order.id, shipment_id="sh1", state=shipment_pb2.Shipment.STATE_DELIVERED
        )
    )
    assert (await shopper.get(order.id)).state == O.STATE_DELIVERED
    history = (await shopper.history(order.id)).status_changes
    assert [(c.previous_state, c.state) for c in history] == [
        (O.STATE_UNSPECIFIED, O.STATE_PENDING),
        (O.STATE_PENDING, O.STATE_CONFIRMED),
        (O.STATE_CONFIRMED, O.STATE_PAID),
        (O.STATE_PAID, O.STATE_SHIPPED),
        (O.STATE_SHIPPED, O.STATE_DELIVERED),
    ]
    assert len(world.events(order.id, "emporium.order.v1.OrderStatusChanged")) == 5
    page = await shopper.history(order.id, page_size=2)
    assert len(page.status_changes) == 2
    assert page.next_page_token


async def test_no_stock_cancels_the_order_without_asking_for_payment(world):
    shopper, order = await _placed(world)
    await world.send(catalog_events_pb2.StockReservationFailed(order_id=order.id))
    cancelled = await shopper.get(order.id)
    assert (cancelled.state, cancelled.cancel_reason) == (
        O.STATE_CANCELLED,
        O.CANCEL_REASON_OUT_OF_STOCK,
    )
    assert world.events(order.id, "emporium.order.v1.OrderConfirmed") == []
    [event] = world.events(order.id, "emporium.order.v1.OrderCancelled")
    assert event.decode().payment_id == ""


async def test_a_failed_payment_cancels_the_order(world):
    shopper, order = await _placed(world)
    await world.send(catalog_events_pb2.StockReserved(order_id=order.id))
    await world.send(
        payment_events_pb2.PaymentFailed(order_id=order.id, payment_id="p", failure_message="no")
    )
    cancelled = await shopper.get(order.id)
    assert cancelled.cancel_reason == O.CANCEL_REASON_PAYMENT_FAILED
    assert len(world.events(order.id, "emporium.order.v1.OrderCancelled")) == 1


async def test_an_expired_reservation_cancels_an_unpaid_order_only(world):
    shopper, order = await _placed(world)
    await world.send(catalog_events_pb2.StockReserved(order_id=order.id))
    released = catalog_events_pb2.StockReleased(
        order_id=order.id, reason=reservation_pb2.Reservation.RELEASE_REASON_ORDER_CANCELLED
    )
    await world.send(released)
    assert (await shopper.get(order.id)).state == O.STATE_CONFIRMED
    released.reason = reservation_pb2.Reservation.RELEASE_REASON_EXPIRED
    await world.send(released)
    assert (await shopper.get(order.id)).cancel_reason == O.CANCEL_REASON_RESERVATION_EXPIRED


# --- deadlines ------------------------------------------------------------------------------


def _later(world, **delta) -> None:
    world.clock.value += timedelta(**delta)


async def test_an_order_still_pending_at_its_deadline_is_cancelled_and_releases_its_stock(world):
    shopper, order = await _placed(world)
    assert order.checkout_expire_time.ToDatetime(tzinfo=UTC) == world.clock.value + timedelta(
        minutes=15
    )
    _later(world, minutes=14, seconds=59)
    assert await world.app.handlers.cancel_overdue() == 0
    assert (await shopper.get(order.id)).state == O.STATE_PENDING
    _later(world, seconds=1)
    assert await world.app.handlers.cancel_overdue() == 1
    stored = await shopper.get(order.id)
    assert (stored.state, stored.cancel_reason) == (
        O.STATE_CANCELLED,
        O.CANCEL_REASON_DEADLINE_PASSED,
    )
    (cancelled,) = [e.decode() for e in world.events(order.id, "emporium.order.v1.OrderCancelled")]
    assert (cancelled.reason, cancelled.payment_id) == (O.CANCEL_REASON_DEADLINE_PASSED, "")
    assert [line.product_id for line in cancelled.line_items] == [
        line.product_id for line in order.line_items
    ]
    assert await world.app.handlers.cancel_overdue() == 0  # once


async def test_an_order_confirmed_but_unpaid_at_its_deadline_is_cancelled(world):
    shopper, order = await _placed(world)
    await world.send(catalog_events_pb2.StockReserved(order_id=order.id))
    _later(world, minutes=16)
    assert await world.app.handlers.cancel_overdue() == 1
    assert (await shopper.get(order.id)).cancel_reason == O.CANCEL_REASON_DEADLINE_PASSED


async def test_a_paid_order_is_not_touched_by_its_deadline(world):
    shopper, order = await _placed(world)
    await world.send(catalog_events_pb2.StockReserved(order_id=order.id))
    await world.send(
        payment_events_pb2.PaymentSucceeded(
            order_id=order.id, payment_id="pay1", amount=order.total
        )
    )
    _later(world, hours=1)
    assert await world.app.handlers.cancel_overdue() == 0
    assert (await shopper.get(order.id)).state == O.STATE_PAID
    assert world.orders.deadlines == {}


async def test_a_payment_landing_after_the_deadline_is_refunded(world):
    shopper, order = await _placed(world)
    await world.send(catalog_events_pb2.StockReserved(order_id=order.id))
    _later(world, minutes=16)
    await world.app.handlers.cancel_overdue()
    await world.send(
        payment_events_pb2.PaymentSucceeded(
            order_id=order.id, payment_id="pay1", amount=order.total
        )
    )
    stored = await shopper.get(order.id)
    assert (stored.state, stored.payment_id) == (O.STATE_CANCELLED, "pay1")
    cancels = [e.decode() for e in world.events(order.id, "emporium.order.v1.OrderCancelled")]
    assert [c.payment_id for c in cancels] == ["", "pay1"]


async def test_stock_reserved_after_the_deadline_is_released_again(world):
    shopper, order = await _placed(world)
    _later(world, minutes=16)
    await world.app.handlers.cancel_overdue()
    await world.send(catalog_events_pb2.StockReserved(order_id=order.id))
    stored = await shopper.get(order.id)
    assert stored.state == O.STATE_CANCELLED
    assert len(world.events(order.id, "emporium.order.v1.OrderConfirmed")) == 0
    assert len(world.events(order.id, "emporium.order.v1.OrderCancelled")) == 2
    assert len((await shopper.history(order.id)).status_changes) == 2


async def test_the_checkout_deadline_is_configurable():
    settings = Settings.from_env(
        {"EMPORIUM_ENV": "development", "EMPORIUM_ORDER_CHECKOUT_DEADLINE_SECONDS": "30"}
    )
    assert settings.checkout_deadline_seconds == 30


async def test_a_payment_after_the_cancel_keeps_it_cancelled_and_asks_for_a_refund_once(world):
    shopper, order = await _placed(world)
    await world.send(catalog_events_pb2.StockReserved(order_id=order.id))
    await shopper.cancel(order.id)
    paid = payment_events_pb2.PaymentSucceeded(
        order_id=order.id, payment_id="pay1", amount=order.total
    )
    await world.send(paid)
    await world.send(paid)  # a second event for the same payment
    stored = await shopper.get(order.id)
    assert (stored.state, stored.payment_id) == (O.STATE_CANCELLED, "pay1")
    cancels = [e.decode() for e in world.events(order.id, "emporium.order.v1.OrderCancelled")]
    assert [c.payment_id for c in cancels] == ["", "pay1"]


async def test_a_redelivered_event_changes_nothing(world):
    shopper, order = await _placed(world)
    event_id = str(uuid.uuid4())
    await world.send(catalog_events_pb2.StockReserved(order_id=order.id), event_id)
    before = len(world.orders.published)
    await world.send(catalog_events_pb2.StockReserved(order_id=order.id), event_id)
    await world.send(catalog_events_pb2.StockReserved(order_id=order.id))  # a new id, same fact
    assert len(world.orders.published) == before
    assert len((await shopper.history(order.id)).status_changes) == 2


async def test_racing_reactions_apply_once(world):
    _, order = await _placed(world)
    await asyncio.gather(
        *(world.send(catalog_events_pb2.StockReserved(order_id=order.id)) for _ in range(10))
    )
    assert len(world.events(order.id, "emporium.order.v1.OrderConfirmed")) == 1


async def test_an_event_for_an_unknown_order_is_ignored(world):
    await world.send(catalog_events_pb2.StockReserved(order_id=str(uuid.uuid4())))
    assert world.orders.published == []


# --- cancelling -----------------------------------------------------------------------------


async def test_a_paid_order_cancelled_by_its_owner_asks_for_a_refund(world):
    shopper, order = await _placed(world)
    await world.send(catalog_events_pb2.StockReserved(order_id=order.id))
    await world.send(
        payment_events_pb2.PaymentSucceeded(
            order_id=order.id, payment_id="pay1", amount=order.total
        )
    )
    cancelled = await shopper.cancel(order.id, note="changed my mind")
    assert cancelled.cancel_reason == O.CANCEL_REASON_CUSTOMER_REQUESTED
    [event] = world.events(order.id, "emporium.order.v1.OrderCancelled")
    assert event.decode().payment_id == "pay1"
    assert (await shopper.history(order.id)).status_changes[-1].reason == "changed my mind"
    again = await shopper.cancel(order.id)
    assert again.state == O.STATE_CANCELLED
    assert len(world.events(order.id, "emporium.order.v1.OrderCancelled")) == 1


async def test_cancelling_a_shipped_order_fails_precondition(world):
    shopper, order = await _placed(world)
    await world.send(catalog_events_pb2.StockReserved(order_id=order.id))
    await world.send(
        payment_events_pb2.PaymentSucceeded(
            order_id=order.id, payment_id="pay1", amount=order.total
        )
    )
    await world.send(shipping_events_pb2.ShipmentCreated(order_id=order.id, shipment_id="s"))
    error = await _error(shopper.cancel(order.id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_cancel_note_longer_than_500_characters_is_refused(world):
    shopper, order = await _placed(world)
    error = await _error(shopper.cancel(order.id, note="x" * 501))
    assert _fields(error) == ["note"]


# --- watching -------------------------------------------------------------------------------


async def test_watching_streams_this_replicas_changes_without_polling_the_store(world):
    # The fixture's fallback poll is 60 s: the changes arrive from this process's own writes.
    shopper, order = await _placed(world)
    received: list[order_service_pb2.WatchOrderResponse] = []

    async def watch() -> None:
        async for message in shopper.watch(order.id):
            received.append(message)

    task = asyncio.create_task(watch())
    await asyncio.sleep(0.1)
    reads_before = world.orders.reads
    await world.send(catalog_events_pb2.StockReserved(order_id=order.id))
    await world.send(payment_events_pb2.PaymentFailed(order_id=order.id, payment_id="p1"))
    await asyncio.wait_for(task, 2)
    assert [(m.change.state, m.order.state) for m in received[1:]] == [
        (O.STATE_CONFIRMED, O.STATE_CONFIRMED),
        (O.STATE_CANCELLED, O.STATE_CANCELLED),
    ]
    # Nothing read the order: the reactions started from the order as this process wrote it
    # (their compare-and-set is the check), and the watch was fed by those writes.
    assert world.orders.reads - reads_before == 0


async def test_a_reaction_after_another_replicas_change_decides_on_the_stored_order(world):
    """The order as this process last wrote it is only a guess: a change made elsewhere makes
    its compare-and-set fail, and the reaction decides again on the order read back."""
    from services.order import mapping

    _, order = await _placed(world)
    stored = await world.orders.get(order.id)
    cancelled = domain.cancel(stored, world.clock.now(), admin=True, note="by another replica")
    await world.orders.save(cancelled, mapping.events(cancelled), stored.version)
    reads_before = world.orders.reads
    await world.send(catalog_events_pb2.StockReserved(order_id=order.id))
    after = await world.orders.get(order.id)
    assert (after.state, after.version) == (cancelled.order.state, cancelled.order.version)
    assert world.orders.reads - reads_before == 2  # the reaction's re-read, and ours above


async def test_watching_streams_the_order_then_each_change_until_it_is_final(world):
    world.app.handlers.watch_poll_seconds = 0.05  # finds another replica's change quickly
    shopper, order = await _placed(world)
    received: list[order_service_pb2.WatchOrderResponse] = []

    async def watch() -> None:
        async for message in shopper.watch(order.id):
            received.append(message)

    task = asyncio.create_task(watch())
    await asyncio.sleep(0.1)
    await world.send(catalog_events_pb2.StockReserved(order_id=order.id))
    await asyncio.sleep(0.1)
    # A change made behind this process's back (another replica) is found by polling.
    stored = await world.orders.get(order.id)
    from services.order import mapping

    transition = domain.stock_reservation_failed(
        stored, world.clock.now()
    ) or domain.reservation_expired(stored, world.clock.now())
    await world.orders.save(transition, mapping.events(transition), stored.version)
    await asyncio.wait_for(task, 5)
    assert not received[0].HasField("change")
    assert received[0].order.state == O.STATE_PENDING
    assert [(m.change.state, m.order.state) for m in received[1:]] == [
        (O.STATE_CONFIRMED, O.STATE_CONFIRMED),
        (O.STATE_CANCELLED, O.STATE_CANCELLED),
    ]


async def test_events_for_the_order_carry_its_id_only(world):
    _, order = await _placed(world)
    assert {e.decode().order_id for e in world.events()} == {order.id}
    assert all(
        isinstance(e.decode(), order_events_pb2.OrderPlaced | order_events_pb2.OrderStatusChanged)
        for e in world.events()
    )


async def test_shipment_news_that_overtook_the_payment_is_retried_not_lost(world):
    shopper, order = await _placed(world)
    await world.send(catalog_events_pb2.StockReserved(order_id=order.id))
    created = Event.of(
        shipping_events_pb2.ShipmentCreated(order_id=order.id, shipment_id="sh1"), "shipping"
    )
    with pytest.raises(domain.NotYet):
        await world.deliver(created)  # the bus redelivers it after a back-off
    await world.send(
        payment_events_pb2.PaymentSucceeded(
            order_id=order.id, payment_id="pay1", amount=order.total
        )
    )
    await world.deliver(created)
    shipped = await shopper.get(order.id)
    assert (shipped.state, shipped.shipment_id) == (O.STATE_SHIPPED, "sh1")


async def test_a_page_size_above_the_maximum_is_clamped_like_every_other_list(world):
    shopper, _ = await _placed(world)
    listed = await shopper.list(page_size=100_000)
    assert len(listed.orders) == 1
