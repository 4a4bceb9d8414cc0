"""The shipping service over real gRPC, with the in-memory adapters, a fake clock and no bus.

The saga consumers are driven by calling the handlers `consumers.subscriptions` registers, with
the events the order and payment services publish.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from emporium.order.v1 import order_events_pb2, order_pb2
from emporium.payment.v1 import payment_events_pb2
from emporium.shipping.v1 import (
    shipment_pb2,
    shipping_events_pb2,
    shipping_option_pb2,
    shipping_rate_pb2,
    shipping_service_pb2,
    shipping_service_pb2_grpc,
)
from google.protobuf import field_mask_pb2, timestamp_pb2
from google.rpc import error_details_pb2
from google.type import money_pb2, postal_address_pb2
from grpc_status import rpc_status

from kit import auth, server
from kit.events import Event
from services.shipping import bootstrap, consumers, domain
from services.shipping.adapters.carrier import SimulatedCarrier
from services.shipping.adapters.memory import (
    InMemoryOrderDetailsRepository,
    InMemoryRateRepository,
    InMemoryShipmentRepository,
)
from services.shipping.config import Settings
from services.user.adapters.keys import SigningKeys

S = shipping_service_pb2
SH = shipment_pb2.Shipment
SO = shipping_option_pb2.ShippingOption


class Clock:
    def __init__(self) -> None:
        self.time = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday

    def now(self) -> datetime:
        return self.time

    def advance(self, seconds: float) -> None:
        self.time += timedelta(seconds=seconds)


class World:
    def __init__(self, channel, keys: SigningKeys, app, shipments, clock) -> None:
        self.stub = shipping_service_pb2_grpc.ShippingServiceStub(channel)
        self.keys = keys
        self.app = app
        self.handlers = app.handlers
        self.shipments: InMemoryShipmentRepository = shipments
        self.clock: Clock = clock
        self.admin = self.token("admin")
        self.on = consumers.subscriptions(app.handlers)

    def token(self, *roles: str, user_id: str | None = None) -> list[tuple[str, str]]:
        now = int(time.time())
        claims = {
            "sub": user_id or str(uuid.uuid4()),
            "iss": "emporium-user",
            "aud": "emporium",
            "iat": now,
            "exp": now + 3600,
            "roles": list(roles),
        }
        return [("authorization", f"Bearer {self.keys.sign(claims)}")]

    async def deliver(self, message) -> None:
        await self.on[type(message)](message, Event.of(message, "test"))

    def published(self, cls) -> list[Any]:
        return [
            e.decode(cls)
            for e in self.shipments.outbox._events
            if e.type == cls.DESCRIPTOR.full_name
        ]

    async def us_option(self) -> str:
        reply = await self.stub.ListShippingOptions(
            S.ListShippingOptionsRequest(
                destination=postal_address_pb2.PostalAddress(region_code="US")
            )
        )
        return reply.shipping_options[0].id

    async def paid_order(self, user_id: str, order_id: str | None = None) -> str:
        order_id = order_id or str(uuid.uuid4())
        await self.deliver(confirmed(order_id, user_id, await self.us_option()))
        await self.deliver(paid(order_id, user_id))
        return order_id


def confirmed(order_id: str, user_id: str, option_id: str) -> order_events_pb2.OrderConfirmed:
    return order_events_pb2.OrderConfirmed(
        order_id=order_id,
        user_id=user_id,
        shipping_address=postal_address_pb2.PostalAddress(
            region_code="US",
            postal_code="94103",
            locality="San Francisco",
            address_lines=["1 Main St"],
            recipients=["Ann"],
        ),
        shipping_option_id=option_id,
        line_items=[order_pb2.LineItem(product_id=str(uuid.uuid4()), quantity=2)],
    )


def paid(order_id: str, user_id: str) -> payment_events_pb2.PaymentSucceeded:
    return payment_events_pb2.PaymentSucceeded(
        payment_id=str(uuid.uuid4()), order_id=order_id, user_id=user_id
    )


def cancelled(order_id: str, user_id: str) -> order_events_pb2.OrderCancelled:
    return order_events_pb2.OrderCancelled(
        order_id=order_id,
        user_id=user_id,
        reason=order_pb2.Order.CANCEL_REASON_CUSTOMER_REQUESTED,
    )


@pytest.fixture
async def world() -> AsyncIterator[World]:
    settings = Settings.from_env(
        {
            "EMPORIUM_ENV": "development",
            "EMPORIUM_SHIPPING_GRPC_PORT": "0",
            "EMPORIUM_SHIPPING_WATCH_POLL_SECONDS": "0.05",
        }
    )
    keys = SigningKeys(ec.generate_private_key(ec.SECP256R1()))

    async def jwks() -> bytes:
        return keys.jwks_json()

    clock = Clock()
    shipments = InMemoryShipmentRepository()
    app = await bootstrap.build(
        settings,
        rates=InMemoryRateRepository(),
        shipments=shipments,
        orders=InMemoryOrderDetailsRepository(),
        carriers={c: SimulatedCarrier(c, step_seconds=60) for c in ("ups", "dhl")},
        clock=clock,
        bus=None,
        background=False,
        verifier=auth.JwtVerifier(jwks, issuer="emporium-user", audience="emporium"),
    )
    grpc_server, port, _ = await server.start(settings.server, app)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield World(channel, keys, app, shipments, clock)
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


def _usd(units: int, nanos: int = 0) -> money_pb2.Money:
    return money_pb2.Money(currency_code="USD", units=units, nanos=nanos)


def _rate(**fields: Any) -> shipping_rate_pb2.ShippingRate:
    values: dict[str, Any] = {
        "carrier": "dhl",
        "service_level": SO.SERVICE_LEVEL_ECONOMY,
        "display_name": "DHL Economy",
        "region_codes": ["US"],
        "base_price": _usd(3),
        "price_per_kg": _usd(0, 500_000_000),
        "min_business_days": 5,
        "max_business_days": 9,
    }
    values.update(fields)
    return shipping_rate_pb2.ShippingRate(**values)


# --- options and quotes -----------------------------------------------------------------------


async def test_a_us_address_lists_the_seeded_options_cheapest_first_without_a_token(world):
    reply = await world.stub.ListShippingOptions(
        S.ListShippingOptionsRequest(destination=postal_address_pb2.PostalAddress(region_code="us"))
    )
    options = [(o.display_name, o.price.units, o.price.nanos) for o in reply.shipping_options]
    assert options == [("UPS Ground", 5, 990_000_000), ("UPS Express", 14, 990_000_000)]
    ground = reply.shipping_options[0]
    assert ground.carrier == "ups"
    assert ground.service_level == SO.SERVICE_LEVEL_STANDARD
    assert (ground.min_business_days, ground.max_business_days) == (3, 5)
    # Monday + 3 and + 5 business days.
    window = ground.estimated_delivery
    assert (window.earliest_date.day, window.latest_date.day) == (5, 9)
    de = await world.stub.ListShippingOptions(
        S.ListShippingOptionsRequest(destination=postal_address_pb2.PostalAddress(region_code="DE"))
    )
    assert [o.carrier for o in de.shipping_options] == ["dhl", "dhl"]
    nowhere = await world.stub.ListShippingOptions(
        S.ListShippingOptionsRequest(destination=postal_address_pb2.PostalAddress(region_code="AQ"))
    )
    assert list(nowhere.shipping_options) == []


async def test_options_page(world):
    first = await world.stub.ListShippingOptions(
        S.ListShippingOptionsRequest(
            destination=postal_address_pb2.PostalAddress(region_code="US"), page_size=1
        )
    )
    assert len(first.shipping_options) == 1
    assert first.next_page_token
    second = await world.stub.ListShippingOptions(
        S.ListShippingOptionsRequest(
            destination=postal_address_pb2.PostalAddress(region_code="US"),
            page_size=1,
            page_token=first.next_page_token,
        )
    )
    assert second.shipping_options[0].display_name == "UPS Express"
    assert not second.next_page_token
    error = await _error(
        world.stub.ListShippingOptions(
            S.ListShippingOptionsRequest(
                destination=postal_address_pb2.PostalAddress(region_code="DE"),
                page_token=first.next_page_token,
            )
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_missing_region_code_is_invalid_and_named(world):
    error = await _error(world.stub.ListShippingOptions(S.ListShippingOptionsRequest()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _fields(error) == ["destination.region_code"]


async def test_a_quote_prices_every_started_kilogram_of_the_total_weight(world):
    reply = await world.stub.QuoteShippingOptions(
        S.QuoteShippingOptionsRequest(
            destination=postal_address_pb2.PostalAddress(region_code="US"),
            items=[
                S.QuoteShippingOptionsRequest.Item(quantity=1, weight_grams=1500),
                S.QuoteShippingOptionsRequest.Item(quantity=2, weight_grams=200),
            ],
        )
    )
    # 1,900 g: two started kilograms.
    assert [(o.display_name, o.price.units, o.price.nanos) for o in reply.shipping_options] == [
        ("UPS Ground", 7, 990_000_000),
        ("UPS Express", 19, 990_000_000),
    ]
    assert reply.shipping_options[0].expire_time.seconds > 0
    heavy = await world.stub.QuoteShippingOptions(
        S.QuoteShippingOptionsRequest(
            destination=postal_address_pb2.PostalAddress(region_code="US"),
            items=[S.QuoteShippingOptionsRequest.Item(quantity=1, weight_grams=40_000)],
        )
    )
    assert list(heavy.shipping_options) == []


async def test_bad_quotes_name_their_fields(world):
    error = await _error(
        world.stub.QuoteShippingOptions(
            S.QuoteShippingOptionsRequest(
                destination=postal_address_pb2.PostalAddress(region_code="US")
            )
        )
    )
    assert _fields(error) == ["items"]
    error = await _error(
        world.stub.QuoteShippingOptions(
            S.QuoteShippingOptionsRequest(
                items=[
                    S.QuoteShippingOptionsRequest.Item(quantity=0, weight_grams=1),
                    S.QuoteShippingOptionsRequest.Item(quantity=1, weight_grams=-1),
                ]
            )
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _fields(error) == [
        "destination.region_code",
        "items[0].quantity",
        "items[1].weight_grams",
    ]


# --- the rate table ---------------------------------------------------------------------------


async def test_admins_create_get_list_update_and_delete_rates(world):
    request_id = str(uuid.uuid4())
    created = await world.stub.CreateShippingRate(
        S.CreateShippingRateRequest(shipping_rate=_rate(), request_id=request_id),
        metadata=world.admin,
    )
    assert created.id
    assert created.create_time.seconds
    again = await world.stub.CreateShippingRate(
        S.CreateShippingRateRequest(
            shipping_rate=_rate(display_name="Other"), request_id=request_id
        ),
        metadata=world.admin,
    )
    assert again == created
    got = await world.stub.GetShippingRate(
        S.GetShippingRateRequest(id=created.id), metadata=world.admin
    )
    assert got == created
    listed = await world.stub.ListShippingRates(S.ListShippingRatesRequest(), metadata=world.admin)
    assert created.id in [r.id for r in listed.shipping_rates]
    carriers = [(r.carrier, r.service_level) for r in listed.shipping_rates]
    assert carriers == sorted(carriers)
    # The new rate is the cheapest to the US now.
    assert await world.us_option() == created.id
    updated = await world.stub.UpdateShippingRate(
        S.UpdateShippingRateRequest(
            id=created.id,
            shipping_rate=shipping_rate_pb2.ShippingRate(disabled=True, display_name="ignored"),
            update_mask=field_mask_pb2.FieldMask(paths=["disabled"]),
        ),
        metadata=world.admin,
    )
    assert updated.disabled
    assert updated.display_name == "DHL Economy"
    assert await world.us_option() != created.id
    # Without a mask, the fields set change.
    renamed = await world.stub.UpdateShippingRate(
        S.UpdateShippingRateRequest(
            id=created.id, shipping_rate=shipping_rate_pb2.ShippingRate(display_name="DHL Saver")
        ),
        metadata=world.admin,
    )
    assert renamed.display_name == "DHL Saver"
    assert renamed.disabled
    await world.stub.DeleteShippingRate(
        S.DeleteShippingRateRequest(id=created.id), metadata=world.admin
    )
    error = await _error(
        world.stub.GetShippingRate(S.GetShippingRateRequest(id=created.id), metadata=world.admin)
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await _error(
        world.stub.DeleteShippingRate(
            S.DeleteShippingRateRequest(id=created.id), metadata=world.admin
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_bad_rates_are_refused_naming_the_field(world):
    cases = [
        (_rate(carrier="fedex"), "shipping_rate.carrier"),
        (_rate(service_level=0), "shipping_rate.service_level"),
        (_rate(display_name=" "), "shipping_rate.display_name"),
        (_rate(region_codes=["USA"]), "shipping_rate.region_codes[0]"),
        (_rate(base_price=_usd(-1)), "shipping_rate.base_price"),
        (
            _rate(price_per_kg=money_pb2.Money(currency_code="EUR", units=1)),
            "shipping_rate.price_per_kg.currency_code",
        ),
        (_rate(min_business_days=5, max_business_days=2), "shipping_rate.max_business_days"),
        (_rate(base_price=_usd(1, -5)), "shipping_rate.base_price.nanos"),
    ]
    for rate, field in cases:
        error = await _error(
            world.stub.CreateShippingRate(
                S.CreateShippingRateRequest(shipping_rate=rate), metadata=world.admin
            )
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert _fields(error) == [field]
    missing = shipping_rate_pb2.ShippingRate(carrier="dhl", display_name="x")
    error = await _error(
        world.stub.CreateShippingRate(
            S.CreateShippingRateRequest(shipping_rate=missing), metadata=world.admin
        )
    )
    assert set(_fields(error)) == {"shipping_rate.service_level", "shipping_rate.base_price"}
    created = await world.stub.CreateShippingRate(
        S.CreateShippingRateRequest(shipping_rate=_rate()), metadata=world.admin
    )
    for paths, field in ((["id"], "update_mask"), (["colour"], "update_mask")):
        error = await _error(
            world.stub.UpdateShippingRate(
                S.UpdateShippingRateRequest(
                    id=created.id,
                    shipping_rate=_rate(),
                    update_mask=field_mask_pb2.FieldMask(paths=paths),
                ),
                metadata=world.admin,
            )
        )
        assert _fields(error) == [field]


async def test_the_rate_table_is_for_admins(world):
    user = world.token()
    calls = [
        world.stub.CreateShippingRate(
            S.CreateShippingRateRequest(shipping_rate=_rate()), metadata=user
        ),
        world.stub.ListShippingRates(S.ListShippingRatesRequest(), metadata=user),
        world.stub.GetShippingRate(S.GetShippingRateRequest(id=str(uuid.uuid4())), metadata=user),
    ]
    for call in calls:
        assert (await _error(call)).code() == grpc.StatusCode.PERMISSION_DENIED
    error = await _error(world.stub.ListShippingRates(S.ListShippingRatesRequest()))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


# --- shipments --------------------------------------------------------------------------------


async def test_a_paid_order_gets_one_shipment_whatever_the_order_of_its_events(world):
    user = str(uuid.uuid4())
    option = await world.us_option()
    order = str(uuid.uuid4())
    await world.deliver(confirmed(order, user, option))
    assert world.shipments.shipments == {}
    payment = paid(order, user)
    await world.deliver(payment)
    await world.deliver(payment)
    await world.deliver(paid(order, user))
    # The other way round: payment first, details second.
    other = str(uuid.uuid4())
    await world.deliver(paid(other, user))
    assert len(world.shipments.shipments) == 1
    await world.deliver(confirmed(other, user, option))
    await world.deliver(confirmed(other, user, option))
    assert len(world.shipments.shipments) == 2
    created = world.published(shipping_events_pb2.ShipmentCreated)
    assert sorted(c.order_id for c in created) == sorted([order, other])
    first = next(c for c in created if c.order_id == order)
    assert first.state == SH.STATE_LABEL_CREATED
    assert first.carrier == "ups"
    assert first.tracking_number.startswith("UPS")
    assert first.user_id == user
    shipment = await world.stub.GetShipment(
        S.GetShipmentRequest(id=first.shipment_id), metadata=world.token(user_id=user)
    )
    assert shipment.order_id == order
    assert shipment.destination.postal_code == "94103"
    assert shipment.service_level == SO.SERVICE_LEVEL_STANDARD
    assert [(i.quantity) for i in shipment.items] == [2]
    events = await world.stub.ListTrackingEvents(
        S.ListTrackingEventsRequest(shipment_id=shipment.id), metadata=world.token(user_id=user)
    )
    assert [e.state for e in events.tracking_events] == [SH.STATE_LABEL_CREATED]


async def test_users_see_only_their_own_shipments(world):
    owner = str(uuid.uuid4())
    order = await world.paid_order(owner)
    shipment_id = domain.shipment_id_of(order)
    stranger = world.token()
    for call in (
        world.stub.GetShipment(S.GetShipmentRequest(id=shipment_id), metadata=stranger),
        world.stub.ListTrackingEvents(
            S.ListTrackingEventsRequest(shipment_id=shipment_id), metadata=stranger
        ),
    ):
        assert (await _error(call)).code() == grpc.StatusCode.NOT_FOUND
    assert (
        await world.stub.GetShipment(S.GetShipmentRequest(id=shipment_id), metadata=world.admin)
    ).id
    mine = await world.stub.ListShipments(
        S.ListShipmentsRequest(), metadata=world.token(user_id=owner)
    )
    assert [s.id for s in mine.shipments] == [shipment_id]
    error = await _error(
        world.stub.ListShipments(S.ListShipmentsRequest(user_id=owner), metadata=stranger)
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    theirs = await world.stub.ListShipments(
        S.ListShipmentsRequest(user_id=owner, state=SH.STATE_LABEL_CREATED), metadata=world.admin
    )
    assert [s.id for s in theirs.shipments] == [shipment_id]
    none = await world.stub.ListShipments(
        S.ListShipmentsRequest(user_id=owner, state=SH.STATE_DELIVERED), metadata=world.admin
    )
    assert list(none.shipments) == []


def _event(state: int, when: datetime, **fields: Any) -> shipment_pb2.TrackingEvent:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(when)
    return shipment_pb2.TrackingEvent(state=state, event_time=ts, **fields)


async def test_tracking_events_move_the_shipment_once_and_in_order(world):
    order = await world.paid_order(str(uuid.uuid4()))
    shipment_id = domain.shipment_id_of(order)
    world.clock.advance(10)
    now = world.clock.now()
    request = S.AddTrackingEventRequest(
        shipment_id=shipment_id,
        request_id="dhl-1",
        tracking_event=_event(SH.STATE_IN_TRANSIT, now, location="Leipzig, DE"),
    )
    first = await world.stub.AddTrackingEvent(request, metadata=world.admin)
    assert (await world.stub.AddTrackingEvent(request, metadata=world.admin)) == first
    changes = world.published(shipping_events_pb2.ShipmentStatusChanged)
    assert [(c.previous_state, c.state) for c in changes] == [
        (SH.STATE_LABEL_CREATED, SH.STATE_IN_TRANSIT)
    ]
    assert changes[0].tracking_event.location == "Leipzig, DE"
    # An older report is history only.
    await world.stub.AddTrackingEvent(
        S.AddTrackingEventRequest(
            shipment_id=shipment_id,
            request_id="dhl-0",
            tracking_event=_event(SH.STATE_EXCEPTION, now - timedelta(minutes=5)),
        ),
        metadata=world.admin,
    )
    shipment = await world.stub.GetShipment(
        S.GetShipmentRequest(id=shipment_id), metadata=world.admin
    )
    assert shipment.state == SH.STATE_IN_TRANSIT
    events = await world.stub.ListTrackingEvents(
        S.ListTrackingEventsRequest(shipment_id=shipment_id), metadata=world.admin
    )
    assert [e.state for e in events.tracking_events] == [
        SH.STATE_EXCEPTION,
        SH.STATE_LABEL_CREATED,
        SH.STATE_IN_TRANSIT,
    ]
    error = await _error(
        world.stub.AddTrackingEvent(
            S.AddTrackingEventRequest(
                shipment_id=shipment_id,
                request_id="back",
                tracking_event=_event(SH.STATE_LABEL_CREATED, now),
            ),
            metadata=world.admin,
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    await world.stub.AddTrackingEvent(
        S.AddTrackingEventRequest(
            shipment_id=shipment_id,
            request_id="done",
            tracking_event=_event(SH.STATE_DELIVERED, now),
        ),
        metadata=world.admin,
    )
    error = await _error(
        world.stub.AddTrackingEvent(
            S.AddTrackingEventRequest(
                shipment_id=shipment_id,
                request_id="after",
                tracking_event=_event(SH.STATE_RETURNED, now),
            ),
            metadata=world.admin,
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_bad_tracking_events_name_their_fields_and_need_an_admin(world):
    order = await world.paid_order(str(uuid.uuid4()))
    shipment_id = domain.shipment_id_of(order)
    error = await _error(
        world.stub.AddTrackingEvent(
            S.AddTrackingEventRequest(shipment_id=shipment_id), metadata=world.admin
        )
    )
    assert _fields(error) == ["request_id", "tracking_event.state", "tracking_event.event_time"]
    error = await _error(
        world.stub.AddTrackingEvent(
            S.AddTrackingEventRequest(
                shipment_id=shipment_id,
                request_id="x",
                tracking_event=_event(SH.STATE_IN_TRANSIT, world.clock.now() + timedelta(hours=1)),
            ),
            metadata=world.admin,
        )
    )
    assert _fields(error) == ["tracking_event.event_time"]
    error = await _error(
        world.stub.AddTrackingEvent(
            S.AddTrackingEventRequest(
                shipment_id=str(uuid.uuid4()),
                request_id="x",
                tracking_event=_event(SH.STATE_IN_TRANSIT, world.clock.now()),
            ),
            metadata=world.admin,
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await _error(
        world.stub.AddTrackingEvent(
            S.AddTrackingEventRequest(
                shipment_id=shipment_id,
                request_id="x",
                tracking_event=_event(SH.STATE_IN_TRANSIT, world.clock.now()),
            ),
            metadata=world.token(),
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_the_simulated_carrier_delivers_step_by_step(world):
    order = await world.paid_order(str(uuid.uuid4()))
    assert await world.handlers.advance() == 0  # not a step's time yet
    states = []
    for _ in range(3):
        world.clock.advance(61)
        assert await world.handlers.advance() == 1
        states.append(world.shipments.shipments[domain.shipment_id_of(order)].state)
    assert states == [
        domain.ShipmentState.IN_TRANSIT,
        domain.ShipmentState.OUT_FOR_DELIVERY,
        domain.ShipmentState.DELIVERED,
    ]
    world.clock.advance(61)
    assert await world.handlers.advance() == 0
    changes = world.published(shipping_events_pb2.ShipmentStatusChanged)
    assert [c.state for c in changes] == [
        SH.STATE_IN_TRANSIT,
        SH.STATE_OUT_FOR_DELIVERY,
        SH.STATE_DELIVERED,
    ]


async def test_an_order_cancelled_before_handover_cancels_its_shipment(world):
    user = str(uuid.uuid4())
    order = await world.paid_order(user)
    await world.deliver(cancelled(order, user))
    await world.deliver(cancelled(order, user))
    shipment = world.shipments.shipments[domain.shipment_id_of(order)]
    assert shipment.state is domain.ShipmentState.CANCELLED
    changes = world.published(shipping_events_pb2.ShipmentStatusChanged)
    assert [(c.order_id, c.state) for c in changes] == [(order, SH.STATE_CANCELLED)]
    # Cancelled before it was paid: never shipped.
    early = str(uuid.uuid4())
    await world.deliver(confirmed(early, user, await world.us_option()))
    await world.deliver(cancelled(early, user))
    await world.deliver(paid(early, user))
    assert domain.shipment_id_of(early) not in world.shipments.shipments
    # Already with the carrier: stays on its way.
    gone = await world.paid_order(user)
    world.clock.advance(61)
    await world.handlers.advance()
    await world.deliver(cancelled(gone, user))
    assert world.shipments.shipments[domain.shipment_id_of(gone)].state is (
        domain.ShipmentState.IN_TRANSIT
    )


async def test_a_change_a_crash_left_unannounced_is_announced_by_the_sweeper(world):
    world.shipments.crash_before_announce = True
    order = str(uuid.uuid4())
    with pytest.raises(ConnectionError):
        await world.paid_order(str(uuid.uuid4()), order)
    assert world.published(shipping_events_pb2.ShipmentCreated) == []
    world.shipments.crash_before_announce = False
    assert await world.handlers.sweep() == 1
    assert [c.order_id for c in world.published(shipping_events_pb2.ShipmentCreated)] == [order]
    assert await world.handlers.sweep() == 0


async def test_watch_streams_the_shipment_until_it_is_delivered(world):
    user = str(uuid.uuid4())
    order = await world.paid_order(user)
    shipment_id = domain.shipment_id_of(order)
    stream = world.stub.WatchShipment(
        S.WatchShipmentRequest(id=shipment_id), metadata=world.token(user_id=user)
    )
    messages = stream.__aiter__()
    first = await messages.__anext__()
    assert first.shipment.state == SH.STATE_LABEL_CREATED
    assert not first.HasField("tracking_event")
    for _ in range(3):
        world.clock.advance(61)
        await world.handlers.advance()
    seen = [m async for m in messages]
    assert [m.tracking_event.state for m in seen] == [
        SH.STATE_IN_TRANSIT,
        SH.STATE_OUT_FOR_DELIVERY,
        SH.STATE_DELIVERED,
    ]
    assert seen[-1].shipment.state == SH.STATE_DELIVERED
    error = await _error(
        world.stub.WatchShipment(
            S.WatchShipmentRequest(id=shipment_id), metadata=world.token()
        ).read()
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_the_seeded_rate_table_is_written_once(world):
    assert await world.handlers.seed_default_rates() == 0
    await asyncio.sleep(0)


async def test_an_order_whose_option_is_gone_still_ships_with_the_default_carrier(world):
    user, order = str(uuid.uuid4()), str(uuid.uuid4())
    await world.deliver(confirmed(order, user, ""))
    await world.deliver(paid(order, user))
    shipment = world.shipments.shipments[domain.shipment_id_of(order)]
    assert shipment.carrier == "ups"
    assert shipment.state is domain.ShipmentState.LABEL_CREATED


async def test_an_event_without_an_order_id_is_undecodable(world):
    from kit.events import UndecodableEvent

    with pytest.raises(UndecodableEvent):
        await world.deliver(paid("", str(uuid.uuid4())))
