"""The catalog's saga consumers on real servers: events in through RabbitMQ, stock and events out.

The catalog runs as `bootstrap.build` wires it (Cassandra in a keyspace of its own, RabbitMQ, the
relay, its queue and inbox), with an in-memory product cache. The test publishes OrderPlaced,
PaymentSucceeded and OrderCancelled on `emporium.events` as the order and payment services
would, and reads the catalog's events from a throwaway queue. Duplicates (the same event twice,
or a second event for the same order) change nothing.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator

import aio_pika
import grpc
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import ec
from emporium.catalog.v1 import (
    catalog_events_pb2,
    catalog_service_pb2,
    catalog_service_pb2_grpc,
    product_pb2,
    reservation_pb2,
    stock_pb2,
)
from emporium.order.v1 import order_events_pb2, order_pb2
from emporium.payment.v1 import payment_events_pb2
from google.type import money_pb2

from kit import auth, events, server
from kit.auth import Principal
from kit.bus import Bus
from kit.config import CassandraSettings, RabbitSettings
from kit.events import Event
from services.catalog import bootstrap
from services.catalog.adapters.memory import InMemoryProductCache
from services.catalog.config import Settings
from services.catalog.domain import AdjustReason
from services.user.adapters.keys import SigningKeys
from tests.integration.conftest import servers

pytestmark = pytest.mark.asyncio(loop_scope="module")

SUFFIX = "_tc" + secrets.token_hex(4)
QUEUE = f"test.catalog-consumers.{secrets.token_hex(4)}"
S = catalog_service_pb2


def _require(name: str) -> str:
    server_ = servers()[name]
    why = server_.check()
    if why is not None:
        pytest.fail(f"{server_.name} is not reachable: {why}", pytrace=False)
    return server_.address


class Running:
    def __init__(self, stub, keys: SigningKeys, publisher: Bus, events, app=None) -> None:
        self.stub = stub
        self.app = app
        self.publisher = publisher
        self.events = events  # a queue of the catalog's events
        self.seen: list[tuple[str, object]] = []
        now = int(time.time())
        claims = {
            "sub": str(uuid.uuid4()),
            "iss": "emporium-user",
            "aud": "emporium",
            "iat": now,
            "exp": now + 3600,
            "roles": ["admin"],
        }
        self.admin = [("authorization", f"Bearer {keys.sign(claims)}")]

    async def stocked(self, units: int) -> product_pb2.Product:
        product = await self.stub.CreateProduct(
            S.CreateProductRequest(
                product=product_pb2.Product(
                    sku=f"SKU-{secrets.token_hex(5)}",
                    title="Lamp",
                    price=money_pb2.Money(currency_code="USD", units=20),
                ),
                request_id=str(uuid.uuid4()),
            ),
            metadata=self.admin,
        )
        await self.stub.PublishProduct(S.PublishProductRequest(id=product.id), metadata=self.admin)
        await self.stub.AdjustStock(
            S.AdjustStockRequest(
                product_id=product.id,
                request_id=str(uuid.uuid4()),
                delta=units,
                reason=stock_pb2.StockAdjustment.REASON_RESTOCK,
            ),
            metadata=self.admin,
        )
        return product

    async def stock(self, product_id: str) -> tuple[int, int, int]:
        s = await self.stub.GetStock(S.GetStockRequest(product_id=product_id), metadata=self.admin)
        return (s.on_hand_quantity, s.reserved_quantity, s.available_quantity)

    async def publish(self, message, event_id: str | None = None) -> Event:
        event = Event.of(message, events.owner(events.type_name(message)), id=event_id)
        await self.publisher.publish([event])
        return event

    async def until_stock(self, product_id: str, wanted: tuple[int, int, int], seconds=15):
        deadline = time.monotonic() + seconds
        while (current := await self.stock(product_id)) != wanted:
            assert time.monotonic() < deadline, f"stock is {current}, not {wanted}"
            await asyncio.sleep(0.1)

    async def until_event(self, kind: str, order_id: str, seconds: float = 15):
        """The catalog event `kind` (StockReserved ...) about order `order_id`."""
        deadline = time.monotonic() + seconds
        while True:
            for name, message in self.seen:
                if name == kind and getattr(message, "order_id", None) == order_id:
                    return message
            message = await self.events.get(no_ack=True, fail=False)
            if message is None:
                assert time.monotonic() < deadline, f"no {kind} for {order_id}"
                await asyncio.sleep(0.1)
                continue
            name = message.type.rsplit(".", 1)[-1]
            cls = getattr(catalog_events_pb2, name)
            self.seen.append((name, cls.FromString(message.body)))

    def count(self, kind: str, order_id: str) -> int:
        return sum(
            1 for name, m in self.seen if name == kind and getattr(m, "order_id", None) == order_id
        )

    async def drain(self, seconds: float = 1.5) -> None:
        """Reads whatever the catalog publishes for `seconds` into `seen`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            message = await self.events.get(no_ack=True, fail=False)
            if message is None:
                await asyncio.sleep(0.1)
                continue
            name = message.type.rsplit(".", 1)[-1]
            self.seen.append((name, getattr(catalog_events_pb2, name).FromString(message.body)))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running() -> AsyncIterator[Running]:
    _require("cassandra")
    rabbit_url = _require("rabbitmq")
    env = {
        **os.environ,
        "EMPORIUM_CATALOG_GRPC_PORT": "0",
        "EMPORIUM_KEYSPACE_SUFFIX": SUFFIX,
        "EMPORIUM_CATALOG_QUEUE": QUEUE,
        "EMPORIUM_RABBITMQ_URL": rabbit_url,
    }
    settings = Settings.from_env(env)
    assert settings.queue == QUEUE
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
    events = await channel.declare_queue(f"test.catalog-out.{secrets.token_hex(4)}", exclusive=True)
    for name in (
        "StockReserved",
        "StockReservationFailed",
        "StockReleased",
        "StockCommitted",
        "StockAdjusted",
    ):
        await events.bind(exchange, f"emporium.catalog.v1.{name}")
    app = await bootstrap.build(
        settings,
        cache=InMemoryProductCache(),
        verifier=auth.JwtVerifier(jwks, issuer="emporium-user", audience="emporium"),
    )
    grpc_server, port, _ = await server.start(settings.server, app)
    tasks = [asyncio.create_task(work()) for work in app.background]
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as grpc_channel:
            stub = catalog_service_pb2_grpc.CatalogServiceStub(grpc_channel)
            yield Running(stub, keys, publisher, events, app)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await grpc_server.stop(0)
        await publisher.delete_queue(QUEUE)
        await app.close()
        await publisher.close()
        await connection.close()
        from kit import cassandra

        session = await cassandra.connect(
            CassandraSettings.from_env("emporium_catalog", env), wait_seconds=30
        )
        await session.drop_keyspace()
        await session.close()


def _placed(order_id: str, *lines: tuple[str, int]) -> order_events_pb2.OrderPlaced:
    return order_events_pb2.OrderPlaced(
        order_id=order_id,
        user_id=str(uuid.uuid4()),
        line_items=[order_pb2.LineItem(product_id=p, quantity=q) for p, q in lines],
    )


def _cancelled(order_id: str, *lines: tuple[str, int], payment_id: str = ""):
    return order_events_pb2.OrderCancelled(
        order_id=order_id,
        user_id=str(uuid.uuid4()),
        reason=order_pb2.Order.CANCEL_REASON_CUSTOMER_REQUESTED,
        line_items=[order_pb2.LineItem(product_id=p, quantity=q) for p, q in lines],
        payment_id=payment_id,
    )


def _paid(order_id: str) -> payment_events_pb2.PaymentSucceeded:
    return payment_events_pb2.PaymentSucceeded(
        payment_id=str(uuid.uuid4()), order_id=order_id, user_id=str(uuid.uuid4())
    )


async def test_order_placed_reserves_and_a_duplicate_changes_nothing(running):
    product = await running.stocked(5)
    order = str(uuid.uuid4())
    event = await running.publish(_placed(order, (product.id, 2)))
    reserved = await running.until_event("StockReserved", order)
    assert [(line.product_id, line.quantity) for line in reserved.lines] == [(product.id, 2)]
    await running.until_stock(product.id, (5, 2, 3))
    # The same event again, and another OrderPlaced for the same order: one reservation.
    await running.publish(_placed(order, (product.id, 2)), event_id=event.id)
    await running.publish(_placed(order, (product.id, 2)))
    await running.drain()
    assert await running.stock(product.id) == (5, 2, 3)
    assert running.count("StockReserved", order) == 1


async def test_an_order_without_enough_stock_fails_and_holds_nothing(running):
    a, b = await running.stocked(3), await running.stocked(1)
    order = str(uuid.uuid4())
    await running.publish(_placed(order, (a.id, 1), (b.id, 2)))
    failed = await running.until_event("StockReservationFailed", order)
    assert [(s.product_id, s.requested_quantity) for s in failed.shortages] == [(b.id, 2)]
    assert await running.stock(a.id) == (3, 0, 3)
    assert await running.stock(b.id) == (1, 0, 1)


async def test_lines_of_one_product_are_reserved_as_one(running):
    product = await running.stocked(5)
    order = str(uuid.uuid4())
    await running.publish(_placed(order, (product.id, 1), (product.id, 2)))
    await running.until_event("StockReserved", order)
    await running.until_stock(product.id, (5, 3, 2))


async def test_payment_commits_once_and_a_late_cancel_restocks_exactly_once(running):
    product = await running.stocked(4)
    order = str(uuid.uuid4())
    await running.publish(_placed(order, (product.id, 3)))
    await running.until_event("StockReserved", order)
    paid = await running.publish(_paid(order))
    await running.until_event("StockCommitted", order)
    await running.until_stock(product.id, (1, 0, 1))
    await running.publish(_paid(order), event_id=paid.id)
    await running.publish(_paid(order))
    # Cancelled after payment, twice over (the order service sends it again with the payment
    # id; the broker may redeliver): the units come back once.
    cancel = await running.publish(_cancelled(order, (product.id, 3)))
    await running.publish(_cancelled(order, (product.id, 3)), event_id=cancel.id)
    await running.publish(_cancelled(order, (product.id, 3), payment_id=str(uuid.uuid4())))
    await running.until_stock(product.id, (4, 0, 4))
    await running.drain()
    assert await running.stock(product.id) == (4, 0, 4)
    assert running.count("StockCommitted", order) == 1
    adjustments = await running.stub.ListStockAdjustments(
        S.ListStockAdjustmentsRequest(product_id=product.id), metadata=running.admin
    )
    restocks = [a for a in adjustments.stock_adjustments if "order cancelled" in a.note]
    assert [(a.delta, a.reason) for a in restocks] == [(3, stock_pb2.StockAdjustment.REASON_OTHER)]
    assert order in restocks[0].note


async def test_a_cancel_before_payment_releases_and_the_late_payment_commits_nothing(running):
    product = await running.stocked(2)
    order = str(uuid.uuid4())
    await running.publish(_placed(order, (product.id, 2)))
    await running.until_event("StockReserved", order)
    await running.until_stock(product.id, (2, 2, 0))
    await running.publish(_cancelled(order, (product.id, 2)))
    released = await running.until_event("StockReleased", order)
    assert released.reason == reservation_pb2.Reservation.RELEASE_REASON_ORDER_CANCELLED
    await running.until_stock(product.id, (2, 0, 2))
    await running.publish(_cancelled(order, (product.id, 2)))
    await running.publish(_paid(order))
    await running.drain()
    assert await running.stock(product.id) == (2, 0, 2)
    assert running.count("StockReleased", order) == 1
    assert running.count("StockCommitted", order) == 0


async def test_a_cancel_that_overtakes_its_order_placed_leaves_nothing_held(running):
    product = await running.stocked(2)
    order = str(uuid.uuid4())
    await running.publish(_cancelled(order, (product.id, 1)))
    await running.until_event("StockReleased", order)
    await running.publish(_placed(order, (product.id, 1)))
    await running.drain()
    assert await running.stock(product.id) == (2, 0, 2)


async def test_a_crash_between_the_restock_and_its_record_then_a_redelivery_restocks_once(
    running, monkeypatch
):
    """The double restock: the restock of a cancelled, paid order is applied, the consumer
    crashes before anything records it, another adjustment of the product lands meanwhile,
    and the redelivered OrderCancelled must not put the units back a second time."""
    product = await running.stocked(4)
    order = str(uuid.uuid4())
    await running.publish(_placed(order, (product.id, 3)))
    await running.until_event("StockReserved", order)
    await running.publish(_paid(order))
    await running.until_stock(product.id, (1, 0, 1))

    handlers = running.app.handlers
    stock = handlers.stock
    record = stock.record_adjustment
    crashed: list[str] = []

    async def crash_after_the_effect(adjustment, events):
        if "order cancelled" in adjustment.note and not crashed:
            crashed.append(adjustment.request_id)
            # Another writer adjusts the product while the consumer is down.
            await handlers.adjust_stock(
                Principal(user_id="admin"),
                product.id,
                request_id=str(uuid.uuid4()),
                delta=10,
                on_hand=None,
                reason=AdjustReason.RESTOCK,
            )
            raise RuntimeError("crash between the effect and its record")
        await record(adjustment, events)

    monkeypatch.setattr(stock, "record_adjustment", crash_after_the_effect)
    await running.publish(_cancelled(order, (product.id, 3)))
    await running.until_stock(product.id, (14, 0, 14))  # 1 + 10 (admin) + 3 (once)
    await running.drain(3.0)  # the redelivery has come and gone
    assert crashed
    assert await running.stock(product.id) == (14, 0, 14)


async def test_an_order_whose_reservation_cannot_be_made_gets_stock_reservation_failed(running):
    # A line that names no product id: InvalidArgument, no retry can help.
    order = str(uuid.uuid4())
    await running.publish(_placed(order, ("not-a-product-id", 1)))
    failed = await running.until_event("StockReservationFailed", order)
    assert [(s.product_id, s.requested_quantity) for s in failed.shortages] == [
        ("not-a-product-id", 1)
    ]
    # An order that already has a reservation with other lines: AlreadyExists.
    product = await running.stocked(5)
    other = str(uuid.uuid4())
    await running.publish(_placed(other, (product.id, 1)))
    await running.until_event("StockReserved", other)
    await running.publish(_placed(other, (product.id, 4)))
    await running.until_event("StockReservationFailed", other)
    assert await running.stock(product.id) == (5, 1, 4)  # the first reservation stands
