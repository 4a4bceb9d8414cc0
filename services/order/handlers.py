"""The order service's use cases: place, read, list, cancel, watch, and the saga's reactions.

The caller (user id, admin role, bearer token) comes from the verified token in grpc_api, or
the order id from an event in consumers. Every state change is a compare-and-set on the
order's version (`_apply`): two handlers racing on one order cannot both apply; the loser
re-reads and re-decides, and an event that no longer applies is ignored.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import cachetools

from kit import errors, retry
from kit.auth import Principal
from services.order import domain, mapping
from services.order.domain import (
    Address,
    LineItem,
    Money,
    Order,
    State,
    StatusChange,
    Transition,
)
from services.order.ports import Cart, Catalog, Clock, OrderRepository, Payments, Shipping

log = logging.getLogger("emporium.order")

MAX_CAS_RETRIES = 20


@dataclass(frozen=True)
class Item:
    product_id: str
    quantity: int


@dataclass(frozen=True)
class PlaceOrder:
    request_id: str
    items: tuple[Item, ...]
    address: Address | None
    shipping_option_id: str
    payment_method_id: str

    def fingerprint(self) -> str:
        body = json.dumps(
            {
                "items": [(i.product_id, i.quantity) for i in self.items],
                "address": repr(self.address),
                "shipping_option_id": self.shipping_option_id,
                "payment_method_id": self.payment_method_id,
            },
            sort_keys=True,
        )
        return hashlib.sha256(body.encode()).hexdigest()


class Notifier:
    """Hands each change this process stores to the WatchOrder streams of that order, so a
    watch needs no read of its own for it."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Queue[Transition]]] = {}

    def changed(self, transition: Transition) -> None:
        for queue in self._waiters.get(transition.order.id, ()):
            queue.put_nowait(transition)

    def subscribe(self, order_id: str) -> asyncio.Queue[Transition]:
        queue: asyncio.Queue[Transition] = asyncio.Queue()
        self._waiters.setdefault(order_id, set()).add(queue)
        return queue

    def unsubscribe(self, order_id: str, queue: asyncio.Queue[Transition]) -> None:
        waiters = self._waiters.get(order_id)
        if waiters is not None:
            waiters.discard(queue)
            if not waiters:
                del self._waiters[order_id]


class OrderHandlers:
    def __init__(
        self,
        *,
        orders: OrderRepository,
        catalog: Catalog,
        cart: Cart,
        shipping: Shipping,
        payments: Payments,
        clock: Clock,
        shop_currency: str = "USD",
        watch_poll_seconds: float = 5.0,
        checkout_deadline: timedelta = timedelta(minutes=15),
    ) -> None:
        self.orders = orders
        self.catalog = catalog
        self.cart = cart
        self.shipping = shipping
        self.payments = payments
        self.clock = clock
        self.shop_currency = shop_currency
        self.watch_poll_seconds = watch_poll_seconds
        self.checkout_deadline = checkout_deadline
        self.notifier = Notifier()
        # This process's turns at each order, and the order as it last wrote it (see _apply).
        self._turns = retry.KeyedLock()
        self._written: cachetools.LRUCache[str, Order] = cachetools.LRUCache(maxsize=10_000)

    # --- placing ------------------------------------------------------------------------------

    async def place_order(self, caller: Principal, token: str, request: PlaceOrder) -> Order:
        self._validate(request)
        fingerprint = request.fingerprint()
        claimed = await self.orders.request(caller.user_id, request.request_id)
        if claimed is not None:
            existing = await self._existing(claimed, fingerprint)
            if existing is not None:
                return existing
        transition = await self._price(caller, token, request)
        order_id, claimed_fingerprint = await self.orders.claim(
            caller.user_id, request.request_id, transition.order.id, fingerprint
        )
        if claimed_fingerprint != fingerprint:
            raise _reused(request.request_id)
        if order_id != transition.order.id:
            # A concurrent retry claimed the request first: its order is the one.
            existing = await self._existing((order_id, claimed_fingerprint), fingerprint)
            if existing is not None:
                return existing
            # Its writer died between the claim and the order: store ours under its id.
            transition = replace(transition, order=replace(transition.order, id=order_id))
        if await self.orders.insert(transition, mapping.events(transition)):
            self._written[transition.order.id] = transition.order
            self.notifier.changed(transition)
            return transition.order
        stored = await self.orders.get(transition.order.id)
        if stored is None:  # pragma: no cover - insert said it exists
            raise errors.Aborted("the order is being placed; retry", reason="ORDER_IN_FLIGHT")
        return stored

    async def _existing(self, claimed: tuple[str, str], fingerprint: str) -> Order | None:
        order_id, claimed_fingerprint = claimed
        if claimed_fingerprint != fingerprint:
            raise _reused("")
        # The first call may still be writing its order: give it a moment.
        for _ in range(20):
            order = await self.orders.get(order_id)
            if order is not None:
                return order
            await asyncio.sleep(0.1)
        return None

    def _validate(self, request: PlaceOrder) -> None:
        v = errors.Violations()
        v.check(bool(request.request_id.strip()), "request_id", "is required")
        v.check(len(request.request_id) <= 100, "request_id", "must be at most 100 characters")
        if request.address is None:
            v.add("shipping_address", "is required")
        else:
            v.check(
                bool(request.address.region_code.strip()),
                "shipping_address.region_code",
                "is required",
            )
            v.check(
                any(line.strip() for line in request.address.address_lines),
                "shipping_address.address_lines",
                "needs at least one line",
            )
        v.check(bool(request.shipping_option_id.strip()), "shipping_option_id", "is required")
        v.check(bool(request.payment_method_id.strip()), "payment_method_id", "is required")
        v.check(len(request.items) <= domain.MAX_LINES, "items", f"at most {domain.MAX_LINES}")
        for index, item in enumerate(request.items):
            v.check(bool(item.product_id.strip()), f"items[{index}].product_id", "is required")
            v.check(
                1 <= item.quantity <= domain.MAX_QUANTITY,
                f"items[{index}].quantity",
                f"must be between 1 and {domain.MAX_QUANTITY}",
            )
        v.raise_if_any()

    async def _price(self, caller: Principal, token: str, request: PlaceOrder) -> Transition:
        from_cart = not request.items
        if from_cart:
            cart_items = await self.cart.items(token)
            if not cart_items:
                raise errors.FailedPrecondition(
                    "the cart is empty: add items or pass them in the request",
                    reason="CART_EMPTY",
                )
            items = [Item(pid, qty) for pid, qty in cart_items]
            field_of = {item.product_id: "items" for item in items}
        else:
            items = list(request.items)
            field_of = {}
            for index, item in enumerate(items):
                field_of.setdefault(item.product_id, f"items[{index}].product_id")
        # One line per product: quantities of a product named twice add up.
        merged: dict[str, int] = {}
        for item in items:
            merged[item.product_id] = merged.get(item.product_id, 0) + item.quantity
        products = await self.catalog.products(list(merged))
        v = errors.Violations()
        for product_id in merged:
            if products.get(product_id) is None:
                v.add(field_of[product_id], f"product {product_id} does not exist")
        v.raise_if_any()
        lines = []
        for product_id, quantity in merged.items():
            product = products[product_id]
            assert product is not None
            if not product.active:
                raise errors.FailedPrecondition(
                    f"product {product_id} is not on sale",
                    reason="PRODUCT_NOT_ON_SALE",
                    metadata={"product_id": product_id},
                )
            if product.price.currency != self.shop_currency:
                raise errors.FailedPrecondition(
                    f"product {product_id} is priced in {product.price.currency}",
                    reason="CURRENCY_MISMATCH",
                )
            lines.append(LineItem(product_id, product.sku, product.title, quantity, product.price))
        assert request.address is not None
        quote_items = [(p, q, products[p].weight_grams) for p, q in merged.items()]  # type: ignore[union-attr]
        quotes, method = await asyncio.gather(
            self.shipping.quote(request.address, quote_items),
            self.payments.payment_method(token, request.payment_method_id),
        )
        price = quotes.get(request.shipping_option_id)
        if price is None:
            v.add("shipping_option_id", "is not a shipping option to this address for these items")
        now = self.clock.now()
        if method is None:
            v.add("payment_method_id", "is not one of your payment methods")
        elif (method.exp_year, method.exp_month) < (now.year, now.month):
            v.add("payment_method_id", "the card has expired")
        v.raise_if_any()
        assert price is not None
        if price.currency != self.shop_currency:
            raise errors.FailedPrecondition(
                f"shipping is priced in {price.currency}", reason="CURRENCY_MISMATCH"
            )
        return domain.place(
            order_id=str(uuid.uuid4()),
            user_id=caller.user_id,
            request_id=request.request_id,
            lines=tuple(lines),
            address=request.address,
            shipping_option_id=request.shipping_option_id,
            payment_method_id=request.payment_method_id,
            shipping_cost=price,
            from_cart=from_cart,
            now=now,
            deadline=now + self.checkout_deadline,
        )

    # --- reading ------------------------------------------------------------------------------

    async def get_order(self, caller: Principal, order_id: str) -> Order:
        order = await self._visible(caller, order_id)
        return order

    async def _visible(self, caller: Principal, order_id: str) -> Order:
        if not order_id.strip():
            raise errors.InvalidArgument("id", "is required")
        order = await self.orders.get(order_id)
        if order is None or (order.user_id != caller.user_id and not caller.admin):
            raise errors.NotFound(f"order {order_id} does not exist", reason="ORDER_NOT_FOUND")
        return order

    async def list_orders(
        self,
        caller: Principal,
        *,
        user_id: str,
        state: State | None,
        cursor: dict | None,
        limit: int,
    ) -> tuple[list[Order], dict | None]:
        owner: str | None = caller.user_id
        if user_id and user_id != caller.user_id:
            if not caller.admin:
                raise errors.PermissionDenied("only admins may list other users' orders")
            owner = None if user_id == "-" else user_id
        found: list[Order] = []
        scanned = 0
        while len(found) < limit:
            batch, cursor = await self.orders.list(owner, cursor, limit - len(found))
            scanned += len(batch)
            found += [o for o in batch if state is None or o.state is state]
            # A filtered scan stops after a while and hands out a token to go on from.
            if cursor is None or scanned >= 1000:
                break
        return found, cursor

    async def status_changes(self, caller: Principal, order_id: str) -> list[StatusChange]:
        await self._visible(caller, order_id)
        return await self.orders.history(order_id)

    async def watch(
        self, caller: Principal, order_id: str
    ) -> AsyncIterator[tuple[Order, StatusChange | None]]:
        """The order now, then (order, change) for each status change, until it is final.

        Fed by the changes this process stores (the consumers and the API of this replica),
        handed over in memory; changes stored by another replica are found by re-reading the
        store every `watch_poll_seconds` (a slow fallback: one replica needs no read at all).
        """
        changes = self.notifier.subscribe(order_id)
        try:
            order = await self._visible(caller, order_id)
            seen = len(await self.orders.history(order_id))
            yield order, None
            while not order.state.final:
                try:
                    async with asyncio.timeout(self.watch_poll_seconds):
                        transition = await changes.get()
                except TimeoutError:
                    current = await self.orders.get(order_id)
                    if current is None or current.version <= order.version:
                        continue
                    order = current
                    history = await self.orders.history(order_id)
                    for change in history[seen:]:
                        yield order, change
                    seen = max(seen, len(history))
                    continue
                if transition.order.version <= order.version:
                    continue  # read already, or older than what the poll found
                if transition.order.version > order.version + 1:
                    # Another replica's change came in between: read what we missed.
                    history = await self.orders.history(order_id)
                    order = transition.order
                    for change in history[seen:]:
                        yield order, change
                    seen = max(seen, len(history))
                    continue
                order = transition.order
                if transition.change is not None:
                    seen += 1
                    yield order, transition.change
        finally:
            self.notifier.unsubscribe(order_id, changes)

    # --- changing -----------------------------------------------------------------------------

    async def cancel_order(self, caller: Principal, order_id: str, note: str) -> Order:
        if len(note) > domain.MAX_NOTE_CHARS:
            raise errors.InvalidArgument("note", f"at most {domain.MAX_NOTE_CHARS} characters")
        order = await self._visible(caller, order_id)
        # An admin cancelling someone else's order; their own is a customer's cancel.
        admin = caller.admin and order.user_id != caller.user_id
        order = await self._apply(
            order_id, lambda o, now: domain.cancel(o, now, admin=admin, note=note.strip())
        )
        assert order is not None
        return order

    async def _apply(
        self, order_id: str, decide: Callable[[Order, datetime], Transition | None]
    ) -> Order | None:
        """Compare-and-set loop: decide on the stored order, store, retry if another won.

        This process's changes of one order take turns, and each starts from the order as the
        process last wrote it: a saga step is one conditional write and no read. A guess can
        only be behind, which the compare-and-set catches; a decision to change nothing is only
        taken on the order read from the store."""
        async with self._turns.hold(order_id):
            order = self._written.pop(order_id, None)
            fresh = order is None
            for _ in range(MAX_CAS_RETRIES):
                if fresh:
                    order = await self.orders.get(order_id)
                if order is None:
                    return None
                transition = decide(order, self.clock.now())
                if transition is None:
                    if fresh:
                        return order
                    fresh = True
                    continue
                if await self.orders.save(transition, mapping.events(transition), order.version):
                    self._written[order_id] = transition.order
                    self.notifier.changed(transition)
                    return transition.order
                fresh = True
        raise errors.Aborted(f"order {order_id} kept changing; retry", reason="ORDER_CONTENDED")

    async def _react(
        self, order_id: str, decide: Callable[[Order, datetime], Transition | None]
    ) -> None:
        if await self._apply(order_id, decide) is None:
            # Not ours (another shop's event on a shared exchange) or never stored: nothing to do.
            log.warning("event for unknown order %s ignored", order_id)

    async def stock_reserved(self, order_id: str) -> None:
        await self._react(order_id, domain.stock_reserved)

    async def stock_reservation_failed(self, order_id: str) -> None:
        await self._react(order_id, domain.stock_reservation_failed)

    async def reservation_expired(self, order_id: str) -> None:
        await self._react(order_id, domain.reservation_expired)

    async def cancel_overdue(self, limit: int = 500) -> int:
        """Cancels the orders still waiting for stock or payment past their checkout deadline
        (saga spec, deadlines); returns how many were cancelled. Run every few seconds."""
        due = await self.orders.overdue(self.clock.now(), limit)
        cancelled = 0
        for deadline in due:
            moved: list[bool] = []

            def decide(order: Order, now: datetime, moved=moved) -> Transition | None:
                transition = domain.deadline_passed(order, now)
                moved[:] = [transition is not None]  # the last decision is the one stored
                return transition

            await self._apply(deadline.order_id, decide)
            if moved == [True]:
                cancelled += 1
                log.info("order %s cancelled: checkout deadline passed", deadline.order_id)
        await self.orders.settled(due)
        return cancelled

    async def payment_succeeded(self, order_id: str, payment_id: str, amount: Money) -> None:
        order = await self._apply(
            order_id, lambda o, now: domain.payment_succeeded(o, payment_id, amount, now)
        )
        if order is None:
            log.warning("event for unknown order %s ignored", order_id)
        elif order.payment_id == payment_id and amount != order.total:
            # Flagged for an operator: a charge that is not the total is a bug or a forgery.
            log.error(
                "order %s flagged: %s, payment %s charged %s nanos %s for a total of %s nanos %s",
                order_id,
                domain.PAYMENT_MISMATCH,
                payment_id,
                amount.nanos,
                amount.currency,
                order.total.nanos,
                order.total.currency,
            )

    async def payment_failed(self, order_id: str, payment_id: str, message: str) -> None:
        await self._react(
            order_id, lambda o, now: domain.payment_failed(o, payment_id, now, message)
        )

    async def shipment_created(self, order_id: str, shipment_id: str) -> None:
        await self._react(order_id, lambda o, now: domain.shipment_created(o, shipment_id, now))

    async def shipment_in_transit(self, order_id: str, shipment_id: str) -> None:
        await self._react(order_id, lambda o, now: domain.shipment_in_transit(o, shipment_id, now))

    async def shipment_delivered(self, order_id: str, shipment_id: str) -> None:
        await self._react(order_id, lambda o, now: domain.shipment_delivered(o, shipment_id, now))


def _reused(request_id: str) -> errors.AlreadyExists:
    return errors.AlreadyExists(
        "this request_id was already used for a different order",
        reason="REQUEST_ID_REUSED",
        metadata={"request_id": request_id} if request_id else None,
    )
