"""What idle background loops ask their store: little.

On FerretDB v1 (the local MongoDB-wire server) every query that is not a plain `_id` lookup
reads and decodes the whole collection, so a loop polling twice a second kept the server busy
on a core once the collections held some megabytes. These tests pin the query counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from kit.events import Event
from kit.outbox import MongoOutbox, Relay
from services.notification.handlers import NotificationHandlers
from services.webhooks.adapters.memory import FixedClock, InMemoryDeliveries
from services.webhooks.domain import RetryPolicy
from services.webhooks.handlers import Dispatcher, Limits


class _Cursor:
    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self._docs = docs

    def limit(self, n: int) -> _Cursor:
        return _Cursor(self._docs[:n])

    def __aiter__(self) -> Any:
        async def gen() -> Any:
            for doc in self._docs:
                yield doc

        return gen()


class _Collection:
    """Just what MongoOutbox reads: find() on `_outbox.id`, counted."""

    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []
        self.finds = 0

    def find(self, query: dict[str, Any], projection: dict[str, Any]) -> _Cursor:
        self.finds += 1
        return _Cursor([d for d in self.docs if d.get("_outbox")])

    async def update_one(self, query: dict[str, Any], update: dict[str, Any]) -> None:
        for d in self.docs:
            if d["_id"] == query["_id"]:
                sent = update["$pullAll"]["_outbox"]
                d["_outbox"] = [e for e in d["_outbox"] if e not in sent]


def _event(n: int) -> Event:
    return Event(id=f"e{n}", type="t", source="s", time=datetime(2026, 1, 1, tzinfo=UTC), data=b"x")


class _Bus:
    def __init__(self) -> None:
        self.published: list[str] = []
        self.arrived = asyncio.Event()

    async def publish(self, events: Any) -> None:
        self.published += [e.id for e in events]
        self.arrived.set()


async def test_an_idle_mongo_outbox_reads_only_on_notify_and_on_the_slow_poll() -> None:
    things = _Collection()
    outbox = MongoOutbox({"things": things}, ["things"], poll_seconds=0.4)
    bus = _Bus()
    relay = Relay(outbox, bus, interval=0.01)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.2)  # ~20 relay passes
        assert things.finds == 1  # the first pass (a restart's leftovers), then nothing

        things.docs.append({"_id": "a", "_outbox": MongoOutbox.entries([_event(1)])})
        outbox.notify()  # what a writer does after its update committed
        await asyncio.wait_for(bus.arrived.wait(), 2)
        assert bus.published == ["e1"]
        await asyncio.sleep(0.05)
        # The notified read, and the one after the publish that found the outbox empty.
        assert things.finds == 3

        # A write the relay is not told about (another replica): found by the slow poll.
        things.docs.append({"_id": "b", "_outbox": MongoOutbox.entries([_event(2)])})
        bus.arrived.clear()
        await asyncio.sleep(0.1)
        assert bus.published == ["e1"]
        started = time.monotonic()
        await asyncio.wait_for(bus.arrived.wait(), 2)
        assert bus.published == ["e1", "e2"]
        assert time.monotonic() - started < 0.6
    finally:
        task.cancel()


async def test_a_mongo_outbox_reads_again_while_it_finds_events_and_after_a_failed_read() -> None:
    things = _Collection()
    outbox = MongoOutbox({"things": things}, ["things"], poll_seconds=3600)
    things.docs.append({"_id": "a", "_outbox": MongoOutbox.entries([_event(1), _event(2)])})
    first = await outbox.pending(1)
    assert [e.id for e in first] == ["e1"]
    await outbox.mark_sent(first)
    assert [e.id for e in await outbox.pending(1)] == ["e2"]  # more behind the limit
    assert [e.id for e in await outbox.pending(1)] == ["e2"]  # not marked sent: read again
    await outbox.mark_sent([_event(2)])
    assert await outbox.pending(1) == []
    reads = things.finds
    assert await outbox.pending(1) == []
    assert things.finds == reads  # nothing pending, nothing notified: no query

    def broken(*args: Any) -> Any:
        raise ConnectionError("server restarting")

    outbox.notify()
    things.find = broken  # type: ignore[method-assign]
    with contextlib.suppress(ConnectionError):
        await outbox.pending(1)
    del things.find  # back to the class's method
    things.docs.append({"_id": "c", "_outbox": MongoOutbox.entries([_event(3)])})
    assert [e.id for e in await outbox.pending(1)] == ["e3"]  # the notify was not lost


class _Notifications:
    def __init__(self) -> None:
        self.claims = 0

    async def claim_due(self, now: datetime, lease_until: datetime) -> None:
        self.claims += 1
        return None


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
