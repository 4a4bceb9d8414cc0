"""Event backbone v2 on real RabbitMQ: no unroutable event is lost, a poison message waits for
its retry outside the consumer, and one aggregate's events stay in order under concurrency.

Like tests/integration/test_bus.py, each test has its own queue and event type.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest
import pytest_asyncio
from _messaging_types import new_type_name, probe_class
from test_bus import cli, eventually, until

from kit.bus import UNROUTED_QUEUE, Bus, PublishError, retry_queue
from kit.config import RabbitSettings
from kit.events import Event

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bus() -> AsyncIterator[Bus]:
    bus = await Bus.connect(RabbitSettings.from_env(), "test-bus-v2", wait_seconds=10)
    try:
        yield bus
    finally:
        await bus.close()


@pytest.fixture
def probe() -> Any:
    return probe_class(new_type_name())


@pytest_asyncio.fixture(loop_scope="module")
async def queue_name(bus: Bus) -> AsyncIterator[str]:
    name = f"test.bus2.{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        await bus.delete_queue(name)


async def test_an_event_published_before_its_consumer_ever_started_waits_for_it(
    probe: Any, queue_name: str
) -> None:
    topology = {queue_name: [probe.DESCRIPTOR.full_name]}
    # The publishing service starts first and applies the whole topology, as every one does.
    async with await Bus.connect(RabbitSettings.from_env(), "test-publisher") as publisher:
        await publisher.declare_topology(topology)
        early = Event.of(probe(thing_id="early", n=1), "test-publisher")
        await publisher.publish([early])

    received: list[Event] = []

    async def handler(event: Event) -> None:
        received.append(event)

    # Later, the consuming service's first start (a connection of its own).
    async with await Bus.connect(RabbitSettings.from_env(), "test-consumer") as consumer_bus:
        await consumer_bus.declare_topology(topology)  # idempotent
        await consumer_bus.consume(queue_name, handler)
        await eventually(until(lambda: len(received) == 1))
    assert received[0].id == early.id


async def test_an_event_no_queue_is_bound_to_is_parked_not_dropped_and_can_be_replayed(
    bus: Bus, probe: Any, queue_name: str
) -> None:
    orphan = Event.of(probe(thing_id="orphan", n=1), "test")
    await bus.publish([orphan])  # confirmed: the alternate exchange took it

    async def parked() -> bool:
        return orphan.id in {letter.message_id for letter in await bus.list_unrouted(1000)}

    await eventually(parked)
    assert orphan.id in await cli("unrouted", "list", "--limit", "1000")

    # The topology gains the binding; the operator replays the parking queue.
    received: list[str] = []

    async def handler(event: Event) -> None:
        received.append(event.id)

    await bus.declare_topology({queue_name: [probe.DESCRIPTOR.full_name]})
    await bus.consume(queue_name, handler)
    assert await bus.replay_unrouted() >= 1
    await eventually(until(lambda: orphan.id in received))
    assert not await parked()
    print(f"parked events left in {UNROUTED_QUEUE}: {len(await bus.list_unrouted(1000))}")


async def test_without_its_parking_queue_an_unroutable_publish_fails_so_the_outbox_keeps_it(
    probe: Any,
) -> None:
    async with await Bus.connect(RabbitSettings.from_env(), "test-no-parking") as bus:
        connection = await aio_pika.connect(RabbitSettings.from_env().url)
        async with connection, connection.channel() as channel:  # an operator deleted it
            await channel.queue_delete(UNROUTED_QUEUE)
        try:
            with pytest.raises(PublishError, match=r"1 of 1 events not confirmed"):
                await bus.publish([Event.of(probe(thing_id="lost?", n=1), "test")])
        finally:
            # Any bus declares it again when it connects.
            async with await Bus.connect(RabbitSettings.from_env(), "test-parking-back"):
                pass


async def test_one_poison_message_does_not_delay_the_other_messages_on_its_queue(
    bus: Bus, probe: Any, queue_name: str
) -> None:
    retry_delay = 3.0
    await bus.declare_queue(
        queue_name, [probe.DESCRIPTOR.full_name], delivery_limit=2, retry_delays=(retry_delay,)
    )
    attempts: list[float] = []
    handled: dict[str, float] = {}

    async def handler(event: Event) -> None:
        message = event.decode(probe)
        if message.thing_id == "poison":
            attempts.append(time.monotonic())
            raise RuntimeError("a bug in the handler")
        await asyncio.sleep(0.02)  # some work
        handled[message.thing_id] = time.monotonic()

    # A small consumer (one lane at a time would be the worst case): concurrency 2.
    consumer = bus.consumer(
        queue_name, handler, concurrency=2, key=lambda e: e.decode(probe).thing_id.split("-")[0]
    )
    poison = Event.of(probe(thing_id="poison", n=0), "test")
    # The same aggregate as the poison ("poison-after") and 40 others.
    others = [Event.of(probe(thing_id="poison-after", n=1), "test")] + [
        Event.of(probe(thing_id=f"good{i}-x", n=i), "test") for i in range(40)
    ]
    await bus.publish([poison, *others])
    started = time.monotonic()
    await consumer.start()
    await eventually(until(lambda: len(handled) == len(others)))
    all_handled = max(handled.values()) - started
    await eventually(until(lambda: len(attempts) == 3), within=4 * retry_delay + 15)
    await consumer.stop()
    print(
        f"poison: {len(attempts)} attempts at "
        f"{', '.join(f'{a - started:.2f}' for a in attempts)} s; "
        f"the {len(others)} other messages all handled {all_handled:.2f} s after the start "
        f"(retry delay {retry_delay} s; v1 held the slot for the whole back-off)"
    )
    # Every other message, the poison's own aggregate included, went through while the poison
    # waited for its first retry outside the consumer.
    assert max(handled.values()) < attempts[1]
    assert attempts[1] - attempts[0] >= retry_delay * 0.9
    letters = await bus.list_dead_letters(queue_name)
    assert [(x.message_id, x.reason) for x in letters] == [(poison.id, "delivery_limit")]
    assert await bus.message_count(retry_queue(queue_name, 0)) == 0


async def test_handlers_run_concurrently_but_one_aggregates_events_stay_in_order(
    bus: Bus, probe: Any, queue_name: str
) -> None:
    await bus.declare_queue(queue_name, [probe.DESCRIPTOR.full_name])
    seen: dict[str, list[int]] = {}
    running = 0
    most = 0

    async def handler(event: Event) -> None:
        nonlocal running, most
        message = event.decode(probe)
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(random.uniform(0, 0.02))
            seen.setdefault(message.thing_id, []).append(message.n)
        finally:
            running -= 1

    keys = [f"order{k}" for k in range(8)]
    events = [Event.of(probe(thing_id=keys[i % 8], n=i), "test") for i in range(200)]
    consumer = bus.consumer(
        queue_name, handler, concurrency=8, key=lambda e: e.decode(probe).thing_id
    )
    await bus.publish(events)
    await consumer.start()
    await eventually(until(lambda: sum(map(len, seen.values())) == len(events)))
    await consumer.stop()
    print(f"at most {most} handlers at once over {len(keys)} aggregates")
    assert most > 1
    for key in keys:
        assert seen[key] == sorted(seen[key])
