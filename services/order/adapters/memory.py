"""In-memory adapters for unit tests: the order repository and fakes of the other services.

`InMemoryOrderRepository` passes the same contract tests as the Cassandra one
(tests/integration/test_order_on_cassandra.py); its events go to a kit InMemoryOutbox.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import UTC, datetime

from kit.events import Event
from kit.outbox import InMemoryOutbox
from services.order.domain import WAITING, Address, Money, Order, StatusChange, Transition
from services.order.ports import Cursor, Deadline, PaymentMethod, Product


def _cursor_key(order: Order) -> tuple[int, str]:
    return (int(order.create_time.timestamp() * 1000), order.id)


class InMemoryOrderRepository:
    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        self.changes: dict[str, list[StatusChange]] = {}
        self.requests: dict[tuple[str, str], tuple[str, str]] = {}
        self.outbox = InMemoryOutbox()
        self.published: list[Event] = []  # every event ever written, for assertions
        self.deadlines: dict[str, datetime] = {}
        self.reads = 0  # get() and history() calls, for assertions about reads

    async def claim(self, user_id, request_id, order_id, fingerprint):
        return self.requests.setdefault((user_id, request_id), (order_id, fingerprint))

    async def request(self, user_id, request_id):
        return self.requests.get((user_id, request_id))

    def _events(self, order_id: str, events: Sequence[Event]) -> None:
        self.outbox.add(events, key=order_id)
        self.published.extend(events)
        self.outbox.notify()

    async def insert(self, transition: Transition, events: Sequence[Event]) -> bool:
        order = transition.order
        if order.id in self.orders:
            return False
        self.orders[order.id] = order
        self.changes[order.id] = [transition.change] if transition.change else []
        if order.deadline is not None and order.state in WAITING:
            self.deadlines[order.id] = order.deadline
        self._events(order.id, events)
        return True

    async def save(self, transition: Transition, events: Sequence[Event], expected_version: int):
        order = transition.order
        stored = self.orders.get(order.id)
        if stored is None or stored.version != expected_version:
            return False
        self.orders[order.id] = order
        if transition.change is not None:
            self.changes[order.id].append(transition.change)
        if order.state not in WAITING:
            self.deadlines.pop(order.id, None)
        self._events(order.id, events)
        return True

    async def overdue(self, now: datetime, limit: int) -> list[Deadline]:
        due = sorted((at, oid) for oid, at in self.deadlines.items() if at <= now)
        return [Deadline(oid, at) for at, oid in due[:limit]]

    async def settled(self, deadlines: Sequence[Deadline]) -> None:
        for deadline in deadlines:
            if self.deadlines.get(deadline.order_id) == deadline.at:
                del self.deadlines[deadline.order_id]

    async def get(self, order_id: str) -> Order | None:
        self.reads += 1
        return self.orders.get(order_id)

    async def history(self, order_id: str) -> list[StatusChange]:
        self.reads += 1
        return list(self.changes.get(order_id, []))

    async def list(self, user_id, cursor: Cursor | None, limit: int):
        rows = sorted(
            (o for o in self.orders.values() if user_id is None or o.user_id == user_id),
            key=_cursor_key,
            reverse=True,
        )
        if cursor is not None:
            after = (cursor["t"], cursor["id"])
            rows = [o for o in rows if _cursor_key(o) < after]
        page = rows[:limit]
        if len(rows) <= limit:
            return page, None
        last = _cursor_key(page[-1])
        return page, {"t": last[0], "id": last[1]}


class InMemoryCatalog:
    def __init__(self) -> None:
        self.items: dict[str, Product] = {}
        self.calls = 0

    def put(self, product: Product) -> None:
        self.items[product.id] = product

    async def products(self, product_ids):
        self.calls += 1
        return {pid: self.items.get(pid) for pid in product_ids}


class InMemoryCart:
    def __init__(self) -> None:
        self.carts: dict[str, list[tuple[str, int]]] = {}
        self.tokens: list[str] = []

    async def items(self, token: str) -> list[tuple[str, int]]:
        self.tokens.append(token)
        return list(self.carts.get(token, []))


class InMemoryShipping:
    def __init__(self) -> None:
        self.options: dict[str, Money] = {}
        self.quotes: list[tuple[Address, list]] = []

    async def quote(self, destination: Address, items):
        self.quotes.append((destination, list(items)))
        return dict(self.options)


class InMemoryPayments:
    def __init__(self) -> None:
        self.methods: dict[tuple[str, str], PaymentMethod] = {}
        self.tokens: list[str] = []

    def add(self, token: str, method: PaymentMethod) -> None:
        self.methods[(token, method.id)] = method

    async def payment_method(self, token: str, payment_method_id: str):
        self.tokens.append(token)
        return copy.copy(self.methods.get((token, payment_method_id)))


class FixedClock:
    def __init__(self, now: datetime | None = None) -> None:
        self.value = now or datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.value
