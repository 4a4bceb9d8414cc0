"""In-memory adapters of the cart's ports, for unit tests.

`InMemoryCartRepository` passes the same contract tests as the Redis adapter
(tests/integration/test_cart_on_redis.py runs one suite over both); `InMemoryCatalog` stands
in for the catalog service.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import replace

from google.protobuf.message import Message

from kit import errors
from kit.events import Event
from kit.outbox import InMemoryOutbox
from services.cart.domain import Cart, Money, ProductState, ProductView
from services.cart.ports import Mutation


class InMemoryCartRepository:
    def __init__(self, *, ttl_seconds: float = 30 * 24 * 3600, source: str = "cart") -> None:
        self.ttl_seconds = ttl_seconds
        self.source = source
        self.carts: dict[str, tuple[Cart, float]] = {}
        self.once: set[str] = set()
        # Every event a write stored, in order, and the outbox a relay would read them from.
        self.events: list[Message] = []
        self.outbox = InMemoryOutbox()
        self.writes = 0
        self._lock = asyncio.Lock()

    async def get(self, user_id: str) -> Cart | None:
        stored = self.carts.get(user_id)
        if stored is None or stored[1] <= time.monotonic():
            self.carts.pop(user_id, None)
            return None
        return stored[0]

    async def update(
        self,
        user_id: str,
        mutation: Mutation,
        *,
        once: str | None = None,
        keep_ttl: bool = False,
    ) -> Cart:
        async with self._lock:
            current = await self.get(user_id)
            if once is not None and once in self.once:
                return current or Cart(user_id=user_id)
            change = mutation(current)
            if change is None:
                return current or Cart(user_id=user_id)
            expires = time.monotonic() + self.ttl_seconds
            if keep_ttl and user_id in self.carts:
                expires = self.carts[user_id][1]
            if change.cart is not None:
                self.carts[user_id] = (change.cart, expires)
            if once is not None:
                self.once.add(once)
            self.events.extend(change.events)
            self.outbox.add([Event.of(m, self.source) for m in change.events])
            self.writes += 1
            if change.events:
                self.outbox.notify()
            return change.cart or current or Cart(user_id=user_id)

    async def unindex(self, product_id: str, user_id: str) -> None:
        return None  # holders() reads the carts themselves

    async def holders(self, product_id: str) -> list[str]:
        return [
            user_id
            for user_id, (cart, _) in self.carts.items()
            if cart.line(product_id) is not None
        ]


class InMemoryCatalog:
    """A catalog in a dict; `down = True` makes every call UNAVAILABLE."""

    def __init__(self) -> None:
        self.views: dict[str, ProductView] = {}
        self.down = False
        self.calls = 0

    def put(
        self,
        product_id: str,
        *,
        price: Money | None = None,
        stock: int = 10,
        state: ProductState = ProductState.ACTIVE,
        title: str | None = None,
        sku: str | None = None,
    ) -> ProductView:
        existing = self.views.get(product_id)
        view = ProductView(
            id=product_id,
            sku=sku or (existing.sku if existing else f"SKU-{product_id[:8]}"),
            title=title or (existing.title if existing else f"Product {product_id[:8]}"),
            price=price or (existing.price if existing else Money("USD", 12_500_000_000)),
            state=state,
            available_quantity=stock,
        )
        self.views[product_id] = view
        return view

    def change(self, product_id: str, **fields: object) -> ProductView:
        self.views[product_id] = replace(self.views[product_id], **fields)
        return self.views[product_id]

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise errors.Unavailable("the catalog cannot be reached", reason="CATALOG_UNAVAILABLE")

    async def product(self, product_id: str) -> ProductView | None:
        self._check()
        view = self.views.get(product_id)
        return None if view is None or view.state is ProductState.DRAFT else view

    async def products(self, product_ids: Iterable[str]) -> dict[str, ProductView | None]:
        self._check()
        return {
            pid: (v if (v := self.views.get(pid)) and v.state is not ProductState.DRAFT else None)
            for pid in product_ids
        }
