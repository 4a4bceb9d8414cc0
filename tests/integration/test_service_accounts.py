"""Per-service broker accounts on real RabbitMQ (kit.accounts): each service reads only its
own queues, publishes only the events it owns, and cannot pass for another service.

The accounts are created on the test vhost with the administrator's login (the stack's), as
`python -m kit.accounts rabbitmq` does before the services start.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aio_pika
import aiormq
import pytest
import pytest_asyncio
from _accounts import create_accounts, service_bus, service_url
from emporium.catalog.v1 import catalog_events_pb2
from emporium.payment.v1 import payment_events_pb2

from kit.bus import CONTENT_TYPE, Bus
from kit.config import RabbitSettings
from kit.events import Event, dispatch

pytestmark = pytest.mark.asyncio(loop_scope="module")

PAYMENT_SUCCEEDED = "emporium.payment.v1.PaymentSucceeded"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def admin() -> AsyncIterator[Bus]:
    bus = await Bus.connect(RabbitSettings.from_env(), "test-accounts", wait_seconds=10)
    await create_accounts()
    try:
        yield bus
    finally:
        await bus.close()


@pytest_asyncio.fixture(loop_scope="module")
async def catalog(admin: Bus) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    connection = await aio_pika.connect_robust(service_url("catalog"))
    try:
        yield connection
    finally:
        await connection.close()


@pytest_asyncio.fixture(loop_scope="module")
async def queue(admin: Bus) -> AsyncIterator[str]:
    """A queue of the administrator's, bound to PaymentSucceeded, consumed as the order
    service's queue would be."""
    name = f"test.accounts.{uuid.uuid4().hex[:10]}"
    await admin.declare_queue(name, [PAYMENT_SUCCEEDED], delivery_limit=1, retry_delays=(0.05,))
    try:
        yield name
    finally:
        await admin.delete_queue(name)


def _paid(order_id: str) -> payment_events_pb2.PaymentSucceeded:
    return payment_events_pb2.PaymentSucceeded(order_id=order_id, payment_id=str(uuid.uuid4()))


def _message(event: Event, user_id: str | None = None) -> aio_pika.Message:
    return aio_pika.Message(
        body=event.data,
        message_id=event.id,
        type=event.type,
        content_type=CONTENT_TYPE,
        app_id=event.source,
        user_id=user_id,
    )


async def test_the_catalogs_broker_user_cannot_consume_the_payment_queue(admin, catalog):
    await admin.declare_queue("payment", [])  # as the topology declares it (no new binding)
    channel = await catalog.channel()
    queue = await channel.get_queue("payment", ensure=False)  # no call to the broker yet
    with pytest.raises(aiormq.exceptions.ChannelAccessRefused, match="ACCESS_REFUSED"):
        await queue.consume(lambda message: asyncio.sleep(0))
    # Its own queue is fine.
    await admin.declare_queue("catalog", [])
    own = await catalog.channel()
    assert (await own.get_queue("catalog", ensure=True)).name == "catalog"


async def test_the_catalogs_broker_user_cannot_publish_a_payment_succeeded(admin, catalog):
    channel = await catalog.channel(publisher_confirms=True)
    exchange = await channel.get_exchange("emporium.events", ensure=True)
    forged = Event.of(_paid(str(uuid.uuid4())), "payment")
    with pytest.raises(aiormq.exceptions.ChannelAccessRefused, match="ACCESS_REFUSED"):
        await exchange.publish(_message(forged, "emporium-catalog"), routing_key=forged.type)
    # The events it owns go through.
    own = await catalog.channel(publisher_confirms=True)
    exchange = await own.get_exchange("emporium.events", ensure=True)
    reserved = Event.of(catalog_events_pb2.StockReserved(order_id=str(uuid.uuid4())), "catalog")
    await exchange.publish(_message(reserved, "emporium-catalog"), routing_key=reserved.type)


async def test_the_catalogs_broker_user_cannot_publish_as_another_user(admin, catalog):
    channel = await catalog.channel(publisher_confirms=True)
    exchange = await channel.get_exchange("emporium.events", ensure=True)
    reserved = Event.of(catalog_events_pb2.StockReserved(order_id=str(uuid.uuid4())), "catalog")
    with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed, match="user_id"):
        await exchange.publish(_message(reserved, "emporium-payment"), routing_key=reserved.type)


async def test_a_payment_succeeded_slipped_in_by_the_catalog_is_refused_as_foreign(
    admin, catalog, queue
):
    """The catalog may put a message into a queue through the default exchange, but its
    user_id gives it away: whatever its app_id says, the consumer refuses it."""
    handled: list[Event] = []

    async def on_paid(message: payment_events_pb2.PaymentSucceeded, event: Event) -> None:
        handled.append(event)

    consumer = await admin.consume(
        queue, dispatch({payment_events_pb2.PaymentSucceeded: on_paid}), prefetch=1
    )
    try:
        channel = await catalog.channel(publisher_confirms=True)
        forged = Event.of(_paid("forged"), "payment")
        await channel.default_exchange.publish(
            _message(forged, "emporium-catalog"), routing_key=queue
        )
        # Published by payment's own account, app_id notwithstanding: accepted.
        payment = await service_bus("payment")
        try:
            real = Event.of(_paid("real"), "whoever")
            await payment.publish([real])
        finally:
            await payment.close()
        deadline = asyncio.get_running_loop().time() + 15
        while not handled or not await admin.list_dead_letters(queue):
            assert asyncio.get_running_loop().time() < deadline, "not handled / dead-lettered"
            await asyncio.sleep(0.05)
    finally:
        await consumer.stop()
    assert [e.id for e in handled] == [real.id]
    assert handled[0].source == "payment"
    letters = await admin.list_dead_letters(queue)
    assert [(d.message_id, d.source) for d in letters] == [(forged.id, "catalog")]


async def test_a_message_without_user_id_is_believed_from_no_one(admin, queue):
    handled: list[Event] = []

    async def on_paid(message: payment_events_pb2.PaymentSucceeded, event: Event) -> None:
        handled.append(event)

    consumer = await admin.consume(
        queue, dispatch({payment_events_pb2.PaymentSucceeded: on_paid}), prefetch=1
    )
    try:
        connection = await aio_pika.connect_robust(RabbitSettings.from_env().url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            anonymous = Event.of(_paid("anonymous"), "payment")
            await channel.default_exchange.publish(_message(anonymous), routing_key=queue)
        deadline = asyncio.get_running_loop().time() + 15
        while not await admin.list_dead_letters(queue):
            assert asyncio.get_running_loop().time() < deadline, "not dead-lettered"
            await asyncio.sleep(0.05)
    finally:
        await consumer.stop()
    assert handled == []
