"""The outbox, the relay and the inbox on real Cassandra, FerretDB and RabbitMQ, crashes included.

Contract tests run over the in-memory and the real stores alike. The crash tests SIGKILL real
subprocesses (`_messaging_proc.py`) at the worst moments and count what the consumer saw.
Isolation: one keyspace and one database per run (dropped at the end), one event type (so one
routing key) and one queue per test.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from _messaging_stores import (
    DURABLE_STORES,
    SCHEMA_CQL,
    STORES,
    CassandraThings,
    MemoryThings,
    MongoThings,
)
from _messaging_types import new_type_name, probe_class

from kit.bus import Bus
from kit.config import RabbitSettings
from kit.events import Event
from kit.inbox import idempotent
from kit.outbox import MongoOutbox, Relay

pytestmark = pytest.mark.asyncio(loop_scope="module")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PROC = HERE / "_messaging_proc.py"
RUN_ID = uuid.uuid4().hex[:10]
KEYSPACE = f"msgtest_{RUN_ID}"
DATABASE = f"msgtest_{RUN_ID}"


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cassandra_things(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    schema = tmp_path_factory.mktemp("schema") / "schema.cql"
    schema.write_text(SCHEMA_CQL)
    things = await CassandraThings.open(KEYSPACE, schema=schema)
    try:
        yield things
    finally:
        await things.session.drop_keyspace(KEYSPACE)
        await things.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mongo_things() -> AsyncIterator[Any]:
    things = await MongoThings.open(DATABASE)
    await things.outbox.ensure_indexes()
    try:
        yield things
    finally:
        await things.database.client.drop_database(DATABASE)
        await things.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bus() -> AsyncIterator[Bus]:
    bus = await Bus.connect(RabbitSettings.from_env(), "test-outbox", wait_seconds=10)
    try:
        yield bus
    finally:
        await bus.close()


@pytest.fixture
def store(request: pytest.FixtureRequest) -> Any:
    """The store named by the test's parameter (memory, cassandra or mongo)."""
    if request.param == "memory":
        return MemoryThings()
    return request.getfixturevalue(f"{request.param}_things")


@pytest_asyncio.fixture(loop_scope="module")
async def things(store: Any) -> Any:
    """`store` with a fresh, empty outbox."""
    if store.kind != "memory":
        store.outbox = await store.new_outbox()
    # Leftovers of an earlier (failed) test would be relayed first: drop them unpublished.
    while leftovers := await store.outbox.pending(500):
        await store.outbox.mark_sent(leftovers)
    return store


@pytest.fixture
def probe() -> Any:
    """A message class with a name (and routing key) no other test or service uses."""
    return probe_class(new_type_name())


@pytest_asyncio.fixture(loop_scope="module")
async def queue(bus: Bus, probe: Any) -> AsyncIterator[str]:
    name = f"test.outbox.{uuid.uuid4().hex[:10]}"
    await bus.declare_queue(name, [probe.DESCRIPTOR.full_name], delivery_limit=5)
    try:
        yield name
    finally:
        await bus.delete_queue(name)


def stores(*kinds: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("store", kinds, indirect=True)


# ---------------------------------------------------------------------------------------------
# Helpers


def event_of(probe: Any, thing_id: str, n: int) -> Event:
    return Event.of(probe(thing_id=thing_id, n=n), "things")


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within} s")
        await asyncio.sleep(0.05)


async def run_proc(mode: str, kind: str, probe: Any, *, within: float = 40.0, **options: str):
    """Runs `_messaging_proc.py MODE` to its end; returns (returncode, stdout lines)."""
    argv = [sys.executable, str(PROC), mode, "--store", kind, "--keyspace", KEYSPACE]
    argv += ["--database", DATABASE, "--type", probe.DESCRIPTOR.full_name]
    for name, value in options.items():
        argv += [f"--{name.replace('_', '-')}", value]
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), within)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    lines = out.decode().splitlines()
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"{mode} exited {proc.returncode}: {err.decode()[-3000:]}")
    return proc.returncode, lines


class CountingConsumer:
    """A consumer that applies the effect through the inbox and counts deliveries per event."""

    def __init__(self, things: Any, inbox: Any) -> None:
        self.deliveries: dict[str, int] = {}
        self._things = things
        self._inbox = inbox
        self._handle = idempotent(inbox, self._effect)

    async def _effect(self, event: Event) -> None:
        await self._things.apply_effect(event, self._inbox)

    async def __call__(self, event: Event) -> None:
        self.deliveries[event.id] = self.deliveries.get(event.id, 0) + 1
        await self._handle(event)


class FailingBus:
    """A bus that must not be used."""

    def __init__(self) -> None:
        self.calls = 0

    async def publish(self, events: Any) -> None:
        self.calls += 1
        raise AssertionError("must not publish")


async def pending_ids(things: Any) -> set[str]:
    outbox = await things.new_outbox()  # a fresh instance, as a restarted relay would see
    return {e.id for e in await outbox.pending(500)}


# ---------------------------------------------------------------------------------------------
# Outbox contract (memory, Cassandra, MongoDB)


@stores(*STORES)
async def test_pending_events_keep_write_order_per_aggregate_and_mark_sent_removes_only_those(
    things: Any, probe: Any
) -> None:
    a1, a2, a3 = (event_of(probe, "a", n) for n in (1, 2, 3))
    b1 = event_of(probe, "b", 1)
    await things.write("a", "first", [a1, a2])
    await things.write("b", "other", [b1])
    await things.write("a", "second", [a3])

    pending = await things.outbox.pending(100)
    assert {e.id for e in pending} == {a1.id, a2.id, a3.id, b1.id}
    assert [e.id for e in pending if e.id in {a1.id, a2.id, a3.id}] == [a1.id, a2.id, a3.id]
    assert next(e for e in pending if e.id == a1.id) == a1  # the whole envelope survives

    await things.outbox.mark_sent([e for e in pending if e.id in {a1.id, b1.id}])
    assert [e.id for e in await things.outbox.pending(100)] == [a2.id, a3.id]
    assert await things.name_of("a") == "second"


@stores(*STORES)
async def test_pending_honours_its_limit_and_draining_keeps_each_aggregates_order(
    things: Any, probe: Any
) -> None:
    written = {f"t{i}": [event_of(probe, f"t{i}", n) for n in range(3)] for i in range(5)}
    for thing_id, events in written.items():
        await things.write(thing_id, "x", events[:2])
        await things.write(thing_id, "y", events[2:])

    drained: list[Event] = []
    while batch := await things.outbox.pending(4):
        assert len(batch) <= 4
        drained += batch
        await things.outbox.mark_sent(batch)
    for thing_id, events in written.items():
        assert [e.id for e in drained if e in events] == [e.id for e in events], thing_id


@stores(*STORES)
async def test_the_relay_publishes_pending_events_with_confirms_then_deletes_them(
    things: Any, probe: Any, bus: Bus, queue: str
) -> None:
    received: list[str] = []

    async def handler(event: Event) -> None:
        received.append(event.id)

    consumer = await bus.consume(queue, handler)
    events = [event_of(probe, "r", n) for n in range(20)]
    await things.write("r", "relayed", events)

    relay = Relay(things.outbox, bus)
    assert await relay.publish_pending() == 20
    assert await things.outbox.pending(100) == []
    await eventually(lambda: asyncio.sleep(0, len(received) == 20))
    await consumer.stop()
    assert received == [e.id for e in events]  # one aggregate, one queue: in order


@stores(*STORES)
async def test_a_notified_relay_publishes_at_once_instead_of_at_its_next_poll(
    things: Any, probe: Any, bus: Bus, queue: str
) -> None:
    arrived = asyncio.Event()

    async def handler(event: Event) -> None:
        arrived.set()

    consumer = await bus.consume(queue, handler)
    relay = Relay(things.outbox, bus, interval=30.0)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.3)  # the first pass found nothing: the relay now sleeps 30 s
        started = time.monotonic()
        await things.write("n", "notified", [event_of(probe, "n", 1)])  # notifies
        await asyncio.wait_for(arrived.wait(), 5)
        latency = time.monotonic() - started
    finally:
        task.cancel()
        await consumer.stop()
    print(f"{things.kind}: write -> consumed in {latency * 1000:.0f} ms")
    assert latency < 2.0


async def test_an_idle_mongo_relay_reads_the_outbox_only_when_notified_or_on_the_slow_poll(
    mongo_things: Any, probe: Any, bus: Bus, queue: str
) -> None:
    """On FerretDB v1 each read of the outbox scans the collection: an idle relay must not read
    at every pass, yet an event written without a notify (another replica) still goes out."""
    collection = f"idle_{uuid.uuid4().hex[:6]}"
    outbox = MongoOutbox(mongo_things.database, [collection], poll_seconds=1.0)
    await outbox.ensure_indexes()
    arrived: list[str] = []

    async def handler(event: Event) -> None:
        arrived.append(event.id)

    async def write(thing_id: str, event: Event) -> None:
        await mongo_things.database[collection].update_one(
            {"_id": thing_id}, MongoOutbox.push({"$set": {"name": thing_id}}, [event]), upsert=True
        )

    consumer = await bus.consume(queue, handler)
    task = asyncio.create_task(Relay(outbox, bus, interval=0.01).run())
    try:
        await asyncio.sleep(0.5)  # ~50 relay passes
        assert outbox.reads == 1  # the first (a restart's leftovers), then nothing

        notified = event_of(probe, "a", 1)
        await write("a", notified)
        outbox.notify()  # what a writer of this process does once its update is acknowledged
        await eventually(lambda: _true(arrived == [notified.id]), within=5)
        assert outbox.reads <= 4  # the notified read, and reads until one finds nothing

        unnotified = event_of(probe, "b", 2)  # written by another replica: no notify here
        started = time.monotonic()
        await write("b", unnotified)
        await eventually(lambda: _true(unnotified.id in arrived), within=5)
        assert time.monotonic() - started < 2.5  # within the slow poll (1 s), and a publish
    finally:
        task.cancel()
        await consumer.stop()
        await mongo_things.database[collection].drop()


async def test_a_mongo_outbox_reads_again_while_it_finds_events_and_after_a_failed_read(
    mongo_things: Any, probe: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    collection = f"idle_{uuid.uuid4().hex[:6]}"
    outbox = MongoOutbox(mongo_things.database, [collection], poll_seconds=3600)
    things = mongo_things.database[collection]
    e1, e2, e3 = (event_of(probe, "a", n) for n in (1, 2, 3))
    try:
        await things.update_one({"_id": "a"}, MongoOutbox.push({}, [e1, e2]), upsert=True)
        first = await outbox.pending(1)
        assert [e.id for e in first] == [e1.id]
        await outbox.mark_sent(first)
        assert [e.id for e in await outbox.pending(1)] == [e2.id]  # more behind the limit
        assert [e.id for e in await outbox.pending(1)] == [e2.id]  # not marked sent: again
        await outbox.mark_sent([e2])
        assert await outbox.pending(1) == []
        reads = outbox.reads
        assert await outbox.pending(1) == []
        assert outbox.reads == reads  # nothing pending, nothing notified: no query

        outbox.notify()
        with monkeypatch.context() as patch:
            patch.setattr(outbox, "_read", _refused)
            with pytest.raises(ConnectionError):
                await outbox.pending(1)
        await things.update_one({"_id": "a"}, MongoOutbox.push({}, [e3]))
        assert [e.id for e in await outbox.pending(1)] == [e3.id]  # the notify was not lost
    finally:
        await things.drop()


async def _refused(limit: int) -> list[Event]:
    raise ConnectionError("server restarting")


async def _true(value: bool) -> bool:
    return value


@stores(*DURABLE_STORES)
async def test_one_relay_at_a_time_holds_the_lease_and_another_takes_over_when_it_lapses(
    things: Any, probe: Any
) -> None:
    name = f"lease-{uuid.uuid4().hex[:6]}"
    first, second = await things.lease(name, 1.5), await things.lease(name, 1.5)
    assert await first.hold()
    assert await first.hold()  # renewing
    assert not await second.hold()
    await things.write("l", "leased", [event_of(probe, "l", 1)])
    publisher = FailingBus()
    assert await Relay(things.outbox, publisher, lease=second).publish_pending() == 0
    assert publisher.calls == 0  # the relay without the lease leaves the outbox alone

    await asyncio.sleep(2.5)  # the first holder died: its lease runs out
    assert await second.hold()
    assert not await first.hold()


# ---------------------------------------------------------------------------------------------
# Inbox contract (memory, Cassandra, MongoDB)


@stores(*STORES)
async def test_an_inbox_remembers_the_events_each_consumer_processed(
    things: Any, probe: Any
) -> None:
    event = event_of(probe, "i", 1)
    mine = await things.inbox(f"mine-{uuid.uuid4().hex[:6]}")
    other = await things.inbox(f"other-{uuid.uuid4().hex[:6]}")
    assert not await mine.seen(event)
    await mine.record(event)
    await mine.record(event)  # recording twice is harmless
    assert await mine.seen(event)
    assert not await other.seen(event)


@stores(*STORES)
async def test_an_idempotent_handler_applies_a_redelivered_event_once_and_retries_a_failed_one(
    things: Any, probe: Any
) -> None:
    inbox = await things.inbox(f"c-{uuid.uuid4().hex[:6]}")
    event = event_of(probe, "d", 1)
    failures = [RuntimeError("database down")]

    async def effect(e: Event) -> None:
        if failures:
            raise failures.pop()
        await things.apply_effect(e, inbox)

    handle = idempotent(inbox, effect)
    with pytest.raises(RuntimeError):
        await handle(event)
    assert not await inbox.seen(event)  # a failed handler records nothing: the retry runs
    for _ in range(3):
        await handle(event)
    assert await things.effects(event.id) == 1


# ---------------------------------------------------------------------------------------------
# Crash tests (acceptance a and b)


@stores(*DURABLE_STORES)
async def test_an_event_committed_by_a_killed_publisher_is_relayed_later_and_applied_once(
    things: Any, probe: Any, bus: Bus, queue: str
) -> None:
    consumer_handler = CountingConsumer(things, await things.inbox(queue))
    consumer = await bus.consume(queue, consumer_handler)
    thing, event_id = f"k-{uuid.uuid4().hex[:6]}", str(uuid.uuid4())

    code, out = await run_proc(
        "write-then-die-before-publish", things.kind, probe, thing=thing, event_id=event_id
    )
    assert code == -signal.SIGKILL
    assert f"committed {event_id}" in out
    assert any(line.startswith("about to publish") for line in out)
    assert await things.name_of(thing) == "written"  # the state is saved ...
    assert event_id in await pending_ids(things)  # ... and so is its event, unpublished
    assert consumer_handler.deliveries == {}
    assert await bus.message_count(queue) == 0

    code, out = await run_proc("relay", things.kind, probe)  # a new relay process
    assert code == 0
    await eventually(lambda: things.effects(event_id), within=15)
    await asyncio.sleep(0.5)  # room for a duplicate to show up
    await consumer.stop()
    deliveries, effects = (
        consumer_handler.deliveries.get(event_id, 0),
        await things.effects(event_id),
    )
    print(
        f"{things.kind}: publisher killed after commit: deliveries={deliveries} "
        f"effects={effects} relay said {out}"
    )
    assert effects == 1
    assert deliveries >= 1
    assert event_id not in await pending_ids(things)


@stores(*DURABLE_STORES)
async def test_a_relay_killed_before_marking_sent_publishes_again_and_the_inbox_applies_once(
    things: Any, probe: Any, bus: Bus, queue: str
) -> None:
    consumer_handler = CountingConsumer(things, await things.inbox(queue))
    consumer = await bus.consume(queue, consumer_handler)
    thing = f"m-{uuid.uuid4().hex[:6]}"
    event = event_of(probe, thing, 1)
    await things.write(thing, "written", [event])

    code, out = await run_proc("relay-die-before-mark", things.kind, probe)
    assert code == -signal.SIGKILL
    assert any(line.startswith("confirmed") and event.id in line for line in out)
    await eventually(lambda: asyncio.sleep(0, consumer_handler.deliveries.get(event.id) == 1))
    assert event.id in await pending_ids(things)  # confirmed, but still pending

    code, out = await run_proc("relay", things.kind, probe)  # publishes it a second time
    assert code == 0
    await eventually(lambda: asyncio.sleep(0, consumer_handler.deliveries.get(event.id) == 2))
    await consumer.stop()
    deliveries, effects = consumer_handler.deliveries[event.id], await things.effects(event.id)
    print(
        f"{things.kind}: relay killed before marking sent: deliveries={deliveries} "
        f"effects={effects}"
    )
    assert deliveries == 2
    assert effects == 1
    assert event.id not in await pending_ids(things)


@stores(*DURABLE_STORES)
async def test_a_consumer_killed_after_its_effect_before_its_ack_gets_no_second_effect(
    things: Any, probe: Any, bus: Bus, queue: str
) -> None:
    argv = [sys.executable, str(PROC), "consume-die-before-ack", "--store", things.kind]
    argv += ["--keyspace", KEYSPACE, "--database", DATABASE, "--queue", queue]
    argv += ["--type", probe.DESCRIPTOR.full_name]
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.decode().strip() == "consuming", (line, await proc.stderr.read())
        event = event_of(probe, "c", 1)
        await bus.publish([event])
        rest, _ = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert f"applied {event.id}" in rest.decode()
    assert await things.effects(event.id) == 1

    second = CountingConsumer(things, await things.inbox(queue))  # a new consumer process
    consumer = await bus.consume(queue, second)
    await eventually(lambda: asyncio.sleep(0, second.deliveries.get(event.id) == 1))
    await consumer.stop()  # waits for the handler and its ack
    effects = await things.effects(event.id)
    left = await bus.message_count(queue)
    print(
        f"{things.kind}: consumer killed before ack: redeliveries={second.deliveries[event.id]} "
        f"effects={effects} left in queue={left}"
    )
    assert effects == 1
    assert left == 0
