"""The catalog's Cassandra adapters: products, categories, stock, reservations, reviews.

Tables are in `schema.cql`. Uniqueness (SKU, slug, one review per user and product, one
reservation per order) is a claim row written IF NOT EXISTS; stock rows and reservation states
change only by compare-and-set (LWT). Writes that cause events are LOGGED batches with their
outbox rows (kit.outbox). A conditional write cannot share a batch with the outbox (a batch
with conditions must stay in one partition), so reservation events are written after the
compare-and-set, with `announced = true`; the handlers' sweeper finishes any that a crash left
unannounced.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.message import Message

from kit import errors
from kit.cassandra import CassandraSession, applied
from kit.events import Event
from kit.outbox import CassandraLease, CassandraOutbox, Relay
from services.catalog.domain import (
    REFUSED,
    AdjustReason,
    Category,
    ImageThumbnail,
    Line,
    Money,
    Product,
    ProductImage,
    ProductState,
    ReleaseReason,
    Reservation,
    ReservationState,
    Review,
    Shortage,
    StockAdjustment,
    StockLevel,
    stable_event_id,
)

SOURCE = "catalog"
# A SKU claim whose product row never appeared (its writer died between the two writes) is
# taken over by the next create after this long.
ORPHAN_CLAIM_AFTER = timedelta(seconds=30)

PRODUCT_COLUMNS = (
    "id, sku, title, description, currency_code, price_key, category_ids, attributes, state, "
    "seller_id, weight_grams, rating_average, rating_count, version, publish_time, "
    "ever_published, create_time, update_time, request_id, words"
)
CATEGORY_COLUMNS = (
    "id, name, slug, parent_id, description, position, create_time, update_time, request_id"
)
STOCK_COLUMNS = (
    "product_id, on_hand, reserved, holds, version, update_time, last_adjustment, "
    "recent_adjustments"
)
ADJUSTMENT_COLUMNS = (
    "product_id, create_time, id, delta, on_hand, reserved, reason, note, user_id, request_id, "
    "stock_time"
)
RESERVATION_COLUMNS = (
    "order_id, state, lines, line_order, shortages, release_reason, expire_time, create_time, "
    "update_time, announced"
)
# What a read returns: the row's fields without the search words (derived from the title and
# description, read by no one: a large set on a long description) and with its gallery.
PRODUCT_READ_COLUMNS = PRODUCT_COLUMNS.removesuffix(", words") + ", images"
REVIEW_COLUMNS = (
    "product_id, id, reviewer_id, rating, title, body, verified_purchase, create_time, update_time"
)


def _utc(value: datetime | None) -> datetime | None:
    # The driver returns naive datetimes in UTC.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _uuid(value: str) -> uuid.UUID:
    return uuid.UUID(value)


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _events(messages: Sequence[Message], ids: Sequence[str] | None = None) -> list[Event]:
    return [Event.of(m, SOURCE, id=ids[i] if ids else None) for i, m in enumerate(messages)]


class Statements:
    """Every statement the adapters run, prepared once at start-up."""

    async def prepare(self, session: CassandraSession) -> Statements:
        p = session.prepare
        self.claim_request = await p(
            "INSERT INTO create_requests (kind, request_id, resource_id) VALUES (?, ?, ?) "
            "IF NOT EXISTS"
        )
        self.claim_sku = await p(
            "INSERT INTO products_by_sku (sku, product_id, claim_time) VALUES (?, ?, ?) "
            "IF NOT EXISTS"
        )
        self.take_over_sku = await p(
            "UPDATE products_by_sku SET product_id = ?, claim_time = ? WHERE sku = ? "
            "IF product_id = ?"
        )
        self.release_sku = await p("DELETE FROM products_by_sku WHERE sku = ? IF product_id = ?")
        self.insert_product = await p(
            f"INSERT INTO products ({PRODUCT_COLUMNS}) VALUES ({_marks(20)})"
        )
        self.update_product = await p(
            "UPDATE products SET sku = ?, title = ?, description = ?, currency_code = ?, "
            "price_key = ?, category_ids = ?, attributes = ?, state = ?, seller_id = ?, "
            "weight_grams = ?, version = ?, publish_time = ?, ever_published = ?, "
            "update_time = ?, words = ? WHERE id = ?"
        )
        self.set_rating = await p(
            "UPDATE products SET rating_average = ?, rating_count = ? WHERE id = ?"
        )
        self.select_product = await p(f"SELECT {PRODUCT_READ_COLUMNS} FROM products WHERE id = ?")
        self.select_products = await p(f"SELECT {PRODUCT_READ_COLUMNS} FROM products WHERE id IN ?")
        self.in_category = await p("SELECT id FROM products WHERE category_ids CONTAINS ? LIMIT 1")
        self.claim_slug = await p(
            "INSERT INTO categories_by_slug (slug, category_id) VALUES (?, ?) IF NOT EXISTS"
        )
        self.slug_claim_time = await p(
            "SELECT WRITETIME(category_id) AS written FROM categories_by_slug WHERE slug = ?"
        )
        self.release_slug = await p(
            "DELETE FROM categories_by_slug WHERE slug = ? IF category_id = ?"
        )
        self.insert_category = await p(
            f"INSERT INTO categories ({CATEGORY_COLUMNS}) VALUES ({_marks(9)})"
        )
        self.select_category = await p(f"SELECT {CATEGORY_COLUMNS} FROM categories WHERE id = ?")
        self.all_categories = await p(f"SELECT {CATEGORY_COLUMNS} FROM categories")
        self.delete_category = await p("DELETE FROM categories WHERE id = ?")
        self.select_stock = await p(f"SELECT {STOCK_COLUMNS} FROM stock WHERE product_id = ?")
        self.insert_stock = await p(
            f"INSERT INTO stock ({STOCK_COLUMNS}) VALUES ({_marks(8)}) IF NOT EXISTS"
        )
        self.cas_stock = await p(
            "UPDATE stock SET on_hand = ?, reserved = ?, holds = ?, version = ?, "
            "update_time = ?, last_adjustment = ?, recent_adjustments = ? "
            "WHERE product_id = ? IF version = ?"
        )
        self.insert_adjustment = await p(
            f"INSERT INTO stock_adjustments ({ADJUSTMENT_COLUMNS}) VALUES ({_marks(11)})"
        )
        self.insert_adjustment_request = await p(
            "INSERT INTO stock_adjustments_by_request (product_id, request_id, create_time, id) "
            "VALUES (?, ?, ?, ?)"
        )
        self.adjustment_request = await p(
            "SELECT create_time, id FROM stock_adjustments_by_request "
            "WHERE product_id = ? AND request_id = ?"
        )
        self.select_adjustment = await p(
            f"SELECT {ADJUSTMENT_COLUMNS} FROM stock_adjustments "
            "WHERE product_id = ? AND create_time = ? AND id = ?"
        )
        self.select_adjustments = await p(
            f"SELECT {ADJUSTMENT_COLUMNS} FROM stock_adjustments WHERE product_id = ?"
        )
        self.claim_reservation = await p(
            f"INSERT INTO reservations ({RESERVATION_COLUMNS}) VALUES ({_marks(10)}) IF NOT EXISTS"
        )
        self.select_reservation = await p(
            f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE order_id = ?"
        )
        self.transition_reservation = await p(
            "UPDATE reservations SET state = ?, shortages = ?, release_reason = ?, "
            "update_time = ?, announced = false WHERE order_id = ? IF state = ?"
        )
        self.delete_pending = await p(
            "DELETE FROM reservations WHERE order_id = ? IF state = 'pending'"
        )
        self.mark_announced = await p("UPDATE reservations SET announced = true WHERE order_id = ?")
        self.reservations_in_state = await p(
            f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE state = ?"
        )
        self.unannounced = await p(
            f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE announced = false"
        )
        self.claim_review = await p(
            "INSERT INTO reviews_by_author (product_id, reviewer_id, review_id) VALUES (?, ?, ?) "
            "IF NOT EXISTS"
        )
        self.release_review = await p(
            "DELETE FROM reviews_by_author WHERE product_id = ? AND reviewer_id = ?"
        )
        self.insert_review = await p(f"INSERT INTO reviews ({REVIEW_COLUMNS}) VALUES ({_marks(9)})")
        self.select_review = await p(
            f"SELECT {REVIEW_COLUMNS} FROM reviews WHERE product_id = ? AND id = ?"
        )
        self.product_reviews = await p(f"SELECT {REVIEW_COLUMNS} FROM reviews WHERE product_id = ?")
        self.delete_review = await p("DELETE FROM reviews WHERE product_id = ? AND id = ?")
        self.set_image = await p("UPDATE products SET images[?] = ? WHERE id = ?")
        # Only into a product that exists (sku is never null there): no row of a gallery alone.
        self.add_image = await p(
            "UPDATE products SET images[?] = ? WHERE id = ? IF images[?] = null AND sku != null"
        )
        self.delete_image = await p("DELETE images[?] FROM products WHERE id = ?")
        return self


# --- products ---------------------------------------------------------------------------------


def _product(row: Any) -> Product:
    return Product(
        id=str(row.id),
        sku=row.sku,
        title=row.title,
        description=row.description or "",
        price=Money.of_key(row.currency_code, row.price_key or 0),
        state=ProductState(row.state),
        create_time=_utc(row.create_time),
        update_time=_utc(row.update_time),
        category_ids=tuple(sorted(row.category_ids or ())),
        attributes=dict(row.attributes or {}),
        seller_id=row.seller_id or "",
        weight_grams=row.weight_grams or 0,
        rating_average=row.rating_average or 0.0,
        rating_count=row.rating_count or 0,
        version=row.version or "",
        publish_time=_utc(row.publish_time),
        request_id=row.request_id or "",
        ever_published=bool(row.ever_published),
        images=_gallery(str(row.id), row.images),
    )


class CassandraProductRepository:
    def __init__(self, session: CassandraSession, q: Statements, outbox: CassandraOutbox):
        self.session = session
        self.q = q
        self.outbox = outbox

    async def create(self, product: Product, events: Sequence[Message]) -> Product:
        rows = await self.session.execute(
            self.q.claim_request, ("product", product.request_id, _uuid(product.id))
        )
        if not applied(rows):
            stored = await self.get(str(rows[0].resource_id))
            if stored is not None:
                return stored
            # The first attempt claimed the key and died: finish it under its id.
            product = replace(product, id=str(rows[0].resource_id))
        await self._claim_sku(product.sku, product.id, product.create_time)
        batch = self.session.batch()
        batch.add(self.q.insert_product, self._params(product))
        await self.outbox.write(batch, _events(events), key=product.id)
        return product

    async def _claim_sku(self, sku: str, product_id: str, now: datetime) -> None:
        rows = await self.session.execute(self.q.claim_sku, (sku, _uuid(product_id), now))
        if applied(rows) or str(rows[0].product_id) == product_id:
            return
        holder = await self.get(str(rows[0].product_id))
        if holder is not None and holder.sku == sku:
            raise errors.AlreadyExists(f"another product has the SKU {sku}")
        if holder is None and _utc(rows[0].claim_time) > now - ORPHAN_CLAIM_AFTER:
            # A create in flight: its product row is not written yet.
            raise errors.AlreadyExists(f"another product has the SKU {sku}")
        # An orphan claim (its writer died, or the holder changed its SKU): take it over.
        taken = await self.session.execute(
            self.q.take_over_sku, (_uuid(product_id), now, sku, rows[0].product_id)
        )
        if not applied(taken):
            raise errors.AlreadyExists(f"another product has the SKU {sku}")

    @staticmethod
    def _params(p: Product) -> tuple[Any, ...]:
        return (
            _uuid(p.id),
            p.sku,
            p.title,
            p.description,
            p.price.currency_code,
            p.price.key,
            set(p.category_ids),
            dict(p.attributes),
            p.state.value,
            p.seller_id,
            p.weight_grams,
            p.rating_average,
            p.rating_count,
            p.version,
            p.publish_time,
            p.ever_published,
            p.create_time,
            p.update_time,
            p.request_id,
            set(p.words),
        )

    async def get(self, product_id: str) -> Product | None:
        rows = await self.session.execute(self.q.select_product, (_uuid(product_id),))
        return _product(rows[0]) if rows else None

    async def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]:
        ids = list(dict.fromkeys(_uuid(i) for i in product_ids))
        if not ids:
            return {}
        if len(ids) == 1:  # one partition: no IN for the coordinator to split
            rows = await self.session.execute(self.q.select_product, (ids[0],))
        else:
            rows = await self.session.execute(self.q.select_products, (ids,))
        return {str(r.id): _product(r) for r in rows}

    async def save(self, product: Product, events: Sequence[Message], *, old_sku: str = "") -> None:
        if old_sku:
            await self._claim_sku(product.sku, product.id, product.update_time)
        batch = self.session.batch()
        batch.add(
            self.q.update_product,
            (
                product.sku,
                product.title,
                product.description,
                product.price.currency_code,
                product.price.key,
                set(product.category_ids),
                dict(product.attributes),
                product.state.value,
                product.seller_id,
                product.weight_grams,
                product.version,
                product.publish_time,
                product.ever_published,
                product.update_time,
                set(product.words),
                _uuid(product.id),
            ),
        )
        await self.outbox.write(batch, _events(events), key=product.id)
        if old_sku:
            await self.session.execute(self.q.release_sku, (old_sku, _uuid(product.id)))

    async def set_rating(self, product_id: str, average: float, count: int) -> None:
        await self.session.execute(self.q.set_rating, (average, count, _uuid(product_id)))

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
        # Every restriction is on a storage-attached index, so no ALLOW FILTERING is needed;
        # the statement is built from fixed fragments and bound values only.
        where, params = [], []
        if state is not None:
            where.append("state = ?")
            params.append(state.value)
        if category_id:
            where.append("category_ids CONTAINS ?")
            params.append(category_id)
        if min_price_key is not None:
            where.append("price_key >= ?")
            params.append(min_price_key)
        if max_price_key is not None:
            where.append("price_key <= ?")
            params.append(max_price_key)
        if seller_id:
            where.append("seller_id = ?")
            params.append(seller_id)
        for word in words:
            where.append("words CONTAINS ?")
            params.append(word)
        cql = f"SELECT {PRODUCT_READ_COLUMNS} FROM products"
        if where:
            cql += " WHERE " + " AND ".join(where)
        statement = await self.session.prepare(cql)
        return [_product(r) for r in await self.session.execute(statement, params)]

    async def in_category(self, category_id: str) -> bool:
        return bool(await self.session.execute(self.q.in_category, (category_id,)))


# --- categories -------------------------------------------------------------------------------


def _category(row: Any) -> Category:
    return Category(
        id=str(row.id),
        name=row.name,
        slug=row.slug,
        create_time=_utc(row.create_time),
        update_time=_utc(row.update_time),
        parent_id=row.parent_id or "",
        description=row.description or "",
        position=row.position or 0,
        request_id=row.request_id or "",
    )


class CassandraCategoryRepository:
    def __init__(self, session: CassandraSession, q: Statements):
        self.session = session
        self.q = q

    async def create(self, category: Category) -> Category:
        if category.request_id:
            rows = await self.session.execute(
                self.q.claim_request, ("category", category.request_id, _uuid(category.id))
            )
            if not applied(rows):
                stored = await self.get(str(rows[0].resource_id))
                if stored is not None:
                    return stored
                category = replace(category, id=str(rows[0].resource_id))
        await self._claim_slug(category.slug, category.id)
        await self.session.execute(self.q.insert_category, self._params(category))
        return category

    async def _claim_slug(self, slug: str, category_id: str) -> None:
        rows = await self.session.execute(self.q.claim_slug, (slug, _uuid(category_id)))
        if applied(rows) or str(rows[0].category_id) == category_id:
            return
        holder = await self.get(str(rows[0].category_id))
        if holder is not None and holder.slug == slug:
            raise errors.AlreadyExists(f"another category has the slug {slug}")
        claimed = await self.session.execute(self.q.slug_claim_time, (slug,))
        if (
            holder is None
            and claimed
            and claimed[0].written / 1e6 > (datetime.now(UTC) - ORPHAN_CLAIM_AFTER).timestamp()
        ):
            # A create in flight: its category row is not written yet.
            raise errors.AlreadyExists(f"another category has the slug {slug}")
        await self.session.execute(self.q.release_slug, (slug, rows[0].category_id))
        rows = await self.session.execute(self.q.claim_slug, (slug, _uuid(category_id)))
        if not applied(rows):
            raise errors.AlreadyExists(f"another category has the slug {slug}")

    @staticmethod
    def _params(c: Category) -> tuple[Any, ...]:
        return (
            _uuid(c.id),
            c.name,
            c.slug,
            c.parent_id,
            c.description,
            c.position,
            c.create_time,
            c.update_time,
            c.request_id,
        )

    async def get(self, category_id: str) -> Category | None:
        rows = await self.session.execute(self.q.select_category, (_uuid(category_id),))
        return _category(rows[0]) if rows else None

    async def all(self) -> list[Category]:
        return [_category(r) for r in await self.session.execute(self.q.all_categories)]

    async def save(self, category: Category, *, old_slug: str = "") -> None:
        if old_slug:
            await self._claim_slug(category.slug, category.id)
        await self.session.execute(self.q.insert_category, self._params(category))
        if old_slug:
            await self.session.execute(self.q.release_slug, (old_slug, _uuid(category.id)))

    async def delete(self, category: Category) -> None:
        await self.session.execute(self.q.delete_category, (_uuid(category.id),))
        await self.session.execute(self.q.release_slug, (category.slug, _uuid(category.id)))


# --- stock ------------------------------------------------------------------------------------


def _level(row: Any) -> StockLevel:
    return StockLevel(
        product_id=str(row.product_id),
        on_hand=row.on_hand or 0,
        reserved=row.reserved or 0,
        holds=dict(row.holds or {}),
        version=row.version or 0,
        update_time=_utc(row.update_time),
        last_adjustment=row.last_adjustment or "",
        recent_adjustments={r: _utc(t) for r, t in (row.recent_adjustments or {}).items()},
    )


def _adjustment(row: Any) -> StockAdjustment:
    return StockAdjustment(
        id=str(row.id),
        product_id=str(row.product_id),
        delta=row.delta,
        on_hand=row.on_hand,
        reason=AdjustReason(row.reason),
        user_id=row.user_id or "",
        request_id=row.request_id or "",
        create_time=_utc(row.create_time),
        note=row.note or "",
        reserved=row.reserved or 0,
        stock_time=_utc(row.stock_time),
    )


class CassandraStockRepository:
    def __init__(self, session: CassandraSession, q: Statements, outbox: CassandraOutbox):
        self.session = session
        self.q = q
        self.outbox = outbox

    async def get(self, product_id: str) -> StockLevel:
        # A SERIAL read would see an in-progress Paxos round; a plain quorum read may be one
        # round behind, which only makes the next compare-and-set fail and retry.
        rows = await self.session.execute(self.q.select_stock, (_uuid(product_id),))
        return _level(rows[0]) if rows else StockLevel(product_id)

    async def compare_and_set(self, level: StockLevel, expected_version: int) -> bool:
        version = expected_version + 1
        try:
            if expected_version == 0:
                rows = await self.session.execute(
                    self.q.insert_stock,
                    (
                        _uuid(level.product_id),
                        level.on_hand,
                        level.reserved,
                        dict(level.holds),
                        version,
                        level.update_time,
                        level.last_adjustment,
                        dict(level.recent_adjustments),
                    ),
                )
            else:
                rows = await self.session.execute(
                    self.q.cas_stock,
                    (
                        level.on_hand,
                        level.reserved,
                        dict(level.holds),
                        version,
                        level.update_time,
                        level.last_adjustment,
                        dict(level.recent_adjustments),
                        _uuid(level.product_id),
                        expected_version,
                    ),
                )
        except Exception as error:
            # Paxos contention surfaces as a write timeout: the round may or may not have
            # applied, so re-read; the holds map tells whether it did.
            if type(error).__name__ in {"WriteTimeout", "CASWriteUnknownResult", "Unavailable"}:
                return False
            raise
        return applied(rows)

    async def find_adjustment(self, product_id: str, request_id: str) -> StockAdjustment | None:
        rows = await self.session.execute(
            self.q.adjustment_request, (_uuid(product_id), request_id)
        )
        if not rows:
            return None
        found = await self.session.execute(
            self.q.select_adjustment, (_uuid(product_id), rows[0].create_time, rows[0].id)
        )
        return _adjustment(found[0]) if found else None

    async def record_adjustment(
        self, adjustment: StockAdjustment, events: Sequence[Message]
    ) -> None:
        a = adjustment
        batch = self.session.batch()
        batch.add(
            self.q.insert_adjustment,
            (
                _uuid(a.product_id),
                a.create_time,
                _uuid(a.id),
                a.delta,
                a.on_hand,
                a.reserved,
                a.reason.value,
                a.note,
                a.user_id,
                a.request_id,
                a.stock_time,
            ),
        )
        batch.add(
            self.q.insert_adjustment_request,
            (_uuid(a.product_id), a.request_id, a.create_time, _uuid(a.id)),
        )
        await self.outbox.write(batch, _events(events), key=a.product_id)

    async def adjustments(self, product_id: str) -> list[StockAdjustment]:
        rows = await self.session.execute(self.q.select_adjustments, (_uuid(product_id),))
        return [_adjustment(r) for r in rows]


# --- reservations -----------------------------------------------------------------------------


def _reservation(row: Any) -> Reservation:
    held = dict(row.lines or {})
    order = list(row.line_order or held)
    shortages = tuple(Shortage(p, r, a) for p, r, a in json.loads(row.shortages or "[]"))
    return Reservation(
        order_id=row.order_id,
        state=ReservationState(row.state),
        lines=tuple(Line(p, held[p]) for p in order if p in held),
        create_time=_utc(row.create_time),
        update_time=_utc(row.update_time),
        expire_time=_utc(row.expire_time),
        shortages=shortages,
        release_reason=ReleaseReason(row.release_reason or ""),
        announced=bool(row.announced),
    )


def _shortages_json(reservation: Reservation) -> str:
    return json.dumps([[s.product_id, s.requested, s.available] for s in reservation.shortages])


class CassandraReservationRepository:
    def __init__(self, session: CassandraSession, q: Statements, outbox: CassandraOutbox):
        self.session = session
        self.q = q
        self.outbox = outbox

    async def claim(self, reservation: Reservation) -> Reservation | None:
        r = reservation
        rows = await self.session.execute(
            self.q.claim_reservation,
            (
                r.order_id,
                r.state.value,
                {line.product_id: line.quantity for line in r.lines},
                [line.product_id for line in r.lines],
                _shortages_json(r),
                r.release_reason.value,
                r.expire_time,
                r.create_time,
                r.update_time,
                r.announced,
            ),
        )
        if applied(rows):
            return None
        existing = await self.get(r.order_id)
        if existing is None:  # deleted (an ABORTED attempt) between the two statements
            return await self.claim(reservation)
        return existing

    async def get(self, order_id: str) -> Reservation | None:
        rows = await self.session.execute(self.q.select_reservation, (order_id,))
        return _reservation(rows[0]) if rows else None

    async def transition(self, reservation: Reservation, from_state: ReservationState) -> bool:
        r = reservation
        rows = await self.session.execute(
            self.q.transition_reservation,
            (
                r.state.value,
                _shortages_json(r),
                r.release_reason.value,
                r.update_time,
                r.order_id,
                from_state.value,
            ),
        )
        return applied(rows)

    async def delete_pending(self, order_id: str) -> bool:
        return applied(await self.session.execute(self.q.delete_pending, (order_id,)))

    async def announce(self, reservation: Reservation, events: Sequence[Message]) -> None:
        key = f"{reservation.order_id}/{reservation.state.value}"
        ids = [stable_event_id(key, i, m.DESCRIPTOR.full_name) for i, m in enumerate(events)]
        batch = self.session.batch()
        batch.add(self.q.mark_announced, (reservation.order_id,))
        await self.outbox.write(batch, _events(events, ids), key=reservation.order_id)

    async def refuse(self, order_id: str, events: Sequence[Message]) -> None:
        key = f"{order_id}/{REFUSED}"
        ids = [stable_event_id(key, i, m.DESCRIPTOR.full_name) for i, m in enumerate(events)]
        await self.outbox.write(self.session.batch(), _events(events, ids), key=order_id)

    async def in_states(self, states: Sequence[ReservationState]) -> list[Reservation]:
        found = []
        for state in dict.fromkeys(states):
            rows = await self.session.execute(self.q.reservations_in_state, (state.value,))
            found.extend(_reservation(r) for r in rows)
        return found

    async def unannounced(self) -> list[Reservation]:
        return [_reservation(r) for r in await self.session.execute(self.q.unannounced)]


# --- reviews ----------------------------------------------------------------------------------


def _review(row: Any) -> Review:
    return Review(
        id=str(row.id),
        product_id=str(row.product_id),
        reviewer_id=row.reviewer_id,
        rating=row.rating,
        create_time=_utc(row.create_time),
        update_time=_utc(row.update_time),
        title=row.title or "",
        body=row.body or "",
        verified_purchase=bool(row.verified_purchase),
    )


class CassandraReviewRepository:
    def __init__(self, session: CassandraSession, q: Statements, outbox: CassandraOutbox):
        self.session = session
        self.q = q
        self.outbox = outbox

    async def create(self, review: Review, events: Sequence[Message]) -> Review:
        rows = await self.session.execute(
            self.q.claim_review,
            (_uuid(review.product_id), review.reviewer_id, _uuid(review.id)),
        )
        if not applied(rows):
            if await self.get(review.product_id, str(rows[0].review_id)) is not None:
                raise errors.AlreadyExists("you have already reviewed this product")
            # An orphan claim: its writer died before the review row; replace it.
            await self.session.execute(
                self.q.release_review, (_uuid(review.product_id), review.reviewer_id)
            )
            return await self.create(review, events)
        batch = self.session.batch()
        batch.add(self.q.insert_review, self._params(review))
        await self.outbox.write(batch, _events(events), key=review.product_id)
        return review

    @staticmethod
    def _params(r: Review) -> tuple[Any, ...]:
        return (
            _uuid(r.product_id),
            _uuid(r.id),
            r.reviewer_id,
            r.rating,
            r.title,
            r.body,
            r.verified_purchase,
            r.create_time,
            r.update_time,
        )

    async def get(self, product_id: str, review_id: str) -> Review | None:
        rows = await self.session.execute(
            self.q.select_review, (_uuid(product_id), _uuid(review_id))
        )
        return _review(rows[0]) if rows else None

    async def of_product(self, product_id: str) -> list[Review]:
        rows = await self.session.execute(self.q.product_reviews, (_uuid(product_id),))
        return [_review(r) for r in rows]

    async def save(self, review: Review) -> None:
        await self.session.execute(self.q.insert_review, self._params(review))

    async def delete(self, review: Review) -> None:
        await self.session.execute(
            self.q.delete_review, (_uuid(review.product_id), _uuid(review.id))
        )
        await self.session.execute(
            self.q.release_review, (_uuid(review.product_id), review.reviewer_id)
        )


# --- images -----------------------------------------------------------------------------------


def _image_json(i: ProductImage) -> str:
    return json.dumps(
        {
            "content_type": i.content_type,
            "size_bytes": i.size_bytes,
            "width": i.width,
            "height": i.height,
            "create_time": i.create_time.isoformat(),
            "alt_text": i.alt_text,
            "position": i.position,
            "request_id": i.request_id,
            "url": i.url,
            "thumbnails": [t.__dict__ for t in i.thumbnails],
        },
        separators=(",", ":"),
    )


def _image(product_id: str, image_id: Any, raw: str) -> ProductImage:
    fields = json.loads(raw)
    return ProductImage(
        id=str(image_id),
        product_id=product_id,
        create_time=datetime.fromisoformat(fields.pop("create_time")),
        thumbnails=tuple(ImageThumbnail(**t) for t in fields.pop("thumbnails")),
        **fields,
    )


def _gallery(product_id: str, images: Any) -> tuple[ProductImage, ...]:
    found = [_image(product_id, i, raw) for i, raw in (images or {}).items()]
    return tuple(sorted(found, key=lambda i: (i.position, i.id)))


class CassandraImageRepository:
    """The gallery lives on the product row (`images`: image id -> its metadata as JSON), so a
    product with its images is one read; each entry is written on its own, so changes to two
    images of one product never overwrite each other."""

    def __init__(self, session: CassandraSession, q: Statements):
        self.session = session
        self.q = q

    async def add(self, image: ProductImage) -> ProductImage:
        # Conditional: a redelivered FileUploaded finds the first entry and keeps its position.
        key = _uuid(image.id)
        rows = await self.session.execute(
            self.q.add_image, (key, _image_json(image), _uuid(image.product_id), key)
        )
        if applied(rows):
            return image
        if not getattr(rows[0], "sku", None):
            raise errors.NotFound(f"product {image.product_id} does not exist")
        return _image(image.product_id, key, rows[0].images[key])

    async def save(self, images: Sequence[ProductImage]) -> None:
        for i in images:
            await self.session.execute(
                self.q.set_image, (_uuid(i.id), _image_json(i), _uuid(i.product_id))
            )

    async def delete(self, image: ProductImage) -> None:
        await self.session.execute(self.q.delete_image, (_uuid(image.id), _uuid(image.product_id)))

    async def move_legacy(self) -> int:
        """Moves the rows of the old `product_images` table (one row per image, a second read
        for every product) onto their products' rows and deletes them; returns how many moved.
        Idempotent and resumable: run at every start, it finds nothing once the table is empty
        (services/catalog/README.md says when to drop it)."""
        tables = await self.session.execute(
            "SELECT table_name FROM system_schema.tables "
            "WHERE keyspace_name = %s AND table_name = 'product_images'",
            (self.session.keyspace,),
        )
        if not tables:
            return 0
        moved = 0
        while rows := await self.session.execute("SELECT * FROM product_images LIMIT 500"):
            for row in rows:
                image = ProductImage(
                    id=str(row.id),
                    product_id=str(row.product_id),
                    content_type=row.content_type,
                    size_bytes=row.size_bytes or 0,
                    width=row.width or 0,
                    height=row.height or 0,
                    create_time=_utc(row.create_time),
                    alt_text=row.alt_text or "",
                    position=row.position or 0,
                    request_id=row.request_id or "",
                    url=getattr(row, "url", None) or "",
                    thumbnails=tuple(
                        ImageThumbnail(**t)
                        for t in json.loads(getattr(row, "thumbnails", None) or "[]")
                    ),
                )
                with contextlib.suppress(errors.NotFound):  # its product is gone
                    await self.add(image)
                await self.session.execute(
                    "DELETE FROM product_images WHERE product_id = %s AND id = %s",
                    (row.product_id, row.id),
                )
                moved += 1
        return moved


@dataclass
class Stores:
    """The adapters over one session, and the outbox their writes fill."""

    products: CassandraProductRepository
    categories: CassandraCategoryRepository
    stock: CassandraStockRepository
    reservations: CassandraReservationRepository
    reviews: CassandraReviewRepository
    images: CassandraImageRepository
    outbox: CassandraOutbox
    # One relay publishes at a time, whatever the number of replicas (kit.outbox).
    lease: CassandraLease | None = None

    @property
    def ports(self) -> dict[str, Any]:
        return {
            "products": self.products,
            "categories": self.categories,
            "stock": self.stock,
            "reservations": self.reservations,
            "reviews": self.reviews,
            "images": self.images,
        }

    def relay(self, bus: Any) -> Relay:
        return Relay(self.outbox, bus, lease=self.lease)


async def build(session: CassandraSession) -> Stores:
    outbox = await CassandraOutbox.open(session, create_table=True)
    q = await Statements().prepare(session)
    return Stores(
        products=CassandraProductRepository(session, q, outbox),
        categories=CassandraCategoryRepository(session, q),
        stock=CassandraStockRepository(session, q, outbox),
        reservations=CassandraReservationRepository(session, q, outbox),
        reviews=CassandraReviewRepository(session, q, outbox),
        images=CassandraImageRepository(session, q),
        outbox=outbox,
        lease=await CassandraLease.open(session),
    )
