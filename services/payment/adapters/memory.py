"""In-memory stores for unit tests; they pass the same contract tests as the Cassandra ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from kit.events import Event
from kit.outbox import InMemoryOutbox
from kit.paging import Cursor
from services.payment.adapters.sandbox import SandboxCharge, SandboxMethod
from services.payment.domain import Money, Payment, PaymentMethod


class InMemoryPaymentMethods:
    def __init__(self) -> None:
        self._methods: dict[tuple[str, str], PaymentMethod] = {}
        self._defaults: dict[str, str] = {}
        self._requests: dict[tuple[str, str], str] = {}

    def _view(self, method: PaymentMethod) -> PaymentMethod:
        return replace(method, default=self._defaults.get(method.user_id) == method.id)

    async def claim_request(self, user_id: str, request_id: str, method_id: str) -> str:
        return self._requests.setdefault((user_id, request_id), method_id)

    async def add(self, method: PaymentMethod, *, make_default: bool) -> PaymentMethod:
        self._methods[(method.user_id, method.id)] = replace(method, default=False)
        if make_default:
            self._defaults[method.user_id] = method.id
        else:
            self._defaults.setdefault(method.user_id, method.id)
        return self._view(method)

    async def get(self, user_id: str, method_id: str) -> PaymentMethod | None:
        method = self._methods.get((user_id, method_id))
        return None if method is None else self._view(method)

    async def list(self, user_id: str) -> list[PaymentMethod]:
        return [self._view(m) for (u, _), m in self._methods.items() if u == user_id]

    async def delete(self, user_id: str, method_id: str) -> bool:
        if self._methods.pop((user_id, method_id), None) is None:
            return False
        if self._defaults.get(user_id) == method_id:
            del self._defaults[user_id]
        return True

    async def set_default(self, user_id: str, method_id: str) -> None:
        self._defaults[user_id] = method_id


class InMemoryPayments:
    def __init__(self, outbox: InMemoryOutbox | None = None) -> None:
        self.outbox = outbox or InMemoryOutbox()
        self._by_order: dict[str, Payment] = {}
        self._ids: dict[str, str] = {}

    async def claim(self, payment: Payment) -> Payment:
        if payment.order_id not in self._by_order:
            self._by_order[payment.order_id] = replace(payment, announced=frozenset())
            self._ids[payment.id] = payment.order_id
        return self._by_order[payment.order_id]

    async def get_by_order(self, order_id: str) -> Payment | None:
        return self._by_order.get(order_id)

    async def get(self, payment_id: str) -> Payment | None:
        order_id = self._ids.get(payment_id)
        return None if order_id is None else self._by_order.get(order_id)

    async def save(self, payment: Payment) -> bool:
        stored = self._by_order.get(payment.order_id)
        if stored is None or stored.version != payment.version - 1:
            return False
        self._by_order[payment.order_id] = replace(payment, announced=stored.announced)
        return True

    async def list_by_user(
        self, user_id: str, size: int, cursor: Cursor | None
    ) -> tuple[list[Payment], Cursor | None]:
        mine = sorted(
            (p for p in self._by_order.values() if p.user_id == user_id),
            key=lambda p: (p.create_time, p.id),
            reverse=True,
        )
        start = int(cursor["offset"]) if isinstance(cursor, dict) else 0
        page = mine[start : start + size]
        more = start + size < len(mine)
        return page, {"offset": start + size} if more else None

    async def announce(self, payment: Payment, events: Sequence[Event]) -> None:
        self.outbox.add(events, key=payment.order_id)
        self.outbox.notify()
        stored = self._by_order[payment.order_id]
        self._by_order[payment.order_id] = replace(
            stored, announced=stored.announced | {e.id for e in events}
        )


class InMemorySandboxStore:
    def __init__(self) -> None:
        self._methods: dict[str, SandboxMethod] = {}
        self._charges: dict[str, SandboxCharge] = {}
        self._calls: dict[str, int] = {}
        self._refunds: dict[str, str] = {}

    async def save_method(self, token: str, method: SandboxMethod) -> None:
        self._methods[token] = method

    async def method(self, token: str) -> SandboxMethod | None:
        return self._methods.get(token)

    async def detach(self, token: str) -> None:
        if token in self._methods:
            self._methods[token] = replace(self._methods[token], detached=True)

    async def put_charge(self, charge: SandboxCharge) -> SandboxCharge:
        return self._charges.setdefault(charge.key, charge)

    async def count_call(self, key: str) -> None:
        self._calls[key] = self._calls.get(key, 0) + 1

    async def charges_for(self, key: str) -> int:
        return 1 if key in self._charges else 0

    async def charge_calls(self, key: str) -> int:
        return self._calls.get(key, 0)

    async def put_refund(self, key: str, refund_id: str, charge_id: str, amount: Money) -> str:
        return self._refunds.setdefault(key, refund_id)
