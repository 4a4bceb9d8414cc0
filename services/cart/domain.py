"""The cart's rules: lines, quantity limits, one currency, snapshots and flags. No I/O, no protobuf.

A `Cart` is immutable; every change returns a new one (and the events it causes are built by
the handlers). The catalog's view of a product is a `ProductView`; a line keeps a *snapshot*
(title, SKU, image, unit price when added or last refreshed) and the catalog's *last known*
current data (current price, availability), from which the flags are computed.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from kit import errors
from kit.money import Money

MAX_QUANTITY = 99
MAX_LINES = 100
NANOS_PER_UNIT = 1_000_000_000


class ProductState(enum.Enum):
    ACTIVE = "active"
    DRAFT = "draft"
    ARCHIVED = "archived"


@dataclass(frozen=True)
class ProductView:
    """What the catalog says about a product now (public view: drafts are never seen)."""

    id: str
    sku: str
    title: str
    price: Money
    state: ProductState
    available_quantity: int
    image_url: str = ""


class Availability(enum.Enum):
    UNKNOWN = "unknown"
    IN_STOCK = "in_stock"
    INSUFFICIENT_STOCK = "insufficient_stock"
    OUT_OF_STOCK = "out_of_stock"
    DISCONTINUED = "discontinued"


@dataclass(frozen=True)
class Line:
    """One product in a cart: its quantity, its snapshot and the catalog's last known data."""

    product_id: str
    quantity: int
    sku: str
    title: str
    image_url: str
    unit_price: Money
    add_time: datetime
    # Last known from the catalog; None when not known (catalog unreachable).
    current_unit_price: Money | None = None
    available_quantity: int | None = None
    discontinued: bool = False

    @property
    def total(self) -> Money:
        return self.unit_price.times(self.quantity)

    @property
    def price_changed(self) -> bool:
        return self.current_unit_price is not None and self.current_unit_price != self.unit_price

    @property
    def availability(self) -> Availability:
        if self.discontinued:
            return Availability.DISCONTINUED
        if self.available_quantity is None:
            return Availability.UNKNOWN
        if self.available_quantity >= self.quantity:
            return Availability.IN_STOCK
        if self.available_quantity <= 0:
            return Availability.OUT_OF_STOCK
        return Availability.INSUFFICIENT_STOCK

    def seen(self, view: ProductView | None) -> Line:
        """The line with the catalog's current data (None: the product is gone or a draft)."""
        if view is None:
            return replace(self, discontinued=True, available_quantity=0)
        return replace(
            self,
            current_unit_price=view.price,
            available_quantity=max(view.available_quantity, 0),
            discontinued=view.state is not ProductState.ACTIVE,
        )

    def unknown(self) -> Line:
        """The line when the catalog cannot be asked: availability is not known."""
        return replace(self, available_quantity=None, discontinued=False)

    def snapshot_of(self, view: ProductView) -> Line:
        """The line with its snapshot replaced by the catalog's current data."""
        price = view.price if view.price.currency == self.unit_price.currency else self.unit_price
        return replace(
            self.seen(view),
            sku=view.sku,
            title=view.title,
            image_url=view.image_url,
            unit_price=price,
        )


@dataclass(frozen=True)
class Cart:
    """A user's cart: lines oldest first, at most MAX_LINES, all in one currency."""

    user_id: str
    lines: tuple[Line, ...] = ()
    update_time: datetime | None = None

    def line(self, product_id: str) -> Line | None:
        return next((li for li in self.lines if li.product_id == product_id), None)

    def currency(self, shop_currency: str) -> str:
        return self.lines[0].unit_price.currency if self.lines else shop_currency

    def subtotal(self, shop_currency: str) -> Money:
        total = Money(self.currency(shop_currency))
        for line in self.lines:
            total = total.plus(line.total)
        return total

    @property
    def item_count(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def attention_required(self) -> bool:
        return any(
            line.price_changed
            or line.availability
            in (
                Availability.INSUFFICIENT_STOCK,
                Availability.OUT_OF_STOCK,
                Availability.DISCONTINUED,
            )
            for line in self.lines
        )

    def _with_lines(self, lines: Iterable[Line], now: datetime) -> Cart:
        return replace(self, lines=tuple(lines), update_time=now)

    def _replace_line(self, new: Line, now: datetime) -> Cart:
        return self._with_lines(
            (new if li.product_id == new.product_id else li for li in self.lines), now
        )

    # --- changes ------------------------------------------------------------------------------

    def add(self, view: ProductView, quantity: int, shop_currency: str, now: datetime) -> Cart:
        """Adds `quantity` units of the product; raises if the line would break a rule."""
        check_quantity(quantity, "quantity")
        existing = self.line(view.id)
        wanted = quantity + (existing.quantity if existing else 0)
        check_buyable(view, wanted)
        if view.price.currency != self.currency(shop_currency):
            raise errors.FailedPrecondition(
                f"the product is priced in {view.price.currency}, the cart in "
                f"{self.currency(shop_currency)}",
                reason="CURRENCY_MISMATCH",
                metadata={
                    "product_id": view.id,
                    "product_currency": view.price.currency,
                    "cart_currency": self.currency(shop_currency),
                },
            )
        if existing is not None:
            updated = replace(existing, quantity=wanted).snapshot_of(view)
            return self._replace_line(updated, now)
        if len(self.lines) >= MAX_LINES:
            raise errors.ResourceExhausted(
                f"the cart already has {MAX_LINES} lines",
                reason="CART_FULL",
                metadata={"max_lines": str(MAX_LINES)},
            )
        line = Line(
            product_id=view.id,
            quantity=wanted,
            sku=view.sku,
            title=view.title,
            image_url=view.image_url,
            unit_price=view.price,
            add_time=now,
        ).seen(view)
        return self._with_lines((*self.lines, line), now)

    def set_quantity(
        self, product_id: str, quantity: int, view: ProductView | None, now: datetime
    ) -> Cart:
        """Sets a line's quantity (0 removes it). `view` is needed only when the quantity rises:
        then it must be the catalog's current view (None if the product is gone)."""
        line = self.require_line(product_id)
        if quantity == 0:
            return self.remove(product_id, now)
        if quantity > line.quantity:
            if view is None:
                raise errors.FailedPrecondition(
                    "the product can no longer be bought",
                    reason="PRODUCT_UNAVAILABLE",
                    metadata={"product_id": product_id},
                )
            check_buyable(view, quantity)
            return self._replace_line(replace(line, quantity=quantity).seen(view), now)
        return self._replace_line(replace(line, quantity=quantity), now)

    def remove(self, product_id: str, now: datetime) -> Cart:
        self.require_line(product_id)
        return self._with_lines((li for li in self.lines if li.product_id != product_id), now)

    def clear(self, now: datetime) -> Cart:
        return self._with_lines((), now)

    def seen(self, views: Mapping[str, ProductView]) -> Cart:
        """The cart with every line's flags from the catalog's views (no write: same time)."""
        return replace(self, lines=tuple(li.seen(views.get(li.product_id)) for li in self.lines))

    def unknown(self) -> Cart:
        return replace(self, lines=tuple(li.unknown() for li in self.lines))

    def repriced(self, view: ProductView) -> Cart:
        """The catalog changed a product (an event, without stock): the line's current price
        and state are updated, its snapshot and the cart's update time are not."""
        return replace(
            self,
            lines=tuple(
                replace(
                    li,
                    current_unit_price=view.price,
                    discontinued=view.state is not ProductState.ACTIVE,
                )
                if li.product_id == view.id
                else li
                for li in self.lines
            ),
        )

    def refreshed(self, views: Mapping[str, ProductView], now: datetime) -> Cart:
        """Every line's snapshot replaced by the catalog's data; lines asked about but gone
        stay, flagged discontinued; lines added since the views were read stay as they are."""
        lines = []
        for line in self.lines:
            if line.product_id not in views:
                lines.append(line)
                continue
            view = views[line.product_id]
            lines.append(line.seen(None) if view is None else line.snapshot_of(view))
        return self._with_lines(lines, now)

    def check_out(
        self, ordered: Iterable[tuple[str, int]], now: datetime
    ) -> tuple[Cart, list[Line]]:
        """Removes the ordered units; returns the cart and the lines removed (their units)."""
        wanted: dict[str, int] = {}
        for product_id, quantity in ordered:
            wanted[product_id] = wanted.get(product_id, 0) + max(quantity, 0)
        kept: list[Line] = []
        removed: list[Line] = []
        for line in self.lines:
            take = min(wanted.get(line.product_id, 0), line.quantity)
            if take > 0:
                removed.append(replace(line, quantity=take))
            if line.quantity - take > 0:
                kept.append(replace(line, quantity=line.quantity - take))
        return self._with_lines(kept, now), removed

    def require_line(self, product_id: str) -> Line:
        line = self.line(product_id)
        if line is None:
            raise errors.NotFound(
                "the product is not in the cart",
                reason="CART_ITEM_NOT_FOUND",
                metadata={"product_id": product_id},
            )
        return line


def check_quantity(quantity: int, field_name: str) -> None:
    if quantity < 1:
        raise errors.InvalidArgument(field_name, "must be at least 1")


def check_buyable(view: ProductView, quantity: int) -> None:
    """Raises unless `quantity` units of the product may sit in one line."""
    if view.state is ProductState.DRAFT:
        raise product_not_found(view.id)
    if view.state is ProductState.ARCHIVED:
        raise errors.FailedPrecondition(
            "the product is archived and can no longer be bought",
            reason="PRODUCT_ARCHIVED",
            metadata={"product_id": view.id},
        )
    if quantity > MAX_QUANTITY:
        raise errors.FailedPrecondition(
            f"a line holds at most {MAX_QUANTITY} units",
            reason="QUANTITY_LIMIT_EXCEEDED",
            metadata={
                "product_id": view.id,
                "requested": str(quantity),
                "max_quantity": str(MAX_QUANTITY),
            },
        )
    if quantity > view.available_quantity:
        raise errors.FailedPrecondition(
            f"only {max(view.available_quantity, 0)} units are available",
            reason="INSUFFICIENT_STOCK",
            metadata={
                "product_id": view.id,
                "requested": str(quantity),
                "available": str(max(view.available_quantity, 0)),
            },
        )


def product_not_found(product_id: str) -> errors.NotFound:
    return errors.NotFound(
        "the product does not exist",
        reason="PRODUCT_NOT_FOUND",
        metadata={"product_id": product_id},
    )
