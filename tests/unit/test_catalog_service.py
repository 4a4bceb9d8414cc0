"""The catalog service over real gRPC, with the in-memory adapters: what a client sees."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from emporium.catalog.v1 import (
    catalog_events_pb2,
    catalog_service_pb2,
    catalog_service_pb2_grpc,
    category_pb2,
    product_pb2,
    reservation_pb2,
    review_pb2,
    stock_pb2,
)
from emporium.file.v1 import file_events_pb2, file_pb2
from google.api import httpbody_pb2
from google.protobuf import duration_pb2, field_mask_pb2
from google.rpc import error_details_pb2
from google.type import money_pb2
from grpc_status import rpc_status

from kit import auth, events, server
from kit.config import ConfigError
from kit.events import Event
from services.catalog import bootstrap, consumers
from services.catalog.adapters import memory
from services.catalog.config import Settings
from services.catalog.domain import Line, ReleaseReason, Reservation, ReservationState
from services.user.adapters.keys import SigningKeys

S = catalog_service_pb2
P = product_pb2.Product
R = reservation_pb2.Reservation


class Client:
    def __init__(self, channel, keys: SigningKeys, fakes: dict[str, Any], handlers) -> None:
        self.stub = catalog_service_pb2_grpc.CatalogServiceStub(channel)
        self.keys = keys
        self.fakes = fakes
        self.handlers = handlers
        self.events: memory.EventLog = fakes["events"]
        self._n = 0

    def token(self, *roles: str, user_id: str | None = None) -> list[tuple[str, str]]:
        now = int(time.time())
        claims = {
            "sub": user_id or str(uuid.uuid4()),
            "iss": "emporium-user",
            "aud": "emporium",
            "iat": now,
            "exp": now + 600,
            "roles": list(roles),
        }
        return [("authorization", f"Bearer {self.keys.sign(claims)}")]

    @property
    def admin(self) -> list[tuple[str, str]]:
        return self.token("admin", "customer")

    async def product(self, **fields: Any) -> product_pb2.Product:
        self._n += 1
        price = fields.pop("price", money_pb2.Money(currency_code="USD", units=10))
        product = P(
            sku=fields.pop("sku", f"SKU-{uuid.uuid4().hex[:8]}"),
            title=fields.pop("title", f"Product {self._n}"),
            price=price,
            **fields,
        )
        return await self.stub.CreateProduct(
            S.CreateProductRequest(product=product, request_id=str(uuid.uuid4())),
            metadata=self.admin,
        )

    async def stocked(self, units: int, **fields: Any) -> product_pb2.Product:
        product = await self.product(**fields)
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

    async def reserve(self, order_id: str, *lines: tuple[str, int], **kw: Any):
        return await self.stub.ReserveStock(
            S.ReserveStockRequest(
                order_id=order_id,
                lines=[reservation_pb2.ReservationLine(product_id=p, quantity=q) for p, q in lines],
                **kw,
            ),
            metadata=self.admin,
        )

    async def stock(self, product_id: str) -> stock_pb2.Stock:
        return await self.stub.GetStock(
            S.GetStockRequest(product_id=product_id), metadata=self.admin
        )


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    settings = Settings.from_env({"EMPORIUM_ENV": "development", "EMPORIUM_CATALOG_GRPC_PORT": "0"})
    keys = SigningKeys(ec.generate_private_key(ec.SECP256R1()))
    events = memory.EventLog()
    products = memory.InMemoryProductRepository(events)
    fakes: dict[str, Any] = {
        "events": events,
        "products": products,
        "categories": memory.InMemoryCategoryRepository(),
        "stock": memory.InMemoryStockRepository(events),
        "reservations": memory.InMemoryReservationRepository(events),
        "reviews": memory.InMemoryReviewRepository(events),
        "images": memory.InMemoryImageRepository(products),
        "cache": memory.InMemoryProductCache(),
        "clock": memory.FixedClock(datetime(2026, 1, 1, tzinfo=UTC)),
    }

    async def jwks() -> bytes:
        return keys.jwks_json()

    app = await bootstrap.build(
        settings,
        **{k: v for k, v in fakes.items() if k != "events"},
        sweeper=False,
        verifier=auth.JwtVerifier(jwks, issuer="emporium-user", audience="emporium"),
    )
    grpc_server, port, _ = await server.start(settings.server, app)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield Client(channel, keys, fakes, app.handlers)
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


# --- products -------------------------------------------------------------------------------


async def test_an_admin_creates_an_active_product_and_anyone_reads_it(client):
    created = await client.product(title="Red shirt", attributes={"color": "red"})
    assert created.state == P.STATE_ACTIVE
    assert created.etag
    assert created.HasField("publish_time")
    got = await client.stub.GetProduct(S.GetProductRequest(id=created.id))
    assert got == created
    assert client.events.of(catalog_events_pb2.ProductCreated)[0].product.id == created.id


async def test_a_retried_create_with_the_same_request_id_returns_the_first_product(client):
    request = S.CreateProductRequest(
        product=P(sku="RETRY-1", title="Mug", price=money_pb2.Money(currency_code="USD", units=5)),
        request_id=str(uuid.uuid4()),
    )
    first = await client.stub.CreateProduct(request, metadata=client.admin)
    second = await client.stub.CreateProduct(request, metadata=client.admin)
    assert first.id == second.id
    assert len(client.events.of(catalog_events_pb2.ProductCreated)) == 1


async def test_a_second_product_with_the_same_sku_is_already_exists(client):
    await client.product(sku="DUP-1")
    error = await _error(client.product(sku="DUP-1"))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_a_customer_cannot_create_a_product(client):
    error = await _error(
        client.stub.CreateProduct(
            S.CreateProductRequest(
                product=P(sku="X", title="X", price=money_pb2.Money(currency_code="USD")),
                request_id=str(uuid.uuid4()),
            ),
            metadata=client.token("customer"),
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    ("price", "field"),
    [
        (money_pb2.Money(currency_code="USD", units=-1), "product.price.units"),
        (money_pb2.Money(currency_code="XYZ", units=1), "product.price.currency_code"),
        (money_pb2.Money(currency_code="usd1", units=1), "product.price.currency_code"),
        (money_pb2.Money(currency_code="USD", units=1, nanos=-5), "product.price.nanos"),
        (money_pb2.Money(currency_code="EUR", units=1), "product.price.currency_code"),
    ],
)
async def test_a_bad_price_is_invalid_argument_naming_the_field(client, price, field):
    error = await _error(client.product(price=price))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in _fields(error)
    assert client.fakes["products"].products == {}


async def test_an_empty_title_and_an_unknown_category_are_both_named(client):
    error = await _error(client.product(title=" ", category_ids=[str(uuid.uuid4())]))
    assert set(_fields(error)) == {"product.title", "product.category_ids[0]"}


async def test_a_draft_is_hidden_from_shoppers_until_published(client):
    draft = await client.product(state=P.STATE_DRAFT)
    assert not draft.HasField("publish_time")
    error = await _error(client.stub.GetProduct(S.GetProductRequest(id=draft.id)))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    seen = await client.stub.GetProduct(S.GetProductRequest(id=draft.id), metadata=client.admin)
    assert seen.state == P.STATE_DRAFT
    published = await client.stub.PublishProduct(
        S.PublishProductRequest(id=draft.id), metadata=client.admin
    )
    assert published.state == P.STATE_ACTIVE
    assert (await client.stub.GetProduct(S.GetProductRequest(id=draft.id))).id == draft.id
    event = client.events.of(catalog_events_pb2.ProductPublished)[0]
    assert event.first_publication


async def test_archive_then_unarchive_makes_a_draft_and_republishing_is_not_first(client):
    product = await client.product()
    archived = await client.stub.ArchiveProduct(
        S.ArchiveProductRequest(id=product.id), metadata=client.admin
    )
    assert archived.state == P.STATE_ARCHIVED
    # Archived products stay readable by id for past orders and reviews.
    assert (await client.stub.GetProduct(S.GetProductRequest(id=product.id))).id == product.id
    error = await _error(
        client.stub.PublishProduct(S.PublishProductRequest(id=product.id), metadata=client.admin)
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    draft = await client.stub.UnarchiveProduct(
        S.UnarchiveProductRequest(id=product.id), metadata=client.admin
    )
    assert draft.state == P.STATE_DRAFT
    await client.stub.PublishProduct(S.PublishProductRequest(id=product.id), metadata=client.admin)
    assert not client.events.of(catalog_events_pb2.ProductPublished)[-1].first_publication


async def test_update_changes_masked_fields_and_a_stale_etag_is_aborted(client):
    product = await client.product(title="Old")
    updated = await client.stub.UpdateProduct(
        S.UpdateProductRequest(
            id=product.id,
            product=P(title="New", etag=product.etag),
            update_mask=field_mask_pb2.FieldMask(paths=["title"]),
        ),
        metadata=client.admin,
    )
    assert updated.title == "New"
    assert updated.etag != product.etag
    assert updated.sku == product.sku
    event = client.events.of(catalog_events_pb2.ProductUpdated)[-1]
    assert list(event.update_mask.paths) == ["title"]
    stale = await _error(
        client.stub.UpdateProduct(
            S.UpdateProductRequest(id=product.id, product=P(title="Again", etag=product.etag)),
            metadata=client.admin,
        )
    )
    assert stale.code() == grpc.StatusCode.ABORTED
    bad_mask = await _error(
        client.stub.UpdateProduct(
            S.UpdateProductRequest(
                id=product.id,
                product=P(title="x"),
                update_mask=field_mask_pb2.FieldMask(paths=["state"]),
            ),
            metadata=client.admin,
        )
    )
    assert bad_mask.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_read_after_an_update_never_sees_the_cached_old_product(client):
    product = await client.product(title="Before")
    await client.stub.GetProduct(S.GetProductRequest(id=product.id))
    await client.stub.GetProduct(S.GetProductRequest(id=product.id))
    assert client.fakes["cache"].hits >= 1
    await client.stub.UpdateProduct(
        S.UpdateProductRequest(id=product.id, product=P(title="After")), metadata=client.admin
    )
    assert (await client.stub.GetProduct(S.GetProductRequest(id=product.id))).title == "After"


async def test_a_listing_after_an_update_never_serves_the_cached_old_page(client):
    product = await client.product(title="Blue vase")
    listing = S.ListProductsRequest(query="vase")
    await client.stub.ListProducts(listing)
    hits = client.fakes["cache"].hits
    assert [p.title for p in (await client.stub.ListProducts(listing)).products] == ["Blue vase"]
    assert client.fakes["cache"].hits == hits + 1
    await client.stub.UpdateProduct(
        S.UpdateProductRequest(id=product.id, product=P(title="Green vase")),
        metadata=client.admin,
    )
    assert [p.title for p in (await client.stub.ListProducts(listing)).products] == ["Green vase"]


async def test_batch_get_returns_products_in_the_order_asked_or_not_found(client):
    a, b = await client.product(), await client.product()
    got = await client.stub.BatchGetProducts(S.BatchGetProductsRequest(ids=[b.id, a.id]))
    assert [p.id for p in got.products] == [b.id, a.id]
    error = await _error(
        client.stub.BatchGetProducts(S.BatchGetProductsRequest(ids=[a.id, str(uuid.uuid4())]))
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    empty = await _error(client.stub.BatchGetProducts(S.BatchGetProductsRequest()))
    assert empty.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_listing_filters_by_category_price_and_text_and_sorts_by_price(client):
    shoes = await client.stub.CreateCategory(
        S.CreateCategoryRequest(category=category_pb2.Category(name="Shoes", slug="shoes")),
        metadata=client.admin,
    )
    usd = lambda units: money_pb2.Money(currency_code="USD", units=units)  # noqa: E731
    cheap = await client.product(title="Running shoe", price=usd(30), category_ids=[shoes.id])
    dear = await client.product(title="Trail shoe", price=usd(90), category_ids=[shoes.id])
    await client.product(title="Running socks", price=usd(5))
    await client.product(title="Hidden shoe", state=P.STATE_DRAFT, category_ids=[shoes.id])

    listed = await client.stub.ListProducts(
        S.ListProductsRequest(
            category_id=shoes.id, sort_order=S.ListProductsRequest.SORT_ORDER_PRICE_DESCENDING
        )
    )
    assert [p.id for p in listed.products] == [dear.id, cheap.id]
    priced = await client.stub.ListProducts(
        S.ListProductsRequest(min_price=money_pb2.Money(units=10), max_price=usd(50))
    )
    assert [p.id for p in priced.products] == [cheap.id]
    found = await client.stub.ListProducts(S.ListProductsRequest(query="running"))
    assert {p.title for p in found.products} == {"Running shoe", "Running socks"}
    wrong = await _error(
        client.stub.ListProducts(
            S.ListProductsRequest(min_price=money_pb2.Money(currency_code="EUR", units=1))
        )
    )
    assert "min_price.currency_code" in _fields(wrong)
    denied = await _error(client.stub.ListProducts(S.ListProductsRequest(state=P.STATE_DRAFT)))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    drafts = await client.stub.ListProducts(
        S.ListProductsRequest(state=P.STATE_DRAFT), metadata=client.admin
    )
    assert [p.title for p in drafts.products] == ["Hidden shoe"]


async def test_paging_returns_every_product_exactly_once_despite_inserts(client):
    before = {(await client.product()).id for _ in range(7)}
    seen: list[str] = []
    token = ""
    while True:
        page = await client.stub.ListProducts(S.ListProductsRequest(page_size=3, page_token=token))
        seen += [p.id for p in page.products]
        # A product created between pages is newer than the cursor: it never shifts a page.
        await client.product()
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen))
    assert before <= set(seen)
    other = await _error(
        client.stub.ListProducts(S.ListProductsRequest(page_token="garbage", page_size=3))
    )
    assert other.code() == grpc.StatusCode.INVALID_ARGUMENT


# --- categories -----------------------------------------------------------------------------


async def test_categories_form_a_tree_and_refuse_cycles_and_deleting_a_parent(client):
    top = await client.stub.CreateCategory(
        S.CreateCategoryRequest(category=category_pb2.Category(name="Clothing", slug="clothing")),
        metadata=client.admin,
    )
    child = await client.stub.CreateCategory(
        S.CreateCategoryRequest(
            category=category_pb2.Category(name="Shoes", slug="shoes", parent_id=top.id)
        ),
        metadata=client.admin,
    )
    children = await client.stub.ListCategories(S.ListCategoriesRequest(parent_id=top.id))
    assert [c.id for c in children.categories] == [child.id]
    cycle = await _error(
        client.stub.UpdateCategory(
            S.UpdateCategoryRequest(id=top.id, category=category_pb2.Category(parent_id=child.id)),
            metadata=client.admin,
        )
    )
    assert "category.parent_id" in _fields(cycle)
    busy = await _error(
        client.stub.DeleteCategory(S.DeleteCategoryRequest(id=top.id), metadata=client.admin)
    )
    assert busy.code() == grpc.StatusCode.FAILED_PRECONDITION
    taken = await _error(
        client.stub.CreateCategory(
            S.CreateCategoryRequest(category=category_pb2.Category(name="X", slug="shoes")),
            metadata=client.admin,
        )
    )
    assert taken.code() == grpc.StatusCode.ALREADY_EXISTS
    await client.stub.DeleteCategory(S.DeleteCategoryRequest(id=child.id), metadata=client.admin)
    gone = await _error(client.stub.GetCategory(S.GetCategoryRequest(id=child.id)))
    assert gone.code() == grpc.StatusCode.NOT_FOUND


# --- stock and reservations -----------------------------------------------------------------


async def test_adjusting_stock_is_idempotent_and_kept_as_history(client):
    product = await client.product()
    request = S.AdjustStockRequest(
        product_id=product.id,
        request_id=str(uuid.uuid4()),
        delta=5,
        reason=stock_pb2.StockAdjustment.REASON_RESTOCK,
        note="first delivery",
    )
    first = await client.stub.AdjustStock(request, metadata=client.admin)
    again = await client.stub.AdjustStock(request, metadata=client.admin)
    assert first.on_hand_quantity == again.on_hand_quantity == 5
    history = await client.stub.ListStockAdjustments(
        S.ListStockAdjustmentsRequest(product_id=product.id), metadata=client.admin
    )
    assert [(a.delta, a.note) for a in history.stock_adjustments] == [(5, "first delivery")]
    assert len(client.events.of(catalog_events_pb2.StockAdjusted)) == 1
    public = await client.stub.GetStock(S.GetStockRequest(product_id=product.id))
    assert (public.available_quantity, public.on_hand_quantity) == (5, 0)
    bad = await _error(
        client.stub.AdjustStock(
            S.AdjustStockRequest(product_id=product.id, request_id=str(uuid.uuid4())),
            metadata=client.admin,
        )
    )
    assert {"delta", "reason"} <= set(_fields(bad))


async def test_a_reservation_holds_all_lines_and_repeating_it_changes_nothing(client):
    a, b = await client.stocked(5), await client.stocked(3)
    first = await client.reserve("order-1", (a.id, 2), (b.id, 3))
    assert first.state == R.STATE_ACTIVE
    again = await client.reserve("order-1", (a.id, 2), (b.id, 3))
    assert again == first
    assert (await client.stock(a.id)).reserved_quantity == 2
    assert (await client.stock(b.id)).available_quantity == 0
    assert len(client.events.of(catalog_events_pb2.StockReserved)) == 1
    other = await _error(client.reserve("order-1", (a.id, 1)))
    assert other.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_a_short_line_reserves_nothing_and_names_the_short_product(client):
    a, b = await client.stocked(5), await client.stocked(1)
    error = await _error(client.reserve("order-2", (a.id, 2), (b.id, 4)))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    failure = error_details_pb2.PreconditionFailure()
    assert any(d.Unpack(failure) for d in rpc_status.from_call(error).details)
    assert [(v.type, v.subject) for v in failure.violations] == [("INSUFFICIENT_STOCK", b.id)]
    assert (await client.stock(a.id)).reserved_quantity == 0
    # The outcome of an order never changes: the retry repeats the failure.
    again = await _error(client.reserve("order-2", (a.id, 2), (b.id, 4)))
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert len(client.events.of(catalog_events_pb2.StockReservationFailed)) == 1


async def test_concurrent_reservations_never_oversell(client):
    product = await client.stocked(10)
    results = await asyncio.gather(
        *(client.reserve(f"order-c{i}", (product.id, 1)) for i in range(30)),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, reservation_pb2.Reservation)]
    assert len(won) == 10
    stock = await client.stock(product.id)
    assert (stock.reserved_quantity, stock.available_quantity) == (10, 0)


async def test_a_best_sellers_concurrent_holds_take_turns_instead_of_racing(client):
    """One process's reservations of one product take turns at its stock row, each starting
    from the level the process last wrote: no compare-and-set lost to a sibling task, and no
    read besides each reservation's availability check."""
    product = await client.stocked(100)
    repository = client.fakes["stock"]
    calls = Counter()

    def counted(name: str, method: Any) -> Any:
        async def call(*args: Any) -> Any:
            await asyncio.sleep(0)  # a store's round trip: other tasks run meanwhile
            result = await method(*args)
            calls[name if result is not False else "lost"] += 1
            return result

        return call

    repository.get = counted("read", repository.get)
    repository.compare_and_set = counted("written", repository.compare_and_set)
    await asyncio.gather(*(client.reserve(f"order-h{i}", (product.id, 1)) for i in range(20)))
    assert calls == {"read": 20, "written": 20}
    stock = await client.stock(product.id)
    assert (stock.on_hand_quantity, stock.reserved_quantity) == (100, 20)


async def test_release_gives_stock_back_exactly_once_and_commit_takes_it_for_good(client):
    product = await client.stocked(4)
    await client.reserve("order-r", (product.id, 3))
    await client.reserve("order-k", (product.id, 1))
    for _ in range(2):
        released = await client.stub.ReleaseReservation(
            S.ReleaseReservationRequest(order_id="order-r"), metadata=client.admin
        )
        assert released.state == R.STATE_RELEASED
    assert released.release_reason == R.RELEASE_REASON_ADMIN_REQUESTED
    assert (await client.stock(product.id)).available_quantity == 3
    assert len(client.events.of(catalog_events_pb2.StockReleased)) == 1
    committed = await client.stub.CommitReservation(
        S.CommitReservationRequest(order_id="order-k"), metadata=client.admin
    )
    assert committed.state == R.STATE_COMMITTED
    stock = await client.stock(product.id)
    assert (stock.on_hand_quantity, stock.reserved_quantity, stock.available_quantity) == (3, 0, 3)
    refused = await _error(
        client.stub.ReleaseReservation(
            S.ReleaseReservationRequest(order_id="order-k"), metadata=client.admin
        )
    )
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_an_expired_reservation_is_released_once_by_the_sweeper(client):
    product = await client.stocked(2)
    await client.reserve("order-e", (product.id, 2), ttl=duration_pb2.Duration(seconds=60))
    assert await client.handlers.sweep() == 0
    client.fakes["clock"].advance(timedelta(seconds=61))
    assert await client.handlers.sweep() == 1
    assert await client.handlers.sweep() == 0
    reservation = await client.stub.GetReservation(
        S.GetReservationRequest(order_id="order-e"), metadata=client.admin
    )
    assert (reservation.state, reservation.release_reason) == (
        R.STATE_RELEASED,
        R.RELEASE_REASON_EXPIRED,
    )
    assert (await client.stock(product.id)).available_quantity == 2
    late = await _error(
        client.stub.CommitReservation(
            S.CommitReservationRequest(order_id="order-e"), metadata=client.admin
        )
    )
    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_bad_reservation_request_names_each_field(client):
    error = await _error(
        client.reserve("", ("p", 0), ("p", 1), ttl=duration_pb2.Duration(seconds=5))
    )
    assert {"order_id", "lines[0].quantity", "lines[1].product_id", "ttl"} <= set(_fields(error))


# --- reviews --------------------------------------------------------------------------------


async def test_one_review_per_user_updates_the_rating_and_only_the_author_edits_it(client):
    product = await client.product()
    ann, bob = str(uuid.uuid4()), str(uuid.uuid4())
    posted = await client.stub.PostReview(
        S.PostReviewRequest(product_id=product.id, review=review_pb2.Review(rating=5, title="Yes")),
        metadata=client.token("customer", user_id=ann),
    )
    await client.stub.PostReview(
        S.PostReviewRequest(product_id=product.id, review=review_pb2.Review(rating=2)),
        metadata=client.token("customer", user_id=bob),
    )
    twice = await _error(
        client.stub.PostReview(
            S.PostReviewRequest(product_id=product.id, review=review_pb2.Review(rating=4)),
            metadata=client.token("customer", user_id=ann),
        )
    )
    assert twice.code() == grpc.StatusCode.ALREADY_EXISTS
    summary = await client.stub.GetRatingSummary(S.GetRatingSummaryRequest(product_id=product.id))
    assert (summary.rating_count, summary.rating_average) == (2, 3.5)
    assert (summary.five_star_count, summary.two_star_count) == (1, 1)
    assert (await client.stub.GetProduct(S.GetProductRequest(id=product.id))).rating_count == 2
    stranger = await _error(
        client.stub.UpdateReview(
            S.UpdateReviewRequest(
                product_id=product.id, id=posted.id, review=review_pb2.Review(rating=1)
            ),
            metadata=client.token("customer", user_id=bob),
        )
    )
    assert stranger.code() == grpc.StatusCode.PERMISSION_DENIED
    listed = await client.stub.ListReviews(
        S.ListReviewsRequest(
            product_id=product.id,
            sort_order=S.ListReviewsRequest.SORT_ORDER_RATING_ASCENDING,
        )
    )
    assert [r.rating for r in listed.reviews] == [2, 5]
    event = client.events.of(catalog_events_pb2.ReviewPosted)[0]
    assert (event.product_title, event.rating) == (product.title, 5)
    await client.stub.DeleteReview(
        S.DeleteReviewRequest(product_id=product.id, id=posted.id), metadata=client.admin
    )
    summary = await client.stub.GetRatingSummary(S.GetRatingSummaryRequest(product_id=product.id))
    assert summary.rating_count == 1
    bad = await _error(
        client.stub.PostReview(
            S.PostReviewRequest(product_id=product.id, review=review_pb2.Review(rating=6)),
            metadata=client.token("customer"),
        )
    )
    assert "review.rating" in _fields(bad)


def _uploaded(product_id: str, width: int = 3, height: int = 2, **fields: Any):
    """The FileUploaded the file service publishes for a READY product image."""
    file_id = fields.pop("file_id", str(uuid.uuid4()))
    base = f"http://store.test/emporium-files/public/{file_id}"
    return file_events_pb2.FileUploaded(
        file=file_pb2.File(
            id=file_id,
            owner_id="admin-1",
            purpose=file_pb2.File.PURPOSE_PRODUCT_IMAGE,
            state=file_pb2.File.STATE_READY,
            content_type="image/png",
            size_bytes=1234,
            width=width,
            height=height,
            uri=f"{base}/original",
            thumbnails=[
                file_pb2.Thumbnail(size=s, width=s, height=s, uri=f"{base}/thumb-{s}.webp")
                for s in (128, 256)
            ],
            product_id=product_id,
            **fields,
        )
    )


async def _deliver(client, message, source: str = "file") -> None:
    handle = events.dispatch(consumers.subscriptions(client.handlers))
    await handle(Event.of(message, source))


async def test_an_uploaded_file_joins_its_products_gallery_once_and_refreshes_the_cache(client):
    product = await client.product()
    await client.stub.GetProduct(S.GetProductRequest(id=product.id))  # cached without images
    first = _uploaded(product.id, alt_text="Front")
    await _deliver(client, first)
    await _deliver(client, first)  # redelivered: recorded once
    second = _uploaded(product.id, 1, 1)
    await _deliver(client, second)
    got = await client.stub.GetProduct(S.GetProductRequest(id=product.id))
    assert [(i.id, i.position) for i in got.images] == [(first.file.id, 0), (second.file.id, 1)]
    image = got.images[0]
    assert (image.width, image.height, image.alt_text) == (3, 2, "Front")
    assert image.url == first.file.uri
    assert [(t.size, t.url) for t in image.thumbnails] == [
        (t.size, t.uri) for t in first.file.thumbnails
    ]
    moved = await client.stub.UpdateProductImage(
        S.UpdateProductImageRequest(
            product_id=product.id,
            id=second.file.id,
            image=product_pb2.ProductImage(position=0),
            update_mask=field_mask_pb2.FieldMask(paths=["position"]),
        ),
        metadata=client.admin,
    )
    assert moved.position == 0
    got = await client.stub.GetProduct(S.GetProductRequest(id=product.id))
    assert [(i.id, i.position) for i in got.images] == [(second.file.id, 0), (first.file.id, 1)]
    await client.stub.DeleteProductImage(
        S.DeleteProductImageRequest(product_id=product.id, id=second.file.id),
        metadata=client.admin,
    )
    got = await client.stub.GetProduct(S.GetProductRequest(id=product.id))
    assert [(i.id, i.position) for i in got.images] == [(first.file.id, 0)]
    masks = [list(e.update_mask.paths) for e in client.events.of(catalog_events_pb2.ProductUpdated)]
    assert masks == [["images"]] * 4


async def test_a_deleted_file_leaves_its_products_gallery(client):
    product = await client.product()
    uploaded = _uploaded(product.id)
    await _deliver(client, uploaded)
    deleted = file_events_pb2.FileDeleted(
        file_id=uploaded.file.id,
        owner_id="admin-1",
        purpose=file_pb2.File.PURPOSE_PRODUCT_IMAGE,
        product_id=product.id,
    )
    await _deliver(client, deleted)
    await _deliver(client, deleted)
    got = await client.stub.GetProduct(S.GetProductRequest(id=product.id))
    assert list(got.images) == []


async def test_file_events_from_another_source_or_for_private_files_change_nothing(client):
    product = await client.product()
    with pytest.raises(events.ForeignEvent):
        await _deliver(client, _uploaded(product.id), source="cart")
    private = _uploaded(product.id)
    private.file.purpose = file_pb2.File.PURPOSE_USER_UPLOAD
    await _deliver(client, private)
    await _deliver(client, _uploaded(str(uuid.uuid4())))  # no such product: ignored
    got = await client.stub.GetProduct(S.GetProductRequest(id=product.id))
    assert list(got.images) == []


async def test_the_old_image_rpcs_point_to_the_file_service(client):
    product = await client.product()
    moved = await _error(
        client.stub.UploadProductImage(
            S.UploadProductImageRequest(
                product_id=product.id,
                file=httpbody_pb2.HttpBody(content_type="image/png", data=b"\x89PNG"),
            ),
            metadata=client.admin,
        )
    )
    assert moved.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "FileService.CreateUpload" in moved.details()
    uploaded = _uploaded(product.id)
    await _deliver(client, uploaded)
    served = await _error(
        client.stub.GetProductImage(
            S.GetProductImageRequest(product_id=product.id, id=uploaded.file.id)
        )
    )
    assert served.code() == grpc.StatusCode.FAILED_PRECONDITION
    missing = await _error(
        client.stub.GetProductImage(
            S.GetProductImageRequest(product_id=product.id, id=str(uuid.uuid4()))
        )
    )
    assert missing.code() == grpc.StatusCode.NOT_FOUND


async def test_reservations_list_newest_first_by_state_and_product(client):
    a, b = await client.stocked(5), await client.stocked(5)
    await client.reserve("order-l1", (a.id, 1))
    client.fakes["clock"].advance(timedelta(seconds=1))
    await client.reserve("order-l2", (b.id, 1))
    client.fakes["clock"].advance(timedelta(seconds=1))
    await client.reserve("order-l3", (a.id, 1), (b.id, 1))
    await client.stub.ReleaseReservation(
        S.ReleaseReservationRequest(order_id="order-l1"), metadata=client.admin
    )
    everything = await client.stub.ListReservations(
        S.ListReservationsRequest(), metadata=client.admin
    )
    assert [r.order_id for r in everything.reservations] == ["order-l3", "order-l2", "order-l1"]
    active = await client.stub.ListReservations(
        S.ListReservationsRequest(state=R.STATE_ACTIVE, product_id=a.id), metadata=client.admin
    )
    assert [r.order_id for r in active.reservations] == ["order-l3"]
    first = await client.stub.ListReservations(
        S.ListReservationsRequest(page_size=2), metadata=client.admin
    )
    rest = await client.stub.ListReservations(
        S.ListReservationsRequest(page_size=2, page_token=first.next_page_token),
        metadata=client.admin,
    )
    assert [r.order_id for r in [*first.reservations, *rest.reservations]] == [
        "order-l3",
        "order-l2",
        "order-l1",
    ]
    denied = await _error(
        client.stub.ListReservations(S.ListReservationsRequest(), metadata=client.token("customer"))
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_the_sweeper_finishes_a_release_whose_writer_died_midway(client):
    product = await client.stocked(3)
    await client.reserve("order-crash", (product.id, 3))
    reservations = client.fakes["reservations"]
    current = await reservations.get("order-crash")
    # The release was decided (compare-and-set) and then the process died.
    decided = replace(
        current,
        state=ReservationState.RELEASED,
        release_reason=ReleaseReason.ORDER_CANCELLED,
        update_time=client.fakes["clock"].now(),
    )
    assert await reservations.transition(decided, ReservationState.ACTIVE)
    assert (await client.stock(product.id)).available_quantity == 0
    client.fakes["clock"].advance(timedelta(seconds=11))
    assert await client.handlers.sweep() == 1
    assert await client.handlers.sweep() == 0
    assert (await client.stock(product.id)).available_quantity == 3
    released = client.events.of(catalog_events_pb2.StockReleased)
    assert [(e.order_id, e.reason) for e in released] == [
        ("order-crash", R.RELEASE_REASON_ORDER_CANCELLED)
    ]


async def test_an_abandoned_pending_reservation_gives_back_what_it_held(client):
    product = await client.stocked(2)
    handlers = client.handlers
    now = client.fakes["clock"].now()
    pending = Reservation(
        "order-pending", ReservationState.PENDING, (Line(product.id, 2),), now, now, now
    )
    await client.fakes["reservations"].claim(pending)
    # Its writer held the line, then died before finishing.
    assert await handlers._hold("order-pending", Line(product.id, 2)) is not None
    assert (await client.stock(product.id)).available_quantity == 0
    client.fakes["clock"].advance(timedelta(minutes=3))
    assert await handlers.sweep() == 1
    assert (await client.stock(product.id)).available_quantity == 2


async def test_racing_retries_of_one_order_reserve_its_units_once(client):
    product = await client.stocked(5)
    results = await asyncio.gather(
        *(client.reserve("order-dup", (product.id, 2)) for _ in range(10)),
        return_exceptions=True,
    )
    assert all(isinstance(r, reservation_pb2.Reservation) for r in results), results
    assert (await client.stock(product.id)).reserved_quantity == 2
    assert len(client.events.of(catalog_events_pb2.StockReserved)) == 1


def test_the_in_memory_copies_default_on_and_a_negative_size_is_refused():
    env = {"EMPORIUM_ENV": "development"}
    assert Settings.from_env(env).cache_local_size == 4096
    assert (
        Settings.from_env({**env, "EMPORIUM_CATALOG_CACHE_LOCAL_SIZE": "0"}).cache_local_size == 0
    )
    with pytest.raises(ConfigError, match="EMPORIUM_CATALOG_CACHE_LOCAL_SIZE"):
        Settings.from_env({**env, "EMPORIUM_CATALOG_CACHE_LOCAL_SIZE": "-1"})
