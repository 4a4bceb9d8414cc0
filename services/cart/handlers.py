"""The cart service's use cases, over the ports; no gRPC and no storage details here.

Every use case acts on the cart of `user_id`, which the entrypoints take from the caller's
verified token (grpc_api) or from an event (consumers): no request can name another user's cart.

The catalog is asked *before* the atomic write (a network call inside a Redis transaction
would hold it open); the rules that depend on the cart itself (the summed quantity, the line
limit, the currency) are checked inside it, on the cart as it is when the write commits.
Changing calls return the cart with flags recomputed from what the catalog last said; GetCart
asks the catalog about every line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from emporium.cart.v1 import cart_events_pb2

from kit import errors
from services.cart import domain, mapping
from services.cart.domain import Cart, Line, ProductView
from services.cart.ports import CartRepository, Catalog, Change, Clock


@dataclass
class CartHandlers:
    carts: CartRepository
    catalog: Catalog
    clock: Clock
    shop_currency: str = "USD"

    async def _cart(self, user_id: str) -> Cart:
        return await self.carts.get(user_id) or Cart(user_id=user_id)

    async def get_cart(self, user_id: str) -> Cart:
        """The cart with every line checked against the catalog now (not stored)."""
        cart = await self._cart(user_id)
        if not cart.lines:
            return cart
        try:
            views = await self.catalog.products([line.product_id for line in cart.lines])
        except errors.Unavailable:
            return cart.unknown()
        return cart.seen(views)

    async def add_item(self, user_id: str, product_id: str, quantity: int) -> Cart:
        violations = errors.Violations()
        violations.check(bool(product_id.strip()), "product_id", "is required")
        violations.check(quantity >= 1, "quantity", "must be at least 1")
        violations.raise_if_any()
        view = await self.catalog.product(product_id)
        if view is None:
            raise domain.product_not_found(product_id)
        # Fails fast on what does not depend on the cart (archived, above the stock or 99).
        domain.check_buyable(view, quantity)
        now = self.clock.now()

        def add(current: Cart | None) -> Change:
            cart = current or Cart(user_id=user_id)
            return Change(cart.add(view, quantity, self.shop_currency, now))

        return await self.carts.update(user_id, add)

    async def update_item(
        self, user_id: str, product_id: str, quantity: int, mask: Sequence[str] = ()
    ) -> Cart:
        violations = errors.Violations()
        violations.check(bool(product_id.strip()), "product_id", "is required")
        for path in mask:
            violations.check(path == "quantity", "update_mask", f"{path!r} cannot be updated")
        violations.check(quantity >= 0, "item.quantity", "must be 0 or more")
        violations.raise_if_any()
        current = await self._cart(user_id)
        line = current.require_line(product_id)
        # Only a rise needs the catalog (stock, archived); lowering keeps the snapshot as is.
        rises = quantity > line.quantity
        view = await self.catalog.product(product_id) if rises else None
        now = self.clock.now()

        def update(stored: Cart | None) -> Change:
            cart = stored or Cart(user_id=user_id)
            if quantity > cart.require_line(product_id).quantity and not rises:
                # Another write lowered the line meanwhile: this is now an unchecked rise.
                raise errors.Aborted("the cart changed meanwhile; retry", reason="CART_CHANGED")
            return Change(cart.set_quantity(product_id, quantity, view, now))

        return await self.carts.update(user_id, update)

    async def remove_item(self, user_id: str, product_id: str) -> Cart:
        if not product_id.strip():
            raise errors.InvalidArgument("product_id", "is required")
        now = self.clock.now()

        def remove(stored: Cart | None) -> Change:
            return Change((stored or Cart(user_id=user_id)).remove(product_id, now))

        return await self.carts.update(user_id, remove)

    async def clear(self, user_id: str) -> Cart:
        now = self.clock.now()
        # A user who never used the cart (or whose cart expired) gets nothing stored.
        return await self.carts.update(
            user_id, lambda stored: Change(stored.clear(now)) if stored else None
        )

    async def product_changed(self, view: ProductView) -> int:
        """The catalog changed a product: every cart holding it gets the new current price
        and state (flags), without extending its life. Returns how many carts changed."""
        changed = 0
        for user_id in await self.carts.holders(view.id):
            stored = await self.carts.get(user_id)
            if stored is None:
                await self.carts.unindex(view.id, user_id)
                continue

            def reprice(cart: Cart | None) -> Change | None:
                if cart is None or cart.line(view.id) is None:
                    return None
                return Change(cart.repriced(view))

            await self.carts.update(user_id, reprice, keep_ttl=True)
            changed += 1
        return changed

    async def refresh(self, user_id: str) -> Cart:
        """Accepts the catalog's current data into every line (UNAVAILABLE if unreachable)."""
        current = await self._cart(user_id)
        if not current.lines:
            return current
        views = await self.catalog.products([line.product_id for line in current.lines])
        now = self.clock.now()
        return await self.carts.update(
            user_id,
            lambda stored: Change(stored.refreshed(views, now)) if stored else None,
        )

    async def check_out(
        self, user_id: str, order_id: str, ordered: Iterable[tuple[str, int]]
    ) -> Cart:
        """An order was placed from the cart: removes the ordered units and records
        CartCheckedOut, in the same write. Once per order: a second call for the same order
        (a redelivered OrderPlaced) changes nothing and records no second event."""
        ordered = list(ordered)
        now = self.clock.now()

        def check_out(stored: Cart | None) -> Change:
            cart = stored or Cart(user_id=user_id)
            after, removed = cart.check_out(ordered, now)
            event = cart_events_pb2.CartCheckedOut(
                user_id=user_id,
                order_id=order_id,
                items=[mapping.line_to_proto(line) for line in removed],
                subtotal=mapping.money_to_proto(_subtotal(removed, cart, self.shop_currency)),
            )
            # No stored cart (never used, or expired): nothing to empty, but the order still
            # gets its one CartCheckedOut (with no lines) and its once-marker.
            return Change(after if stored is not None else None, (event,))

        return await self.carts.update(user_id, check_out, once=f"checkout:{order_id}")


def _subtotal(lines: Sequence[Line], cart: Cart, shop_currency: str) -> domain.Money:
    return Cart(user_id=cart.user_id, lines=tuple(lines)).subtotal(cart.currency(shop_currency))
