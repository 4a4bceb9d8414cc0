"""The catalog on the real servers: its Cassandra and Redis adapters, and the whole service.

The store contract runs twice, over the in-memory fakes and the real adapters, so the fakes the
unit tests use behave like production. The service tests start the catalog as
`bootstrap.build` wires it (Cassandra, Redis, the outbox relay, RabbitMQ, the sweeper) in a
keyspace and cache prefix of their own. A server that does not answer fails these tests.
"""

from __future__ import annotations

import asyncio
import contextlib
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
import redis.asyncio as aioredis
from cryptography.hazmat.primitives.asymmetric import ec
from emporium.catalog.v1 import (
    catalog_events_pb2,
    catalog_service_pb2,
    catalog_service_pb2_grpc,
    product_pb2,
    reservation_pb2,
    stock_pb2,
)
from google.type import money_pb2

from kit import auth, cassandra, errors, server
from kit.bus import Bus
from kit.config import CassandraSettings
from services.catalog import bootstrap
from services.catalog.adapters import cassandra as stores
from services.catalog.adapters import memory
from services.catalog.adapters.redis import RedisProductCache
from services.catalog.config import Settings
from services.catalog.domain import (
    Category,
    ImageThumbnail,
    Line,
    Money,
    Product,
    ProductImage,
    ProductState,
    Reservation,
    ReservationState,
    Review,
    StockLevel,
)
from services.user.adapters.keys import SigningKeys
from tests.integration.conftest import servers

pytestmark = pytest.mark.asyncio(loop_scope="module")

SUFFIX = "_t" + secrets.token_hex(4)
PREFIX = f"test{SUFFIX}:"
S = catalog_service_pb2


def _require(name: str) -> str:
    """The address of one of the local servers; a server that does not answer fails the test
    (never skips it: these tests prove nothing without it)."""
    server_ = servers()[name]
    why = server_.check()
    if why is not None:
        pytest.fail(f"{server_.name} is not reachable: {why}", pytrace=False)
    return server_.address


@pytest.fixture(scope="module")
def cassandra_settings() -> CassandraSettings:
    _require("cassandra")
    return CassandraSettings.from_env("tests")


@pytest.fixture(scope="module")
def redis_url() -> str:
    return _require("redis")


@pytest.fixture(scope="module")
def rabbitmq_url() -> str:
    return _require("rabbitmq")


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def session(cassandra_settings) -> AsyncIterator[cassandra.CassandraSession]:
    settings = CassandraSettings.from_env(
        "emporium_catalog", {**os.environ, "EMPORIUM_KEYSPACE_SUFFIX": SUFFIX}
    )
    session = await cassandra.connect(settings, schema=bootstrap.SCHEMA, wait_seconds=45)
    yield session
    await session.drop_keyspace()
    await session.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def redis_client(redis_url) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    keys = [k async for k in client.scan_iter(f"{PREFIX}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def real(session, redis_client) -> dict[str, Any]:
    built = await stores.build(session)
    return {**built.ports, "cache": RedisProductCache(redis_client, prefix=PREFIX + "c:")}


@pytest.fixture(params=["memory", "real"])
def repos(request, real) -> dict[str, Any]:
    if request.param == "memory":
        products = memory.InMemoryProductRepository()
        return {
            "products": products,
            "categories": memory.InMemoryCategoryRepository(),
            "stock": memory.InMemoryStockRepository(),
            "reservations": memory.InMemoryReservationRepository(),
            "reviews": memory.InMemoryReviewRepository(),
            "images": memory.InMemoryImageRepository(products),
            "cache": memory.InMemoryProductCache(),
        }
    return real


def _product(**fields: Any) -> Product:
    now = _now()
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "sku": f"SKU-{secrets.token_hex(5)}",
        "title": "Lamp",
        "price": Money("USD", 12, 500_000_000),
        "state": ProductState.ACTIVE,
        "create_time": now,
        "update_time": now,
        "request_id": str(uuid.uuid4()),
        "version": secrets.token_hex(8),
        "seller_id": str(uuid.uuid4()),
        **fields,
    }
    return Product(**values)


# --- the store contract, over both adapters -------------------------------------------------


async def test_a_created_product_reads_back_and_a_retry_returns_it(repos):
    product = _product(attributes={"color": "red"}, category_ids=(str(uuid.uuid4()),))
    assert await repos["products"].create(product, []) == product
    assert await repos["products"].get(product.id) == product
    retry = replace(product, id=str(uuid.uuid4()))
    assert (await repos["products"].create(retry, [])).id == product.id
    assert await repos["products"].get_many([product.id, str(uuid.uuid4())]) == {
        product.id: product
    }


async def test_of_racing_creates_of_one_sku_exactly_one_wins(repos):
    sku = f"RACE-{secrets.token_hex(4)}"
    results = await asyncio.gather(
        *(repos["products"].create(_product(sku=sku), []) for _ in range(10)),
        return_exceptions=True,
    )
    assert len([r for r in results if isinstance(r, Product)]) == 1
    assert all(isinstance(r, errors.AlreadyExists) for r in results if not isinstance(r, Product))


async def test_changing_a_sku_frees_the_old_one(repos):
    product = _product()
    await repos["products"].create(product, [])
    await repos["products"].save(replace(product, sku=product.sku + "-B"), [], old_sku=product.sku)
    await repos["products"].create(_product(sku=product.sku), [])
    with pytest.raises(errors.AlreadyExists):
        await repos["products"].create(_product(sku=product.sku + "-B"), [])


async def test_search_filters_by_state_category_price_and_seller(repos):
    category, seller = str(uuid.uuid4()), str(uuid.uuid4())
    cheap = _product(category_ids=(category,), price=Money("USD", 5))
    dear = _product(category_ids=(category,), price=Money("USD", 50), seller_id=seller)
    draft = _product(category_ids=(category,), state=ProductState.DRAFT)
    for product in (cheap, dear, draft):
        await repos["products"].create(product, [])
    found = await repos["products"].search(state=ProductState.ACTIVE, category_id=category)
    assert {p.id for p in found} == {cheap.id, dear.id}
    found = await repos["products"].search(
        state=None, category_id=category, min_price_key=Money("USD", 10).key
    )
    assert {p.id for p in found} == {dear.id, draft.id}
    found = await repos["products"].search(state=None, seller_id=seller)
    assert [p.id for p in found] == [dear.id]
    assert await repos["products"].in_category(category)
    assert not await repos["products"].in_category(str(uuid.uuid4()))


async def test_search_finds_title_prefixes_and_whole_description_words(repos):
    tag = secrets.token_hex(4)
    lamp = _product(title=f"Reading lamp x{tag}", description="Warm light for late nights")
    await repos["products"].create(lamp, [])
    for words, found in [
        ([f"x{tag}", "read"], True),
        ([f"x{tag}", "nights"], True),
        ([f"x{tag}", "nigh"], False),  # description words are indexed whole
        ([f"x{tag}", "sofa"], False),
    ]:
        hits = await repos["products"].search(state=ProductState.ACTIVE, words=words)
        assert ([p.id for p in hits] == [lamp.id]) is found, words


async def test_a_category_slug_is_unique_and_freed_on_delete(repos):
    now = _now()
    slug = f"cat-{secrets.token_hex(4)}"
    category = Category(str(uuid.uuid4()), "Lamps", slug, now, now)
    await repos["categories"].create(category)
    assert await repos["categories"].get(category.id) == category
    with pytest.raises(errors.AlreadyExists):
        await repos["categories"].create(replace(category, id=str(uuid.uuid4())))
    await repos["categories"].delete(category)
    await repos["categories"].create(replace(category, id=str(uuid.uuid4())))


async def test_of_racing_creates_of_one_slug_exactly_one_wins(repos):
    now = _now()
    slug = f"race-{secrets.token_hex(4)}"
    results = await asyncio.gather(
        *(
            repos["categories"].create(Category(str(uuid.uuid4()), "Race", slug, now, now))
            for _ in range(10)
        ),
        return_exceptions=True,
    )
    assert len([r for r in results if isinstance(r, Category)]) == 1


async def test_a_cached_listing_is_unreachable_after_an_invalidation(repos):
    cache = repos["cache"]
    product = _product(request_id="")
    generation = await cache.list_generation()
    await cache.put_page(generation, "k", [product], "next")
    assert await cache.get_page(await cache.list_generation(), "k") == ([product], "next")
    await cache.invalidate([str(uuid.uuid4())])
    assert await cache.get_page(await cache.list_generation(), "k") is None


async def test_stock_compare_and_set_applies_once_per_version(repos):
    product_id = str(uuid.uuid4())
    assert await repos["stock"].get(product_id) == StockLevel(product_id)
    first = StockLevel(product_id, on_hand=5, update_time=_now())
    results = await asyncio.gather(
        repos["stock"].compare_and_set(first, 0),
        repos["stock"].compare_and_set(replace(first, on_hand=9), 0),
    )
    assert sorted(results) == [False, True]
    level = await repos["stock"].get(product_id)
    assert level.version == 1
    held = replace(level, reserved=2, holds={"order-a": 2})
    assert await repos["stock"].compare_and_set(held, 1)
    assert not await repos["stock"].compare_and_set(held, 1)
    stored = await repos["stock"].get(product_id)
    assert (stored.reserved, stored.holds, stored.version) == (2, {"order-a": 2}, 2)


async def test_a_reservation_is_claimed_once_and_changes_state_by_compare_and_set(repos):
    now = _now()
    order = f"order-{secrets.token_hex(4)}"
    lines = (Line(str(uuid.uuid4()), 2), Line(str(uuid.uuid4()), 1))
    reservation = Reservation(order, ReservationState.PENDING, lines, now, now, now)
    assert await repos["reservations"].claim(reservation) is None
    assert (await repos["reservations"].claim(reservation)).lines == reservation.lines
    active = replace(reservation, state=ReservationState.ACTIVE)
    assert await repos["reservations"].transition(active, ReservationState.PENDING)
    assert not await repos["reservations"].transition(active, ReservationState.PENDING)
    assert order in {r.order_id for r in await repos["reservations"].unannounced()}
    await repos["reservations"].announce(active, [])
    stored = await repos["reservations"].get(order)
    assert (stored.state, stored.announced, stored.lines) == (
        ReservationState.ACTIVE,
        True,
        reservation.lines,
    )
    assert order in {
        r.order_id for r in await repos["reservations"].in_states([ReservationState.ACTIVE])
    }
    assert not await repos["reservations"].delete_pending(order)


async def test_a_user_reviews_a_product_once(repos):
    now = _now()
    product_id, user = str(uuid.uuid4()), str(uuid.uuid4())
    review = Review(str(uuid.uuid4()), product_id, user, 4, now, now, title="Good")
    await repos["reviews"].create(review, [])
    with pytest.raises(errors.AlreadyExists):
        await repos["reviews"].create(replace(review, id=str(uuid.uuid4())), [])
    assert await repos["reviews"].of_product(product_id) == [review]
    await repos["reviews"].delete(review)
    await repos["reviews"].create(replace(review, id=str(uuid.uuid4())), [])


def _image(product_id: str, **fields: Any) -> ProductImage:
    thumbs = (ImageThumbnail(128, 128, 96, "http://s/t128"), ImageThumbnail(256, 256, 192, "u"))
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()), "product_id": product_id, "content_type": "image/png",
        "size_bytes": 2048, "width": 4, "height": 4, "create_time": _now(),
        "url": "http://s/original", "thumbnails": thumbs, **fields,
    }  # fmt: skip
    return ProductImage(**values)


async def test_an_image_is_recorded_once_by_its_file_id_and_read_with_its_product(repos):
    product = await repos["products"].create(_product(), [])
    image = _image(product.id)
    assert await repos["images"].add(image) == image
    # A redelivered FileUploaded: the first entry (and its position) stays.
    assert await repos["images"].add(replace(image, position=5)) == image
    moved = replace(image, position=3, alt_text="Side")
    await repos["images"].save([moved])
    assert (await repos["products"].get(product.id)).images == (moved,)
    # A write of the product's fields leaves its gallery as it is.
    await repos["products"].save(replace(product, title="Desk lamp"), [])
    found = await repos["products"].get_many([product.id])
    assert found[product.id].title == "Desk lamp"
    assert found[product.id].images == (moved,)
    await repos["images"].delete(moved)
    assert (await repos["products"].get(product.id)).images == ()


async def test_images_of_one_product_added_at_once_are_all_kept_in_position_order(repos):
    product = await repos["products"].create(_product(), [])
    images = [_image(product.id, position=n, alt_text=f"view {n}") for n in (2, 0, 1)]
    await asyncio.gather(*(repos["images"].add(i) for i in images))
    stored = (await repos["products"].get(product.id)).images
    assert [i.alt_text for i in stored] == ["view 0", "view 1", "view 2"]


async def test_an_image_of_a_product_that_does_not_exist_is_not_stored(repos):
    missing = str(uuid.uuid4())
    with pytest.raises(errors.NotFound):
        await repos["images"].add(_image(missing))
    assert await repos["products"].get(missing) is None


async def test_images_left_in_the_old_table_move_onto_their_products_at_start(session, real):
    """An upgrade from the keyspace's product_images table (one row per image)."""
    await session.execute(
        "CREATE TABLE IF NOT EXISTS product_images (product_id uuid, id uuid, content_type text, "
        "size_bytes bigint, width int, height int, alt_text text, position int, "
        "create_time timestamp, request_id text, url text, thumbnails text, "
        "PRIMARY KEY ((product_id), id))"
    )
    product = await real["products"].create(_product(), [])
    now = _now()
    old = [(uuid.uuid4(), n, f"http://s/{n}") for n in (1, 0)]
    for image_id, position, url in old:
        await session.execute(
            "INSERT INTO product_images (product_id, id, content_type, size_bytes, width, height, "
            "alt_text, position, create_time, request_id, url, thumbnails) "
            "VALUES (%s, %s, 'image/jpeg', 10, 2, 1, 'old', %s, %s, '', %s, "
            '\'[{"size": 128, "width": 128, "height": 64, "url": "http://s/t"}]\')',
            (uuid.UUID(product.id), image_id, position, now, url),
        )
    orphan = uuid.uuid4()  # an image whose product is gone
    await session.execute(
        "INSERT INTO product_images (product_id, id, content_type, position, create_time) "
        "VALUES (%s, %s, 'image/png', 0, %s)",
        (orphan, uuid.uuid4(), now),
    )
    assert await real["images"].move_legacy() == 3
    images = (await real["products"].get(product.id)).images
    assert [(i.url, i.position, i.alt_text, i.create_time) for i in images] == [
        ("http://s/0", 0, "old", now),
        ("http://s/1", 1, "old", now),
    ]
    assert images[0].thumbnails == (ImageThumbnail(128, 128, 64, "http://s/t"),)
    assert await real["products"].get(str(orphan)) is None
    assert await session.execute("SELECT id FROM product_images") == []
    assert await real["images"].move_legacy() == 0


async def test_the_cache_never_keeps_a_value_read_before_an_invalidation(repos):
    cache = repos["cache"]
    # The cache keeps what reads return: the idempotency key is not part of it.
    product = _product(request_id="")
    seen = await cache.generations([product.id])
    # A write lands between this reader's database read and its fill:
    await cache.invalidate([product.id])
    await cache.fill([product], seen)
    assert await cache.get_many([product.id]) == {}
    fresh = await cache.generations([product.id])
    await cache.fill([product], fresh)
    assert await cache.get_many([product.id]) == {product.id: product}
    await cache.invalidate([product.id])
    assert await cache.get_many([product.id]) == {}


# --- the whole service on Cassandra, Redis and RabbitMQ -------------------------------------


class Running:
    def __init__(self, stub, keys: SigningKeys, app) -> None:
        self.stub = stub
        self.keys = keys
        self.app = app
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
                    title="Desk",
                    price=money_pb2.Money(currency_code="USD", units=99),
                ),
                request_id=str(uuid.uuid4()),
            ),
            metadata=self.admin,
        )
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

    async def reserve(self, order_id: str, product_id: str, quantity: int = 1):
        return await self.stub.ReserveStock(
            S.ReserveStockRequest(
                order_id=order_id,
                lines=[reservation_pb2.ReservationLine(product_id=product_id, quantity=quantity)],
            ),
            metadata=self.admin,
        )

    async def stock(self, product_id: str):
        return await self.stub.GetStock(
            S.GetStockRequest(product_id=product_id), metadata=self.admin
        )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def running(session, redis_client, rabbitmq_url) -> AsyncIterator[Running]:
    env = {
        **os.environ,
        "EMPORIUM_CATALOG_GRPC_PORT": "0",
        "EMPORIUM_KEYSPACE_SUFFIX": SUFFIX,
        "EMPORIUM_CATALOG_CACHE_PREFIX": PREFIX,
        # Short enough to watch reservations expire within a test.
        "EMPORIUM_CATALOG_RESERVATION_TTL_SECONDS": "2",
        "EMPORIUM_CATALOG_SWEEP_SECONDS": "0.5",
    }
    settings = Settings.from_env(env)
    keys = SigningKeys(ec.generate_private_key(ec.SECP256R1()))

    async def jwks() -> bytes:
        return keys.jwks_json()

    app = await bootstrap.build(
        settings, verifier=auth.JwtVerifier(jwks, issuer="emporium-user", audience="emporium")
    )
    grpc_server, port, _ = await server.start(settings.server, app)
    tasks = [asyncio.create_task(work()) for work in app.background]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield Running(catalog_service_pb2_grpc.CatalogServiceStub(channel), keys, app)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await grpc_server.stop(0)
    await app.close()
    # The service declared a queue of its own (named after the keyspace suffix): remove it, so
    # it does not collect events after the run.
    bus = await Bus.connect(settings.rabbit, source="tests")
    await bus.delete_queue(settings.queue)
    await bus.close()


async def test_fifty_concurrent_reservations_on_ten_units_reserve_exactly_ten(running):
    product = await running.stocked(10)
    orders = [f"order-{secrets.token_hex(4)}" for _ in range(50)]

    async def reserve(order: str):
        # ABORTED means "lost a race, retry", as the contract tells clients to.
        while True:
            try:
                return await running.reserve(order, product.id)
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.ABORTED:
                    raise

    samples = []

    async def watch() -> None:
        # Read the row itself while the race runs: reserved never exceeds on hand.
        while True:
            level = await running.app.handlers.stock.get(product.id)  # type: ignore[attr-defined]
            samples.append((level.on_hand, level.reserved))
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    results = await asyncio.gather(*(reserve(order) for order in orders), return_exceptions=True)
    watcher.cancel()
    assert samples
    assert all(0 <= reserved <= on_hand for on_hand, reserved in samples)
    won = [r for r in results if isinstance(r, reservation_pb2.Reservation)]
    lost = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(won) == 10, [r.details() for r in lost][:3]
    assert {r.code() for r in lost} == {grpc.StatusCode.FAILED_PRECONDITION}
    stock = await running.stock(product.id)
    assert (stock.on_hand_quantity, stock.reserved_quantity, stock.available_quantity) == (
        10,
        10,
        0,
    )
    # Repeating a won reservation changes nothing and returns the same reservation.
    again = await running.reserve(won[0].order_id, product.id)
    assert again == won[0]
    assert (await running.stock(product.id)).reserved_quantity == 10


async def test_racing_two_line_orders_reserve_all_lines_or_none_and_leak_nothing(running):
    a, b = await running.stocked(10), await running.stocked(5)

    async def order(n: int):
        return await running.stub.ReserveStock(
            S.ReserveStockRequest(
                order_id=f"pair-{SUFFIX}-{n}",
                lines=[
                    reservation_pb2.ReservationLine(product_id=a.id, quantity=1),
                    reservation_pb2.ReservationLine(product_id=b.id, quantity=1),
                ],
            ),
            metadata=running.admin,
        )

    results = await asyncio.gather(*(order(n) for n in range(20)), return_exceptions=True)
    won = [r for r in results if isinstance(r, reservation_pb2.Reservation)]
    assert len(won) == 5
    stock_a, stock_b = await running.stock(a.id), await running.stock(b.id)
    # Orders that lost on B gave back what they had taken of A.
    assert (stock_a.reserved_quantity, stock_b.reserved_quantity) == (5, 5)


async def test_racing_retries_of_one_order_hold_its_units_once(running):
    product = await running.stocked(6)
    order = f"dup-{secrets.token_hex(4)}"

    async def reserve():
        while True:
            try:
                return await running.reserve(order, product.id, 2)
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.ABORTED:
                    raise

    results = await asyncio.gather(*(reserve() for _ in range(10)))
    assert {r.order_id for r in results} == {order}
    assert (await running.stock(product.id)).reserved_quantity == 2


async def test_an_expired_reservation_gives_its_stock_back_exactly_once(running):
    product = await running.stocked(3)
    order = f"order-{secrets.token_hex(4)}"
    await running.reserve(order, product.id, 3)
    assert (await running.stock(product.id)).available_quantity == 0
    deadline = time.monotonic() + 20
    while True:
        reservation = await running.stub.GetReservation(
            S.GetReservationRequest(order_id=order), metadata=running.admin
        )
        if reservation.state == reservation_pb2.Reservation.STATE_RELEASED:
            break
        assert time.monotonic() < deadline, "the sweeper never released the reservation"
        await asyncio.sleep(0.3)
    assert reservation.release_reason == reservation_pb2.Reservation.RELEASE_REASON_EXPIRED
    # Later passes of the sweeper and a manual release give nothing back twice.
    await asyncio.sleep(1.5)
    await running.stub.ReleaseReservation(
        S.ReleaseReservationRequest(order_id=order), metadata=running.admin
    )
    stock = await running.stock(product.id)
    assert (stock.on_hand_quantity, stock.reserved_quantity, stock.available_quantity) == (
        3,
        0,
        3,
    )


async def test_a_released_reservation_gives_its_stock_back_exactly_once(running):
    product = await running.stocked(4)
    order = f"order-{secrets.token_hex(4)}"
    await running.reserve(order, product.id, 4)
    release = S.ReleaseReservationRequest(order_id=order)
    results = await asyncio.gather(
        *(running.stub.ReleaseReservation(release, metadata=running.admin) for _ in range(5))
    )
    assert {r.state for r in results} == {reservation_pb2.Reservation.STATE_RELEASED}
    stock = await running.stock(product.id)
    assert (stock.reserved_quantity, stock.available_quantity) == (0, 4)


async def test_the_sweeper_finishes_a_commit_whose_writer_died_midway_on_cassandra(running):
    product = await running.stocked(5)
    order = f"crash-{secrets.token_hex(4)}"
    await running.reserve(order, product.id, 2)
    handlers = running.app.handlers  # type: ignore[attr-defined]
    current = await handlers.reservations.get(order)
    # The commit was decided by its compare-and-set; the process died before the stock moved.
    decided = replace(current, state=ReservationState.COMMITTED, update_time=_now())
    assert await handlers.reservations.transition(decided, ReservationState.ACTIVE)
    handlers.takeover_after = timedelta(0)
    try:
        deadline = time.monotonic() + 15
        while (await handlers.reservations.get(order)).announced is False:
            assert time.monotonic() < deadline, "the sweeper never finished the commit"
            await asyncio.sleep(0.2)
    finally:
        handlers.takeover_after = timedelta(seconds=10)
    stock = await running.stock(product.id)
    assert (stock.on_hand_quantity, stock.reserved_quantity, stock.available_quantity) == (
        3,
        0,
        3,
    )


async def test_an_update_invalidates_the_cache_and_a_repeated_read_is_a_redis_hit(
    running, redis_client
):
    product = await running.stocked(1)
    get = S.GetProductRequest(id=product.id)
    await running.stub.GetProduct(get)  # a miss fills the cache
    cache = running.app.handlers.cache  # counted in the process, not in Redis
    hits = cache.hits
    assert (await running.stub.GetProduct(get)).title == "Desk"
    assert cache.hits == hits + 1
    assert await redis_client.exists(f"{PREFIX}product:{product.id}")
    await running.stub.UpdateProduct(
        S.UpdateProductRequest(id=product.id, product=product_pb2.Product(title="Chair")),
        metadata=running.admin,
    )
    assert not await redis_client.exists(f"{PREFIX}product:{product.id}")
    assert (await running.stub.GetProduct(get)).title == "Chair"
    assert (await running.stub.GetProduct(get)).title == "Chair"


async def test_listing_through_sai_pages_every_product_exactly_once(running):
    created = set()
    for _ in range(9):
        created.add((await running.stocked(1)).id)
    seen: list[str] = []
    token = ""
    while True:
        page = await running.stub.ListProducts(
            S.ListProductsRequest(
                page_size=4,
                page_token=token,
                sort_order=S.ListProductsRequest.SORT_ORDER_PRICE_ASCENDING,
            )
        )
        seen += [p.id for p in page.products]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen))
    assert created <= set(seen)


async def test_catalog_events_reach_a_consumer_through_the_outbox(running, rabbitmq_url):
    connection = await aio_pika.connect_robust(rabbitmq_url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            "emporium.events",
            aio_pika.ExchangeType.TOPIC,
            durable=True,
            arguments={"alternate-exchange": "emporium.unrouted"},  # as kit.bus declares it
        )
        queue = await channel.declare_queue(f"test.catalog{SUFFIX}", exclusive=True)
        for name in ("ProductCreated", "StockReserved", "StockLevelChanged"):
            await queue.bind(exchange, f"emporium.catalog.v1.{name}")
        product = await running.stocked(2)
        await running.reserve(f"evt-{SUFFIX}", product.id, 2)
        wanted = {"ProductCreated", "StockReserved", "StockLevelChanged"}
        seen: set[str] = set()
        deadline = time.monotonic() + 15
        while not wanted <= seen:
            message = await queue.get(no_ack=True, fail=False)
            if message is None:
                assert time.monotonic() < deadline, f"only {seen} arrived"
                await asyncio.sleep(0.1)
                continue
            body = message.body
            kind = message.type.rsplit(".", 1)[-1]
            if kind == "ProductCreated":
                if catalog_events_pb2.ProductCreated.FromString(body).product.id == product.id:
                    seen.add(kind)
            elif kind == "StockReserved":
                if catalog_events_pb2.StockReserved.FromString(body).order_id == f"evt-{SUFFIX}":
                    seen.add(kind)
            elif catalog_events_pb2.StockLevelChanged.FromString(body).stock.product_id == (
                product.id
            ):
                seen.add(kind)
        assert message.app_id == "catalog"
    finally:
        await connection.close()


async def test_stock_events_reach_the_outbox_relay(running):
    # The relay runs in the background: the outbox drains once RabbitMQ confirmed the events.
    deadline = time.monotonic() + 15
    outbox = running.app.handlers.stock.outbox  # type: ignore[attr-defined]
    while await outbox.pending(10):
        assert time.monotonic() < deadline, "the outbox never drained"
        await asyncio.sleep(0.3)


@contextlib.asynccontextmanager
async def _processes(redis_client, count: int, prefix: str):
    """`count` product caches as separate catalog processes keep them: each with its copies in
    memory and its own invalidation listener on the real Redis."""
    caches = [RedisProductCache(redis_client, prefix=prefix) for _ in range(count)]
    tasks = [asyncio.create_task(c.invalidations.run()) for c in caches]
    try:
        deadline = time.monotonic() + 10
        while not all(c.invalidations.listening for c in caches):
            assert time.monotonic() < deadline, "the invalidation listeners never subscribed"
            await asyncio.sleep(0.05)
        yield caches
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _stored(cache: RedisProductCache, product: Product) -> None:
    await cache.fill([product], await cache.generations([product.id]))


async def test_a_process_serves_its_copy_from_memory_until_another_process_changes_it(
    redis_client,
):
    async with _processes(redis_client, 2, PREFIX + "near1:") as (reader, writer):
        product = _product(request_id="")
        await _stored(writer, product)
        assert await reader.get_many([product.id]) == {product.id: product}  # from Redis
        assert reader.local_hits == 0
        for _ in range(3):
            assert await reader.get_many([product.id]) == {product.id: product}
        assert reader.local_hits == 3
        # The writer's update: Cassandra (not here), then the invalidation; when it returns,
        # the reader's very next read no longer sees the old product.
        await writer.invalidate([product.id])
        assert await reader.get_many([product.id]) == {}
        changed = replace(product, title="Chair")
        await _stored(writer, changed)
        assert await reader.get_many([product.id]) == {product.id: changed}


async def test_no_read_after_a_returned_write_ever_sees_the_older_product(redis_client):
    """Writers and readers in other processes, interleaved as fast as they go: every read that
    starts after a write returned sees that write or a later one (or nothing: a miss)."""
    async with _processes(redis_client, 3, PREFIX + "near2:") as (writer, *readers):
        product = _product(request_id="")
        await _stored(writer, product)
        for reader in readers:
            await reader.get_many([product.id])  # each keeps a copy
        stale = 0
        for version in range(1, 201):
            changed = replace(product, version=f"v{version}")
            await writer.invalidate([product.id])
            await _stored(writer, changed)
            for reader in readers * 3:  # the first read keeps a copy, the next serve it
                seen = (await reader.get_many([product.id])).get(product.id)
                if seen is not None and seen.version != changed.version:
                    stale += 1
        assert stale == 0
        assert sum(r.local_hits for r in readers) > 0


async def test_a_copy_read_while_a_write_lands_is_never_kept(redis_client):
    async with _processes(redis_client, 2, PREFIX + "near3:") as (reader, writer):
        product = _product(request_id="")
        await _stored(writer, product)
        mget = redis_client.mget

        async def racing_mget(keys):
            values = await mget(keys)  # the old product, read just before the write
            await writer.invalidate([product.id])
            deadline = time.monotonic() + 10
            while reader._epoch == epoch:  # its message reaches the reader
                assert time.monotonic() < deadline, "no invalidation message arrived"
                await asyncio.sleep(0.01)
            return values

        epoch = reader._epoch
        redis_client.mget = racing_mget
        try:
            assert await reader.get_many([product.id]) == {product.id: product}
        finally:
            del redis_client.mget
        assert await reader.get_many([product.id]) == {}  # not served from a kept copy
        assert reader.local_hits == 0


async def test_a_lost_listener_stops_the_copies_until_it_is_back(redis_client):
    async with _processes(redis_client, 2, PREFIX + "near4:") as (reader, writer):
        reader.invalidations.retry_seconds = 0.2
        product = _product(request_id="")
        await _stored(writer, product)
        await reader.get_many([product.id])
        listener = reader.invalidations.client_id
        await redis_client.client_kill_filter(_id=listener)
        deadline = time.monotonic() + 10
        while reader.invalidations.client_id in (listener, None):
            assert time.monotonic() < deadline, "the listener did not come back"
            await asyncio.sleep(0.05)
        # Whatever it kept before is gone: the next read asks Redis.
        hits = reader.local_hits
        await writer.invalidate([product.id])
        assert await reader.get_many([product.id]) == {}
        assert reader.local_hits == hits
