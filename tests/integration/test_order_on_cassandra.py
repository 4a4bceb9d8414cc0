"""The order service on the real servers: its Cassandra repository, and the whole service
consuming real events from RabbitMQ.

The repository contract runs twice, over the in-memory fake and the Cassandra adapter, so the
fake the unit tests use behaves like production. The service test starts the order service as
`bootstrap.build` wires it (Cassandra, outbox relay with lease, sweeper, consumers on a queue of
its own) with fakes only for the neighbouring services, and feeds it real events published to
the `emporium.events` exchange, duplicates included. A server that does not answer fails these
tests.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import grpc
import pytest
import pytest_asyncio
from emporium.catalog.v1 import catalog_events_pb2
from emporium.order.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc
from emporium.payment.v1 import payment_events_pb2
from google.type import postal_address_pb2

from kit import auth, cassandra, server
from kit.bus import CONTENT_TYPE, EXCHANGE_ARGUMENTS, Bus
from kit.config import CassandraSettings, RabbitSettings
from kit.events import Event
from kit.inbox import CassandraInbox
from services.order import bootstrap, domain, mapping
from services.order.adapters import memory
from services.order.adapters.cassandra import CassandraOrderRepository
from services.order.config import Settings
from services.order.domain import Address, LineItem, Money, State
from services.order.ports import PaymentMethod, Product
from tests.integration._accounts import create_accounts, service_bus, service_url
from tests.integration._crash_between import CrashBeforeRecord
from tests.integration.conftest import servers
from tests.unit.test_order_service import AUDIENCE, ISSUER, Tokens

pytestmark = pytest.mark.asyncio(loop_scope="module")

SUFFIX = "_t" + secrets.token_hex(4)
DEADLINE_SECONDS = 12
O = order_pb2.Order  # noqa: E741


def _require(name: str) -> str:
    server_ = servers()[name]
    why = server_.check()
    if why is not None:
        pytest.fail(f"{server_.name} is not reachable: {why}", pytrace=False)
    return server_.address


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def session() -> AsyncIterator[cassandra.CassandraSession]:
    _require("cassandra")
    settings = CassandraSettings.from_env(
        "emporium_order", {**os.environ, "EMPORIUM_KEYSPACE_SUFFIX": SUFFIX}
    )
    session = await cassandra.connect(settings, schema=bootstrap.SCHEMA, wait_seconds=45)
    yield session
    await session.drop_keyspace()
    await session.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def real(session) -> CassandraOrderRepository:
    return await CassandraOrderRepository.open(session)


@pytest.fixture(params=["memory", "cassandra"])
def repo(request, real):
    return memory.InMemoryOrderRepository() if request.param == "memory" else real


def _placed(user_id: str | None = None, when: datetime | None = None) -> domain.Transition:
    return domain.place(
        order_id=str(uuid.uuid4()),
        user_id=user_id or str(uuid.uuid4()),
        request_id=str(uuid.uuid4()),
        lines=(LineItem("p1", "SKU", "Mug", 2, Money("USD", 5_000_000_000)),),
        address=Address(region_code="DE", address_lines=("Street 1",), recipients=("Ann",)),
        shipping_option_id="s1",
        payment_method_id="pm1",
        shipping_cost=Money("USD", 4_990_000_000),
        from_cart=True,
        now=when or _now(),
    )


def _with_deadline(t: domain.Transition, deadline: datetime) -> domain.Transition:
    return replace(t, order=replace(t.order, deadline=deadline))


async def _pending_events(repo) -> list[Event]:
    return await repo.outbox.pending(1000)


# --- the repository contract ----------------------------------------------------------------


async def test_a_placed_order_reads_back_with_its_history_and_events(repo):
    t = _placed()
    events = mapping.events(t)
    assert await repo.insert(t, events)
    assert await repo.get(t.order.id) == t.order
    assert await repo.history(t.order.id) == [t.change]
    ids = {e.id for e in await _pending_events(repo)}
    assert {e.id for e in events} <= ids
    assert not await repo.insert(t, mapping.events(t))


async def test_a_transition_applies_once_per_version_even_when_racing(repo):
    t = _placed()
    await repo.insert(t, mapping.events(t))
    now = _now()
    attempts = [domain.stock_reserved(t.order, now) for _ in range(8)]
    results = await asyncio.gather(
        *(repo.save(a, mapping.events(a), t.order.version) for a in attempts)
    )
    assert results.count(True) == 1
    stored = await repo.get(t.order.id)
    assert (stored.state, stored.version) == (State.CONFIRMED, 2)
    assert [c.state for c in await repo.history(t.order.id)] == [State.PENDING, State.CONFIRMED]
    stale = domain.stock_reservation_failed(t.order, now)
    assert not await repo.save(stale, mapping.events(stale), t.order.version)


async def test_a_request_id_is_claimed_once_per_user(repo):
    user, request_id = str(uuid.uuid4()), str(uuid.uuid4())
    first = await repo.claim(user, request_id, str(uuid.uuid4()), "fp1")
    second = await repo.claim(user, request_id, str(uuid.uuid4()), "fp2")
    assert first == second
    assert await repo.request(user, request_id) == first
    assert await repo.request(str(uuid.uuid4()), request_id) is None


async def test_a_users_orders_list_newest_first_in_pages(repo):
    user = str(uuid.uuid4())
    base = _now() - timedelta(hours=1)
    placed = []
    for minute in range(5):
        t = _placed(user, base + timedelta(minutes=minute))
        await repo.insert(t, mapping.events(t))
        placed.append(t.order.id)
    other = _placed()
    await repo.insert(other, mapping.events(other))
    seen, cursor = [], None
    while True:
        page, cursor = await repo.list(user, cursor, 2)
        seen += [o.id for o in page]
        if cursor is None:
            break
    assert seen == placed[::-1]
    everyone, _ = await repo.list(None, None, 100)
    assert {placed[0], other.order.id} <= {o.id for o in everyone}


async def test_deadlines_come_due_at_their_time_and_once_settled_are_gone(repo):
    # In the past of the wall clock: no sweep of the running service's below is disturbed.
    now = _now() - timedelta(seconds=60)
    soon = _with_deadline(_placed(), now + timedelta(seconds=7))
    later = _with_deadline(_placed(), now + timedelta(seconds=30))
    for t in (soon, later):
        assert await repo.insert(t, mapping.events(t))
    assert soon.order.id not in {d.order_id for d in await repo.overdue(now, 100)}
    due = [d for d in await repo.overdue(now + timedelta(seconds=8), 100)]
    assert [d.order_id for d in due if d.order_id in (soon.order.id, later.order.id)] == [
        soon.order.id
    ]
    await repo.settled(due)
    after = await repo.overdue(now + timedelta(seconds=31), 100)
    ids = {d.order_id for d in after}
    assert soon.order.id not in ids
    assert later.order.id in ids
    await repo.settled(after)


async def test_an_order_that_leaves_pending_or_confirmed_drops_its_deadline(repo):
    now = _now() - timedelta(seconds=60)
    t = _with_deadline(_placed(), now + timedelta(seconds=5))
    assert await repo.insert(t, mapping.events(t))
    confirmed = domain.stock_reserved(t.order, now)
    assert await repo.save(confirmed, mapping.events(confirmed), t.order.version)
    paid = domain.payment_succeeded(confirmed.order, "pay1", confirmed.order.total, now)
    assert await repo.save(paid, mapping.events(paid), confirmed.order.version)
    due = await repo.overdue(now + timedelta(seconds=10), 1000)
    assert t.order.id not in {d.order_id for d in due}
    await repo.settled(due)


async def test_unknown_and_malformed_ids_read_as_missing(repo):
    assert await repo.get(str(uuid.uuid4())) is None
    assert await repo.get("nope") is None
    assert await repo.history("nope") == []


async def test_events_a_crash_left_pending_are_swept_into_the_outbox(real):
    t = _placed()
    events = mapping.events(t)

    async def crash(*args: Any) -> None:
        raise ConnectionError("killed between the conditional write and the outbox")

    real._announce, announce = crash, real._announce  # type: ignore[method-assign]
    try:
        with pytest.raises(ConnectionError):
            await real.insert(t, events)
    finally:
        real._announce = announce  # type: ignore[method-assign]
    assert await real.get(t.order.id) == t.order
    assert not {e.id for e in events} & {e.id for e in await _pending_events(real)}
    assert await real.sweep(older_than=timedelta(0)) >= 1
    outboxed = [e for e in await _pending_events(real) if e.id in {x.id for x in events}]
    assert [e.id for e in outboxed] == [e.id for e in events]
    assert outboxed[0].decode() == events[0].decode()
    # Swept once: the marker is gone, a second sweep hands nothing over again.
    before = len(await _pending_events(real))
    await real.sweep(older_than=timedelta(0))
    assert len(await _pending_events(real)) == before


# --- the whole service on Cassandra and RabbitMQ --------------------------------------------


class Running:
    def __init__(
        self, stub, tokens: Tokens, fakes: dict[str, Any], bus: Bus, events, crashes=None
    ) -> None:
        self.stub = stub
        self.crashes: CrashBeforeRecord = crashes
        self.tokens = tokens
        self.fakes = fakes
        self.bus = bus
        self.events = events
        self.queue = ""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def events_queue() -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    connection = await aio_pika.connect_robust(RabbitSettings.from_env().url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(
        "emporium.events",
        aio_pika.ExchangeType.TOPIC,
        durable=True,
        arguments=EXCHANGE_ARGUMENTS,  # as every service declares it (kit.bus)
    )
    queue = await channel.declare_queue(f"test.order.{secrets.token_hex(4)}", exclusive=True)
    await queue.bind(exchange, "emporium.order.v1.*")
    yield queue
    await connection.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(session, events_queue) -> AsyncIterator[Running]:
    _require("rabbitmq")
    env = {
        **os.environ,
        "EMPORIUM_ORDER_GRPC_PORT": "0",
        "EMPORIUM_KEYSPACE_SUFFIX": SUFFIX,
        "EMPORIUM_ORDER_QUEUE": f"test.order-service.{secrets.token_hex(4)}",
        "EMPORIUM_ORDER_SWEEP_SECONDS": "1",
        # Long enough for the other tests' orders to be paid first, even on a busy machine.
        "EMPORIUM_ORDER_CHECKOUT_DEADLINE_SECONDS": str(DEADLINE_SECONDS),
        "EMPORIUM_ORDER_DEADLINE_SWEEP_SECONDS": "0.5",
    }
    settings = Settings.from_env(env)
    settings = replace(settings, server=replace(settings.server, name="order-test"))
    tokens = Tokens()
    fakes = {
        "catalog": memory.InMemoryCatalog(),
        "cart": memory.InMemoryCart(),
        "shipping": memory.InMemoryShipping(),
        "payments": memory.InMemoryPayments(),
    }
    fakes["shipping"].options = {"standard": Money("USD", 5_000_000_000)}
    crashes = CrashBeforeRecord(await CassandraInbox.open(session, settings.queue))
    app = await bootstrap.build(
        settings,
        verifier=auth.JwtVerifier(tokens.source, issuer=ISSUER, audience=AUDIENCE),
        inbox=crashes,
        **fakes,
    )
    grpc_server, port, _ = await server.start(settings.server, app)
    tasks = [asyncio.create_task(work()) for work in app.background]
    bus = await Bus.connect(settings.rabbit, source="test")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        running = Running(
            order_service_pb2_grpc.OrderServiceStub(channel),
            tokens,
            fakes,
            bus,
            events_queue,
            crashes,
        )
        running.queue = settings.queue
        yield running
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await grpc_server.stop(0)
    await bus.delete_queue(settings.queue)
    await bus.close()
    await app.close()


async def _place(running: Running) -> tuple[list[tuple[str, str]], O]:
    user_id = str(uuid.uuid4())
    token = running.tokens.token(user_id)
    running.fakes["payments"].add(token, PaymentMethod("pm1", 12, 2031))
    product_id = str(uuid.uuid4())
    running.fakes["catalog"].put(
        Product(product_id, "SKU-1", "Mug", Money("USD", 9_000_000_000), True, 300)
    )
    metadata = [("authorization", f"Bearer {token}")]
    request = order_service_pb2.PlaceOrderRequest(
        request_id=str(uuid.uuid4()),
        items=[order_service_pb2.PlaceOrderRequest.Item(product_id=product_id, quantity=1)],
        shipping_address=postal_address_pb2.PostalAddress(
            region_code="DE", address_lines=["Street 1"]
        ),
        shipping_option_id="standard",
        payment_method_id="pm1",
    )
    first = await running.stub.PlaceOrder(request, metadata=metadata)
    again = await running.stub.PlaceOrder(request, metadata=metadata)
    assert again.id == first.id
    return metadata, first


async def _until(running: Running, metadata, order_id: str, state: int, seconds: float = 20):
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        order = await running.stub.GetOrder(
            order_service_pb2.GetOrderRequest(id=order_id), metadata=metadata
        )
        if order.state == state:
            return order
        assert asyncio.get_running_loop().time() < deadline, f"order stuck in {order.state}"
        await asyncio.sleep(0.1)


async def _published(running: Running, order_id: str, seconds: float = 3.0) -> list[str]:
    """The order events for `order_id` that reached the exchange within `seconds`."""
    deadline = asyncio.get_running_loop().time() + seconds
    seen: list[str] = []
    while asyncio.get_running_loop().time() < deadline:
        message = await running.events.get(no_ack=True, fail=False)
        if message is None:
            await asyncio.sleep(0.05)
            continue
        event = Event(
            id=message.message_id,
            type=message.type,
            source=message.app_id,
            time=_now(),
            data=message.body,
        )
        if event.decode().order_id == order_id:
            seen.append(event.type.rsplit(".", 1)[1])
    return seen


async def test_real_events_drive_the_order_and_duplicates_change_nothing(running):
    metadata, order = await _place(running)
    reserved = Event.of(catalog_events_pb2.StockReserved(order_id=order.id), "catalog")
    await running.bus.publish([reserved, reserved])  # the same event id twice
    await _until(running, metadata, order.id, O.STATE_CONFIRMED)
    paid = payment_events_pb2.PaymentSucceeded(
        order_id=order.id, payment_id=str(uuid.uuid4()), amount=order.total
    )
    paid_event = Event.of(paid, "payment")
    # The same event twice, and a second event for the same payment.
    await running.bus.publish([paid_event, paid_event, Event.of(paid, "payment")])
    stored = await _until(running, metadata, order.id, O.STATE_PAID)
    assert stored.payment_id == paid.payment_id
    published = await _published(running, order.id)
    assert published.count("OrderPlaced") == 1
    assert published.count("OrderConfirmed") == 1
    assert published.count("OrderStatusChanged") == 3
    history = await running.stub.ListStatusChanges(
        order_service_pb2.ListStatusChangesRequest(order_id=order.id), metadata=metadata
    )
    assert [c.state for c in history.status_changes] == [
        O.STATE_PENDING,
        O.STATE_CONFIRMED,
        O.STATE_PAID,
    ]


async def test_a_payment_succeeded_sent_with_another_services_login_does_not_pay_the_order(
    running,
):
    """Only the payment service's broker account says that a payment succeeded: the catalog's
    account slipping one (with app_id `payment`) into the order queue is refused."""
    metadata, order = await _place(running)
    reserved = Event.of(catalog_events_pb2.StockReserved(order_id=order.id), "catalog")
    await running.bus.publish([reserved])
    await _until(running, metadata, order.id, O.STATE_CONFIRMED)
    await create_accounts()
    paid = payment_events_pb2.PaymentSucceeded(
        order_id=order.id, payment_id=str(uuid.uuid4()), amount=order.total
    )
    forged = Event.of(paid, "payment")
    connection = await aio_pika.connect_robust(service_url("catalog"))
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.default_exchange.publish(
            aio_pika.Message(
                body=forged.data,
                message_id=forged.id,
                type=forged.type,
                content_type=CONTENT_TYPE,
                app_id="payment",
                user_id="emporium-catalog",
            ),
            routing_key=running.queue,
        )
    letters: list = []
    deadline = asyncio.get_running_loop().time() + 15
    while not letters:
        dead = await running.bus.list_dead_letters(running.queue)
        letters = [d for d in dead if d.message_id == forged.id]
        assert asyncio.get_running_loop().time() < deadline, "the forged event was not refused"
        await asyncio.sleep(0.1)
    assert letters[0].source == "catalog"
    stored = await running.stub.GetOrder(
        order_service_pb2.GetOrderRequest(id=order.id), metadata=metadata
    )
    assert stored.state == O.STATE_CONFIRMED
    # The same payment from the payment service's own account pays it.
    payment = await service_bus("payment")
    try:
        await payment.publish([Event.of(paid, "payment")])
    finally:
        await payment.close()
    await _until(running, metadata, order.id, O.STATE_PAID)


async def test_watch_streams_changes_made_by_events(running):
    metadata, order = await _place(running)
    stream = running.stub.WatchOrder(
        order_service_pb2.WatchOrderRequest(id=order.id), metadata=metadata
    )
    first = await stream.read()
    assert first.order.state == O.STATE_PENDING
    await running.bus.publish(
        [Event.of(catalog_events_pb2.StockReservationFailed(order_id=order.id), "catalog")]
    )
    second = await asyncio.wait_for(stream.read(), 20)
    assert (second.change.state, second.order.cancel_reason) == (
        O.STATE_CANCELLED,
        O.CANCEL_REASON_OUT_OF_STOCK,
    )
    assert await asyncio.wait_for(stream.read(), 5) == grpc.aio.EOF


async def test_an_order_nobody_reserves_stock_for_is_cancelled_at_its_deadline(running):
    metadata, order = await _place(running)
    deadline = order.checkout_expire_time.ToDatetime(tzinfo=UTC)
    assert abs((deadline - order.create_time.ToDatetime(tzinfo=UTC)).total_seconds() - 12) < 1
    cancelled = await _until(
        running, metadata, order.id, O.STATE_CANCELLED, seconds=DEADLINE_SECONDS + 20
    )
    assert cancelled.cancel_reason == O.CANCEL_REASON_DEADLINE_PASSED
    assert datetime.now(UTC) >= deadline
    assert "OrderCancelled" in await _published(running, order.id)


async def test_a_crash_between_an_events_effect_and_its_inbox_record_applies_it_once(running):
    metadata, order = await _place(running)
    reserved = running.crashes.arm(
        Event.of(catalog_events_pb2.StockReserved(order_id=order.id), "catalog")
    )
    await running.bus.publish([reserved])
    await _until(running, metadata, order.id, O.STATE_CONFIRMED)
    paid = payment_events_pb2.PaymentSucceeded(
        order_id=order.id, payment_id=str(uuid.uuid4()), amount=order.total
    )
    paid_event = running.crashes.arm(Event.of(paid, "payment"))
    await running.bus.publish([paid_event])
    await _until(running, metadata, order.id, O.STATE_PAID)
    published = await _published(running, order.id, seconds=4.0)  # the redeliveries included
    assert set(running.crashes.crashed) == {reserved.id, paid_event.id}
    assert await running.crashes.seen(reserved)  # recorded on the redelivery
    assert published.count("OrderConfirmed") == 1
    assert published.count("OrderStatusChanged") == 3
    history = await running.stub.ListStatusChanges(
        order_service_pb2.ListStatusChangesRequest(order_id=order.id), metadata=metadata
    )
    assert [c.state for c in history.status_changes] == [
        O.STATE_PENDING,
        O.STATE_CONFIRMED,
        O.STATE_PAID,
    ]
