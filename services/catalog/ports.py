"""What the catalog's handlers need from the outside world, as Protocols.

Repositories are small primitives (claims, compare-and-set, reads); the algorithms that make
reservations all-or-nothing, idempotent and exactly-once live in `handlers.py` and run the same
over the in-memory fakes and Cassandra. Writes that cause events store them in the outbox with
the state change (kit/outbox.py); no handler publishes directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from google.protobuf.message import Message

from services.catalog.domain import (
    Category,
    Product,
    ProductImage,
    ProductState,
    Reservation,
    ReservationState,
    Review,
    StockAdjustment,
    StockLevel,
)

Events = Sequence[Message]


class ProductRepository(Protocol):
    async def create(self, product: Product, events: Events) -> Product:
        """Stores a new product unless its SKU is taken; returns the stored product.

        A retry with the same request_id returns the product the first call stored. Raises
        AlreadyExists if another product holds the SKU; of racing creates exactly one wins.
        """
        ...

    async def get(self, product_id: str) -> Product | None: ...

    async def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]: ...

    async def save(self, product: Product, events: Events, *, old_sku: str = "") -> None:
        """Stores a changed product; with `old_sku` the new SKU is claimed first (AlreadyExists
        if taken) and the old one released after."""
        ...

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
        """Every product matching all the given filters, in no particular order; each of
        `words` must be in the product's search index (`Product.words`)."""
        ...

    async def set_rating(self, product_id: str, average: float, count: int) -> None:
        """Stores the product's rating (not an edit: no etag change, no event)."""
        ...

    async def in_category(self, category_id: str) -> bool:
        """Whether any product lists the category."""
        ...


class CategoryRepository(Protocol):
    async def create(self, category: Category) -> Category:
        """Stores a new category unless its slug is taken (AlreadyExists); a retry with the
        same request_id returns the first one."""
        ...

    async def get(self, category_id: str) -> Category | None: ...

    async def all(self) -> list[Category]: ...

    async def save(self, category: Category, *, old_slug: str = "") -> None: ...

    async def delete(self, category: Category) -> None: ...


class StockRepository(Protocol):
    async def get(self, product_id: str) -> StockLevel:
        """The stock row; version 0 and no units when none exists yet."""
        ...

    async def compare_and_set(self, level: StockLevel, expected_version: int) -> bool:
        """Writes `level` with version `expected_version + 1` if the row is still at
        `expected_version` (0: does not exist); whether it did."""
        ...

    async def find_adjustment(self, product_id: str, request_id: str) -> StockAdjustment | None: ...

    async def record_adjustment(self, adjustment: StockAdjustment, events: Events) -> None:
        """Stores the adjustment (audit trail) with its events; a repeat is harmless."""
        ...

    async def adjustments(self, product_id: str) -> list[StockAdjustment]:
        """The product's adjustments, newest first."""
        ...


class ReservationRepository(Protocol):
    async def claim(self, reservation: Reservation) -> Reservation | None:
        """Stores a new reservation unless the order has one; None if stored, else the
        existing one."""
        ...

    async def get(self, order_id: str) -> Reservation | None: ...

    async def transition(self, reservation: Reservation, from_state: ReservationState) -> bool:
        """Stores `reservation` if the stored one is still in `from_state` (compare-and-set)."""
        ...

    async def delete_pending(self, order_id: str) -> bool: ...

    async def announce(self, reservation: Reservation, events: Events) -> None:
        """Stores the events of the reservation's current state and marks it announced.

        Event ids derive from the order, state and position, so a repeat (the sweeper finishing
        a transition) stores the same ids, which consumers deduplicate.
        """
        ...

    async def refuse(self, order_id: str, events: Events) -> None:
        """Stores the events of an order whose reservation cannot be made (no row is written).

        Event ids derive from the order and position: a repeat stores the same ids.
        """
        ...

    async def in_states(self, states: Sequence[ReservationState]) -> list[Reservation]: ...

    async def unannounced(self) -> list[Reservation]:
        """Reservations whose current state's events are not stored yet."""
        ...


class ReviewRepository(Protocol):
    async def create(self, review: Review, events: Events) -> Review:
        """Stores a review unless the reviewer already reviewed the product (AlreadyExists)."""
        ...

    async def get(self, product_id: str, review_id: str) -> Review | None: ...

    async def of_product(self, product_id: str) -> list[Review]: ...

    async def save(self, review: Review) -> None: ...

    async def delete(self, review: Review) -> None: ...


class ImageRepository(Protocol):
    """Product images' metadata, by product (the bytes are the file service's). The images
    are part of the product: the ProductRepository's reads return them, ordered by position,
    and its `save` leaves them as they are."""

    async def add(self, image: ProductImage) -> ProductImage:
        """Stores an image unless one with its id exists; returns the stored one. NotFound if
        the product does not exist."""
        ...

    async def save(self, images: Sequence[ProductImage]) -> None:
        """Stores each image's metadata (alt text, position ...) as given."""
        ...

    async def delete(self, image: ProductImage) -> None: ...


class ProductCache(Protocol):
    """A read-through cache of products, by id, bounded by a TTL.

    `generations` is read before the database, `fill` stores only entries whose generation is
    unchanged since, and `invalidate` (after every write) bumps the generation and drops the
    entry: a read that raced a write can never put the old product back.
    """

    async def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]: ...

    async def generations(self, product_ids: Sequence[str]) -> list[bytes | None]: ...

    async def fill(
        self, products: Sequence[Product], generations: Sequence[bytes | None]
    ) -> None: ...

    async def invalidate(self, product_ids: Sequence[str]) -> None:
        """Drops the products and every cached listing (a listing may hold any product)."""
        ...

    async def list_generation(self) -> bytes | None:
        """The listings' generation: cached pages are keyed by it, so an invalidation makes
        every page stored before it unreachable."""
        ...

    async def get_page(
        self, generation: bytes | None, key: str
    ) -> tuple[list[Product], str] | None: ...

    async def put_page(
        self, generation: bytes | None, key: str, products: Sequence[Product], token: str
    ) -> None: ...

    async def count(self, hits: int, misses: int) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...
