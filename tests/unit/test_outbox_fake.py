"""The relay and idempotent consumers over the in-memory outbox and inbox (no servers)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from google.protobuf.wrappers_pb2 import Int64Value

from kit.events import Event
from kit.inbox import InMemoryInbox, idempotent
from kit.outbox import InMemoryOutbox, MongoOutbox, Relay, shard_of


def events(count: int) -> list[Event]:
    return [Event.of(Int64Value(value=n), "test") for n in range(count)]


class FakeBus:
    """Records what was published; fails the next `fail` publishes like a broker outage."""

    def __init__(self, fail: int = 0) -> None:
        self.published: list[Event] = []
        self.fail = fail
        self._changed = asyncio.Condition()

    async def publish(self, batch: Sequence[Event]) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("broker down")
        async with self._changed:
            self.published.extend(batch)
            self._changed.notify_all()

    async def wait_for(self, count: int, seconds: float = 1.0) -> None:
        async with asyncio.timeout(seconds), self._changed:
            await self._changed.wait_for(lambda: len(self.published) >= count)


async def test_the_relay_publishes_pending_events_in_order_then_removes_them() -> None:
    outbox, bus = InMemoryOutbox(), FakeBus()
    written = events(5)
    outbox.add(written)
    assert await Relay(outbox, bus, batch_size=3).publish_pending() == 3
    assert bus.published == written[:3]
    assert await outbox.pending(10) == written[3:]


async def test_a_failed_publish_marks_nothing_and_the_running_relay_retries_it() -> None:
    outbox, bus = InMemoryOutbox(), FakeBus(fail=2)
    written = events(2)
    outbox.add(written)
    relay = Relay(outbox, bus, interval=0.01)
    with pytest.raises(ConnectionError):
        await relay.publish_pending()
    assert await outbox.pending(10) == written  # still pending: nothing is lost
    task = asyncio.create_task(relay.run())
    try:
        await bus.wait_for(2, seconds=5)
    finally:
        task.cancel()
    assert bus.published == written
    assert await outbox.pending(10) == []


async def test_a_notify_wakes_a_sleeping_relay_at_once() -> None:
    outbox, bus = InMemoryOutbox(), FakeBus()
    task = asyncio.create_task(Relay(outbox, bus, interval=60).run())
    try:
        await asyncio.sleep(0.05)  # the first pass found nothing; the relay sleeps 60 s
        outbox.add(events(1))
        outbox.notify()
        await bus.wait_for(1)
    finally:
        task.cancel()


async def test_a_relay_with_a_backlog_keeps_going_without_waiting_for_the_poll() -> None:
    outbox, bus = InMemoryOutbox(), FakeBus()
    outbox.add(events(25))
    task = asyncio.create_task(Relay(outbox, bus, interval=60, batch_size=10).run())
    try:
        await bus.wait_for(25)
    finally:
        task.cancel()


async def test_an_idempotent_handler_skips_an_event_it_already_processed() -> None:
    inbox, applied = InMemoryInbox(), []

    async def effect(event: Event) -> None:
        applied.append(event.id)

    handle = idempotent(inbox, effect)
    event = events(1)[0]
    await handle(event)
    await handle(event)  # a redelivery
    assert applied == [event.id]


def test_mongo_outbox_updates_carry_the_events_in_the_same_single_document_write() -> None:
    batch = events(2)
    update = MongoOutbox.push({"$set": {"status": "PAID"}}, batch)
    assert update["$set"] == {"status": "PAID"}
    assert [e["id"] for e in update["$push"]["_outbox"]["$each"]] == [e.id for e in batch]
    assert MongoOutbox.document({"_id": "o-1"}, batch)["_outbox"][1]["id"] == batch[1].id
    with pytest.raises(ValueError, match="already pushes"):
        MongoOutbox.push(update, batch)


def test_an_aggregate_always_maps_to_the_same_outbox_shard() -> None:
    assert shard_of("order-42", 8) == shard_of("order-42", 8)
    assert {shard_of(f"order-{n}", 8) for n in range(100)} == set(range(8))


class FixedLease:
    def __init__(self, held: bool) -> None:
        self.held = held

    async def hold(self) -> bool:
        return self.held


async def test_only_the_relay_holding_the_lease_publishes() -> None:
    outbox, bus = InMemoryOutbox(), FakeBus()
    outbox.add(events(2))
    assert await Relay(outbox, bus, lease=FixedLease(False)).publish_pending() == 0
    assert bus.published == []
    assert await Relay(outbox, bus, lease=FixedLease(True)).publish_pending() == 2
