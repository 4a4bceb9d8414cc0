"""What idle background loops ask their store: little.

On FerretDB v1 (the local MongoDB-wire server) every query that is not a plain `_id` lookup
reads and decodes the whole collection, so a loop polling twice a second kept the server busy
on a core once the collections held some megabytes. These tests pin the query counts of the
notification senders and the webhooks dispatcher; the MongoDB outbox's are pinned on the real
server in tests/integration/test_outbox.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from services.notification.handlers import NotificationHandlers
from services.webhooks.adapters.memory import FixedClock, InMemoryDeliveries
from services.webhooks.domain import RetryPolicy
from services.webhooks.handlers import Dispatcher, Limits


class _Notifications:
    def __init__(self) -> None:
        self.claims = 0

    async def claim_due(self, now: datetime, lease_until: datetime, limit: int) -> list:
        self.claims += 1
        return []


async def test_idle_notification_senders_poll_with_one_sender_not_all() -> None:
    notifications = _Notifications()
    handlers = NotificationHandlers(
        notifications=notifications,  # type: ignore[arg-type]
        recipients=None,  # type: ignore[arg-type]
        preferences=None,  # type: ignore[arg-type]
        templates=None,  # type: ignore[arg-type]
        fanouts=None,  # type: ignore[arg-type]
        channels=None,  # type: ignore[arg-type]
        available=(),
        clock=SimpleNamespace(now=lambda: datetime.now(UTC)),
        shop=None,  # type: ignore[arg-type]
        secrets=None,  # type: ignore[arg-type]
        senders=4,
        poll_seconds=0.05,
    )
    task = asyncio.create_task(handlers.run_senders())
    try:
        await asyncio.sleep(0.52)
        # One claim each at start, then one poller: about 10 more (4 senders polling: ~40).
        assert 4 + 6 <= notifications.claims <= 4 + 13
        before = notifications.claims
        handlers._due.set()  # what a write of a due notification does
        await asyncio.sleep(0.01)
        assert notifications.claims >= before + 4  # every sender woke to claim
    finally:
        task.cancel()


class _Endpoints:
    async def active(self) -> list[Any]:
        return [SimpleNamespace(id=f"ep{i}") for i in range(5)]


class _Deliveries(InMemoryDeliveries):
    def __init__(self) -> None:
        super().__init__()
        self.due_calls = 0
        self.any_due_calls = 0

    async def any_due(self, now: datetime) -> bool:
        self.any_due_calls += 1
        return await super().any_due(now)

    async def due(self, endpoint_id: str, now: datetime, limit: int) -> list[str]:
        self.due_calls += 1
        return await super().due(endpoint_id, now, limit)


async def test_an_idle_webhooks_dispatcher_asks_once_per_round_not_once_per_endpoint() -> None:
    deliveries = _Deliveries()
    dispatcher = Dispatcher(
        _Endpoints(),  # type: ignore[arg-type]
        deliveries,
        sender=None,  # type: ignore[arg-type]
        clock=FixedClock(),
        limits=Limits(),
        policy=RetryPolicy(),
    )
    assert await dispatcher.dispatch_due() == 0
    assert (deliveries.any_due_calls, deliveries.due_calls) == (1, 0)
