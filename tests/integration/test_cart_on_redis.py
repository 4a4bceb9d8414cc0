"""The cart service on the real servers: its Redis adapter, its outbox, the catalog client, and
the whole service over gRPC.

The repository contract runs twice, over the in-memory fake and the Redis adapter, so the fake
the unit tests use behaves like production. Every Redis key of a run starts with a random
prefix, deleted afterwards. A server that does not answer fails these tests; nothing skips.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import aio_pika
import grpc
import pytest
import pytest_asyncio
from emporium.cart.v1 import cart_events_pb2, cart_pb2, cart_service_pb2, cart_service_pb2_grpc
from emporium.catalog.v1 import (
    catalog_events_pb2,
    catalog_service_pb2,
    catalog_service_pb2_grpc,
    product_pb2,
    stock_pb2,
)
from emporium.order.v1 import order_events_pb2, order_pb2
from google.type import money_pb2

from kit import auth, errors, server
from kit import redis as kit_redis
from kit.bus import Bus
from kit.config import RabbitSettings, RedisSettings
from kit.events import Event
from kit.outbox import Relay
from services.cart import bootstrap
from services.cart.adapters.catalog import GrpcCatalog
from services.cart.adapters.memory import InMemoryCartRepository
from services.cart.adapters.redis import RedisCartRepository
from services.cart.config import Settings
from services.cart.domain import Cart, Line, Money, ProductState, ProductView
from services.cart.ports import Change
from tests.unit.test_cart_service import AUDIENCE, ISSUER, Tokens

pytestmark = pytest.mark.asyncio(loop_scope="module")

PREFIX = f"test:cart:{secrets.token_hex(4)}:"
SOURCE = f"cart-test-{secrets.token_hex(4)}"


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client() -> AsyncIterator[Any]:
    client = kit_redis.connect(RedisSettings.from_env())
    await client.ping()  # fails, does not skip, when Redis is not there
    yield client
    keys = [key async for key in client.scan_iter(match=f"{PREFIX}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def _redis_repo(client: Any, ttl_seconds: int = 3600) -> RedisCartRepository:
    prefix = f"{PREFIX}{secrets.token_hex(3)}:"
    return RedisCartRepository(client, prefix=prefix, ttl_seconds=ttl_seconds)


@pytest.fixture(params=["memory", "redis"])
def make_repo(request, client):
    def make(ttl_seconds: int = 3600):
        if request.param == "memory":
            return InMemoryCartRepository(ttl_seconds=ttl_seconds)
        return _redis_repo(client, ttl_seconds)

    return make


def _view(product_id: str, *, stock: int = 1000, price: int = 2_500_000_000) -> ProductView:
    return ProductView(
        id=product_id,
        sku=f"SKU-{product_id[:6]}",
        title="Mug",
        price=Money("USD", price),
        state=ProductState.ACTIVE,
        available_quantity=stock,
    )


def _adder(user_id: str, view: ProductView, quantity: int = 1):
    def add(current: Cart | None) -> Change:
        return Change((current or Cart(user_id=user_id)).add(view, quantity, "USD", _now()))

    return add


# --- the repository contract, over both adapters --------------------------------------------


async def test_a_user_without_a_cart_reads_none(make_repo):
    assert await make_repo().get(str(uuid.uuid4())) is None


async def test_a_stored_cart_reads_back_equal(make_repo):
    repo, user_id = make_repo(), str(uuid.uuid4())
    view = _view(str(uuid.uuid4()), price=1_990_000_000)
    stored = await repo.update(user_id, _adder(user_id, view, 3))
    assert await repo.get(user_id) == stored
    [line] = stored.lines
    assert isinstance(line, Line)
    assert line.quantity == 3
    assert line.unit_price == Money("USD", 1_990_000_000)


async def test_twenty_concurrent_adds_of_one_product_sum_and_lose_none(make_repo):
    repo, user_id = make_repo(), str(uuid.uuid4())
    view = _view(str(uuid.uuid4()))
    await asyncio.gather(*(repo.update(user_id, _adder(user_id, view, 2)) for _ in range(20)))
    assert [li.quantity for li in (await repo.get(user_id)).lines] == [40]


async def test_concurrent_adds_of_different_products_keep_every_line(make_repo):
    repo, user_id = make_repo(), str(uuid.uuid4())
    views = [_view(str(uuid.uuid4())) for _ in range(10)]
    await asyncio.gather(*(repo.update(user_id, _adder(user_id, v)) for v in views))
    assert {li.product_id for li in (await repo.get(user_id)).lines} == {v.id for v in views}


async def test_a_mutation_that_raises_writes_nothing(make_repo):
    repo, user_id = make_repo(), str(uuid.uuid4())

    def refuse(current: Cart | None) -> Change:
        raise errors.FailedPrecondition("no", reason="NO")

    with pytest.raises(errors.FailedPrecondition):
        await repo.update(user_id, refuse)
    assert await repo.get(user_id) is None
    assert await repo.outbox.pending(10) == []


async def test_an_update_with_a_used_once_key_changes_nothing_and_records_no_event(make_repo):
    repo, user_id = make_repo(), str(uuid.uuid4())
    view = _view(str(uuid.uuid4()))

    def with_event(current: Cart | None) -> Change:
        cart = (current or Cart(user_id=user_id)).add(view, 1, "USD", _now())
        return Change(cart, (cart_events_pb2.CartCheckedOut(user_id=user_id, order_id="o1"),))

    await repo.update(user_id, with_event, once="checkout:o1")
    await repo.update(user_id, with_event, once="checkout:o1")
    assert [li.quantity for li in (await repo.get(user_id)).lines] == [1]
    [event] = await repo.outbox.pending(10)
    assert event.type == "emporium.cart.v1.CartCheckedOut"
    assert cart_events_pb2.CartCheckedOut.FromString(event.data).order_id == "o1"


async def test_a_cart_not_changed_within_its_ttl_expires(make_repo):
    repo, user_id = make_repo(ttl_seconds=1), str(uuid.uuid4())
    view = _view(str(uuid.uuid4()))
    await repo.update(user_id, _adder(user_id, view))
    await asyncio.sleep(0.6)
    await repo.update(user_id, _adder(user_id, view))  # a write restarts the expiry
    await asyncio.sleep(0.6)
    assert [li.quantity for li in (await repo.get(user_id)).lines] == [2]
    await asyncio.sleep(0.6)
    assert await repo.get(user_id) is None


async def test_the_product_index_lists_the_carts_holding_a_product(make_repo):
    repo, ann, bob = make_repo(), str(uuid.uuid4()), str(uuid.uuid4())
    mug, pot = _view(str(uuid.uuid4())), _view(str(uuid.uuid4()))
    await repo.update(ann, _adder(ann, mug))
    await repo.update(bob, _adder(bob, mug))
    await repo.update(bob, _adder(bob, pot))
    assert sorted(await repo.holders(mug.id)) == sorted([ann, bob])
    assert await repo.holders(pot.id) == [bob]

    def remove_mug(current: Cart | None) -> Change:
        return Change(current.remove(mug.id, _now()))

    await repo.update(bob, remove_mug)
    assert await repo.holders(mug.id) == [ann]


async def test_a_mutation_that_returns_none_stores_nothing(make_repo):
    repo, user_id = make_repo(), str(uuid.uuid4())
    assert await repo.update(user_id, lambda current: None) == Cart(user_id=user_id)
    assert await repo.get(user_id) is None


async def test_an_update_that_keeps_the_ttl_does_not_extend_the_carts_life(make_repo):
    repo, user_id = make_repo(ttl_seconds=1), str(uuid.uuid4())
    view = _view(str(uuid.uuid4()))
    await repo.update(user_id, _adder(user_id, view))
    await asyncio.sleep(0.6)
    await repo.update(user_id, lambda current: Change(current.repriced(view)), keep_ttl=True)
    await asyncio.sleep(0.6)
    assert await repo.get(user_id) is None


async def test_the_redis_cart_key_carries_the_configured_ttl(client):
    repo, user_id = _redis_repo(client, ttl_seconds=3600), str(uuid.uuid4())
    await repo.update(user_id, _adder(user_id, _view(str(uuid.uuid4()))))
    assert 3_590_000 < await repo.ttl_ms_left(user_id) <= 3_600_000
    assert await client.exists(f"{repo.prefix}cart:{user_id}")


async def test_the_outbox_keeps_events_in_order_and_mark_sent_removes_only_those_sent(client):
    repo = _redis_repo(client)
    user_id = str(uuid.uuid4())

    def emit(order_id: str):
        def mutation(current: Cart | None) -> Change:
            event = cart_events_pb2.CartCheckedOut(user_id=user_id, order_id=order_id)
            return Change(current or Cart(user_id=user_id), (event,))

        return mutation

    for n in range(3):
        await repo.update(user_id, emit(f"o{n}"))
    first = await repo.outbox.pending(2)
    assert [cart_events_pb2.CartCheckedOut.FromString(e.data).order_id for e in first] == [
        "o0",
        "o1",
    ]
    await repo.update(user_id, emit("o3"))
    await repo.outbox.mark_sent(first)
    rest = await repo.outbox.pending(10)
    assert [cart_events_pb2.CartCheckedOut.FromString(e.data).order_id for e in rest] == [
        "o2",
        "o3",
    ]
    assert rest[0].source == "cart"
    assert rest[0].time.tzinfo is not None


async def test_only_one_relay_holds_the_outbox_lease_until_it_expires(client):
    repo = _redis_repo(client)
    first, second = repo.lease(seconds=0.5), repo.lease(seconds=0.5)
    assert await first.hold()
    assert await first.hold()
    assert not await second.hold()
    await asyncio.sleep(0.7)
    assert await second.hold()
    assert not await first.hold()


# --- the outbox relay to the real RabbitMQ --------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def events_queue() -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    """A throwaway queue bound to CartCheckedOut, declared before anything publishes."""
    connection = await aio_pika.connect_robust(RabbitSettings.from_env().url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(
        "emporium.events",
        aio_pika.ExchangeType.TOPIC,
        durable=True,
        arguments={"alternate-exchange": "emporium.unrouted"},  # as kit.bus declares it
    )
    queue = await channel.declare_queue(f"test.cart.{secrets.token_hex(4)}", exclusive=True)
    await queue.bind(exchange, "emporium.cart.v1.CartCheckedOut")
    yield queue
    await connection.close()


async def _next_checked_out(queue, order_id: str, seconds: float = 15, source: str = "cart"):
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        message = await queue.get(no_ack=True, fail=False)
        if message is not None and message.app_id == source:
            event = cart_events_pb2.CartCheckedOut.FromString(message.body)
            if event.order_id == order_id:
                return message, event
        assert asyncio.get_running_loop().time() < deadline, "CartCheckedOut never arrived"
        await asyncio.sleep(0.05)


async def test_the_relay_publishes_outbox_events_to_rabbitmq_and_removes_them(client, events_queue):
    repo = _redis_repo(client)
    user_id, order_id = str(uuid.uuid4()), str(uuid.uuid4())

    def emit(current: Cart | None) -> Change:
        event = cart_events_pb2.CartCheckedOut(user_id=user_id, order_id=order_id)
        return Change(current or Cart(user_id=user_id), (event,))

    await repo.update(user_id, emit)
    [stored] = await repo.outbox.pending(10)
    async with await Bus.connect(RabbitSettings.from_env(), source="cart") as bus:
        relay = Relay(repo.outbox, bus, lease=repo.lease())
        assert await relay.publish_pending() == 1
    message, event = await _next_checked_out(events_queue, order_id)
    assert event.user_id == user_id
    assert message.message_id == stored.id
    assert message.type == "emporium.cart.v1.CartCheckedOut"
    assert message.content_type == "application/x-protobuf"
    assert message.app_id == "cart"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert await repo.outbox.pending(10) == []


# --- the catalog client against an in-process catalog server --------------------------------


class FakeCatalogServer(catalog_service_pb2_grpc.CatalogServiceServicer):
    """GetProduct, BatchGetProducts and GetStock as the catalog contract describes them."""

    def __init__(self) -> None:
        self.products: dict[str, product_pb2.Product] = {}
        self.stock: dict[str, int] = {}

    def put(self, state=product_pb2.Product.STATE_ACTIVE, stock: int = 7, units: int = 4) -> str:
        product_id = str(uuid.uuid4())
        self.products[product_id] = product_pb2.Product(
            id=product_id,
            sku=f"SKU-{product_id[:6]}",
            title="Teapot",
            price=money_pb2.Money(currency_code="USD", units=units, nanos=250_000_000),
            state=state,
            images=[
                product_pb2.ProductImage(url="/b.png", position=1),
                product_pb2.ProductImage(url="/a.png", position=0),
            ],
        )
        self.stock[product_id] = stock
        return product_id

    def _visible(self, product_id: str) -> product_pb2.Product | None:
        product = self.products.get(product_id)
        if product is None or product.state == product_pb2.Product.STATE_DRAFT:
            return None
        return product

    async def GetProduct(self, request, context):
        product = self._visible(request.id)
        if product is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such product")
        return product

    async def BatchGetProducts(self, request, context):
        found = [self._visible(i) for i in request.ids]
        if any(p is None for p in found):
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such product")
        return catalog_service_pb2.BatchGetProductsResponse(products=found)

    async def GetStock(self, request, context):
        if self._visible(request.product_id) is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such product")
        return stock_pb2.Stock(
            product_id=request.product_id, available_quantity=self.stock[request.product_id]
        )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def catalog_server() -> AsyncIterator[tuple[FakeCatalogServer, str]]:
    fake = FakeCatalogServer()
    grpc_server = grpc.aio.server()
    catalog_service_pb2_grpc.add_CatalogServiceServicer_to_server(fake, grpc_server)
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    yield fake, f"127.0.0.1:{port}"
    await grpc_server.stop(0)


async def test_the_grpc_catalog_reads_a_product_with_its_stock_and_main_image(catalog_server):
    fake, address = catalog_server
    product_id = fake.put(stock=7, units=4)
    catalog = GrpcCatalog(address)
    view = await catalog.product(product_id)
    assert view == ProductView(
        id=product_id,
        sku=f"SKU-{product_id[:6]}",
        title="Teapot",
        price=Money("USD", 4_250_000_000),
        state=ProductState.ACTIVE,
        available_quantity=7,
        image_url="/a.png",
    )
    await catalog.close()


async def test_the_grpc_catalog_sees_unknown_and_draft_products_as_missing(catalog_server):
    fake, address = catalog_server
    draft = fake.put(state=product_pb2.Product.STATE_DRAFT)
    archived = fake.put(state=product_pb2.Product.STATE_ARCHIVED)
    active = fake.put()
    catalog = GrpcCatalog(address)
    assert await catalog.product(str(uuid.uuid4())) is None
    assert await catalog.product(draft) is None
    assert (await catalog.product(archived)).state is ProductState.ARCHIVED
    unknown = str(uuid.uuid4())
    views = await catalog.products([active, draft, unknown, archived])
    assert views[draft] is None
    assert views[unknown] is None
    assert views[active].available_quantity == 7
    assert views[archived].state is ProductState.ARCHIVED
    await catalog.close()


async def test_a_catalog_that_does_not_answer_is_unavailable():
    catalog = GrpcCatalog("127.0.0.1:9", timeout_seconds=0.5)
    with pytest.raises(errors.Unavailable):
        await catalog.product(str(uuid.uuid4()))
    with pytest.raises(errors.Unavailable):
        await catalog.products([str(uuid.uuid4())])
    await catalog.close()


# --- the whole service on Redis and RabbitMQ, with the gRPC catalog -------------------------


class Running:
    def __init__(self, stub, tokens: Tokens, catalog: FakeCatalogServer, carts, bus) -> None:
        self.stub = stub
        self.bus = bus
        self.tokens = tokens
        self.catalog = catalog
        self.carts = carts


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(client, catalog_server, events_queue) -> AsyncIterator[Running]:
    fake, address = catalog_server
    host, port = address.rsplit(":", 1)
    prefix = f"{PREFIX}svc:"
    env = {
        **os.environ,
        "EMPORIUM_CART_GRPC_PORT": "0",
        "EMPORIUM_CART_KEY_PREFIX": prefix,
        "EMPORIUM_CART_QUEUE": f"test.cart-service.{secrets.token_hex(4)}",
        "EMPORIUM_CATALOG_GRPC_HOST": host,
        "EMPORIUM_CATALOG_GRPC_PORT": port,
    }
    settings = Settings.from_env(env)
    # A source of its own: a cart service of a running stack gets the same OrderPlaced events
    # and publishes its own CartCheckedOut, which the assertions must tell apart.
    settings = replace(settings, server=replace(settings.server, name=SOURCE))
    tokens = Tokens()
    app = await bootstrap.build(
        settings, verifier=auth.JwtVerifier(tokens.source, issuer=ISSUER, audience=AUDIENCE)
    )
    grpc_server, grpc_port, _ = await server.start(settings.server, app)
    tasks = [asyncio.create_task(work()) for work in app.background]
    bus = await Bus.connect(settings.rabbit, source="test")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        carts = RedisCartRepository(client, prefix=prefix, ttl_seconds=settings.ttl_seconds)
        yield Running(cart_service_pb2_grpc.CartServiceStub(channel), tokens, fake, carts, bus)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await grpc_server.stop(0)
    await bus.delete_queue(settings.queue)
    await bus.close()
    await app.close()


async def test_racing_adds_over_grpc_on_redis_sum_every_unit(running):
    product_id = running.catalog.put(stock=500)
    metadata = running.tokens.metadata(str(uuid.uuid4()))
    request = cart_service_pb2.AddCartItemRequest(product_id=product_id, quantity=2)
    await asyncio.gather(*(running.stub.AddCartItem(request, metadata=metadata) for _ in range(20)))
    cart = await running.stub.GetCart(cart_service_pb2.GetCartRequest(), metadata=metadata)
    [line] = cart.items
    assert (line.quantity, line.title, line.image_url) == (40, "Teapot", "/a.png")
    assert (cart.subtotal.units, cart.subtotal.nanos) == (170, 0)
    assert line.availability == cart_pb2.CartItem.AVAILABILITY_IN_STOCK


async def test_a_rejected_add_writes_no_key_in_redis(running, client):
    user_id = str(uuid.uuid4())
    metadata = running.tokens.metadata(user_id)
    archived = running.catalog.put(state=product_pb2.Product.STATE_ARCHIVED)
    for product_id, quantity, code in [
        (archived, 1, grpc.StatusCode.FAILED_PRECONDITION),
        (str(uuid.uuid4()), 1, grpc.StatusCode.NOT_FOUND),
        (running.catalog.put(), 0, grpc.StatusCode.INVALID_ARGUMENT),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await running.stub.AddCartItem(
                cart_service_pb2.AddCartItemRequest(product_id=product_id, quantity=quantity),
                metadata=metadata,
            )
        assert raised.value.code() == code
    assert not await client.exists(running.carts.cart_key(user_id))


async def test_order_placed_from_the_cart_empties_it_and_cart_checked_out_reaches_rabbitmq(
    running, events_queue
):
    user_id = str(uuid.uuid4())
    metadata = running.tokens.metadata(user_id)
    product_id = running.catalog.put(stock=10)
    await running.stub.AddCartItem(
        cart_service_pb2.AddCartItemRequest(product_id=product_id, quantity=3), metadata=metadata
    )
    placed = order_events_pb2.OrderPlaced(
        order_id=str(uuid.uuid4()),
        user_id=user_id,
        from_cart=True,
        line_items=[order_pb2.LineItem(product_id=product_id, quantity=3)],
    )
    event = Event.of(placed, "order")
    await running.bus.publish([event, event])  # the second is a redelivery
    message, checked_out = await _next_checked_out(events_queue, placed.order_id, source=SOURCE)
    assert checked_out.user_id == user_id
    assert [(i.product_id, i.quantity) for i in checked_out.items] == [(product_id, 3)]
    assert (checked_out.subtotal.units, checked_out.subtotal.nanos) == (12, 750_000_000)
    assert message.type == "emporium.cart.v1.CartCheckedOut"
    assert uuid.UUID(message.message_id)
    cart = await running.stub.GetCart(cart_service_pb2.GetCartRequest(), metadata=metadata)
    assert list(cart.items) == []
    await asyncio.sleep(1.0)
    again = []  # published once: no second CartCheckedOut for this order
    while (late := await events_queue.get(no_ack=True, fail=False)) is not None:
        late_order = cart_events_pb2.CartCheckedOut.FromString(late.body).order_id
        if late.app_id == SOURCE and late_order == placed.order_id:
            again.append((late.message_id, late.headers, late.redelivered))
    assert again == [], (message.message_id, again)
    assert await running.carts.outbox.pending(10) == []


async def test_product_updated_on_the_bus_reprices_stored_carts_once(running):
    user_id = str(uuid.uuid4())
    metadata = running.tokens.metadata(user_id)
    product_id = running.catalog.put(stock=10, units=4)
    await running.stub.AddCartItem(
        cart_service_pb2.AddCartItemRequest(product_id=product_id, quantity=1), metadata=metadata
    )
    changed = product_pb2.Product()
    changed.CopyFrom(running.catalog.products[product_id])
    changed.price.units = 5
    event = Event.of(catalog_events_pb2.ProductUpdated(product=changed), "catalog")
    await running.bus.publish([event, event])
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        [line] = (await running.carts.get(user_id)).lines
        if line.current_unit_price == Money("USD", 5_250_000_000):
            break
        assert asyncio.get_running_loop().time() < deadline, "the cart was never re-priced"
        await asyncio.sleep(0.05)
    assert line.unit_price == Money("USD", 4_250_000_000)
    assert line.price_changed


async def test_a_change_without_a_cart_stores_only_its_events(make_repo):
    repo, user_id = make_repo(), str(uuid.uuid4())
    event = cart_events_pb2.CartCheckedOut(user_id=user_id, order_id="o9")
    assert await repo.update(user_id, lambda current: Change(None, (event,)), once="x") == Cart(
        user_id=user_id
    )
    assert await repo.get(user_id) is None
    [stored] = await repo.outbox.pending(10)
    assert cart_events_pb2.CartCheckedOut.FromString(stored.data).order_id == "o9"
