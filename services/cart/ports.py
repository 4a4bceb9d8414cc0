"""What the cart's handlers need from the outside world, as Protocols."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from google.protobuf.message import Message

from services.cart.domain import Cart, ProductView


@dataclass(frozen=True)
class Change:
    """What one write stores: the new cart and the events it causes, together. A cart of None
    stores only the events (and the idempotency key): the user has no cart to change."""

    cart: Cart | None
    events: Sequence[Message] = ()


# Given the stored cart (None if the user has none), the change to store, or None to store
# nothing; may raise a DomainError, and then nothing is written either.
Mutation = Callable[[Cart | None], Change | None]


class CartRepository(Protocol):
    """One cart per user. Every write is an atomic read-modify-write of that user's cart."""

    async def get(self, user_id: str) -> Cart | None:
        """The stored cart, or None if the user has none (never used, or expired)."""
        ...

    async def update(
        self,
        user_id: str,
        mutation: Mutation,
        *,
        once: str | None = None,
        keep_ttl: bool = False,
    ) -> Cart:
        """Applies `mutation` to the current cart and stores the result and its events
        atomically (the cart and the outbox in one transaction); returns the stored cart (the
        current one, or an empty one, when `mutation` stores nothing).

        Concurrent updates of one cart are serialised: `mutation` is re-run on the newer cart
        when another write won, so two adds of the same product sum. `once` is an idempotency
        key: if an update with the same key was already stored, nothing is applied and the
        current cart is returned. Every write restarts the cart's expiry, except with
        `keep_ttl` (changes the user did not make, such as a catalog price change).
        """
        ...

    async def holders(self, product_id: str) -> list[str]:
        """Ids of the users whose carts may hold the product (may include expired carts)."""
        ...

    async def unindex(self, product_id: str, user_id: str) -> None:
        """Forgets that the user's cart holds the product (their cart expired)."""
        ...


class Catalog(Protocol):
    """The catalog's public view of products (drafts look like missing products)."""

    async def product(self, product_id: str) -> ProductView | None:
        """The product with its available stock; None if it does not exist or is a draft.

        Raises kit.errors.Unavailable if the catalog cannot be reached.
        """
        ...

    async def products(self, product_ids: Iterable[str]) -> dict[str, ProductView | None]:
        """Each product asked for, None for those that do not exist or are drafts."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...
