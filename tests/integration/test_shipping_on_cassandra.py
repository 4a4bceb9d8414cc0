"""Shipping on the real servers: its Cassandra stores, and the whole service on Cassandra, RabbitMQ.

The store contract runs over the in-memory fakes and the Cassandra adapters alike. The service
runs as `bootstrap.build` wires it (keyspace and queue of its own, outbox relay, consumer,
simulated carrier stepping every 1.5 s); the test publishes the order and payment services'
events on `emporium.events` and reads ShipmentCreated / ShipmentStatusChanged from a throwaway
queue.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import grpc
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import ec
from emporium.order.v1 import order_events_pb2, order_pb2
from emporium.payment.v1 import payment_events_pb2
from emporium.shipping.v1 import (
    shipment_pb2,
    shipping_events_pb2,
    shipping_service_pb2,
    shipping_service_pb2_grpc,
)
from google.type import postal_address_pb2

from kit import auth, cassandra, events, server
from kit.bus import Bus
from kit.config import CassandraSettings, RabbitSettings
from kit.events import Event
from kit.inbox import CassandraInbox
from services.shipping import bootstrap, domain
from services.shipping.adapters import cassandra as stores
from services.shipping.adapters import memory
from services.shipping.config import Settings
from services.shipping.domain import (
    Address,
    Item,
    Money,
    OrderDetails,
    Rate,
    ServiceLevel,
    Shipment,
    ShipmentState,
    TrackingEvent,
)
from services.shipping.ports import Change
from services.user.adapters.keys import SigningKeys
from tests.integration._crash_between import CrashBeforeRecord
from tests.integration.conftest import servers

pytestmark = pytest.mark.asyncio(loop_scope="module")

SUFFIX = "_ts" + secrets.token_hex(4)
QUEUE = f"test.shipping.{secrets.token_hex(4)}"
S = shipping_service_pb2
SH = shipment_pb2.Shipment


def _require(name: str) -> str:
    server_ = servers()[name]
    why = server_.check()
    if why is not None:
        pytest.fail(f"{server_.name} is not reachable: {why}", pytrace=False)
    return server_.address


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "EMPORIUM_SHIPPING_GRPC_PORT": "0",
        "EMPORIUM_KEYSPACE_SUFFIX": SUFFIX,
        "EMPORIUM_SHIPPING_QUEUE": QUEUE,
        "EMPORIUM_SHIPPING_CARRIER_STEP_SECONDS": "1.5",
        "EMPORIUM_SHIPPING_CARRIER_POLL_SECONDS": "0.2",
        "EMPORIUM_SHIPPING_SWEEP_SECONDS": "0.5",
        "EMPORIUM_SHIPPING_WATCH_POLL_SECONDS": "0.2",
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def session() -> AsyncIterator[cassandra.CassandraSession]:
    _require("cassandra")
    settings = CassandraSettings.from_env("emporium_shipping", _env())
    session = await cassandra.connect(settings, schema=bootstrap.SCHEMA, wait_seconds=45)
    yield session
    await session.drop_keyspace()
    await session.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def real(session) -> stores.Stores:
    return await stores.build(session)


@pytest.fixture(params=["memory", "real"])
def repos(request, real) -> dict[str, Any]:
    if request.param == "memory":
        return {
            "rates": memory.InMemoryRateRepository(),
            "shipments": memory.InMemoryShipmentRepository(),
            "orders": memory.InMemoryOrderDetailsRepository(),
        }
    return {"rates": real.rates, "shipments": real.shipments, "orders": real.orders}


# --- the store contract -----------------------------------------------------------------------


def _rate(**fields: Any) -> Rate:
    now = _now()
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "carrier": "dhl",
        "service_level": ServiceLevel.STANDARD,
        "display_name": "DHL",
        "region_codes": ("DE", "FR"),
        "base_price": Money("USD", 5 * 10**9),
        "price_per_kg": Money("USD", 10**9 // 2),
        "max_weight_grams": 1000,
        "min_business_days": 1,
        "max_business_days": 3,
        "disabled": False,
        "create_time": now,
        "update_time": now,
    }
    values.update(fields)
    return Rate(**values)


def _shipment(order_id: str, user_id: str) -> Shipment:
    now = _now()
    return Shipment(
        id=domain.shipment_id_of(order_id),
        order_id=order_id,
        user_id=user_id,
        shipping_option_id="opt",
        carrier="ups",
        service_level=ServiceLevel.EXPRESS,
        tracking_number="UPS1",
        tracking_url="https://t/UPS1",
        destination=Address(region_code="US", postal_code="10001", address_lines=("1 A St",)),
        items=(Item("p1", 2),),
        state=ShipmentState.LABEL_CREATED,
        estimated=domain.delivery_window(now.date(), 1, 2),
        create_time=now,
        update_time=now,
        last_event_time=now,
    )


def _tracking(shipment_id: str, state: ShipmentState, request_id: str) -> TrackingEvent:
    now = _now()
    return TrackingEvent(
        id=domain.derived_id("tracking", shipment_id, request_id),
        shipment_id=shipment_id,
        state=state,
        description="d",
        location="l",
        event_time=now,
        create_time=now,
        request_id=request_id,
    )


async def test_the_carrier_walk_selects_only_shipments_changed_long_enough_ago(repos):
    shipments = repos["shipments"]
    shipment = _shipment(str(uuid.uuid4()), str(uuid.uuid4()))
    label = _tracking(shipment.id, ShipmentState.LABEL_CREATED, "label")
    assert await shipments.create(shipment, Change((), label))
    second = timedelta(seconds=1)
    created = shipment.update_time

    async def selected(states, changed_by) -> bool:
        found = await shipments.in_states(states, changed_by=changed_by)
        return shipment.id in [s.id for s in found]

    assert not await selected([ShipmentState.LABEL_CREATED], created - second)
    assert await selected([ShipmentState.LABEL_CREATED], created)
    moved = replace(
        await shipments.get(shipment.id),
        state=ShipmentState.IN_TRANSIT,
        update_time=created + 10 * second,
        version=2,
    )
    assert await shipments.transition(moved, 1, Change(()))
    # Selected by the state and change time of its latest change, not of the first.
    assert not await selected([ShipmentState.LABEL_CREATED], created + 60 * second)
    assert not await selected([ShipmentState.IN_TRANSIT], created + 9 * second)
    assert await selected([ShipmentState.IN_TRANSIT], created + 10 * second)


async def test_rates_read_back_and_a_retried_create_returns_the_first(repos):
    rates = repos["rates"]
    request_id = str(uuid.uuid4())
    first = _rate(request_id=request_id, id=domain.derived_id("rate", request_id))
    assert await rates.create(first) == first
    assert await rates.create(replace(first, display_name="Other")) == first
    assert await rates.get(first.id) == first
    assert first.id in [r.id for r in await rates.all()]
    assert not await rates.insert_if_absent(replace(first, display_name="Seed"))
    await rates.save(replace(first, disabled=True, price_per_kg=None))
    assert (await rates.get(first.id)).price_per_kg is None
    assert await rates.delete(first.id)
    assert not await rates.delete(first.id)
    assert await rates.get(first.id) is None


async def test_one_shipment_per_order_and_changes_by_compare_and_set(repos):
    shipments = repos["shipments"]
    order, user = str(uuid.uuid4()), str(uuid.uuid4())
    shipment = _shipment(order, user)
    label = _tracking(shipment.id, ShipmentState.LABEL_CREATED, "label")
    created = Event.of(shipping_events_pb2.ShipmentCreated(shipment_id=shipment.id), "shipping")
    assert await shipments.create(shipment, Change((created,), label))
    assert not await shipments.create(replace(shipment, user_id="other"), Change(()))
    stored = await shipments.get(shipment.id)
    assert stored == replace(shipment, announced=1)
    assert [s.id for s in await shipments.of_user(user)] == [shipment.id]
    assert shipment.id in [s.id for s in await shipments.in_states([ShipmentState.LABEL_CREATED])]
    moved = replace(stored, state=ShipmentState.DELIVERED, version=2)
    await asyncio.sleep(0.01)  # a later event_time
    delivered = _tracking(shipment.id, ShipmentState.DELIVERED, "carrier-9")
    assert await shipments.transition(moved, 1, Change((), delivered))
    assert not await shipments.transition(replace(moved, version=3), 1, Change(()))
    assert (await shipments.get(shipment.id)).state is ShipmentState.DELIVERED
    assert await shipments.event_by_request(shipment.id, "carrier-9") == delivered
    assert await shipments.event_by_request(shipment.id, "nope") is None
    assert [e.state for e in await shipments.events(shipment.id)] == [
        ShipmentState.LABEL_CREATED,
        ShipmentState.DELIVERED,
    ]
    # Final: off the carrier's list; announced: nothing to finish.
    assert shipment.id not in [s.id for s in await shipments.in_states(list(ShipmentState))]
    assert shipment.id not in [s.id for s in await shipments.unannounced()]
    await shipments.announce(await shipments.get(shipment.id))  # a repeat changes nothing
    assert len(await shipments.events(shipment.id)) == 2


async def test_order_details_merge_whatever_arrives_first(repos):
    orders = repos["orders"]
    order = str(uuid.uuid4())
    await orders.paid(order, "u1", "pay-1")
    await orders.confirmed(
        OrderDetails(
            order_id=order,
            user_id="u1",
            destination=Address(region_code="US", recipients=("Ann",)),
            shipping_option_id="opt",
            items=(Item("p", 1),),
        )
    )
    details = await orders.get(order)
    assert details.paid
    assert details.confirmed
    assert details.payment_id == "pay-1"
    assert details.destination.recipients == ("Ann",)
    assert not details.cancelled
    await orders.cancelled(order)
    assert (await orders.get(order)).cancelled
    assert await orders.get(str(uuid.uuid4())) is None


# --- the whole service ------------------------------------------------------------------------


class Running:
    def __init__(self, stub, keys: SigningKeys, publisher: Bus, events, app, crashes) -> None:
        self.stub = stub
        self.crashes: CrashBeforeRecord = crashes
        self.keys = keys
        self.publisher = publisher
        self.events = events
        self.app = app
        self.seen: list[tuple[str, Any]] = []
        self.admin = self.token("admin")

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

    async def publish(self, message, event_id: str | None = None) -> Event:
        event = Event.of(message, events.owner(events.type_name(message)), id=event_id)
        await self.publisher.publish([event])
        return event

    async def _read(self) -> bool:
        message = await self.events.get(no_ack=True, fail=False)
        if message is None:
            return False
        name = message.type.rsplit(".", 1)[-1]
        self.seen.append((name, getattr(shipping_events_pb2, name).FromString(message.body)))
        return True

    def of(self, kind: str, order_id: str) -> list[Any]:
        return [m for name, m in self.seen if name == kind and m.order_id == order_id]

    async def until(self, check, seconds: float = 20, what: str = "") -> Any:
        deadline = time.monotonic() + seconds
        while True:
            result = check()
            if result:
                return result
            if not await self._read():
                assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.seen}"
                await asyncio.sleep(0.1)

    async def drain(self, seconds: float = 1.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not await self._read():
                await asyncio.sleep(0.1)

    async def option(self) -> str:
        reply = await self.stub.ListShippingOptions(
            S.ListShippingOptionsRequest(
                destination=postal_address_pb2.PostalAddress(region_code="US")
            )
        )
        return reply.shipping_options[0].id


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(session) -> AsyncIterator[Running]:
    rabbit_url = _require("rabbitmq")
    env = {**_env(), "EMPORIUM_RABBITMQ_URL": rabbit_url}
    settings = Settings.from_env(env)
    keys = SigningKeys(ec.generate_private_key(ec.SECP256R1()))

    async def jwks() -> bytes:
        return keys.jwks_json()

    publisher = await Bus.connect(RabbitSettings(rabbit_url), source="test")
    connection = await aio_pika.connect_robust(rabbit_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(
        "emporium.events",
        aio_pika.ExchangeType.TOPIC,
        durable=True,
        arguments={"alternate-exchange": "emporium.unrouted"},  # as kit.bus declares it
    )
    events = await channel.declare_queue(
        f"test.shipping-out.{secrets.token_hex(4)}", exclusive=True
    )
    await events.bind(exchange, "emporium.shipping.v1.*")
    crashes = CrashBeforeRecord(await CassandraInbox.open(session, QUEUE, create_table=True))
    app = await bootstrap.build(
        settings,
        verifier=auth.JwtVerifier(jwks, issuer="emporium-user", audience="emporium"),
        inbox=crashes,
    )
    grpc_server, port, _ = await server.start(settings.server, app)
    tasks = [asyncio.create_task(work()) for work in app.background]
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as grpc_channel:
            stub = shipping_service_pb2_grpc.ShippingServiceStub(grpc_channel)
            yield Running(stub, keys, publisher, events, app, crashes)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await grpc_server.stop(0)
        await publisher.delete_queue(QUEUE)
        await app.close()
        await publisher.close()
        await connection.close()


def _confirmed(order_id: str, user_id: str, option_id: str) -> order_events_pb2.OrderConfirmed:
    return order_events_pb2.OrderConfirmed(
        order_id=order_id,
        user_id=user_id,
        shipping_address=postal_address_pb2.PostalAddress(
            region_code="US", postal_code="10001", address_lines=["1 Main St"]
        ),
        shipping_option_id=option_id,
        line_items=[order_pb2.LineItem(product_id=str(uuid.uuid4()), quantity=1)],
    )


def _paid(order_id: str, user_id: str) -> payment_events_pb2.PaymentSucceeded:
    return payment_events_pb2.PaymentSucceeded(
        payment_id=str(uuid.uuid4()), order_id=order_id, user_id=user_id
    )


def _cancelled(order_id: str, user_id: str) -> order_events_pb2.OrderCancelled:
    return order_events_pb2.OrderCancelled(
        order_id=order_id,
        user_id=user_id,
        reason=order_pb2.Order.CANCEL_REASON_CUSTOMER_REQUESTED,
    )


async def test_a_twice_delivered_payment_ships_once_and_the_parcel_is_delivered(running):
    user, order = str(uuid.uuid4()), str(uuid.uuid4())
    await running.publish(_confirmed(order, user, await running.option()))
    payment = _paid(order, user)
    first = await running.publish(payment)
    await running.publish(payment, event_id=first.id)  # a redelivery
    await running.publish(_paid(order, user))  # another event for the same payment
    created = await running.until(
        lambda: running.of("ShipmentCreated", order), what="ShipmentCreated"
    )
    assert created[0].state == SH.STATE_LABEL_CREATED
    assert created[0].tracking_number
    await running.until(
        lambda: any(
            c.state == SH.STATE_DELIVERED for c in running.of("ShipmentStatusChanged", order)
        ),
        what="delivered",
    )
    await running.drain()
    assert len(running.of("ShipmentCreated", order)) == 1
    assert [c.state for c in running.of("ShipmentStatusChanged", order)] == [
        SH.STATE_IN_TRANSIT,
        SH.STATE_OUT_FOR_DELIVERY,
        SH.STATE_DELIVERED,
    ]
    mine = await running.stub.ListShipments(
        S.ListShipmentsRequest(), metadata=running.token(user_id=user)
    )
    assert [(s.order_id, s.state) for s in mine.shipments] == [(order, SH.STATE_DELIVERED)]
    history = await running.stub.ListTrackingEvents(
        S.ListTrackingEventsRequest(shipment_id=mine.shipments[0].id),
        metadata=running.token(user_id=user),
    )
    assert [e.state for e in history.tracking_events] == [
        SH.STATE_LABEL_CREATED,
        SH.STATE_IN_TRANSIT,
        SH.STATE_OUT_FOR_DELIVERY,
        SH.STATE_DELIVERED,
    ]


async def test_a_crash_between_a_handlers_effect_and_its_inbox_record_ships_once(running):
    user, order = str(uuid.uuid4()), str(uuid.uuid4())
    confirmed = running.crashes.arm(
        Event.of(_confirmed(order, user, await running.option()), "order")
    )
    await running.publisher.publish([confirmed])
    paid = running.crashes.arm(Event.of(_paid(order, user), "payment"))
    await running.publisher.publish([paid])
    await running.until(lambda: running.of("ShipmentCreated", order), what="ShipmentCreated")
    deadline = time.monotonic() + 20
    while not await running.crashes.seen(paid):  # the redelivery went through
        assert time.monotonic() < deadline, "the crashed delivery never came back"
        await asyncio.sleep(0.1)
    await running.drain(1.5)
    assert running.crashes.crashed == [confirmed.id, paid.id]
    assert len(running.of("ShipmentCreated", order)) == 1
    mine = await running.stub.ListShipments(
        S.ListShipmentsRequest(), metadata=running.token(user_id=user)
    )
    assert [s.order_id for s in mine.shipments] == [order]


async def test_a_payment_before_the_confirmation_ships_when_the_details_arrive(running):
    user, order = str(uuid.uuid4()), str(uuid.uuid4())
    await running.publish(_paid(order, user))
    await running.drain(0.5)
    assert running.of("ShipmentCreated", order) == []
    await running.publish(_confirmed(order, user, await running.option()))
    await running.until(lambda: running.of("ShipmentCreated", order), what="ShipmentCreated")


async def test_an_order_cancelled_before_handover_cancels_its_shipment(running):
    user, order = str(uuid.uuid4()), str(uuid.uuid4())
    await running.publish(_confirmed(order, user, await running.option()))
    await running.publish(_paid(order, user))
    await running.publish(_cancelled(order, user))
    changes = await running.until(
        lambda: running.of("ShipmentStatusChanged", order), what="cancelled"
    )
    assert [(c.previous_state, c.state) for c in changes] == [
        (SH.STATE_LABEL_CREATED, SH.STATE_CANCELLED)
    ]
    await running.drain(2.5)  # longer than a carrier step: a cancelled parcel stays put
    assert len(running.of("ShipmentStatusChanged", order)) == 1
    shipment = await running.stub.GetShipment(
        S.GetShipmentRequest(id=changes[0].shipment_id), metadata=running.admin
    )
    assert shipment.state == SH.STATE_CANCELLED


async def test_an_order_cancelled_before_payment_is_never_shipped(running):
    user, order = str(uuid.uuid4()), str(uuid.uuid4())
    await running.publish(_confirmed(order, user, await running.option()))
    await running.publish(_cancelled(order, user))
    await running.publish(_paid(order, user))
    await running.drain(2.0)
    assert running.of("ShipmentCreated", order) == []
    mine = await running.stub.ListShipments(
        S.ListShipmentsRequest(order_id=order), metadata=running.token(user_id=user)
    )
    assert list(mine.shipments) == []


async def test_the_outbox_drains(running):
    deadline = time.monotonic() + 15
    outbox = running.app.handlers.shipments.outbox  # type: ignore[attr-defined]
    while await outbox.pending(10):
        assert time.monotonic() < deadline, "the outbox never drained"
        await asyncio.sleep(0.3)


async def test_watch_streams_a_shipment_until_it_is_delivered(running):
    user, order = str(uuid.uuid4()), str(uuid.uuid4())
    await running.publish(_confirmed(order, user, await running.option()))
    await running.publish(_paid(order, user))
    shipment_id = domain.shipment_id_of(order)
    await running.until(lambda: running.of("ShipmentCreated", order), what="ShipmentCreated")
    stream = running.stub.WatchShipment(
        S.WatchShipmentRequest(id=shipment_id), metadata=running.token(user_id=user), timeout=30
    )
    messages = [m async for m in stream]
    assert not messages[0].HasField("tracking_event")
    states = [m.tracking_event.state for m in messages[1:]]
    assert states[-1] == SH.STATE_DELIVERED
    assert SH.STATE_IN_TRANSIT in states
    assert messages[-1].shipment.state == SH.STATE_DELIVERED
