"""In-memory adapters of the catalog's ports, for unit tests.

They pass the same contract tests as the Cassandra and Redis adapters
(tests/integration/test_catalog_stores.py runs one suite over both), so a handler test on them
says something about production. Every write that stores events appends them to `events`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import replace

from google.protobuf.message import Message

from kit import errors
from services.catalog.domain import (
    REFUSED,
    Category,
    Product,
    ProductImage,
    ProductState,
    Reservation,
    ReservationState,
    Review,
    StockAdjustment,
    StockLevel,
    stable_event_id,
)


class EventLog:
    """The events the fakes stored, in order, without duplicate ids (as the outbox would)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._ids: set[str] = set()

    def add(self, messages: Sequence[Message], ids: Sequence[str] | None = None) -> None:
        for position, message in enumerate(messages):
            event_id = ids[position] if ids else str(uuid.uuid4())
            if event_id not in self._ids:
                self._ids.add(event_id)
                self.messages.append(message)

    def of(self, cls: type[Message]) -> list[Message]:
        return [m for m in self.messages if isinstance(m, cls)]


class InMemoryProductRepository:
    def __init__(self, events: EventLog | None = None) -> None:
        self.events = events or EventLog()
        self.products: dict[str, Product] = {}
        self.skus: dict[str, str] = {}
        self.requests: dict[str, str] = {}
        self._lock = asyncio.Lock()

    async def create(self, product: Product, events: Sequence[Message]) -> Product:
        async with self._lock:
            if product.request_id in self.requests:
                existing = self.products.get(self.requests[product.request_id])
                if existing is not None:
                    return existing
            holder = self.skus.get(product.sku)
            if holder is not None and holder != product.id:
                raise errors.AlreadyExists(f"another product has the SKU {product.sku}")
            self.requests[product.request_id] = product.id
            self.skus[product.sku] = product.id
            self.products[product.id] = product
            self.events.add(events)
            return product

    async def get(self, product_id: str) -> Product | None:
        return self.products.get(product_id)

    async def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]:
        return {i: self.products[i] for i in product_ids if i in self.products}

    async def save(self, product: Product, events: Sequence[Message], *, old_sku: str = "") -> None:
        async with self._lock:
            if old_sku:
                holder = self.skus.get(product.sku)
                if holder is not None and holder != product.id:
                    raise errors.AlreadyExists(f"another product has the SKU {product.sku}")
                self.skus[product.sku] = product.id
            stored = self.products.get(product.id)
            if stored is not None:
                product = replace(
                    product,
                    rating_average=stored.rating_average,
                    rating_count=stored.rating_count,
                    images=stored.images,  # written by the image repository only
                )
            self.products[product.id] = product
            if old_sku and self.skus.get(old_sku) == product.id:
                del self.skus[old_sku]
            self.events.add(events)

    async def set_rating(self, product_id: str, average: float, count: int) -> None:
        if product_id in self.products:
            self.products[product_id] = replace(
                self.products[product_id], rating_average=average, rating_count=count
            )

    async def search(
        self,
        *,
        state: ProductState | None,
        category_id: str = "",
        min_price_key: int | None = None,
        max_price_key: int | None = None,
        seller_id: str = "",
        words: Sequence[str] = (),
    ) -> list[Product]:
        return [
            p
            for p in self.products.values()
            if (state is None or p.state is state)
            and all(w in p.words for w in words)
            and (not category_id or category_id in p.category_ids)
            and (min_price_key is None or p.price.key >= min_price_key)
            and (max_price_key is None or p.price.key <= max_price_key)
            and (not seller_id or p.seller_id == seller_id)
        ]

    async def in_category(self, category_id: str) -> bool:
        return any(category_id in p.category_ids for p in self.products.values())


class InMemoryCategoryRepository:
    def __init__(self) -> None:
        self.categories: dict[str, Category] = {}
        self.slugs: dict[str, str] = {}
        self.requests: dict[str, str] = {}
        self._lock = asyncio.Lock()

    async def create(self, category: Category) -> Category:
        async with self._lock:
            if category.request_id and category.request_id in self.requests:
                existing = self.categories.get(self.requests[category.request_id])
                if existing is not None:
                    return existing
            if category.slug in self.slugs:
                raise errors.AlreadyExists(f"another category has the slug {category.slug}")
            self.slugs[category.slug] = category.id
            if category.request_id:
                self.requests[category.request_id] = category.id
            self.categories[category.id] = category
            return category

    async def get(self, category_id: str) -> Category | None:
        return self.categories.get(category_id)

    async def all(self) -> list[Category]:
        return list(self.categories.values())

    async def save(self, category: Category, *, old_slug: str = "") -> None:
        async with self._lock:
            if old_slug:
                holder = self.slugs.get(category.slug)
                if holder is not None and holder != category.id:
                    raise errors.AlreadyExists(f"another category has the slug {category.slug}")
                self.slugs[category.slug] = category.id
                if self.slugs.get(old_slug) == category.id:
                    del self.slugs[old_slug]
            self.categories[category.id] = category

    async def delete(self, category: Category) -> None:
        self.categories.pop(category.id, None)
        if self.slugs.get(category.slug) == category.id:
            del self.slugs[category.slug]


class InMemoryStockRepository:
    def __init__(self, events: EventLog | None = None) -> None:
        self.events = events or EventLog()
        self.levels: dict[str, StockLevel] = {}
        self.history: dict[str, list[StockAdjustment]] = {}

    async def get(self, product_id: str) -> StockLevel:
        return self.levels.get(product_id) or StockLevel(product_id)

    async def compare_and_set(self, level: StockLevel, expected_version: int) -> bool:
        # No await between the check and the write: atomic on the event loop.
        current = self.levels.get(level.product_id)
        if (current.version if current else 0) != expected_version:
            return False
        self.levels[level.product_id] = replace(
            level, version=expected_version + 1, holds=dict(level.holds)
        )
        return True

    async def find_adjustment(self, product_id: str, request_id: str) -> StockAdjustment | None:
        return next(
            (a for a in self.history.get(product_id, []) if a.request_id == request_id), None
        )

    async def record_adjustment(
        self, adjustment: StockAdjustment, events: Sequence[Message]
    ) -> None:
        if await self.find_adjustment(adjustment.product_id, adjustment.request_id):
            return
        self.history.setdefault(adjustment.product_id, []).append(adjustment)
        self.events.add(events)

    async def adjustments(self, product_id: str) -> list[StockAdjustment]:
        return sorted(
            self.history.get(product_id, []), key=lambda a: (a.create_time, a.id), reverse=True
        )


class InMemoryReservationRepository:
    def __init__(self, events: EventLog | None = None) -> None:
        self.events = events or EventLog()
        self.reservations: dict[str, Reservation] = {}

    async def claim(self, reservation: Reservation) -> Reservation | None:
        existing = self.reservations.get(reservation.order_id)
        if existing is not None:
            return existing
        self.reservations[reservation.order_id] = reservation
        return None

    async def get(self, order_id: str) -> Reservation | None:
        return self.reservations.get(order_id)

    async def transition(self, reservation: Reservation, from_state: ReservationState) -> bool:
        current = self.reservations.get(reservation.order_id)
        if current is None or current.state is not from_state:
            return False
        self.reservations[reservation.order_id] = replace(reservation, announced=False)
        return True

    async def delete_pending(self, order_id: str) -> bool:
        current = self.reservations.get(order_id)
        if current is None or current.state is not ReservationState.PENDING:
            return False
        del self.reservations[order_id]
        return True

    async def announce(self, reservation: Reservation, events: Sequence[Message]) -> None:

        current = self.reservations.get(reservation.order_id)
        if current is None or current.state is not reservation.state:
            return
        key = f"{reservation.order_id}/{reservation.state.value}"
        ids = [stable_event_id(key, i, m.DESCRIPTOR.full_name) for i, m in enumerate(events)]
        self.events.add(events, ids)
        self.reservations[reservation.order_id] = replace(current, announced=True)

    async def refuse(self, order_id: str, events: Sequence[Message]) -> None:
        key = f"{order_id}/{REFUSED}"
        self.events.add(
            events, [stable_event_id(key, i, m.DESCRIPTOR.full_name) for i, m in enumerate(events)]
        )

    async def in_states(self, states: Sequence[ReservationState]) -> list[Reservation]:
        return [r for r in self.reservations.values() if r.state in states]

    async def unannounced(self) -> list[Reservation]:
        return [r for r in self.reservations.values() if not r.announced]


class InMemoryReviewRepository:
    def __init__(self, events: EventLog | None = None) -> None:
        self.events = events or EventLog()
        self.reviews: dict[str, dict[str, Review]] = {}

    async def create(self, review: Review, events: Sequence[Message]) -> Review:
        book = self.reviews.setdefault(review.product_id, {})
        if any(r.reviewer_id == review.reviewer_id for r in book.values()):
            raise errors.AlreadyExists("you have already reviewed this product")
        book[review.id] = review
        self.events.add(events)
        return review

    async def get(self, product_id: str, review_id: str) -> Review | None:
        return self.reviews.get(product_id, {}).get(review_id)

    async def of_product(self, product_id: str) -> list[Review]:
        return list(self.reviews.get(product_id, {}).values())

    async def save(self, review: Review) -> None:
        self.reviews.setdefault(review.product_id, {})[review.id] = review

    async def delete(self, review: Review) -> None:
        self.reviews.get(review.product_id, {}).pop(review.id, None)


class InMemoryImageRepository:
    """Galleries kept on the products of an InMemoryProductRepository, as the Cassandra
    adapter keeps them on the product row."""

    def __init__(self, products: InMemoryProductRepository) -> None:
        self.products = products

    def _put(self, image: ProductImage, *, keep: bool = False) -> ProductImage:
        product = self.products.products.get(image.product_id)
        if product is None:
            raise errors.NotFound(f"product {image.product_id} does not exist")
        others = [i for i in product.images if i.id != image.id]
        if keep and len(others) < len(product.images):
            return next(i for i in product.images if i.id == image.id)
        gallery = tuple(sorted([*others, image], key=lambda i: (i.position, i.id)))
        self.products.products[product.id] = replace(product, images=gallery)
        return image

    async def add(self, image: ProductImage) -> ProductImage:
        return self._put(image, keep=True)

    async def save(self, images: Sequence[ProductImage]) -> None:
        for image in images:
            self._put(image)

    async def delete(self, image: ProductImage) -> None:
        product = self.products.products.get(image.product_id)
        if product is not None:
            gallery = tuple(i for i in product.images if i.id != image.id)
            self.products.products[product.id] = replace(product, images=gallery)


class InMemoryProductCache:
    """The cache's contract in a dict: generations, guarded fills, invalidation, counters."""

    def __init__(self) -> None:
        self.entries: dict[str, Product] = {}
        self.generation: dict[str, int] = {}
        self.pages: dict[tuple[int, str], tuple[list[Product], str]] = {}
        self.list_gen = 0
        self.hits = 0
        self.misses = 0

    async def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]:
        return {i: self.entries[i] for i in product_ids if i in self.entries}

    async def generations(self, product_ids: Sequence[str]) -> list[bytes | None]:
        return [
            str(self.generation[i]).encode() if i in self.generation else None for i in product_ids
        ]

    async def fill(self, products: Sequence[Product], generations: Sequence[bytes | None]) -> None:
        for product, seen in zip(products, generations, strict=True):
            now = self.generation.get(product.id)
            if (str(now).encode() if now is not None else None) == seen:
                self.entries[product.id] = product

    async def invalidate(self, product_ids: Sequence[str]) -> None:
        for product_id in product_ids:
            self.generation[product_id] = self.generation.get(product_id, 0) + 1
            self.entries.pop(product_id, None)
        self.list_gen += 1
        self.pages.clear()

    async def list_generation(self) -> bytes | None:
        return str(self.list_gen).encode()

    async def get_page(self, generation: bytes | None, key: str):
        page = self.pages.get((int(generation or 0), key))
        return (list(page[0]), page[1]) if page else None

    async def put_page(
        self, generation: bytes | None, key: str, products: Sequence[Product], token: str
    ) -> None:
        if int(generation or 0) == self.list_gen:
            self.pages[(self.list_gen, key)] = (list(products), token)

    async def count(self, hits: int, misses: int) -> None:
        self.hits += hits
        self.misses += misses


class FixedClock:
    """A clock tests move by hand."""

    def __init__(self, now) -> None:
        self.current = now

    def now(self):
        return self.current

    def advance(self, delta) -> None:
        self.current = self.current + delta
