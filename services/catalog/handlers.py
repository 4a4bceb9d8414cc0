"""The catalog's use cases, over the ports; no gRPC and no storage details here.

Reservations (the part that must never oversell or leak stock):

- ReserveStock first claims the order's reservation row (PENDING, insert-if-not-exists), so the
  order id is the idempotency key; a retry of a PENDING one resumes it.
- Each line is held by a compare-and-set on the product's stock row that raises `reserved` and
  records the order in the row's `holds` in the same write: the stock row itself says whether
  an order's units are held, so holding, releasing and committing a line are idempotent and a
  line is never counted twice. Contention is retried with jittered back-off.
- A short line (or contention that outlasts the retries) gives back the lines already held.
- Every state change of a reservation is a compare-and-set on its row (PENDING -> ACTIVE /
  FAILED, ACTIVE -> RELEASED / COMMITTED), so of racing releases, commits and the expiry
  sweeper exactly one wins; the winner then moves the units and stores the events. Should it
  die in between, the row stays `announced = false` and the sweeper finishes the job with the
  same idempotent steps and the same event ids.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import cachetools
from emporium.catalog.v1 import catalog_events_pb2
from google.protobuf import any_pb2
from google.rpc import error_details_pb2

from kit import errors, paging, retry
from kit.auth import Principal
from kit.errors import InvalidArgument, Violations
from kit.mapping import field_mask, timestamp
from services.catalog import domain, mapping
from services.catalog.domain import (
    UPDATABLE_CATEGORY_FIELDS,
    UPDATABLE_PRODUCT_FIELDS,
    AdjustReason,
    Category,
    Line,
    Money,
    Product,
    ProductImage,
    ProductState,
    RatingSummary,
    ReleaseReason,
    Reservation,
    ReservationState,
    Review,
    Shortage,
    StockAdjustment,
    StockLevel,
)
from services.catalog.ports import (
    CategoryRepository,
    Clock,
    ImageRepository,
    ProductCache,
    ProductRepository,
    ReservationRepository,
    ReviewRepository,
    StockRepository,
)

log = logging.getLogger(__name__)

DEFAULT_PAGE = 20
MAX_PAGE = 100
MAX_BATCH = 100
TTL_MIN = timedelta(minutes=1)
TTL_MAX = timedelta(hours=24)
ORDER_ID_MAX = 100
# What a stock change returns when it lost the race to its row too often.
CONTENDED = object()


class InsufficientStock(errors.FailedPrecondition):
    """FAILED_PRECONDITION with one PreconditionFailure violation per short line."""

    reason = "INSUFFICIENT_STOCK"

    def __init__(self, shortages: Sequence[Shortage]) -> None:
        self.shortages = list(shortages)
        super().__init__(
            "not enough stock for "
            + ", ".join(f"{s.product_id} ({s.requested} > {s.available})" for s in shortages)
        )

    def details(self) -> list[any_pb2.Any]:
        failure = error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type="INSUFFICIENT_STOCK",
                    subject=s.product_id,
                    description=f"{s.requested} requested, {s.available} available",
                )
                for s in self.shortages
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(failure)
        return [*super().details(), packed]


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_page_token: str


def _page(
    items: Sequence[Any],
    key: Callable[[Any], list],
    size: int,
    token: str,
    scope: dict[str, Any],
) -> Page:
    """A keyset page: the items after the cursor's sort key, in key order.

    The cursor is the last returned item's key (with its id as the final tie-breaker), not an
    offset, so products inserted between two calls never shift the pages: every item that
    exists throughout is returned exactly once.
    """
    cursor = paging.decode_page_token(token, scope)
    after = cursor.get("after") if isinstance(cursor, dict) else None
    ordered = sorted(items, key=key)
    if after is not None:
        ordered = [item for item in ordered if key(item) > after]
    page = ordered[:size]
    more = len(ordered) > size
    next_token = paging.encode_page_token({"after": key(page[-1])}, scope) if more else ""
    return Page(page, next_token)


def _micros(value: datetime | None) -> int:
    return int(value.timestamp() * 1_000_000) if value else 0


def _require_id(value: str, what: str) -> str:
    value = (value or "").strip()
    if not domain.is_uuid(value):
        raise errors.NotFound(f"{what} {value!r} does not exist")
    return value


def _check_mask(paths: Sequence[str], allowed: Sequence[str], present: Sequence[str]) -> tuple:
    fields = tuple(dict.fromkeys(p.strip() for p in paths)) if paths else tuple(present)
    for path in fields:
        if path not in allowed:
            raise InvalidArgument(
                "update_mask", f"{path!r} is not updatable; use some of {', '.join(allowed)}"
            )
    return fields


@dataclass
class CatalogHandlers:
    products: ProductRepository
    categories: CategoryRepository
    stock: StockRepository
    reservations: ReservationRepository
    reviews: ReviewRepository
    images: ImageRepository
    cache: ProductCache
    clock: Clock
    shop_currency: str = "USD"
    reservation_ttl: timedelta = timedelta(minutes=15)
    # Compare-and-set attempts on one stock row before giving up with ABORTED.
    cas_attempts: int = 60
    # A transition unannounced for this long is taken over by the sweeper.
    takeover_after: timedelta = timedelta(seconds=10)
    # A PENDING reservation this old was abandoned by its writer.
    pending_timeout: timedelta = timedelta(minutes=2)
    # The contract has no low-stock event: StockLevelChanged carries the levels before and
    # after, from which consumers apply their own threshold; the service logs this one.
    low_stock_threshold: int = 5
    # This process's turns at each product's stock row, and the level it last wrote to each
    # (see _change_stock).
    _stock_turns: retry.KeyedLock = field(default_factory=retry.KeyedLock, init=False, repr=False)
    _stock_written: cachetools.LRUCache[str, StockLevel] = field(
        default_factory=lambda: cachetools.LRUCache(maxsize=10_000), init=False, repr=False
    )

    def _note_low_stock(self, previous: int, level: StockLevel) -> None:
        if previous > self.low_stock_threshold >= level.available:
            log.warning(
                "low stock: product %s has %d units available (threshold %d)",
                level.product_id,
                level.available,
                self.low_stock_threshold,
            )

    # --- products ---------------------------------------------------------------------------

    async def create_product(
        self, caller: Principal, product: Product, request_id: str, state: ProductState | None
    ) -> Product:
        violations = Violations()
        if not request_id.strip():
            violations.add("request_id", "is required")
        elif not domain.is_uuid(request_id.strip()):
            violations.add("request_id", "must be a UUID")
        if state is ProductState.ARCHIVED:
            violations.add("product.state", "must be STATE_DRAFT or STATE_ACTIVE")
        product = domain.check_product_fields(
            violations, product, self.shop_currency, UPDATABLE_PRODUCT_FIELDS
        )
        await self._check_categories(violations, product.category_ids)
        violations.raise_if_any()
        now = self.clock.now()
        state = state or ProductState.ACTIVE
        product = replace(
            product,
            id=domain.new_id(),
            state=state,
            seller_id=product.seller_id or caller.user_id,
            create_time=now,
            update_time=now,
            publish_time=now if state is ProductState.ACTIVE else None,
            ever_published=state is ProductState.ACTIVE,
            version=secrets.token_hex(8),
            request_id=request_id.strip(),
            rating_average=0.0,
            rating_count=0,
        )
        event = catalog_events_pb2.ProductCreated(product=mapping.product_to_proto(product))
        stored = await self.products.create(product, [event])
        await self._invalidate([stored.id])
        return stored

    async def _check_categories(self, violations: Violations, ids: Sequence[str]) -> None:
        for position, category_id in enumerate(ids):
            if domain.is_uuid(category_id) and await self.categories.get(category_id) is None:
                violations.add(f"product.category_ids[{position}]", "is not a known category")

    async def _read(self, ids: Sequence[str], *, use_cache: bool = True) -> dict[str, Product]:
        """Products by id through the read cache; the cache failing falls back to Cassandra."""
        if not use_cache:
            return await self.products.get_many(ids)
        try:
            found = await self.cache.get_many(ids)
            missing = [i for i in dict.fromkeys(ids) if i not in found]
            generations = await self.cache.generations(missing) if missing else []
        except Exception as error:  # the cache is an optimisation, never a dependency
            log.warning("product cache unavailable (%s); reading Cassandra", error)
            return await self.products.get_many(ids)
        if missing:
            loaded = await self.products.get_many(missing)
            found.update(loaded)
            try:
                keep = [(p, g) for p, g in zip(missing, generations, strict=True) if p in loaded]
                await self.cache.fill([loaded[p] for p, _ in keep], [g for _, g in keep])
            except Exception as error:
                log.warning("product cache fill failed (%s)", error)
        try:
            await self.cache.count(len(set(ids)) - len(missing), len(missing))
        except Exception as error:
            log.debug("cache counters not updated (%s)", error)
        return found

    async def _invalidate(self, ids: Sequence[str]) -> None:
        # After the Cassandra write: a failure here must fail the call (the client must not
        # believe an update is visible while the cache may still serve the old product).
        await self.cache.invalidate(ids)

    @staticmethod
    def _visible(product: Product | None, caller: Principal | None) -> bool:
        if product is None:
            return False
        return product.state is not ProductState.DRAFT or bool(caller and caller.admin)

    async def get_product(
        self, caller: Principal | None, product_id: str, *, use_cache: bool = True
    ) -> Product:
        product_id = _require_id(product_id, "product")
        product = (await self._read([product_id], use_cache=use_cache)).get(product_id)
        if not self._visible(product, caller):
            raise errors.NotFound(f"product {product_id} does not exist")
        return product  # type: ignore[return-value]

    async def batch_get_products(
        self, caller: Principal | None, ids: Sequence[str], *, use_cache: bool = True
    ) -> list[Product]:
        ids = [i.strip() for i in ids]
        if not ids:
            raise InvalidArgument("ids", "must name at least one product")
        if len(ids) > MAX_BATCH:
            raise InvalidArgument("ids", f"must name at most {MAX_BATCH} products")
        for product_id in ids:
            _require_id(product_id, "product")
        found = await self._read(ids, use_cache=use_cache)
        missing = [i for i in ids if not self._visible(found.get(i), caller)]
        if missing:
            raise errors.NotFound(f"products {', '.join(missing)} do not exist")
        return [found[i] for i in ids]

    async def list_products(
        self,
        caller: Principal | None,
        *,
        page_size: int = 0,
        page_token: str = "",
        query: str = "",
        category_id: str = "",
        min_price: Money | None = None,
        max_price: Money | None = None,
        state: ProductState | None = None,
        seller_id: str = "",
        sort: str = "",
        use_cache: bool = True,
    ) -> Page:
        size = paging.page_size(page_size, default=DEFAULT_PAGE, maximum=MAX_PAGE)
        admin = bool(caller and caller.admin)
        if state not in (None, ProductState.ACTIVE) and not admin:
            raise errors.PermissionDenied("only admins may list products that are not on sale")
        if state is None and not admin:
            state = ProductState.ACTIVE
        violations = Violations()
        low = high = None
        if min_price is not None:
            low = domain.check_money(violations, min_price, "min_price", self.shop_currency).key
        if max_price is not None:
            high = domain.check_money(violations, max_price, "max_price", self.shop_currency).key
        if low is not None and high is not None and low > high:
            violations.add("min_price", "must not be above max_price")
        category_id = category_id.strip()
        if category_id and not domain.is_uuid(category_id):
            violations.add("category_id", "must be a category id")
        seller_id = seller_id.strip()
        if seller_id and not domain.is_uuid(seller_id):
            violations.add("seller_id", "must be a user id")
        words = sorted(set(domain.words_of(query)))
        violations.check(len(query) <= 200, "query", "must be at most 200 characters")
        violations.raise_if_any()
        sort = sort or ("relevance" if words else "newest")
        if sort == "relevance" and not words:
            sort = "newest"
        scope = {
            "q": words,
            "category": category_id,
            "min": low,
            "max": high,
            "state": state.value if state else "",
            "seller": seller_id,
            "sort": sort,
            "admin": admin,
        }
        # Checked before any work: a token replayed with other filters is INVALID_ARGUMENT.
        paging.decode_page_token(page_token, scope)
        key = hashlib.sha256(
            json.dumps([scope, page_token, size], sort_keys=True).encode()
        ).hexdigest()
        generation = None
        if use_cache:
            try:
                generation = await self.cache.list_generation()
                cached = await self.cache.get_page(generation, key)
                if cached is not None:
                    await self.cache.count(1, 0)
                    return Page(*cached)
            except Exception as error:  # the cache is an optimisation, never a dependency
                log.warning("listing cache unavailable (%s)", error)
                use_cache = False
        page = await self._list(scope, words, sort, size, page_token, state)
        if use_cache:
            try:
                await self.cache.put_page(generation, key, page.items, page.next_page_token)
                await self.cache.count(0, 1)
            except Exception as error:
                log.warning("listing cache fill failed (%s)", error)
        return page

    async def _list(
        self,
        scope: dict[str, Any],
        words: list[str],
        sort: str,
        size: int,
        page_token: str,
        state: ProductState | None,
    ) -> Page:
        low, high = scope["min"], scope["max"]
        category_id, seller_id = scope["category"], scope["seller"]
        matches = await self.products.search(
            state=state,
            category_id=category_id,
            min_price_key=low,
            max_price_key=high,
            seller_id=seller_id,
            words=words,
        )

        def relevance(p: Product) -> int:
            title = p.title.casefold()
            return sum(3 * title.count(w) + p.search_text.count(w) for w in words)

        keys: dict[str, Callable[[Product], list]] = {
            "newest": lambda p: [-_micros(p.newest_key), p.id],
            "price_ascending": lambda p: [p.price.key, p.id],
            "price_descending": lambda p: [-p.price.key, p.id],
            "rating": lambda p: [-p.rating_average, -p.rating_count, p.id],
            "relevance": lambda p: [-relevance(p), -_micros(p.newest_key), p.id],
        }
        return _page(matches, keys[sort], size, page_token, scope)

    async def _editable(self, product_id: str) -> Product:
        product_id = _require_id(product_id, "product")
        product = await self.products.get(product_id)
        if product is None:
            raise errors.NotFound(f"product {product_id} does not exist")
        return product

    async def _store(self, old: Product, new: Product, events: Sequence[Any]) -> Product:
        await self.products.save(new, events, old_sku=old.sku if old.sku != new.sku else "")
        await self._invalidate([new.id])
        return new

    def _changed(self, product: Product, now: datetime, **changes: Any) -> Product:
        return replace(product, update_time=now, version=secrets.token_hex(8), **changes)

    async def update_product(
        self,
        product_id: str,
        wanted: Product,
        mask: Sequence[str],
        present: Sequence[str],
    ) -> Product:
        fields = _check_mask(mask, UPDATABLE_PRODUCT_FIELDS, present)
        current = await self._editable(product_id)
        if current.state is ProductState.ARCHIVED:
            raise errors.FailedPrecondition("an archived product cannot be changed; unarchive it")
        if wanted.version and wanted.version != current.version:
            raise errors.Aborted("the product changed since it was read; read it again")
        violations = Violations()
        merged = replace(current, **{f: getattr(wanted, f) for f in fields})
        merged = domain.check_product_fields(violations, merged, self.shop_currency, fields)
        if "category_ids" in fields:
            await self._check_categories(violations, merged.category_ids)
        violations.raise_if_any()
        if "seller_id" in fields and not merged.seller_id:
            merged = replace(merged, seller_id=current.seller_id)
        changed = [f for f in fields if getattr(merged, f) != getattr(current, f)]
        updated = self._changed(merged, self.clock.now())
        event = catalog_events_pb2.ProductUpdated(
            product=mapping.product_to_proto(updated), update_mask=field_mask(changed)
        )
        return await self._store(current, updated, [event])

    async def publish_product(self, product_id: str) -> Product:
        current = await self._editable(product_id)
        if current.state is ProductState.ACTIVE:
            return current
        if current.state is ProductState.ARCHIVED:
            raise errors.FailedPrecondition("an archived product must be unarchived first")
        now = self.clock.now()
        first = current.publish_time is None and not current.ever_published
        updated = self._changed(
            current,
            now,
            state=ProductState.ACTIVE,
            publish_time=current.publish_time or now,
            ever_published=True,
        )
        event = catalog_events_pb2.ProductPublished(
            product=mapping.product_to_proto(updated), first_publication=first
        )
        return await self._store(current, updated, [event])

    async def archive_product(self, product_id: str) -> Product:
        current = await self._editable(product_id)
        if current.state is ProductState.ARCHIVED:
            return current
        updated = self._changed(current, self.clock.now(), state=ProductState.ARCHIVED)
        event = catalog_events_pb2.ProductArchived(product=mapping.product_to_proto(updated))
        return await self._store(current, updated, [event])

    async def unarchive_product(self, product_id: str) -> Product:
        current = await self._editable(product_id)
        if current.state is not ProductState.ARCHIVED:
            return current
        updated = self._changed(current, self.clock.now(), state=ProductState.DRAFT)
        event = catalog_events_pb2.ProductUpdated(
            product=mapping.product_to_proto(updated), update_mask=field_mask(["state"])
        )
        return await self._store(current, updated, [event])

    # --- categories -------------------------------------------------------------------------

    async def create_category(self, category: Category, request_id: str) -> Category:
        violations = Violations()
        if request_id and not domain.is_uuid(request_id.strip()):
            violations.add("request_id", "must be a UUID")
        category = domain.check_category_fields(violations, category, UPDATABLE_CATEGORY_FIELDS)
        if domain.is_uuid(category.parent_id) and not await self.categories.get(category.parent_id):
            violations.add("category.parent_id", "is not a known category")
        violations.raise_if_any()
        now = self.clock.now()
        category = replace(
            category,
            id=domain.new_id(),
            create_time=now,
            update_time=now,
            request_id=request_id.strip(),
        )
        return await self.categories.create(category)

    async def get_category(self, category_id: str) -> Category:
        category_id = _require_id(category_id, "category")
        category = await self.categories.get(category_id)
        if category is None:
            raise errors.NotFound(f"category {category_id} does not exist")
        return category

    async def list_categories(
        self, *, page_size: int = 0, page_token: str = "", parent_id: str = "", slug: str = ""
    ) -> Page:
        size = paging.page_size(page_size, default=DEFAULT_PAGE, maximum=MAX_PAGE)
        parent_id, slug = parent_id.strip(), slug.strip()
        everything = await self.categories.all()
        chosen = [
            c
            for c in everything
            if (not parent_id or c.parent_id == parent_id) and (not slug or c.slug == slug)
        ]
        return _page(
            chosen,
            lambda c: list(c.sort_key),
            size,
            page_token,
            {"parent": parent_id, "slug": slug},
        )

    async def update_category(
        self, category_id: str, wanted: Category, mask: Sequence[str], present: Sequence[str]
    ) -> Category:
        fields = _check_mask(mask, UPDATABLE_CATEGORY_FIELDS, present)
        current = await self.get_category(category_id)
        violations = Violations()
        merged = replace(current, **{f: getattr(wanted, f) for f in fields})
        merged = domain.check_category_fields(violations, merged, fields)
        if "parent_id" in fields and merged.parent_id and domain.is_uuid(merged.parent_id):
            everything = {c.id: c for c in await self.categories.all()}
            if merged.parent_id not in everything:
                violations.add("category.parent_id", "is not a known category")
            else:
                # Walking up from the new parent must never reach the category itself.
                seen, node = set(), merged.parent_id
                while node and node not in seen:
                    if node == current.id:
                        violations.add("category.parent_id", "would make a cycle")
                        break
                    seen.add(node)
                    node = everything[node].parent_id if node in everything else ""
        violations.raise_if_any()
        updated = replace(merged, update_time=self.clock.now())
        await self.categories.save(
            updated, old_slug=current.slug if current.slug != updated.slug else ""
        )
        return updated

    async def delete_category(self, category_id: str) -> None:
        category = await self.get_category(category_id)
        if any(c.parent_id == category.id for c in await self.categories.all()):
            raise errors.FailedPrecondition("the category still has subcategories")
        if await self.products.in_category(category.id):
            raise errors.FailedPrecondition("the category still has products")
        await self.categories.delete(category)

    # --- stock ------------------------------------------------------------------------------

    async def get_stock(self, caller: Principal | None, product_id: str) -> StockLevel:
        await self.get_product(caller, product_id)
        return await self.stock.get(product_id.strip())

    async def adjust_stock(
        self,
        caller: Principal,
        product_id: str,
        *,
        request_id: str,
        delta: int | None,
        on_hand: int | None,
        reason: AdjustReason | None,
        note: str = "",
    ) -> StockLevel:
        violations = Violations()
        request_id = request_id.strip()
        if not request_id:
            violations.add("request_id", "is required")
        elif not domain.is_uuid(request_id):
            violations.add("request_id", "must be a UUID")
        if delta is None and on_hand is None:
            violations.add("delta", "set delta or on_hand_quantity")
        if delta == 0:
            violations.add("delta", "must not be zero")
        if on_hand is not None and on_hand < 0:
            violations.add("on_hand_quantity", "must not be negative")
        if reason is None:
            violations.add("reason", "is required")
        note = domain.clean_text(note)
        violations.check(len(note) <= domain.NOTE_MAX, "note", "must be at most 500 characters")
        violations.raise_if_any()
        product = await self._editable(product_id)
        done = await self.stock.find_adjustment(product.id, request_id)
        if done is not None:
            return StockLevel(product.id, done.on_hand, done.reserved, update_time=done.stock_time)
        async with self._stock_turns.hold(product.id):
            for attempt in range(self.cas_attempts):
                level = await self.stock.get(product.id)
                if level.adjusted_by(request_id):
                    # Applied by an earlier attempt that died before it recorded the adjustment
                    # (other adjustments may have come since): record it, apply nothing again.
                    after = level
                    before = replace(level, on_hand=level.on_hand - (delta or 0))
                    break
                target = on_hand if on_hand is not None else level.on_hand + (delta or 0)
                if target < level.reserved:
                    raise errors.FailedPrecondition(
                        f"{level.reserved} units are reserved; on hand cannot go to {target}"
                    )
                after = replace(
                    level,
                    on_hand=target,
                    update_time=self.clock.now(),
                    last_adjustment=request_id,
                    recent_adjustments=level.remembering(request_id, self.clock.now()),
                    version=level.version + 1,
                )
                if await self.stock.compare_and_set(after, level.version):
                    self._stock_written[product.id] = after
                    before = level
                    break
                self._stock_written.pop(product.id, None)
                await self._backoff(attempt)
            else:
                raise errors.Aborted("the stock changed concurrently too often; retry")
        now = self.clock.now()
        adjustment = StockAdjustment(
            id=domain.new_id(),
            product_id=product.id,
            delta=after.on_hand - before.on_hand,
            on_hand=after.on_hand,
            reason=reason,  # type: ignore[arg-type]
            user_id=caller.user_id,
            request_id=request_id,
            create_time=now,
            note=note,
            reserved=after.reserved,
            stock_time=after.update_time,
        )
        stock = mapping.stock_to_proto(after)
        self._note_low_stock(before.available, after)
        events = [
            catalog_events_pb2.StockAdjusted(
                adjustment=mapping.adjustment_to_proto(adjustment), stock=stock
            ),
            catalog_events_pb2.StockLevelChanged(
                stock=stock, previous_available_quantity=before.available
            ),
        ]
        await self.stock.record_adjustment(adjustment, events)
        return after

    async def list_stock_adjustments(
        self, product_id: str, *, page_size: int = 0, page_token: str = ""
    ) -> Page:
        size = paging.page_size(page_size, default=DEFAULT_PAGE, maximum=MAX_PAGE)
        product = await self._editable(product_id)
        return _page(
            await self.stock.adjustments(product.id),
            lambda a: [-_micros(a.create_time), a.id],
            size,
            page_token,
            {"product": product.id},
        )

    @staticmethod
    async def _backoff(attempt: int) -> None:
        await retry.contention_pause(attempt)

    # --- reservations -----------------------------------------------------------------------

    async def reserve_stock(
        self, order_id: str, lines: Sequence[Line], ttl: timedelta | None = None
    ) -> Reservation:
        """All lines or none, idempotent per order id; callable from gRPC and consumers."""
        order_id = order_id.strip()
        violations = Violations()
        if not order_id:
            violations.add("order_id", "is required")
        elif len(order_id) > ORDER_ID_MAX:
            violations.add("order_id", f"must be at most {ORDER_ID_MAX} characters")
        if not lines:
            violations.add("lines", "must have at least one line")
        seen: set[str] = set()
        for i, line in enumerate(lines):
            if not line.product_id:
                violations.add(f"lines[{i}].product_id", "is required")
            elif not domain.is_uuid(line.product_id):
                violations.add(f"lines[{i}].product_id", "must be a product id")
            elif line.product_id in seen:
                violations.add(f"lines[{i}].product_id", "is listed twice")
            seen.add(line.product_id)
            if line.quantity < 1:
                violations.add(f"lines[{i}].quantity", "must be at least 1")
        if ttl is not None and not TTL_MIN <= ttl <= TTL_MAX:
            violations.add("ttl", "must be from 1 minute to 24 hours")
        violations.raise_if_any()
        now = self.clock.now()
        reservation = Reservation(
            order_id=order_id,
            state=ReservationState.PENDING,
            lines=tuple(lines),
            create_time=now,
            update_time=now,
            expire_time=now + (ttl or self.reservation_ttl),
        )
        existing = await self.reservations.claim(reservation)
        if existing is not None:
            if not existing.same_lines(reservation.lines):
                raise errors.AlreadyExists(
                    f"order {order_id} already has a reservation with other lines"
                )
            if existing.state is not ReservationState.PENDING:
                return self._outcome(existing)
            reservation = existing  # an attempt that did not finish: resume it
        return await self._make(reservation)

    async def refuse_reservation(self, order_id: str, lines: Sequence[Line]) -> None:
        """Announces StockReservationFailed for an order whose reservation cannot be made (its
        lines are invalid, or it already has a reservation with other lines), so that the order
        is cancelled instead of waiting forever. Every line is reported short of all of it."""
        event = catalog_events_pb2.StockReservationFailed(
            order_id=order_id,
            shortages=[
                mapping.shortage_to_proto(Shortage(line.product_id, line.quantity, 0))
                for line in lines
            ],
        )
        await self.reservations.refuse(order_id, [event])

    @staticmethod
    def _outcome(reservation: Reservation) -> Reservation:
        if reservation.state is ReservationState.FAILED:
            raise InsufficientStock(reservation.shortages)
        return reservation

    async def _shortages(self, reservation: Reservation) -> list[Shortage]:
        products = await self.products.get_many([line.product_id for line in reservation.lines])
        short = []
        for line in reservation.lines:
            product = products.get(line.product_id)
            level = await self.stock.get(line.product_id) if product else None
            if level is not None and reservation.order_id in level.holds:
                continue
            on_sale = product is not None and product.state is ProductState.ACTIVE
            available = level.available if on_sale and level is not None else 0
            if available < line.quantity:
                short.append(Shortage(line.product_id, line.quantity, available))
        return short

    async def _make(self, reservation: Reservation) -> Reservation:
        short = await self._shortages(reservation)
        if short:
            return await self._fail(reservation, short)
        changes: list[tuple[int, StockLevel]] = []
        for line in reservation.lines:
            outcome = await self._hold(reservation.order_id, line)
            if isinstance(outcome, Shortage):
                # Another order took the units between the check and the hold. The outcome is
                # decided (PENDING -> FAILED) before anything is given back, so a concurrent
                # retry of this order cannot finish ACTIVE on holds that are being removed.
                return await self._fail(
                    reservation, await self._shortages(reservation) or [outcome]
                )
            if outcome is CONTENDED:
                if await self.reservations.delete_pending(reservation.order_id):
                    await self._give_back(reservation)
                    raise errors.Aborted(
                        f"concurrent reservations of {line.product_id} won the race; retry"
                    )
                current = await self.reservations.get(reservation.order_id)
                if current is None:
                    raise errors.Aborted("the reservation was abandoned concurrently; retry")
                return self._outcome(current)
            if outcome is not None:
                changes.append(outcome)
        active = replace(reservation, state=ReservationState.ACTIVE, update_time=self.clock.now())
        if not await self.reservations.transition(active, ReservationState.PENDING):
            current = await self.reservations.get(reservation.order_id)
            if current is None or current.state in (
                ReservationState.FAILED,
                ReservationState.RELEASED,
            ):
                # A concurrent attempt failed or the sweeper gave up on it: hold nothing.
                await self._give_back(reservation)
            if current is None:
                raise errors.Aborted("the reservation was abandoned concurrently; retry")
            return self._outcome(current)
        events: list[Any] = [
            catalog_events_pb2.StockReserved(
                order_id=active.order_id,
                lines=[mapping.line_to_proto(line) for line in active.lines],
                expire_time=timestamp(active.expire_time),
            ),
            *self._level_events(changes),
        ]
        await self.reservations.announce(replace(active, announced=True), events)
        return active

    async def _fail(self, reservation: Reservation, short: list[Shortage]) -> Reservation:
        failed = replace(
            reservation,
            state=ReservationState.FAILED,
            shortages=tuple(short),
            update_time=self.clock.now(),
        )
        if not await self.reservations.transition(failed, ReservationState.PENDING):
            current = await self.reservations.get(reservation.order_id)
            if current is None:
                raise errors.Aborted("the reservation was abandoned concurrently; retry")
            return self._outcome(current)
        await self._give_back(reservation)
        event = catalog_events_pb2.StockReservationFailed(
            order_id=failed.order_id,
            shortages=[mapping.shortage_to_proto(s) for s in short],
        )
        await self.reservations.announce(replace(failed, announced=True), [event])
        raise InsufficientStock(short)

    async def _hold(self, order_id: str, line: Line) -> tuple[int, StockLevel] | Shortage | Any:
        """Holds a line's units: (previous available, new level), None if already held,
        a Shortage, or CONTENDED when the retries ran out."""

        def hold(level: StockLevel) -> StockLevel | Shortage | None:
            if order_id in level.holds:
                return None
            if level.available < line.quantity:
                return Shortage(line.product_id, line.quantity, level.available)
            return replace(
                level,
                reserved=level.reserved + line.quantity,
                holds={**level.holds, order_id: line.quantity},
                version=level.version + 1,
                update_time=self.clock.now(),
            )

        return await self._change_stock(line.product_id, hold, self.cas_attempts)

    async def _unhold(
        self, order_id: str, product_id: str, *, commit: bool
    ) -> tuple[int, StockLevel] | None:
        """Drops an order's hold on a product (and, committing, its units on hand); None if
        it held nothing there. Retried far longer than a hold: giving back must not be skipped."""

        def unhold(level: StockLevel) -> StockLevel | None:
            quantity = level.holds.get(order_id)
            if quantity is None:
                return None
            return replace(
                level,
                reserved=max(0, level.reserved - quantity),
                on_hand=level.on_hand - quantity if commit else level.on_hand,
                holds={k: v for k, v in level.holds.items() if k != order_id},
                version=level.version + 1,
                update_time=self.clock.now(),
            )

        outcome = await self._change_stock(product_id, unhold, self.cas_attempts * 5)
        if outcome is CONTENDED:
            raise errors.Aborted(f"the stock of {product_id} is too contended; retry")
        return outcome

    async def _change_stock(
        self, product_id: str, change: Callable[[StockLevel], Any], attempts: int
    ) -> tuple[int, StockLevel] | Any:
        """Writes `change(level)` by compare-and-set until it sticks: (previous available, new
        level) once written; whatever else `change` returns (nothing to write) as it is; CONTENDED
        after `attempts` lost races.

        This process's tasks take turns at a product, and the level it last wrote there is the
        first guess, so a best seller's hold costs one conditional write and no read. A guess
        can only be wrong about the version, which the compare-and-set catches; an answer that
        writes nothing is only given on a level read from the store."""
        async with self._stock_turns.hold(product_id):
            level = self._stock_written.get(product_id)
            fresh = level is None
            if level is None:
                level = await self.stock.get(product_id)
            for attempt in range(attempts):
                new = change(level)
                if isinstance(new, StockLevel):
                    if await self.stock.compare_and_set(new, level.version):
                        self._stock_written[product_id] = new
                        return (level.available, new)
                    self._stock_written.pop(product_id, None)
                    if fresh:
                        await self._backoff(attempt)
                elif fresh:
                    return new
                level, fresh = await self.stock.get(product_id), True
            return CONTENDED

    async def _give_back(self, reservation: Reservation, *, commit: bool = False) -> list:
        changes = []
        for line in reservation.lines:
            change = await self._unhold(reservation.order_id, line.product_id, commit=commit)
            if change is not None:
                changes.append(change)
        return changes

    def _level_events(self, changes: Sequence[tuple[int, StockLevel]]) -> list[Any]:
        for previous, level in changes:
            self._note_low_stock(previous, level)
        return [
            catalog_events_pb2.StockLevelChanged(
                stock=mapping.stock_to_proto(level), previous_available_quantity=previous
            )
            for previous, level in changes
        ]

    async def get_reservation(self, order_id: str) -> Reservation:
        reservation = await self.reservations.get(order_id.strip()) if order_id.strip() else None
        if reservation is None:
            raise errors.NotFound(f"order {order_id!r} has no reservation")
        return reservation

    async def list_reservations(
        self,
        *,
        page_size: int = 0,
        page_token: str = "",
        state: ReservationState | None = None,
        product_id: str = "",
    ) -> Page:
        size = paging.page_size(page_size, default=DEFAULT_PAGE, maximum=MAX_PAGE)
        states = [state] if state else list(ReservationState)
        if state is ReservationState.ACTIVE:
            states.append(ReservationState.PENDING)
        found = await self.reservations.in_states(states)
        product_id = product_id.strip()
        if product_id:
            found = [r for r in found if any(x.product_id == product_id for x in r.lines)]
        return _page(
            found,
            lambda r: [-_micros(r.create_time), r.order_id],
            size,
            page_token,
            {"state": state.value if state else "", "product": product_id},
        )

    async def release_reservation(
        self, order_id: str, reason: ReleaseReason = ReleaseReason.ADMIN_REQUESTED
    ) -> Reservation:
        """Gives the units back, exactly once; callable from gRPC, consumers and the sweeper."""
        current = await self.get_reservation(order_id)
        if current.state in (ReservationState.RELEASED, ReservationState.FAILED):
            return current
        if current.state is ReservationState.COMMITTED:
            raise errors.FailedPrecondition("the reservation is committed")
        if current.state is ReservationState.PENDING:
            raise errors.Aborted("the reservation is still being made; retry")
        released = replace(
            current,
            state=ReservationState.RELEASED,
            release_reason=reason,
            update_time=self.clock.now(),
            announced=False,
        )
        if not await self.reservations.transition(released, ReservationState.ACTIVE):
            return await self.release_reservation(order_id, reason)
        return await self._finish(released)

    async def commit_reservation(self, order_id: str) -> Reservation:
        current = await self.get_reservation(order_id)
        if current.state is ReservationState.COMMITTED:
            return current
        if current.state is ReservationState.PENDING:
            raise errors.Aborted("the reservation is still being made; retry")
        if current.state is not ReservationState.ACTIVE:
            raise errors.FailedPrecondition(f"the reservation is {current.state.value}")
        if current.expire_time and current.expire_time <= self.clock.now():
            raise errors.FailedPrecondition("the reservation has expired")
        committed = replace(
            current,
            state=ReservationState.COMMITTED,
            update_time=self.clock.now(),
            announced=False,
        )
        if not await self.reservations.transition(committed, ReservationState.ACTIVE):
            return await self.commit_reservation(order_id)
        return await self._finish(committed)

    async def _finish(self, reservation: Reservation) -> Reservation:
        """The stock side and the events of a decided transition; safe to repeat."""
        lines = [mapping.line_to_proto(line) for line in reservation.lines]
        if reservation.state is ReservationState.COMMITTED:
            changes = await self._give_back(reservation, commit=True)
            events: list[Any] = [
                catalog_events_pb2.StockCommitted(order_id=reservation.order_id, lines=lines)
            ]
        elif reservation.state is ReservationState.RELEASED:
            changes = await self._give_back(reservation)
            events = [
                catalog_events_pb2.StockReleased(
                    order_id=reservation.order_id,
                    lines=lines,
                    reason=mapping.release_reason_to_proto(reservation.release_reason),
                )
            ]
        elif reservation.state is ReservationState.FAILED:
            changes = await self._give_back(reservation)
            events = [
                catalog_events_pb2.StockReservationFailed(
                    order_id=reservation.order_id,
                    shortages=[mapping.shortage_to_proto(s) for s in reservation.shortages],
                )
            ]
        else:  # ACTIVE: the holds are in place; only the announcement is missing
            changes = []
            events = [
                catalog_events_pb2.StockReserved(
                    order_id=reservation.order_id,
                    lines=lines,
                    expire_time=timestamp(reservation.expire_time),
                )
            ]
        done = replace(reservation, announced=True)
        await self.reservations.announce(done, [*events, *self._level_events(changes)])
        return done

    async def sweep(self) -> int:
        """One pass of the sweeper: expire, take over abandoned work. Returns what it did."""
        now = self.clock.now()
        done = 0
        for reservation in await self.reservations.in_states(
            [ReservationState.ACTIVE, ReservationState.PENDING]
        ):
            try:
                if (
                    reservation.state is ReservationState.ACTIVE
                    and reservation.expire_time
                    and reservation.expire_time <= now
                ):
                    await self.release_reservation(reservation.order_id, ReleaseReason.EXPIRED)
                    done += 1
                elif (
                    reservation.state is ReservationState.PENDING
                    and reservation.update_time <= now - self.pending_timeout
                ):
                    # Its writer died mid-way: give back what it held.
                    released = replace(
                        reservation,
                        state=ReservationState.RELEASED,
                        release_reason=ReleaseReason.EXPIRED,
                        update_time=now,
                    )
                    if await self.reservations.transition(released, ReservationState.PENDING):
                        await self._finish(released)
                        done += 1
                elif (
                    reservation.state is ReservationState.ACTIVE
                    and not reservation.announced
                    and reservation.update_time <= now - self.takeover_after
                ):
                    await self._finish(reservation)
                    done += 1
            except errors.DomainError as error:
                log.info("sweeper skipped %s: %s", reservation.order_id, error)
            except Exception:
                # One bad reservation must not stop the others from expiring.
                log.exception("sweeper failed on %s", reservation.order_id)
        for reservation in await self.reservations.unannounced():
            if reservation.state in domain.FINAL_STATES and (
                reservation.update_time <= now - self.takeover_after
            ):
                try:
                    await self._finish(reservation)
                    done += 1
                except Exception:
                    log.exception("sweeper failed to finish %s", reservation.order_id)
        return done

    async def run_sweeper(self, interval_seconds: float) -> None:
        while True:
            try:
                swept = await self.sweep()
                if swept:
                    log.info("reservation sweeper finished %d reservations", swept)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reservation sweep failed")
            await asyncio.sleep(interval_seconds)

    # --- images -----------------------------------------------------------------------------

    async def _image_changed(self, product: Product, images: Sequence[ProductImage]) -> Product:
        ordered = tuple(sorted(images, key=lambda i: (i.position, i.id)))
        updated = self._changed(product, self.clock.now(), images=ordered)
        event = catalog_events_pb2.ProductUpdated(
            product=mapping.product_to_proto(updated), update_mask=field_mask(["images"])
        )
        return await self._store(product, updated, [event])

    async def record_image(self, image: ProductImage) -> ProductImage | None:
        """Adds an image the file service stored (FileUploaded) to the end of its product's
        gallery, refreshes the cached product and publishes ProductUpdated. Idempotent: the
        image id is the file id, so a redelivered event finds it there. None when the product
        is gone or its gallery is full (logged: no retry can change either)."""
        product = await self.products.get(image.product_id)
        if product is None:
            log.warning("image %s for product %s, which does not exist", image.id, image.product_id)
            return None
        existing = next((i for i in product.images if i.id == image.id), None)
        if existing is not None:
            return existing
        if len(product.images) >= domain.IMAGES_PER_PRODUCT:
            log.warning("product %s already has %d images", product.id, len(product.images))
            return None
        image = replace(
            image,
            alt_text=domain.clean_text(image.alt_text)[: domain.ALT_TEXT_MAX],
            position=len(product.images),
        )
        stored = await self.images.add(image)
        await self._image_changed(product, [*product.images, stored])
        return stored

    async def forget_image(self, product_id: str, image_id: str) -> None:
        """Removes an image whose file was deleted (FileDeleted); nothing if it is not there."""
        try:
            product, image = await self._image_of(product_id, image_id)
        except errors.NotFound:
            return
        await self._remove_image(product, image)

    async def image_data(self, caller: Principal | None, product_id: str, image_id: str) -> None:
        """The deprecated GetProductImage: the bytes are served at ProductImage.url now."""
        product = await self.get_product(caller, product_id)
        image_id = _require_id(image_id, "image")
        if not any(i.id == image_id for i in product.images):
            raise errors.NotFound(f"image {image_id} of product {product.id} does not exist")
        raise errors.FailedPrecondition(
            "image bytes are served at ProductImage.url, not by the catalog",
            reason="IMAGE_BYTES_MOVED",
        )

    async def _image_of(self, product_id: str, image_id: str) -> tuple[Product, ProductImage]:
        product = await self._editable(product_id)
        image_id = _require_id(image_id, "image")
        image = next((i for i in product.images if i.id == image_id), None)
        if image is None:
            raise errors.NotFound(f"image {image_id} of product {product.id} does not exist")
        return product, image

    async def update_image(
        self,
        product_id: str,
        image_id: str,
        *,
        alt_text: str,
        position: int,
        mask: Sequence[str],
    ) -> ProductImage:
        present = [
            name for name, value in (("alt_text", alt_text), ("position", position)) if value
        ]
        fields = _check_mask(mask, ("alt_text", "position"), present)
        product, image = await self._image_of(product_id, image_id)
        violations = Violations()
        alt_text = domain.clean_text(alt_text)
        if "alt_text" in fields and len(alt_text) > domain.ALT_TEXT_MAX:
            violations.add("image.alt_text", "must be at most 500 characters")
        if "position" in fields and position < 0:
            violations.add("image.position", "must not be negative")
        violations.raise_if_any()
        others = [i for i in product.images if i.id != image.id]
        changed = replace(image, alt_text=alt_text) if "alt_text" in fields else image
        target = min(position, len(others)) if "position" in fields else image.position
        gallery = [*others[:target], changed, *others[target:]]
        # Positions stay contiguous: the others shift around the moved image.
        renumbered = [replace(img, position=n) for n, img in enumerate(gallery)]
        await self.images.save(renumbered)
        await self._image_changed(product, renumbered)
        return renumbered[target]

    async def delete_image(self, product_id: str, image_id: str) -> None:
        product, image = await self._image_of(product_id, image_id)
        await self._remove_image(product, image)

    async def _remove_image(self, product: Product, image: ProductImage) -> None:
        await self.images.delete(image)
        rest = [
            replace(img, position=n)
            for n, img in enumerate(i for i in product.images if i.id != image.id)
        ]
        await self.images.save(rest)
        await self._image_changed(product, rest)

    # --- reviews ----------------------------------------------------------------------------

    async def _reviewable(self, product_id: str) -> Product:
        product_id = _require_id(product_id, "product")
        product = await self.products.get(product_id)
        if product is None or product.state is ProductState.DRAFT:
            raise errors.NotFound(f"product {product_id} does not exist")
        return product

    async def post_review(self, caller: Principal, product_id: str, wanted: Review) -> Review:
        product = await self._reviewable(product_id)
        violations = Violations()
        review = domain.check_review_fields(violations, wanted, ("rating", "title", "body"))
        violations.raise_if_any()
        now = self.clock.now()
        review = replace(
            review,
            id=domain.new_id(),
            product_id=product.id,
            reviewer_id=caller.user_id,
            create_time=now,
            update_time=now,
        )
        event = catalog_events_pb2.ReviewPosted(
            review_id=review.id,
            product_id=product.id,
            product_title=product.title,
            seller_id=product.seller_id,
            reviewer_id=review.reviewer_id,
            rating=review.rating,
            title=review.title,
            body=review.body,
        )
        stored = await self.reviews.create(review, [event])
        await self._refresh_rating(product.id)
        return stored

    async def _refresh_rating(self, product_id: str) -> None:
        reviews = await self.reviews.of_product(product_id)
        summary = RatingSummary.of(product_id, [r.rating for r in reviews])
        await self.products.set_rating(product_id, summary.average, summary.count)
        await self._invalidate([product_id])

    async def get_review(self, product_id: str, review_id: str) -> Review:
        product_id = _require_id(product_id, "product")
        review_id = _require_id(review_id, "review")
        review = await self.reviews.get(product_id, review_id)
        if review is None:
            raise errors.NotFound(f"review {review_id} of product {product_id} does not exist")
        return review

    async def list_reviews(
        self,
        product_id: str,
        *,
        page_size: int = 0,
        page_token: str = "",
        rating: int = 0,
        sort: str = "newest",
    ) -> Page:
        size = paging.page_size(page_size, default=DEFAULT_PAGE, maximum=MAX_PAGE)
        if not 0 <= rating <= 5:
            raise InvalidArgument("rating", "must be from 1 to 5, or 0 for every rating")
        product = await self._reviewable(product_id)
        found = await self.reviews.of_product(product.id)
        if rating:
            found = [r for r in found if r.rating == rating]
        keys: dict[str, Callable[[Review], list]] = {
            "newest": lambda r: [-_micros(r.create_time), r.id],
            "rating_descending": lambda r: [-r.rating, -_micros(r.create_time), r.id],
            "rating_ascending": lambda r: [r.rating, -_micros(r.create_time), r.id],
        }
        return _page(
            found,
            keys[sort],
            size,
            page_token,
            {"product": product.id, "rating": rating, "sort": sort},
        )

    async def update_review(
        self,
        caller: Principal,
        product_id: str,
        review_id: str,
        wanted: Review,
        mask: Sequence[str],
        present: Sequence[str],
    ) -> Review:
        fields = _check_mask(mask, ("rating", "title", "body"), present)
        current = await self.get_review(product_id, review_id)
        if current.reviewer_id != caller.user_id:
            raise errors.PermissionDenied("only its author may edit a review")
        violations = Violations()
        merged = replace(current, **{f: getattr(wanted, f) for f in fields})
        merged = domain.check_review_fields(violations, merged, fields)
        violations.raise_if_any()
        updated = replace(merged, update_time=self.clock.now())
        await self.reviews.save(updated)
        await self._refresh_rating(updated.product_id)
        return updated

    async def delete_review(self, caller: Principal, product_id: str, review_id: str) -> None:
        current = await self.get_review(product_id, review_id)
        if current.reviewer_id != caller.user_id and not caller.admin:
            raise errors.PermissionDenied("only its author or an admin may delete a review")
        await self.reviews.delete(current)
        await self._refresh_rating(current.product_id)

    async def rating_summary(self, product_id: str) -> RatingSummary:
        product = await self._reviewable(product_id)
        reviews = await self.reviews.of_product(product.id)
        return RatingSummary.of(product.id, [r.rating for r in reviews])
