"""What the order service's handlers need from the outside world, as Protocols."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from kit.events import Event
from services.order.domain import Address, Money, Order, StatusChange, Transition


@dataclass(frozen=True)
class Product:
    """What the catalog says about a product (its public view)."""

    id: str
    sku: str
    title: str
    price: Money
    active: bool
    weight_grams: int = 0


@dataclass(frozen=True)
class PaymentMethod:
    id: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class Deadline:
    """An order's checkout deadline as its repository indexes it."""

    order_id: str
    at: datetime


# A cursor of a listing (create time in ms and the order id), or None for the first page.
Cursor = dict[str, Any]


class OrderRepository(Protocol):
    """Orders with their status history. Every change is a compare-and-set on `version`."""

    async def claim(
        self, user_id: str, request_id: str, order_id: str, fingerprint: str
    ) -> tuple[str, str]:
        """Claims `request_id` of `user_id` for `order_id` unless claimed already; returns the
        claim's (order id, request fingerprint)."""
        ...

    async def request(self, user_id: str, request_id: str) -> tuple[str, str] | None:
        """The claim of a request id: (order id, fingerprint), or None."""
        ...

    async def insert(self, transition: Transition, events: Sequence[Event]) -> bool:
        """Stores a new order, its first status change and its events; False if it exists."""
        ...

    async def save(
        self, transition: Transition, events: Sequence[Event], expected_version: int
    ) -> bool:
        """Stores the transition and its events if the stored order still has
        `expected_version`; False (nothing stored) if another write won."""
        ...

    async def get(self, order_id: str) -> Order | None: ...

    async def overdue(self, now: datetime, limit: int) -> list[Deadline]:
        """Up to `limit` deadlines that passed by `now` (their orders may have moved on since:
        an order leaving PENDING/CONFIRMED drops its deadline, but a crash can leave one)."""
        ...

    async def settled(self, deadlines: Sequence[Deadline]) -> None:
        """Forgets deadlines returned by `overdue` once their orders were dealt with."""
        ...

    async def history(self, order_id: str) -> list[StatusChange]:
        """The order's status changes, oldest first."""
        ...

    async def list(
        self, user_id: str | None, cursor: Cursor | None, limit: int
    ) -> tuple[list[Order], Cursor | None]:
        """Orders of `user_id` (every user's for None), newest first, after `cursor`; the
        cursor of the next rows, or None at the end. The page may be short."""
        ...


class Catalog(Protocol):
    async def products(self, product_ids: Sequence[str]) -> dict[str, Product | None]:
        """Each product asked for; None for one that does not exist or is a draft.
        Raises kit.errors.Unavailable if the catalog cannot be reached."""
        ...


class Cart(Protocol):
    async def items(self, token: str) -> list[tuple[str, int]]:
        """The (product id, quantity) lines of the cart of the token's user."""
        ...


class Shipping(Protocol):
    async def quote(
        self, destination: Address, items: Sequence[tuple[str, int, int]]
    ) -> dict[str, Money]:
        """Option id -> price for (product id, quantity, weight in grams) items."""
        ...


class Payments(Protocol):
    async def payment_method(self, token: str, payment_method_id: str) -> PaymentMethod | None:
        """The token's user's payment method, or None if it does not exist or is another's."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...
