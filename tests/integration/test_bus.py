"""The event bus on real RabbitMQ: envelope, retries, dead letters and replay, a broker restart.

Every test declares its own queue and uses its own event type (a unique routing key), so it
sees only its own messages on the shared broker. The restart test starts a broker of its own on
other ports and never touches the shared one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aio_pika
import pytest
import pytest_asyncio
from _messaging_types import new_type_name, probe_class
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from kit.bus import CONTENT_TYPE, Bus, PublishError
from kit.config import RabbitSettings
from kit.events import Event

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parents[2]
RABBITMQ = ROOT / "infra/local/bin/rabbitmq"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bus() -> AsyncIterator[Bus]:
    bus = await Bus.connect(RabbitSettings.from_env(), "test-bus", wait_seconds=10)
    try:
        yield bus
    finally:
        await bus.close()


@pytest.fixture
def probe() -> Any:
    return probe_class(new_type_name())


@pytest_asyncio.fixture(loop_scope="module")
async def queue(bus: Bus, probe: Any) -> AsyncIterator[str]:
    name = f"test.bus.{uuid.uuid4().hex[:10]}"
    await bus.declare_queue(
        name, [probe.DESCRIPTOR.full_name], delivery_limit=2, retry_delays=(0.05, 0.1)
    )
    try:
        yield name
    finally:
        await bus.delete_queue(name)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within} s")
        await asyncio.sleep(0.05)


def until(condition: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return condition()

    return check


async def dead_letters(bus: Bus, queue: str, count: int) -> list[Any]:
    """The DLQ once it holds `count` messages (dead-lettering is asynchronous)."""
    letters: list[Any] = []

    async def have() -> bool:
        nonlocal letters
        letters = await bus.list_dead_letters(queue)
        return len(letters) >= count

    await eventually(have)
    return letters


async def cli(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kit.bus",
        *args,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    return out.decode()


# ---------------------------------------------------------------------------------------------


async def test_published_events_carry_their_envelope_in_amqp_properties_and_the_trace_context(
    bus: Bus, probe: Any, queue: str
) -> None:
    producer = SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
        span_id=0x00F067AA0BA902B7,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    with trace.use_span(NonRecordingSpan(producer)):
        event = Event.of(probe(thing_id="p", n=7), "orders")
    await bus.publish([event])

    # What any AMQP client sees (a Go or Node consumer, the management UI).
    connection = await aio_pika.connect(RabbitSettings.from_env().url)
    async with connection:
        channel = await connection.channel()
        raw = await (await channel.get_queue(queue)).get(no_ack=False, timeout=5)
        assert raw is not None
        assert raw.message_id == event.id
        assert raw.type == probe.DESCRIPTOR.full_name == event.type
        assert raw.content_type == CONTENT_TYPE
        assert raw.app_id == "orders"
        assert raw.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert raw.timestamp is not None
        assert abs(raw.timestamp.timestamp() - event.time.timestamp()) < 1
        assert raw.headers["traceparent"] == (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        )
        assert raw.routing_key == event.type
        assert probe.FromString(raw.body).n == 7
        await raw.nack(requeue=True)

    seen: list[tuple[Event, int]] = []

    async def handler(received: Event) -> None:
        # The handler runs inside the producer's trace.
        seen.append((received, trace.get_current_span().get_span_context().trace_id))

    consumer = await bus.consume(queue, handler)
    await eventually(until(lambda: bool(seen)))
    await consumer.stop()
    received, trace_id = seen[0]
    assert received == event  # id, type, source, exact time, data, headers
    assert received.decode(probe).thing_id == "p"
    assert trace_id == producer.trace_id


async def test_a_failing_handler_gets_the_message_again_and_it_is_acked_only_after_success(
    bus: Bus, probe: Any, queue: str
) -> None:
    attempts: list[str] = []

    async def flaky(event: Event) -> None:
        attempts.append(event.id)
        if len(attempts) < 3:
            raise RuntimeError("database restarting")

    consumer = await bus.consume(queue, flaky)
    event = Event.of(probe(thing_id="f", n=1), "test")
    await bus.publish([event])
    await eventually(until(lambda: len(attempts) >= 3))
    await consumer.stop()
    assert attempts == [event.id] * 3  # two failures, then success within the delivery limit
    assert await bus.message_count(queue) == 0
    assert await bus.list_dead_letters(queue) == []


async def test_a_poison_message_lands_in_the_dlq_after_the_delivery_limit_and_can_be_replayed(
    bus: Bus, probe: Any, queue: str
) -> None:
    attempts: list[str] = []

    async def poisoned(event: Event) -> None:
        attempts.append(event.id)
        raise RuntimeError("bug in the handler")

    consumer = await bus.consume(queue, poisoned)
    good = Event.of(probe(thing_id="ok", n=1), "test")
    poison = Event.of(probe(thing_id="bad", n=2), "test")
    await bus.publish([poison])
    (letter,) = await dead_letters(bus, queue, 1)
    await consumer.stop()
    print(f"poison message handled {len(attempts)} times before dead-lettering")
    assert attempts == [poison.id] * 3  # delivery limit 2: the first delivery and two more
    assert (letter.message_id, letter.reason, letter.deaths) == (poison.id, "delivery_limit", 1)
    assert letter.event == poison
    assert len(await bus.list_dead_letters(queue)) == 1  # listing leaves it there

    handled: list[str] = []

    async def fixed(event: Event) -> None:
        handled.append(event.decode(probe).thing_id)

    consumer = await bus.consume(queue, fixed)
    await bus.publish([good])
    assert await bus.replay_dead_letters(queue) == 1
    await eventually(until(lambda: len(handled) == 2))
    await consumer.stop()
    assert sorted(handled) == ["bad", "ok"]
    assert await bus.list_dead_letters(queue) == []
    assert await bus.message_count(queue) == 0


async def test_an_undecodable_message_is_dead_lettered_at_once_and_the_cli_lists_and_replays_it(
    bus: Bus, probe: Any, queue: str
) -> None:
    calls: list[Event] = []

    async def handler(event: Event) -> None:
        calls.append(event)

    consumer = await bus.consume(queue, handler)
    garbage = Event(
        id=str(uuid.uuid4()),
        type=probe.DESCRIPTOR.full_name,
        source="test",
        time=Event.of(probe(), "test").time,
        data=b"\xff\xff\xff\xff",  # not a valid protobuf message
    )
    await bus.publish([garbage])
    (letter,) = await dead_letters(bus, queue, 1)
    assert (letter.message_id, letter.reason) == (garbage.id, "rejected")
    assert calls == []  # never handed to the handler, never retried

    listing = await cli("dlq", "list", queue)
    assert garbage.id in listing
    assert "rejected" in listing
    assert "1 dead letter(s)" in listing
    assert "replayed 1 message(s)" in await cli("dlq", "replay", queue)
    (letter,) = await dead_letters(bus, queue, 1)  # rejected again by the consumer
    await consumer.stop()
    assert (letter.message_id, letter.deaths) == (garbage.id, 2)
    assert calls == []


async def test_connecting_to_a_broker_that_never_answers_fails_instead_of_hanging() -> None:
    started = time.monotonic()
    with pytest.raises(ConnectionError):
        await Bus.connect(
            RabbitSettings(url="amqp://guest:guest@127.0.0.1:1/"), "t", wait_seconds=1
        )
    assert time.monotonic() - started < 10


# ---------------------------------------------------------------------------------------------
# A broker restart (acceptance d), on a broker of the test's own


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _broker_ports() -> tuple[int, int]:
    """An AMQP port (its distribution port is +20000) and a management port, all free."""
    for amqp in [5699, *range(5700, 5760)]:
        if _free(amqp) and _free(amqp + 20000) and _free(amqp + 10000):
            return amqp, amqp + 10000
    raise RuntimeError("no free ports for a test broker")


class OwnBroker:
    """A RabbitMQ node of the test's own (infra/local/bin/rabbitmq run on other ports)."""

    def __init__(self) -> None:
        self.port, self.management_port = _broker_ports()
        self.var = Path(tempfile.mkdtemp(prefix="emporium-test-rabbitmq-"))
        self.env = {
            **os.environ,
            "RABBITMQ_PORT": str(self.port),
            "RABBITMQ_MANAGEMENT_PORT": str(self.management_port),
            "EMPORIUM_VAR": str(self.var),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.var / "broker.log"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(RABBITMQ), "run"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def ready(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        while True:
            assert self.proc is not None
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            check = await asyncio.create_subprocess_exec(
                str(RABBITMQ),
                "ready",
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if await check.wait() == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError("own broker not ready:\n" + self.log.read_text()[-3000:])
            await asyncio.sleep(0.3)

    async def stop(self) -> int:
        """SIGTERM (RabbitMQ's graceful stop) and wait; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(self.proc.wait, 60)

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.var, ignore_errors=True)


@pytest.fixture
def own_broker() -> Any:
    broker = OwnBroker()
    try:
        yield broker
    finally:
        broker.cleanup()


async def test_a_broker_restart_mid_stream_loses_no_confirmed_event(
    own_broker: OwnBroker, probe: Any
) -> None:
    own_broker.start()
    # Bus.connect retries while the node boots: no readiness wait needed before it.
    bus = await Bus.connect(
        RabbitSettings(url=own_broker.url), "restart-test", wait_seconds=90, reconnect_interval=0.5
    )
    try:
        queue = "test.restart"
        await bus.declare_queue(queue, [probe.DESCRIPTOR.full_name])
        received: dict[str, int] = {}
        received_before_restart = 0

        async def count(event: Event) -> None:
            received[event.id] = received.get(event.id, 0) + 1

        # Consuming all along: the consumer must come back by itself after the restart too.
        consumer = await bus.consume(queue, count, prefetch=200)
        events = [Event.of(probe(thing_id="s", n=n), "test") for n in range(1500)]
        confirmed: set[str] = set()
        failures = 0
        reasons: set[str] = set()
        restarted = asyncio.Event()

        async def publisher() -> None:
            nonlocal failures
            for start in range(0, len(events), 10):
                chunk = events[start : start + 10]
                while True:  # a publisher retries what was not confirmed
                    try:
                        await bus.publish(chunk, confirm_seconds=3)
                        break
                    except PublishError as exc:
                        failures += 1
                        reasons.add(str(exc).split(" (first")[0])
                        await asyncio.sleep(0.1)
                confirmed.update(e.id for e in chunk)
                if not restarted.is_set():
                    await asyncio.sleep(0.01)  # spread the stream over the restart

        async def restart() -> None:
            nonlocal received_before_restart
            await eventually(until(lambda: len(confirmed) >= 300), within=60)
            received_before_restart = len(received)
            code = await own_broker.stop()
            assert code == 0, own_broker.log.read_text()[-3000:]
            stopped_at = len(confirmed)
            own_broker.start()
            await own_broker.ready()
            restarted.set()
            print(f"broker stopped with {stopped_at} events confirmed, started again")

        await asyncio.wait_for(asyncio.gather(publisher(), restart()), 150)

        await eventually(until(lambda: confirmed <= received.keys()), within=30)
        await consumer.stop()
        duplicates = sum(received.values()) - len(received)
        print(
            f"published {len(events)} events: {len(confirmed)} confirmed, {failures} failed "
            f"publish attempts (retried); consumed {len(received)} distinct "
            f"({received_before_restart} before the restart), {duplicates} duplicates, "
            f"{len(confirmed - received.keys())} confirmed but lost"
        )
        print(f"publish errors seen: {sorted(reasons)}")
        assert restarted.is_set()
        assert failures > 0  # the stream really crossed the restart
        assert confirmed == {e.id for e in events}
        assert not confirmed - received.keys()
    finally:
        with contextlib.suppress(Exception):
            await bus.close()
